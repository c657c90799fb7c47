using System.Globalization;

namespace Portcullis.Protocol.Records.Text;

/// <summary>Mnemonic tables that presentation uses for some numeric fields.</summary>
internal static class Mnemonics
{
    // RFC 4398 §2.1 certificate types.
    private static readonly (ushort Value, string Name)[] CertTypes =
    [
        (1, "PKIX"), (2, "SPKI"), (3, "PGP"), (4, "IPKIX"), (5, "ISPKI"), (6, "IPGP"), (7, "ACPKIX"),
        (8, "IACPKIX"), (253, "URI"), (254, "OID"),
    ];

    // DNSSEC algorithm numbers (IANA registry; RFC 4034 App. A.1, RFC 5702, 6605, 8080) as BIND names them.
    private static readonly (byte Value, string Name)[] Algorithms =
    [
        (1, "RSAMD5"), (2, "DH"), (3, "DSA"), (5, "RSASHA1"), (6, "NSEC3DSA"), (7, "NSEC3RSASHA1"),
        (8, "RSASHA256"), (10, "RSASHA512"), (12, "ECCGOST"), (13, "ECDSAP256SHA256"), (14, "ECDSAP384SHA384"),
        (15, "ED25519"), (16, "ED448"), (252, "INDIRECT"), (253, "PRIVATEDNS"), (254, "PRIVATEOID"),
    ];

    // RCODEs as TSIG's error field shows them (RFC 1035, 2136, 8945 §3, 7873).
    private static readonly (ushort Value, string Name)[] Rcodes =
    [
        (0, "NOERROR"), (1, "FORMERR"), (2, "SERVFAIL"), (3, "NXDOMAIN"), (4, "NOTIMP"), (5, "REFUSED"),
        (6, "YXDOMAIN"), (7, "YXRRSET"), (8, "NXRRSET"), (9, "NOTAUTH"), (10, "NOTZONE"),
        (16, "BADSIG"), (17, "BADKEY"), (18, "BADTIME"), (19, "BADMODE"), (20, "BADNAME"), (21, "BADALG"),
        (22, "BADTRUNC"), (23, "BADCOOKIE"),
    ];

    public static string CertTypeToText(ushort value) => Lookup(CertTypes, value) ?? Numbers.ToText(value);

    public static bool TryParseCertType(string text, out ushort value) => TryParse(CertTypes, text, ushort.MaxValue, out value);

    public static string AlgorithmToText(byte value) => Lookup(Algorithms, value) ?? Numbers.ToText(value);

    public static bool TryParseAlgorithm(string text, out byte value)
    {
        bool ok = TryParse(Algorithms, text, byte.MaxValue, out ushort v);
        value = (byte)v;
        return ok;
    }

    public static string RcodeToText(ushort value) => Lookup(Rcodes, value) ?? Numbers.ToText(value);

    public static bool TryParseRcode(string text, out ushort value) => TryParse(Rcodes, text, ushort.MaxValue, out value);

    private static string? Lookup<T>((T Value, string Name)[] table, T value) where T : IEquatable<T>
    {
        foreach (var (v, name) in table) if (v.Equals(value)) return name;
        return null;
    }

    private static bool TryParse<T>((T Value, string Name)[] table, string text, ulong max, out ushort value)
        where T : IConvertible
    {
        if (Numbers.TryParseUnsigned(text, max, out ulong n)) { value = (ushort)n; return true; }
        foreach (var (v, name) in table)
        {
            if (name.Equals(text, StringComparison.OrdinalIgnoreCase))
            {
                value = v.ToUInt16(CultureInfo.InvariantCulture);
                return true;
            }
        }
        value = 0;
        return false;
    }
}
