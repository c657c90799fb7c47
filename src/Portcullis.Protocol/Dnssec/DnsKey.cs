using System.Buffers.Binary;

namespace Portcullis.Protocol.Dnssec;

/// <summary>
/// Reading DNSKEY (and CDNSKEY, KEY) RDATA (RFC 4034 §2.1): flags, protocol, algorithm, public key,
/// and the key tag of Appendix B. Every method works on the RDATA span, so a validator holding a
/// DNSKEY RRset in wire form needs no copy.
/// </summary>
public static class DnsKey
{
    /// <summary>Bit 7 of the flags: the key is a zone key (RFC 4034 §2.1.1); only zone keys verify RRSIGs.</summary>
    public const ushort ZoneKeyFlag = 0x0100;
    /// <summary>Bit 15: Secure Entry Point, by convention the KSK (RFC 4034 §2.1.1, RFC 3757).</summary>
    public const ushort SecureEntryPointFlag = 0x0001;
    /// <summary>Bit 8: revoked (RFC 5011 §7).</summary>
    public const ushort RevokeFlag = 0x0080;
    /// <summary>RFC 4034 §2.1.2: the protocol field MUST be 3.</summary>
    public const byte Protocol = 3;

    /// <summary>Flags, protocol, algorithm and at least one octet of key.</summary>
    public static bool IsWellFormed(ReadOnlySpan<byte> rdata) => rdata.Length > 4;

    public static ushort Flags(ReadOnlySpan<byte> rdata) => BinaryPrimitives.ReadUInt16BigEndian(rdata);

    public static byte ProtocolField(ReadOnlySpan<byte> rdata) => rdata[2];

    public static DnssecAlgorithm Algorithm(ReadOnlySpan<byte> rdata) => (DnssecAlgorithm)rdata[3];

    public static ReadOnlySpan<byte> PublicKey(ReadOnlySpan<byte> rdata) => rdata[4..];

    public static bool IsZoneKey(ReadOnlySpan<byte> rdata) => (Flags(rdata) & ZoneKeyFlag) != 0;

    public static bool IsSecureEntryPoint(ReadOnlySpan<byte> rdata) => (Flags(rdata) & SecureEntryPointFlag) != 0;

    public static bool IsRevoked(ReadOnlySpan<byte> rdata) => (Flags(rdata) & RevokeFlag) != 0;

    /// <summary>
    /// The key tag (RFC 4034 Appendix B): a 16-bit ones'-complement-style checksum of the whole
    /// RDATA, except for algorithm 1 (RSA/MD5, Appendix B.1), whose tag is the most significant 16
    /// of the least significant 24 bits of the modulus, i.e. the third- and second-last octets.
    /// </summary>
    public static ushort KeyTag(ReadOnlySpan<byte> rdata)
    {
        if (rdata.Length >= 4 && rdata[3] == (byte)DnssecAlgorithm.RsaMd5)
            return rdata.Length < 7 ? (ushort)0 : (ushort)((rdata[^3] << 8) | rdata[^2]);
        uint ac = 0;
        for (int i = 0; i < rdata.Length; i++)
            ac += (i & 1) != 0 ? rdata[i] : (uint)rdata[i] << 8;
        ac += (ac >> 16) & 0xFFFF;
        return (ushort)(ac & 0xFFFF);
    }

    /// <summary>"KSK" for a key with the SEP flag, "ZSK" for another zone key, "not a zone key" otherwise; "revoked" added.</summary>
    public static string Role(ReadOnlySpan<byte> rdata)
    {
        string role = !IsZoneKey(rdata) ? "not a zone key" : IsSecureEntryPoint(rdata) ? "KSK" : "ZSK";
        return IsRevoked(rdata) ? role + ", revoked" : role;
    }
}
