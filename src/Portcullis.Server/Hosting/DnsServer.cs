using System.Net;
using System.Reflection;
using Microsoft.Extensions.Logging;
using Portcullis.Protocol.Names;
using Portcullis.Server.Authoritative;
using Portcullis.Server.Configuration;
using Portcullis.Server.Pipeline;
using Portcullis.Server.Policy;
using Portcullis.Server.Replication;
using Portcullis.Server.Security;
using Portcullis.Server.Telemetry;
using Portcullis.Transport;

namespace Portcullis.Server.Hosting;

/// <summary>
/// The running server: loads the zones, binds UDP and TCP on every listen address, and reloads
/// zones and configuration on request without dropping a query (a new catalog is built aside and
/// swapped in; a zone that fails to reload keeps serving its last good version).
/// </summary>
public sealed partial class DnsServer : IDisposable
{
    public const string EmbeddedPrefix = "embedded:";

    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly Func<ServerConfig>? _reloadConfig;
    private readonly List<IUdpListener> _udp = [];
    private readonly List<Transport.TcpListener> _tcp = [];
    private readonly Dictionary<DnsName, (Zone Zone, ZoneStamp Stamp)> _loaded = new();
    private readonly Lock _reloadLock = new();
    private ServerConfig _config;

    /// <param name="recursion">Builds the resolver from recursion: (null: <see cref="DefaultRecursionFactory"/>).</param>
    public DnsServer(ServerConfig config, ILoggerFactory loggerFactory, Func<ServerConfig>? reloadConfig = null, TimeProvider? time = null,
        RecursionFactory? recursion = null)
    {
        _time = time ?? TimeProvider.System;
        _config = config;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger("Portcullis.Server");
        _reloadConfig = reloadConfig;
        var counters = new SecurityCounters(Meter);
        _events = new SecurityEvents(loggerFactory.CreateLogger("Portcullis.Security"), counters);
        Processor = new QueryProcessor(ZoneCatalog.Empty, QueryProcessorOptions.From(config), counters, _events,
            new Transfer.ZoneTransfers(loggerFactory.CreateLogger("Portcullis.Transfer")));
        _secondaries = new SecondaryZones(loggerFactory, RebuildCatalog, SendNotify, SignSecondary);
        Processor.NotifyReceiver = _secondaries;
        Processor.Metrics = QueryMetrics;
        _notifyLogger = loggerFactory.CreateLogger("Portcullis.Notify");
        _journals = new PrimaryJournals(_logger, (long)config.Limits.JournalMaxSize << 20);
        _signingLogger = loggerFactory.CreateLogger("Portcullis.Dnssec");
        Processor.UpdateHandler = new ZoneUpdates(loggerFactory.CreateLogger("Portcullis.Update"), LookupForUpdate, CommitUpdate, SignUpdate, _reloadLock);
        InitRecursion(recursion);
    }

    /// <summary>Zone files rewritten this long after the last update (coalescing bursts; the journal has them meanwhile).</summary>
    public static readonly TimeSpan ZoneFileSyncDelay = TimeSpan.FromSeconds(2);
    private readonly Dictionary<DnsName, Timer> _pendingWrites = new();

    private (Zone? Zone, bool Primary) LookupForUpdate(DnsName origin)
    {
        lock (_reloadLock)
            return _loaded.TryGetValue(origin, out var z) ? (z.Zone, true) : (null, false);
    }

    /// <summary>An update's new version (already journaled): served at once, the zone file rewritten soon, secondaries notified.</summary>
    private void CommitUpdate(Zone zone)
    {
        lock (_reloadLock)
        {
            _loaded[zone.Origin] = (zone, _loaded[zone.Origin].Stamp);
            RebuildCatalog();
            if (_signed.TryGetValue(zone.Origin, out var state)) state.UnsignedDirty = true;
            ScheduleZoneFileWrite(zone.Origin);
        }
        SendNotify(zone);
    }

    /// <summary>The zone's files brought up to date <see cref="ZoneFileSyncDelay"/> from now (a later call moves it on).</summary>
    private void ScheduleZoneFileWrite(DnsName origin)
    {
        lock (_reloadLock)
        {
            if (_pendingWrites.TryGetValue(origin, out var timer)) timer.Change(ZoneFileSyncDelay, Timeout.InfiniteTimeSpan);
            else _pendingWrites[origin] = new Timer(_ => WriteZoneFile(origin), null, ZoneFileSyncDelay, Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>The zone file brought up to the served version (and the journal compacted); its new stamp recorded so reload does not read it back as an edit.</summary>
    private void WriteZoneFile(DnsName origin)
    {
        lock (_reloadLock)
        {
            if (_pendingWrites.Remove(origin, out var timer)) timer.Dispose();
            var zc = _config.Zones.Find(z => z.Type != "secondary" && ServerConfig.AbsoluteName(z.Name) == origin);
            if (zc is null || !_loaded.TryGetValue(origin, out var current)) return;
            try
            {
                if (_signed.TryGetValue(origin, out var state))
                {
                    WriteSignedZoneFiles(zc, current.Zone, state);
                    _loaded[origin] = (current.Zone, ZoneStamp.Of(zc.File));
                    return;
                }
                PrimaryJournals.WriteZoneFile(current.Zone, zc.File);
                _loaded[origin] = (current.Zone, ZoneStamp.Of(zc.File));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or JournalException)
            {
                _logger.LogError("zone {Zone}: cannot write {File} (the journal keeps the changes): {Error}", origin, zc.File, e.Message);
            }
        }
    }

    private readonly PrimaryJournals _journals;

    private readonly ILogger _notifyLogger;
    private readonly CancellationTokenSource _stopping = new();

    /// <summary>
    /// NOTIFY (RFC 1996) to the zone's configured secondaries, in the background: sent when a zone is
    /// loaded at start, reloaded with a newer serial, or transferred in (a secondary's own secondaries).
    /// Leaves from the first listen address, the one secondaries pull from (BIND's notify-source).
    /// </summary>
    private void SendNotify(Zone zone)
    {
        var config = _config;
        var zc = config.Zones.Find(z => ServerConfig.AbsoluteName(z.Name) == zone.Origin);
        if (zc is null) return;
        var targets = NotifyTargets(zc, zone, Processor.Options.Security.Keys);
        if (targets.Count == 0) return;
        IPAddress? source = _tcp.Count > 0 && !_tcp[0].LocalEndPoint.Address.Equals(IPAddress.Any) && !_tcp[0].LocalEndPoint.Address.Equals(IPAddress.IPv6Any)
            ? _tcp[0].LocalEndPoint.Address : null;
        var soa = new Protocol.Records.ResourceRecord(zone.Origin, Protocol.Records.RecordType.SOA, zone.Class, zone.Soa.Ttl, zone.Soa.First.ToArray());
        var sender = new Replication.NotifySender(_notifyLogger) { Source = source };
        _ = sender.NotifyAllAsync(zone.Origin, soa, targets, _stopping.Token);
    }

    private readonly SecondaryZones _secondaries;

    /// <summary>
    /// Who is NOTIFYed of a new version: the zone's notify: list, and with notify-ns the addresses of
    /// the apex NS names found in the zone itself, except the SOA MNAME (RFC 1996 §3.3: the primary),
    /// on port 53 without a key; duplicates once.
    /// </summary>
    internal static List<Replication.NotifyTarget> NotifyTargets(ZoneConfig zc, Zone zone, Protocol.Tsig.TsigKeyRing keys)
    {
        var targets = new List<Replication.NotifyTarget>();
        foreach (var text in zc.Notify ?? [])
        {
            var (endPoint, keyName) = ServerConfig.ParsePeer(text);
            targets.Add(new Replication.NotifyTarget(endPoint, keyName is null ? null : keys.Find(ServerConfig.AbsoluteName(keyName).Wire)));
        }
        if (!zc.NotifyNs) return targets;
        var records = zone.Records().ToList();
        var soa = records.First(r => r.Type == Protocol.Records.RecordType.SOA);
        var mname = DnsName.FromWire(soa.Data.AsSpan(0, DnsName.TryMeasureWire(soa.Data, out int length, out _) ? length : 1));
        var servers = records.Where(r => r.Type == Protocol.Records.RecordType.NS && r.Owner == zone.Origin)
            .Select(r => DnsName.FromWire(r.Data)).Where(n => n != mname).ToHashSet();
        foreach (var r in records)
            if (r.Type is Protocol.Records.RecordType.A or Protocol.Records.RecordType.AAAA && servers.Contains(r.Owner))
            {
                var endPoint = new IPEndPoint(new IPAddress(r.Data), 53);
                if (!targets.Exists(t => t.EndPoint.Equals(endPoint))) targets.Add(new Replication.NotifyTarget(endPoint, null));
            }
        return targets;
    }

    /// <summary>The catalog anew from the primary zones loaded and what the secondary zones serve, swapped in.</summary>
    private void RebuildCatalog()
    {
        lock (_reloadLock)
            Processor.Catalog = new ZoneCatalog(_loaded.Values.Select(z => z.Zone).Concat(_secondaries.Served));
    }

    /// <summary>The secondary zone engines (for tests and status).</summary>
    internal bool IsSecondary(DnsName origin) => _secondaries.IsSecondary(origin);

    /// <summary>The server's instruments (System.Diagnostics.Metrics), for dotnet-counters and exporters.</summary>
    public static readonly System.Diagnostics.Metrics.Meter Meter = new("Portcullis");

    /// <summary>Queries answered, response sizes and latency, on <see cref="Meter"/> (one set of instruments for every server in the process).</summary>
    public static readonly QueryMetrics QueryMetrics = new(Meter);

    /// <summary>The Prometheus endpoint, when metrics.listen is set and the server has started.</summary>
    public MetricsEndpoint? MetricsEndpoint { get; private set; }

    private readonly SecurityEvents _events;

    public QueryProcessor Processor { get; }

    public IReadOnlyList<IPEndPoint> UdpEndPoints => _udp.Select(u => u.LocalEndPoint).Distinct().ToArray();
    public IReadOnlyList<IPEndPoint> TcpEndPoints => _tcp.Select(t => t.LocalEndPoint).ToArray();

    /// <summary>Loads every zone (any failure is fatal at start) and starts listening.</summary>
    public void Start()
    {
        var zones = new List<Zone>();
        var errors = new List<string>();
        foreach (var zc in _config.Zones)
        {
            if (zc.Type == "secondary" || zc.CatalogRole == "generate") continue;   // pulled from primaries, or generated (below)
            try
            {
                var (zone, stamp) = LoadZone(zc, null);
                _loaded[zone.Origin] = (zone, stamp);
                zones.Add(zone);
            }
            catch (ZoneLoadException e) { errors.Add(e.Message); }
        }
        if (errors.Count > 0) throw new ZoneLoadException(string.Join(Environment.NewLine, errors));
        if (_config.Dnstap.Enabled)
        {
            try { Processor.Dnstap = DnstapLogger.Open(_config.Dnstap); }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or UnauthorizedAccessException)
            {
                throw new ZoneLoadException($"dnstap: cannot open {_config.Dnstap.File ?? _config.Dnstap.Socket}: {e.Message}");
            }
        }
        StartWatching(_config);
        try { ConfigurePolicy(_config, strict: true); }
        catch (PolicyLoadException e) { throw new ZoneLoadException(e.Message); }
        zones.AddRange(GenerateCatalogs());
        ConfigureSecondarySigning(_config);
        _secondaries.Configure(_config, Processor.Options.Security);   // rebuilds the catalog
        ReleaseLoadGarbage();

        var limits = TcpLimitsFrom(_config);
        int workers = _config.UdpWorkers > 0 ? _config.UdpWorkers : Environment.ProcessorCount;
        var udpLogger = _loggerFactory.CreateLogger("Portcullis.Transport.Udp");
        foreach (var text in _config.Listen)
        {
            var ep = ServerConfig.ParseEndPoint(text);
            var first = UdpListeners.Create(ep, Processor, udpLogger, _config.Limits.UdpMaxResponse, workers > 1);
            _udp.Add(first);
            // Port 0 asks for any free port: the other sockets and TCP take the one the first got.
            var bound = new IPEndPoint(ep.Address, first.LocalEndPoint.Port);
            for (int i = 1; i < workers && first is UdpBatchListener; i++)
                _udp.Add(UdpListeners.Create(bound, Processor, udpLogger, _config.Limits.UdpMaxResponse, reusePort: true));
            _tcp.Add(new Transport.TcpListener(bound, Processor, _loggerFactory.CreateLogger("Portcullis.Transport.Tcp"), limits));
        }
        WarnIfOpen(Processor.Options.Security);
        ConfigureRecursion(_config);
        MetricsEndpoint = MetricsEndpoint.Start(_config.Metrics, Meter.Name);
        if (MetricsEndpoint is not null) _logger.LogInformation("metrics on {Url}", MetricsEndpoint.Url);
        foreach (var u in _udp) u.Start();
        foreach (var t in _tcp) t.Start();
        foreach (var z in zones) _logger.LogInformation("zone {Zone} loaded: serial {Serial}, {Records} records", z.Origin, z.Serial, z.RecordCount);
        foreach (var z in zones) SendNotify(z);
        foreach (var t in _tcp) _logger.LogInformation("listening on {Endpoint} (UDP and TCP, {Workers} UDP sockets)", t.LocalEndPoint, _udp.Count / _tcp.Count);
    }

    /// <summary>
    /// Re-reads the configuration (when it came from a file) and every zone whose file changed.
    /// Returns the number of zones that failed and kept their last good version.
    /// </summary>
    public int Reload()
    {
        lock (_reloadLock)
        {
            if (_reloadConfig is not null)
            {
                try
                {
                    var fresh = _reloadConfig();
                    if (!fresh.Listen.SequenceEqual(_config.Listen))
                        _logger.LogWarning("listen addresses changed in the configuration: a restart is needed to apply them");
                    _config = fresh;
                    Processor.Options = QueryProcessorOptions.From(fresh, previous: Processor.Options);
                    WarnIfOpen(Processor.Options.Security);
                    ConfigureRecursion(fresh);
                }
                catch (Exception e) when (e is ConfigException or IOException)
                {
                    _logger.LogError("configuration reload failed, keeping the running configuration: {Error}", e.Message);
                    return 1;
                }
            }
            int failed = 0;
            var zones = new List<Zone>();
            var notify = new List<Zone>();
            var keep = new HashSet<DnsName>();
            foreach (var zc in _config.Zones)
            {
                if (zc.Type == "secondary" || zc.CatalogRole == "generate") continue;
                var origin = DnsName.Parse(zc.Name);
                keep.Add(origin);
                var stamp = ZoneStamp.Of(zc.File);
                if (_loaded.TryGetValue(origin, out var current) && current.Stamp == stamp)
                {
                    if (zc.DnssecSigning && ResignOnReload(zc, current.Zone) is { } resigned)
                    {
                        _loaded[origin] = (resigned, stamp);
                        notify.Add(resigned);
                        zones.Add(resigned);
                        continue;
                    }
                    zones.Add(current.Zone);
                    continue;
                }
                try
                {
                    var (zone, newStamp) = LoadZone(zc, current.Zone);
                    _loaded[origin] = (zone, newStamp);
                    zones.Add(zone);
                    if (current.Zone is null || Replication.SerialNumber.IsNewer(zone.Serial, current.Zone.Serial)) notify.Add(zone);
                    _logger.LogInformation("zone {Zone} reloaded: serial {Serial}, {Records} records", zone.Origin, zone.Serial, zone.RecordCount);
                }
                catch (ZoneLoadException e)
                {
                    failed++;
                    _logger.LogError("zone {Zone} failed to reload, still serving the last good version: {Error}", origin, e.Message);
                    if (current.Zone is not null) zones.Add(current.Zone);
                }
            }
            foreach (var catalog in GenerateCatalogs())
            {
                notify.Add(catalog);   // a new membership: its serial went up
            }
            foreach (var zc in _config.Zones.Where(z => z.CatalogRole == "generate")) keep.Add(ServerConfig.AbsoluteName(zc.Name));
            foreach (var gone in _loaded.Keys.Where(k => !keep.Contains(k)).ToList()) _loaded.Remove(gone);
            ConfigurePolicy(_config, strict: false);
            RetainSigning(_config);
            ConfigureSecondarySigning(_config);
            _journals.Retain(keep.Concat(SignedSecondaries()));
            _secondaries.Configure(_config, Processor.Options.Security);   // rebuilds the catalog
            foreach (var origin in SignedSecondaries()) _secondaries.Republish(origin);   // key states re-read, policy applied
            ReleaseLoadGarbage();
            foreach (var z in notify) SendNotify(z);
            return failed;
        }
    }

    /// <summary>
    /// The catalog zones this server generates (catalog-role: generate, RFC 9432 §4): made in memory
    /// from the zones that name them (catalog-role: member). A catalog is rebuilt only when its
    /// membership changed, with a serial above the old one and at least the current Unix time, so
    /// secondaries see the change. Returns the catalogs that are new or changed (to NOTIFY).
    /// </summary>
    private List<Zone> GenerateCatalogs()
    {
        var changedCatalogs = new List<Zone>();
        foreach (var zc in _config.Zones.Where(z => z.CatalogRole == "generate"))
        {
            var origin = ServerConfig.AbsoluteName(zc.Name);
            var members = _config.Zones
                .Where(m => m.CatalogRole == "member" && m.CatalogZone is { } c && ServerConfig.AbsoluteName(c) == origin)
                .Select(m => ServerConfig.AbsoluteName(m.Name)).Distinct().Order().ToList();
            if (_loaded.TryGetValue(origin, out var current)
                && CatalogZone.Parse(current.Zone) is { Ok: true } parsed && parsed.Members.Select(m => m.Zone).Order().SequenceEqual(members))
                continue;
            uint now = (uint)DateTimeOffset.UtcNow.ToUnixTimeSeconds();
            uint serial = current.Zone is { } old && !SerialNumber.IsNewer(now, old.Serial) ? old.Serial + 1 : now;
            var zone = ZoneLoader.FromRecords(origin, CatalogZone.Build(origin, serial, members), $"catalog {origin}");
            _loaded[origin] = (zone, default);
            changedCatalogs.Add(zone);
            _logger.LogInformation("catalog zone {Catalog} generated: serial {Serial}, {Count} member zones", origin, serial, members.Count);
        }
        return changedCatalogs;
    }

    /// <summary>
    /// Loading a zone makes several times the zone's final size in short-lived objects (records,
    /// checks, the old catalog after a reload); one compacting collection right after gives that
    /// memory back to the system instead of keeping it as heap high-water.
    /// </summary>
    private static void ReleaseLoadGarbage() =>
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);

    /// <param name="current">The version served now (a reload), or null (start).</param>
    private (Zone, ZoneStamp) LoadZone(ZoneConfig zc, Zone? current)
    {
        DnsName origin;
        try { origin = DnsName.Parse(zc.Name); }
        catch (FormatException e) { throw new ZoneLoadException($"zone '{zc.Name}': bad zone name: {e.Message}"); }
        LoadedZone loaded;
        if (zc.File.StartsWith(EmbeddedPrefix, StringComparison.Ordinal))
        {
            string resource = zc.File[EmbeddedPrefix.Length..];
            using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream(resource)
                ?? throw new ZoneLoadException($"{zc.File}: no such embedded zone");
            using var text = new StreamReader(stream);
            loaded = ZoneLoader.LoadText(origin, text.ReadToEnd(), zc.File);
        }
        else
        {
            if (!File.Exists(zc.File)) throw new ZoneLoadException($"{zc.File}: zone file not found (zone {origin})");
            loaded = ZoneLoader.Load(origin, zc.File);
        }
        foreach (var w in loaded.Warnings) _logger.LogWarning("{Warning}", w);
        if (zc.DnssecSigning) return (LoadSigned(zc, loaded.Zone, current), ZoneStamp.Of(zc.File));
        return (_journals.Attach(zc, loaded.Zone, current), ZoneStamp.Of(zc.File));
    }

    private ResponsePolicyZones? _policyZones;

    /// <summary>The response policies running (response-policy:), or null when none are configured.</summary>
    public ResponsePolicyZones? ResponsePolicyZones => _policyZones;

    /// <summary>
    /// The response-policy: section applied (docs/response-policy.md): files read, transferred zones
    /// started or stopped, the compiled policy handed to the pipeline. At start (strict) a policy file
    /// that does not load stops the server; on reload it keeps its last good version.
    /// </summary>
    private void ConfigurePolicy(ServerConfig config, bool strict)
    {
        var rp = config.ResponsePolicy;
        if (rp.IsEmpty)
        {
            Processor.PolicyZones = null;
            _policyZones?.Dispose();
            _policyZones = null;
            return;
        }
        rp.ResolvePaths(config.SourceFile);
        if (rp.Validate(k => config.Keys.Exists(c => string.Equals(c.Name.TrimEnd('.'), k.TrimEnd('.'), StringComparison.OrdinalIgnoreCase)), out _) is { } error)
        {
            if (strict) throw new PolicyLoadException(error);
            _logger.LogError("response-policy not applied, keeping the running policy: {Error}", error);
            return;
        }
        _policyZones ??= new ResponsePolicyZones(_loggerFactory);
        _policyZones.Configure(rp, Processor.Options.Security.Keys, strict);
        Processor.PolicyZones = _policyZones;
        if (!config.Recursion.Enabled)
            _logger.LogWarning("response-policy is configured but recursion is off: policies apply to recursive queries only");
    }

    /// <summary>A loud warning when allow-recursion admits the Internet: an open resolver is a reflector.</summary>
    private void WarnIfOpen(SecurityPolicy policy)
    {
        var open = policy.OpenRecursionSamples();
        if (open.Count > 0)
            _logger.LogWarning("OPEN RESOLVER: allow-recursion ({Acl}) admits addresses anywhere on the Internet (e.g. {Sample}); "
                + "anyone can use this server to amplify attacks. Limit allow-recursion to your own networks.",
                policy.Recursion.Description, open[0]);
    }

    private static TcpLimits TcpLimitsFrom(ServerConfig c) => new()
    {
        IdleTimeout = ServerConfig.ParseDuration(c.Limits.TcpIdleTimeout),
        MaxConnections = c.Limits.TcpMaxConnections,
        MaxConnectionsPerClient = c.Limits.TcpMaxConnectionsPerClient,
    };

    public void Dispose()
    {
        _stopping.Cancel();
        StopSigning();
        _secondaries.Dispose();
        // Clean shutdown: every zone changed by updates is written into its file (the journal is compacted).
        List<DnsName> pending;
        lock (_reloadLock) pending = [.. _pendingWrites.Keys];
        foreach (var origin in pending) WriteZoneFile(origin);
        foreach (var origin in SignedSecondaries()) WriteSignedSecondary(origin);
        DisposeSigning();
        _journals.Dispose();
        foreach (var u in _udp) u.Dispose();
        foreach (var t in _tcp) t.Dispose();
        DisposeRecursion();
        Processor.PolicyZones = null;
        _policyZones?.Dispose();
        MetricsEndpoint?.Dispose();
        // After the listeners: what they answered is written, then STOP.
        // Unhooked first, so that an answer still being resolved does not post into a ring nobody reads.
        var dnstap = Processor.Dnstap;
        Processor.Dnstap = null;
        if (_recursion is Resolution.IterativeResolver iterative) iterative.Upstream.Dnstap = null;
        dnstap?.Dispose();
        StopWatching();
        _udp.Clear();
        _tcp.Clear();
        _events.Dispose();
    }

    /// <summary>What tells a zone file changed: its modification time and size.</summary>
    private readonly record struct ZoneStamp(DateTime Modified, long Length)
    {
        public static ZoneStamp Of(string file)
        {
            if (file.StartsWith(EmbeddedPrefix, StringComparison.Ordinal)) return new ZoneStamp(DateTime.MinValue, 0);
            var info = new FileInfo(file);
            return info.Exists ? new ZoneStamp(info.LastWriteTimeUtc, info.Length) : default;
        }
    }
}
