using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Portcullis.Protocol;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.Tsig;

namespace Portcullis.Server.Replication;

/// <summary>What a transfer brought: nothing new, the whole zone, or the changes since our serial.</summary>
public enum TransferKind { UpToDate, Full, Incremental }

/// <summary>One step of an incremental transfer (RFC 1995 §4): the records removed from the
/// version with <see cref="OldSoa"/> and those added to make the version with <see cref="NewSoa"/>.</summary>
public sealed record IxfrDiff(ResourceRecord OldSoa, List<ResourceRecord> Deleted, ResourceRecord NewSoa, List<ResourceRecord> Added);

/// <param name="Records">For a full transfer: the zone, SOA first (once).</param>
/// <param name="Diffs">For an incremental one: the steps, oldest first.</param>
public sealed record TransferResult(TransferKind Kind, uint Serial, List<ResourceRecord>? Records, List<IxfrDiff>? Diffs, int Messages, long Bytes);

/// <summary>A transfer or SOA query that failed: the message says why, for the log.</summary>
public sealed class TransferException(string message) : Exception(message);

/// <summary>Bounds on what one transfer may bring, so that a hostile or broken primary cannot
/// exhaust memory or hold a task for ever.</summary>
public sealed record TransferLimits
{
    public int MaxRecords { get; init; } = 20_000_000;
    public long MaxBytes { get; init; } = 4L << 30;
    /// <summary>The longest wait for any one read (connect, each message).</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>The longest a whole transfer may take.</summary>
    public TimeSpan TotalTimeout { get; init; } = TimeSpan.FromMinutes(30);
}

/// <summary>
/// The secondary's side of replication: the SOA query that tells whether the primary has a newer
/// serial, and AXFR (RFC 5936) / IXFR (RFC 1995) over TCP, TSIG-signed when a key is given
/// (RFC 8945; every response message checked, up to 99 unsigned in a row). Everything received
/// is checked: the ID, the question, the RCODE, the record counts, the transfer's framing.
/// </summary>
public static class TransferClient
{
    /// <summary>The primary's SOA serial for the zone (UDP, then TCP when truncated).</summary>
    public static async Task<uint> QuerySerialAsync(IPEndPoint primary, DnsName zone, TsigKey? key, TimeSpan timeout, CancellationToken token)
    {
        var (query, mac) = Query(zone, RecordType.SOA, null, key);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(token);
        cts.CancelAfter(timeout);
        byte[] reply;
        try
        {
            using var udp = new Socket(primary.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            await udp.ConnectAsync(primary, cts.Token);
            await udp.SendAsync(query, cts.Token);
            var buffer = new byte[65535];
            while (true)
            {
                int n = await udp.ReceiveAsync(buffer, cts.Token);
                if (n >= 12 && BinaryPrimitives.ReadUInt16BigEndian(buffer) == BinaryPrimitives.ReadUInt16BigEndian(query)) { reply = buffer[..n]; break; }
            }
            if ((reply[2] & 0x02) != 0)
            {
                await using var tcp = await Connect(primary, cts.Token);
                await Send(tcp, query, cts.Token);
                reply = await ReadMessage(tcp, cts.Token) ?? throw new TransferException($"{primary}: closed the connection without answering SOA");
            }
        }
        catch (OperationCanceledException) when (!token.IsCancellationRequested)
        {
            throw new TransferException($"{primary}: no answer to SOA {zone} within {timeout.TotalSeconds:0.#} s");
        }
        catch (SocketException e)
        {
            throw new TransferException($"{primary}: SOA {zone}: {e.Message}");
        }
        if (key is not null) CheckTsig(new TsigResponseVerifier(key, mac, Now()), reply, primary, last: true);
        var message = ParseReply(reply, query, primary);
        var soa = message.Answers.Find(r => r.Type == RecordType.SOA && r.Owner == zone)
            ?? throw new TransferException($"{primary}: no SOA for {zone} in the answer (rcode {message.Rcode}, AA {message.Header.AuthoritativeAnswer})");
        if (!message.Header.AuthoritativeAnswer) throw new TransferException($"{primary}: not authoritative for {zone}");
        return SerialNumber.Of(soa);
    }

    /// <summary>
    /// Transfers the zone: IXFR from <paramref name="currentSerial"/> when one is given (the primary
    /// may still answer with the whole zone), AXFR otherwise.
    /// </summary>
    public static async Task<TransferResult> TransferAsync(IPEndPoint primary, DnsName zone, uint? currentSerial, TsigKey? key,
        TransferLimits limits, CancellationToken token)
    {
        var type = currentSerial is null ? RecordType.AXFR : RecordType.IXFR;
        var (query, mac) = Query(zone, type, currentSerial, key);
        var verifier = key is null ? null : new TsigResponseVerifier(key, mac, Now());
        using var total = CancellationTokenSource.CreateLinkedTokenSource(token);
        total.CancelAfter(limits.TotalTimeout);
        var reader = new TransferReader(zone, type, currentSerial, limits, primary);
        int messages = 0;
        long bytes = 0;
        try
        {
            using var connect = CancellationTokenSource.CreateLinkedTokenSource(total.Token);
            connect.CancelAfter(limits.IdleTimeout);
            await using var stream = await Connect(primary, connect.Token);
            await Send(stream, query, total.Token);
            while (!reader.Done)
            {
                using var idle = CancellationTokenSource.CreateLinkedTokenSource(total.Token);
                idle.CancelAfter(limits.IdleTimeout);
                var reply = await ReadMessage(stream, idle.Token)
                    ?? throw new TransferException($"{primary}: {type} of {zone} ended after {messages} messages without the closing SOA");
                messages++;
                bytes += reply.Length;
                if (bytes > limits.MaxBytes) throw new TransferException($"{primary}: {type} of {zone} exceeds {limits.MaxBytes} bytes");
                if (verifier is not null) CheckTsig(verifier, reply, primary, last: false);
                reader.Add(ParseReply(reply, query, primary, firstMessage: messages == 1));
            }
            if (verifier is not null && !verifier.EndedSigned)
                throw new TransferException($"{primary}: {type} of {zone}: the last message is not TSIG-signed");
        }
        catch (OperationCanceledException) when (!token.IsCancellationRequested)
        {
            throw new TransferException($"{primary}: {type} of {zone} timed out after {messages} messages");
        }
        catch (SocketException e)
        {
            throw new TransferException($"{primary}: {type} of {zone}: {e.Message}");
        }
        catch (IOException e)
        {
            throw new TransferException($"{primary}: {type} of {zone}: {e.Message}");
        }
        return reader.Result(messages, bytes);
    }

    private static long Now() => DateTimeOffset.UtcNow.ToUnixTimeSeconds();


    private static (byte[] Query, byte[] Mac) Query(DnsName zone, RecordType type, uint? serial, TsigKey? key)
    {
        var message = new DnsMessage { Header = new DnsHeader { Id = (ushort)RandomNumberGenerator.GetInt32(65536) } };
        message.Questions.Add(new DnsQuestion(zone, type, RecordClass.IN));
        if (type == RecordType.IXFR)
        {
            // RFC 1995 §3: the client's SOA in the authority section; only the serial matters.
            var soa = new byte[1 + 1 + 20];   // "." as MNAME and RNAME, then serial and four timers
            BinaryPrimitives.WriteUInt32BigEndian(soa.AsSpan(2), serial!.Value);
            message.Authority.Add(new ResourceRecord(zone, RecordType.SOA, RecordClass.IN, 0, soa));
        }
        var wire = message.ToWire();
        if (key is null) return (wire, []);
        var buffer = new byte[wire.Length + Tsig.MaxRecordSize(key)];
        wire.CopyTo(buffer, 0);
        var mac = new byte[TsigAlgorithms.MaxMacSize];
        int length = Tsig.Sign(buffer, wire.Length, key, default, hasPrior: false, Now(), Tsig.DefaultFudge, TsigError.NoError, default, false, mac, out int macLength);
        return (buffer[..length], mac[..macLength]);
    }

    private static void CheckTsig(TsigResponseVerifier verifier, byte[] reply, IPEndPoint primary, bool last)
    {
        string? problem = verifier.Describe(verifier.Check(reply));
        if (problem is null && last && !verifier.EndedSigned) problem = "the answer is not TSIG-signed";
        if (problem is not null) throw new TransferException($"{primary}: {problem}");
    }

    private static DnsMessage ParseReply(byte[] reply, byte[] query, IPEndPoint primary, bool firstMessage = true)
    {
        DnsMessage message;
        try { message = DnsMessage.Parse(reply); }
        catch (DnsFormatException e) { throw new TransferException($"{primary}: malformed answer: {e.Message}"); }
        if (message.Header.Id != BinaryPrimitives.ReadUInt16BigEndian(query) || !message.Header.IsResponse)
            throw new TransferException($"{primary}: an answer with another ID or not a response");
        if (message.Rcode != Rcode.NoError)
            throw new TransferException($"{primary}: answered {message.Rcode}");
        // RFC 5936 §2.2.1: the first message repeats the question; later ones may leave it out.
        var q = DnsMessage.Parse(query).Questions[0];
        if ((firstMessage || message.Questions.Count > 0)
            && (message.Questions.Count != 1 || message.Questions[0].Name != q.Name || message.Questions[0].Type != q.Type))
            throw new TransferException($"{primary}: the answer's question is not ours");
        return message;
    }

    private static async Task<NetworkStream> Connect(IPEndPoint primary, CancellationToken token)
    {
        var socket = new Socket(primary.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(primary, token);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static async Task Send(NetworkStream stream, byte[] message, CancellationToken token)
    {
        var framed = new byte[message.Length + 2];
        BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)message.Length);
        message.CopyTo(framed, 2);
        await stream.WriteAsync(framed, token);
    }

    /// <summary>One length-prefixed message (RFC 1035 §4.2.2), or null when the peer closed cleanly between messages.</summary>
    private static async Task<byte[]?> ReadMessage(NetworkStream stream, CancellationToken token)
    {
        var prefix = new byte[2];
        int got = await stream.ReadAtLeastAsync(prefix, 2, throwOnEndOfStream: false, token);
        if (got == 0) return null;
        if (got < 2) throw new TransferException("the connection closed inside a length prefix");
        var message = new byte[BinaryPrimitives.ReadUInt16BigEndian(prefix)];
        await stream.ReadExactlyAsync(message, token);
        return message;
    }

    /// <summary>
    /// Follows the records of an AXFR or IXFR answer across messages and knows when it is complete:
    /// AXFR ends at the second SOA (RFC 5936 §2.2); IXFR is one SOA (up to date), an AXFR-style
    /// answer, or SOA-delimited steps ending with the newest SOA where the next step would start
    /// (RFC 1995 §4).
    /// </summary>
    private sealed class TransferReader(DnsName zone, RecordType type, uint? currentSerial, TransferLimits limits, IPEndPoint primary)
    {
        private enum State { First, Second, Axfr, DiffDeletes, DiffAdds, Done }

        private State _state = State.First;
        private ResourceRecord? _soa;
        private uint _serial;
        private readonly List<ResourceRecord> _records = [];
        private readonly List<IxfrDiff> _diffs = [];
        private IxfrDiff? _diff;
        private int _count;
        private bool _upToDate;

        public bool Done => _state == State.Done;

        public void Add(DnsMessage message)
        {
            foreach (var r in message.Answers)
            {
                if (_state == State.Done) throw new TransferException($"{primary}: records after the closing SOA");
                if (++_count > limits.MaxRecords) throw new TransferException($"{primary}: more than {limits.MaxRecords} records");
                bool isSoa = r.Type == RecordType.SOA;
                if (isSoa && r.Owner != zone) throw new TransferException($"{primary}: a SOA for {r.Owner} inside the transfer of {zone}");
                if (!isSoa && !r.Owner.IsSubdomainOf(zone)) throw new TransferException($"{primary}: {r.Owner} is outside {zone}");
                switch (_state)
                {
                    case State.First:
                        if (!isSoa) throw new TransferException($"{primary}: the transfer does not start with the SOA");
                        _soa = r;
                        _serial = SerialNumber.Of(r);
                        _state = State.Second;
                        break;
                    case State.Second:
                        if (type == RecordType.IXFR && isSoa && SerialNumber.Of(r) != _serial)
                        {
                            // Incremental: the first step starts with our old SOA.
                            _diff = new IxfrDiff(r, [], r, []);
                            _state = State.DiffDeletes;
                        }
                        else if (isSoa)
                        {
                            _state = State.Done;   // an empty zone: SOA, SOA
                        }
                        else
                        {
                            _records.Add(_soa!);
                            _records.Add(r);
                            _state = State.Axfr;
                        }
                        break;
                    case State.Axfr:
                        if (isSoa) _state = State.Done;
                        else _records.Add(r);
                        break;
                    case State.DiffDeletes:
                        if (isSoa)
                        {
                            _diff = _diff! with { NewSoa = r };
                            _state = State.DiffAdds;
                        }
                        else _diff!.Deleted.Add(r);
                        break;
                    case State.DiffAdds:
                        if (isSoa)
                        {
                            _diffs.Add(_diff!);
                            if (SerialNumber.Of(r) == _serial) { _state = State.Done; break; }
                            _diff = new IxfrDiff(r, [], r, []);
                            _state = State.DiffDeletes;
                        }
                        else _diff!.Added.Add(r);
                        break;
                }
            }
            // IXFR answered with the SOA alone, in one message: we are up to date (RFC 1995 §4).
            if (_state == State.Second && type == RecordType.IXFR && _count == 1)
            {
                _upToDate = true;
                _state = State.Done;
            }
        }

        public TransferResult Result(int messages, long bytes)
        {
            if (_upToDate)
                return new TransferResult(TransferKind.UpToDate, _serial, null, null, messages, bytes);
            if (_diffs.Count > 0)
            {
                if (currentSerial is { } c && SerialNumber.Of(_diffs[0].OldSoa) != c)
                    throw new TransferException($"{primary}: IXFR starts from serial {SerialNumber.Of(_diffs[0].OldSoa)}, not ours ({c})");
                return new TransferResult(TransferKind.Incremental, _serial, null, _diffs, messages, bytes);
            }
            if (_records.Count == 0) _records.Add(_soa!);
            return new TransferResult(TransferKind.Full, _serial, _records, null, messages, bytes);
        }
    }
}
