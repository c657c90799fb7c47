using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;
using Portcullis.Server.Configuration;
using Portcullis.Server.Security;
using Portcullis.Server.Telemetry;

namespace Portcullis.Server.Hosting;

/// <summary>
/// The traffic watchers: the query log and the top-talker sketches, fed by one
/// <see cref="QueryEventHub"/> that the query processor posts to. Made at start from the
/// configuration (like dnstap, a reload does not change them; docs/watching.md).
/// </summary>
public sealed partial class DnsServer
{
    private static readonly object s_topLock = new();
    /// <summary>The servers running in this process (one in production; many in tests), read by the gauges.</summary>
    private static volatile DnsServer[] s_servers = [];
    private static bool s_topRegistered;
    private static bool s_stateRegistered;

    /// <summary>The query log when query-log.file is set.</summary>
    public QueryLog? QueryLog { get; private set; }

    /// <summary>The top clients and names (exported on the metrics endpoint) when metrics are on.</summary>
    public TopTalkers? TopTalkers { get; private set; }

    /// <summary>The hub the query processor posts to, when any watcher is on.</summary>
    public QueryEventHub? QueryEvents => Processor.Events;

    private void StartWatching(ServerConfig config)
    {
        var observers = new List<IQueryObserver>();
        if (config.QueryLog.Enabled)
        {
            AccessList? clients = null;
            if (config.QueryLog.Clients is { Count: > 0 } list)
                clients = new AccessListCompiler(config.Acls, LocalNetworks.FromSystem()).Compile(list, "query-log: clients");
            try { QueryLog = new QueryLog(config.QueryLog, clients); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new ZoneLoadException($"query-log: cannot open {config.QueryLog.File}: {e.Message}");
            }
            observers.Add(QueryLog);
            _logger.LogInformation("query log to {File}", config.QueryLog.File);
        }
        if ((config.Metrics.Listen is not null || config.Metrics.Enabled) && config.Metrics.TopCount > 0)
        {
            TopTalkers = new TopTalkers(ServerConfig.ParseDuration(config.Metrics.TopWindow), config.Metrics.TopCount);
            observers.Add(TopTalkers);
            lock (s_topLock)
            {
                if (!s_topRegistered)
                {
                    // One pair of gauges per process (the meter is static); they read every running server's sketches.
                    Meter.CreateObservableGauge("portcullis.top.clients.queries", () => TopMeasurements(static t => t.Current.Clients, "client"),
                        description: "Queries from the busiest clients over the sliding window (Space-Saving estimate).");
                    Meter.CreateObservableGauge("portcullis.top.names.queries", () => TopMeasurements(static t => t.Current.Names, "name"),
                        description: "Queries for the most asked names over the sliding window (Space-Saving estimate).");
                    s_topRegistered = true;
                }
            }
        }
        RegisterStateInstruments();
        AddWatchers(config, observers);
        if (observers.Count > 0)
            Processor.Events = new QueryEventHub(observers, config.QueryLog.QueueSize);
    }

    /// <summary>Where other watchers (the tunnel detector) join the hub.</summary>
    partial void AddWatchers(ServerConfig config, List<IQueryObserver> observers);

    /// <summary>The top lists of every running server, a key's counts summed (one server in production).</summary>
    private static IEnumerable<Measurement<long>> TopMeasurements(
        Func<TopTalkers, IReadOnlyList<(string Key, long Count, long Error)>> list, string tag)
    {
        var sum = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var server in s_servers)
            if (server.TopTalkers is { } top)
                foreach (var (key, count, _) in list(top))
                    sum[key] = sum.GetValueOrDefault(key) + count;
        foreach (var (key, count) in sum)
            yield return new Measurement<long>(count, new KeyValuePair<string, object?>(tag, key));
    }

    private static long Sum(Func<DnsServer, long> value)
    {
        long total = 0;
        foreach (var server in s_servers) total += value(server);
        return total;
    }

    /// <summary>
    /// Observable instruments over the running server's state, read at scrape time (never on the query
    /// path): outgoing transfers, the resolver's cache, DNSSEC signing, the watchers' queues. The meter is
    /// static, so they are registered once per process and sum over the running servers.
    /// </summary>
    private void RegisterStateInstruments()
    {
        lock (s_topLock)
        {
            s_servers = [.. s_servers, this];
            if (s_stateRegistered) return;
            s_stateRegistered = true;
        }
        static Resolution.RecordCache? Cache(DnsServer s) => (s.Recursion as Resolution.IterativeResolver)?.Cache;
        Meter.CreateObservableGauge("portcullis.transfers.out.active", () => Sum(s => s.Processor.Transfers.Active),
            description: "Outgoing zone transfers running now.");
        Meter.CreateObservableCounter("portcullis.transfers.out", () => (Measurement<long>[])
            [new Measurement<long>(Sum(s => s.Processor.Transfers.Completed), new KeyValuePair<string, object?>("result", "completed")),
             new Measurement<long>(Sum(s => s.Processor.Transfers.Abandoned), new KeyValuePair<string, object?>("result", "abandoned"))],
            description: "Outgoing zone transfers (AXFR and IXFR) ended, by result.");
        Meter.CreateObservableGauge("portcullis.cache.entries", () => Sum(s => Cache(s)?.Count ?? 0),
            description: "RRsets and negative answers in the resolver's cache.");
        Meter.CreateObservableGauge("portcullis.cache.bytes", () => Sum(s => Cache(s)?.ApproximateBytes ?? 0),
            unit: "bytes", description: "Approximate memory of the resolver's cache.");
        Meter.CreateObservableCounter("portcullis.cache.evictions", () => Sum(s => Cache(s)?.Evictions ?? 0),
            description: "Cache entries evicted to stay within cache-size.");
        static Resolution.IterativeResolver? Resolver(DnsServer s) => s.Recursion as Resolution.IterativeResolver;
        Meter.CreateObservableCounter("portcullis.dnssec.validations", () => (Measurement<long>[])
            [new Measurement<long>(Sum(s => Resolver(s)?.Verdicts.Secure ?? 0), new KeyValuePair<string, object?>("result", "secure")),
             new Measurement<long>(Sum(s => Resolver(s)?.Verdicts.Insecure ?? 0), new KeyValuePair<string, object?>("result", "insecure")),
             new Measurement<long>(Sum(s => Resolver(s)?.Verdicts.Bogus ?? 0), new KeyValuePair<string, object?>("result", "bogus"))],
            description: "Upstream responses the resolver validated, by DNSSEC verdict.");
        Meter.CreateObservableCounter("portcullis.dnssec.verifications", () => Sum(s => Resolver(s)?.SignatureVerifications ?? 0),
            description: "Signature verifications run by the validator (bounded per response against KeyTrap).");
        Meter.CreateObservableCounter("portcullis.dnssec.aggressive", () => Sum(s => Resolver(s)?.NsecRanges.Synthesised ?? 0),
            description: "Negative answers synthesised from validated NSEC ranges (RFC 8198) instead of asking upstream.");
        Meter.CreateObservableGauge("portcullis.dnssec.signatures.expire", () => s_servers.SelectMany(s => s.SigningMeasurements(next: false)),
            unit: "s", description: "Seconds until the earliest signature of each signed zone expires.");
        Meter.CreateObservableGauge("portcullis.dnssec.next.event", () => s_servers.SelectMany(s => s.SigningMeasurements(next: true)),
            unit: "s", description: "Seconds until each signed zone is next re-signed or its keys change state.");
        Meter.CreateObservableCounter("portcullis.watch.dropped", () => (Measurement<long>[])
            [new Measurement<long>(Sum(s => s.Processor.Events?.Dropped ?? 0), new KeyValuePair<string, object?>("output", "query-events")),
             new Measurement<long>(Sum(s => s.Processor.Dnstap?.Dropped ?? 0), new KeyValuePair<string, object?>("output", "dnstap"))],
            description: "Query-log/detector events and dnstap messages dropped because their queue was full.");
    }

    private List<Measurement<double>> SigningMeasurements(bool next)
    {
        var list = new List<Measurement<double>>();
        var now = _time.GetUtcNow();
        lock (_reloadLock)
        {
            foreach (var (origin, state) in _signed)
            {
                var when = next ? state.Signing.NextEvent : state.Signing.LastCounters.EarliestExpiration;
                if (when == DateTimeOffset.MaxValue) continue;
                list.Add(new Measurement<double>((when - now).TotalSeconds, new KeyValuePair<string, object?>("zone", origin.ToString())));
            }
        }
        return list;
    }

    /// <summary>After the listeners stopped: the hub writes what is queued, then closes the log.</summary>
    private void StopWatching()
    {
        var hub = Processor.Events;
        Processor.Events = null;
        Processor.DetectorActions = null;
        hub?.Dispose();
        lock (s_topLock) s_servers = [.. s_servers.Where(s => s != this)];
    }
}
