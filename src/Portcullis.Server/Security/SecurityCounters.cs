using System.Diagnostics.Metrics;
using System.Net;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Portcullis.Server.Authoritative;

namespace Portcullis.Server.Security;

/// <summary>Why a query was refused, limited or dropped: one counter each.</summary>
public enum SecurityReason
{
    /// <summary>allow-query denied a query for a served zone.</summary>
    QueryRefused,
    /// <summary>A name outside the served zones from a client allow-recursion does not admit.</summary>
    RecursionRefused,
    /// <summary>A name outside the served zones from an admitted client: no resolver yet, so refused too.</summary>
    NotAuthoritative,
    TransferRefused,
    UpdateRefused,
    NotifyRefused,
    RrlDropped,
    RrlSlipped,
    /// <summary>An account (client prefix and response identity) that started being limited (or would, in log-only mode).</summary>
    RrlLimitedEpisode,
    ClientBlockedQuery,
    ClientBlockStarted,
    CookieMalformed,
    BadCookie,
    /// <summary>A TSIG-signed request that failed its check (unknown key, bad MAC, time, truncation): NOTAUTH.</summary>
    TsigRejected,
    /// <summary>Recursion: answered from the cache on the receive thread.</summary>
    RecursionCacheHit,
    /// <summary>Recursion: not in the cache, so resolved.</summary>
    RecursionCacheMiss,
    /// <summary>Recursion: a resolution that ended in NOERROR or NXDOMAIN.</summary>
    RecursionResolved,
    /// <summary>Recursion: a resolution that ended in SERVFAIL or another error.</summary>
    RecursionFailed,
    /// <summary>Recursion: SERVFAIL at once, resolutions in flight (or a connection's pending answers) at their bound.</summary>
    RecursionOverload,
    /// <summary>Recursion: an admitted client's query with RD=0: REFUSED, the cache not consulted (Unbound's "allow").</summary>
    RecursionNotDesired,
    /// <summary>Response policy (RPZ, domain lists): a recursive query answered NXDOMAIN.</summary>
    PolicyNxdomain,
    /// <summary>Response policy: answered NODATA.</summary>
    PolicyNodata,
    /// <summary>Response policy: dropped, no answer.</summary>
    PolicyDrop,
    /// <summary>Response policy: passed through (answered as if no policy matched; later policies not consulted).</summary>
    PolicyPassthru,
    /// <summary>Response policy: answered from the policy's local data.</summary>
    PolicyLocalData,
    /// <summary>Response policy: TCP-only (TC=1 over UDP; over TCP answered normally).</summary>
    PolicyTcpOnly,
}

/// <summary>
/// Counters per <see cref="SecurityReason"/>, incremented lock-free on the query path and read
/// through System.Diagnostics.Metrics (meter "Portcullis", instrument "portcullis.security.events",
/// tag "reason"), which dotnet-counters and the metrics exporter read.
/// </summary>
public sealed class SecurityCounters
{
    public static readonly string[] Names =
    [
        "query-refused", "recursion-refused", "not-authoritative", "transfer-refused", "update-refused", "notify-refused",
        "rrl-dropped", "rrl-slipped", "rrl-limited-episode", "client-blocked-query", "client-block-started", "cookie-malformed", "bad-cookie",
        "tsig-rejected", "recursion-cache-hit", "recursion-cache-miss", "recursion-resolved", "recursion-failed", "recursion-overload", "recursion-rd-clear",
        "policy-nxdomain", "policy-nodata", "policy-drop", "policy-passthru", "policy-local-data", "policy-tcp-only",
    ];

    // One cache line per counter, so that workers counting different reasons do not contend.
    private readonly long[] _counts = new long[Names.Length * 8];

    public SecurityCounters(Meter? meter = null)
    {
        meter?.CreateObservableCounter("portcullis.security.events", Observe, description: "Queries refused, rate-limited or dropped, by reason");
    }

    public void Count(SecurityReason reason) => Interlocked.Increment(ref _counts[(int)reason * 8]);

    public long this[SecurityReason reason] => Volatile.Read(ref _counts[(int)reason * 8]);

    /// <summary>Every counter, in <see cref="SecurityReason"/> order.</summary>
    public long[] Snapshot()
    {
        var values = new long[Names.Length];
        for (int i = 0; i < values.Length; i++) values[i] = Volatile.Read(ref _counts[i * 8]);
        return values;
    }

    /// <summary>"12 rrl-dropped, 3 query-refused": what changed between two snapshots, or null when nothing did.</summary>
    public static string? Describe(long[] before, long[] after)
    {
        var parts = new List<string>();
        for (int i = 0; i < after.Length; i++)
            if (after[i] != before[i]) parts.Add($"{after[i] - before[i]} {Names[i]}");
        return parts.Count == 0 ? null : string.Join(", ", parts);
    }

    private IEnumerable<Measurement<long>> Observe()
    {
        for (int i = 0; i < Names.Length; i++)
            yield return new Measurement<long>(Volatile.Read(ref _counts[i * 8]), new KeyValuePair<string, object?>("reason", Names[i]));
    }
}

/// <summary>What a <see cref="SecurityEvents"/> line reports.</summary>
public enum SecurityEventKind : byte { RrlLimited, RrlLogOnly, ClientBlocked, TransferRefused, UpdateRefused, NotifyRefused, TsigBadKey, TsigBadSig, TsigBadTime }

/// <summary>
/// Log lines for newly limited or blocked clients and refused transfers, written off the query path:
/// the query path posts a small struct to a bounded channel (dropped, and counted, when full), and a
/// background task formats and logs. A flood therefore costs no disk or formatting time per packet,
/// and at most one line per new event, not one per packet.
/// </summary>
public sealed class SecurityEvents : IDisposable
{
    private readonly record struct Event(SecurityEventKind Kind, Address16 Address, byte AddressLength, Zone? Zone);

    [InlineArray(16)]
    private struct Address16 { private byte _b; }

    private readonly Channel<Event> _channel = Channel.CreateBounded<Event>(new BoundedChannelOptions(4096)
    {
        FullMode = BoundedChannelFullMode.DropWrite,
        SingleReader = true,
    });
    private readonly ILogger _logger;
    private readonly Task _writer;
    private long _lost;

    private readonly Timer? _summary;
    private long[]? _lastCounts;

    /// <param name="counters">When given, a line each <paramref name="summaryInterval"/> (default one
    /// minute) says what was refused, limited or dropped in it, if anything was.</param>
    public SecurityEvents(ILogger logger, SecurityCounters? counters = null, TimeSpan? summaryInterval = null)
    {
        _logger = logger;
        _writer = Task.Run(WriteAsync);
        if (counters is not null)
        {
            var every = summaryInterval ?? TimeSpan.FromMinutes(1);
            _lastCounts = counters.Snapshot();
            _summary = new Timer(_ => Summarise(counters), null, every, every);
        }
    }

    private void Summarise(SecurityCounters counters)
    {
        var now = counters.Snapshot();
        if (SecurityCounters.Describe(_lastCounts!, now) is { } changes)
            _logger.LogInformation("in the last interval: {Changes}", changes);
        _lastCounts = now;
    }

    public long Lost => Volatile.Read(ref _lost);

    public void Report(SecurityEventKind kind, ReadOnlySpan<byte> address, Zone? zone = null)
    {
        var a = new Address16();
        address.CopyTo(a);
        if (!_channel.Writer.TryWrite(new Event(kind, a, (byte)address.Length, zone))) Interlocked.Increment(ref _lost);
    }

    private async Task WriteAsync()
    {
        await foreach (var e in _channel.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            var a = e.Address;
            string client = e.AddressLength is 4 or 16 ? new IPAddress(((ReadOnlySpan<byte>)a)[..e.AddressLength]).ToString() : "?";
            switch (e.Kind)
            {
                case SecurityEventKind.RrlLimited:
                    _logger.LogWarning("rate limiting responses to {Client} (response rate limit exceeded)", client);
                    break;
                case SecurityEventKind.RrlLogOnly:
                    _logger.LogWarning("would rate-limit responses to {Client} (rate-limit log-only)", client);
                    break;
                case SecurityEventKind.ClientBlocked:
                    _logger.LogWarning("blocking {Client}: query rate above the client limit", client);
                    break;
                case SecurityEventKind.TransferRefused:
                    _logger.LogWarning("zone transfer of {Zone} refused to {Client} (allow-transfer)", e.Zone?.Origin.ToString() ?? "?", client);
                    break;
                case SecurityEventKind.UpdateRefused:
                    _logger.LogWarning("update of {Zone} refused to {Client} (allow-update)", e.Zone?.Origin.ToString() ?? "?", client);
                    break;
                case SecurityEventKind.NotifyRefused:
                    _logger.LogWarning("NOTIFY for {Zone} refused from {Client} (allow-notify)", e.Zone?.Origin.ToString() ?? "?", client);
                    break;
                case SecurityEventKind.TsigBadKey:
                    _logger.LogWarning("TSIG: request from {Client} signed with a key we do not have or another algorithm: BADKEY", client);
                    break;
                case SecurityEventKind.TsigBadSig:
                    _logger.LogWarning("TSIG: request from {Client} has a MAC that does not verify (another secret?): BADSIG", client);
                    break;
                case SecurityEventKind.TsigBadTime:
                    _logger.LogWarning("TSIG: request from {Client} signed outside the fudge of our clock (check both clocks): BADTIME", client);
                    break;
            }
        }
    }

    public void Dispose()
    {
        _summary?.Dispose();
        _channel.Writer.TryComplete();
        _writer.Wait(TimeSpan.FromSeconds(5));
    }
}
