using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Portcullis.Testing;

namespace Portcullis.Server.Tests.Cli;

/// <summary>
/// `portcullis query` against a loopback socket that answers badly on purpose: garbage, a wrong
/// ID, a cut message, a compression loop, an oversized TCP length, an invalid RDATA, silence.
/// Each must end in bounded time with one `portcullis:` line on stderr and the documented exit
/// code (docs/query.md: 1 malformed, 9 no reply), never a stack trace or a hang.
/// </summary>
public sealed class QueryHostileReplyTests
{
    /// <summary>A header answering <paramref name="query"/> (QR, its ID) with the given counts, then its question copied.</summary>
    private static List<byte> Answering(byte[] query, ushort answers = 0)
    {
        var reply = new List<byte>(query[..12]);
        reply[2] |= 0x80;                                    // QR
        reply[6] = (byte)(answers >> 8); reply[7] = (byte)answers;
        reply[8] = reply[9] = reply[10] = reply[11] = 0;     // no authority, no additional (the query's OPT dropped)
        int end = 12;
        while (query[end] != 0) end += query[end] + 1;       // our own query: plain labels, no pointers
        reply.AddRange(query[12..(end + 5)]);                // QNAME, QTYPE, QCLASS
        return reply;
    }

    /// <summary>What the test server sends back for a query (null: nothing); TCP replies are framed by the cases themselves.</summary>
    private static byte[]? Reply(string mode, byte[] query)
    {
        switch (mode)
        {
            case "garbage":
                // Our ID, then noise: it claims to be the reply, and is not a DNS message.
                return [query[0], query[1], 0x81, 0x80, 0xFF, 0xFF, 0xFF, 0xFF, 0xDE, 0xAD, 0xBE, 0xEF, 0x01, 0x02, 0x03];
            case "wrong-id":
            {
                var reply = Answering(query);
                reply[1] ^= 0x55;
                return [.. reply];
            }
            case "cut":
            {
                // One answer announced, and the message stops half-way through it.
                var reply = Answering(query, answers: 1);
                reply.AddRange([0xC0, 0x0C, 0x00, 0x01, 0x00]);
                return [.. reply];
            }
            case "owner-loop":
            {
                // RFC 1035 §4.1.4: the answer's owner is a pointer to itself.
                var reply = Answering(query, answers: 1);
                int at = reply.Count;
                reply.AddRange([(byte)(0xC0 | at >> 8), (byte)at, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x0E, 0x10, 0x00, 0x04, 192, 0, 2, 1]);
                return [.. reply];
            }
            case "rdata-loop":
            {
                // A CNAME whose target is two pointers pointing at each other.
                var reply = Answering(query, answers: 1);
                int rdata = reply.Count + 12;
                reply.AddRange([0xC0, 0x0C, 0x00, 0x05, 0x00, 0x01, 0x00, 0x00, 0x0E, 0x10, 0x00, 0x04,
                    (byte)(0xC0 | (rdata + 2) >> 8), (byte)(rdata + 2), (byte)(0xC0 | rdata >> 8), (byte)rdata]);
                return [.. reply];
            }
            case "bad-rdata":
            {
                // An A record of three octets (RFC 1035 §3.4.1 says four).
                var reply = Answering(query, answers: 1);
                reply.AddRange([0xC0, 0x0C, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x0E, 0x10, 0x00, 0x03, 192, 0, 2]);
                return [.. reply];
            }
            case "silent":
                return null;
            case "bare-refused":
                // Unbound's access-control "refuse": REFUSED in a bare header, no question echoed.
                return [query[0], query[1], 0x81, 0x05, 0, 0, 0, 0, 0, 0, 0, 0];
            case "bare-noerror":
                return [query[0], query[1], 0x81, 0x00, 0, 0, 0, 0, 0, 0, 0, 0];
            default:
                throw new ArgumentException(mode);
        }
    }

    /// <summary>
    /// A UDP socket and a TCP listener on one loopback port, answering each query as
    /// <paramref name="mode"/> says, on a thread each; Dispose closes them, which ends the threads.
    /// </summary>
    private sealed class HostileServer : IDisposable
    {
        private readonly Socket _udp = new(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        private readonly Socket _tcp = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        private readonly List<Socket> _accepted = [];
        private readonly Thread _udpThread, _tcpThread;

        public HostileServer(string mode)
        {
            Port = FreePort.ForUdpAndTcp();
            _udp.Bind(new IPEndPoint(IPAddress.Loopback, Port));
            _tcp.Bind(new IPEndPoint(IPAddress.Loopback, Port));
            _tcp.Listen(4);
            _udpThread = new Thread(() => ServeUdp(mode)) { IsBackground = true };
            _tcpThread = new Thread(() => ServeTcp(mode)) { IsBackground = true };
            _udpThread.Start();
            _tcpThread.Start();
        }

        public int Port { get; }

        private void ServeUdp(string mode)
        {
            var buffer = new byte[65535];
            try
            {
                while (true)
                {
                    EndPoint from = new IPEndPoint(IPAddress.Any, 0);
                    int n = _udp.ReceiveFrom(buffer, ref from);
                    if (Reply(mode, buffer[..n]) is { } reply) _udp.SendTo(reply, from);
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                // Closed by Dispose.
            }
        }

        private void ServeTcp(string mode)
        {
            try
            {
                while (true)
                {
                    var client = _tcp.Accept();
                    lock (_accepted) _accepted.Add(client);
                    var prefix = new byte[2];
                    if (!ReadExactly(client, prefix)) continue;
                    var query = new byte[BinaryPrimitives.ReadUInt16BigEndian(prefix)];
                    if (!ReadExactly(client, query)) continue;
                    switch (mode)
                    {
                        case "oversized-length":
                        {
                            // 65535 octets announced, a header's worth sent, and then nothing: the connection stays open.
                            var reply = Answering(query);
                            client.Send([0xFF, 0xFF, .. reply]);
                            break;
                        }
                        case "oversized-length-close":
                        {
                            var reply = Answering(query);
                            client.Send([0xFF, 0xFF, .. reply]);
                            client.Shutdown(SocketShutdown.Both);
                            break;
                        }
                        case "short-length":
                            client.Send([0x00, 0x05, query[0], query[1], 0x81, 0x80, 0x00]);
                            break;
                        default:
                            if (Reply(mode, query) is { } r)
                            {
                                var framed = new byte[r.Length + 2];
                                BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)r.Length);
                                r.CopyTo(framed, 2);
                                client.Send(framed);
                            }
                            break;
                    }
                    // The connection is left open: the client decides when it has had enough.
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                // Closed by Dispose.
            }
        }

        private static bool ReadExactly(Socket socket, byte[] into)
        {
            for (int got = 0; got < into.Length;)
            {
                int n = socket.Receive(into, got, into.Length - got, SocketFlags.None);
                if (n == 0) return false;
                got += n;
            }
            return true;
        }

        public void Dispose()
        {
            _udp.Dispose();
            _tcp.Dispose();
            lock (_accepted) foreach (var s in _accepted) s.Dispose();
            _udpThread.Join();
            _tcpThread.Join();
        }
    }

    [Theory]
    // UDP: a datagram that is not our reply is ignored (RFC 5452 §9.1), so a wrong ID ends as no reply.
    [InlineData("garbage", false, 1, "portcullis: malformed reply")]
    [InlineData("wrong-id", false, 9, "portcullis: no reply from 127.0.0.1:PORT over UDP: timed out")]
    [InlineData("cut", false, 1, "portcullis: malformed reply")]
    [InlineData("owner-loop", false, 1, "portcullis: malformed reply")]
    [InlineData("rdata-loop", false, 1, "portcullis: malformed reply")]
    [InlineData("bad-rdata", false, 1, "portcullis: malformed reply")]
    [InlineData("silent", false, 9, "portcullis: no reply from 127.0.0.1:PORT over UDP: timed out")]
    // TCP: nobody off-path can inject into the connection, so anything wrong is malformed.
    [InlineData("garbage", true, 1, "portcullis: malformed reply")]
    [InlineData("wrong-id", true, 1, "portcullis: malformed reply: wrong message ID over TCP")]
    [InlineData("cut", true, 1, "portcullis: malformed reply")]
    [InlineData("owner-loop", true, 1, "portcullis: malformed reply")]
    [InlineData("rdata-loop", true, 1, "portcullis: malformed reply")]
    [InlineData("bad-rdata", true, 1, "portcullis: malformed reply")]
    [InlineData("silent", true, 9, "portcullis: no reply from 127.0.0.1:PORT over TCP: timed out")]
    [InlineData("oversized-length", true, 1, "portcullis: incomplete reply from 127.0.0.1:PORT over TCP: 34 of the 65535 octets announced came within 1 s")]
    [InlineData("oversized-length-close", true, 1, "portcullis: connection closed in the middle of a message (34 of the 65535 octets announced)")]
    [InlineData("short-length", true, 1, "portcullis: malformed reply: a 5-octet message is shorter than a DNS header")]
    public void A_hostile_reply_gives_one_line_and_the_documented_exit_code(string mode, bool tcp, int exitCode, string error)
    {
        using var server = new HostileServer(mode);
        string[] args = ["@127.0.0.1", "-p", server.Port.ToString(), "--timeout", "1", "--retries", "0", "www.example.test", .. tcp ? (string[])["--tcp"] : []];
        foreach (var json in new[] { false, true })
        {
            var result = ExternalProcess.Run("dotnet", [QueryCommandTests.Binary, "query", .. args, .. json ? (string[])["--json"] : []]);
            Assert.True(result.ExitCode == exitCode, $"exit {result.ExitCode}, stderr: {result.Stderr}");
            Assert.Equal(error.Replace("PORT", server.Port.ToString()) + "\n", result.Stderr);
            Assert.Equal("", result.Stdout);
        }
    }

    [Fact]
    public void A_bare_error_header_is_a_reply_and_a_bare_noerror_is_not()
    {
        foreach (var tcp in new[] { false, true })
        {
            string[] transport = tcp ? ["--tcp"] : [];
            using (var server = new HostileServer("bare-refused"))
            {
                var result = ExternalProcess.Run("dotnet", [QueryCommandTests.Binary, "query", "@127.0.0.1", "-p", server.Port.ToString(),
                    "--timeout", "1", "--retries", "0", "www.example.test", .. transport]);
                Assert.True(result.ExitCode == 0, result.Stderr);
                Assert.Contains("status: REFUSED", result.Stdout);
                Assert.Contains("QUERY: 0, ANSWER: 0", result.Stdout);
            }
            using (var server = new HostileServer("bare-noerror"))
            {
                var result = ExternalProcess.Run("dotnet", [QueryCommandTests.Binary, "query", "@127.0.0.1", "-p", server.Port.ToString(),
                    "--timeout", "1", "--retries", "0", "www.example.test", .. transport]);
                Assert.Equal(tcp ? 1 : 9, result.ExitCode);
                Assert.Equal(tcp ? "portcullis: malformed reply: not an answer to the question asked\n"
                    : $"portcullis: no reply from 127.0.0.1:{server.Port} over UDP: timed out\n", result.Stderr);
            }
        }
    }
}
