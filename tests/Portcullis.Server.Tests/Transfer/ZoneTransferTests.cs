using System.Net;
using System.Net.Sockets;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Records;
using Portcullis.Server.Pipeline;
using Portcullis.Server.Security;
using Portcullis.Server.Tests.Support;
using Portcullis.Transport;
using static Portcullis.Server.Tests.Transfer.TransferClient;

namespace Portcullis.Server.Tests.Transfer;

/// <summary>
/// Outgoing AXFR (RFC 5936) and IXFR answered without a journal (RFC 1995): what dig, kdig and the
/// test's own reader get, over both TCP engines, and the policy around it (allow-transfer, UDP).
/// </summary>
public sealed class ZoneTransferTests
{
    private const string Origin = "example.test.";

    private static List<string> ExampleRecords() => Parse(TestServer.ExampleZone, Origin);

    /// <summary>The TCP endpoint of the engine asked for: the server's own (epoll on Linux) or a second listener.</summary>
    private static (IPEndPoint EndPoint, IDisposable? Extra) Engine(TestServer server, string engine)
    {
        if (engine == "epoll") return (server.EndPoint, null);
        var listener = Listener(server, TcpEngineKind.Async);
        return (listener.LocalEndPoint, listener);
    }

    [Theory]
    [InlineData("epoll")]
    [InlineData("async")]
    public void Dig_and_kdig_get_the_zone_file_with_the_SOA_first_and_last(string engine)
    {
        using var server = new TestServer(AllowLoopback, (Origin, TestServer.ExampleZone));
        var (endPoint, extra) = Engine(server, engine);
        using var _ = extra;
        AssertSameZone(ExampleRecords(), Parse(Dig(endPoint, Origin), Origin));
        AssertSameZone(ExampleRecords(), Parse(Kdig(endPoint, Origin), Origin));
    }

    [Theory]
    [InlineData("epoll")]
    [InlineData("async")]
    public void The_first_message_has_the_question_and_every_message_the_query_id_and_AA(string engine)
    {
        using var server = new TestServer(AllowLoopback, (Origin, TestServer.ExampleZone));
        var (endPoint, extra) = Engine(server, engine);
        using var _ = extra;
        var t = Pull(endPoint, Origin);
        Assert.Equal(Rcode.NoError, t.Rcode);
        var first = Assert.Single(t.Messages);
        Assert.Equal(RecordType.AXFR, Assert.Single(first.Questions).Type);
        Assert.True(first.Header.AuthoritativeAnswer);
        AssertSameZone(ExampleRecords(), Lines(t.Records));
    }

    [Theory]
    [InlineData("epoll")]
    [InlineData("async")]
    public void A_100000_record_zone_with_an_RRset_larger_than_a_message_arrives_whole_in_many_messages(string engine)
    {
        const string origin = "big.test.";
        string zone = GenerateZone(origin, hosts: 50_000, bigSetRecords: 3_000);
        var expected = Parse(zone, origin);
        Assert.True(expected.Count > 100_000);
        using var server = new TestServer(AllowLoopback, (origin, zone));
        var (endPoint, extra) = Engine(server, engine);
        using var _ = extra;

        var t = Pull(endPoint, origin);
        Assert.True(t.Messages.Count > 20, $"{t.Messages.Count} messages");
        Assert.All(t.Messages, m => Assert.Equal(t.Messages[0].Header.Id, m.Header.Id));
        Assert.Single(t.Messages[0].Questions);
        Assert.All(t.Messages.Skip(1), m => Assert.Empty(m.Questions));
        // The 3,000-record TXT RRset (about 190 KB) was split across messages.
        Assert.True(t.Messages.Count(m => m.Answers.Any(r => r.Type == RecordType.TXT)) >= 3);
        AssertSameZone(expected, Lines(t.Records));
        AssertSameZone(expected, Parse(Kdig(endPoint, origin), origin));
        Assert.Equal(0, server.Server.Processor.Transfers.Active);
    }

    [Fact]
    public void Transfers_are_refused_without_allow_transfer()
    {
        using var server = new TestServer((Origin, TestServer.ExampleZone));
        foreach (var type in new[] { RecordType.AXFR, RecordType.IXFR })
        {
            var t = Pull(server.EndPoint, Origin, type, type == RecordType.IXFR ? 1u : null);
            Assert.Equal(Rcode.Refused, t.Rcode);
            Assert.Empty(t.Records);
        }
        Assert.Equal(2, server.Server.Processor.Counters[SecurityReason.TransferRefused]);
        Assert.Equal(0, server.Server.Processor.Transfers.Completed);
    }

    [Fact]
    public void Over_UDP_AXFR_gets_FORMERR_and_IXFR_only_the_SOA()
    {
        using var server = new TestServer(AllowLoopback, (Origin, TestServer.ExampleZone));
        var client = server.Client();
        var axfr = client.Udp(Origin, RecordType.AXFR);
        Assert.Equal(Rcode.FormErr, axfr.Rcode);
        Assert.Empty(axfr.Answers);
        // RFC 1995 §2: behind or not, a UDP IXFR gets the current SOA, to go on over TCP.
        var ixfr = DnsMessage.Parse(client.UdpRaw(Query(Origin, RecordType.IXFR, 1).ToWire()));
        Assert.Equal(Rcode.NoError, ixfr.Rcode);
        Assert.Equal(RecordType.SOA, Assert.Single(ixfr.Answers).Type);
    }

    [Theory]
    [InlineData("epoll")]
    [InlineData("async")]
    public void IXFR_from_the_current_or_a_newer_serial_is_one_SOA_and_from_an_older_one_the_whole_zone(string engine)
    {
        using var server = new TestServer(AllowLoopback, (Origin, TestServer.ExampleZone));
        var (endPoint, extra) = Engine(server, engine);
        using var _ = extra;
        string soa = Assert.Single(ExampleRecords(), l => l.Contains(" soa "));

        foreach (uint serial in new uint[] { 2024060101, 2024060102, 2024060101u + 0x7FFFFFFFu })
        {
            var current = Pull(endPoint, Origin, RecordType.IXFR, serial);
            Assert.Equal(Rcode.NoError, current.Rcode);
            Assert.Equal(soa, Line(Assert.Single(Assert.Single(current.Messages).Answers)));
        }
        // Older in RFC 1982 arithmetic, across the wrap too: the whole zone, AXFR-style (RFC 1995 §4).
        foreach (uint serial in new uint[] { 2024060100, 1, 2024060101u + 0x80000001u })
        {
            var old = Pull(endPoint, Origin, RecordType.IXFR, serial);
            Assert.Equal(RecordType.IXFR, old.Messages[0].Questions[0].Type);
            AssertSameZone(ExampleRecords(), Lines(old.Records));
        }
        // RFC 1995 §3: the SOA is required.
        Assert.Equal(Rcode.FormErr, Pull(endPoint, Origin, RecordType.IXFR).Rcode);
    }

    [Fact]
    public void A_transfer_of_a_name_that_is_not_a_zone_apex_is_NOTAUTH()
    {
        using var server = new TestServer(AllowLoopback, (Origin, TestServer.ExampleZone));
        Assert.Equal(Rcode.NotAuth, Pull(server.EndPoint, "www.example.test.").Rcode);
    }

    [Fact]
    public void Kdig_IXFR_from_an_old_serial_gets_the_zone()
    {
        using var server = new TestServer(AllowLoopback, (Origin, TestServer.ExampleZone));
        AssertSameZone(ExampleRecords(), Parse(Kdig(server.EndPoint, Origin, "IXFR=2024010101"), Origin));
    }
}
