using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;
using Portcullis.Protocol.Names;

namespace Portcullis.Protocol.Dnssec;

/// <summary>How a DS record compares with a DNSKEY.</summary>
public enum DsMatch
{
    /// <summary>Key tag, algorithm and digest all agree: the DS designates this key.</summary>
    Match,
    /// <summary>Key tag or algorithm differ, or the digest does not match.</summary>
    Mismatch,
    /// <summary>The DS uses a digest type not implemented here (GOST, unknown): it cannot be checked.</summary>
    UnsupportedDigest,
    /// <summary>The DS or DNSKEY RDATA is too short, or the digest has the wrong length for its type.</summary>
    Malformed,
}

/// <summary>
/// DS digests (RFC 4034 §5.1.4): digest = hash(canonical owner name of the DNSKEY | DNSKEY RDATA),
/// with SHA-1 (type 1), SHA-256 (type 2, RFC 4509) or SHA-384 (type 4, RFC 6605).
/// </summary>
public static class DsDigest
{
    /// <summary>The digest length of a supported type, 0 for others.</summary>
    public static int Length(DsDigestType type) => type switch
    {
        DsDigestType.Sha1 => SHA1.HashSizeInBytes,
        DsDigestType.Sha256 => SHA256.HashSizeInBytes,
        DsDigestType.Sha384 => SHA384.HashSizeInBytes,
        _ => 0,
    };

    public static bool IsSupported(DsDigestType type) => Length(type) != 0;

    /// <summary>
    /// Writes the digest of <paramref name="owner"/> (lowered: the canonical form, RFC 4034 §6.2)
    /// and <paramref name="dnskeyRdata"/> into <paramref name="destination"/>. False when the type
    /// is not supported or the destination is too small.
    /// </summary>
    public static bool TryCompute(DnsName owner, ReadOnlySpan<byte> dnskeyRdata, DsDigestType type, Span<byte> destination, out int written)
    {
        written = Length(type);
        if (written == 0 || destination.Length < written) { written = 0; return false; }
        int total = owner.WireLength + dnskeyRdata.Length;
        byte[] buffer = ArrayPool<byte>.Shared.Rent(total);
        try
        {
            owner.CopyTo(buffer);
            DnsName.LowerLabels(buffer.AsSpan(0, owner.WireLength));
            dnskeyRdata.CopyTo(buffer.AsSpan(owner.WireLength));
            var input = buffer.AsSpan(0, total);
            _ = type switch
            {
                DsDigestType.Sha1 => SHA1.HashData(input, destination),
                DsDigestType.Sha256 => SHA256.HashData(input, destination),
                _ => SHA384.HashData(input, destination),
            };
            return true;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>The DS RDATA (key tag, algorithm, digest type, digest) for a DNSKEY; null for an unsupported digest type or a malformed key.</summary>
    public static byte[]? CreateDsRdata(DnsName owner, ReadOnlySpan<byte> dnskeyRdata, DsDigestType type)
    {
        int length = Length(type);
        if (length == 0 || !DnsKey.IsWellFormed(dnskeyRdata)) return null;
        var ds = new byte[4 + length];
        BinaryPrimitives.WriteUInt16BigEndian(ds, DnsKey.KeyTag(dnskeyRdata));
        ds[2] = dnskeyRdata[3];
        ds[3] = (byte)type;
        TryCompute(owner, dnskeyRdata, type, ds.AsSpan(4), out _);
        return ds;
    }

    /// <summary>
    /// Whether the DS RDATA <paramref name="dsRdata"/> designates the DNSKEY with RDATA
    /// <paramref name="dnskeyRdata"/> owned by <paramref name="owner"/> (RFC 4035 §5.2): key tag,
    /// algorithm and digest. The DS owner is the caller's to compare with <paramref name="owner"/>.
    /// </summary>
    public static DsMatch Compare(ReadOnlySpan<byte> dsRdata, DnsName owner, ReadOnlySpan<byte> dnskeyRdata)
    {
        if (dsRdata.Length < 5 || !DnsKey.IsWellFormed(dnskeyRdata)) return DsMatch.Malformed;
        var type = (DsDigestType)dsRdata[3];
        int length = Length(type);
        if (length == 0) return DsMatch.UnsupportedDigest;
        if (dsRdata.Length != 4 + length) return DsMatch.Malformed;
        if (BinaryPrimitives.ReadUInt16BigEndian(dsRdata) != DnsKey.KeyTag(dnskeyRdata) || dsRdata[2] != dnskeyRdata[3])
            return DsMatch.Mismatch;
        Span<byte> digest = stackalloc byte[SHA384.HashSizeInBytes];
        TryCompute(owner, dnskeyRdata, type, digest, out _);
        // Public data on both sides: no need for a fixed-time comparison.
        return digest[..length].SequenceEqual(dsRdata[4..]) ? DsMatch.Match : DsMatch.Mismatch;
    }
}
