using System.Globalization;
using System.Net;
using Portcullis.Server.Telemetry;

namespace Portcullis.Server.Configuration;

/// <summary>
/// The server's configuration, as read from YAML (keys in kebab-case) and overridden by flags.
/// See docs/configuration.md for every key with its default.
/// </summary>
public sealed class ServerConfig
{
    /// <summary>Addresses to listen on, UDP and TCP each: "127.0.0.1:53", "[::1]:53", "::1" (port 53).</summary>
    public List<string> Listen { get; set; } = [];
    public List<ZoneConfig> Zones { get; set; } = [];
    public LimitsConfig Limits { get; set; } = new();
    public ChaosConfig Chaos { get; set; } = new();
    public LoggingConfig Logging { get; set; } = new();
    /// <summary>
    /// UDP sockets (each with its own thread) per listen address, sharing the port through
    /// SO_REUSEPORT; 0 means one per core.
    /// </summary>
    public int UdpWorkers { get; set; }
    /// <summary>Where `serve` writes its process id, for `portcullis reload` (SIGHUP).</summary>
    public string? PidFile { get; set; }

    /// <summary>TSIG keys (RFC 8945), usable as "key NAME" in the access lists and for transfers and updates.</summary>
    public List<KeyConfig> Keys { get; set; } = [];
    /// <summary>Named access control lists, usable by name in the allow-* lists and in other ACLs.</summary>
    public Dictionary<string, List<string>> Acls { get; set; } = new();
    /// <summary>Who may query the authoritative zones (default: any).</summary>
    public List<string> AllowQuery { get; set; } = ["any"];
    /// <summary>Who may get recursive service (default: this machine and its attached networks; never open by default).</summary>
    public List<string> AllowRecursion { get; set; } = ["localhost", "localnets"];
    /// <summary>Who may transfer zones (AXFR/IXFR; default: nobody).</summary>
    public List<string> AllowTransfer { get; set; } = ["none"];
    /// <summary>Who may send dynamic updates (default: nobody).</summary>
    public List<string> AllowUpdate { get; set; } = ["none"];
    /// <summary>Who may send NOTIFY (default: nobody).</summary>
    public List<string> AllowNotify { get; set; } = ["none"];
    public RateLimitConfig RateLimit { get; set; } = new();
    public ClientLimitConfig ClientLimit { get; set; } = new();
    public CookiesConfig Cookies { get; set; } = new();
    /// <summary>Tunnelling and exfiltration detection (docs/detection.md); off unless enabled.</summary>
    public Detection.DetectionConfig Detection { get; set; } = new();
    /// <summary>The Prometheus metrics endpoint (off unless metrics.listen is set).</summary>
    public MetricsConfig Metrics { get; set; } = new();
    /// <summary>Recursive service for the clients allow-recursion admits (Unbound's options, by their names).</summary>
    public RecursionConfig Recursion { get; set; } = new();
    /// <summary>dnstap logging of client queries and responses to a file or a Frame Streams socket (BIND's dnstap-output).</summary>
    public DnstapConfig Dnstap { get; set; } = new();
    /// <summary>The JSON-lines query log (off unless query-log.file is set).</summary>
    public QueryLogConfig QueryLog { get; set; } = new();
    /// <summary>Response policy zones and domain lists for recursive queries (BIND's response-policy; docs/response-policy.md).</summary>
    public Policy.ResponsePolicyConfig ResponsePolicy { get; set; } = new();
    /// <summary>
    /// DNSSEC signing policies by name, for zones with dnssec-signing (Knot's policy section). A zone
    /// without dnssec-policy uses "default": every field at its default.
    /// </summary>
    public Dictionary<string, DnssecPolicyConfig> DnssecPolicies { get; set; } = new();

    /// <summary>The file this came from, for messages (null when built from flags only).</summary>
    [YamlDotNet.Serialization.YamlIgnore]
    public string? SourceFile { get; set; }

    public static IPEndPoint ParseEndPoint(string text)
    {
        text = text.Trim();
        // "[v6]:port" or "v4:port" carry a port; a bare address (v4, or v6 without brackets) means port 53.
        bool hasPort = text.StartsWith('[') ? text.Contains("]:", StringComparison.Ordinal) : text.Count(c => c == ':') == 1;
        if (hasPort && IPEndPoint.TryParse(text, out var ep)) return ep;
        if (!hasPort && IPAddress.TryParse(text.Trim('[', ']'), out var bare)) return new IPEndPoint(bare, 53);
        throw new FormatException($"'{text}' is not an address or address:port (use [v6]:port for IPv6)");
    }

    /// <summary>
    /// A replication peer: "ADDRESS[@PORT] [key NAME]" (Knot's address@port; BIND's "key NAME").
    /// Throws FormatException saying what is wrong.
    /// </summary>
    public static (IPEndPoint EndPoint, string? Key) ParsePeer(string text)
    {
        var words = text.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (words.Length is not (1 or 3) || words.Length == 3 && words[1] != "key")
            throw new FormatException($"'{text}': expected ADDRESS[@PORT] [key NAME]");
        string address = words[0];
        int port = 53;
        int at = address.LastIndexOf('@');
        if (at >= 0)
        {
            if (!int.TryParse(address.AsSpan(at + 1), out port) || port is < 1 or > 65535)
                throw new FormatException($"'{text}': bad port '{address[(at + 1)..]}'");
            address = address[..at];
        }
        if (!IPAddress.TryParse(address, out var ip)) throw new FormatException($"'{text}': '{address}' is not an IP address");
        return (new IPEndPoint(ip, port), words.Length == 3 ? words[2] : null);
    }

    /// <summary>A name as the configuration writes it, with or without the final dot, as an absolute name.</summary>
    public static Portcullis.Protocol.Names.DnsName AbsoluteName(string text) =>
        Portcullis.Protocol.Names.DnsName.Parse(text.EndsWith('.') ? text : text + ".");

    public static TimeSpan ParseDuration(string text)
    {
        text = text.Trim();
        if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int seconds)) return TimeSpan.FromSeconds(seconds);
        foreach (var (suffix, unit) in new[] { ("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0), ("d", 86400.0), ("w", 604800.0) })
            if (text.EndsWith(suffix, StringComparison.OrdinalIgnoreCase)
                && double.TryParse(text[..^suffix.Length], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double v) && v >= 0)
                return TimeSpan.FromSeconds(v * unit);
        throw new FormatException($"'{text}' is not a duration (e.g. 10s, 500ms, 2m, 12h, 14d)");
    }
}

/// <summary>A TSIG key: its name, algorithm and base64 secret, as `portcullis tsig-keygen` prints them.</summary>
public sealed class KeyConfig
{
    public string Name { get; set; } = "";
    public string Algorithm { get; set; } = "hmac-sha256";
    public string Secret { get; set; } = "";
}

public sealed class ZoneConfig
{
    public string Name { get; set; } = "";
    /// <summary>The zone file: read for a primary zone; written (with FILE.state) for a secondary.</summary>
    public string File { get; set; } = "";
    /// <summary>"primary" (the default: served from <see cref="File"/>) or "secondary" (pulled from <see cref="Primaries"/>).</summary>
    public string Type { get; set; } = "primary";
    /// <summary>For a secondary: the servers to pull from, in order, each "ADDRESS[@PORT] [key NAME]".</summary>
    public List<string>? Primaries { get; set; }
    /// <summary>
    /// Catalog zones (RFC 9432), as Knot names the roles: "generate" (this zone is the catalog of the
    /// zones that name it in catalog-zone; made in memory, no file needed), "member" (listed in the
    /// catalog named by <see cref="CatalogZone"/>), "interpret" (a secondary zone that is a catalog:
    /// its members become secondary zones with the same primaries, saved beside it).
    /// </summary>
    public string? CatalogRole { get; set; }
    /// <summary>For catalog-role: member, the catalog zone that lists this zone.</summary>
    public string? CatalogZone { get; set; }
    /// <summary>Servers to NOTIFY when the zone changes (RFC 1996), each "ADDRESS[@PORT] [key NAME]".</summary>
    public List<string>? Notify { get; set; }
    /// <summary>Also NOTIFY the zone's own name servers (the apex NS, except the SOA MNAME: RFC 1996 §3.3),
    /// at the addresses the zone itself gives them (port 53; names outside the zone are skipped: there is
    /// no resolver yet). BIND's notify yes; off by default, as Knot.</summary>
    public bool NotifyNs { get; set; }
    /// <summary>Per-zone access lists; null inherits the server-wide list of the same name.</summary>
    public List<string>? AllowQuery { get; set; }
    public List<string>? AllowTransfer { get; set; }
    public List<string>? AllowUpdate { get; set; }
    public List<string>? AllowNotify { get; set; }
    /// <summary>Sign the zone in the server and keep it signed (Knot's dnssec-signing): keys made and rolled by the policy.</summary>
    public bool DnssecSigning { get; set; }
    /// <summary>The name of a policy under dnssec-policies (default: the built-in defaults).</summary>
    public string? DnssecPolicy { get; set; }
    /// <summary>Where the zone's keys and their state live (default: a "keys" directory beside the zone file).</summary>
    public string? KeyDirectory { get; set; }
}

/// <summary>
/// A DNSSEC policy as the configuration writes it (durations as "30d", "12h"; lifetimes "0" = never);
/// see docs/dnssec.md for the meaning and defaults of each field.
/// </summary>
public sealed class DnssecPolicyConfig
{
    public string Algorithm { get; set; } = "ecdsap256sha256";
    /// <summary>One combined signing key (CSK) instead of a KSK and a ZSK.</summary>
    public bool CombinedKey { get; set; }
    public string KskLifetime { get; set; } = "0";
    public string ZskLifetime { get; set; } = "30d";
    public int DnskeyTtl { get; set; } = 3600;
    public string PropagationDelay { get; set; } = "1h";
    public string ParentDsTtl { get; set; } = "1d";
    public string ParentPropagationDelay { get; set; } = "1h";
    public string SignatureValidity { get; set; } = "14d";
    public string SignatureRefresh { get; set; } = "5d";
    public string SignatureJitter { get; set; } = "12h";
    public bool Nsec3 { get; set; }
    public int Nsec3Iterations { get; set; }
    public int Nsec3SaltLength { get; set; }
    /// <summary>Publish CDS and CDNSKEY (RFC 7344) for the KSKs the parent should hold.</summary>
    public bool CdsCdnskeyPublish { get; set; } = true;
    /// <summary>A ZONEMD digest (RFC 8976) at the apex, made anew with every version (a walk of the whole zone each time).</summary>
    public bool Zonemd { get; set; }
}

/// <summary>
/// Response rate limiting over UDP, in the manner of BIND's rate-limit (on by default here). Rates
/// are responses per second to one client prefix for one response identity; 0 turns a kind off.
/// </summary>
public sealed class RateLimitConfig
{
    public int ResponsesPerSecond { get; set; } = 20;
    public int? NodataPerSecond { get; set; }
    public int? NxdomainsPerSecond { get; set; }
    public int? ReferralsPerSecond { get; set; }
    public int? ErrorsPerSecond { get; set; }
    public int AllPerSecond { get; set; }
    public int Window { get; set; } = 15;
    public int Slip { get; set; } = 2;
    public int Ipv4PrefixLength { get; set; } = 24;
    public int Ipv6PrefixLength { get; set; } = 56;
    public int MaxTableSize { get; set; } = 65536;
    public bool LogOnly { get; set; }
    /// <summary>Clients never rate-limited (default: loopback, which cannot be spoofed from the network).</summary>
    public List<string> ExemptClients { get; set; } = ["loopback"];
}

/// <summary>
/// Per-client query rate limit with temporary blocks (dnsdist's dynamic blocks), UDP only: a client
/// prefix averaging more than queries-per-second over window seconds is dropped for block seconds.
/// </summary>
public sealed class ClientLimitConfig
{
    public int QueriesPerSecond { get; set; } = 1000;
    public int Window { get; set; } = 10;
    public int Block { get; set; } = 60;
    public int Ipv4PrefixLength { get; set; } = 32;
    public int Ipv6PrefixLength { get; set; } = 64;
    public int MaxTableSize { get; set; } = 65536;
    public List<string> ExemptClients { get; set; } = ["loopback"];
}

/// <summary>DNS cookies (RFC 7873, server cookies as RFC 9018): on by default.</summary>
public sealed class CookiesConfig
{
    public bool Enabled { get; set; } = true;
    /// <summary>128-bit secret in hex, shared by the servers of an anycast set; random at start when unset.</summary>
    public string? Secret { get; set; }
    /// <summary>The previous secret, still accepted (for a rotation across a fleet).</summary>
    public string? PreviousSecret { get; set; }
    /// <summary>Over UDP, answer cookie-bearing queries without a valid server cookie with BADCOOKIE (BIND's require-server-cookie).</summary>
    public bool Require { get; set; }
}

/// <summary>
/// Recursion (names in no served zone), offered only to the clients allow-recursion admits
/// (default: localhost and localnets, as BIND's allow-recursion). On by default with the built-in
/// root hints: a server that is never an open resolver by default can still resolve for its own
/// machine and networks (see docs/configuration.md). Defaults are Unbound's.
/// </summary>
public sealed class RecursionConfig
{
    public const int DefaultMaxInFlight = 1000;

    public bool Enabled { get; set; } = true;
    /// <summary>A root hints file in named.root format (NS of the root, A/AAAA of those names); unset: the built-in IANA hints.</summary>
    public string? RootHints { get; set; }
    /// <summary>Forward every name to these servers ("ADDRESS[@PORT]") instead of iterating (Unbound's forward-zone ".").</summary>
    public List<string> Forwarders { get; set; } = [];
    /// <summary>Names at or below a zone go to its servers ("ADDRESS[@PORT]"): Unbound's forward-zone.</summary>
    public Dictionary<string, List<string>> ForwardZones { get; set; } = new();
    /// <summary>MiB of cached records (Unbound's rrset-cache-size + msg-cache-size).</summary>
    public int CacheSize { get; set; } = 64;
    /// <summary>TTL floor of cached data (a duration: 0, 30s, 5m).</summary>
    public string CacheMinTtl { get; set; } = "0";
    public string CacheMaxTtl { get; set; } = "1d";
    /// <summary>Ceiling of negative answers' TTL (RFC 2308 §5).</summary>
    public string CacheMaxNegativeTtl { get; set; } = "1h";
    /// <summary>RFC 9156, relaxed.</summary>
    public bool QnameMinimisation { get; set; } = true;
    /// <summary>RFC 8767: expired data when every upstream fails.</summary>
    public bool ServeStale { get; set; } = true;
    /// <summary>Refresh popular records before they expire.</summary>
    public bool Prefetch { get; set; } = true;
    /// <summary>Resolutions running at once; one more is answered SERVFAIL (Unbound's num-queries-per-thread is 1024).</summary>
    public int MaxInFlight { get; set; } = DefaultMaxInFlight;
    /// <summary>Local addresses upstream queries leave from (Unbound's outgoing-interface); empty = any.</summary>
    public List<string> OutgoingInterface { get; set; } = [];
    /// <summary>DNSSEC validation of everything resolved (RFC 4033–4035), on by default as in Unbound and BIND.</summary>
    public bool DnssecValidation { get; set; } = true;
    /// <summary>Trust anchor files (zone-file DS/DNSKEY lines, Unbound's trust-anchor-file); empty = Debian's /usr/share/dns/root.key, else the built-in IANA root DS.</summary>
    public List<string> TrustAnchorFiles { get; set; } = [];
    /// <summary>
    /// A trust anchor file kept up to date by RFC 5011 (Unbound's auto-trust-anchor-file): seeded
    /// with DS or DNSKEY lines (Debian's root.key will do), rewritten as keys are added and revoked.
    /// </summary>
    public string? AutoTrustAnchorFile { get; set; }
    /// <summary>Zones validated as insecure whatever their signatures say (RFC 7646 negative trust anchors).</summary>
    public List<string> NegativeTrustAnchors { get; set; } = [];
    /// <summary>Trust RSASHA1 signatures and SHA-1 DS digests (true, as Unbound and BIND on Debian); false makes zones relying on them insecure.</summary>
    public bool DnssecSha1 { get; set; } = true;
    /// <summary>RFC 8198: answer NXDOMAIN/NODATA from validated NSEC ranges already cached (Unbound's aggressive-nsec).</summary>
    public bool AggressiveNsec { get; set; } = true;
}

public sealed class LimitsConfig
{
    /// <summary>Largest UDP response with EDNS (RFC 9715 / DNS Flag Day 2020 suggest 1232).</summary>
    public int UdpMaxResponse { get; set; } = 1232;
    public string TcpIdleTimeout { get; set; } = "10s";
    public int TcpMaxConnections { get; set; } = 1000;
    public int TcpMaxConnectionsPerClient { get; set; } = 32;
    /// <summary>MiB of IXFR history each zone's journal keeps (older steps are dropped; IXFR from before them gets the whole zone).</summary>
    public int JournalMaxSize { get; set; } = 64;
    /// <summary>Outgoing zone transfers at once (BIND's transfers-out); one more is answered SERVFAIL.</summary>
    public int TransfersOut { get; set; } = 10;
}

/// <summary>
/// Answers to CHAOS-class identity queries. All null by default: version.bind, hostname.bind,
/// id.server and version.server are REFUSED so the server does not disclose itself.
/// </summary>
public sealed class ChaosConfig
{
    public string? Version { get; set; }
    public string? Hostname { get; set; }
    public string? ServerId { get; set; }
}

public sealed class LoggingConfig
{
    /// <summary>trace, debug, information, warning, error.</summary>
    public string Level { get; set; } = "information";
}
