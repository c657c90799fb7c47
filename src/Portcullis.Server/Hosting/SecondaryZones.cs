using System.Net;
using Microsoft.Extensions.Logging;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.Tsig;
using Portcullis.Protocol.ZoneText;
using Portcullis.Protocol.Zones;
using Portcullis.Server.Authoritative;
using Portcullis.Server.Configuration;
using Portcullis.Server.Pipeline;
using Portcullis.Server.Replication;
using Portcullis.Server.Security;

namespace Portcullis.Server.Hosting;

/// <summary>
/// The secondary zones of the configuration, each run by a <see cref="SecondaryZone"/>: started,
/// restarted when its settings change and stopped when it leaves the configuration on reload. What
/// each serves (its last version, or an unavailable placeholder answered SERVFAIL until the first
/// transfer) is handed to the server through <c>changed</c>, which rebuilds the catalog. NOTIFY from
/// a zone's primaries (or admitted by allow-notify) wakes its refresh; each newer version is passed
/// to <c>published</c> (NOTIFY to the zone's own secondaries).
/// </summary>
internal sealed class SecondaryZones(ILoggerFactory loggerFactory, Action changed, Action<Zone>? published = null,
    Func<Zone, Zone?>? sign = null) : INotifyReceiver, IDisposable
{
    private sealed class Entry(SecondaryZone engine, string settings, IReadOnlyList<PrimaryServer> primaries)
    {
        public SecondaryZone Engine { get; } = engine;
        public string Settings { get; } = settings;
        public IReadOnlyList<PrimaryServer> Primaries { get; } = primaries;
        public volatile Zone? Served;
        public bool Catalog { get; init; }
        public string File { get; init; } = "";
    }

    /// <summary>Where a catalog member's copy is kept: catz/ beside the catalog's own file.</summary>
    private static string MemberFile(ZoneConfig catalog, DnsName member) =>
        Path.Combine(Path.GetDirectoryName(Path.GetFullPath(catalog.File)) ?? ".", "catz", member.ToString().TrimEnd('.') + ".zone");

    private readonly Lock _lock = new();
    private Dictionary<DnsName, Entry> _zones = new();

    /// <summary>What the secondary zones serve now.</summary>
    public IReadOnlyList<Zone> Served
    {
        get
        {
            lock (_lock) return [.. _zones.Values.Select(e => e.Served).OfType<Zone>()];
        }
    }

    public bool IsSecondary(DnsName origin)
    {
        lock (_lock) return _zones.ContainsKey(origin);
    }

    // Catalog zones consumed (catalog-role: interpret): the members each last valid version listed.
    private readonly Dictionary<DnsName, IReadOnlyList<DnsName>> _catalogMembers = new();
    private ServerConfig? _config;
    private SecurityPolicy? _policy;


    /// <summary>Starts, restarts or stops engines so that they match the configuration's secondary zones
    /// and the members of the catalogs it consumes.</summary>
    public void Configure(ServerConfig config, SecurityPolicy policy)
    {
        // One reconfiguration at a time (reload and a catalog's new version may ask together).
        lock (_configureLock) ConfigureLocked(config, policy);
    }

    private readonly Lock _configureLock = new();

    private void ConfigureLocked(ServerConfig config, SecurityPolicy policy)
    {
        _config = config;
        _policy = policy;
        var wanted = new Dictionary<DnsName, (ZoneConfig Zone, string Settings)>();
        var configured = config.Zones.Select(z => ServerConfig.AbsoluteName(z.Name)).ToHashSet();
        foreach (var zc in config.Zones)
            if (zc.Type == "secondary")
                wanted[ServerConfig.AbsoluteName(zc.Name)] = (zc, $"{zc.File}|{string.Join(',', zc.Primaries!)}|{KeysOf(zc, policy)}|{zc.CatalogRole}");
        foreach (var zc in config.Zones.Where(z => z.CatalogRole == "interpret"))
        {
            IReadOnlyList<DnsName>? members;
            lock (_lock) _catalogMembers.TryGetValue(ServerConfig.AbsoluteName(zc.Name), out members);
            foreach (var member in members ?? [])
            {
                // A zone the configuration names itself stays as configured (RFC 9432 §5.1).
                if (configured.Contains(member) || wanted.ContainsKey(member)) continue;
                var memberConfig = new ZoneConfig
                {
                    Name = member.ToString(), Type = "secondary", Primaries = zc.Primaries,
                    File = MemberFile(zc, member),
                };
                wanted[member] = (memberConfig, $"{memberConfig.File}|{string.Join(',', zc.Primaries!)}|{KeysOf(zc, policy)}|member of {zc.Name}");
            }
        }
        List<Entry> stop = [];
        List<Entry> start = [];
        lock (_lock)
        {
            var next = new Dictionary<DnsName, Entry>();
            foreach (var (origin, (zc, settings)) in wanted)
            {
                if (_zones.TryGetValue(origin, out var current) && current.Settings == settings)
                {
                    next[origin] = current;
                    continue;
                }
                if (current is not null) stop.Add(current);
                var primaries = zc.Primaries!.Select(p =>
                {
                    var (endPoint, keyName) = ServerConfig.ParsePeer(p);
                    TsigKey? key = keyName is null ? null : policy.Keys.Find(ServerConfig.AbsoluteName(keyName).Wire);
                    return new PrimaryServer(endPoint, key);
                }).ToArray();
                Entry? entry = null;
                var engine = new SecondaryZone(origin, primaries, zc.File, zone => Publish(entry!, zone),
                    loggerFactory.CreateLogger("Portcullis.Secondary"));
                entry = new Entry(engine, settings, primaries) { Served = Placeholder(origin), Catalog = zc.CatalogRole == "interpret", File = zc.File };
                next[origin] = entry;
                start.Add(entry);
            }
            foreach (var (origin, entry) in _zones)
                if (!next.ContainsKey(origin) || !ReferenceEquals(next[origin], entry)) { if (!stop.Contains(entry)) stop.Add(entry); }
            _zones = next;
        }
        foreach (var e in stop) e.Engine.DisposeAsync().AsTask().GetAwaiter().GetResult();
        foreach (var e in start) e.Engine.Start();
        changed();
    }

    private static string KeysOf(ZoneConfig zc, SecurityPolicy policy) =>
        string.Join(',', policy.Keys.Keys.Select(k => $"{k.Name}:{k.Algorithm}:{k.SecretBase64}"));

    private void Publish(Entry entry, Zone zone)
    {
        Zone? before;
        lock (entry)
        {
            before = entry.Served;
            // A zone this server signs (dnssec-signing on a secondary): the transferred version is
            // kept by the engine (serials, IXFR from the primary); what is served is its signed version.
            var served = !zone.Unavailable && sign?.Invoke(zone) is { } signed ? signed : zone;
            entry.Served = served;
            zone = served.Unavailable ? zone : served;
        }
        changed();
        if (entry.Catalog && !zone.Unavailable) Interpret(entry, zone);
        // A version to serve that is new to us (first load or a newer serial; not expiry): tell our own secondaries.
        if (!zone.Unavailable && (before is null || before.Unavailable || SerialNumber.IsNewer(zone.Serial, before.Serial))) published?.Invoke(zone);
    }

    /// <summary>
    /// A new version of a consumed catalog (RFC 9432 §5): its members become secondary zones with the
    /// catalog's primaries, those it no longer lists are stopped and their files removed. A catalog
    /// that does not parse (wrong version) changes nothing.
    /// </summary>
    private void Interpret(Entry entry, Zone zone)
    {
        var logger = loggerFactory.CreateLogger("Portcullis.Catalog");
        var parse = CatalogZone.Parse(zone);
        foreach (var w in parse.Warnings) logger.LogWarning("catalog {Catalog}: {Warning}", zone.Origin, w);
        if (!parse.Ok)
        {
            logger.LogError("catalog {Catalog} not used: {Error}", zone.Origin, parse.Error);
            return;
        }
        var members = parse.Members.Select(m => m.Zone).ToList();
        IReadOnlyList<DnsName>? old;
        lock (_lock)
        {
            _catalogMembers.TryGetValue(zone.Origin, out old);
            if (old is not null && old.SequenceEqual(members)) return;
            _catalogMembers[zone.Origin] = members;
        }
        var removed = (old ?? []).Except(members).ToList();
        logger.LogInformation("catalog {Catalog} serial {Serial}: {Count} member zones ({Added} added, {Removed} removed)",
            zone.Origin, zone.Serial, members.Count, members.Except(old ?? []).Count(), removed.Count);
        // Reconfigure off the engine's own thread (Configure stops engines and waits for them).
        var config = _config;
        var policy = _policy;
        if (config is null || policy is null) return;
        _ = Task.Run(() =>
        {
            Configure(config, policy);
            foreach (var gone in removed)
            {
                var file = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(entry.File)) ?? ".", "catz", gone.ToString().TrimEnd('.') + ".zone");
                foreach (var f in new[] { file, file + ".state", file + ".jnl" })
                    try { File.Delete(f); } catch (IOException) { }
            }
        });
    }

    /// <summary>The engine's current version published again (signed anew: key events and signature refresh).</summary>
    public void Republish(DnsName origin)
    {
        Entry? entry;
        lock (_lock) _zones.TryGetValue(origin, out entry);
        if (entry?.Engine.Current is { } current && !entry.Engine.Expired) Publish(entry, current);
    }

    public NotifyOutcome Notify(Zone zone, ReadOnlySpan<byte> client, ReadOnlySpan<byte> keyName, bool aclAllows)
    {
        Entry? entry;
        lock (_lock) _zones.TryGetValue(zone.Origin, out entry);
        if (entry is null) return NotifyOutcome.NotSecondary;
        bool fromPrimary = false;
        if (client.Length is 4 or 16)
        {
            var address = new IPAddress(client);
            foreach (var p in entry.Primaries)
                if (p.EndPoint.Address.Equals(address) || p.EndPoint.Address.IsIPv4MappedToIPv6 && p.EndPoint.Address.MapToIPv4().Equals(address))
                    fromPrimary = true;
        }
        if (!fromPrimary && !aclAllows) return NotifyOutcome.Refused;
        entry.Engine.Notify();
        return NotifyOutcome.Accepted;
    }

    /// <summary>
    /// What a secondary zone serves before its first transfer: its apex with a stand-in SOA, marked
    /// unavailable, so that queries get SERVFAIL (as BIND, Knot and NSD answer) rather than REFUSED.
    /// </summary>
    private static Zone Placeholder(DnsName origin)
    {
        var compiler = new ZoneCompiler(origin);
        var soa = new byte[1 + 1 + 20];
        compiler.Add(new ResourceRecord(origin, RecordType.SOA, RecordClass.IN, 0, soa), new ZonePosition(null, 0, 0));
        return new Zone(compiler.Finish().Data!) { Unavailable = true };
    }

    public void Dispose()
    {
        List<Entry> all;
        lock (_lock)
        {
            all = [.. _zones.Values];
            _zones = new();
        }
        foreach (var e in all) e.Engine.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }
}
