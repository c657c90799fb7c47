using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Time.Testing;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.Tsig;
using Portcullis.Server.Configuration;
using Portcullis.Server.Replication;
using Portcullis.Server.Tests.Support;
using Portcullis.Testing;
using Xunit;
using TsigCodec = Portcullis.Protocol.Tsig.Tsig;

namespace Portcullis.Server.Tests.Replication;

/// <summary>
/// Sending NOTIFY (RFC 1996): the message a raw socket receives (opcode, AA, question, the new SOA,
/// TSIG that our verifier accepts), one send when answered, bounded retransmission when not, the
/// end of the tries on a refusal or a bad signature, replies from elsewhere ignored; and real Knot
/// and BIND secondaries of Portcullis pulling the new serial when told, with and without TSIG.
/// </summary>
public sealed class NotifySenderTests
{
    private static readonly PeerKey Key = PeerKey.TestOnly;
    private const string WrongSecret = "b3RoZXItdGVzdC1vbmx5LXNlY3JldC0zMi1vY3RldHM=";
    private const string Origin = "example.test.";
    private const uint OldSerial = 2024060101, NewSerial = 2024060102;
    private static readonly DnsName Zone = DnsName.Parse(Origin);
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    private static TsigKey Tsig(string secret = "") =>
        new(DnsName.Parse(Key.Name), TsigAlgorithm.HmacSha256, Convert.FromBase64String(secret.Length > 0 ? secret : Key.Secret));

    private static ResourceRecord Soa(uint serial)
    {
        var rdata = new List<byte>();
        rdata.AddRange(DnsName.Parse("ns1." + Origin).Wire.ToArray());
        rdata.AddRange(DnsName.Parse("hostmaster." + Origin).Wire.ToArray());
        var numbers = new byte[20];
        BinaryPrimitives.WriteUInt32BigEndian(numbers, serial);
        BinaryPrimitives.WriteUInt32BigEndian(numbers.AsSpan(4), 7200);
        BinaryPrimitives.WriteUInt32BigEndian(numbers.AsSpan(8), 1800);
        BinaryPrimitives.WriteUInt32BigEndian(numbers.AsSpan(12), 1209600);
        BinaryPrimitives.WriteUInt32BigEndian(numbers.AsSpan(16), 300);
        rdata.AddRange(numbers);
        return new ResourceRecord(Zone, RecordType.SOA, RecordClass.IN, 3600, [.. rdata]);
    }

    private static uint Serial(ResourceRecord soa) => BinaryPrimitives.ReadUInt32BigEndian(soa.Data.AsSpan(soa.Data.Length - 20));

    /// <summary>A secondary played by the test: a raw UDP socket on 127.0.0.1 and a free port.</summary>
    private sealed class RawSecondary : IDisposable
    {
        public RawSecondary()
        {
            Socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { ReceiveTimeout = (int)Bound.TotalMilliseconds };
            Socket.Bind(new IPEndPoint(IPAddress.Loopback, FreePort.ForUdpAndTcp()));
            EndPoint = (IPEndPoint)Socket.LocalEndPoint!;
        }

        public Socket Socket { get; }
        public IPEndPoint EndPoint { get; }
        public EndPoint LastSender { get; private set; } = new IPEndPoint(IPAddress.Any, 0);

        /// <summary>The next datagram (a bounded wait: a missing NOTIFY fails the test with a SocketException).</summary>
        public byte[] Receive()
        {
            var buffer = new byte[65535];
            EndPoint from = new IPEndPoint(IPAddress.Any, 0);
            int n = Socket.ReceiveFrom(buffer, ref from);
            LastSender = from;
            return buffer[..n];
        }

        /// <summary>Answers a NOTIFY as a secondary does (RFC 1996 §4.7): same ID and question, QR set, no records; signed over the request's MAC when a key is given.</summary>
        public void Answer(byte[] request, Rcode rcode, TsigKey? key = null, long? now = null, Socket? from = null)
        {
            var notify = DnsMessage.Parse(request);
            var reply = new DnsMessage { Header = new DnsHeader { Id = notify.Header.Id } };
            reply.Header.IsResponse = true;
            reply.Header.Opcode = Opcode.Notify;
            reply.Header.AuthoritativeAnswer = true;
            reply.Header.Rcode = (byte)rcode;
            reply.Questions.AddRange(notify.Questions);
            var wire = reply.ToWire();
            if (key is not null)
            {
                Assert.Equal(TsigPresence.Found, TsigCodec.Find(request, out var record));
                var buffer = new byte[wire.Length + TsigCodec.MaxRecordSize(key)];
                wire.CopyTo(buffer, 0);
                var mac = new byte[TsigAlgorithms.MaxMacSize];
                int length = TsigCodec.Sign(buffer, wire.Length, key, record.Mac(request), hasPrior: true, now ?? DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
                    TsigCodec.DefaultFudge, TsigError.NoError, default, timersOnly: false, mac, out _);
                wire = buffer[..length];
            }
            (from ?? Socket).SendTo(wire, LastSender);
        }

        public void Dispose() => Socket.Dispose();
    }

    private static (NotifySender Sender, CollectingLoggerFactory Logs, FakeTimeProvider Time) Sender()
    {
        var logs = new CollectingLoggerFactory();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        return (new NotifySender(logs.CreateLogger("notify"), time), logs, time);
    }

    private static string Text(CollectingLoggerFactory logs) => string.Join("\n", logs.Lines);

    [Fact]
    public async Task The_notify_carries_opcode_AA_the_question_and_the_new_SOA_and_NOERROR_ends_it_after_one_send()
    {
        using var peer = new RawSecondary();
        var (sender, logs, _) = Sender();
        var task = sender.NotifyAsync(Zone, Soa(NewSerial), new NotifyTarget(peer.EndPoint, null), CancellationToken.None);

        var request = peer.Receive();
        var m = DnsMessage.Parse(request);
        Assert.False(m.Header.IsResponse);
        Assert.Equal(Opcode.Notify, m.Header.Opcode);
        Assert.True(m.Header.AuthoritativeAnswer);
        Assert.Equal(Rcode.NoError, m.Rcode);
        Assert.Equal([new DnsQuestion(Zone, RecordType.SOA, RecordClass.IN)], m.Questions);
        Assert.Equal([Soa(NewSerial)], m.Answers);
        Assert.Empty(m.Authority);
        Assert.Empty(m.Additional);
        Assert.Null(m.Edns);

        peer.Answer(request, Rcode.NoError);
        Assert.True(await task.WaitAsync(Bound));
        Assert.Equal(0, peer.Socket.Available);   // the fake clock never moved: one send, no retransmission
        var line = Assert.Single(logs.Lines);
        Assert.StartsWith("Information", line);
        Assert.Contains($"zone {Origin} serial {NewSerial} to {peer.EndPoint}: acknowledged", line);
    }

    [Fact]
    public async Task With_a_key_the_notify_is_signed_so_that_our_verifier_accepts_it_and_the_signed_answer_is_checked()
    {
        using var peer = new RawSecondary();
        var (sender, logs, time) = Sender();
        var key = Tsig();
        var task = sender.NotifyAsync(Zone, Soa(NewSerial), new NotifyTarget(peer.EndPoint, key), CancellationToken.None);

        var request = peer.Receive();
        Assert.Equal(TsigPresence.Found, TsigCodec.Find(request, out var record));
        Assert.Equal(TsigStatus.Ok, TsigCodec.VerifyMac(request, record, key, default, hasPrior: false));
        Assert.True(TsigCodec.TimeIsValid(record, time.GetUtcNow().ToUnixTimeSeconds()));
        Assert.Equal(BinaryPrimitives.ReadUInt16BigEndian(request), record.OriginalId);
        var m = DnsMessage.Parse(request);
        Assert.Equal(Opcode.Notify, m.Header.Opcode);
        Assert.Equal([Soa(NewSerial)], m.Answers);

        peer.Answer(request, Rcode.NoError, key, time.GetUtcNow().ToUnixTimeSeconds());
        Assert.True(await task.WaitAsync(Bound), Text(logs));
        Assert.Contains($"to {peer.EndPoint} key {Key.Name}.: acknowledged", Assert.Single(logs.Lines));
    }

    [Fact]
    public async Task An_answer_signed_with_another_secret_ends_the_tries_with_a_warning()
    {
        using var peer = new RawSecondary();
        var (sender, logs, time) = Sender();
        var task = sender.NotifyAsync(Zone, Soa(NewSerial), new NotifyTarget(peer.EndPoint, Tsig()), CancellationToken.None);
        var request = peer.Receive();
        peer.Answer(request, Rcode.NoError, Tsig(WrongSecret), time.GetUtcNow().ToUnixTimeSeconds());
        Assert.False(await task.WaitAsync(Bound));
        Assert.Equal(0, peer.Socket.Available);
        var line = Assert.Single(logs.Lines);
        Assert.StartsWith("Warning", line);
        Assert.Contains("TSIG: the signature does not verify", line);
    }

    [Fact]
    public async Task An_unsigned_answer_to_a_signed_notify_is_a_failure()
    {
        using var peer = new RawSecondary();
        var (sender, logs, _) = Sender();
        var task = sender.NotifyAsync(Zone, Soa(NewSerial), new NotifyTarget(peer.EndPoint, Tsig()), CancellationToken.None);
        peer.Answer(peer.Receive(), Rcode.NoError);
        Assert.False(await task.WaitAsync(Bound));
        Assert.Contains("TSIG: the reply is not signed", Assert.Single(logs.Lines));
    }

    [Theory]
    [InlineData(Rcode.Refused, "REFUSED")]
    [InlineData(Rcode.NotAuth, "NOTAUTH")]
    [InlineData(Rcode.NotImp, "NOTIMP")]
    public async Task A_refusal_ends_the_tries_at_once_with_a_warning(Rcode rcode, string text)
    {
        using var peer = new RawSecondary();
        var (sender, logs, _) = Sender();
        var task = sender.NotifyAsync(Zone, Soa(NewSerial), new NotifyTarget(peer.EndPoint, null), CancellationToken.None);
        peer.Answer(peer.Receive(), rcode);
        Assert.False(await task.WaitAsync(Bound));
        Assert.Equal(0, peer.Socket.Available);
        var line = Assert.Single(logs.Lines);
        Assert.StartsWith("Warning", line);
        Assert.Contains($"serial {NewSerial} to {peer.EndPoint} failed: answered {text}", line);
    }

    [Fact]
    public async Task Without_an_answer_it_retransmits_on_the_growing_schedule_then_gives_up()
    {
        using var peer = new RawSecondary();
        var (sender, logs, time) = Sender();
        var task = sender.NotifyAsync(Zone, Soa(NewSerial), new NotifyTarget(peer.EndPoint, null), CancellationToken.None);
        var intervals = NotifySender.DefaultIntervals;
        Assert.InRange(intervals.Count, 3, 8);
        Assert.InRange(intervals.Aggregate(TimeSpan.Zero, (a, b) => a + b), TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(90));

        var first = peer.Receive();
        for (int i = 0; i < intervals.Count; i++)
        {
            // Just short of the interval nothing more is sent; at the interval the next send goes.
            time.Advance(intervals[i] - TimeSpan.FromMilliseconds(1));
            Assert.False(task.IsCompleted);
            Assert.Equal(0, peer.Socket.Available);
            if (i > 0) Assert.True(intervals[i] > intervals[i - 1]);
            time.Advance(TimeSpan.FromMilliseconds(1));
            if (i == intervals.Count - 1) break;
            Assert.Equal(first, peer.Receive());   // the same message, same ID, every time
        }
        Assert.False(await task.WaitAsync(Bound));
        Assert.Equal(0, peer.Socket.Available);
        var line = Assert.Single(logs.Lines);
        Assert.StartsWith("Warning", line);
        Assert.Contains($"no answer after {intervals.Count} sends in 60 s", line);
    }

    [Fact]
    public async Task An_ICMP_port_unreachable_ends_the_tries()
    {
        // RFC 1996 §3.6: retransmit until a response, a timeout, or an ICMP port unreachable. The
        // fake clock never moves, so only the ICMP error can end this.
        var closed = new IPEndPoint(IPAddress.Loopback, FreePort.ForUdpAndTcp());
        var (sender, logs, _) = Sender();
        Assert.False(await sender.NotifyAsync(Zone, Soa(NewSerial), new NotifyTarget(closed, null), CancellationToken.None).WaitAsync(Bound));
        var line = Assert.Single(logs.Lines);
        Assert.StartsWith("Warning", line);
        Assert.Contains($"to {closed} failed: port unreachable", line);
    }

    [Fact]
    public async Task Replies_from_another_port_or_with_another_ID_are_ignored()
    {
        using var peer = new RawSecondary();
        using var stranger = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        stranger.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var (sender, logs, _) = Sender();
        var task = sender.NotifyAsync(Zone, Soa(NewSerial), new NotifyTarget(peer.EndPoint, null), CancellationToken.None);
        var request = peer.Receive();

        peer.Answer(request, Rcode.NoError, from: stranger);    // right ID, wrong source
        var otherId = (byte[])request.Clone();
        otherId[0] ^= 0xFF;
        peer.Answer(otherId, Rcode.NoError);                    // right source, wrong ID
        var query = (byte[])request.Clone();
        peer.Socket.SendTo(query, peer.LastSender);             // QR clear: not a reply
        // Sent last, from the target: the only one that counts. (Were the strays delivered after
        // it, the outcome would still be REFUSED: this can miss a bug, never invent one.)
        peer.Answer(request, Rcode.Refused);
        Assert.False(await task.WaitAsync(Bound));
        Assert.Contains("answered REFUSED", Assert.Single(logs.Lines));
    }

    [Fact]
    public async Task NotifyAll_tells_every_target_at_once_and_returns_quietly_when_cancelled()
    {
        using var a = new RawSecondary();
        using var b = new RawSecondary();
        var (sender, logs, _) = Sender();
        var all = sender.NotifyAllAsync(Zone, Soa(NewSerial), [new NotifyTarget(a.EndPoint, null), new NotifyTarget(b.EndPoint, null)], CancellationToken.None);
        // Both sent before either is answered: in parallel, not one after the other.
        var ra = a.Receive();
        var rb = b.Receive();
        a.Answer(ra, Rcode.NoError);
        b.Answer(rb, Rcode.Refused);
        await all.WaitAsync(Bound);
        Assert.Equal(2, logs.Lines.Count);
        Assert.Contains(logs.Lines, l => l.StartsWith("Information") && l.Contains($"to {a.EndPoint}: acknowledged"));
        Assert.Contains(logs.Lines, l => l.StartsWith("Warning") && l.Contains($"to {b.EndPoint} failed: answered REFUSED"));

        using var cancel = new CancellationTokenSource();
        var (sender2, logs2, _) = Sender();
        var pending = sender2.NotifyAllAsync(Zone, Soa(NewSerial), [new NotifyTarget(a.EndPoint, null)], cancel.Token);
        a.Receive();
        cancel.Cancel();
        await pending.WaitAsync(Bound);   // no exception
        Assert.Empty(logs2.Lines);
    }

    private static void KeyOnly(ServerConfig c)
    {
        c.Keys = [new KeyConfig { Name = Key.Name, Algorithm = Key.Algorithm, Secret = Key.Secret }];
        c.AllowTransfer = [$"key {Key.Name}"];
    }

    [Theory]
    [InlineData("knot", false)]
    [InlineData("knot", true)]
    [InlineData("bind", false)]
    [InlineData("bind", true)]
    public async Task A_Knot_or_BIND_secondary_pulls_the_new_serial_when_notified(string peer, bool signed)
    {
        using var primary = new TestServer(signed ? KeyOnly : Transfer.TransferClient.AllowLoopback, (Origin, TestServer.ExampleZone));
        var tcp = primary.Server.TcpEndPoints[0];
        using SecondaryPeer secondary = peer == "knot"
            ? new KnotSecondary(tcp, [Origin.TrimEnd('.')], key: signed ? Key : null)
            : new BindSecondary(tcp, [Origin.TrimEnd('.')], key: signed ? Key : null);
        var client = new DnsTestClient(secondary.EndPoint);
        Assert.Equal(OldSerial, Serial(client.Udp(Origin, RecordType.SOA).Answers.Single()));

        // The change: a new serial and one more record; the primary reloads the file.
        File.WriteAllText(primary.ZoneFile(Origin), TestServer.ExampleZone.Replace(OldSerial.ToString(), NewSerial.ToString()) + "added A 192.0.2.7\n");
        Assert.Equal(0, primary.Server.Reload());
        var soa = primary.Client().Udp(Origin, RecordType.SOA).Answers.Single();
        Assert.Equal(NewSerial, Serial(soa));

        // From the primary's address: BIND takes NOTIFY only from an address in its primaries list.
        var logs = new CollectingLoggerFactory();
        var sender = new NotifySender(logs.CreateLogger("notify")) { Source = primary.Address };
        bool acknowledged = await sender.NotifyAsync(Zone, soa, new NotifyTarget(secondary.EndPoint, signed ? Tsig() : null), CancellationToken.None);
        Assert.True(acknowledged, Text(logs) + "\n" + secondary.Log);

        // The secondary's own log says it transferred the new version (its SOA refresh is 2 h away).
        string pulled = peer == "knot" ? $"-> {NewSerial}" : $"transferred serial {NewSerial}";
        Assert.True(secondary.WaitForLog(pulled, TimeSpan.FromSeconds(30)), secondary.Log);
        Assert.Equal(NewSerial, Serial(client.Udp(Origin, RecordType.SOA).Answers.Single()));
        Assert.Contains(client.Udp("added." + Origin, RecordType.A).Answers, r => r.Type == RecordType.A);
    }

    [Theory]
    [InlineData("knot")]
    [InlineData("bind")]
    public void A_zone_with_notify_targets_notifies_them_when_a_reload_brings_a_newer_serial(string peer)
    {
        // serve itself sends the NOTIFY: the zone's notify: list, on reload with a newer serial.
        int secondaryPort = FreePort.ForUdpAndTcp();
        using var primary = new TestServer(c =>
        {
            KeyOnly(c);
            c.Zones[0].Notify = [$"127.0.0.1@{secondaryPort} key {Key.Name}"];
        }, (Origin, TestServer.ExampleZone));
        var tcp = primary.Server.TcpEndPoints[0];
        using SecondaryPeer secondary = peer == "knot"
            ? new KnotSecondary(tcp, [Origin.TrimEnd('.')], port: secondaryPort, key: Key)
            : new BindSecondary(tcp, [Origin.TrimEnd('.')], port: secondaryPort, key: Key);
        var client = new DnsTestClient(secondary.EndPoint);
        Assert.Equal(OldSerial, Serial(client.Udp(Origin, RecordType.SOA).Answers.Single()));

        File.WriteAllText(primary.ZoneFile(Origin), TestServer.ExampleZone.Replace(OldSerial.ToString(), NewSerial.ToString()) + "added A 192.0.2.7\n");
        Assert.Equal(0, primary.Server.Reload());

        string pulled = peer == "knot" ? $"-> {NewSerial}" : $"transferred serial {NewSerial}";
        Assert.True(secondary.WaitForLog(pulled, TimeSpan.FromSeconds(30)), secondary.Log);
        Assert.Contains(client.Udp("added." + Origin, RecordType.A).Answers, r => r.Type == RecordType.A);
    }
}
