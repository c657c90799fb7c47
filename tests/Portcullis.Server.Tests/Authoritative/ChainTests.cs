using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Records;
using Portcullis.Server.Tests.Support;

namespace Portcullis.Server.Tests.Authoritative;

/// <summary>CNAME and DNAME chains: loops, ANY, QTYPE=CNAME, and DS between a served parent and child.</summary>
public sealed class ChainTests : IDisposable
{
    private const string Parent = """
        $ORIGIN chain.test.
        $TTL 300
        @      SOA ns h 1 3600 600 86400 60
        @      NS  ns
        ns     A   192.0.2.1
        self   CNAME self
        loopa  CNAME loopb
        loopb  CNAME loopa
        c1     CNAME c2
        c2     A   192.0.2.2
        dn     DNAME target.chain.test.
        x.target CNAME c2
        kid    NS  ns.kid
        ns.kid A   192.0.2.3
        kid    DS  12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF
        """;

    private const string Child = """
        $ORIGIN kid.chain.test.
        $TTL 300
        @      SOA ns h 1 3600 600 86400 60
        @      NS  ns
        ns     A   192.0.2.3
        """;

    private readonly TestServer _server = new(("chain.test.", Parent), ("kid.chain.test.", Child));
    private DnsTestClient Client => _server.Client();

    public void Dispose() => _server.Dispose();

    [Fact]
    public void A_cname_loop_is_written_once_and_stops()
    {
        var self = Client.Udp("self.chain.test.", RecordType.A);
        Assert.Equal(["self.chain.test. 300 IN CNAME self.chain.test."], self.Answers.Select(a => a.ToString()));
        var loop = Client.Udp("loopa.chain.test.", RecordType.A);
        Assert.Equal(2, loop.Answers.Count);
        Assert.Equal(Rcode.NoError, loop.Rcode);
    }

    [Fact]
    public void Any_at_a_cname_is_the_cname_alone()
    {
        var r = Client.Tcp("c1.chain.test.", RecordType.ANY);
        Assert.Equal(["c1.chain.test. 300 IN CNAME c2.chain.test."], r.Answers.Select(a => a.ToString()));
    }

    [Fact]
    public void Cname_query_below_a_dname_is_answered_by_the_synthesised_cname()
    {
        var r = Client.Udp("x.dn.chain.test.", RecordType.CNAME);
        Assert.Equal(Rcode.NoError, r.Rcode);
        Assert.Equal(["dn.chain.test. 300 IN DNAME target.chain.test.", "x.dn.chain.test. 300 IN CNAME x.target.chain.test."],
            r.Answers.Select(a => a.ToString()).Order());
        Assert.Empty(r.Authority);
    }

    [Fact]
    public void Ds_at_a_child_apex_comes_from_the_served_parent()
    {
        var r = Client.Udp("kid.chain.test.", RecordType.DS);
        Assert.True(r.Header.AuthoritativeAnswer);
        Assert.Equal(RecordType.DS, Assert.Single(r.Answers).Type);
        // Every other type at the child apex comes from the child.
        Assert.Equal("kid.chain.test.", Client.Udp("kid.chain.test.", RecordType.SOA).Answers.Single().Owner.ToString());
    }
}
