using Portcullis.Protocol.ZoneText;
using static Portcullis.Protocol.Tests.ZoneText.ZoneTestText;

namespace Portcullis.Protocol.Tests.ZoneText;

public class ZoneCheckerTests
{
    private const string Apex = "$TTL 1h\n@ SOA ns1 hostmaster 7 2h 30m 2w 5m\n  NS ns1\nns1 A 192.0.2.1\n";

    private static ZoneCheckResult Check(string zone)
    {
        using var reader = new ZoneReader(new StringReader(zone), Origin, "z.zone", new ZoneReaderOptions { CollectErrors = true });
        return ZoneChecker.Check(reader, Origin, file: "z.zone");
    }

    private static string[] Problems(string zone) => Check(zone).Errors.Select(e => e.Message).ToArray();

    [Fact]
    public void A_good_zone_has_its_serial_records_and_names()
    {
        var result = Check(Apex + "www A 192.0.2.2\nwww AAAA 2001:db8::2\nwww A 192.0.2.2\n");
        Assert.True(result.Ok, string.Join("\n", result.Errors.Select(e => e.Message)));
        Assert.Equal(7u, result.Serial);
        Assert.Equal(5, result.Records.Count); // the repeated www A counts once
        Assert.Equal(3, result.NameCount);
        Assert.Equal("example.test/IN", result.ZoneLabel);
    }

    [Fact]
    public void Out_of_zone_data_is_an_error_at_its_line() =>
        Assert.Equal(["z.zone:5:1: out-of-zone data: 'www.example.net.' is not in zone 'example.test.'"],
            Problems(Apex + "www.example.net. A 192.0.2.2\n"));

    [Fact]
    public void A_zone_needs_one_soa_at_the_apex_and_ns_records() =>
        Assert.Equal(
        [
            "z.zone:1:1: no SOA record at the zone apex 'example.test.'",
            "z.zone:1:1: no NS records at the zone apex 'example.test.'",
        ], Problems("$TTL 1\nwww A 192.0.2.1\n"));

    [Fact]
    public void A_second_soa_or_one_below_the_apex_is_an_error() =>
        Assert.Equal(
        [
            "z.zone:5:1: more than one SOA record at the zone apex (the first is at z.zone:2:1)",
            "z.zone:6:1: SOA record for 'sub.example.test.' is not at the zone apex 'example.test.'",
        ], Problems(Apex + "@ SOA ns2 hostmaster 8 2h 30m 2w 5m\nsub SOA ns1 hostmaster 1 2 3 4 5\n"));

    [Fact]
    public void A_cname_with_other_data_is_an_error_but_rrsig_and_nsec_may_stand_beside_it()
    {
        Assert.Equal(
            ["z.zone:6:1: 'www.example.test.' has a CNAME and other data (A); only RRSIG and NSEC may stand beside a CNAME (RFC 2181 §10.1)"],
            Problems(Apex + "www CNAME ns1\nwww A 192.0.2.9\n"));
        Assert.True(Check(Apex + "www CNAME ns1\nwww NSEC ns1 CNAME RRSIG NSEC\n").Ok);
    }

    [Fact]
    public void Two_cnames_at_one_name_are_an_error() =>
        Assert.Equal(["z.zone:6:1: more than one CNAME record at 'www.example.test.' (the first is at z.zone:5:1)"],
            Problems(Apex + "www CNAME ns1\nwww CNAME ns2\n"));

    [Fact]
    public void Ttls_in_one_rrset_are_made_equal_with_a_warning()
    {
        var result = Check(Apex + "www 60 A 192.0.2.1\nwww 120 A 192.0.2.2\n");
        Assert.True(result.Ok);
        Assert.Equal([60u, 60u], result.Records.Where(r => r.Owner.ToString() == "www.example.test.").Select(r => r.Ttl));
        Assert.Contains(result.Warnings, w => w.Position.Line == 6 && w.Problem.Contains("RFC 2181 §5.2"));
    }

    [Fact]
    public void Syntax_errors_come_first_then_content_errors()
    {
        var problems = Problems(Apex + "bad XYZ\nother.example.net. A 192.0.2.1\n");
        Assert.Equal(2, problems.Length);
        Assert.StartsWith("z.zone:5:5: expected a TTL, class or type", problems[0]);
        Assert.StartsWith("z.zone:6:1: out-of-zone data", problems[1]);
    }

    [Fact]
    public void An_in_zone_apex_name_server_without_an_address_is_an_error_as_in_named_checkzone() =>
        Assert.Equal(["z.zone:3:3: example.test./NS 'ns2.example.test.' has no address records (A or AAAA)"],
            Problems("$TTL 1h\n@ SOA ns1 hostmaster 7 2h 30m 2w 5m\n  NS ns2\nns1 A 192.0.2.1\n"));

    [Fact]
    public void Other_targets_without_addresses_are_warnings()
    {
        var result = Check(Apex + "@ MX 10 mail\nsub NS ns.sub\n_x._tcp SRV 0 0 1 ns1\n");
        Assert.True(result.Ok);
        Assert.Equal(
        [
            "z.zone:5:1: warning: example.test./MX 'mail.example.test.' has no address records (A or AAAA)",
            "z.zone:6:1: warning: sub.example.test./NS 'ns.sub.example.test.' has no address records (A or AAAA)",
        ], result.Warnings.Select(w => w.ToString()));
    }

    [Fact]
    public void A_wildcard_address_covers_a_target_that_does_not_exist_but_not_an_empty_non_terminal()
    {
        var result = Check(Apex + "* A 192.0.2.99\n@ MX 10 mail\na.b A 192.0.2.7\n@ MX 20 b\n");
        Assert.Equal(["z.zone:8:1: warning: example.test./MX 'b.example.test.' has no address records (A or AAAA)"],
            result.Warnings.Select(w => w.ToString()));
    }

    [Fact]
    public void Findings_are_bounded_on_a_hostile_zone()
    {
        var zone = Apex + string.Concat(Enumerable.Range(0, 5000).Select(i => $"h{i}.example.net. A 192.0.2.1\n"));
        var result = Check(zone);
        Assert.Equal(1001, result.Errors.Count);
        Assert.Equal("4000 more errors not shown", result.Errors[^1].Problem);
    }
}
