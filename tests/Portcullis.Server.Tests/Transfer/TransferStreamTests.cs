using System.Net;
using System.Net.Sockets;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Records;
using Portcullis.Server.Pipeline;
using Portcullis.Server.Tests.Support;
using Portcullis.Transport;
using static Portcullis.Server.Tests.Transfer.TransferClient;

namespace Portcullis.Server.Tests.Transfer;

/// <summary>
/// A transfer is a stream the transport pulls as the socket drains: a client that stops reading
/// holds only its own connection and is cut by the idle timeout; one that goes away frees its
/// place among the concurrent transfers (transfers-out) at once. Both TCP engines.
/// </summary>
public sealed class TransferStreamTests
{
    private const string Big = "big.test.";
    private const string Small = "example.test.";
    // About 9 MB of messages: more than the kernel buffers on both sides hold (tcp_wmem max 4 MB),
    // so a client that does not read stops the transfer.
    private static readonly Lazy<string> BigZone = new(() => GenerateZone(Big, hosts: 200_000));

    private static (TestServer Server, CollectingLoggerFactory Log, IPEndPoint EndPoint, IDisposable? Extra) Start(string engine)
    {
        var log = new CollectingLoggerFactory();
        var server = new TestServer(c => { AllowLoopback(c); c.Limits.TcpIdleTimeout = "700ms"; }, log,
            (Big, BigZone.Value), (Small, TestServer.ExampleZone));
        // One transfer at a time, to see the place taken and given back.
        var p = server.Server.Processor;
        p.Options = new QueryProcessorOptions { Security = p.Options.Security, TransfersOut = 1 };
        if (engine == "epoll") return (server, log, server.EndPoint, null);
        var listener = Listener(server, TcpEngineKind.Async, TimeSpan.FromMilliseconds(700));
        return (server, log, listener.LocalEndPoint, listener);
    }

    /// <summary>Connects with a small receive window, asks for the big zone and reads its first message.</summary>
    private static Socket StartBigTransfer(IPEndPoint endPoint)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp)
        {
            ReceiveBufferSize = 4096,
            ReceiveTimeout = (int)DnsTestClient.Timeout.TotalMilliseconds,
        };
        socket.Connect(endPoint);
        DnsTestClient.Send(socket, Query(Big, RecordType.AXFR).ToWire());
        var first = DnsMessage.Parse(DnsTestClient.ReceiveMessage(socket)!);
        Assert.Equal(Rcode.NoError, first.Rcode);
        Assert.Equal(RecordType.SOA, first.Answers[0].Type);
        return socket;
    }

    [Theory]
    [InlineData("epoll")]
    [InlineData("async")]
    public void A_client_that_stops_reading_blocks_no_one_else_and_is_cut_by_the_idle_timeout(string engine)
    {
        var (server, log, endPoint, extra) = Start(engine);
        using var _ = server;
        using var __ = extra;
        using var stalled = StartBigTransfer(endPoint);
        Assert.Equal(1, server.Server.Processor.Transfers.Active);

        // Others are answered meanwhile, over TCP and UDP; a second transfer is over the limit of one:
        // SERVFAIL, as BIND answers above transfers-out.
        var client = server.Client();
        using (var other = Ask(endPoint, "www.example.test."))
            Assert.Single(DnsMessage.Parse(DnsTestClient.ReceiveMessage(other)!).Answers);
        Assert.Single(client.Udp("www.example.test.", RecordType.A).Answers);
        Assert.Equal(Rcode.ServFail, Pull(endPoint, Small).Rcode);

        // The stalled transfer makes no progress: the idle timeout ends it and frees its place.
        Assert.True(log.WaitFor("abandoned", DnsTestClient.Timeout), string.Join("\n", log.Lines));
        Assert.Equal(0, server.Server.Processor.Transfers.Active);
        Assert.Equal(1, server.Server.Processor.Transfers.Abandoned);
        Assert.Equal(Rcode.NoError, Pull(endPoint, Small).Rcode);
        Assert.True(log.WaitFor("AXFR of example.test. serial 2024060101 to 127.0.0.1: 1 messages, 29 records", DnsTestClient.Timeout));
    }

    [Theory]
    [InlineData("epoll")]
    [InlineData("async")]
    public void A_client_closing_mid_transfer_frees_its_place(string engine)
    {
        var (server, log, endPoint, extra) = Start(engine);
        using var _ = server;
        using var __ = extra;
        var socket = StartBigTransfer(endPoint);
        // Unread data in the receive buffer: close resets the connection, the server's next send fails.
        socket.Close();
        Assert.True(log.WaitFor("abandoned", DnsTestClient.Timeout), string.Join("\n", log.Lines));
        Assert.Equal(0, server.Server.Processor.Transfers.Active);
        var t = Pull(endPoint, Small);
        Assert.Equal(Rcode.NoError, t.Rcode);
        Assert.Equal(29, t.Records.Count);
    }

    [Theory]
    [InlineData("epoll")]
    [InlineData("async")]
    public void Queries_pipelined_behind_a_transfer_are_answered_after_it_in_order(string engine)
    {
        var (server, _, endPoint, extra) = Start(engine);
        using var __ = server;
        using var ___ = extra;
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp)
        {
            ReceiveTimeout = (int)DnsTestClient.Timeout.TotalMilliseconds,
        };
        socket.Connect(endPoint);
        var before = DnsTestClient.Query("www.example.test.", RecordType.A);
        var axfr = Query(Small, RecordType.AXFR);
        var after = DnsTestClient.Query("mail.example.test.", RecordType.A);
        var all = new List<byte>();
        foreach (var q in new[] { before, axfr, after })
        {
            var wire = q.ToWire();
            all.AddRange([(byte)(wire.Length >> 8), (byte)wire.Length, .. wire]);
        }
        socket.Send(all.ToArray());
        var ids = new List<ushort>();
        for (int i = 0; i < 3; i++) ids.Add(DnsMessage.Parse(DnsTestClient.ReceiveMessage(socket)!).Header.Id);
        Assert.Equal([before.Header.Id, axfr.Header.Id, after.Header.Id], ids);
    }

    [Theory]
    [InlineData("epoll")]
    [InlineData("async")]
    public void A_transfer_that_makes_progress_is_not_cut_by_an_idle_timeout_much_shorter_than_it(string engine)
    {
        // A 2 s idle timeout against some 9 MB of messages read at a steady pace (a pause of 300 ms
        // after every 8 messages, the pace of a slow secondary): the transfer lasts several idle
        // timeouts, no gap comes near one, and each message sent restarts it. (Parsing while
        // reading, as before, made the gaps depend on how busy the machine was; with 1 s and 150 ms
        // a loaded CI machine once stalled the reader past the timeout.)
        using var server = new TestServer(c => { AllowLoopback(c); c.Limits.TcpIdleTimeout = "2s"; }, (Big, BigZone.Value));
        var endPoint = server.EndPoint;
        using var listener = engine == "async" ? Listener(server, TcpEngineKind.Async, TimeSpan.FromSeconds(2)) : null;
        if (listener is not null) endPoint = listener.LocalEndPoint;
        using var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = (int)DnsTestClient.Timeout.TotalMilliseconds };
        socket.Connect(endPoint);
        DnsTestClient.Send(socket, Query(Big, RecordType.AXFR).ToWire());
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var wires = new List<byte[]>();
        int soas = 0;
        while (soas < 2)
        {
            var wire = DnsTestClient.ReceiveMessage(socket) ?? throw new IOException($"connection closed after {wires.Count} messages");
            wires.Add(wire);
            soas += DnsMessage.Parse(wire).Answers.Count(r => r.Type == RecordType.SOA);
            if (wires.Count % 8 == 0) Thread.Sleep(300);   // the reader's pace, not synchronisation
        }
        Assert.True(clock.Elapsed > TimeSpan.FromSeconds(4), "the transfer must outlast the idle timeout several times to test anything");
        Assert.Equal(400_000 + 7 + 1, wires.Sum(w => DnsMessage.Parse(w).Answers.Count));   // hosts × (A, MX), the 7 fixed records, the closing SOA
        Assert.Equal(1, server.Server.Processor.Transfers.Completed);
    }

    private static Socket Ask(IPEndPoint endPoint, string name)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp)
        {
            ReceiveTimeout = (int)DnsTestClient.Timeout.TotalMilliseconds,
        };
        socket.Connect(endPoint);
        DnsTestClient.Send(socket, DnsTestClient.Query(name, RecordType.A).ToWire());
        return socket;
    }
}
