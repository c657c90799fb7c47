using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Server.Tests.Support;
using Portcullis.Transport;

namespace Portcullis.Server.Tests.Transport;

/// <summary>
/// Deferred replies in the transports: a processor takes a handle, returns 0, and answers later
/// from another thread. Over UDP the answer leaves the socket the query came in on; over TCP it may
/// overtake nothing and be overtaken (RFC 7766 §7), keeps the connection from the idle timeout,
/// and a connection holds a bounded number of them.
/// </summary>
public sealed class DeferredReplyTests
{
    /// <summary>
    /// Answers every query at once (header echoed, QR set) except names starting with "defer",
    /// which it defers and hands to the test; when the transport will not defer, SERVFAIL at once.
    /// </summary>
    private sealed class DeferringProcessor : IQueryProcessor
    {
        public BlockingCollection<(ushort Id, IDeferredReply Reply, byte[] Query)> Deferred { get; } = new();
        public int Refusals;

        public int Process(ReadOnlySpan<byte> query, Span<byte> response, in QueryContextInfo info)
        {
            var q = DnsMessage.Parse(query);
            if (q.Questions[0].Name.ToString().StartsWith("defer", StringComparison.Ordinal))
            {
                var reply = info.Deferral?.Defer();
                if (reply is not null)
                {
                    Deferred.Add((q.Header.Id, reply, query.ToArray()));
                    return 0;
                }
                Interlocked.Increment(ref Refusals);
                return Answer(query, response, Rcode.ServFail);
            }
            return Answer(query, response, Rcode.NoError);
        }

        public static int Answer(ReadOnlySpan<byte> query, Span<byte> response, Rcode rcode)
        {
            query.CopyTo(response);
            response[2] |= 0x80;
            response[3] = (byte)((response[3] & 0xF0) | (int)rcode);
            return query.Length;
        }

        public (ushort Id, IDeferredReply Reply, byte[] Query) Next() =>
            Deferred.TryTake(out var d, TimeSpan.FromSeconds(10)) ? d : throw new TimeoutException("no query was deferred");
    }

    private static byte[] Query(string name, ushort id) =>
        DnsMessage.CreateQuery(DnsName.Parse(name), RecordType.A, RecordClass.IN, id, recursionDesired: true).ToWire();

    private static byte[] Response(byte[] query)
    {
        var r = new byte[query.Length];
        DeferringProcessor.Answer(query, r, Rcode.NoError);
        return r;
    }

    private static IPEndPoint Loopback => new(IPAddress.Loopback, 0);

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_deferred_udp_reply_reaches_the_client_from_the_listening_socket(bool batch)
    {
        var processor = new DeferringProcessor();
        using IUdpListener listener = batch
            ? new UdpBatchListener(Loopback, processor, NullLogger.Instance, reusePort: false)
            : new UdpListener(Loopback, processor, NullLogger.Instance);
        listener.Start();
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { ReceiveTimeout = 10_000 };
        client.Connect(listener.LocalEndPoint);   // a connected socket takes datagrams from that address and port only
        client.Send(Query("defer.test.", 0x1234));
        // A query behind it is answered meanwhile: the receive thread was not held.
        client.Send(Query("now.test.", 0x2222));
        var buffer = new byte[512];
        int n = client.Receive(buffer);
        Assert.Equal(0x2222, DnsMessage.Parse(buffer.AsSpan(0, n)).Header.Id);
        var (id, reply, query) = processor.Next();
        Assert.Equal(0x1234, id);
        Assert.Equal(TransportKind.Udp, reply.Transport);
        // From another thread, as a resolution would.
        await Task.Run(() => reply.Send(Response(query))).WaitAsync(TimeSpan.FromSeconds(10));
        n = client.Receive(buffer);
        var r = DnsMessage.Parse(buffer.AsSpan(0, n));
        Assert.Equal(0x1234, r.Header.Id);
        Assert.True(r.Header.IsResponse);
        reply.Send(Response(query));   // a second send is ignored
        Assert.False(client.Poll(TimeSpan.FromMilliseconds(200), SelectMode.SelectRead));
    }

    private static Portcullis.Transport.TcpListener Tcp(IQueryProcessor processor, TcpEngineKind engine, TimeSpan? idle = null) =>
        new(Loopback, processor, NullLogger.Instance, new TcpLimits { IdleTimeout = idle ?? TimeSpan.FromSeconds(10) }, engine);

    private static Socket Connect(IPEndPoint server)
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = 10_000, SendTimeout = 10_000 };
        s.Connect(server);
        return s;
    }

    private static byte[] Framed(params byte[][] messages) =>
        messages.SelectMany(m => new[] { (byte)(m.Length >> 8), (byte)m.Length }.Concat(m)).ToArray();

    [Theory]
    [InlineData(TcpEngineKind.EventLoops)]
    [InlineData(TcpEngineKind.Async)]
    public async Task Tcp_answers_go_out_of_order_when_the_first_is_deferred(TcpEngineKind engine)
    {
        var processor = new DeferringProcessor();
        using var listener = Tcp(processor, engine);
        listener.Start();
        using var socket = Connect(listener.LocalEndPoint);
        socket.Send(Framed(Query("defer.test.", 1), Query("now.test.", 2)));
        Assert.Equal(2, DnsMessage.Parse(DnsTestClient.ReceiveMessage(socket)!).Header.Id);
        var (_, reply, query) = processor.Next();
        Assert.Equal(TransportKind.Tcp, reply.Transport);
        await Task.Run(() => reply.Send(Response(query))).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(1, DnsMessage.Parse(DnsTestClient.ReceiveMessage(socket)!).Header.Id);
        // The connection goes on as before.
        DnsTestClient.Send(socket, Query("again.test.", 3));
        Assert.Equal(3, DnsMessage.Parse(DnsTestClient.ReceiveMessage(socket)!).Header.Id);
    }

    [Theory]
    [InlineData(TcpEngineKind.EventLoops)]
    [InlineData(TcpEngineKind.Async)]
    public void The_idle_timeout_does_not_cut_a_connection_with_a_reply_pending(TcpEngineKind engine)
    {
        var processor = new DeferringProcessor();
        using var listener = Tcp(processor, engine, idle: TimeSpan.FromMilliseconds(300));
        listener.Start();
        using var pending = Connect(listener.LocalEndPoint);
        DnsTestClient.Send(pending, Query("defer.test.", 7));
        var (_, reply, query) = processor.Next();
        // Two idle connections opened after it, without pending replies, are closed by the server:
        // the idle timeout has passed for the first connection too (its deadline was earlier).
        for (int i = 0; i < 2; i++)
        {
            using var idle = Connect(listener.LocalEndPoint);
            Assert.Null(DnsTestClient.ReceiveMessage(idle));
        }
        reply.Send(Response(query));
        Assert.Equal(7, DnsMessage.Parse(DnsTestClient.ReceiveMessage(pending)!).Header.Id);
        // With nothing pending any more, the idle timeout applies again.
        Assert.Null(DnsTestClient.ReceiveMessage(pending));
    }

    [Theory]
    [InlineData(TcpEngineKind.EventLoops)]
    [InlineData(TcpEngineKind.Async)]
    public void A_connection_holds_a_bounded_number_of_pending_replies(TcpEngineKind engine)
    {
        var processor = new DeferringProcessor();
        using var listener = Tcp(processor, engine);
        listener.Start();
        using var socket = Connect(listener.LocalEndPoint);
        int bound = new TcpLimits().MaxPendingPerConnection;
        socket.Send(Framed(Enumerable.Range(1, bound + 1).Select(i => Query("defer.test.", (ushort)i)).ToArray()));
        // The one beyond the bound is answered at once, SERVFAIL.
        var refused = DnsMessage.Parse(DnsTestClient.ReceiveMessage(socket)!);
        Assert.Equal(bound + 1, refused.Header.Id);
        Assert.Equal(Rcode.ServFail, refused.Rcode);
        var held = Enumerable.Range(0, bound).Select(_ => processor.Next()).ToList();
        Assert.Equal(1, processor.Refusals);
        // One reply sent frees a place: the next deferral is taken.
        held[0].Reply.Send(Response(held[0].Query));
        Assert.Equal(1, DnsMessage.Parse(DnsTestClient.ReceiveMessage(socket)!).Header.Id);
        DnsTestClient.Send(socket, Query("defer.again.", 500));
        var again = processor.Next();
        Assert.Equal(500, again.Id);
        foreach (var h in held.Skip(1)) h.Reply.Abandon();
        again.Reply.Send(Response(again.Query));
        Assert.Equal(500, DnsMessage.Parse(DnsTestClient.ReceiveMessage(socket)!).Header.Id);
        Assert.Equal(1, processor.Refusals);
    }

    [Theory]
    [InlineData(TcpEngineKind.EventLoops)]
    [InlineData(TcpEngineKind.Async)]
    public void A_reply_to_a_closed_connection_is_a_no_op(TcpEngineKind engine)
    {
        var processor = new DeferringProcessor();
        using var listener = Tcp(processor, engine);
        listener.Start();
        (ushort, IDeferredReply Reply, byte[] Query) held;
        using (var socket = Connect(listener.LocalEndPoint))
        {
            DnsTestClient.Send(socket, Query("defer.test.", 9));
            held = processor.Next();
            socket.LingerState = new LingerOption(true, 0);   // reset: the server sees the connection gone
        }
        // The server has noticed the close once its open-connection count drops.
        using (var probe = Connect(listener.LocalEndPoint))
        {
            DnsTestClient.Send(probe, Query("now.test.", 10));
            Assert.Equal(10, DnsMessage.Parse(DnsTestClient.ReceiveMessage(probe)!).Header.Id);
        }
        held.Reply.Send(Response(held.Query));
        held.Reply.Abandon();
        using var next = Connect(listener.LocalEndPoint);
        DnsTestClient.Send(next, Query("now.test.", 11));
        Assert.Equal(11, DnsMessage.Parse(DnsTestClient.ReceiveMessage(next)!).Header.Id);
    }

    [Theory]
    [InlineData(TcpEngineKind.EventLoops)]
    [InlineData(TcpEngineKind.Async)]
    public void A_client_that_closes_its_sending_side_still_gets_its_deferred_answer(TcpEngineKind engine)
    {
        var processor = new DeferringProcessor();
        using var listener = Tcp(processor, engine);
        listener.Start();
        using var socket = Connect(listener.LocalEndPoint);
        DnsTestClient.Send(socket, Query("defer.test.", 21));
        var (_, reply, query) = processor.Next();
        socket.Shutdown(SocketShutdown.Send);
        reply.Send(Response(query));
        Assert.Equal(21, DnsMessage.Parse(DnsTestClient.ReceiveMessage(socket)!).Header.Id);
        Assert.Null(DnsTestClient.ReceiveMessage(socket));   // then the server closes
    }
}
