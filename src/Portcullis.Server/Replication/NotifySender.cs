using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.Tsig;

namespace Portcullis.Server.Replication;

/// <summary>A secondary to tell of a zone change, and the TSIG key to sign the NOTIFY with (null: unsigned).</summary>
public sealed record NotifyTarget(IPEndPoint EndPoint, TsigKey? Key)
{
    public override string ToString() => Key is null ? EndPoint.ToString() : $"{EndPoint} key {Key.Name}";
}

/// <summary>
/// The primary's side of RFC 1996: tells secondaries that a zone changed, so that they check its
/// SOA at once instead of at their next refresh. One NOTIFY per target over UDP (§3.6), signed
/// with the target's TSIG key when it has one, retransmitted with growing intervals until a
/// matching reply arrives or the tries run out. Runs off the query path: it may allocate.
/// </summary>
/// <param name="logger">One line per target: Information when acknowledged, Warning when not, with why.</param>
/// <param name="time">Every wait is on this clock (and TSIG's time signed), so tests can drive it.</param>
public sealed class NotifySender(ILogger logger, TimeProvider? time = null)
{
    /// <summary>
    /// The waits after each send: five sends, 60 s in all. RFC 1996 §3.6 asks for retransmission
    /// "until a response is received" without a schedule; BIND and Knot give up after a bounded
    /// number of tries, and a secondary that missed every NOTIFY still catches up at its SOA refresh.
    /// </summary>
    public static readonly IReadOnlyList<TimeSpan> DefaultIntervals =
        [TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(4), TimeSpan.FromSeconds(8), TimeSpan.FromSeconds(16), TimeSpan.FromSeconds(30)];

    private readonly TimeProvider _time = time ?? TimeProvider.System;

    /// <summary>The wait after each send; as many sends as entries.</summary>
    public IReadOnlyList<TimeSpan> Intervals { get; init; } = DefaultIntervals;

    /// <summary>
    /// The address NOTIFY leaves from (BIND's notify-source), or null for the system's choice. A
    /// secondary without allow-notify accepts NOTIFY only from the address of one of its primaries
    /// (RFC 1996 §3.10), so on a machine with several addresses this must be the one it pulls from.
    /// </summary>
    public IPAddress? Source { get; init; }

    /// <summary>
    /// Sends NOTIFY for <paramref name="zone"/> to one target and waits for its answer. True when
    /// the target answered NOERROR (with a valid signature when keyed); false when it refused,
    /// the signature failed, or no answer came after every try. Logs one line either way.
    /// Cancellation throws <see cref="OperationCanceledException"/> (and logs nothing).
    /// </summary>
    public async Task<bool> NotifyAsync(DnsName zone, ResourceRecord soa, NotifyTarget target, CancellationToken token)
    {
        if (soa.Type != RecordType.SOA || soa.Owner != zone)
            throw new ArgumentException($"not the SOA of {zone}: {soa}", nameof(soa));
        uint serial = SerialNumber.Of(soa);
        var (message, mac) = Build(zone, soa, target.Key);
        string? failure;
        try
        {
            failure = await ExchangeAsync(zone, message, mac, target, token);
        }
        catch (SocketException e)
        {
            failure = e.SocketErrorCode == SocketError.ConnectionRefused ? PortUnreachable : e.Message;
        }
        if (failure is null)
        {
            logger.LogInformation("notify of zone {Zone} serial {Serial} to {Target}: acknowledged", zone, serial, target);
            return true;
        }
        logger.LogWarning("notify of zone {Zone} serial {Serial} to {Target} failed: {Reason}", zone, serial, target, failure);
        return false;
    }

    /// <summary>
    /// Sends NOTIFY to every target at once and waits until each has answered or given up. Never
    /// throws: a failure is a log line for its target, and cancellation ends the wait quietly.
    /// </summary>
    public async Task NotifyAllAsync(DnsName zone, ResourceRecord soa, IEnumerable<NotifyTarget> targets, CancellationToken token)
    {
        try
        {
            var tasks = new List<Task>();
            foreach (var target in targets) tasks.Add(NotifyOneQuietly(zone, soa, target, token));
            await Task.WhenAll(tasks);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Only a bad SOA or a target list that throws while enumerated can get here.
            logger.LogWarning("notify of zone {Zone}: {Error}", zone, e.Message);
        }
    }

    private async Task NotifyOneQuietly(DnsName zone, ResourceRecord soa, NotifyTarget target, CancellationToken token)
    {
        try
        {
            await NotifyAsync(zone, soa, target, token);
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            // Stopping: the secondary will catch up at its SOA refresh.
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            logger.LogWarning("notify of zone {Zone} to {Target} failed: {Error}", zone, target, e.Message);
        }
    }

    /// <summary>
    /// RFC 1996 §3.7: opcode NOTIFY, AA set, a random ID, the question ZONE SOA IN, and the new SOA
    /// in the answer section (a hint the secondary may use; BIND and Knot send it), then the TSIG
    /// record when keyed. The same message, with the same ID and signature, is sent on every try,
    /// so a late answer to an earlier send still matches and verifies (the 60 s of tries stay
    /// well inside TSIG's 300 s fudge).
    /// </summary>
    private (byte[] Message, byte[] Mac) Build(DnsName zone, ResourceRecord soa, TsigKey? key)
    {
        var message = new DnsMessage();
        message.Header.Id = (ushort)RandomNumberGenerator.GetInt32(65536);
        message.Header.Opcode = Opcode.Notify;
        message.Header.AuthoritativeAnswer = true;
        message.Questions.Add(new DnsQuestion(zone, RecordType.SOA, RecordClass.IN));
        message.Answers.Add(soa);
        var wire = message.ToWire();
        if (key is null) return (wire, []);
        var buffer = new byte[wire.Length + Tsig.MaxRecordSize(key)];
        wire.CopyTo(buffer, 0);
        var mac = new byte[TsigAlgorithms.MaxMacSize];
        int length = Tsig.Sign(buffer, wire.Length, key, default, hasPrior: false, Now(), Tsig.DefaultFudge, TsigError.NoError,
            default, timersOnly: false, mac, out int macLength);
        return (buffer[..length], mac[..macLength]);
    }

    private const string PortUnreachable = "port unreachable (ICMP): nothing listens there";

    private long Now() => _time.GetUtcNow().ToUnixTimeSeconds();

    /// <summary>Sends and retransmits until a matching reply; null when it was NOERROR (and verified), else why not.</summary>
    private async Task<string?> ExchangeAsync(DnsName zone, byte[] message, byte[] mac, NotifyTarget target, CancellationToken token)
    {
        var endPoint = target.EndPoint;
        using var socket = new Socket(endPoint.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(Source ?? (endPoint.AddressFamily == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Any : IPAddress.Any), 0));
        // Connected: the kernel passes only datagrams from the target's address and port (RFC 1996
        // §3.6 matches the reply on both), and reports an ICMP port unreachable, which §3.6 also
        // counts as the end of the tries.
        socket.Connect(endPoint);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(token);
        var reply = new TaskCompletionSource<byte[]?>(TaskCreationOptions.RunContinuationsAsynchronously);
        var receiving = ReceiveAsync(socket, zone, message, reply, stop.Token);
        try
        {
            int sends = 0;
            TimeSpan waited = TimeSpan.Zero;
            foreach (var interval in Intervals)
            {
                // The wait starts before the send, so whoever sees the datagram knows the timer is set.
                var timer = Task.Delay(interval, _time, stop.Token);
                await socket.SendAsync(message, SocketFlags.None, token);
                sends++;
                waited += interval;
                if (await Task.WhenAny(reply.Task, timer) == reply.Task)
                    return await reply.Task is { } answer ? Judge(answer, mac, target.Key) : PortUnreachable;
                token.ThrowIfCancellationRequested();
            }
            return $"no answer after {sends} sends in {waited.TotalSeconds:0.#} s";
        }
        finally
        {
            stop.Cancel();
            socket.Close();
            await receiving;
        }
    }

    /// <summary>
    /// Receives until a reply matches the NOTIFY (RFC 1996 §3.6): from the target's address and
    /// port (the socket is connected to it), same ID, QR set, opcode NOTIFY, and the question
    /// echoed (§4: the response is the request with QR set). Anything else is ignored: a stray or
    /// forged datagram must not end the tries. Completes with null on ICMP port unreachable.
    /// </summary>
    private static async Task ReceiveAsync(Socket socket, DnsName zone, byte[] message, TaskCompletionSource<byte[]?> reply, CancellationToken token)
    {
        var buffer = new byte[65535];
        ushort id = BinaryPrimitives.ReadUInt16BigEndian(message);
        try
        {
            while (true)
            {
                int received;
                try
                {
                    received = await socket.ReceiveAsync(buffer, SocketFlags.None, token);
                }
                catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
                {
                    reply.TrySetResult(null);
                    return;
                }
                var datagram = buffer.AsSpan(0, received);
                if (!DnsHeader.TryRead(datagram, out var header) || header.Id != id || !header.IsResponse || header.Opcode != Opcode.Notify)
                    continue;
                if (!DnsMessage.TryParse(datagram, out var parsed) || parsed.Questions.Count != 1) continue;
                var q = parsed.Questions[0];
                if (q.Name != zone || q.Type != RecordType.SOA || q.Class != RecordClass.IN) continue;
                reply.TrySetResult(datagram.ToArray());
                return;
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
        {
            // The exchange ended (answered, gave up, or stopping) and closed the socket.
        }
    }

    /// <summary>
    /// What a matching reply means. NOERROR is the acknowledgement; any other RCODE (NOTAUTH,
    /// REFUSED, NOTIMP...) is the secondary's considered refusal, and resending the same message
    /// would get the same answer, so the tries end. With a key the reply must verify (RFC 8945
    /// §5.3.2): a server that rejected our signature answers unsigned with a TSIG error.
    /// </summary>
    private string? Judge(byte[] reply, byte[] mac, TsigKey? key)
    {
        var rcode = (Rcode)(reply[3] & 0xF);
        string? tsigProblem = null;
        if (key is not null)
        {
            var verifier = new TsigResponseVerifier(key, mac, Now());
            tsigProblem = verifier.Describe(verifier.Check(reply));
        }
        if (rcode != Rcode.NoError)
            return $"answered {rcode.ToString().ToUpperInvariant()}" + (tsigProblem is null ? "" : $" ({tsigProblem})");
        return tsigProblem is null ? null : $"TSIG: {tsigProblem}";
    }
}
