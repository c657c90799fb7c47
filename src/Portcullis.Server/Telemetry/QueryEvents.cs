using System.Buffers;
using System.Diagnostics;
using System.Threading.Channels;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Records;
using Portcullis.Transport;

namespace Portcullis.Server.Telemetry;

/// <summary>Which policy acted on a query (the query log's "policy" field, the detector's input).</summary>
public enum QueryPolicy : byte
{
    None,
    /// <summary>Response rate limiting dropped the response or slipped it (TC=1 or BADCOOKIE).</summary>
    RrlDrop, RrlSlip,
    /// <summary>The per-client query limit (client-limit) dropped the query: the client is blocked for a while.</summary>
    ClientBlocked,
    /// <summary>An access list refused the query (allow-query, allow-recursion, allow-transfer, …).</summary>
    AclRefused,
    /// <summary>Response policy zones (RPZ) and domain lists: the action taken.</summary>
    RpzNxdomain, RpzNodata, RpzDrop, RpzPassthru, RpzLocalData, RpzTcpOnly,
    /// <summary>The tunnel detector's automatic action blocked the domain or client.</summary>
    DetectorBlocked,
}

/// <summary>
/// One query and what became of it, as the observers of a <see cref="QueryEventHub"/> see it on the
/// hub's own thread. Spans are valid only during <see cref="IQueryObserver.Observe"/>.
/// </summary>
public readonly ref struct QueryEvent
{
    /// <summary>When the query arrived (UTC).</summary>
    public DateTime Time { get; init; }
    /// <summary>The client's address: 4 octets (IPv4, also for IPv4-mapped IPv6) or 16.</summary>
    public ReadOnlySpan<byte> Client { get; init; }
    public int ClientPort { get; init; }
    public TransportKind Transport { get; init; }
    /// <summary>The question's name in wire form as the client sent it (case kept, uncompressed).</summary>
    public ReadOnlySpan<byte> Qname { get; init; }
    public RecordType QType { get; init; }
    public RecordClass QClass { get; init; }
    /// <summary>The response's RCODE (low 4 bits of the header); meaningless when <see cref="ResponseSize"/> is 0.</summary>
    public Rcode Rcode { get; init; }
    /// <summary>The response header's flags word (octets 2–3: QR, opcode, AA, TC, RD, RA, AD, CD, RCODE), or the query's when there was no response.</summary>
    public ushort Flags { get; init; }
    public int QuerySize { get; init; }
    /// <summary>Octets sent back; 0 when nothing was sent (dropped).</summary>
    public int ResponseSize { get; init; }
    /// <summary>From arrival to the response being ready.</summary>
    public TimeSpan Latency { get; init; }
    public QueryPolicy Policy { get; init; }
    /// <summary>The policy's name (the RPZ zone, "detector"), or null.</summary>
    public string? PolicyName { get; init; }
}

/// <summary>A consumer of query events; called on the hub's single background thread, one event at a time.</summary>
public interface IQueryObserver
{
    void Observe(in QueryEvent e);
    /// <summary>Called when the queue runs dry: write out what is buffered.</summary>
    void Flush();
}

/// <summary>
/// Carries every answered (or dropped) query off the query path to the observers that watch traffic:
/// the query log, the tunnel detector, the heavy-hitter sketches. <see cref="Post"/> copies the
/// question and the client into a pooled buffer and writes it to a bounded channel; when the channel
/// is full the event is dropped and counted (<see cref="Dropped"/>) instead of waiting, so a slow
/// disk never slows answers. One background task hands each event to every observer in turn.
/// </summary>
public sealed class QueryEventHub : IAsyncDisposable, IDisposable
{
    public const int DefaultCapacity = 65536;
    const int AddressSlot = 16;

    readonly record struct Entry(byte[] Buffer, int AddressLength, int QnameLength, int Port, TransportKind Transport,
        RecordType QType, RecordClass QClass, ushort Flags, int QuerySize, int ResponseSize, long Ticks, long LatencyTicks,
        QueryPolicy Policy, string? PolicyName, TaskCompletionSource? Marker = null);

    readonly Channel<Entry> _channel;
    readonly IQueryObserver[] _observers;
    readonly int _capacity;
    readonly Task _task;
    long _dropped, _observed, _failed;

    public QueryEventHub(IEnumerable<IQueryObserver> observers, int capacity = DefaultCapacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _observers = [.. observers];
        _capacity = capacity;
        _channel = Channel.CreateBounded<Entry>(
            new BoundedChannelOptions(capacity) { FullMode = BoundedChannelFullMode.DropWrite, SingleReader = true },
            e =>
            {
                if (e.Marker is not null) { e.Marker.TrySetCanceled(); return; }
                Interlocked.Increment(ref _dropped);
                ArrayPool<byte>.Shared.Return(e.Buffer);
            });
        _task = Task.Run(Loop);
    }

    public IReadOnlyList<IQueryObserver> Observers => _observers;
    /// <summary>Events dropped because the queue was full.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);
    /// <summary>Events handed to the observers.</summary>
    public long Observed => Interlocked.Read(ref _observed);
    /// <summary>Observer calls that threw (the event went on to the other observers).</summary>
    public long Failed => Interlocked.Read(ref _failed);

    /// <summary>
    /// Posts a query and its response (<paramref name="response"/> empty when nothing was sent).
    /// The question is read from the query; a query without one is not posted. Never blocks.
    /// </summary>
    public void Post(ReadOnlySpan<byte> query, ReadOnlySpan<byte> response, TransportKind transport, System.Net.SocketAddress client,
        long startTimestamp, QueryPolicy policy = QueryPolicy.None, string? policyName = null)
    {
        if (query.Length < DnsHeader.Size + 5 || (query[4] | query[5]) == 0) return;
        int end = DnsHeader.Size;
        while (true)
        {
            if (end >= query.Length) return;
            int label = query[end];
            if (label == 0) { end++; break; }
            if (label > 63) return;                      // compressed or reserved: not a question we parsed
            end += label + 1;
            if (end - DnsHeader.Size > 255) return;
        }
        if (end + 4 > query.Length) return;
        if (_channel.Reader.Count >= _capacity)
        {
            Interlocked.Increment(ref _dropped);
            return;
        }
        int qnameLength = end - DnsHeader.Size;
        var buffer = ArrayPool<byte>.Shared.Rent(AddressSlot + qnameLength);
        int addressLength = Security.ClientAddress.Get(client, buffer);
        var b = client.Buffer.Span;
        int port = client.Size >= 4 && client.Family is System.Net.Sockets.AddressFamily.InterNetwork or System.Net.Sockets.AddressFamily.InterNetworkV6
            ? b[2] << 8 | b[3] : 0;
        query.Slice(DnsHeader.Size, qnameLength).CopyTo(buffer.AsSpan(AddressSlot));
        var flagsSource = response.Length >= DnsHeader.Size ? response : query;
        var entry = new Entry(buffer, addressLength, qnameLength, port, transport,
            (RecordType)(query[end] << 8 | query[end + 1]), (RecordClass)(query[end + 2] << 8 | query[end + 3]),
            (ushort)(flagsSource[2] << 8 | flagsSource[3]), query.Length, response.Length >= DnsHeader.Size ? response.Length : 0,
            DateTime.UtcNow.Ticks, Stopwatch.GetTimestamp() - startTimestamp, policy, policyName);
        if (!_channel.Writer.TryWrite(entry))
        {
            Interlocked.Increment(ref _dropped);
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    async Task Loop()
    {
        var reader = _channel.Reader;
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            while (reader.TryRead(out var e))
            {
                if (e.Marker is not null)
                {
                    foreach (var o in _observers)
                    {
                        try { o.Flush(); }
                        catch (Exception) { Interlocked.Increment(ref _failed); }
                    }
                    e.Marker.TrySetResult();
                    continue;
                }
                try
                {
                    var ev = new QueryEvent
                    {
                        Time = new DateTime(e.Ticks, DateTimeKind.Utc),
                        Client = e.Buffer.AsSpan(0, e.AddressLength),
                        ClientPort = e.Port,
                        Transport = e.Transport,
                        Qname = e.Buffer.AsSpan(AddressSlot, e.QnameLength),
                        QType = e.QType,
                        QClass = e.QClass,
                        Rcode = (Rcode)(e.Flags & 0xF),
                        Flags = e.Flags,
                        QuerySize = e.QuerySize,
                        ResponseSize = e.ResponseSize,
                        Latency = Stopwatch.GetElapsedTime(0, e.LatencyTicks),
                        Policy = e.Policy,
                        PolicyName = e.PolicyName,
                    };
                    foreach (var o in _observers)
                    {
                        try { o.Observe(in ev); }
                        catch (Exception) { Interlocked.Increment(ref _failed); }
                    }
                    Interlocked.Increment(ref _observed);
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(e.Buffer);
                }
            }
            foreach (var o in _observers)
            {
                try { o.Flush(); }
                catch (Exception) { Interlocked.Increment(ref _failed); }
            }
        }
    }

    /// <summary>
    /// Resolves once every event posted before the call has been observed and the observers flushed:
    /// a marker goes through the queue behind them. While the queue is full the marker waits its turn.
    /// </summary>
    public async Task DrainAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            var marker = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var entry = new Entry([], 0, 0, 0, default, default, default, 0, 0, 0, 0, 0, QueryPolicy.None, null, marker);
            if (_channel.Writer.TryWrite(entry))
            {
                try
                {
                    await marker.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
                    return;
                }
                catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested) { }   // dropped: full
            }
            else if (_channel.Reader.Completion.IsCompleted) return;
            await Task.Delay(1, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Observes what is queued, flushes, and disposes the observers that are disposable.</summary>
    public async ValueTask DisposeAsync()
    {
        _channel.Writer.TryComplete();
        await _task.ConfigureAwait(false);
        foreach (var o in _observers)
            if (o is IAsyncDisposable ad) await ad.DisposeAsync().ConfigureAwait(false);
            else if (o is IDisposable d) d.Dispose();
    }

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();
}
