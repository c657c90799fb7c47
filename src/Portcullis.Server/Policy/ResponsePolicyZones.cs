using System.Net;
using Microsoft.Extensions.Logging;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Tsig;
using Portcullis.Server.Authoritative;
using Portcullis.Server.Configuration;
using Portcullis.Server.Replication;

namespace Portcullis.Server.Policy;

/// <summary>
/// Runs the response-policy: section: reads the policy zone files and domain lists (again on reload
/// when a file changed: a file that no longer loads keeps its last good version), keeps the zones
/// with primaries current with the secondary machinery (<see cref="SecondaryZone"/>: SOA refresh,
/// IXFR/AXFR, NOTIFY, a saved copy; the zone is transferred for its content and never served), and
/// after every change compiles all of it into one <see cref="ResponsePolicy"/> handed to
/// <c>publish</c>, which swaps it in atomically.
/// </summary>
public sealed class ResponsePolicyZones : IDisposable
{
    private sealed class Transferred(SecondaryZone engine, string settings, IReadOnlyList<PrimaryServer> primaries)
    {
        public SecondaryZone Engine { get; } = engine;
        public string Settings { get; } = settings;
        public IReadOnlyList<PrimaryServer> Primaries { get; } = primaries;
        /// <summary>The policy of the last usable version; null before the first or after expiry.</summary>
        public volatile PolicySource? Source;
    }

    private readonly record struct FileStamp(DateTime Modified, long Length)
    {
        public static FileStamp Of(string file)
        {
            var info = new FileInfo(file);
            return info.Exists ? new FileStamp(info.LastWriteTimeUtc, info.Length) : default;
        }
    }

    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly Action<ResponsePolicy>? _publish;
    private readonly Lock _lock = new();
    private ResponsePolicyConfig _config = new();
    private readonly Dictionary<string, (PolicySource Source, FileStamp Stamp, string Settings)> _files = new(StringComparer.Ordinal);
    private volatile Dictionary<DnsName, Transferred> _transferred = new();
    private readonly List<(string Zone, uint Serial, TaskCompletionSource Done)> _waiters = [];
    private List<PolicyLayer> _layers = [];

    /// <param name="publish">Also told of each new snapshot (the pipeline reads <see cref="Current"/> itself).</param>
    public ResponsePolicyZones(ILoggerFactory loggerFactory, Action<ResponsePolicy>? publish = null)
    {
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger("Portcullis.Rpz");
        _publish = publish;
        HitLog = new PolicyHitLog(_logger);
    }

    /// <summary>Where hits of policies with <c>log: true</c> are written.</summary>
    public PolicyHitLog HitLog { get; }

    private volatile ResponsePolicy _current = ResponsePolicy.Empty;

    /// <summary>The snapshot published last (read once per query on the recursive path).</summary>
    public ResponsePolicy Current => _current;

    /// <summary>
    /// Applies a configuration: files read (those unchanged since the last read are kept), engines
    /// started for new zones with primaries and stopped for those gone, and the policy rebuilt.
    /// With <paramref name="strict"/> (the start) a file that does not load throws
    /// <see cref="PolicyLoadException"/> naming every problem; otherwise (a reload) it is logged and
    /// its last good version, if any, is kept.
    /// </summary>
    public void Configure(ResponsePolicyConfig config, TsigKeyRing keys, bool strict)
    {
        var errors = new List<string>();
        List<Transferred> stop = [], start = [];
        lock (_lock)
        {
            var keepFiles = new HashSet<string>(StringComparer.Ordinal);
            foreach (var z in config.Zones.Where(z => z.Primaries is not { Count: > 0 }))
            {
                var origin = ServerConfig.AbsoluteName(z.Name);
                keepFiles.Add(z.File!);
                LoadFile(z.File!, origin.ToString(), () => PolicySources.ReadZoneFile(origin, z.File!), errors);
            }
            foreach (var l in config.Lists)
            {
                keepFiles.Add(l.File);
                var action = ListAction(l.Action);
                LoadFile(l.File, $"{l.PolicyName}|{l.Action}", () => PolicySources.ReadListFile(l.PolicyName, l.File, action), errors);
            }
            foreach (var gone in _files.Keys.Where(f => !keepFiles.Contains(f)).ToList()) _files.Remove(gone);

            var next = new Dictionary<DnsName, Transferred>();
            foreach (var z in config.Zones.Where(z => z.Primaries is { Count: > 0 }))
            {
                var origin = ServerConfig.AbsoluteName(z.Name);
                var primaries = z.Primaries!.Select(p =>
                {
                    var (endPoint, keyName) = ResponsePolicyConfig.ParsePrimary(p);
                    keyName ??= z.TsigKey;
                    return new PrimaryServer(endPoint, keyName is null ? null : keys.Find(ServerConfig.AbsoluteName(keyName).Wire));
                }).ToArray();
                string settings = $"{z.File}|{string.Join(',', primaries.Select(p => p.ToString()))}|"
                    + string.Join(',', primaries.Select(p => p.Key is null ? "" : $"{p.Key.Algorithm}:{p.Key.SecretBase64}"));
                if (_transferred.TryGetValue(origin, out var current) && current.Settings == settings)
                {
                    next[origin] = current;
                    continue;
                }
                Transferred? entry = null;
                var engine = new SecondaryZone(origin, primaries, z.File!, zone => Transfer(entry!, zone), _loggerFactory.CreateLogger("Portcullis.Rpz.Transfer"));
                entry = new Transferred(engine, settings, primaries);
                next[origin] = entry;
                start.Add(entry);
            }
            foreach (var (origin, entry) in _transferred)
                if (!next.TryGetValue(origin, out var kept) || !ReferenceEquals(kept, entry)) stop.Add(entry);
            if (strict && errors.Count > 0)
            {
                foreach (var e in start) e.Engine.DisposeAsync().AsTask().GetAwaiter().GetResult();   // never started
                throw new PolicyLoadException(string.Join(Environment.NewLine, errors));
            }
            _transferred = next;
            _config = config;
        }
        foreach (var e in errors) _logger.LogError("response policy not reloaded, keeping its last good version: {Error}", e);
        foreach (var e in stop) e.Engine.DisposeAsync().AsTask().GetAwaiter().GetResult();
        foreach (var e in start) e.Engine.Start();   // publishes a saved copy at once, if there is one
        Rebuild();
    }

    private void LoadFile(string file, string settings, Func<PolicySource> read, List<string> errors)
    {
        var stamp = FileStamp.Of(file);
        if (_files.TryGetValue(file, out var cached) && cached.Stamp == stamp && cached.Settings == settings && stamp != default) return;
        try
        {
            var source = read();
            foreach (var w in source.Warnings) _logger.LogWarning("{Warning}", w);
            _files[file] = (source, stamp, settings);
            _logger.LogInformation("response policy {Policy} loaded from {File}: {Triggers} triggers", source.Name, file, source.TriggerCount);
        }
        catch (PolicyLoadException e) { errors.Add(e.Message); }
    }

    private static PolicyAction ListAction(string action) => action switch
    {
        "nodata" => PolicyAction.Nodata,
        "drop" => PolicyAction.Drop,
        "passthru" => PolicyAction.Passthru,
        "tcp-only" => PolicyAction.TcpOnly,
        _ => PolicyAction.Nxdomain,
    };

    private static PolicyAction? Override(string policy) => policy switch
    {
        "given" or "disabled" => null,
        "tcp-only" => PolicyAction.TcpOnly,
        _ => ListAction(policy),
    };

    /// <summary>A new version of a transferred policy zone (or its expiry): its policy re-read and everything rebuilt.</summary>
    private void Transfer(Transferred entry, Zone zone)
    {
        var origin = entry.Engine.Origin;
        if (zone.Unavailable)
        {
            if (entry.Source is not null)
                _logger.LogError("response policy zone {Zone} expired (no primary reached within the SOA expire time): its policy no longer applies", origin);
            entry.Source = null;
        }
        else
        {
            try
            {
                var source = PolicySources.FromRecords(origin, zone.Records());
                foreach (var w in source.Warnings) _logger.LogWarning("{Warning}", w);
                entry.Source = source;
                _logger.LogInformation("response policy zone {Zone} serial {Serial}: {Triggers} triggers", origin, zone.Serial, source.TriggerCount);
            }
            catch (PolicyLoadException e)
            {
                _logger.LogError("response policy zone {Zone} serial {Serial} not used, keeping the version before: {Error}", origin, zone.Serial, e.Message);
                return;
            }
        }
        Rebuild();
    }

    /// <summary>Compiles zones (in order) then lists (in order) into a new snapshot and publishes it.</summary>
    private void Rebuild()
    {
        ResponsePolicy policy;
        lock (_lock)
        {
            var layers = new List<PolicyLayer>();
            foreach (var z in _config.Zones)
            {
                if (z.Policy == "disabled") continue;
                PolicySource? source = z.Primaries is { Count: > 0 }
                    ? _transferred.TryGetValue(ServerConfig.AbsoluteName(z.Name), out var t) ? t.Source : null
                    : _files.TryGetValue(z.File!, out var f) ? f.Source : null;
                if (source is not null) layers.Add(new PolicyLayer(source, Override(z.Policy), z.Log, z.Name.TrimEnd('.')));
            }
            foreach (var l in _config.Lists)
                if (_files.TryGetValue(l.File, out var f)) layers.Add(new PolicyLayer(f.Source, null, l.Log, l.PolicyName));
            policy = ResponsePolicy.Build(layers);
            _layers = layers;
            _current = policy;
            _publish?.Invoke(policy);
            for (int i = _waiters.Count - 1; i >= 0; i--)
                if (Serves(layers, _waiters[i].Zone, _waiters[i].Serial))
                {
                    _waiters[i].Done.TrySetResult();
                    _waiters.RemoveAt(i);
                }
        }
    }

    private static bool Serves(List<PolicyLayer> layers, string zone, uint serial) =>
        layers.Exists(l => string.Equals(l.Source.Name, zone.TrimEnd('.'), StringComparison.OrdinalIgnoreCase)
            && l.Source.Serial is { } s && !SerialNumber.IsNewer(serial, s));

    /// <summary>Completes once the published policy uses zone <paramref name="zone"/> at serial <paramref name="serial"/> or newer.</summary>
    public Task WaitForSerialAsync(string zone, uint serial)
    {
        lock (_lock)
        {
            if (Serves(_layers, zone, serial)) return Task.CompletedTask;
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((zone, serial, done));
            return done.Task;
        }
    }

    /// <summary>
    /// A NOTIFY (RFC 1996) whose zone is a transferred policy zone: accepted from its primaries (the
    /// zone is not served, so no allow-notify of a zone applies) and, when the primary is reached
    /// with a TSIG key, only when the NOTIFY was signed with that key (<paramref name="keyName"/>,
    /// already verified; empty when unsigned); its refresh is woken. Returns
    /// <see cref="Pipeline.NotifyOutcome.NotSecondary"/> for any other name. Called on the query
    /// path: compares octets, allocates nothing, only signals.
    /// </summary>
    public Pipeline.NotifyOutcome Notify(ReadOnlySpan<byte> zoneName, ReadOnlySpan<byte> client, ReadOnlySpan<byte> keyName = default)
    {
        var transferred = _transferred;
        Span<byte> primary = stackalloc byte[16];
        foreach (var (origin, entry) in transferred)
        {
            if (!DnsName.EqualsIgnoreCase(origin.Wire, zoneName)) continue;
            if (client.Length is 4 or 16)
            {
                foreach (var p in entry.Primaries)
                {
                    var address = p.EndPoint.Address;
                    if (!address.TryWriteBytes(primary, out int length)) continue;
                    var bytes = primary[..length];
                    // An IPv4-mapped IPv6 primary matches the IPv4 client address (ClientAddress gives 4 octets for those).
                    if (length == 16 && address.IsIPv4MappedToIPv6) bytes = bytes[12..];
                    if (!bytes.SequenceEqual(client)) continue;
                    if (p.Key is { } key && !DnsName.EqualsIgnoreCase(key.Name.Wire, keyName)) continue;
                    entry.Engine.Notify();
                    return Pipeline.NotifyOutcome.Accepted;
                }
            }
            return Pipeline.NotifyOutcome.Refused;
        }
        return Pipeline.NotifyOutcome.NotSecondary;
    }

    public void Dispose()
    {
        List<Transferred> all;
        lock (_lock)
        {
            all = [.. _transferred.Values];
            _transferred = new();
        }
        foreach (var e in all) e.Engine.DisposeAsync().AsTask().GetAwaiter().GetResult();
        HitLog.Dispose();
    }
}
