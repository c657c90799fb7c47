using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using NSec.Cryptography;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;

namespace Portcullis.Protocol.Dnssec;

/// <summary>
/// A DNSSEC private key of one zone (RFC 4034 §2): its DNSKEY RDATA and the secret to sign with.
/// ECDSA P-256/P-384 (RFC 6605), Ed25519 (RFC 8080) and RSA/SHA-256 (RFC 5702). A tool object:
/// it allocates freely.
/// </summary>
public sealed class DnssecPrivateKey : IDisposable
{
    /// <summary>The RSA modulus dnssec-keygen uses by default (RFC 8624 §3.1 leaves 2048 as the usual size).</summary>
    public const int DefaultRsaBits = 2048;

    private readonly ECDsa? _ecdsa;
    private readonly RSA? _rsa;
    private readonly Key? _ed25519;

    private DnssecPrivateKey(DnsName zone, DnssecAlgorithm algorithm, ushort flags, ECDsa? ecdsa, RSA? rsa, Key? ed25519)
    {
        Zone = zone;
        Algorithm = algorithm;
        _ecdsa = ecdsa;
        _rsa = rsa;
        _ed25519 = ed25519;
        byte[] publicKey = PublicKeyOctets();
        var rdata = new byte[4 + publicKey.Length];
        BinaryPrimitives.WriteUInt16BigEndian(rdata, flags);
        rdata[2] = DnsKey.Protocol;
        rdata[3] = (byte)algorithm;
        publicKey.CopyTo(rdata, 4);
        DnskeyRdata = rdata;
    }

    public DnsName Zone { get; }
    public DnssecAlgorithm Algorithm { get; }
    /// <summary>Flags, protocol 3, algorithm and public key (RFC 4034 §2.1).</summary>
    public byte[] DnskeyRdata { get; }
    public ushort Flags => DnsKey.Flags(DnskeyRdata);
    /// <summary>RFC 4034 Appendix B.</summary>
    public ushort KeyTag => DnsKey.KeyTag(DnskeyRdata);
    /// <summary>The SEP flag is set (flags 257): by convention a key-signing key.</summary>
    public bool IsKsk => DnsKey.IsSecureEntryPoint(DnskeyRdata);

    /// <summary>The algorithms this signer makes keys for.</summary>
    public static bool CanSign(DnssecAlgorithm algorithm) => algorithm is DnssecAlgorithm.EcdsaP256Sha256
        or DnssecAlgorithm.EcdsaP384Sha384 or DnssecAlgorithm.Ed25519 or DnssecAlgorithm.RsaSha256;

    /// <summary>A new random key; <paramref name="ksk"/> gives flags 257 (zone key + SEP), otherwise 256.</summary>
    public static DnssecPrivateKey Generate(DnsName zone, DnssecAlgorithm algorithm, bool ksk, int rsaBits = DefaultRsaBits)
    {
        ushort flags = (ushort)(DnsKey.ZoneKeyFlag | (ksk ? DnsKey.SecureEntryPointFlag : 0));
        return algorithm switch
        {
            DnssecAlgorithm.EcdsaP256Sha256 => new(zone, algorithm, flags, ECDsa.Create(ECCurve.NamedCurves.nistP256), null, null),
            DnssecAlgorithm.EcdsaP384Sha384 => new(zone, algorithm, flags, ECDsa.Create(ECCurve.NamedCurves.nistP384), null, null),
            DnssecAlgorithm.RsaSha256 => new(zone, algorithm, flags, null, RSA.Create(rsaBits), null),
            DnssecAlgorithm.Ed25519 => new(zone, algorithm, flags, null, null,
                Key.Create(SignatureAlgorithm.Ed25519, new KeyCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport })),
            _ => throw new NotSupportedException($"algorithm {DnssecAlgorithms.ToText(algorithm)} cannot sign here"),
        };
    }

    /// <summary>An ECDSA key from its private scalar (the "PrivateKey" field of a BIND .private file).</summary>
    public static DnssecPrivateKey FromEcdsa(DnsName zone, DnssecAlgorithm algorithm, ushort flags, byte[] privateScalar)
    {
        var curve = algorithm == DnssecAlgorithm.EcdsaP256Sha256 ? ECCurve.NamedCurves.nistP256 : ECCurve.NamedCurves.nistP384;
        int size = algorithm == DnssecAlgorithm.EcdsaP256Sha256 ? 32 : 48;
        var ecdsa = ECDsa.Create();
        // The platform derives the public point Q from D when Q is absent.
        ecdsa.ImportParameters(new ECParameters { Curve = curve, D = LeftPad(privateScalar, size) });
        return new DnssecPrivateKey(zone, algorithm, flags, ecdsa, null, null);
    }

    /// <summary>An Ed25519 key from its 32-octet seed (RFC 8032 §5.1.5; BIND's "PrivateKey").</summary>
    public static DnssecPrivateKey FromEd25519(DnsName zone, ushort flags, byte[] seed)
    {
        var key = Key.Import(SignatureAlgorithm.Ed25519, seed, KeyBlobFormat.RawPrivateKey,
            new KeyCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport });
        return new DnssecPrivateKey(zone, DnssecAlgorithm.Ed25519, flags, null, null, key);
    }

    /// <summary>An RSA key from its CRT parameters (BIND's Modulus … Coefficient fields).</summary>
    public static DnssecPrivateKey FromRsa(DnsName zone, ushort flags, RSAParameters parameters)
    {
        int n = parameters.Modulus!.Length, half = (n + 1) / 2;
        // .NET wants D as long as the modulus and the CRT values half as long; files drop leading zeros.
        var p = new RSAParameters
        {
            Modulus = parameters.Modulus, Exponent = parameters.Exponent,
            D = LeftPad(parameters.D!, n), P = LeftPad(parameters.P!, half), Q = LeftPad(parameters.Q!, half),
            DP = LeftPad(parameters.DP!, half), DQ = LeftPad(parameters.DQ!, half), InverseQ = LeftPad(parameters.InverseQ!, half),
        };
        var rsa = RSA.Create();
        rsa.ImportParameters(p);
        return new DnssecPrivateKey(zone, DnssecAlgorithm.RsaSha256, flags, null, rsa, null);
    }

    /// <summary>The private fields as a BIND .private file names them (Private-key-format v1.3).</summary>
    public IReadOnlyList<(string Name, byte[] Value)> ExportPrivateFields()
    {
        if (_ecdsa is not null) return [("PrivateKey", _ecdsa.ExportParameters(true).D!)];
        if (_ed25519 is not null) return [("PrivateKey", _ed25519.Export(KeyBlobFormat.RawPrivateKey))];
        var p = _rsa!.ExportParameters(true);
        return [("Modulus", p.Modulus!), ("PublicExponent", p.Exponent!), ("PrivateExponent", p.D!), ("Prime1", p.P!),
            ("Prime2", p.Q!), ("Exponent1", p.DP!), ("Exponent2", p.DQ!), ("Coefficient", p.InverseQ!)];
    }

    /// <summary>Signs <paramref name="data"/> in the algorithm's DNSSEC signature encoding.</summary>
    public byte[] Sign(ReadOnlySpan<byte> data)
    {
        if (_ecdsa is not null)
        {
            // RFC 6605 §4: r | s, each a fixed-size big-endian integer.
            var hash = Algorithm == DnssecAlgorithm.EcdsaP256Sha256 ? HashAlgorithmName.SHA256 : HashAlgorithmName.SHA384;
            return _ecdsa.SignData(data, hash, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        }
        if (_ed25519 is not null) return SignatureAlgorithm.Ed25519.Sign(_ed25519, data);
        // RFC 5702 §3: PKCS #1 v1.5 over SHA-256.
        return _rsa!.SignData(data.ToArray(), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
    }

    private byte[] PublicKeyOctets()
    {
        if (_ecdsa is not null)
        {
            // RFC 6605 §4: Q as x | y.
            int size = Algorithm == DnssecAlgorithm.EcdsaP256Sha256 ? 32 : 48;
            var q = _ecdsa.ExportParameters(false).Q;
            return [.. LeftPad(q.X!, size), .. LeftPad(q.Y!, size)];
        }
        if (_ed25519 is not null) return _ed25519.PublicKey.Export(KeyBlobFormat.RawPublicKey);
        // RFC 3110 §2: exponent length (one octet, or zero then two), exponent, modulus.
        var p = _rsa!.ExportParameters(false);
        var e = TrimZeros(p.Exponent!);
        var m = TrimZeros(p.Modulus!);
        byte[] prefix = e.Length <= 255 ? [(byte)e.Length] : [0, (byte)(e.Length >> 8), (byte)e.Length];
        return [.. prefix, .. e, .. m];
    }

    internal static byte[] LeftPad(byte[] value, int size)
    {
        var trimmed = TrimZeros(value);
        if (trimmed.Length >= size) return trimmed;
        var result = new byte[size];
        trimmed.CopyTo(result, size - trimmed.Length);
        return result;
    }

    internal static byte[] TrimZeros(byte[] value)
    {
        int i = 0;
        while (i < value.Length - 1 && value[i] == 0) i++;
        return i == 0 ? value : value[i..];
    }

    public void Dispose()
    {
        _ecdsa?.Dispose();
        _rsa?.Dispose();
        _ed25519?.Dispose();
    }
}

/// <summary>Making RRSIG records (RFC 4034 §3) and DS text (RFC 4034 §5, RFC 4509).</summary>
public static class DnssecSigner
{
    /// <summary>
    /// Signs one RRset (records sharing owner, type and class) with <paramref name="key"/>: the
    /// RRSIG record, owned by the RRset's owner with the original TTL as its TTL (RFC 4035 §2.2).
    /// Times are seconds since 1970 modulo 2^32 (RFC 4034 §3.1.5).
    /// </summary>
    public static ResourceRecord SignRrset(IReadOnlyList<ResourceRecord> rrset, DnssecPrivateKey key, DateTimeOffset inception,
        DateTimeOffset expiration, uint? originalTtl = null)
    {
        if (rrset.Count == 0) throw new ArgumentException("an empty RRset cannot be signed", nameof(rrset));
        var first = rrset[0];
        uint ttl = originalTtl ?? first.Ttl;
        // RFC 4034 §3.1.3: the labels of the owner, not counting the root nor a leading "*".
        int labels = first.Owner.LabelCount - (first.Owner.IsWildcard ? 1 : 0);
        var signer = key.Zone.ToLowerInvariant();
        var fields = new byte[Rrsig.FixedLength + signer.WireLength];
        BinaryPrimitives.WriteUInt16BigEndian(fields, (ushort)first.Type);
        fields[2] = (byte)key.Algorithm;
        fields[3] = (byte)labels;
        BinaryPrimitives.WriteUInt32BigEndian(fields.AsSpan(4), ttl);
        BinaryPrimitives.WriteUInt32BigEndian(fields.AsSpan(8), (uint)expiration.ToUnixTimeSeconds());
        BinaryPrimitives.WriteUInt32BigEndian(fields.AsSpan(12), (uint)inception.ToUnixTimeSeconds());
        BinaryPrimitives.WriteUInt16BigEndian(fields.AsSpan(16), key.KeyTag);
        signer.CopyTo(fields.AsSpan(Rrsig.FixedLength));
        byte[] data = CanonicalRrset.ToArray(fields, rrset)
            ?? throw new ArgumentException("the RRset cannot be put in canonical form", nameof(rrset));
        byte[] signature = key.Sign(data);
        return new ResourceRecord(first.Owner, RecordType.RRSIG, first.Class, ttl, [.. fields, .. signature]);
    }

    /// <summary>The DNSKEY record of a key, with <paramref name="ttl"/>.</summary>
    public static ResourceRecord DnskeyRecord(DnssecPrivateKey key, uint ttl) =>
        new(key.Zone, RecordType.DNSKEY, RecordClass.IN, ttl, key.DnskeyRdata);

    /// <summary>The DS (SHA-256) for the parent, as dnssec-dsfromkey -2 prints it: "zone. IN DS tag alg 2 HEX".</summary>
    public static string DsText(DnsName owner, ReadOnlySpan<byte> dnskeyRdata, DsDigestType digest = DsDigestType.Sha256)
    {
        byte[] ds = DsDigest.CreateDsRdata(owner, dnskeyRdata, digest)
            ?? throw new ArgumentException("not a DNSKEY that a DS can be made for", nameof(dnskeyRdata));
        var sb = new StringBuilder();
        sb.Append(owner.ToString()).Append(" IN DS ")
          .Append(BinaryPrimitives.ReadUInt16BigEndian(ds)).Append(' ').Append(ds[2]).Append(' ').Append(ds[3]).Append(' ')
          .Append(Convert.ToHexString(ds, 4, ds.Length - 4));
        return sb.ToString();
    }
}
