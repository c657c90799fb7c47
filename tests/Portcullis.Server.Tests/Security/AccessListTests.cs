using System.Net;
using Portcullis.Protocol.Names;
using Portcullis.Server.Configuration;
using Portcullis.Server.Security;

namespace Portcullis.Server.Tests.Security;

/// <summary>Address-match lists as BIND reads them: first match wins, "!" denies, no match denies.</summary>
public class AccessListTests
{
    private static readonly LocalNetworks Local = new([(IPAddress.Loopback, 8), (IPAddress.IPv6Loopback, 128),
        (IPAddress.Parse("10.1.2.3"), 24), (IPAddress.Parse("2001:db8:1::5"), 64)]);

    private static AccessList Compile(string[] elements, Dictionary<string, List<string>>? named = null) =>
        new AccessListCompiler(named ?? new(), Local).Compile(elements, "test");

    private static bool Allows(AccessList acl, string address) => acl.Allows(IPAddress.Parse(address));

    [Fact]
    public void Prefixes_match_by_their_length_in_both_families()
    {
        var acl = Compile(["192.0.2.0/24", "2001:db8::/32", "198.51.100.7"]);
        Assert.True(Allows(acl, "192.0.2.200"));
        Assert.False(Allows(acl, "192.0.3.1"));
        Assert.True(Allows(acl, "2001:db8:ffff::1"));
        Assert.False(Allows(acl, "2001:db9::1"));
        Assert.True(Allows(acl, "198.51.100.7"));
        Assert.False(Allows(acl, "198.51.100.8"));
        // A dual-stack socket's IPv4-mapped address is matched as IPv4.
        Assert.True(Allows(acl, "::ffff:192.0.2.9"));
    }

    [Fact]
    public void The_first_match_decides_and_negation_denies()
    {
        var acl = Compile(["!192.0.2.66", "192.0.2.0/24"]);
        Assert.False(Allows(acl, "192.0.2.66"));
        Assert.True(Allows(acl, "192.0.2.65"));
        var reversed = Compile(["192.0.2.0/24", "!192.0.2.66"]);
        Assert.True(Allows(reversed, "192.0.2.66"));
        Assert.False(Allows(Compile(["!any"]), "192.0.2.1"));
        Assert.True(Allows(Compile(["!none"]), "192.0.2.1"));
        Assert.False(Allows(Compile([]), "192.0.2.1"));
    }

    [Fact]
    public void Built_in_lists_name_this_machine_and_its_networks()
    {
        Assert.True(Allows(Compile(["localhost"]), "10.1.2.3"));
        Assert.False(Allows(Compile(["localhost"]), "10.1.2.4"));
        Assert.True(Allows(Compile(["localnets"]), "10.1.2.4"));
        Assert.True(Allows(Compile(["localnets"]), "2001:db8:1::99"));
        Assert.False(Allows(Compile(["localnets"]), "10.1.3.1"));
        Assert.True(Allows(Compile(["loopback"]), "127.9.9.9"));
        Assert.False(Allows(Compile(["loopback"]), "10.1.2.3"));
    }

    [Fact]
    public void Named_lists_nest_and_a_negated_list_inverts_its_members()
    {
        var named = new Dictionary<string, List<string>> { ["office"] = ["!192.0.2.66", "192.0.2.0/24"], ["all-offices"] = ["office", "203.0.113.0/24"] };
        var acl = Compile(["all-offices"], named);
        Assert.True(Allows(acl, "192.0.2.1"));
        Assert.False(Allows(acl, "192.0.2.66"));
        Assert.True(Allows(acl, "203.0.113.9"));
        var inverted = Compile(["!office", "any"], named);
        Assert.False(Allows(inverted, "192.0.2.1"));
        Assert.True(Allows(inverted, "192.0.2.66"));
    }

    [Fact]
    public void Key_elements_match_the_name_of_a_verified_tsig_key()
    {
        var acl = Compile(["key transfer.example.", "!any"]);
        Assert.True(acl.Allows(IPAddress.Parse("192.0.2.1"), DnsName.Parse("Transfer.Example.").Wire));
        Assert.False(acl.Allows(IPAddress.Parse("192.0.2.1"), DnsName.Parse("other.example.").Wire));
        Assert.False(acl.Allows(IPAddress.Parse("192.0.2.1")));
    }

    [Theory]
    [InlineData("192.0.2.0/33", "prefix length")]
    [InlineData("192.0.2.300", "not an IP address")]
    [InlineData("nosuchlist", "not an address")]
    [InlineData("key bad..name", "bad key name")]
    public void Bad_elements_are_errors_that_name_them(string element, string problem)
    {
        var e = Assert.Throws<ConfigException>(() => Compile([element]));
        Assert.Contains(element, e.Message);
        Assert.Contains(problem, e.Message);
    }

    [Fact]
    public void A_list_that_refers_to_itself_is_an_error()
    {
        var named = new Dictionary<string, List<string>> { ["a"] = ["b"], ["b"] = ["a"] };
        Assert.Contains("refers to itself", Assert.Throws<ConfigException>(() => Compile(["a"], named)).Message);
    }

    [Fact]
    public void Matching_allocates_nothing()
    {
        var acl = Compile(["!192.0.2.66", "10.0.0.0/8", "2001:db8::/32", "key k.", "192.0.2.0/24"]);
        var address = IPAddress.Parse("192.0.2.9").GetAddressBytes();
        acl.Allows(address);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++) acl.Allows(address);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
