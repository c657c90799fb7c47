using static Portcullis.Protocol.Records.RdataField;

namespace Portcullis.Protocol.Records;

/// <summary>The field layout of every record type that has one; other types are opaque (RFC 3597).</summary>
public static class RdataSchema
{
    private static readonly RdataField[]?[] Table = Build();

    /// <summary>The fields of <paramref name="type"/>, or null when the type is handled as unknown.</summary>
    public static RdataField[]? Get(RecordType type) => Table[(ushort)type];

    private static RdataField[]?[] Build()
    {
        var t = new RdataField[]?[65536];
        void Set(RecordType type, params RdataField[] fields) => t[(ushort)type] = fields;

        Set(RecordType.A, IPv4);
        Set(RecordType.NS, CompressibleName);
        Set(RecordType.MD, CompressibleName);
        Set(RecordType.MF, CompressibleName);
        Set(RecordType.CNAME, CompressibleName);
        Set(RecordType.SOA, CompressibleName, CompressibleName, U32, Interval32, Interval32, Interval32, Interval32);
        Set(RecordType.MB, CompressibleName);
        Set(RecordType.MG, CompressibleName);
        Set(RecordType.MR, CompressibleName);
        Set(RecordType.PTR, CompressibleName);
        Set(RecordType.HINFO, CharString, CharString);
        Set(RecordType.MINFO, CompressibleName, CompressibleName);
        Set(RecordType.MX, U16, CompressibleName);
        Set(RecordType.TXT, CharStrings);
        Set(RecordType.RP, Name, Name);
        Set(RecordType.AFSDB, U16, Name);
        Set(RecordType.RT, U16, Name);
        Set(RecordType.PX, U16, Name, Name);
        Set(RecordType.AAAA, IPv6);
        Set(RecordType.LOC, Loc);
        Set(RecordType.SRV, U16, U16, U16, Name);
        Set(RecordType.NAPTR, U16, U16, CharString, CharString, CharString, Name);
        Set(RecordType.KX, U16, Name);
        Set(RecordType.CERT, CertType, U16, U8, Base64Rest);
        Set(RecordType.DNAME, Name);
        Set(RecordType.DS, U16, U8, U8, HexRest);
        Set(RecordType.CDS, U16, U8, U8, HexRest);
        Set(RecordType.TA, U16, U8, U8, HexRest);
        Set(RecordType.DLV, U16, U8, U8, HexRest);
        Set(RecordType.SSHFP, U8, U8, HexRest);
        Set(RecordType.IPSECKEY, U8, U8, U8, IpseckeyGateway, Base64Rest);
        Set(RecordType.RRSIG, CoveredType, U8, U8, U32, Time32, Time32, U16, Name, Base64Rest);
        Set(RecordType.SIG, CoveredType, U8, U8, U32, Time32, Time32, U16, Name, Base64Rest);
        Set(RecordType.NSEC, Name, TypeBitmap);
        Set(RecordType.DNSKEY, U16, U8, U8, Base64Rest);
        Set(RecordType.CDNSKEY, U16, U8, U8, Base64Rest);
        Set(RecordType.KEY, U16, U8, U8, Base64Rest);
        Set(RecordType.DHCID, Base64Rest);
        Set(RecordType.NSEC3, U8, U8, U16, HexU8, Base32U8, TypeBitmap);
        Set(RecordType.NSEC3PARAM, U8, U8, U16, HexU8);
        Set(RecordType.TLSA, U8, U8, U8, HexRest);
        Set(RecordType.SMIMEA, U8, U8, U8, HexRest);
        Set(RecordType.OPENPGPKEY, Base64Rest);
        Set(RecordType.CSYNC, U32, U16, TypeBitmap);
        Set(RecordType.ZONEMD, U32, U8, U8, HexRest);
        Set(RecordType.SVCB, U16, Name, SvcParams);
        Set(RecordType.HTTPS, U16, Name, SvcParams);
        Set(RecordType.SPF, CharStrings);
        Set(RecordType.EUI48, Eui48);
        Set(RecordType.EUI64, Eui64);
        Set(RecordType.URI, U16, U16, TextRest);
        Set(RecordType.CAA, U8, CaaTag, TextRest);
        Set(RecordType.TSIG, Name, Time48, U16, Base64U16, U16, U16, Base64U16);
        return t;
    }

    /// <summary>
    /// Types whose RDATA names are lowered in canonical form (RFC 4034 §6.2 as corrected by
    /// RFC 6840 §5.1: NSEC and HINFO are not on the list).
    /// </summary>
    public static bool LowersNamesInCanonicalForm(RecordType type) => type switch
    {
        RecordType.NS or RecordType.MD or RecordType.MF or RecordType.CNAME or RecordType.SOA
            or RecordType.MB or RecordType.MG or RecordType.MR or RecordType.PTR or RecordType.MINFO
            or RecordType.MX or RecordType.RP or RecordType.AFSDB or RecordType.RT or RecordType.SIG
            or RecordType.PX or RecordType.NXT or RecordType.NAPTR or RecordType.KX or RecordType.SRV
            or RecordType.DNAME or RecordType.A6 or RecordType.RRSIG => true,
        _ => false,
    };
}
