using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.ZoneText;
using static Portcullis.Protocol.Tests.ZoneText.ZoneTestText;

namespace Portcullis.Protocol.Tests.ZoneText;

public class ZoneReaderTests
{
    private const string Soa = "@ 3600 IN SOA ns1 hostmaster 1 7200 3600 1209600 300\n";

    [Fact]
    public void Reads_a_zone_as_operators_write_it()
    {
        const string zone = """
            $TTL 1h
            @   IN  SOA ns1.example.test. hostmaster (
                        2024010101 ; serial
                        2h 30m 2w 5m )
                IN  NS  ns1
            ns1     A   192.0.2.1
                    AAAA 2001:db8::1
            www 300 IN A 192.0.2.80
            mail IN 1d A 192.0.2.25
            @       MX  10 mail
            ext     CNAME www.example.net.
            """;
        Assert.Equal(
        [
            "example.test. 3600 IN SOA ns1.example.test. hostmaster.example.test. 2024010101 7200 1800 1209600 300",
            "example.test. 3600 IN NS ns1.example.test.",
            "ns1.example.test. 3600 IN A 192.0.2.1",
            "ns1.example.test. 3600 IN AAAA 2001:db8::1",
            "www.example.test. 300 IN A 192.0.2.80",
            "mail.example.test. 86400 IN A 192.0.2.25",
            "example.test. 3600 IN MX 10 mail.example.test.",
            "ext.example.test. 3600 IN CNAME www.example.net.",
        ], Lines(zone));
    }

    [Fact]
    public void Origin_directive_is_relative_to_the_current_origin()
    {
        const string zone = """
            $TTL 60
            a A 192.0.2.1
            $ORIGIN sub
            b A 192.0.2.2
            $ORIGIN deeper.sub.example.test.
            c A 192.0.2.3
            @ A 192.0.2.4
            $ORIGIN example.test.
            d A 192.0.2.5
            """;
        Assert.Equal(
        [
            "a.example.test. 60 IN A 192.0.2.1",
            "b.sub.example.test. 60 IN A 192.0.2.2",
            "c.deeper.sub.example.test. 60 IN A 192.0.2.3",
            "deeper.sub.example.test. 60 IN A 192.0.2.4",
            "d.example.test. 60 IN A 192.0.2.5",
        ], Lines(zone));
    }

    [Fact]
    public void Ttl_directive_sets_the_default_until_the_next_one()
    {
        const string zone = """
            $TTL 300
            a A 192.0.2.1
            b 60 A 192.0.2.2
            c A 192.0.2.3
            $ttl 1D
            d A 192.0.2.4
            """;
        Assert.Equal(
        [
            "a.example.test. 300 IN A 192.0.2.1",
            "b.example.test. 60 IN A 192.0.2.2",
            "c.example.test. 300 IN A 192.0.2.3",
            "d.example.test. 86400 IN A 192.0.2.4",
        ], Lines(zone));
    }

    [Theory]
    [InlineData("3600", 3600u)]
    [InlineData("0", 0u)]
    [InlineData("1h30m", 5400u)]
    [InlineData("1H30M", 5400u)]
    [InlineData("1W", 604800u)]
    [InlineData("2d", 172800u)]
    [InlineData("1w2d3h4m5s", 788645u)]
    [InlineData("90s", 90u)]
    [InlineData("4294967295", 4294967295u)]
    public void Ttl_units_are_read_in_any_case(string text, uint expected)
    {
        Assert.True(ZoneTtl.TryParse(text, out uint ttl, out _));
        Assert.Equal(expected, ttl);
    }

    [Theory]
    [InlineData("1h30")]           // BIND rejects a bare number after units too
    [InlineData("1x")]
    [InlineData("h")]
    [InlineData("")]
    [InlineData("4294967296")]     // 2^32
    [InlineData("7102w")]          // 4,295,289,600 seconds
    [InlineData("99999999999999999999999")]
    [InlineData("1hh")]
    public void Bad_ttls_are_refused(string text) => Assert.False(ZoneTtl.TryParse(text, out _, out _));

    [Fact]
    public void Ttl_and_class_may_come_in_either_order_or_not_at_all()
    {
        const string zone = """
            $TTL 100
            a 200 IN A 192.0.2.1
            b IN 300 A 192.0.2.2
            c IN A 192.0.2.3
            d 400 A 192.0.2.4
            e A 192.0.2.5
            """;
        Assert.Equal(
        [
            "a.example.test. 200 IN A 192.0.2.1",
            "b.example.test. 300 IN A 192.0.2.2",
            "c.example.test. 100 IN A 192.0.2.3",
            "d.example.test. 400 IN A 192.0.2.4",
            "e.example.test. 100 IN A 192.0.2.5",
        ], Lines(zone));
    }

    [Fact]
    public void Without_ttl_directive_the_soa_takes_its_minimum_and_later_records_the_last_ttl_with_warnings()
    {
        const string zone = """
            @ IN SOA ns1 hostmaster 1 7200 3600 1209600 300
              IN NS ns1
            ns1 60 A 192.0.2.1
            www A 192.0.2.2
            """;
        using var reader = new ZoneReader(new StringReader(zone), Origin, "test.zone");
        var lines = reader.ReadRecords().Select(Line).ToArray();
        Assert.Equal(
        [
            "example.test. 300 IN SOA ns1.example.test. hostmaster.example.test. 1 7200 3600 1209600 300",
            "example.test. 300 IN NS ns1.example.test.",
            "ns1.example.test. 60 IN A 192.0.2.1",
            "www.example.test. 60 IN A 192.0.2.2",
        ], lines);
        Assert.Equal(2, reader.Warnings.Count);
        Assert.Equal("test.zone:1:1: warning: no $TTL and no TTL on the SOA: using the SOA minimum 300", reader.Warnings[0].ToString());
        Assert.Contains("RFC 1035", reader.Warnings[1].Problem);
    }

    [Fact]
    public void A_record_with_no_ttl_anywhere_is_an_error()
    {
        var e = Error("www A 192.0.2.1\n");
        Assert.Equal("test.zone:1:1: no TTL: give the record a TTL or put a $TTL directive before it", e.Message);
    }

    [Fact]
    public void The_default_ttl_option_acts_as_a_leading_ttl_directive() =>
        Assert.Equal(["www.example.test. 42 IN A 192.0.2.1"], Lines("www A 192.0.2.1\n", new ZoneReaderOptions { DefaultTtl = 42 }));

    [Fact]
    public void Ttls_above_2_to_the_31_are_read_as_zero_with_a_warning()
    {
        using var reader = new ZoneReader(new StringReader("www 4294967295 A 192.0.2.1\n"), Origin, "test.zone");
        Assert.Equal(0u, Assert.Single(reader.ReadRecords()).Ttl);
        Assert.Contains("RFC 2181", Assert.Single(reader.Warnings).Problem);
    }

    [Fact]
    public void Rfc3597_type_class_and_generic_rdata_are_accepted_for_any_type()
    {
        const string zone = """
            $TTL 60
            a CLASS1 TYPE1 \# 4 C0000201
            b TYPE65280 \# 3 abcdef
            c IN TYPE65281 \# 0
            """;
        Assert.Equal(
        [
            "a.example.test. 60 IN A 192.0.2.1",
            @"b.example.test. 60 IN TYPE65280 \# 3 ABCDEF",
            @"c.example.test. 60 IN TYPE65281 \# 0",
        ], Lines(zone));
    }

    [Fact]
    public void Owner_names_keep_their_escapes()
    {
        var records = ReadAll("$TTL 60\na\\.b A 192.0.2.1\n\\065bc A 192.0.2.2\nsp\\032ace A 192.0.2.3\n");
        Assert.Equal(3, records[0].Owner.LabelCount);
        Assert.Equal(@"a\.b.example.test.", records[0].Owner.ToString());
        Assert.Equal("Abc.example.test.", records[1].Owner.ToString());
        Assert.Equal(@"sp\032ace.example.test.", records[2].Owner.ToString());
    }

    [Fact]
    public void A_record_in_another_class_is_an_error()
    {
        var e = Error("$TTL 60\nwww CH A 192.0.2.1\n");
        Assert.Equal("test.zone:2:5: class CH does not match the zone's class IN", e.Message);
    }

    [Fact]
    public void Another_class_is_fine_when_it_is_the_zones()
    {
        var r = Assert.Single(ReadAll("version.bind. 0 CH TXT \"1\"\n", new ZoneReaderOptions { Class = RecordClass.CH }));
        Assert.Equal(RecordClass.CH, r.Class);
    }

    [Theory]
    [InlineData("$TTL 60\nwww XYZ 192.0.2.1\n", "test.zone:2:5: expected a TTL, class or type, found 'XYZ'")]
    [InlineData("$TTL 60\nwww 60 XYZ 192.0.2.1\n", "test.zone:2:8: expected a class or type, found 'XYZ'")]
    [InlineData("$TTL 60\nwww IN 60 XYZ\n", "test.zone:2:11: expected a type, found 'XYZ'")]
    [InlineData("$TTL 60\n\n\nwww 60\n", "test.zone:4:7: expected a class or type, found the end of the line")]
    [InlineData("$TTL 60\nwww 1h30 A 192.0.2.1\n", "test.zone:2:5: bad TTL '1h30': expected a unit (s, m, h, d, w) after the last number")]
    [InlineData("$TTL 60\n\"www\" A 192.0.2.1\n", "test.zone:2:1: expected an owner name, found the quoted string \"www\"")]
    [InlineData("$TTL 60\na..b A 192.0.2.1\n", "test.zone:2:1: bad owner name 'a..b': empty label in domain name 'a..b'")]
    [InlineData("$TTL 60\nwww ANY 192.0.2.1\n", "test.zone:2:5: class ANY does not match the zone's class IN")]
    [InlineData("$TTL 60\nwww IN AXFR\n", "test.zone:2:8: type AXFR is a query type and cannot be in a zone")]
    [InlineData("$TTL 60\n  A 192.0.2.1\n", "test.zone:2:3: the owner is omitted (the line starts with a blank) but no record came before")]
    [InlineData("$FOO bar\n", "test.zone:1:1: unknown directive '$FOO': expected $ORIGIN, $TTL, $INCLUDE or $GENERATE")]
    [InlineData("$TTL\n", "test.zone:1:5: expected a TTL after $TTL, found the end of the line")]
    [InlineData("$TTL 1 2\n", "test.zone:1:8: expected the end of the line after $TTL, found '2'")]
    [InlineData("$TTL 1y\n", "test.zone:1:6: bad TTL '1y': unknown TTL unit 'y': expected s, m, h, d or w")]
    [InlineData("$ORIGIN a..b\n", "test.zone:1:9: bad origin 'a..b': empty label in domain name 'a..b'")]
    public void Errors_name_file_line_column_and_what_was_expected(string zone, string message) =>
        Assert.Equal(message, Error(zone).Message);

    [Fact]
    public void Rdata_errors_point_at_the_rdata()
    {
        var e = Error("$TTL 60\nwww IN A 192.0.2.300\n");
        Assert.Equal(("test.zone", 2, 10), (e.File, e.Line, e.Column));
    }

    [Fact]
    public void An_inherited_owner_right_after_origin_is_an_error_as_in_BIND()
    {
        var e = Error("$TTL 60\nwww A 192.0.2.1\n$ORIGIN sub.example.test.\n  A 192.0.2.2\n");
        Assert.Equal((4, 3), (e.Line, e.Column));
        Assert.Contains("right after a change of origin", e.Problem);
    }

    [Fact]
    public void Collecting_errors_skips_bad_entries_and_lists_them_all()
    {
        const string zone = """
            $TTL 60
            a A 192.0.2.1
            b XYZ 192.0.2.2
            c A 192.0.2.3
            d TXT "unterminated
            e ( A
              192.0.2.5 )
            f A 192.0.2.999
            g A 192.0.2.7
            """;
        using var reader = new ZoneReader(new StringReader(zone), Origin, "test.zone", new ZoneReaderOptions { CollectErrors = true });
        var owners = reader.ReadRecords().Select(r => r.Owner.ToString(Origin)).ToArray();
        Assert.Equal(["a", "c", "e", "g"], owners);
        Assert.Equal([(3, 3), (5, 7), (8, 5)], reader.Errors.Select(e => (e.Line, e.Column)));
    }

    [Fact]
    public void Collecting_errors_stops_after_the_maximum()
    {
        var zone = "$TTL 60\n" + string.Concat(Enumerable.Repeat("x XYZ 1\n", 50));
        using var reader = new ZoneReader(new StringReader(zone), Origin, "test.zone", new ZoneReaderOptions { CollectErrors = true, MaxErrors = 10 });
        Assert.Empty(reader.ReadRecords());
        Assert.Equal(11, reader.Errors.Count);
        Assert.Contains("too many errors", reader.Errors[^1].Problem);
    }

    [Fact]
    public void Position_tells_where_each_record_was_written()
    {
        using var reader = new ZoneReader(new StringReader("$TTL 60\na A 192.0.2.1\n\n  A 192.0.2.2\n"), Origin, "test.zone");
        var positions = new List<ZonePosition>();
        foreach (var _ in reader.ReadRecords()) positions.Add(reader.Position);
        Assert.Equal([new ZonePosition("test.zone", 2, 1), new ZonePosition("test.zone", 4, 3)], positions);
    }

    [Fact]
    public void Records_spanning_lines_with_comments_and_quoted_semicolons_read_whole()
    {
        const string zone = """
            $TTL 60
            _dmarc TXT ( "v=DMARC1; p=reject;" ; the policy
                         "rua=mailto:d@example.test" )
            """;
        Assert.Equal(["_dmarc.example.test. 60 IN TXT \"v=DMARC1; p=reject;\" \"rua=mailto:d@example.test\""], Lines(zone));
    }

    [Fact]
    public void The_reader_can_be_enumerated_only_once()
    {
        using var reader = new ZoneReader(new StringReader(Soa), Origin);
        _ = reader.ReadRecords().ToList();
        Assert.Throws<InvalidOperationException>(() => reader.ReadRecords());
    }

    [Fact]
    public void Open_reads_a_file_and_names_it_in_errors()
    {
        using var dir = new TempDirectory();
        var path = dir.Write("z.zone", "$TTL 60\nwww A 192.0.2.1\nbad XYZ\n");
        using var reader = ZoneReader.Open(path, Origin);
        var e = Assert.Throws<ZoneFormatException>(() => reader.ReadRecords().ToList());
        Assert.Equal($"{path}:3:5: expected a TTL, class or type, found 'XYZ'", e.Message);
    }

    [Fact]
    public void The_root_origin_works()
    {
        var root = DnsName.Root;
        using var reader = new ZoneReader(new StringReader("$TTL 60\n@ NS a.root-servers.net.\ncom NS a.gtld-servers.net.\n"), root);
        Assert.Equal([".", "com."], reader.ReadRecords().Select(r => r.Owner.ToString()));
    }
}
