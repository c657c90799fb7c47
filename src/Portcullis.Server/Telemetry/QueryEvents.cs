using System.Diagnostics;
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
/// the query log, the tunnel detector, the heavy-hitter sketches. The queue is a bounded ring of
/// preallocated slots (Vyukov's bounded queue, many producers and one consumer): <see cref="Post"/>
/// claims a slot with one compare-and-swap, copies the question, the client and the outcome into
/// it and publishes it: no allocation, no lock. When the ring is full the event is dropped and
/// counted (<see cref="Dropped"/>) instead of waiting, so a slow disk never slows answers. One
/// background task hands each event to every observer in turn; when the ring is empty it flushes
/// the observers and polls again after a pause that grows from 1 to 50 ms (no signal from the
/// query path, which would need a lock), so a quiet server costs a few wake-ups a second.
/// </summary>
public sealed class QueryEventHub : IAsyncDisposable, IDisposable
{
    public const int DefaultCapacity = 16384;
    const int AddressSlot = 16;
    const int MaxPause = 50;

    struct Meta
    {
        public long Ticks, LatencyTicks;
        public int AddressLength, QnameLength, Port, QuerySize, ResponseSize;
        public TransportKind Transport;
        public RecordType QType;
        public RecordClass QClass;
        public ushort Flags;
        public QueryPolicy Policy;
        public string? PolicyName;
    }

    readonly IQueryObserver[] _observers;
    readonly SlotRing<Meta> _ring;          // per slot: the address (16) and the question name (255)
    const int SlotSize = AddressSlot + 256;
    readonly System.Collections.Concurrent.ConcurrentQueue<(long Target, TaskCompletionSource Done)> _drains = new();
    readonly CancellationTokenSource _stop = new();
    readonly Task _task;
    long _dropped, _observed, _failed;

    public QueryEventHub(IEnumerable<IQueryObserver> observers, int capacity = DefaultCapacity)
    {
        _observers = [.. observers];
        _ring = new SlotRing<Meta>(capacity, SlotSize);
        _task = Task.Run(Loop);
    }

    public IReadOnlyList<IQueryObserver> Observers => _observers;
    /// <summary>Slots in the ring (the capacity asked for, rounded up to a power of two).</summary>
    public int Capacity => _ring.Capacity;
    /// <summary>Events dropped because the queue was full.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);
    /// <summary>Events handed to the observers.</summary>
    public long Observed => Interlocked.Read(ref _observed);
    /// <summary>Observer calls that threw (the event went on to the other observers).</summary>
    public long Failed => Interlocked.Read(ref _failed);

    /// <summary>
    /// Posts a query and its response (<paramref name="response"/> empty when nothing was sent).
    /// The question is read from the query; a query without one is not posted. Never blocks,
    /// never allocates.
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

        if (!_ring.TryClaim(out int index, out long pos))
        {
            Interlocked.Increment(ref _dropped);
            return;
        }

        int qnameLength = end - DnsHeader.Size;
        var slot = _ring.Slot(index);
        int addressLength = Security.ClientAddress.Get(client, slot);
        var b = client.Buffer.Span;
        query.Slice(DnsHeader.Size, qnameLength).CopyTo(slot[AddressSlot..]);
        var flagsSource = response.Length >= DnsHeader.Size ? response : query;
        ref var m = ref _ring.Meta(index);
        m.Ticks = DateTime.UtcNow.Ticks;
        m.LatencyTicks = Stopwatch.GetTimestamp() - startTimestamp;
        m.AddressLength = addressLength;
        m.QnameLength = qnameLength;
        m.Port = client.Size >= 4 && client.Family is System.Net.Sockets.AddressFamily.InterNetwork or System.Net.Sockets.AddressFamily.InterNetworkV6
            ? b[2] << 8 | b[3] : 0;
        m.QuerySize = query.Length;
        m.ResponseSize = response.Length >= DnsHeader.Size ? response.Length : 0;
        m.Transport = transport;
        m.QType = (RecordType)(query[end] << 8 | query[end + 1]);
        m.QClass = (RecordClass)(query[end + 2] << 8 | query[end + 3]);
        m.Flags = (ushort)(flagsSource[2] << 8 | flagsSource[3]);
        m.Policy = policy;
        m.PolicyName = policyName;
        _ring.Publish(index, pos);
    }

    async Task Loop()
    {
        int pause = 1;
        bool stopping = false, dirty = false;
        long lastFlush = Environment.TickCount64;
        while (true)
        {
            int batch = 0;
            while (TryObserveOne()) batch++;
            if (batch > 0) { dirty = true; pause = 1; }
            // Flush (a write per log file) when the ring ran dry, when someone drains, or every
            // FlushInterval ms under load: not after every small batch, which would be a system
            // call per handful of queries.
            long now = Environment.TickCount64;
            if (dirty && (batch == 0 || stopping || !_drains.IsEmpty || now - lastFlush >= FlushInterval))
            {
                foreach (var o in _observers)
                {
                    try { o.Flush(); }
                    catch (Exception) { Interlocked.Increment(ref _failed); }
                }
                dirty = false;
                lastFlush = now;
            }
            long head = _ring.Head;
            while (!dirty && _drains.TryPeek(out var d) && d.Target <= head && _drains.TryDequeue(out d)) d.Done.TrySetResult();
            if (stopping)
            {
                while (_drains.TryDequeue(out var d)) d.Done.TrySetResult();   // nothing more will come
                return;
            }
            // A full quarter of the ring at once: keep up. Otherwise let events gather for a
            // millisecond (fewer wake-ups and context switches on a shared core), longer when idle.
            if (batch >= Math.Max(_ring.Capacity / 4, 1)) continue;
            try { await Task.Delay(batch > 0 ? 1 : pause, _stop.Token).ConfigureAwait(false); }
            catch (OperationCanceledException) { stopping = true; }   // one more round: what was posted before the stop
            if (batch == 0) pause = Math.Min(pause * 2, MaxPause);
        }
    }

    /// <summary>Under steady load, observers are flushed at least this often (ms).</summary>
    const int FlushInterval = 100;

    bool TryObserveOne()
    {
        if (!_ring.TryPeek(out int index)) return false;   // nothing published yet
        ref var m = ref _ring.Meta(index);
        var slot = _ring.Slot(index);
        var ev = new QueryEvent
        {
            Time = new DateTime(m.Ticks, DateTimeKind.Utc),
            Client = slot[..m.AddressLength],
            ClientPort = m.Port,
            Transport = m.Transport,
            Qname = slot.Slice(AddressSlot, m.QnameLength),
            QType = m.QType,
            QClass = m.QClass,
            Rcode = (Rcode)(m.Flags & 0xF),
            Flags = m.Flags,
            QuerySize = m.QuerySize,
            ResponseSize = m.ResponseSize,
            Latency = Stopwatch.GetElapsedTime(0, m.LatencyTicks),
            Policy = m.Policy,
            PolicyName = m.PolicyName,
        };
        foreach (var o in _observers)
        {
            try { o.Observe(in ev); }
            catch (Exception) { Interlocked.Increment(ref _failed); }
        }
        m.PolicyName = null;
        Interlocked.Increment(ref _observed);
        _ring.Free(index);
        return true;
    }

    /// <summary>
    /// Resolves once every event posted before the call has been observed and the observers
    /// flushed (for tests, reloads and shutdown).
    /// </summary>
    public Task DrainAsync(CancellationToken cancellationToken = default)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _drains.Enqueue((_ring.Tail, done));
        if (_task.IsCompleted)
        {
            while (_drains.TryDequeue(out var d)) d.Done.TrySetResult();
            return Task.CompletedTask;
        }
        return done.Task.WaitAsync(cancellationToken);
    }

    /// <summary>Observes what is queued, flushes, and disposes the observers that are disposable.</summary>
    public async ValueTask DisposeAsync()
    {
        if (!_stop.IsCancellationRequested) _stop.Cancel();
        await _task.ConfigureAwait(false);
        foreach (var o in _observers)
            if (o is IAsyncDisposable ad) await ad.DisposeAsync().ConfigureAwait(false);
            else if (o is IDisposable d) d.Dispose();
    }

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();
}
