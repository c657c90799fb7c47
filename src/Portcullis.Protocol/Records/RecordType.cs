using System.Globalization;

namespace Portcullis.Protocol.Records;

/// <summary>RR TYPE values (IANA "Resource Record (RR) TYPEs"); any ushort is valid on the wire.</summary>
public enum RecordType : ushort
{
    A = 1, NS = 2, MD = 3, MF = 4, CNAME = 5, SOA = 6, MB = 7, MG = 8, MR = 9, NULL = 10, WKS = 11,
    PTR = 12, HINFO = 13, MINFO = 14, MX = 15, TXT = 16, RP = 17, AFSDB = 18, X25 = 19, ISDN = 20,
    RT = 21, NSAP = 22, SIG = 24, KEY = 25, PX = 26, GPOS = 27, AAAA = 28, LOC = 29, NXT = 30,
    SRV = 33, NAPTR = 35, KX = 36, CERT = 37, A6 = 38, DNAME = 39, OPT = 41, APL = 42, DS = 43,
    SSHFP = 44, IPSECKEY = 45, RRSIG = 46, NSEC = 47, DNSKEY = 48, DHCID = 49, NSEC3 = 50,
    NSEC3PARAM = 51, TLSA = 52, SMIMEA = 53, HIP = 55, CDS = 59, CDNSKEY = 60, OPENPGPKEY = 61,
    CSYNC = 62, ZONEMD = 63, SVCB = 64, HTTPS = 65, DSYNC = 66, HHIT = 67, BRID = 68, SPF = 99, UINFO = 100,
    UID = 101, GID = 102, UNSPEC = 103, NID = 104, L32 = 105, L64 = 106,
    LP = 107, EUI48 = 108, EUI64 = 109, TKEY = 249, TSIG = 250, IXFR = 251, AXFR = 252,
    MAILB = 253, MAILA = 254, ANY = 255, URI = 256, CAA = 257, AVC = 258, DOA = 259, AMTRELAY = 260,
    TA = 32768, DLV = 32769,
}

/// <summary>Mnemonics of record types, with the RFC 3597 <c>TYPEnnn</c> form for the rest.</summary>
public static class RecordTypes
{
    // A plain dictionary: building a frozen one analyses the keys, which cost a start-up ~25 ms
    // for a table that answers a few lookups per zone line either way.
    private static readonly string?[] Names = new string?[65536];
    private static readonly Dictionary<string, RecordType> ByName = new(StringComparer.OrdinalIgnoreCase);
    private static readonly Dictionary<string, RecordType>.AlternateLookup<ReadOnlySpan<char>> ByNameSpan;

    static RecordTypes()
    {
        foreach (var t in Enum.GetValues<RecordType>())
        {
            string name = t.ToString();
            Names[(ushort)t] = name;
            ByName.TryAdd(name, t);
        }
        ByNameSpan = ByName.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    /// <summary>The mnemonic ("AAAA") or "TYPE65280" for types without one.</summary>
    public static string ToText(RecordType type) =>
        Names[(ushort)type] ?? "TYPE" + ((ushort)type).ToString(CultureInfo.InvariantCulture);

    /// <summary>Accepts a mnemonic (any case) or TYPEnnn.</summary>
    public static bool TryParse(ReadOnlySpan<char> text, out RecordType type)
    {
        if (ByNameSpan.TryGetValue(text, out type)) return true;
        if (text.Length > 4 && text[..4].Equals("TYPE", StringComparison.OrdinalIgnoreCase)
            && ushort.TryParse(text[4..], NumberStyles.None, CultureInfo.InvariantCulture, out ushort v))
        {
            type = (RecordType)v;
            return true;
        }
        type = default;
        return false;
    }

    /// <summary>Meta-types and QTYPEs (RFC 6895 §3.1) that never appear as data in a zone.</summary>
    public static bool IsMetaType(RecordType type) =>
        type is RecordType.OPT or RecordType.TKEY or RecordType.TSIG or RecordType.IXFR or RecordType.AXFR
            or RecordType.MAILA or RecordType.MAILB or RecordType.ANY
        || ((ushort)type >= 128 && (ushort)type <= 255);
}
