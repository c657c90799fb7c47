using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Portcullis.Testing;

/// <summary>
/// A DNSSEC key made by <c>dnssec-keygen</c> for the signed hierarchy, held as its DNSKEY fields and
/// the text of its BIND private-key file (which names no zone). <see cref="PlaceFor"/> writes it under
/// another zone's name, so one key can sign several zones where that changes no scenario: key
/// generation is what would otherwise dominate the build time.
/// </summary>
public sealed record SignedKey(int Flags, int Algorithm, byte[] PublicKey, string PrivateText)
{
    /// <summary>The DNSKEY RDATA (RFC 4034 §2.1): flags, protocol 3, algorithm, public key.</summary>
    public byte[] Rdata => DnssecMath.DnskeyRdata(Flags, Algorithm, PublicKey);

    public int KeyTag => DnssecMath.KeyTag(Rdata);

    /// <summary>"owner 300 IN DNSKEY flags 3 alg base64" for the zone <paramref name="origin"/>.</summary>
    public string DnskeyLine(string origin) => $"{origin} 300 IN DNSKEY {Flags} 3 {Algorithm} {Convert.ToBase64String(PublicKey)}";

    /// <summary>The parent's DS (digest type 2, SHA-256) for this key at <paramref name="origin"/>.</summary>
    public string DsLine(string origin) =>
        $"{origin} 300 IN DS {KeyTag} {Algorithm} 2 {Convert.ToHexString(DnssecMath.DsDigest(origin, Rdata))}";

    /// <summary>Writes K{origin}+alg+tag.key and .private into <paramref name="directory"/>; returns the base name.</summary>
    public string PlaceFor(string origin, string directory)
    {
        string basename = $"K{origin}+{Algorithm:D3}+{KeyTag:D5}";
        File.WriteAllText(Path.Combine(directory, basename + ".key"), DnskeyLine(origin) + "\n");
        File.WriteAllText(Path.Combine(directory, basename + ".private"), PrivateText);
        return basename;
    }

    private static int _generated;

    /// <summary>Runs <c>dnssec-keygen</c> in <paramref name="directory"/> and reads the key it made.</summary>
    public static SignedKey Generate(string directory, string algorithm, bool ksk, int? bits = null)
    {
        List<string> args = ["-q", "-K", directory, "-a", algorithm];
        if (bits is { } b) args.AddRange(["-b", b.ToString(CultureInfo.InvariantCulture)]);
        if (ksk) args.AddRange(["-f", "KSK"]);
        // A name of its own per key: keys made side by side in one directory never share a file name.
        args.Add($"k{Interlocked.Increment(ref _generated)}.keygen.template.");
        string basename = ExternalProcess.Run("dnssec-keygen", args, workingDirectory: directory).EnsureSuccess().Stdout.Trim();
        string keyText = File.ReadAllText(Path.Combine(directory, basename + ".key"));
        string privateText = File.ReadAllText(Path.Combine(directory, basename + ".private"));
        var line = keyText.Split('\n').First(l => l.Length > 0 && !l.StartsWith(';'));
        var t = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
        int at = Array.IndexOf(t, "DNSKEY");
        return new SignedKey(int.Parse(t[at + 1], CultureInfo.InvariantCulture), int.Parse(t[at + 3], CultureInfo.InvariantCulture),
            Convert.FromBase64String(string.Concat(t[(at + 4)..])), privateText);
    }
}

/// <summary>The little DNSSEC arithmetic the hierarchy needs, written from the RFCs (the test project does not reference the protocol library).</summary>
public static class DnssecMath
{
    public static byte[] DnskeyRdata(int flags, int algorithm, byte[] publicKey)
    {
        var rdata = new byte[4 + publicKey.Length];
        BinaryPrimitives.WriteUInt16BigEndian(rdata, (ushort)flags);
        rdata[2] = 3;
        rdata[3] = (byte)algorithm;
        publicKey.CopyTo(rdata, 4);
        return rdata;
    }

    /// <summary>RFC 4034 Appendix B (every algorithm but RSA/MD5).</summary>
    public static int KeyTag(ReadOnlySpan<byte> rdata)
    {
        uint ac = 0;
        for (int i = 0; i < rdata.Length; i++) ac += (i & 1) != 0 ? rdata[i] : (uint)rdata[i] << 8;
        ac += (ac >> 16) & 0xFFFF;
        return (int)(ac & 0xFFFF);
    }

    /// <summary>RFC 4509 §2.1: SHA-256(owner in canonical wire form | DNSKEY RDATA).</summary>
    public static byte[] DsDigest(string owner, byte[] rdata) =>
        SHA256.HashData([.. HierarchyWire.Name(owner.ToLowerInvariant()), .. rdata]);

    /// <summary>RFC 5155 §5: the NSEC3 hash (SHA-1) of <paramref name="name"/>, no salt, in base32hex upper case.</summary>
    public static string Nsec3Hash(string name, int iterations = 0)
    {
        byte[] wire = HierarchyWire.Name(name.ToLowerInvariant());
        byte[] h = SHA1.HashData(wire);
        for (int i = 0; i < iterations; i++) h = SHA1.HashData(h);
        return Base32Hex(h);
    }

    public static string Base32Hex(ReadOnlySpan<byte> data)
    {
        const string alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUV";
        var text = new StringBuilder();
        int buffer = 0, bits = 0;
        foreach (byte b in data)
        {
            buffer = (buffer << 8) | b;
            bits += 8;
            while (bits >= 5)
            {
                text.Append(alphabet[(buffer >> (bits - 5)) & 31]);
                bits -= 5;
            }
        }
        if (bits > 0) text.Append(alphabet[(buffer << (5 - bits)) & 31]);
        return text.ToString();
    }

    /// <summary>
    /// KeyTrap (CVE-2023-50387) keys: <paramref name="count"/> RSA public keys (flags 256) that all have the
    /// key tag <paramref name="tag"/>, made by keeping <paramref name="real"/>'s modulus and choosing 4-octet
    /// odd public exponents until the tag matches (RFC 3110 §2: exponent length, exponent, modulus). Each
    /// is a well-formed RSA key a validator will try, and none verifies anything <paramref name="real"/> signed.
    /// </summary>
    public static IReadOnlyList<byte[]> CollidingRsaKeys(SignedKey real, int count, int tag)
    {
        if (real.Algorithm is not (8 or 10)) throw new ArgumentException("an RSA key is needed", nameof(real));
        var key = real.PublicKey;
        int expLength = key[0];
        int offset = 1;
        if (expLength == 0)
        {
            expLength = BinaryPrimitives.ReadUInt16BigEndian(key.AsSpan(1));
            offset = 3;
        }
        byte[] modulus = key[(offset + expLength)..];
        var keys = new List<byte[]>(count);
        var candidate = new byte[1 + 4 + modulus.Length];
        candidate[0] = 4;
        modulus.CopyTo(candidate, 5);
        for (uint e = 0x01000001; keys.Count < count && e < 0xFFFFFFF0; e += 2)
        {
            BinaryPrimitives.WriteUInt32BigEndian(candidate.AsSpan(1), e);
            if (KeyTag(DnskeyRdata(256, real.Algorithm, candidate)) == tag) keys.Add((byte[])candidate.Clone());
        }
        return keys;
    }

    /// <summary>The modulus of an RSA DNSKEY public key (RFC 3110 §2).</summary>
    public static byte[] RsaModulus(byte[] publicKey)
    {
        int expLength = publicKey[0], offset = 1;
        if (expLength == 0)
        {
            expLength = BinaryPrimitives.ReadUInt16BigEndian(publicKey.AsSpan(1));
            offset = 3;
        }
        return publicKey[(offset + expLength)..];
    }
}

/// <summary>
/// Edits of a signed zone's text after signing (the deliberately broken zones). The text is what
/// <c>dnssec-signzone -O full</c> and <c>ldns-signzone</c> write: one record per line,
/// "owner TTL class type rdata", comments after ';'.
/// </summary>
public static class SignedZoneEdits
{
    private static string[] Fields(string line) => line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);

    private static bool IsRecord(string line, out string[] f)
    {
        f = Fields(line);
        return f.Length >= 5 && !f[0].StartsWith(';');
    }

    private static bool Same(string a, string b) => string.Equals(a.TrimEnd('.'), b.TrimEnd('.'), StringComparison.OrdinalIgnoreCase);

    /// <summary>Drops every record for which <paramref name="drop"/> (owner, type, type covered by an RRSIG or "") is true.</summary>
    public static string Remove(string zone, Func<string, string, string, bool> drop) =>
        string.Join('\n', zone.Split('\n').Where(l => !(IsRecord(l, out var f) && drop(f[0], f[3], f[3] == "RRSIG" ? f[4] : ""))));

    /// <summary>Replaces the RDATA of the <paramref name="type"/> records at <paramref name="owner"/> (not their RRSIGs).</summary>
    public static string ReplaceRdata(string zone, string owner, string type, string rdata) =>
        string.Join('\n', zone.Split('\n').Select(l =>
            IsRecord(l, out var f) && Same(f[0], owner) && f[3] == type ? $"{f[0]} {f[1]} {f[2]} {f[3]} {rdata}" : l));

    /// <summary>
    /// Replaces the RRSIG over (<paramref name="owner"/>, <paramref name="covered"/>) by <paramref name="count"/>
    /// copies that claim the key tag <paramref name="keyTag"/> and whose signature field is other bits of the
    /// same length: each names a key of the zone and fails.
    /// For RSA the forged value stays below <paramref name="rsaModulus"/>, so that a verifier really
    /// computes it rather than rejecting it as out of range.
    /// </summary>
    public static string ForgeSignatures(string zone, string owner, string covered, int count, int keyTag, byte[]? rsaModulus)
    {
        var lines = zone.Split('\n').ToList();
        int at = lines.FindIndex(l => IsRecord(l, out var f) && Same(f[0], owner) && f[3] == "RRSIG" && f[4] == covered);
        if (at < 0) throw new InvalidOperationException($"no RRSIG {covered} at {owner}");
        var f = Fields(lines[at]);
        // owner ttl class RRSIG covered alg labels ottl exp inc tag signer signature...
        f[10] = keyTag.ToString(CultureInfo.InvariantCulture);
        string head = string.Join(' ', f[..12]);
        int length = Convert.FromBase64String(string.Concat(f[12..])).Length;
        var random = new Random(length * 7919 + count);
        var forged = new List<string>(count);
        for (int i = 0; i < count; i++)
        {
            var signature = new byte[length];
            random.NextBytes(signature);
            if (rsaModulus is not null) signature[0] = (byte)(rsaModulus[0] >> 1);
            forged.Add($"{head} {Convert.ToBase64String(signature)}");
        }
        lines.RemoveAt(at);
        lines.InsertRange(at, forged);
        return string.Join('\n', lines);
    }

    /// <summary>
    /// Deletes the NSEC3 record (and its RRSIG) whose span covers the hash of <paramref name="name"/>
    /// (RFC 5155 §3.1.7: owner hash &lt; H(name) &lt; next hash, wrapping at the end of the chain).
    /// Returns the edited text and the hash of the deleted record's owner.
    /// </summary>
    public static (string Zone, string DeletedOwner) DeleteCoveringNsec3(string zone, string name, string origin)
    {
        string h = DnssecMath.Nsec3Hash(name);
        string? cover = null;
        foreach (var line in zone.Split('\n'))
        {
            if (!IsRecord(line, out var f) || f[3] != "NSEC3") continue;
            string owner = f[0].Split('.')[0].ToUpperInvariant();
            string next = f[8].ToUpperInvariant();
            bool covers = string.CompareOrdinal(owner, next) < 0
                ? string.CompareOrdinal(owner, h) < 0 && string.CompareOrdinal(h, next) < 0
                : string.CompareOrdinal(owner, h) < 0 || string.CompareOrdinal(h, next) < 0;
            if (covers) cover = owner;
        }
        if (cover is null) throw new InvalidOperationException($"no NSEC3 covers {name} ({h})");
        string coverName = $"{cover}.{origin}";
        return (Remove(zone, (o, _, _) => Same(o, coverName)), cover);
    }
}
