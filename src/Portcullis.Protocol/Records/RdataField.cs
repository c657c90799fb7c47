namespace Portcullis.Protocol.Records;

/// <summary>
/// The kinds of field RDATA is made of. Each record type is a row of these (see
/// <see cref="RdataSchema"/>); the wire codec (<see cref="RdataWire"/>) and the presentation codec
/// (<see cref="RdataText"/>) are written once per kind, not once per type.
/// </summary>
public enum RdataField : byte
{
    /// <summary>8-bit unsigned integer.</summary>
    U8,
    /// <summary>16-bit unsigned integer.</summary>
    U16,
    /// <summary>32-bit unsigned integer.</summary>
    U32,
    /// <summary>32-bit time interval (SOA timers): numbers, or TTL units such as 1h30m in zone files.</summary>
    Interval32,
    /// <summary>48-bit seconds since the epoch (TSIG time signed).</summary>
    Time48,
    /// <summary>32-bit RRSIG time: YYYYMMDDHHmmSS or seconds (RFC 4034 §3.2), serial arithmetic.</summary>
    Time32,
    /// <summary>16-bit record type shown as a mnemonic (RRSIG type covered).</summary>
    CoveredType,
    /// <summary>4-octet IPv4 address.</summary>
    IPv4,
    /// <summary>16-octet IPv6 address.</summary>
    IPv6,
    /// <summary>Domain name that may be compressed on write (RFC 1035 types, RFC 3597 §4).</summary>
    CompressibleName,
    /// <summary>Domain name never compressed on write.</summary>
    Name,
    /// <summary>One &lt;character-string&gt;: length octet and up to 255 octets.</summary>
    CharString,
    /// <summary>One or more &lt;character-string&gt;s to the end of RDATA (TXT, SPF).</summary>
    CharStrings,
    /// <summary>Octets to the end of RDATA, shown as base64 (may be empty for some types).</summary>
    Base64Rest,
    /// <summary>Octets to the end of RDATA, shown as hex.</summary>
    HexRest,
    /// <summary>Length octet then octets, shown as hex ("-" when empty): NSEC3 salt.</summary>
    HexU8,
    /// <summary>Length octet then octets, shown as base32hex without padding: NSEC3 next hashed owner.</summary>
    Base32U8,
    /// <summary>16-bit length then octets, shown as base64 (TSIG MAC and other data).</summary>
    Base64U16,
    /// <summary>NSEC type bitmap windows to the end of RDATA (RFC 4034 §4.1.2).</summary>
    TypeBitmap,
    /// <summary>48-bit EUI shown as xx-xx-xx-xx-xx-xx (RFC 7043).</summary>
    Eui48,
    /// <summary>64-bit EUI shown as xx-xx-xx-xx-xx-xx-xx-xx.</summary>
    Eui64,
    /// <summary>Octets to the end of RDATA shown as one quoted string (URI target, CAA value).</summary>
    TextRest,
    /// <summary>CAA tag: length octet and 1..255 alphanumeric octets, shown bare.</summary>
    CaaTag,
    /// <summary>CERT type: 16 bits, shown as mnemonic (PKIX, PGP, ...) or number.</summary>
    CertType,
    /// <summary>IPSECKEY gateway, whose form depends on the preceding gateway-type octet.</summary>
    IpseckeyGateway,
    /// <summary>The whole LOC RDATA (RFC 1876), 16 octets.</summary>
    Loc,
    /// <summary>SVCB/HTTPS SvcParams to the end of RDATA (RFC 9460).</summary>
    SvcParams,
}
