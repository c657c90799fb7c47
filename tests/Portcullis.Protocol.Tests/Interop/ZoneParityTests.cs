
namespace Portcullis.Protocol.Tests.Interop;

/// <summary>
/// Zone files read by Portcullis and by BIND (named-compilezone, named-rrchecker) and ldns
/// (ldns-read-zone): the records must be the same in canonical wire form, and Portcullis'
/// presentation must be the tools' up to the differences listed here, each with its reason.
/// </summary>
public class ZoneParityTests
{
    /// <summary>alltypes.zone has every type RdataSchema knows (TSIG aside: a meta-type, never in a zone);
    /// syntax.zone the directives and lexical forms of RFC 1035 §5 and BIND.</summary>
    public static TheoryData<string, string> Zones => new()
    {
        { "alltypes.zone", "example.test." },
        { "syntax.zone", "syntax.test." },
    };

    private static readonly UnsupportedLine[] NotForBind =
    [
        new(@"^(md|mf)\s", "BIND 9.18 refuses the obsolete MD and MF types outright (RFC 973 replaced them with MX)"),
    ];

    private static readonly UnsupportedLine[] NotForLdns =
    [
        new(@"^\$INCLUDE\s", "ldns-read-zone 1.8.3 stops with `$INCLUDE not implemented`"),
        new(@"^\$GENERATE\s", "ldns 1.8.3 has no $GENERATE (a BIND extension)"),
        new(@"^\S+\s+IN\s+\d\w*\s", "ldns 1.8.3 wants the TTL before the class; RFC 1035 §5.1 allows either order"),
        new(@"^ta\s", "ldns 1.8.3 has no presentation parser for TA"),
        new(@"^csync2\s", "ldns 1.8.3 rejects a CSYNC whose type bitmap is empty (RFC 7477 §2.1.1 allows it)"),
    ];

    [Theory]
    [MemberData(nameof(Zones))]
    public void Records_match_named_compilezone(string file, string origin)
    {
        using var zone = new PreparedZone(file, origin, NotForBind);
        var ours = zone.ReadWithPortcullis();
        var bind = ZoneTools.ReadPrinted(ZoneTools.NamedCompilezone(zone).Stdout, "named-compilezone");
        Assert.NotEmpty(ours);
        ZoneTools.AssertSameRecordSets(ours, bind.Select(p => p.Record), "named-compilezone", file);
    }

    /// <summary>
    /// Reading BIND's output back with Portcullis could hide a mistake made the same way twice; so
    /// each record's RDATA is also compared with BIND's own wire form of it.
    /// </summary>
    [Theory]
    [MemberData(nameof(Zones))]
    public void Rdata_bytes_match_named_rrchecker(string file, string origin)
    {
        using var zone = new PreparedZone(file, origin, NotForBind);
        var failures = new List<string>();
        foreach (var printed in ZoneTools.ReadPrinted(ZoneTools.NamedCompilezone(zone).Stdout, "named-compilezone"))
        {
            var fields = ZoneTools.NormaliseSpace(printed.Line).Split(' ', 5);
            string rdata = fields.Length == 5 ? fields[4] : "";
            byte[] bind = ZoneTools.NamedRrcheckerWire(printed.Record.Class, printed.Record.Type, rdata);
            if (!bind.AsSpan().SequenceEqual(printed.Record.Data))
                failures.Add($"  {printed.Line}\n    BIND:       {Convert.ToHexString(bind)}\n    Portcullis: {Convert.ToHexString(printed.Record.Data)}");
        }
        Assert.True(failures.Count == 0, $"{file}: RDATA differs from named-rrchecker -u:\n" + string.Join('\n', failures));
    }

    [Theory]
    [MemberData(nameof(Zones))]
    public void Presentation_matches_named_compilezone(string file, string origin)
    {
        using var zone = new PreparedZone(file, origin, NotForBind);
        var printed = ZoneTools.ReadPrinted(ZoneTools.NamedCompilezone(zone).Stdout, "named-compilezone");
        Assert.NotEmpty(printed);
        PresentationDifferences.AssertSamePresentation(printed, PresentationDifferences.Bind, "named-compilezone", file);
    }

    [Theory]
    [MemberData(nameof(Zones))]
    public void Records_match_ldns_read_zone(string file, string origin)
    {
        using var zone = new PreparedZone(file, origin, NotForLdns);
        var ours = zone.ReadWithPortcullis();
        // -U NULL prints every record in RFC 3597 form: ldns' own RDATA bytes, read here without Portcullis' parser.
        var ldns = ZoneTools.ReadUnknownFormat(ZoneTools.LdnsReadZone(zone, unknownFormat: true).Stdout);
        Assert.NotEmpty(ours);
        ZoneTools.AssertSameRecordSets(ours, ldns, "ldns-read-zone", file);
    }

    [Theory]
    [MemberData(nameof(Zones))]
    public void Presentation_matches_ldns_read_zone(string file, string origin)
    {
        using var zone = new PreparedZone(file, origin, NotForLdns);
        var printed = ZoneTools.ReadPrinted(ZoneTools.LdnsReadZone(zone).Stdout, "ldns-read-zone");
        Assert.NotEmpty(printed);
        PresentationDifferences.AssertSamePresentation(printed, PresentationDifferences.Ldns, "ldns-read-zone", file);
    }
}
