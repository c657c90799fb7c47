using System.Text;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Records;
using Portcullis.Server.Tests.Support;

namespace Portcullis.Server.Tests.Transport;

/// <summary>UDP size limits (RFC 1035 512 octets, RFC 6891 EDNS) and truncation with TCP fallback (RFC 2181 §9).</summary>
public sealed class TruncationTests : IDisposable
{
    private static string BigZone()
    {
        var sb = new StringBuilder("$ORIGIN big.test.\n$TTL 300\n@ SOA ns hostmaster 1 3600 600 86400 300\n@ NS ns\nns A 192.0.2.1\n");
        // 40 TXT records of ~100 octets: about 4.4 KB as an RRset.
        for (int i = 0; i < 40; i++) sb.Append($"txt TXT \"record {i:D2} {new string('x', 90)}\"\n");
        for (int i = 0; i < 20; i++) sb.Append($"mid TXT \"{i:D2}{new string('y', 40)}\"\n");
        return sb.ToString();
    }

    private readonly TestServer _server = new(("big.test.", BigZone()));
    private DnsTestClient Client => _server.Client();

    public void Dispose() => _server.Dispose();

    [Fact]
    public void Without_edns_responses_stay_within_512_octets_and_set_tc()
    {
        var wire = Client.UdpRaw(DnsTestClient.Query("txt.big.test.", RecordType.TXT).ToWire());
        Assert.True(wire.Length <= 512);
        var r = DnsMessage.Parse(wire);
        Assert.True(r.Header.Truncated);
        Assert.Empty(r.Answers);   // an RRset is never split
    }

    [Fact]
    public void With_edns_the_limit_is_the_smaller_of_the_client_size_and_1232()
    {
        // ~20 × 45 octets fits in 1232 but not in 512.
        var small = DnsMessage.Parse(Client.UdpRaw(DnsTestClient.Query("mid.big.test.", RecordType.TXT).ToWire()));
        Assert.True(small.Header.Truncated);
        var wire = Client.UdpRaw(DnsTestClient.Query("mid.big.test.", RecordType.TXT, edns: true, payload: 4096).ToWire());
        var r = DnsMessage.Parse(wire);
        Assert.False(r.Header.Truncated);
        Assert.Equal(20, r.Answers.Count);
        Assert.True(wire.Length <= 1232);

        var big = Client.UdpRaw(DnsTestClient.Query("txt.big.test.", RecordType.TXT, edns: true, payload: 65000).ToWire());
        Assert.True(big.Length <= 1232);
        Assert.True(DnsMessage.Parse(big).Header.Truncated);
        Assert.NotNull(DnsMessage.Parse(big).Edns);   // OPT survives truncation
    }

    [Fact]
    public void The_client_retrying_over_tcp_gets_everything()
    {
        var r = Client.Tcp("txt.big.test.", RecordType.TXT);
        Assert.False(r.Header.Truncated);
        Assert.Equal(40, r.Answers.Count);
    }

    [Fact]
    public void An_edns_size_below_512_counts_as_512()
    {
        var wire = Client.UdpRaw(DnsTestClient.Query("ns.big.test.", RecordType.A, edns: true, payload: 100).ToWire());
        var r = DnsMessage.Parse(wire);
        Assert.False(r.Header.Truncated);
        Assert.Single(r.Answers);
    }
}
