using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Records;

namespace Portcullis.Client;

/// <summary>How one exchange ended.</summary>
public enum ExchangeStatus
{
    /// <summary>A well-formed reply to our question arrived.</summary>
    Answered,
    /// <summary>Nothing usable came back in time (timeout, refused, unreachable).</summary>
    NoReply,
    /// <summary>A reply came back but was malformed (or, over TCP, not a reply to our query).</summary>
    Malformed,
}

/// <summary>The outcome of an exchange: the parsed replies (more than one for a zone transfer) and their sizes.</summary>
public sealed class ExchangeResult
{
    public ExchangeStatus Status { get; init; }
    public List<DnsMessage> Replies { get; } = [];
    /// <summary>The replies as they came on the wire (TSIG is checked over these octets).</summary>
    public List<byte[]> Wire { get; } = [];
    /// <summary>Octets received in the replies that were kept (without TCP length prefixes).</summary>
    public long Size { get; set; }
    public bool OverTcp { get; set; }
    /// <summary>Why there is no answer: one line for stderr.</summary>
    public string? Error { get; init; }
    public TimeSpan Elapsed { get; set; }
}

/// <summary>
/// Sends one query and waits for its reply, the way dig does: UDP with retries, TCP with RFC 7766
/// two-octet length framing, zone transfers (RFC 5936 §2.2, RFC 1995 §4) read message by message
/// until the closing SOA. This is a tool, not the server's query path: it may allocate freely, but
/// every wait and every buffer is bounded so that a hostile server cannot hold it forever.
/// </summary>
public static class DnsExchange
{
    /// <summary>The largest UDP datagram we accept; anything larger is cut by the socket and fails to parse.</summary>
    private const int MaxUdp = 65535;
    /// <summary>A zone transfer larger than this is abandoned (bounded memory).</summary>
    public const long MaxTransferOctets = 256L * 1024 * 1024;

    /// <summary>
    /// UDP: sends <paramref name="query"/> up to 1 + <paramref name="retries"/> times, each waiting
    /// <paramref name="timeout"/>. A datagram that is not a reply to our question (wrong ID, wrong
    /// question, QR clear) or comes from another address is ignored and the wait goes on (RFC 5452
    /// §9.1: such replies are how spoofing is attempted). A malformed one with our ID is remembered:
    /// if nothing better arrives the exchange ends <see cref="ExchangeStatus.Malformed"/>.
    /// </summary>
    public static ExchangeResult Udp(IPEndPoint server, byte[] query, DnsQuestion question, TimeSpan timeout, int retries)
    {
        var clock = Stopwatch.StartNew();
        ushort id = BinaryPrimitives.ReadUInt16BigEndian(query);
        var buffer = new byte[MaxUdp];
        bool sawMalformed = false;
        string? lastError = null;
        for (int attempt = 0; attempt <= retries; attempt++)
        {
            using var socket = new Socket(server.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            try
            {
                // Connecting makes the kernel drop datagrams from any other address and port and
                // report ICMP port unreachable as ConnectionRefused.
                socket.Connect(server);
                var sent = Stopwatch.StartNew();
                socket.Send(query);
                while (true)
                {
                    var left = timeout - sent.Elapsed;
                    if (left <= TimeSpan.Zero) { lastError = "timed out"; break; }
                    if (!socket.Poll(left, SelectMode.SelectRead)) { lastError = "timed out"; break; }
                    int n = socket.Receive(buffer);
                    var reply = buffer.AsSpan(0, n);
                    if (n < 12 || BinaryPrimitives.ReadUInt16BigEndian(reply) != id) continue;
                    if (!DnsMessage.TryParse(reply, out var message)) { sawMalformed = true; continue; }
                    if (!IsReplyTo(message, question)) continue;
                    var result = new ExchangeResult { Status = ExchangeStatus.Answered, Size = n, Elapsed = clock.Elapsed };
                    result.Replies.Add(message);
                    result.Wire.Add(reply.ToArray());
                    return result;
                }
            }
            catch (SocketException e)
            {
                lastError = e.SocketErrorCode == SocketError.ConnectionRefused ? "connection refused" : e.Message;
            }
        }
        return sawMalformed
            ? new ExchangeResult { Status = ExchangeStatus.Malformed, Error = "malformed reply", Elapsed = clock.Elapsed }
            : new ExchangeResult { Status = ExchangeStatus.NoReply, Error = $"no reply from {Format(server)} over UDP: {lastError}", Elapsed = clock.Elapsed };
    }

    /// <summary>
    /// TCP: one query, one reply (or, for AXFR and IXFR, every message up to the closing SOA).
    /// <paramref name="timeout"/> bounds the connect and each read. Over TCP the reply cannot be
    /// spoofed off-path, so a wrong ID or an unparsable message is reported as malformed.
    /// </summary>
    public static ExchangeResult Tcp(IPEndPoint server, byte[] query, DnsQuestion question, TimeSpan timeout, uint? ixfrSerial = null)
    {
        var clock = Stopwatch.StartNew();
        ushort id = BinaryPrimitives.ReadUInt16BigEndian(query);
        bool transfer = question.Type is RecordType.AXFR or RecordType.IXFR;
        using var socket = new Socket(server.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        var result = new ExchangeResult { Status = ExchangeStatus.Answered, OverTcp = true };
        try
        {
            using (var connect = new CancellationTokenSource(timeout))
                socket.ConnectAsync(server, connect.Token).AsTask().GetAwaiter().GetResult();
            socket.ReceiveTimeout = socket.SendTimeout = (int)Math.Clamp(timeout.TotalMilliseconds, 1, int.MaxValue);
            var framed = new byte[query.Length + 2];
            BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)query.Length);
            query.CopyTo(framed, 2);
            socket.Send(framed);
            var transferState = new TransferState(question.Type, ixfrSerial);
            var buffer = new byte[65535];
            var prefix = new byte[2];
            while (true)
            {
                // Each message must arrive whole within the timeout, however the server drips it.
                var deadline = Stopwatch.StartNew();
                if (!ReadExactly(socket, prefix, timeout, deadline, out int gotPrefix))
                    return Fail(result, clock, ExchangeStatus.Malformed, "connection closed before the reply was complete");
                if (gotPrefix < 0)
                    return Fail(result, clock, ExchangeStatus.Malformed, $"incomplete reply from {Format(server)} over TCP: the length prefix stalled");
                int length = BinaryPrimitives.ReadUInt16BigEndian(prefix);
                if (!ReadExactly(socket, buffer.AsSpan(0, length), timeout, deadline, out int got))
                    return Fail(result, clock, ExchangeStatus.Malformed, $"connection closed in the middle of a message ({got} of the {length} octets announced)");
                if (got < 0)
                    return Fail(result, clock, ExchangeStatus.Malformed,
                        $"incomplete reply from {Format(server)} over TCP: {-got - 1} of the {length} octets announced came within {timeout.TotalSeconds:0.###} s");
                var reply = buffer.AsSpan(0, length);
                if (length < 12)
                    return Fail(result, clock, ExchangeStatus.Malformed, $"malformed reply: a {length}-octet message is shorter than a DNS header");
                if (BinaryPrimitives.ReadUInt16BigEndian(reply) != id)
                    return Fail(result, clock, ExchangeStatus.Malformed, "malformed reply: wrong message ID over TCP");
                if (!DnsMessage.TryParse(reply, out var message))
                    return Fail(result, clock, ExchangeStatus.Malformed, "malformed reply");
                // RFC 5936 §2.2: only the first message of a transfer must carry the question.
                if ((result.Replies.Count == 0 || message.Questions.Count > 0) && !IsReplyTo(message, question))
                    return Fail(result, clock, ExchangeStatus.Malformed, "malformed reply: not an answer to the question asked");
                result.Replies.Add(message);
                result.Wire.Add(reply.ToArray());
                result.Size += length;
                if (!transfer || message.Rcode != Rcode.NoError || transferState.Complete(message)) break;
                if (result.Size > MaxTransferOctets)
                    return Fail(result, clock, ExchangeStatus.Malformed, $"transfer abandoned: more than {MaxTransferOctets} octets");
            }
        }
        catch (OperationCanceledException)
        {
            return Fail(result, clock, ExchangeStatus.NoReply, $"no reply from {Format(server)} over TCP: connect timed out");
        }
        catch (SocketException e)
        {
            string what = e.SocketErrorCode switch
            {
                SocketError.TimedOut or SocketError.WouldBlock => "timed out",
                SocketError.ConnectionRefused => "connection refused",
                _ => e.Message,
            };
            // Part of a transfer came and then the server went silent: the records are shown with the error.
            return Fail(result, clock, result.Replies.Count > 0 ? ExchangeStatus.Malformed : ExchangeStatus.NoReply,
                $"{(result.Replies.Count > 0 ? "incomplete reply" : "no reply")} from {Format(server)} over TCP: {what}");
        }
        result.Elapsed = clock.Elapsed;
        return result;
    }

    private static ExchangeResult Fail(ExchangeResult partial, Stopwatch clock, ExchangeStatus status, string error)
    {
        var r = new ExchangeResult { Status = status, Error = error, OverTcp = true, Elapsed = clock.Elapsed, Size = partial.Size };
        r.Replies.AddRange(partial.Replies);
        return r;
    }

    /// <summary>
    /// Fills <paramref name="into"/>. False when the peer closed first (<paramref name="got"/>: the
    /// octets read). When <paramref name="timeout"/> has passed since <paramref name="deadline"/>
    /// started with some octets read, true with <paramref name="got"/> = -(octets read) - 1: the
    /// message started and stalled. With nothing read, the timeout's SocketException propagates
    /// (no reply).
    /// </summary>
    private static bool ReadExactly(Socket socket, Span<byte> into, TimeSpan timeout, Stopwatch deadline, out int got)
    {
        got = 0;
        while (into.Length > 0)
        {
            var left = timeout - deadline.Elapsed;
            if (left <= TimeSpan.Zero)
            {
                if (got == 0) throw new SocketException((int)SocketError.TimedOut);
                got = -got - 1;
                return true;
            }
            socket.ReceiveTimeout = (int)Math.Clamp(Math.Ceiling(left.TotalMilliseconds), 1, int.MaxValue);
            int n;
            try { n = socket.Receive(into); }
            catch (SocketException e) when (got > 0 && e.SocketErrorCode is SocketError.TimedOut or SocketError.WouldBlock)
            {
                got = -got - 1;
                return true;
            }
            if (n == 0) return false;
            got += n;
            into = into[n..];
        }
        return true;
    }

    /// <summary>
    /// QR set and the question echoed (names compared without case, RFC 4343); or, with no question
    /// section at all, an error RCODE: Unbound's access-control "refuse" and servers that could not
    /// read the question answer with the bare header (RFC 1035 §4.1.1 leaves the question to the
    /// server), and dig accepts those too. Such a reply can only match by ID and source, so a
    /// NOERROR without the question (which would carry data we cannot tie to our question) is not one.
    /// </summary>
    private static bool IsReplyTo(DnsMessage message, DnsQuestion question) =>
        message.Header.IsResponse && (message.Questions.Count == 1
            ? message.Questions[0].Type == question.Type && message.Questions[0].Class == question.Class && message.Questions[0].Name == question.Name
            : message.Questions.Count == 0 && message.Rcode != Rcode.NoError && message.Answers.Count == 0);

    public static string Format(IPEndPoint endPoint) => endPoint.AddressFamily == AddressFamily.InterNetworkV6
        ? $"[{endPoint.Address}]:{endPoint.Port}" : $"{endPoint.Address}:{endPoint.Port}";

    /// <summary>
    /// Knows when a transfer's last message has arrived. AXFR (RFC 5936 §2.2): the second SOA.
    /// IXFR (RFC 1995 §4): a single SOA when the client is up to date; an AXFR-style answer when
    /// the second record is not an SOA; otherwise diffs, each opened by the old SOA and switched by
    /// a new SOA, so the current serial appears once at the start, once as the last diff's new
    /// SOA and once at the end.
    /// </summary>
    private sealed class TransferState(RecordType type, uint? clientSerial)
    {
        private int _records;
        private uint _serial;
        private int _seen;
        private bool _incremental;

        public bool Complete(DnsMessage message)
        {
            foreach (var record in message.Answers)
            {
                _records++;
                bool soa = record.Type == RecordType.SOA && record.Data.Length >= 20;
                uint serial = soa ? BinaryPrimitives.ReadUInt32BigEndian(record.Data.AsSpan(record.Data.Length - 20)) : 0;
                if (_records == 1)
                {
                    if (!soa) return true;   // not a transfer answer: print what came
                    _serial = serial;
                    _seen = 1;
                    continue;
                }
                if (_records == 2 && type == RecordType.IXFR && soa && serial != _serial) _incremental = true;
                if (soa && serial == _serial && ++_seen == (_incremental ? 3 : 2)) return true;
            }
            // IXFR and the client is current: one message holding just the SOA (RFC 1995 §4).
            return type == RecordType.IXFR && _records == 1 && clientSerial is { } c && (int)(_serial - c) <= 0;
        }
    }
}
