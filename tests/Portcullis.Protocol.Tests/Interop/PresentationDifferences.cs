using System.Globalization;
using System.Text.RegularExpressions;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.ZoneText;

namespace Portcullis.Protocol.Tests.Interop;

/// <summary>
/// Where Portcullis' presentation format may differ from BIND's (named-compilezone, dig) and
/// ldns' without the data differing: each difference is listed with the types it applies to and
/// why. Anything not listed fails the presentation tests.
/// </summary>
public static class PresentationDifferences
{
    /// <summary>How many RDATA fields come before a trailing base64 or hex field, per type.</summary>
    private static readonly Dictionary<RecordType, int> FieldsBeforeBinaryTail = new()
    {
        [RecordType.DS] = 3, [RecordType.CDS] = 3, [RecordType.TA] = 3, [RecordType.DLV] = 3,
        [RecordType.DNSKEY] = 3, [RecordType.CDNSKEY] = 3, [RecordType.KEY] = 3,
        [RecordType.RRSIG] = 8, [RecordType.SIG] = 8, [RecordType.CERT] = 3, [RecordType.IPSECKEY] = 4,
        [RecordType.SSHFP] = 2, [RecordType.TLSA] = 3, [RecordType.SMIMEA] = 3, [RecordType.ZONEMD] = 3,
        [RecordType.OPENPGPKEY] = 0, [RecordType.DHCID] = 0,
    };

    /// <summary>A formatting difference that is not a difference in data, for the types it applies to.</summary>
    public sealed record AllowedDifference(string Why, Func<RecordType, bool> AppliesTo, Func<RecordType, string, string> NormaliseRdata);

    public static readonly AllowedDifference[] Bind =
    [
        new("named-compilezone breaks base64 and hex into 56-character chunks separated by spaces",
            t => FieldsBeforeBinaryTail.ContainsKey(t), JoinBinaryTail),
        new("BIND 9.18 predates dohpath (RFC 9461) and prints it in the generic key7 form",
            t => t is RecordType.SVCB or RecordType.HTTPS, (_, r) => r.Replace("dohpath=", "key7=", StringComparison.Ordinal)),
    ];

    public static readonly AllowedDifference[] Ldns =
    [
        new("ldns prints hex (and NSEC3's base32hex) in lower case; both are case-insensitive (RFC 4648 §8, RFC 5155 §3.3)",
            t => t is RecordType.DS or RecordType.CDS or RecordType.DLV or RecordType.SSHFP or RecordType.TLSA
                or RecordType.SMIMEA or RecordType.ZONEMD or RecordType.NSEC3 or RecordType.NSEC3PARAM
                || RdataSchema.Get(t) is null,
            (_, r) => r.ToLowerInvariant()),
        new("ldns pads LOC degrees and minutes to two digits, drops zero fractions of metres, and gives 0° a S/W hemisphere",
            t => t == RecordType.LOC, NormaliseLoc),
        new("ldns leaves SvcParam values unquoted; RFC 9460 §2.1 makes the quotes optional",
            t => t is RecordType.SVCB or RecordType.HTTPS, (_, r) => Regex.Replace(r, "=\"([^\" ]*)\"", "=$1")),
        new("ldns prints the CERT algorithm as a number; RFC 4398 §2.2 allows the mnemonic",
            t => t == RecordType.CERT, NormaliseCertAlgorithm),
    ];

    /// <summary>
    /// Portcullis' line for each record the tool printed (ZoneWriter.ToLine of the record read from
    /// the tool's line) must be the tool's line after whitespace is normalised, or differ only in a
    /// way listed in <paramref name="allowed"/>.
    /// </summary>
    public static void AssertSamePresentation(List<PrintedRecord> printed, AllowedDifference[] allowed, string tool, string file)
    {
        var failures = new List<string>();
        foreach (var p in printed)
        {
            string ours = ZoneTools.NormaliseSpace(ZoneWriter.ToLine(p.Record));
            // ldns appends key ids to DNSKEYs as a comment; comments are not data.
            string theirs = ZoneTools.NormaliseSpace(Regex.Replace(p.Line, @";\{[^}]*\}\s*$", ""));
            if (ours == theirs) continue;
            var (ourHead, ourRdata) = SplitRdata(ours);
            var (theirHead, theirRdata) = SplitRdata(theirs);
            bool explained = ourHead == theirHead && allowed.Any(a =>
                a.AppliesTo(p.Record.Type) && a.NormaliseRdata(p.Record.Type, ourRdata) == a.NormaliseRdata(p.Record.Type, theirRdata));
            if (!explained) failures.Add($"  {tool}:   {theirs}\n  Portcullis: {ours}");
        }
        Assert.True(failures.Count == 0, $"{file}: presentation differs from {tool} in ways not listed as allowed:\n" + string.Join('\n', failures));
    }

    /// <summary>"owner ttl class type" and the RDATA text.</summary>
    private static (string Head, string Rdata) SplitRdata(string line)
    {
        var parts = line.Split(' ', 5);
        return (string.Join(' ', parts.Take(4)), parts.Length == 5 ? parts[4] : "");
    }

    private static string JoinBinaryTail(RecordType type, string rdata)
    {
        var tokens = rdata.Split(' ');
        int keep = Math.Min(FieldsBeforeBinaryTail[type], tokens.Length);
        return string.Join(' ', tokens.Take(keep)) + " " + string.Concat(tokens.Skip(keep));
    }

    private static string NormaliseLoc(RecordType type, string rdata)
    {
        var tokens = rdata.Split(' ').ToList();
        // d [m [s]] N|S d [m [s]] E|W alt [siz [hp [vp]]]: numbers canonical, and no hemisphere for 0°.
        for (int i = 0; i < tokens.Count; i++)
        {
            string t = tokens[i];
            bool metres = t.EndsWith('m');
            string number = metres ? t[..^1] : t;
            if (decimal.TryParse(number, NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var value))
                tokens[i] = value.ToString("0.###", CultureInfo.InvariantCulture) + (metres ? "m" : "");
        }
        for (int i = 0; i < tokens.Count; i++)
        {
            if (tokens[i] is "N" or "S" or "E" or "W" && i >= 3 && tokens[i - 1] == "0" && tokens[i - 2] == "0" && tokens[i - 3] == "0")
                tokens[i] = "N|S|E|W-of-zero";
        }
        return string.Join(' ', tokens);
    }

    private static string NormaliseCertAlgorithm(RecordType type, string rdata)
    {
        var tokens = rdata.Split(' ');
        if (tokens.Length < 3) return rdata;
        // RFC 4034 Appendix A.1 mnemonics for the algorithms used in the test data.
        tokens[2] = tokens[2] switch { "RSASHA256" => "8", "PRIVATEDNS" => "253", "PRIVATEOID" => "254", _ => tokens[2] };
        return string.Join(' ', tokens);
    }
}
