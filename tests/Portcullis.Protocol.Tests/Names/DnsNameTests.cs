using Portcullis.Protocol;
using Portcullis.Protocol.Names;

namespace Portcullis.Protocol.Tests.Names;

public class DnsNameTests
{
    [Theory]
    [InlineData("example.com.", "example.com.")]
    [InlineData("Example.COM", "Example.COM.")]
    [InlineData(".", ".")]
    [InlineData(@"a\.b.example.", @"a\.b.example.")]
    [InlineData(@"a\\b.example.", @"a\\b.example.")]
    [InlineData(@"\065bc.example.", "Abc.example.")]
    [InlineData(@"\000\255.example.", @"\000\255.example.")]
    [InlineData("a b.example.", @"a\032b.example.")]
    public void Presentation_round_trips_with_escapes(string input, string expected)
    {
        var name = DnsName.Parse(input);
        Assert.Equal(expected, name.ToString());
        Assert.Equal(name, DnsName.Parse(name.ToString()));
    }

    [Fact]
    public void Equality_ignores_case_but_the_case_is_kept()
    {
        var a = DnsName.Parse("WWW.Example.com.");
        var b = DnsName.Parse("www.example.COM.");
        Assert.Equal(a, b);
        Assert.Equal(a.GetHashCode(), b.GetHashCode());
        Assert.Equal("WWW.Example.com.", a.ToString());
    }

    [Fact]
    public void Relative_names_take_the_origin()
    {
        var origin = DnsName.Parse("example.com.");
        Assert.Equal("www.example.com.", DnsName.Parse("www", origin).ToString());
        Assert.Equal("www.", DnsName.Parse("www.", origin).ToString());
        Assert.Equal("www", DnsName.Parse("www.example.com.").ToString(origin));
        Assert.Equal("@", origin.ToString(origin));
    }

    [Theory]
    [InlineData("a..b.")]
    [InlineData("..")]
    [InlineData(@"a\")]
    [InlineData(@"a\25")]
    [InlineData(@"a\256.")]
    [InlineData("é.example.")]
    public void Malformed_presentation_is_a_format_error(string input) =>
        Assert.Throws<DnsFormatException>(() => DnsName.Parse(input));

    [Fact]
    public void Labels_over_63_and_names_over_255_octets_are_rejected()
    {
        Assert.NotNull(DnsName.Parse(new string('a', 63) + "."));
        Assert.Throws<DnsFormatException>(() => DnsName.Parse(new string('a', 64) + "."));
        // 4 labels of 63 = 4*64 + 1 = 257 octets.
        string label = new('a', 63);
        Assert.Throws<DnsFormatException>(() => DnsName.Parse($"{label}.{label}.{label}.{label}."));
        // 3*64 + 62 (61-char label) + 1 = 255 fits exactly.
        var max = DnsName.Parse($"{label}.{label}.{label}.{new string('a', 61)}.");
        Assert.Equal(255, max.WireLength);
    }

    [Fact]
    public void Canonical_order_follows_rfc4034_section_6_1()
    {
        // The example list of RFC 4034 §6.1, in order.
        string[] ordered =
        [
            "example.", "a.example.", "yljkjljk.a.example.", "Z.a.example.", "zABC.a.EXAMPLE.",
            "z.example.", "\\001.z.example.", "*.z.example.", "\\200.z.example.",
        ];
        var names = ordered.Select(n => DnsName.Parse(n)).ToList();
        var shuffled = names.OrderBy(n => n.GetHashCode()).ToList();
        shuffled.Sort();
        Assert.Equal(ordered, shuffled.Select(n => n.ToString()).ToArray());
    }

    [Fact]
    public void Subdomain_and_parent()
    {
        var name = DnsName.Parse("a.b.Example.");
        Assert.True(name.IsSubdomainOf(DnsName.Parse("example.")));
        Assert.True(name.IsSubdomainOf(DnsName.Root));
        Assert.False(DnsName.Parse("example.").IsSubdomainOf(name));
        Assert.Equal("b.Example.", name.Parent().ToString());
        Assert.Equal("*.b.Example.", name.Parent().Prepend("*"u8).ToString());
        Assert.True(name.Parent().Prepend("*"u8).IsWildcard);
    }
}
