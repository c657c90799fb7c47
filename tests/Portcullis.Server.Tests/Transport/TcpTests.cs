using System.Net.Sockets;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Records;
using Portcullis.Server.Tests.Support;

namespace Portcullis.Server.Tests.Transport;

/// <summary>DNS over TCP per RFC 7766: framing, many queries per connection, pipelining, timeouts, limits.</summary>
public sealed class TcpTests
{
    [Fact]
    public void Many_queries_on_one_connection_each_get_their_answer()
    {
        using var server = new TestServer(("example.test.", TestServer.ExampleZone));
        using var socket = server.Client().Connect();
        for (int i = 0; i < 5; i++)
        {
            var q = DnsTestClient.Query("www.example.test.", RecordType.A);
            DnsTestClient.Send(socket, q.ToWire());
            var r = DnsMessage.Parse(DnsTestClient.ReceiveMessage(socket)!);
            Assert.Equal(q.Header.Id, r.Header.Id);
            Assert.Single(r.Answers);
        }
    }

    [Fact]
    public void Pipelined_queries_sent_in_one_write_are_all_answered()
    {
        using var server = new TestServer(("example.test.", TestServer.ExampleZone));
        using var socket = server.Client().Connect();
        string[] names = ["www", "mail", "ns1", "ns2", "sip", "ftp", "example.test.", "x.b.ent", "nope", "sub"];
        var queries = names.Select(n => DnsTestClient.Query(n.EndsWith('.') ? n : n + ".example.test.", RecordType.A)).ToList();
        var all = new List<byte>();
        foreach (var q in queries)
        {
            var wire = q.ToWire();
            all.Add((byte)(wire.Length >> 8));
            all.Add((byte)wire.Length);
            all.AddRange(wire);
        }
        socket.Send(all.ToArray());
        var ids = new HashSet<ushort>();
        for (int i = 0; i < queries.Count; i++)
            ids.Add(DnsMessage.Parse(DnsTestClient.ReceiveMessage(socket)!).Header.Id);
        Assert.Equal(queries.Select(q => q.Header.Id).ToHashSet(), ids);
    }

    [Fact]
    public void A_query_arriving_a_few_octets_at_a_time_is_answered()
    {
        using var server = new TestServer(("example.test.", TestServer.ExampleZone));
        using var socket = server.Client().Connect();
        socket.NoDelay = true;
        var q = DnsTestClient.Query("www.example.test.", RecordType.A).ToWire();
        var framed = new byte[] { (byte)(q.Length >> 8), (byte)q.Length }.Concat(q).ToArray();
        for (int i = 0; i < framed.Length; i += 3) socket.Send(framed.AsSpan(i, Math.Min(3, framed.Length - i)));
        Assert.Single(DnsMessage.Parse(DnsTestClient.ReceiveMessage(socket)!).Answers);
    }

    [Fact]
    public void A_large_padded_query_followed_by_a_small_one_are_both_answered()
    {
        using var server = new TestServer(("example.test.", TestServer.ExampleZone));
        using var socket = server.Client().Connect();
        var big = DnsTestClient.Query("www.example.test.", RecordType.A, edns: true);
        big.Edns!.Options.Add(new PaddingOption(9000));   // RFC 7830: a 9 KB query
        DnsTestClient.Send(socket, big.ToWire());
        DnsTestClient.Send(socket, DnsTestClient.Query("mail.example.test.", RecordType.A).ToWire());
        Assert.Single(DnsMessage.Parse(DnsTestClient.ReceiveMessage(socket)!).Answers);
        Assert.Single(DnsMessage.Parse(DnsTestClient.ReceiveMessage(socket)!).Answers);
    }

    [Fact]
    public void An_idle_connection_is_closed_by_the_server()
    {
        using var server = new TestServer(c => c.Limits.TcpIdleTimeout = "300ms", ("example.test.", TestServer.ExampleZone));
        using var socket = server.Client().Connect();
        // Blocks until the server closes the connection (bounded by the 5 s receive timeout).
        Assert.Null(DnsTestClient.ReceiveMessage(socket));
    }

    [Fact]
    public void Keepalive_option_is_answered_with_the_idle_timeout()
    {
        using var server = new TestServer(c => c.Limits.TcpIdleTimeout = "7s", ("example.test.", TestServer.ExampleZone));
        var q = DnsTestClient.Query("www.example.test.", RecordType.A, edns: true);
        q.Edns!.Options.Add(EdnsOption.FromWire(EdnsOptionCode.TcpKeepalive, []));
        var r = DnsMessage.Parse(server.Client().TcpRaw(q.ToWire()));
        var keepalive = r.Edns!.Options.Single(o => o.Code == EdnsOptionCode.TcpKeepalive);
        Assert.Equal(new byte[] { 0, 70 }, keepalive.GetData());   // 7 s in units of 100 ms (RFC 7828)
    }

    [Fact]
    public void A_silent_client_does_not_block_others()
    {
        using var server = new TestServer(("example.test.", TestServer.ExampleZone));
        using var silent = server.Client().Connect();
        silent.Send([0]);                       // half a length prefix, then nothing
        using var other = server.Client().Connect();
        DnsTestClient.Send(other, DnsTestClient.Query("www.example.test.", RecordType.A).ToWire());
        Assert.NotNull(DnsTestClient.ReceiveMessage(other));
        Assert.Equal(Rcode.NoError, server.Client().Udp("www.example.test.", RecordType.A).Rcode);
    }

    [Fact]
    public void Connections_over_the_per_client_limit_are_closed()
    {
        using var server = new TestServer(c => c.Limits.TcpMaxConnectionsPerClient = 2, ("example.test.", TestServer.ExampleZone));
        var client = server.Client();
        using var a = client.Connect();
        using var b = client.Connect();
        // Both first connections are served...
        foreach (var s in new[] { a, b })
        {
            DnsTestClient.Send(s, DnsTestClient.Query("www.example.test.", RecordType.A).ToWire());
            Assert.NotNull(DnsTestClient.ReceiveMessage(s));
        }
        // ...the third is closed without an answer.
        using var c = client.Connect();
        try { DnsTestClient.Send(c, DnsTestClient.Query("www.example.test.", RecordType.A).ToWire()); }
        catch (SocketException) { }
        byte[]? answer;
        try { answer = DnsTestClient.ReceiveMessage(c); }
        catch (SocketException) { answer = null; }
        Assert.Null(answer);
        // Once one closes, a new connection is served again.
        a.Dispose();
        var retry = WaitUntilServed(client);
        Assert.True(retry, "a connection after one was released should be served");
    }

    private static bool WaitUntilServed(DnsTestClient client)
    {
        // The server notices the close asynchronously; retry a bounded number of times.
        for (int i = 0; i < 50; i++)
        {
            try
            {
                if (DnsMessage.Parse(client.TcpRaw(DnsTestClient.Query("www.example.test.", RecordType.A).ToWire())).Answers.Count == 1) return true;
            }
            catch (Exception e) when (e is IOException or SocketException) { }
        }
        return false;
    }
}
