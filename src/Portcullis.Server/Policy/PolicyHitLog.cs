using System.Net;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;

namespace Portcullis.Server.Policy;

/// <summary>
/// One log line per policy hit (for the policies with <c>log: true</c>), as BIND's rpz category
/// writes them, formatted off the query path: <see cref="Report"/> copies the name and client into
/// a slot of a fixed ring (a bounded multi-producer queue, D. Vyukov's: one compare-and-swap, no
/// lock, no allocation; dropped and counted when full), and a background task polls the ring every
/// <see cref="FlushInterval"/> and writes the lines. Polling rather than waking the writer task keeps
/// the query thread from scheduling its continuation.
/// </summary>
public sealed class PolicyHitLog : IDisposable
{
    [InlineArray(256)]
    private struct Name256 { private byte _b; }

    [InlineArray(16)]
    private struct Address16 { private byte _b; }

    private struct Entry
    {
        public Name256 Name;
        public Address16 Client;
        public int NameLength, ClientLength;
        public RecordType QType;
        public PolicyAction Action;
        public bool Wildcard;
        public string Policy;
    }

    private struct Cell
    {
        public long Sequence;
        public Entry Item;
    }

    /// <summary>Lines queued at most between two flushes.</summary>
    public const int Capacity = 1024;

    /// <summary>How often the queued lines are written.</summary>
    public static readonly TimeSpan FlushInterval = TimeSpan.FromMilliseconds(100);

    private readonly Cell[] _cells = new Cell[Capacity];
    private long _enqueue, _dequeue;
    private readonly CancellationTokenSource _stop = new();
    private readonly ILogger _logger;
    private readonly Task _writer;
    private long _lost;

    public PolicyHitLog(ILogger logger)
    {
        _logger = logger;
        for (int i = 0; i < _cells.Length; i++) _cells[i].Sequence = i;
        _writer = Task.Run(WriteAsync);
    }

    /// <summary>Lines not written because the ring was full.</summary>
    public long Lost => Interlocked.Read(ref _lost);

    /// <summary>Queues a line for the hit (when its policy logs); allocation-free, lock-free, never blocks.</summary>
    public void Report(in PolicyHit hit, ReadOnlySpan<byte> client, ReadOnlySpan<byte> qname, RecordType qtype)
    {
        if (!hit.Log) return;
        long pos = Volatile.Read(ref _enqueue);
        while (true)
        {
            long sequence = Volatile.Read(ref _cells[pos & (Capacity - 1)].Sequence);
            long difference = sequence - pos;
            if (difference == 0)
            {
                long seen = Interlocked.CompareExchange(ref _enqueue, pos + 1, pos);
                if (seen == pos) break;
                pos = seen;
            }
            else if (difference < 0)
            {
                Interlocked.Increment(ref _lost);   // full: the writer is behind
                return;
            }
            else pos = Volatile.Read(ref _enqueue);
        }
        ref var cell = ref _cells[pos & (Capacity - 1)];
        ref var e = ref cell.Item;
        e.NameLength = Math.Min(qname.Length, 255);
        e.ClientLength = client.Length is 4 or 16 ? client.Length : 0;
        e.QType = qtype;
        e.Action = hit.Action;
        e.Wildcard = hit.Wildcard;
        e.Policy = hit.PolicyName;
        qname[..e.NameLength].CopyTo(e.Name);
        client[..e.ClientLength].CopyTo(e.Client);
        Volatile.Write(ref cell.Sequence, pos + 1);   // published to the reader
    }

    /// <summary>Takes the oldest published line (the background task is the only reader).</summary>
    private bool TryTake(out Entry entry)
    {
        long pos = _dequeue;
        ref var cell = ref _cells[pos & (Capacity - 1)];
        if (Volatile.Read(ref cell.Sequence) != pos + 1)
        {
            entry = default;
            return false;
        }
        entry = cell.Item;
        cell.Item.Policy = null!;
        Volatile.Write(ref cell.Sequence, pos + Capacity);   // free for the producer one lap later
        _dequeue = pos + 1;
        return true;
    }

    private async Task WriteAsync()
    {
        using var timer = new PeriodicTimer(FlushInterval);
        while (true)
        {
            while (TryTake(out var e)) Write(in e);
            try
            {
                if (!await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false)) return;
            }
            catch (OperationCanceledException)
            {
                while (TryTake(out var e)) Write(in e);   // what was queued before Dispose
                return;
            }
        }
    }

    private void Write(in Entry e)
    {
        var copy = e;
        string client = copy.ClientLength > 0 ? new IPAddress(((ReadOnlySpan<byte>)copy.Client)[..copy.ClientLength]).ToString() : "?";
        string name;
        try { name = DnsName.FromWire(((ReadOnlySpan<byte>)copy.Name)[..copy.NameLength]).ToString(); }
        catch (Exception ex) when (ex is FormatException or ArgumentException) { name = "?"; }
        _logger.LogInformation("rpz {Policy}: {Client} {Name}/{Type}: {Action} ({Match} QNAME trigger)",
            copy.Policy, client, name, RecordTypes.ToText(copy.QType), ActionText(copy.Action), copy.Wildcard ? "wildcard" : "exact");
    }

    public static string ActionText(PolicyAction a) => a switch
    {
        PolicyAction.Nxdomain => "NXDOMAIN",
        PolicyAction.Nodata => "NODATA",
        PolicyAction.Drop => "DROP",
        PolicyAction.Passthru => "PASSTHRU",
        PolicyAction.TcpOnly => "TCP-ONLY",
        _ => "local data",
    };

    public void Dispose()
    {
        _stop.Cancel();
        _writer.Wait(TimeSpan.FromSeconds(5));
        _stop.Dispose();
    }
}
