using System.Globalization;

namespace Portcullis.Protocol.Messages;

/// <summary>EDNS(0) option codes (IANA "DNS EDNS0 Option Codes (OPT)"); any ushort is valid on the wire.</summary>
public enum EdnsOptionCode : ushort
{
    Llq = 1,
    UpdateLease = 2,
    /// <summary>Name server identifier, RFC 5001.</summary>
    Nsid = 3,
    Dau = 5,
    Dhu = 6,
    N3u = 7,
    /// <summary>EDNS Client Subnet, RFC 7871.</summary>
    ClientSubnet = 8,
    Expire = 9,
    /// <summary>DNS Cookies, RFC 7873.</summary>
    Cookie = 10,
    /// <summary>edns-tcp-keepalive, RFC 7828.</summary>
    TcpKeepalive = 11,
    /// <summary>Padding, RFC 7830.</summary>
    Padding = 12,
    Chain = 13,
    KeyTag = 14,
    /// <summary>Extended DNS Errors, RFC 8914.</summary>
    ExtendedDnsError = 15,
    ReportChannel = 18,
    ZoneVersion = 19,
}

/// <summary>Extended DNS Error INFO-CODEs (RFC 8914 §4 and the IANA registry).</summary>
public enum ExtendedDnsErrorCode : ushort
{
    Other = 0,
    UnsupportedDnskeyAlgorithm = 1,
    UnsupportedDsDigestType = 2,
    StaleAnswer = 3,
    ForgedAnswer = 4,
    DnssecIndeterminate = 5,
    DnssecBogus = 6,
    SignatureExpired = 7,
    SignatureNotYetValid = 8,
    DnskeyMissing = 9,
    RrsigsMissing = 10,
    NoZoneKeyBitSet = 11,
    NsecMissing = 12,
    CachedError = 13,
    NotReady = 14,
    Blocked = 15,
    Censored = 16,
    Filtered = 17,
    Prohibited = 18,
    StaleNxdomainAnswer = 19,
    NotAuthoritative = 20,
    NotSupported = 21,
    NoReachableAuthority = 22,
    NetworkError = 23,
    InvalidData = 24,
    SignatureExpiredBeforeValid = 25,
    TooEarly = 26,
    UnsupportedNsec3IterationsValue = 27,
    UnableToConformToPolicy = 28,
    Synthesized = 29,
}

public static class ExtendedDnsErrors
{
    /// <summary>The registry's name for a code ("Stale Answer"), or "Unknown Error 1234".</summary>
    public static string ToText(ExtendedDnsErrorCode code) => code switch
    {
        ExtendedDnsErrorCode.Other => "Other Error",
        ExtendedDnsErrorCode.UnsupportedDnskeyAlgorithm => "Unsupported DNSKEY Algorithm",
        ExtendedDnsErrorCode.UnsupportedDsDigestType => "Unsupported DS Digest Type",
        ExtendedDnsErrorCode.StaleAnswer => "Stale Answer",
        ExtendedDnsErrorCode.ForgedAnswer => "Forged Answer",
        ExtendedDnsErrorCode.DnssecIndeterminate => "DNSSEC Indeterminate",
        ExtendedDnsErrorCode.DnssecBogus => "DNSSEC Bogus",
        ExtendedDnsErrorCode.SignatureExpired => "Signature Expired",
        ExtendedDnsErrorCode.SignatureNotYetValid => "Signature Not Yet Valid",
        ExtendedDnsErrorCode.DnskeyMissing => "DNSKEY Missing",
        ExtendedDnsErrorCode.RrsigsMissing => "RRSIGs Missing",
        ExtendedDnsErrorCode.NoZoneKeyBitSet => "No Zone Key Bit Set",
        ExtendedDnsErrorCode.NsecMissing => "NSEC Missing",
        ExtendedDnsErrorCode.CachedError => "Cached Error",
        ExtendedDnsErrorCode.NotReady => "Not Ready",
        ExtendedDnsErrorCode.Blocked => "Blocked",
        ExtendedDnsErrorCode.Censored => "Censored",
        ExtendedDnsErrorCode.Filtered => "Filtered",
        ExtendedDnsErrorCode.Prohibited => "Prohibited",
        ExtendedDnsErrorCode.StaleNxdomainAnswer => "Stale NXDOMAIN Answer",
        ExtendedDnsErrorCode.NotAuthoritative => "Not Authoritative",
        ExtendedDnsErrorCode.NotSupported => "Not Supported",
        ExtendedDnsErrorCode.NoReachableAuthority => "No Reachable Authority",
        ExtendedDnsErrorCode.NetworkError => "Network Error",
        ExtendedDnsErrorCode.InvalidData => "Invalid Data",
        ExtendedDnsErrorCode.SignatureExpiredBeforeValid => "Signature Expired before Valid",
        ExtendedDnsErrorCode.TooEarly => "Too Early",
        ExtendedDnsErrorCode.UnsupportedNsec3IterationsValue => "Unsupported NSEC3 Iterations Value",
        ExtendedDnsErrorCode.UnableToConformToPolicy => "Unable to conform to policy",
        ExtendedDnsErrorCode.Synthesized => "Synthesized",
        _ => "Unknown Error " + ((ushort)code).ToString(CultureInfo.InvariantCulture),
    };
}
