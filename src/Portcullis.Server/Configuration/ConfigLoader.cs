using YamlDotNet.Core;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace Portcullis.Server.Configuration;

/// <summary>A configuration problem with where it is: file, line and column when known.</summary>
public sealed class ConfigException : Exception
{
    public ConfigException(string message, string? scalar = null) : base(message) => Scalar = scalar;

    /// <summary>The configuration text (a key or value) the problem is about, to find its line.</summary>
    public string? Scalar { get; }
}

public static class ConfigLoader
{
    /// <summary>Reads a YAML configuration file; unknown keys and bad values are errors with file, line and column.</summary>
    public static ServerConfig Load(string path)
    {
        string text;
        try { text = File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException($"{path}: cannot read the configuration: {e.Message}");
        }
        return Parse(text, path);
    }

    public static ServerConfig Parse(string yaml, string path)
    {
        var deserializer = new StaticDeserializerBuilder(new ConfigYamlContext())
            .WithNamingConvention(HyphenatedNamingConvention.Instance)
            .Build();
        ServerConfig config;
        try
        {
            config = deserializer.Deserialize<ServerConfig?>(yaml) ?? new ServerConfig();
        }
        catch (YamlException e)
        {
            string why = (e.InnerException?.Message ?? e.Message).Split('\n')[0];
            throw new ConfigException($"{path}:{e.Start.Line}:{e.Start.Column}: {why}");
        }
        config.SourceFile = path;
        try
        {
            Validate(config, path);
        }
        catch (ConfigException e) when (e.Scalar is not null && Locate(yaml, e.Scalar) is { } at)
        {
            // Point at the offending value in the file, as the parser does for syntax errors.
            throw new ConfigException($"{path}:{at.Line}:{at.Column}: {e.Message[(path.Length + 2)..]}");
        }
        return config;
    }

    /// <summary>Line and column of the first scalar in the YAML text equal to <paramref name="scalar"/>.</summary>
    private static Mark? Locate(string yaml, string scalar)
    {
        try
        {
            var parser = new Parser(new StringReader(yaml));
            while (parser.MoveNext())
                if (parser.Current is YamlDotNet.Core.Events.Scalar s && s.Value == scalar) return s.Start;
        }
        catch (YamlException) { }
        return null;
    }

    /// <summary>Checks values that parse as YAML but make no sense; makes zone file paths relative to the config file.</summary>
    public static void Validate(ServerConfig config, string? path)
    {
        string where = path ?? "command line";
        foreach (var l in config.Listen)
        {
            try { ServerConfig.ParseEndPoint(l); }
            catch (FormatException e) { throw new ConfigException($"{where}: listen: {e.Message}", l); }
        }
        if (!config.Metrics.TryGetEndPoint(out _, out var metricsError))
            throw new ConfigException($"{where}: {metricsError}", config.Metrics.Listen);
        foreach (var z in config.Zones)
        {
            if (string.IsNullOrWhiteSpace(z.Name)) throw new ConfigException($"{where}: zones: a zone has no name", "zones");
            if (z.CatalogRole is not (null or "generate" or "member" or "interpret"))
                throw new ConfigException($"{where}: zones: zone {z.Name}: catalog-role '{z.CatalogRole}' is not generate, member or interpret", z.CatalogRole);
            if (z.CatalogRole == "member" && !config.Zones.Exists(c => c.CatalogRole == "generate" && SameName(c.Name, z.CatalogZone)))
                throw new ConfigException($"{where}: zones: zone {z.Name}: catalog-zone '{z.CatalogZone}' is not a zone with catalog-role: generate", z.CatalogZone ?? z.Name);
            if (z.CatalogRole == "interpret" && z.Type != "secondary")
                throw new ConfigException($"{where}: zones: zone {z.Name}: catalog-role: interpret needs type: secondary", z.Name);
            if (z.CatalogRole == "generate")
            {
                if (z.Type != "primary") throw new ConfigException($"{where}: zones: zone {z.Name}: catalog-role: generate needs type: primary", z.Name);
                continue;   // made in memory: no file
            }
            if (string.IsNullOrWhiteSpace(z.File)) throw new ConfigException($"{where}: zones: zone {z.Name} has no file", z.Name);
            if (z.Type is not ("primary" or "secondary"))
                throw new ConfigException($"{where}: zones: zone {z.Name}: type '{z.Type}' is not primary or secondary", z.Type);
            if (z.Type == "secondary" && (z.Primaries is null || z.Primaries.Count == 0))
                throw new ConfigException($"{where}: zones: secondary zone {z.Name} has no primaries", z.Name);
            if (z.Type == "primary" && z.Primaries is { Count: > 0 })
                throw new ConfigException($"{where}: zones: zone {z.Name} has primaries but is not type: secondary", z.Name);
            foreach (var peer in (z.Primaries ?? []).Concat(z.Notify ?? []))
            {
                string? keyName;
                try { (_, keyName) = ServerConfig.ParsePeer(peer); }
                catch (FormatException e) { throw new ConfigException($"{where}: zones: {z.Name}: {(z.Notify?.Contains(peer) == true ? "notify" : "primaries")}: {e.Message}", peer); }
                if (keyName is not null && !config.Keys.Exists(k => string.Equals(k.Name.TrimEnd('.'), keyName.TrimEnd('.'), StringComparison.OrdinalIgnoreCase)))
                    throw new ConfigException($"{where}: zones: {z.Name}: '{peer}': no key named {keyName} under keys", peer);
            }
            if (z.DnssecPolicy is not null && !z.DnssecSigning)
                throw new ConfigException($"{where}: zones: zone {z.Name}: dnssec-policy without dnssec-signing: true", z.DnssecPolicy);
            if (z.DnssecSigning)
            {
                if (z.File.StartsWith(Hosting.DnsServer.EmbeddedPrefix, StringComparison.Ordinal))
                    throw new ConfigException($"{where}: zones: zone {z.Name}: dnssec-signing needs a zone file (keys and signatures are kept beside it)", z.Name);
                try { Dnssec.PolicyConfig.For(config, z); }
                catch (FormatException e) { throw new ConfigException($"{where}: zones: zone {z.Name}: {e.Message}", z.DnssecPolicy); }
            }
            if (path is not null && !Path.IsPathRooted(z.File) && !z.File.StartsWith(Hosting.DnsServer.EmbeddedPrefix, StringComparison.Ordinal))
                z.File = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, z.File));
            if (path is not null && z.KeyDirectory is not null && !Path.IsPathRooted(z.KeyDirectory))
                z.KeyDirectory = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, z.KeyDirectory));
        }
        foreach (var (name, policy) in config.DnssecPolicies)
        {
            try { Dnssec.PolicyConfig.From(policy); }
            catch (FormatException e) { throw new ConfigException($"{where}: dnssec-policies: {name}: {e.Message}", name); }
        }
        try { ServerConfig.ParseDuration(config.Limits.TcpIdleTimeout); }
        catch (FormatException e) { throw new ConfigException($"{where}: limits: tcp-idle-timeout: {e.Message}", "tcp-idle-timeout"); }
        if (config.Limits.UdpMaxResponse is < 512 or > 65535)
            throw new ConfigException($"{where}: limits: udp-max-response must be 512 to 65535", "udp-max-response");
        if (config.Limits.JournalMaxSize is < 1 or > 1 << 20)
            throw new ConfigException($"{where}: limits: journal-max-size must be 1 to 1048576 (MiB)", "journal-max-size");
        if (config.UdpWorkers < 0 || config.UdpWorkers > 256)
            throw new ConfigException($"{where}: udp-workers must be 0 (one per core) to 256", "udp-workers");
        if (config.Limits.TcpMaxConnections < 1)
            throw new ConfigException($"{where}: limits: tcp-max-connections must be at least 1", "tcp-max-connections");
        if (config.Limits.TcpMaxConnectionsPerClient < 1)
            throw new ConfigException($"{where}: limits: tcp-max-connections-per-client must be at least 1", "tcp-max-connections-per-client");
        if (config.Limits.TransfersOut < 1)
            throw new ConfigException($"{where}: limits: transfers-out must be at least 1", "transfers-out");
        var rl = config.RateLimit;
        Range(where, "rate-limit: responses-per-second", rl.ResponsesPerSecond, 0, 1000);
        Range(where, "rate-limit: nodata-per-second", rl.NodataPerSecond ?? 0, 0, 1000);
        Range(where, "rate-limit: nxdomains-per-second", rl.NxdomainsPerSecond ?? 0, 0, 1000);
        Range(where, "rate-limit: referrals-per-second", rl.ReferralsPerSecond ?? 0, 0, 1000);
        Range(where, "rate-limit: errors-per-second", rl.ErrorsPerSecond ?? 0, 0, 1000);
        Range(where, "rate-limit: all-per-second", rl.AllPerSecond, 0, 1000);
        Range(where, "rate-limit: window", rl.Window, 1, 3600);
        Range(where, "rate-limit: slip", rl.Slip, 0, 10);
        Range(where, "rate-limit: ipv4-prefix-length", rl.Ipv4PrefixLength, 0, 32);
        Range(where, "rate-limit: ipv6-prefix-length", rl.Ipv6PrefixLength, 0, 128);
        Range(where, "rate-limit: max-table-size", rl.MaxTableSize, 16, 1 << 24);
        var cl = config.ClientLimit;
        Range(where, "client-limit: queries-per-second", cl.QueriesPerSecond, 0, 1_000_000);
        Range(where, "client-limit: window", cl.Window, 1, 3600);
        Range(where, "client-limit: block", cl.Block, 1, 86400);
        Range(where, "client-limit: ipv4-prefix-length", cl.Ipv4PrefixLength, 0, 32);
        Range(where, "client-limit: ipv6-prefix-length", cl.Ipv6PrefixLength, 0, 128);
        Range(where, "client-limit: max-table-size", cl.MaxTableSize, 16, 1 << 24);
        foreach (var (key, value) in new[] { ("secret", config.Cookies.Secret), ("previous-secret", config.Cookies.PreviousSecret) })
            if (value is not null && (value.Length != 32 || !value.All(Uri.IsHexDigit)))
                throw new ConfigException($"{where}: cookies: {key} must be 32 hexadecimal digits (128 bits)", value);
        if ((long)cl.QueriesPerSecond * cl.Window > 2_000_000)
            throw new ConfigException($"{where}: client-limit: queries-per-second times window must be at most 2,000,000", "queries-per-second");
        ValidateRecursion(config.Recursion, where, path);
        if (config.Dnstap.Validate() is { } dnstapError)
            throw new ConfigException($"{where}: {dnstapError}", "dnstap");
        if (config.Detection.AlertLog is { } alertLog && path is not null && !Path.IsPathRooted(alertLog))
            config.Detection.AlertLog = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, alertLog);
        if (config.Detection.Validate() is { } detectionError)
            throw new ConfigException($"{where}: {detectionError}", "detection");
        if (config.QueryLog.Validate() is { } queryLogError)
            throw new ConfigException($"{where}: {queryLogError}", "query-log");
        Range(where, "metrics: top-count", config.Metrics.TopCount, 0, 100);
        try
        {
            if (ServerConfig.ParseDuration(config.Metrics.TopWindow) < TimeSpan.FromSeconds(2))
                throw new ConfigException($"{where}: metrics: top-window must be at least 2s", config.Metrics.TopWindow);
        }
        catch (FormatException e) { throw new ConfigException($"{where}: metrics: top-window: {e.Message}", config.Metrics.TopWindow); }
        if (config.QueryLog.File is { } queryLogFile && path is not null && !Path.IsPathRooted(queryLogFile))
            config.QueryLog.File = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, queryLogFile);
        if (config.ResponsePolicy.Validate(k => config.Keys.Exists(c => string.Equals(c.Name.TrimEnd('.'), k.TrimEnd('.'), StringComparison.OrdinalIgnoreCase)),
                out var policyScalar) is { } policyError)
            throw new ConfigException($"{where}: {policyError}", policyScalar);
        config.ResponsePolicy.ResolvePaths(path);
        // The access lists compile here so that their errors point into the file.
        try { Security.SecurityPolicy.From(config, Security.LocalNetworks.FromSystem()); }
        catch (ConfigException e) { throw new ConfigException($"{where}: {e.Message}", e.Scalar); }
    }

    /// <summary>The recursion: section: durations, forwarders, sizes, and the root hints file (read here, errors with its line).</summary>
    private static void ValidateRecursion(RecursionConfig r, string where, string? path)
    {
        foreach (var (key, value) in new[] { ("cache-min-ttl", r.CacheMinTtl), ("cache-max-ttl", r.CacheMaxTtl), ("cache-max-negative-ttl", r.CacheMaxNegativeTtl) })
        {
            try { ServerConfig.ParseDuration(value); }
            catch (FormatException e) { throw new ConfigException($"{where}: recursion: {key}: {e.Message}", value); }
        }
        if (ServerConfig.ParseDuration(r.CacheMinTtl) > ServerConfig.ParseDuration(r.CacheMaxTtl))
            throw new ConfigException($"{where}: recursion: cache-min-ttl is above cache-max-ttl", r.CacheMinTtl);
        Range(where, "recursion: cache-size", r.CacheSize, 1, 1 << 20);
        Range(where, "recursion: max-in-flight", r.MaxInFlight, 1, 1_000_000);
        foreach (var address in r.OutgoingInterface)
            if (!System.Net.IPAddress.TryParse(address, out _))
                throw new ConfigException($"{where}: recursion: outgoing-interface: '{address}' is not an IP address", address);
        foreach (var f in r.Forwarders)
            ParseForwarder(f, $"{where}: recursion: forwarders");
        foreach (var (zone, servers) in r.ForwardZones)
        {
            try { ServerConfig.AbsoluteName(zone); }
            catch (FormatException e) { throw new ConfigException($"{where}: recursion: forward-zones: '{zone}': {e.Message}", zone); }
            if (servers is null || servers.Count == 0)
                throw new ConfigException($"{where}: recursion: forward-zones: {zone} has no servers", zone);
            foreach (var f in servers) ParseForwarder(f, $"{where}: recursion: forward-zones: {zone}");
        }
        if (r.RootHints is { } hints)
        {
            if (path is not null && !Path.IsPathRooted(hints))
                r.RootHints = hints = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, hints));
            // Read now: a broken file stops the start (or the reload), pointing at its line.
            RootHints.Load(hints);
        }
        for (int i = 0; i < r.TrustAnchorFiles.Count; i++)
            if (path is not null && !Path.IsPathRooted(r.TrustAnchorFiles[i]))
                r.TrustAnchorFiles[i] = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, r.TrustAnchorFiles[i]));
        if (r.AutoTrustAnchorFile is { } auto && path is not null && !Path.IsPathRooted(auto))
            r.AutoTrustAnchorFile = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, auto));
        // The anchors are read now too: a broken file or name stops the start, naming it.
        if (r.DnssecValidation) Hosting.DnsServer.LoadTrustAnchors(r, TimeProvider.System);
    }

    /// <summary>A forwarder, "ADDRESS[@PORT]" (Unbound's forward-addr); no key.</summary>
    internal static System.Net.IPEndPoint ParseForwarder(string text, string where)
    {
        try
        {
            var (endPoint, key) = ServerConfig.ParsePeer(text);
            if (key is not null) throw new FormatException($"'{text}': expected ADDRESS[@PORT]");
            return endPoint;
        }
        catch (FormatException e) { throw new ConfigException($"{where}: {e.Message}", text); }
    }

    private static bool SameName(string a, string? b) =>
        b is not null && string.Equals(a.TrimEnd('.'), b.TrimEnd('.'), StringComparison.OrdinalIgnoreCase);

    private static void Range(string where, string key, int value, int min, int max)
    {
        if (value < min || value > max)
            throw new ConfigException($"{where}: {key} must be {min} to {max}", key[(key.LastIndexOf(' ') + 1)..]);
    }
}
