using System.Buffers.Binary;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;

namespace Portcullis.Protocol.Dnssec;

/// <summary>
/// A view of RRSIG RDATA (RFC 4034 §3.1) over its wire octets: no copy. The signer's name is
/// never compressed (RFC 4034 §3.1.7), so it is read in place.
/// </summary>
public readonly ref struct Rrsig
{
    /// <summary>Type covered, algorithm, labels, original TTL, expiration, inception, key tag.</summary>
    public const int FixedLength = 18;

    private readonly ReadOnlySpan<byte> _rdata;
    private readonly int _signerLength;

    private Rrsig(ReadOnlySpan<byte> rdata, int signerLength)
    {
        _rdata = rdata;
        _signerLength = signerLength;
    }

    /// <summary>Reads the fixed fields and the signer's name; the signature may be empty (RDATA of a record being signed).</summary>
    public static bool TryRead(ReadOnlySpan<byte> rdata, out Rrsig rrsig)
    {
        rrsig = default;
        if (rdata.Length < FixedLength + 1 || !DnsName.TryMeasureWire(rdata[FixedLength..], out int signerLength, out _)) return false;
        rrsig = new Rrsig(rdata, signerLength);
        return true;
    }

    public RecordType TypeCovered => (RecordType)BinaryPrimitives.ReadUInt16BigEndian(_rdata);
    public DnssecAlgorithm Algorithm => (DnssecAlgorithm)_rdata[2];
    /// <summary>Labels of the original owner name, not counting the root nor a leading "*" (RFC 4034 §3.1.3).</summary>
    public byte Labels => _rdata[3];
    public uint OriginalTtl => BinaryPrimitives.ReadUInt32BigEndian(_rdata[4..]);
    /// <summary>Seconds since 1970 modulo 2^32 (RFC 4034 §3.1.5): compare with serial arithmetic.</summary>
    public uint Expiration => BinaryPrimitives.ReadUInt32BigEndian(_rdata[8..]);
    public uint Inception => BinaryPrimitives.ReadUInt32BigEndian(_rdata[12..]);
    public ushort KeyTag => BinaryPrimitives.ReadUInt16BigEndian(_rdata[16..]);
    /// <summary>The signer's name, uncompressed wire form, case as received.</summary>
    public ReadOnlySpan<byte> SignerName => _rdata.Slice(FixedLength, _signerLength);
    /// <summary>The RDATA up to the signature: the part covered by the signature itself (RFC 4034 §3.1.8.1).</summary>
    public ReadOnlySpan<byte> SignedFields => _rdata[..(FixedLength + _signerLength)];
    public ReadOnlySpan<byte> Signature => _rdata[(FixedLength + _signerLength)..];

    /// <summary>
    /// An RRSIG time as an absolute instant: the 32-bit value is taken within 2^31 seconds of
    /// <paramref name="now"/> (RFC 4034 §3.1.5 serial arithmetic, RFC 1982), so signatures stay
    /// readable after 2106.
    /// </summary>
    public static DateTimeOffset ToInstant(uint time, DateTimeOffset now)
    {
        long nowSeconds = now.ToUnixTimeSeconds();
        int delta = (int)(time - (uint)nowSeconds);
        return DateTimeOffset.FromUnixTimeSeconds(Math.Max(nowSeconds + delta, 0));
    }
}
