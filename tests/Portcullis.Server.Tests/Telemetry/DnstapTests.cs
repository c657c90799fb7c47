using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Google.Protobuf;
using Portcullis.Server.Telemetry;
using Portcullis.Testing;
using Portcullis.Transport;
using Xunit;

namespace Portcullis.Server.Tests.Telemetry;

public sealed class DnstapTests : IDisposable
{
    static readonly (string Name, ushort Type, string TypeText)[] Questions =
    [
        ("www0.example.test", 1, "A"), ("mail1.example.test", 15, "MX"), ("v6-2.example.test", 28, "AAAA"),
        ("txt3.example.test", 16, "TXT"), ("ns4.example.test", 2, "NS"),
    ];

    readonly string _dir = Directory.CreateTempSubdirectory("dnstap-").FullName;
    readonly SocketAddress _client = new IPEndPoint(IPAddress.Parse("127.0.0.5"), 40123).Serialize();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>A query for NAME/TYPE IN (RFC 1035 §4.1), or its response twin (QR and AA set, no records, for CRs).</summary>
    static byte[] Message(ushort id, string name, ushort type, bool response)
    {
        var m = new List<byte>();
        m.AddRange([(byte)(id >> 8), (byte)id, (byte)(response ? 0x84 : 0x01), 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        foreach (var label in name.Split('.'))
        {
            m.Add((byte)label.Length);
            m.AddRange(Encoding.ASCII.GetBytes(label));
        }
        m.AddRange([0, (byte)(type >> 8), (byte)type, 0, 1]);
        return m.ToArray();
    }

    static void LogAll(DnstapLogger logger, TransportKind transport, SocketAddress client)
    {
        for (int i = 0; i < Questions.Length; i++)
        {
            var (name, type, _) = Questions[i];
            logger.LogClientQuery(Message((ushort)(i + 1), name, type, response: false), transport, client);
            logger.LogClientResponse(Message((ushort)(i + 1), name, type, response: true), transport, client);
        }
    }

    [Fact]
    public async Task FileIsReadByDnstapRead()
    {
        string path = Path.Combine(_dir, "out.dnstap");
        var logger = new DnstapLogger(DnstapFrameWriter.CreateFile(path), "ns1.test", "portcullis-test");
        LogAll(logger, TransportKind.Udp, _client);
        await logger.DisposeAsync();
        Assert.Equal(2 * Questions.Length, logger.Written);
        Assert.Equal(0, logger.Dropped);

        // Short form: one line per message, "CQ addr:port -> ... UDP size name/IN/TYPE".
        var text = ExternalProcess.Run("dnstap-read", [path]).EnsureSuccess().Stdout;
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2 * Questions.Length, lines.Length);
        for (int i = 0; i < Questions.Length; i++)
        {
            var (name, _, typeText) = Questions[i];
            foreach (var (line, kind) in new[] { (lines[2 * i], " CQ "), (lines[2 * i + 1], " CR ") })
            {
                Assert.Contains(kind, line);
                Assert.Contains("127.0.0.5:40123", line);
                Assert.Contains(" UDP ", line);
                Assert.Contains($"{name}/IN/{typeText}", line);
            }
        }

        // YAML form: identity, version, message types and the decoded questions.
        var yaml = ExternalProcess.Run("dnstap-read", ["-y", path]).EnsureSuccess().Stdout;
        Assert.Contains("identity: ns1.test", yaml);
        Assert.Contains("version: portcullis-test", yaml);
        Assert.Equal(Questions.Length, Count(yaml, "type: CLIENT_QUERY"));
        Assert.Equal(Questions.Length, Count(yaml, "type: CLIENT_RESPONSE"));
        Assert.Equal(2 * Questions.Length, Count(yaml, "socket_protocol: UDP"));
        Assert.Equal(2 * Questions.Length, Count(yaml, "query_address: \"127.0.0.5\""));
        foreach (var (name, _, typeText) in Questions)
            Assert.Equal(2, Count(yaml, $"- '{name}. IN {typeText}'"));   // QUESTION_SECTION of the CQ and of the CR
    }

    [Fact]
    public async Task TcpAndIpv6ClientsAreRecorded()
    {
        string path = Path.Combine(_dir, "v6.dnstap");
        var v6 = new IPEndPoint(IPAddress.Parse("2001:db8::53"), 5353).Serialize();
        var logger = new DnstapLogger(DnstapFrameWriter.CreateFile(path), "id", "v");
        logger.LogClientQuery(Message(7, "tcp.example.test", 1, false), TransportKind.Tcp, v6);
        await logger.DisposeAsync();
        var line = ExternalProcess.Run("dnstap-read", [path]).EnsureSuccess().Stdout.Trim();
        Assert.Contains(" CQ ", line);
        Assert.Contains("2001:db8::53", line);
        Assert.Contains(" TCP ", line);
        Assert.Contains("tcp.example.test/IN/A", line);
    }

    [Fact]
    public async Task UnixSocketSpeaksTheFrameStreamsHandshake()
    {
        string path = Path.Combine(_dir, "tap.sock");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen(1);
        var collector = Task.Run(() => Collect(listener));

        var logger = new DnstapLogger(DnstapFrameWriter.ConnectUnix(path, TimeSpan.FromSeconds(10)), "sock-id", "sock-v");
        LogAll(logger, TransportKind.Udp, _client);
        await logger.DisposeAsync();   // STOP, then waits for the collector's FINISH

        var (controls, frames) = await collector;
        Assert.Equal(["READY", "START", "STOP"], controls);
        Assert.Equal(2 * Questions.Length, frames.Count);
        for (int i = 0; i < Questions.Length; i++)
        {
            var q = Decode(frames[2 * i]);
            var r = Decode(frames[2 * i + 1]);
            Assert.Equal(("sock-id", "sock-v", 1), (q.Identity, q.Version, q.DnstapType));
            Assert.Equal((DnstapMessageType.ClientQuery, 1, DnstapSocketProtocol.Udp, 40123), (q.Type, q.Family, q.Protocol, q.Port));
            Assert.Equal(new byte[] { 127, 0, 0, 5 }, q.Address);
            Assert.Equal(Message((ushort)(i + 1), Questions[i].Name, Questions[i].Type, false), q.QueryMessage);
            Assert.True(q.QueryTimeSec > 0);
            Assert.Equal(DnstapMessageType.ClientResponse, r.Type);
            Assert.Equal(Message((ushort)(i + 1), Questions[i].Name, Questions[i].Type, true), r.ResponseMessage);
            Assert.True(r.ResponseTimeSec > 0);
        }
    }

    [Fact]
    public async Task CollectorThatRefusesTheContentTypeFailsTheConnect()
    {
        string path = Path.Combine(_dir, "refuse.sock");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen(1);
        var collector = Task.Run(() =>
        {
            using var s = listener.Accept();
            using var stream = new NetworkStream(s);
            FrameStreams.ReadControl(stream);
            // An ACCEPT without our content type: the writer must not start.
            stream.Write(new byte[] { 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 1 });
            return stream.Read(new byte[1]);
        });
        Assert.Throws<IOException>(() => DnstapFrameWriter.ConnectUnix(path, TimeSpan.FromSeconds(10)));
        Assert.Equal(0, await collector);   // the writer closed the connection, sending no START
    }

    [Fact]
    public async Task FullChannelDropsAndCountsInsteadOfBlocking()
    {
        const int capacity = 8, extra = 5;
        var gate = new GatedStream();
        var logger = new DnstapLogger(DnstapFrameWriter.Unidirectional(gate), capacity: capacity);
        gate.Arm();
        var query = Message(1, "drop.example.test", 1, false);
        logger.LogClientQuery(query, TransportKind.Udp, _client);
        gate.Entered.Wait();   // the writer task holds that one message, blocked in its flush

        for (int i = 0; i < capacity + extra; i++)
            logger.LogClientQuery(query, TransportKind.Udp, _client);   // returns at once even though the output is stuck
        Assert.Equal(extra, logger.Dropped);

        gate.Release();
        await logger.DisposeAsync();
        Assert.Equal(1 + capacity, logger.Written);
        Assert.Equal(extra, logger.Dropped);
    }

    static int Count(string text, string what)
    {
        int n = 0;
        for (int at = text.IndexOf(what, StringComparison.Ordinal); at >= 0; at = text.IndexOf(what, at + 1, StringComparison.Ordinal)) n++;
        return n;
    }

    /// <summary>A collector: reads READY, answers ACCEPT, reads START, frames and STOP, answers FINISH.</summary>
    static (List<string> Controls, List<byte[]> Frames) Collect(Socket listener)
    {
        var controls = new List<string>();
        var frames = new List<byte[]>();
        using var s = listener.Accept();
        using var stream = new NetworkStream(s);
        var (ready, types) = FrameStreams.ReadControl(stream);
        Assert.Equal(FrameStreams.Ready, ready);
        Assert.Contains(FrameStreams.DnstapContentType, types);
        controls.Add("READY");
        FrameStreams.WriteControl(stream, FrameStreams.Accept, withContentType: true);
        var (start, startTypes) = FrameStreams.ReadControl(stream);
        Assert.Equal(FrameStreams.Start, start);
        Assert.Equal([FrameStreams.DnstapContentType], startTypes);
        controls.Add("START");
        var length = new byte[4];
        while (true)
        {
            stream.ReadExactly(length);
            int n = (int)BinaryPrimitives.ReadUInt32BigEndian(length);
            if (n == 0)
            {
                // The escape: read the rest of the control frame by hand (its length, then the body).
                stream.ReadExactly(length);
                var body = new byte[BinaryPrimitives.ReadUInt32BigEndian(length)];
                stream.ReadExactly(body);
                Assert.Equal(FrameStreams.Stop, BinaryPrimitives.ReadUInt32BigEndian(body));
                controls.Add("STOP");
                break;
            }
            var frame = new byte[n];
            stream.ReadExactly(frame);
            frames.Add(frame);
        }
        FrameStreams.WriteControl(stream, FrameStreams.Finish, withContentType: false);
        return (controls, frames);
    }

    sealed record Decoded(string Identity, string Version, int DnstapType, DnstapMessageType Type, int Family,
        DnstapSocketProtocol Protocol, byte[] Address, int Port, ulong QueryTimeSec, byte[] QueryMessage, ulong ResponseTimeSec,
        byte[] ResponseMessage);

    /// <summary>An independent decoder of the fields this writer sets (dnstap.proto numbers).</summary>
    static Decoded Decode(byte[] frame)
    {
        string identity = "", version = "";
        int dnstapType = 0;
        byte[] message = [];
        var input = new CodedInputStream(frame);
        for (uint tag; (tag = input.ReadTag()) != 0;)
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 1: identity = input.ReadBytes().ToStringUtf8(); break;
                case 2: version = input.ReadBytes().ToStringUtf8(); break;
                case 14: message = input.ReadBytes().ToByteArray(); break;
                case 15: dnstapType = input.ReadEnum(); break;
                default: input.SkipLastField(); break;
            }
        int type = 0, family = 0, protocol = 0, port = 0;
        ulong qsec = 0, rsec = 0;
        byte[] address = [], query = [], response = [];
        var m = new CodedInputStream(message);
        for (uint tag; (tag = m.ReadTag()) != 0;)
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 1: type = m.ReadEnum(); break;
                case 2: family = m.ReadEnum(); break;
                case 3: protocol = m.ReadEnum(); break;
                case 4: address = m.ReadBytes().ToByteArray(); break;
                case 6: port = (int)m.ReadUInt32(); break;
                case 8: qsec = m.ReadUInt64(); break;
                case 10: query = m.ReadBytes().ToByteArray(); break;
                case 12: rsec = m.ReadUInt64(); break;
                case 14: response = m.ReadBytes().ToByteArray(); break;
                default: m.SkipLastField(); break;
            }
        return new Decoded(identity, version, dnstapType, (DnstapMessageType)type, family, (DnstapSocketProtocol)protocol,
            address, port, qsec, query, rsec, response);
    }

    /// <summary>A stream whose writes, once armed, block until released: an output stuck on a slow disk.</summary>
    sealed class GatedStream : MemoryStream
    {
        readonly ManualResetEventSlim _open = new(true);
        public ManualResetEventSlim Entered { get; } = new(false);
        public void Arm() => _open.Reset();
        public void Release() => _open.Set();

        public override void Write(ReadOnlySpan<byte> buffer) => Write(buffer.ToArray(), 0, buffer.Length);

        public override void Write(byte[] buffer, int offset, int count)
        {
            if (!_open.IsSet) Entered.Set();
            _open.Wait();
            base.Write(buffer, offset, count);
        }
    }
}
