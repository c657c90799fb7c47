using Portcullis.Protocol.ZoneText;
using static Portcullis.Protocol.Tests.ZoneText.ZoneTestText;

namespace Portcullis.Protocol.Tests.ZoneText;

public class ZoneWriterTests
{
    [Fact]
    public void A_line_is_owner_ttl_class_type_and_rdata_separated_by_tabs()
    {
        var r = Assert.Single(ReadAll("$TTL 60\nwww A 192.0.2.1\n"));
        Assert.Equal("www.example.test.\t60\tIN\tA\t192.0.2.1", ZoneWriter.ToLine(r));
    }

    [Fact]
    public void Empty_rdata_ends_the_line_after_the_type()
    {
        var r = Assert.Single(ReadAll("$TTL 60\nx TYPE65000 \\# 0\n"));
        Assert.Equal("x.example.test.\t60\tIN\tTYPE65000\t\\# 0", ZoneWriter.ToLine(r));
    }

    [Fact]
    public void Canonical_order_is_named_compilezones()
    {
        // Order checked against named-compilezone -s full for the same zone.
        const string zone = """
            $TTL 1
            x CAA 0 issue "x"
            x TXT "t"
            x AAAA ::1
            x A 1.1.1.1
            x NS a
            Zed TYPE65280 \# 2 abcd
            a.b.ent A 192.0.2.7
            _sip._tcp SRV 10 60 5060 sip
            * A 192.0.2.99
            @ MX 10 mail
            @ NS ns2
            @ NS ns1
            @ SOA ns1 hostmaster 1 2 3 4 5
            @ A 192.0.2.80
            """;
        var sorted = ZoneWriter.SortCanonical(ReadAll(zone)).Select(Line);
        Assert.Equal(
        [
            "example.test. 1 IN SOA ns1.example.test. hostmaster.example.test. 1 2 3 4 5",
            "example.test. 1 IN NS ns1.example.test.",
            "example.test. 1 IN NS ns2.example.test.",
            "example.test. 1 IN A 192.0.2.80",
            "example.test. 1 IN MX 10 mail.example.test.",
            "*.example.test. 1 IN A 192.0.2.99",
            "_sip._tcp.example.test. 1 IN SRV 10 60 5060 sip.example.test.",
            "a.b.ent.example.test. 1 IN A 192.0.2.7",
            "x.example.test. 1 IN NS a.example.test.",
            "x.example.test. 1 IN A 1.1.1.1",
            "x.example.test. 1 IN TXT \"t\"",
            "x.example.test. 1 IN AAAA ::1",
            "x.example.test. 1 IN CAA 0 issue \"x\"",
            @"Zed.example.test. 1 IN TYPE65280 \# 2 ABCD",
        ], sorted);
    }

    [Fact]
    public void Sorting_drops_duplicates_that_differ_only_in_name_case()
    {
        var records = ReadAll("$TTL 1\nwww A 192.0.2.1\nWWW A 192.0.2.1\nwww A 192.0.2.2\nx CNAME a.example.\nx CNAME A.EXAMPLE.\n");
        Assert.Equal(3, ZoneWriter.SortCanonical(records).Count);
    }

    [Fact]
    public void Written_zone_reads_back_to_the_same_records()
    {
        const string zone = """
            $TTL 1h
            @ SOA ns1 hostmaster ( 2024010101 2h 30m 2w 5m )
              NS ns1
            ns1 A 192.0.2.1
            t TXT "a b;c" "\"quoted\"" "back\\slash"
            e\.scaped A 192.0.2.2
            u TYPE65280 \# 3 010203
            """;
        var records = ReadAll(zone);
        var text = new StringWriter();
        ZoneWriter.Write(text, records);
        var again = ReadAll(text.ToString());
        Assert.Equal(records, again);
        Assert.Equal(records.Select(r => r.Ttl), again.Select(r => r.Ttl));
        Assert.Equal(records.Count, text.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }
}
