using Portcullis.Protocol.ZoneText;
using static Portcullis.Protocol.Tests.ZoneText.ZoneTestText;

namespace Portcullis.Protocol.Tests.ZoneText;

/// <summary>$GENERATE, with expectations taken from named-compilezone's output for the same lines.</summary>
public class ZoneGenerateTests
{
    [Fact]
    public void Dollar_is_the_iterator_in_owner_and_rdata() =>
        Assert.Equal(
        [
            "h1.example.test. 300 IN A 10.0.0.1",
            "h2.example.test. 300 IN A 10.0.0.2",
            "h3.example.test. 300 IN A 10.0.0.3",
        ], Lines("$TTL 300\n$GENERATE 1-3 h$ A 10.0.0.$\n"));

    [Fact]
    public void Step_offset_width_and_bases() =>
        Assert.Equal(
        [
            "00f.o.example.test. 300 IN CNAME xA.0011.example.test.",
            "014.o.example.test. 300 IN CNAME xF.0016.example.test.",
            "019.o.example.test. 300 IN CNAME x14.0023.example.test.",
        ], Lines("$TTL 300\n$GENERATE 10-20/5 ${5,3,x}.o CNAME x${0,0,X}.${-1,4,o}\n"));

    [Theory]
    [InlineData("${0,4,n}n", "a.f.n", "b.f.n")]
    [InlineData("${0,8,n}m", "a.f.0.0.m", "b.f.0.0.m")]
    [InlineData("${0,5,n}k", "a.f.0k", "b.f.0k")]
    [InlineData("${0,6,n}j", "a.f.0.j", "b.f.0.j")]
    [InlineData("${0,1,n}i", "a.fi", "b.fi")]
    [InlineData("${0,3,N}h", "A.Fh", "B.Fh")]
    public void Nibble_modes_count_dots_in_the_width(string lhs, string first, string second) =>
        Assert.Equal(
        [
            $"{first}.example.test. 300 IN PTR x.example.test.",
            $"{second}.example.test. 300 IN PTR x.example.test.",
        ], Lines($"$TTL 300\n$GENERATE 250-251 {lhs} PTR x\n"));

    [Fact]
    public void Escaped_and_doubled_dollars_are_literal_and_a_quoted_rdata_template_is_read_as_fields() =>
        Assert.Equal(
        [
            "e\\$.example.test. 300 IN TXT \"a1\" \"$\" \"$\"",
            "e\\$.example.test. 300 IN TXT \"a2\" \"$\" \"$\"",
            "mx1.example.test. 300 IN MX 10 mail1.example.test.",
            "mx2.example.test. 300 IN MX 10 mail2.example.test.",
        ], Lines("$TTL 300\n$GENERATE 1-2 e\\$ TXT \"a$ \\$ $$\"\n$GENERATE 1-2 mx$ MX \"10 mail$\"\n"));

    [Fact]
    public void Ttl_and_class_may_be_given_in_either_order() =>
        Assert.Equal(
        [
            "1z.example.test. 7200 IN A 10.1.1.1",
            "02y.example.test. 7200 IN A 10.1.1.1",
            "w.example.test. 300 IN A 10.1.1.2",
        ], Lines("$TTL 300\n$GENERATE 1-1 ${0}z 7200 IN A 10.1.1.1\n$GENERATE 1-1 ${1,2}y IN 7200 A 10.1.1.1\n$GENERATE 5-5 w A 10.1.1.2\n"));

    [Fact]
    public void Generated_records_follow_the_origin_in_force()
    {
        Assert.Equal(
        [
            "1.2.0.192.in-addr.arpa. 60 IN PTR host1.example.test.",
            "2.2.0.192.in-addr.arpa. 60 IN PTR host2.example.test.",
        ], Lines("$TTL 60\n$ORIGIN 2.0.192.in-addr.arpa.\n$GENERATE 1-2 $ PTR host$.example.test.\n"));
    }

    [Theory]
    [InlineData("$GENERATE 3-1 h$ A 10.0.0.$", 11, "start is above stop")]
    [InlineData("$GENERATE 1-x h$ A 10.0.0.$", 11, "expected start-stop or start-stop/step")]
    [InlineData("$GENERATE 1-3/0 h$ A 10.0.0.$", 11, "bad $GENERATE step")]
    [InlineData("$GENERATE 0-2147483647 h$ A 10.0.0.1", 11, "at most 1048576 are allowed")]
    [InlineData("$GENERATE 1-2 h${0,3 A 10.0.0.1", 15, "unclosed '${'")]
    [InlineData("$GENERATE 1-2 h${0,3,q} A 10.0.0.1", 15, "expected d, o, x, X, n or N")]
    [InlineData("$GENERATE 1-2 h${-5} A 10.0.0.1", 15, "negative value")]
    [InlineData("$GENERATE 1-2 h$ A", 19, "expected the RDATA template")]
    [InlineData("$GENERATE 1-2 h$ MX 10 mail$", 24, "expected the end of the $GENERATE line, found 'mail$'")]
    [InlineData("$GENERATE 1-2 h$ A 10.0.0.$$", 20, "")]
    public void Bad_generate_lines_are_errors_at_the_field(string line, int column, string problem)
    {
        var e = Error("$TTL 60\n" + line + "\n");
        Assert.Equal(2, e.Line);
        Assert.Equal(column, e.Column);
        Assert.Contains(problem, e.Problem);
    }

    [Fact]
    public void Generate_streams_its_records()
    {
        using var reader = new ZoneReader(new StringReader("$TTL 60\n$GENERATE 0-1000000 h$ A 10.0.0.1\n"), Origin);
        Assert.Equal("h4.example.test.", reader.ReadRecords().Skip(4).First().Owner.ToString());
    }

    [Theory]
    [InlineData("$", 7, "7")]
    [InlineData("${0}", 7, "7")]
    [InlineData("${1,3}", 7, "008")]
    [InlineData("${0,4,x}", 255, "00ff")]
    [InlineData("${0,0,X}", 255, "FF")]
    [InlineData("${0,0,o}", 8, "10")]
    [InlineData("a$$b", 1, "a$b")]
    [InlineData("a\\$b", 1, "a$b")]
    [InlineData("a\\.b$", 1, "a\\.b1")]
    [InlineData("${0,0,n}", 0x123, "3.2.1")]
    public void Templates_expand(string template, long value, string expected)
    {
        Assert.True(ZoneGenerate.TryExpand(template, value, out string result, out _));
        Assert.Equal(expected, result);
    }
}
