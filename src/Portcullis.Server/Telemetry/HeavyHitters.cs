namespace Portcullis.Server.Telemetry;

/// <summary>
/// The Space-Saving heavy-hitter sketch (Metwally, Agrawal and El Abbadi, 2005): <see cref="Capacity"/>
/// counters; a key not among them takes the smallest one's place and inherits its count as its
/// error. Every key with more than total/capacity occurrences is kept, and a kept key's count
/// overestimates its true count by at most its <c>Error</c> (≤ total/capacity). Memory is fixed;
/// an update costs a dictionary lookup, plus a scan of the counters when a new key replaces the
/// smallest (capacity is small: 64–1024). Not thread-safe: one writer (the event hub's thread).
/// Keys are looked up by span, so only a key that enters the sketch allocates its string.
/// </summary>
public sealed class SpaceSaving
{
    readonly Dictionary<string, int> _index;
    readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _lookup;
    readonly string[] _keys;
    readonly long[] _counts;
    readonly long[] _errors;
    int _used;

    public SpaceSaving(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _index = new Dictionary<string, int>(capacity, StringComparer.Ordinal);
        _lookup = _index.GetAlternateLookup<ReadOnlySpan<char>>();
        _keys = new string[capacity];
        _counts = new long[capacity];
        _errors = new long[capacity];
    }

    public int Capacity => _keys.Length;
    /// <summary>Occurrences added since the last <see cref="Clear"/>.</summary>
    public long Total { get; private set; }

    public void Add(ReadOnlySpan<char> key, long weight = 1)
    {
        Total += weight;
        if (_lookup.TryGetValue(key, out int slot))
        {
            _counts[slot] += weight;
            return;
        }
        if (_used < _keys.Length)
        {
            slot = _used++;
            _errors[slot] = 0;
            _counts[slot] = weight;
        }
        else
        {
            slot = 0;
            for (int i = 1; i < _used; i++)
                if (_counts[i] < _counts[slot]) slot = i;
            _index.Remove(_keys[slot]);
            _errors[slot] = _counts[slot];
            _counts[slot] += weight;
        }
        var text = key.ToString();
        _keys[slot] = text;
        _index[text] = slot;
    }

    public void Clear()
    {
        _index.Clear();
        Array.Clear(_keys);
        _used = 0;
        Total = 0;
    }

    /// <summary>The <paramref name="n"/> largest counts, largest first: (key, count, error bound).</summary>
    public List<(string Key, long Count, long Error)> Top(int n)
    {
        var all = new List<(string, long, long)>(_used);
        for (int i = 0; i < _used; i++) all.Add((_keys[i], _counts[i], _errors[i]));
        all.Sort((a, b) => b.Item2.CompareTo(a.Item2) is int c && c != 0 ? c : string.CompareOrdinal(a.Item1, b.Item1));
        if (all.Count > n) all.RemoveRange(n, all.Count - n);
        return all;
    }

    /// <summary>Counts of two sketches added key by key (the sliding window's two halves).</summary>
    public static List<(string Key, long Count, long Error)> TopOf(SpaceSaving a, SpaceSaving b, int n)
    {
        var sum = new Dictionary<string, (long Count, long Error)>(StringComparer.Ordinal);
        foreach (var s in new[] { a, b })
            for (int i = 0; i < s._used; i++)
            {
                sum.TryGetValue(s._keys[i], out var v);
                sum[s._keys[i]] = (v.Count + s._counts[i], v.Error + s._errors[i]);
            }
        var all = new List<(string, long, long)>(sum.Count);
        foreach (var (k, v) in sum) all.Add((k, v.Count, v.Error));
        all.Sort((x, y) => y.Item2.CompareTo(x.Item2) is int c && c != 0 ? c : string.CompareOrdinal(x.Item1, y.Item1));
        if (all.Count > n) all.RemoveRange(n, all.Count - n);
        return all;
    }
}

/// <summary>
/// Top clients and top query names over a sliding window, as an observer of the query events, by
/// two Space-Saving sketches per key kind (the current half-window and the one before it: the
/// window covers between one and two halves). Exported as gauges on the server's meter
/// (portcullis_top_clients_queries{client}, portcullis_top_names_queries{name}) with at most
/// <see cref="Reported"/> series each, so a flood of random names cannot blow up the scrape.
/// Time is the events' own (arrival) time, so a replay gives the same answer.
/// </summary>
public sealed class TopTalkers : IQueryObserver
{
    public const int DefaultCapacity = 256;
    public const int DefaultReported = 10;

    readonly SpaceSaving[] _clients = [new(DefaultCapacity), new(DefaultCapacity)];
    readonly SpaceSaving[] _names = [new(DefaultCapacity), new(DefaultCapacity)];
    readonly long _halfTicks;
    long _halfStart = long.MinValue;
    int _current;
    readonly char[] _chars = new char[1024];
    readonly Lock _lock = new();   // the hub's thread and a scrape; never the query path
    long _lastEvent;

    public sealed record Snapshot(IReadOnlyList<(string Key, long Count, long Error)> Clients, IReadOnlyList<(string Key, long Count, long Error)> Names);

    readonly Func<long> _now;

    /// <param name="nowTicks">The clock the idle check reads (UTC ticks; default the system clock).</param>
    public TopTalkers(TimeSpan window, int reported = DefaultReported, Func<long>? nowTicks = null)
    {
        _now = nowTicks ?? (static () => DateTime.UtcNow.Ticks);
        ArgumentOutOfRangeException.ThrowIfLessThan(window, TimeSpan.FromSeconds(2));
        _halfTicks = window.Ticks / 2;
        Reported = reported;
    }

    public int Reported { get; }

    /// <summary>
    /// The top lists now (computed at each call, under a lock shared only with the hub's thread).
    /// Empty once no event has arrived for a whole window (by the clock: on an idle server the
    /// sketches' own event time stands still).
    /// </summary>
    public Snapshot Current
    {
        get
        {
            lock (_lock)
            {
                if (_halfStart == long.MinValue || _now() - _lastEvent >= 2 * _halfTicks) return new Snapshot([], []);
                return new Snapshot(SpaceSaving.TopOf(_clients[0], _clients[1], Reported), SpaceSaving.TopOf(_names[0], _names[1], Reported));
            }
        }
    }

    public void Observe(in QueryEvent e)
    {
        lock (_lock) ObserveLocked(e);
    }

    void ObserveLocked(in QueryEvent e)
    {
        long t = e.Time.Ticks;
        _lastEvent = Math.Max(_lastEvent, t);
        if (_halfStart == long.MinValue) _halfStart = t;
        if (t - _halfStart >= _halfTicks)
        {
            // Slide: the older half goes; two halves or more with no traffic clear both.
            _current ^= 1;
            if (t - _halfStart >= 2 * _halfTicks) { _clients[_current ^ 1].Clear(); _names[_current ^ 1].Clear(); }
            _clients[_current].Clear();
            _names[_current].Clear();
            _halfStart = t - (t - _halfStart) % _halfTicks;
        }
        int n = FormatAddress(e.Client, _chars);
        _clients[_current].Add(_chars.AsSpan(0, n));
        n = FormatName(e.Qname, _chars);
        _names[_current].Add(_chars.AsSpan(0, n));
    }

    public void Flush() { }

    static int FormatAddress(ReadOnlySpan<byte> a, Span<char> into) => AddressText.Format(a, into);

    /// <summary>The name lower-cased in presentation form (escapes as \DDD), absolute.</summary>
    static int FormatName(ReadOnlySpan<byte> wire, Span<char> into)
    {
        int n = 0, pos = 0;
        while (pos < wire.Length && wire[pos] != 0 && n < into.Length - 260)
        {
            int len = wire[pos];
            int end = Math.Min(pos + 1 + len, wire.Length);
            for (int i = pos + 1; i < end; i++)
            {
                byte b = wire[i];
                if (b is >= (byte)'A' and <= (byte)'Z') b += 32;
                if (b <= 0x20 || b >= 0x7F || b is (byte)'.' or (byte)'\\' or (byte)'"')
                {
                    into[n++] = '\\';
                    into[n++] = (char)('0' + b / 100);
                    into[n++] = (char)('0' + b / 10 % 10);
                    into[n++] = (char)('0' + b % 10);
                }
                else into[n++] = (char)b;
            }
            into[n++] = '.';
            pos += 1 + len;
        }
        if (n == 0) into[n++] = '.';
        return n;
    }
}
