using Portcullis.Protocol.Messages;
using System.Buffers.Binary;
using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Portcullis.Protocol.Records;
using Portcullis.Server.Telemetry;

namespace Portcullis.Server.Detection;

/// <summary>One alert: a registered domain or a client whose traffic scored past the threshold.</summary>
public sealed record DetectorAlert(
    DateTime Time, string Kind, string? Domain, string? Client, double Score, double Queries, double UniqueNames,
    double MeanSuspicion, double InfoBytes, double TypeShare, int Clients, double MeanNameLength, double Bytes,
    DetectorAction Action, DateTime? Until);

/// <summary>
/// Tunnelling and exfiltration detection (docs/detection.md), streaming and bounded in memory: a
/// query observer on the <see cref="QueryEventHub"/>'s thread that keeps, per registered domain
/// (Public Suffix List) and per client, decayed counters over event time (never the wall clock, so
/// replays are deterministic), a 256-register HyperLogLog of distinct names, and the lexical score
/// of the names; a score past the threshold raises an alert (JSON-lines log, metric, ILogger
/// warning) and, when configured, a block or rate limit through <see cref="Actions"/>.
/// Single-threaded by contract (one observer call at a time); tables have fixed capacity with
/// CLOCK eviction; nothing is allocated per event except when an alert is raised.
/// </summary>
public sealed class TunnelDetector : IQueryObserver, IDisposable
{
    public const int HllBits = 8;
    public const int HllRegisters = 1 << HllBits;

    private readonly DetectorOptions _options;
    private readonly PublicSuffixList _psl;
    private readonly ILogger? _logger;
    private readonly Counter<long>? _alertCounter;
    private readonly AlertLog? _alertLog;
    private readonly ulong _k0, _k1;                  // SipHash key: table keys and names cannot be ground for collisions
    private readonly double _windowTicks, _infoTicks;
    private readonly long _uniqueTicks, _realertTicks;

    private readonly Table<DomainState> _domains;
    private readonly byte[] _hll;                     // HllRegisters per domain slot
    private readonly Table<ClientState> _clients;

    /// <summary>The actions in force (the query path reads them; wire <see cref="DetectorActions.Check"/>).</summary>
    public DetectorActions Actions { get; }

    /// <summary>Called on the detector's thread for every alert (tests, evaluation).</summary>
    public Action<DetectorAlert>? AlertRaised { get; set; }

    public long EventsObserved { get; private set; }
    public long EventsAllowListed { get; private set; }
    public long DomainAlerts { get; private set; }
    public long ClientAlerts { get; private set; }
    public int TrackedDomains => _domains.Count;
    public int TrackedClients => _clients.Count;

    public TunnelDetector(DetectorOptions options, PublicSuffixList psl, ILogger? logger = null, Meter? meter = null,
        AlertLog? alertLog = null, DetectorActions? actions = null, ulong? hashSeed = null)
    {
        _options = options;
        _psl = psl;
        _logger = logger;
        _alertLog = alertLog;
        _alertCounter = meter is null ? null : DetectorMetrics.AlertCounter(meter);
        Actions = actions ?? new DetectorActions();
        if (hashSeed is { } seed) { _k0 = seed; _k1 = seed * 0x9E3779B97F4A7C15 + 1; }
        else
        {
            Span<byte> key = stackalloc byte[16];
            RandomNumberGenerator.Fill(key);
            _k0 = BinaryPrimitives.ReadUInt64LittleEndian(key);
            _k1 = BinaryPrimitives.ReadUInt64LittleEndian(key[8..]);
        }
        _windowTicks = options.Window.Ticks;
        _infoTicks = options.InfoWindow.Ticks;
        _uniqueTicks = options.UniqueWindow.Ticks;
        _realertTicks = options.RealertAfter.Ticks;
        _domains = new Table<DomainState>(options.MaxDomains);
        _hll = new byte[options.MaxDomains * HllRegisters];
        _clients = new Table<ClientState>(options.MaxClients);
    }

    /// <summary>The memory the detector's tables take with these options (fixed at construction).</summary>
    public static long MemoryBytes(DetectorOptions options) =>
        (long)options.MaxDomains * (Unsafe.SizeOf<DomainState>() + HllRegisters + 24)
        + (long)options.MaxClients * (Unsafe.SizeOf<ClientState>() + 24);

    public void Observe(in QueryEvent e)
    {
        if (e.Policy == QueryPolicy.DetectorBlocked) return;   // already acted on: not evidence twice
        // Queries the server refused or dropped (ACLs, RRL, client limits, bad cookies, FORMERR) are
        // not evidence: a spoofer could send them in a victim's name.
        if (e.Policy != QueryPolicy.None && e.Policy is not (QueryPolicy.RpzPassthru or QueryPolicy.RpzNxdomain or QueryPolicy.RpzNodata
            or QueryPolicy.RpzLocalData or QueryPolicy.RpzDrop or QueryPolicy.RpzTcpOnly)) return;
        if (e.ResponseSize > 0 && e.Rcode is Rcode.FormErr or Rcode.Refused or Rcode.NotImp or Rcode.YXRRSet) return;   // YXRRSET: BADCOOKIE's low bits
        Observe(e.Time.Ticks, e.Client, e.Qname, e.QType, e.QuerySize, e.ResponseSize);
    }

    /// <summary>One query (the fields of a <see cref="QueryEvent"/> the detector uses).</summary>
    public void Observe(long ticks, ReadOnlySpan<byte> client, ReadOnlySpan<byte> qname, RecordType qtype, int querySize, int responseSize)
    {
        EventsObserved++;
        int rd = _psl.RegisteredDomainOffset(qname, out int labels);
        if (rd < 0 || labels > 127) return;                        // a public suffix itself, the root, or malformed
        if (_options.Allow.Matches(qname)) { EventsAllowListed++; return; }

        // Lower-case copy: names are compared and hashed without case (resolvers randomise it).
        Span<byte> lower = stackalloc byte[256];
        int end = 0;
        while (end < qname.Length && qname[end] != 0) end += qname[end] + 1;
        if (end > 254 || end > qname.Length || rd >= end) return;   // longer than a name can be: not from the wire
        for (int i = 0; i < end; i++) { byte b = qname[i]; lower[i] = b is >= (byte)'A' and <= (byte)'Z' ? (byte)(b | 0x20) : b; }
        var name = lower[..end];

        var f = LexicalFeatures.Of(name, rd);
        bool oddType = qtype is RecordType.TXT or RecordType.NULL or RecordType.CNAME or RecordType.ANY or RecordType.MX or RecordType.SRV
            || (ushort)qtype == 65399;
        ulong rdKey = Security.SipHash.Hash(_k0, _k1, name[rd..]);
        ulong nameHash = Security.SipHash.Hash(_k0 ^ 0x5bd1e995, _k1, name);
        ulong clientKey = client.IsEmpty ? 0 : Security.SipHash.Hash(_k0 ^ 0xc2b2ae35, _k1, client);

        // The registered domain.
        int slot = _domains.Find(rdKey, out bool fresh);
        if (fresh) Array.Clear(_hll, slot * HllRegisters, HllRegisters);
        ref var d = ref _domains.Slots[slot];
        if (fresh) { d = default; d.Key = rdKey; d.Ref = 1; d.UniqueStart = ticks; d.Last = ticks; d.HllSum = HllRegisters; d.HllZeros = HllRegisters; }
        double decay = Decay(ticks - d.Last, _windowTicks);
        double infoDecay = Decay(ticks - d.Last, _infoTicks);
        if (ticks > d.Last) d.Last = ticks;
        d.Queries = d.Queries * decay + 1;
        d.Suspicion = d.Suspicion * decay + f.Suspicion;
        d.OddTypes = d.OddTypes * decay + (oddType ? 1 : 0);
        d.NameLength = d.NameLength * decay + f.SubLength;
        d.Bytes = d.Bytes * decay + querySize + responseSize;
        d.Info *= infoDecay;
        // Distinct names: a tumbling window whose last one counts, fading, into the next.
        if (ticks - d.UniqueStart >= _uniqueTicks)
        {
            long windows = (ticks - d.UniqueStart) / _uniqueTicks;
            d.PrevUnique = windows == 1 ? d.Estimate : 0;
            d.PrevWindowQueries = windows == 1 ? d.WindowQueries : 0;
            d.UniqueStart += windows * _uniqueTicks;
            d.WindowQueries = 0;
            d.HllSum = HllRegisters; d.HllZeros = HllRegisters; d.Estimate = 0;
            Array.Clear(_hll, slot * HllRegisters, HllRegisters);
        }
        d.WindowQueries++;
        double before = d.Estimate;
        if (AddToHll(_hll.AsSpan(slot * HllRegisters, HllRegisters), nameHash, ref d.HllSum, ref d.HllZeros))
            d.Estimate = HllEstimate(d.HllSum, d.HllZeros);
        double added = d.Estimate - before;
        if (added > 0) d.Info += added * f.PayloadBytes;
        if (clientKey != 0) AddClient(ref d, (uint)clientKey);

        double score = DomainScore(in d, ticks, out double unique);
        d.Ref = (byte)(score >= _options.Threshold / 2 ? 3 : 1);
        if (score >= _options.Threshold && d.Queries >= _options.MinQueries && (d.AlertedAt == 0 || ticks - d.AlertedAt >= _realertTicks))
        {
            d.AlertedAt = ticks;
            DomainAlerts++;
            RaiseDomainAlert(ticks, name[rd..], client, score, in d, unique);
        }

        // The client.
        if (clientKey == 0) return;
        int cs = _clients.Find(clientKey, out fresh);
        ref var c = ref _clients.Slots[cs];
        if (fresh) { c = default; c.Key = clientKey; c.Ref = 1; c.Last = ticks; }
        decay = Decay(ticks - c.Last, _windowTicks);
        infoDecay = Decay(ticks - c.Last, _infoTicks);
        if (ticks > c.Last) c.Last = ticks;
        c.Queries = c.Queries * decay + 1;
        c.Suspicion = c.Suspicion * decay + f.Suspicion;
        c.OddTypes = c.OddTypes * decay + (oddType ? 1 : 0);
        c.Info = c.Info * infoDecay + f.PayloadBytes * f.Suspicion;
        // Boyer-Moore majority vote: the domain most of the client's queries go to.
        if (c.TopDomain == rdKey) c.TopVotes++;
        else if (c.TopVotes <= 0) { c.TopDomain = rdKey; c.TopVotes = 1; }
        else c.TopVotes--;
        double clientScore = ClientScore(in c);
        c.Ref = (byte)(clientScore >= _options.ClientThreshold / 2 ? 3 : 1);
        if (clientScore >= _options.ClientThreshold && c.Queries >= _options.MinQueries && (c.AlertedAt == 0 || ticks - c.AlertedAt >= _realertTicks))
        {
            c.AlertedAt = ticks;
            ClientAlerts++;
            RaiseClientAlert(ticks, client, clientScore, in c);
        }
    }

    /// <summary>
    /// The domain's score (docs/detection.md): 3 × mean name suspicion + 2 × information budget
    /// per client + 1 × share of TXT/NULL/CNAME/ANY/MX/SRV/PRIVATE + 1 × distinct-name volume,
    /// + 0.5 with one or two clients, − 1 with eight or more.
    /// </summary>
    private double DomainScore(in DomainState d, long ticks, out double unique)
    {
        double frac = Math.Clamp((double)(ticks - d.UniqueStart) / _uniqueTicks, 0, 1);
        unique = d.Estimate + d.PrevUnique * (1 - frac);
        double windowQueries = d.WindowQueries + d.PrevWindowQueries * (1 - frac);
        double ratio = windowQueries <= 0 ? 0 : Math.Min(1, unique / windowQueries);
        double lex = d.Suspicion / d.Queries;
        int clients = d.ClientCount;
        double info = Math.Min(1, d.Info / Math.Max(1, clients) / _options.InfoSaturation);
        double type = d.OddTypes / d.Queries;
        double volume = Math.Min(1, Math.Log2(1 + unique) / Math.Log2(101)) * Math.Clamp((ratio - 0.5) / 0.4, 0, 1);
        double popularity = clients <= 2 ? 0.5 : clients >= ClientSet.Capacity ? -1 : 0;
        return 3 * lex + 2 * info + type + volume + popularity;
    }

    /// <summary>
    /// The client's score, over all its domains together (so exfiltration spread over many domains
    /// adds up, and a client's browsing does not dilute it): 3 × its decayed sum of name suspicion
    /// (saturating at 40 fully suspicious names in the window) + 2 × its suspicious payload budget
    /// (saturating at twice the domain's).
    /// </summary>
    private double ClientScore(in ClientState c) =>
        3 * Math.Min(1, c.Suspicion / 40) + 2 * Math.Min(1, c.Info / (2 * _options.InfoSaturation));

    private static double Decay(long elapsed, double tau) => elapsed <= 0 ? 1 : Math.Exp(-elapsed / tau);

    private static void AddClient(ref DomainState d, uint client)
    {
        if (d.ClientCount >= ClientSet.Capacity) return;
        for (int i = 0; i < d.ClientCount; i++) if (d.Clients[i] == client) return;
        d.Clients[d.ClientCount++] = client;
    }

    /// <summary>Adds a hash to 2^8 one-byte registers; keeps Σ2^-r and the zero count so the estimate is O(1).</summary>
    private static bool AddToHll(Span<byte> registers, ulong hash, ref double sum, ref int zeros)
    {
        int index = (int)(hash >> (64 - HllBits));
        ulong rest = hash << HllBits | (1UL << (HllBits - 1));   // a sentinel bit bounds the rank
        byte rank = (byte)(System.Numerics.BitOperations.LeadingZeroCount(rest) + 1);
        byte old = registers[index];
        if (rank <= old) return false;
        registers[index] = rank;
        sum += Math.ScaleB(1, -rank) - Math.ScaleB(1, -old);
        if (old == 0) zeros--;
        return true;
    }

    private static double HllEstimate(double sum, int zeros)
    {
        const double m = HllRegisters;
        double e = 0.7213 / (1 + 1.079 / m) * m * m / sum;
        return e <= 2.5 * m && zeros > 0 ? m * Math.Log(m / zeros) : e;
    }

    private void RaiseDomainAlert(long ticks, ReadOnlySpan<byte> domain, ReadOnlySpan<byte> client, double score, in DomainState d, double unique)
    {
        var time = new DateTime(ticks, DateTimeKind.Utc);
        DateTime? until = null;
        if (_options.Action != DetectorAction.Alert)
        {
            long u = ticks + _options.ActionDuration.Ticks;
            Actions.AddDomain(domain, _options.Action, ticks, u, _options.RateLimit, _options.DomainDrop);
            until = new DateTime(u, DateTimeKind.Utc);
        }
        var alert = new DetectorAlert(time, "domain", NameHash.ToText(domain), d.ClientCount <= 1 && !client.IsEmpty ? new System.Net.IPAddress(client).ToString() : null,
            Math.Round(score, 3), Math.Round(d.Queries, 1), Math.Round(unique, 1), Math.Round(d.Suspicion / d.Queries, 3), Math.Round(d.Info, 1),
            Math.Round(d.OddTypes / d.Queries, 3), d.ClientCount, Math.Round(d.NameLength / d.Queries, 1), Math.Round(d.Bytes, 0), _options.Action, until);
        Publish(alert);
    }

    private void RaiseClientAlert(long ticks, ReadOnlySpan<byte> client, double score, in ClientState c)
    {
        var time = new DateTime(ticks, DateTimeKind.Utc);
        DateTime? until = null;
        if (_options.Action != DetectorAction.Alert && _options.ActOnClients)
        {
            long u = ticks + _options.ActionDuration.Ticks;
            Actions.AddClient(client, _options.Action, ticks, u, _options.RateLimit, _options.ClientDrop);
            until = new DateTime(u, DateTimeKind.Utc);
        }
        var alert = new DetectorAlert(time, "client", null, new System.Net.IPAddress(client).ToString(), Math.Round(score, 3), Math.Round(c.Queries, 1), 0,
            Math.Round(c.Suspicion / c.Queries, 3), Math.Round(c.Info, 1), Math.Round(c.OddTypes / c.Queries, 3), 1, 0, 0, _options.Action, until);
        Publish(alert);
    }

    private void Publish(DetectorAlert alert)
    {
        _alertCounter?.Add(1, new KeyValuePair<string, object?>("kind", alert.Kind));
        _logger?.LogWarning("detector: {Kind} {Subject} scored {Score} ({Queries} queries, {Unique} distinct names, suspicion {Suspicion}, {Info} B payload, odd types {Types}, {Clients} clients); action {Action}",
            alert.Kind, alert.Domain ?? alert.Client, alert.Score, alert.Queries, alert.UniqueNames, alert.MeanSuspicion, alert.InfoBytes, alert.TypeShare, alert.Clients,
            alert.Action.ToString().ToLowerInvariant());
        _alertLog?.Write(alert);
        AlertRaised?.Invoke(alert);
    }

    public void Flush() => _alertLog?.Flush();

    public void Dispose() => _alertLog?.Dispose();

    // ---- state ------------------------------------------------------------------------------

    [InlineArray(Capacity)]
    internal struct ClientSet
    {
        public const int Capacity = 8;
        private uint _c;
    }

    internal struct DomainState : ISlot
    {
        public ulong Key { get; set; }
        public byte Ref { get; set; }
        public long Last;
        public double Queries, Suspicion, OddTypes, NameLength, Bytes, Info;
        public long UniqueStart;
        public double WindowQueries, PrevWindowQueries, PrevUnique, Estimate, HllSum;
        public int HllZeros;
        public int ClientCount;
        public ClientSet Clients;
        public long AlertedAt;
    }

    internal struct ClientState : ISlot
    {
        public ulong Key { get; set; }
        public byte Ref { get; set; }
        public long Last;
        public double Queries, Suspicion, OddTypes, Info;
        public ulong TopDomain;
        public int TopVotes;
        public long AlertedAt;
    }

    internal interface ISlot
    {
        ulong Key { get; set; }
        byte Ref { get; set; }
    }

    /// <summary>
    /// A fixed-capacity table of slots found by key, evicting with CLOCK: the hand passes over
    /// slots, decrementing their reference weight (1 on use, 3 while suspicious) and takes the first
    /// at zero, so suspicious entries survive floods of one-off domains longer.
    /// </summary>
    internal sealed class Table<T> where T : struct, ISlot
    {
        public readonly T[] Slots;
        private readonly Dictionary<ulong, int> _index;
        private int _used, _hand;

        public Table(int capacity)
        {
            Slots = new T[capacity];
            _index = new Dictionary<ulong, int>(capacity);
        }

        public int Count => _used;

        public int Find(ulong key, out bool fresh)
        {
            if (_index.TryGetValue(key, out int slot)) { fresh = false; return slot; }
            fresh = true;
            if (_used < Slots.Length) slot = _used++;
            else
            {
                while (true)
                {
                    ref var s = ref Slots[_hand];
                    if (s.Ref == 0) break;
                    s.Ref--;
                    _hand = (_hand + 1) % Slots.Length;
                }
                slot = _hand;
                _hand = (_hand + 1) % Slots.Length;
                _index.Remove(Slots[slot].Key);
            }
            _index[key] = slot;
            Slots[slot].Key = key;
            Slots[slot].Ref = 1;
            return slot;
        }
    }
}

/// <summary>The detector's instruments on the server's meter.</summary>
public static class DetectorMetrics
{
    private static readonly Dictionary<Meter, Counter<long>> Counters = new();

    /// <summary>"portcullis.detector.alerts" (tag kind = domain | client), one per meter.</summary>
    public static Counter<long> AlertCounter(Meter meter)
    {
        lock (Counters)
        {
            if (!Counters.TryGetValue(meter, out var c))
                Counters[meter] = c = meter.CreateCounter<long>("portcullis.detector.alerts", unit: "{alert}",
                    description: "Tunnelling and exfiltration alerts raised, by kind (domain or client)");
            return c;
        }
    }
}
