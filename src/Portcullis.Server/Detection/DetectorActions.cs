using System.Buffers.Binary;

namespace Portcullis.Server.Detection;

/// <summary>What the query path does with a query the detector's actions cover.</summary>
public enum DetectorVerdict : byte
{
    /// <summary>Not covered, or under its rate: answer as usual.</summary>
    None,
    /// <summary>Answer REFUSED with Extended DNS Error 15 (Blocked, RFC 8914 §4.16).</summary>
    Refuse,
    /// <summary>Send nothing.</summary>
    Drop,
}

/// <summary>
/// The detector's automatic actions, read on the query path: domains and clients blocked or
/// rate-limited until a time. The tables are an immutable snapshot that the detector's thread
/// replaces (copy on write: actions start rarely) and the query path reads through a volatile
/// field, so <see cref="Check"/> takes no lock and allocates nothing; a rate-limited entry's token
/// state is one <c>long</c> updated with compare-and-swap (GCRA, the generic cell rate algorithm).
/// Times are <see cref="DateTime.Ticks"/> (UTC), the clock of <c>QueryEvent.Time</c>, so a replay
/// of captured traffic acts the same as the live server.
/// </summary>
public sealed class DetectorActions
{
    internal sealed class Entry(byte[] key, long until, DetectorAction action, bool drop, long intervalTicks, long burstTicks)
    {
        public readonly byte[] Key = key;       // lower-case wire name (no root label), or the address octets
        public readonly long Until = until;
        public readonly DetectorAction Action = action;
        public readonly bool Drop = drop;
        public readonly long IntervalTicks = intervalTicks;
        public readonly long BurstTicks = burstTicks;   // how far ahead of now the schedule may run: (burst - 1) intervals
        public long Tat;                          // GCRA theoretical arrival time

        public bool Take(long now)
        {
            while (true)
            {
                long tat = Volatile.Read(ref Tat);
                long start = Math.Max(tat, now);
                if (start - now > BurstTicks) return false;
                if (Interlocked.CompareExchange(ref Tat, start + IntervalTicks, tat) == tat) return true;
            }
        }
    }

    private sealed class Snapshot(Dictionary<ulong, Entry> domains, Dictionary<ulong, Entry> clients)
    {
        public readonly Dictionary<ulong, Entry> Domains = domains;
        public readonly Dictionary<ulong, Entry> Clients = clients;
        public readonly bool Empty = domains.Count == 0 && clients.Count == 0;
    }

    private volatile Snapshot _snapshot = new(new(), new());
    private readonly Lock _writeLock = new();

    /// <summary>Entries in force or not yet pruned.</summary>
    public int Count { get { var s = _snapshot; return s.Domains.Count + s.Clients.Count; } }

    /// <summary>Whether a query for <paramref name="qnameWire"/> from <paramref name="clientAddress"/> is blocked now (rate-limited ones over their rate count as blocked).</summary>
    public bool IsBlocked(ReadOnlySpan<byte> qnameWire, ReadOnlySpan<byte> clientAddress, long nowTicks) =>
        Check(qnameWire, clientAddress, nowTicks) != DetectorVerdict.None;

    /// <summary>
    /// The verdict for one query: its client (4 or 16 octets) and name (wire form, any case). A
    /// rate-limited entry spends a token when it admits the query. Allocation-free, lock-free.
    /// </summary>
    public DetectorVerdict Check(ReadOnlySpan<byte> qnameWire, ReadOnlySpan<byte> clientAddress, long nowTicks)
    {
        var s = _snapshot;
        if (s.Empty) return DetectorVerdict.None;
        if (s.Clients.Count > 0 && !clientAddress.IsEmpty
            && s.Clients.TryGetValue(AddressHash(clientAddress), out var c) && clientAddress.SequenceEqual(c.Key))
        {
            var v = Verdict(c, nowTicks);
            if (v != DetectorVerdict.None) return v;
        }
        if (s.Domains.Count == 0) return DetectorVerdict.None;
        Span<int> starts = stackalloc int[128];
        int n = NameHash.Labels(qnameWire, starts, out int end);
        ulong h = NameHash.Seed;
        for (int k = n - 1; k >= 0; k--)
        {
            int st = starts[k];
            h = NameHash.Combine(h, NameHash.Label(qnameWire.Slice(st + 1, qnameWire[st])));
            if (s.Domains.TryGetValue(h, out var d) && NameHash.Same(d.Key, qnameWire, st, end))
                return Verdict(d, nowTicks);
        }
        return DetectorVerdict.None;
    }

    private static DetectorVerdict Verdict(Entry e, long now)
    {
        if (now >= e.Until) return DetectorVerdict.None;
        if (e.Action == DetectorAction.RateLimit && e.Take(now)) return DetectorVerdict.None;
        return e.Drop ? DetectorVerdict.Drop : DetectorVerdict.Refuse;
    }

    internal static ulong AddressHash(ReadOnlySpan<byte> address)
    {
        ulong h = 0xCBF29CE484222325;
        foreach (byte b in address) h = (h ^ b) * 0x100000001B3;
        return h ^ (h >> 29);
    }

    /// <summary>Domains, and clients, held at once (each table); beyond it the entry that ends first goes.</summary>
    public const int MaxEntries = 4096;

    /// <summary>Blocks or rate-limits a registered domain (and everything under it) until <paramref name="untilTicks"/>.</summary>
    public void AddDomain(ReadOnlySpan<byte> domainWire, DetectorAction action, long nowTicks, long untilTicks, double ratePerSecond = 1, bool drop = false)
    {
        if (action == DetectorAction.Alert) return;
        var key = NameHash.LowerWithoutRoot(domainWire);
        Update(domains: true, NameHash.Of(key), key, action, nowTicks, untilTicks, ratePerSecond, drop);
    }

    /// <summary>Blocks or rate-limits a client address (4 or 16 octets) until <paramref name="untilTicks"/>.</summary>
    public void AddClient(ReadOnlySpan<byte> address, DetectorAction action, long nowTicks, long untilTicks, double ratePerSecond = 1, bool drop = true)
    {
        if (action == DetectorAction.Alert || address.IsEmpty) return;
        var key = address.ToArray();
        Update(domains: false, AddressHash(key), key, action, nowTicks, untilTicks, ratePerSecond, drop);
    }

    private void Update(bool domains, ulong hash, byte[] key, DetectorAction action, long now, long until, double rate, bool drop)
    {
        lock (_writeLock)
        {
            var s = _snapshot;
            var d = Prune(s.Domains, now);
            var c = Prune(s.Clients, now);
            long interval = (long)(TimeSpan.TicksPerSecond / Math.Max(rate, 1e-3));
            var entry = new Entry(key, until, action, drop, interval, interval * (Math.Max(1, (long)Math.Ceiling(rate)) - 1));
            var table = domains ? d : c;
            // Another key with the same hash keeps its place: a collision may keep a new block out,
            // never lift one in force.
            if (table.TryGetValue(hash, out var existing) && !existing.Key.AsSpan().SequenceEqual(key)) return;
            // Bounded: past MaxEntries the entry that ends first makes room (the table is copied per
            // change, so its size bounds the work of every alert too).
            if (!table.ContainsKey(hash) && table.Count >= MaxEntries)
            {
                ulong first = 0;
                long earliest = long.MaxValue;
                foreach (var (k, e) in table)
                    if (e.Until < earliest) { earliest = e.Until; first = k; }
                table.Remove(first);
            }
            table[hash] = entry;
            _snapshot = new Snapshot(d, c);
        }
    }

    /// <summary>Removes what expired before <paramref name="nowTicks"/>.</summary>
    public void Expire(long nowTicks)
    {
        lock (_writeLock)
        {
            var s = _snapshot;
            if (s.Empty) return;
            _snapshot = new Snapshot(Prune(s.Domains, nowTicks), Prune(s.Clients, nowTicks));
        }
    }

    private static Dictionary<ulong, Entry> Prune(Dictionary<ulong, Entry> table, long now)
    {
        var copy = new Dictionary<ulong, Entry>(table.Count + 1);
        foreach (var (k, e) in table) if (e.Until > now) copy[k] = e;
        return copy;
    }

    /// <summary>The entries in force (domain names in presentation form, client addresses as text), for status and tests.</summary>
    public IReadOnlyList<(string Key, bool IsDomain, DetectorAction Action, DateTime Until)> List()
    {
        var s = _snapshot;
        var list = new List<(string, bool, DetectorAction, DateTime)>();
        foreach (var e in s.Domains.Values) list.Add((NameHash.ToText(e.Key), true, e.Action, new DateTime(e.Until, DateTimeKind.Utc)));
        foreach (var e in s.Clients.Values) list.Add((new System.Net.IPAddress(e.Key).ToString(), false, e.Action, new DateTime(e.Until, DateTimeKind.Utc)));
        return list;
    }
}
