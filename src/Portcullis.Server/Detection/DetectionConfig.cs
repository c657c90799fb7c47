using Portcullis.Server.Configuration;

namespace Portcullis.Server.Detection;

/// <summary>
/// detection: the tunnelling and exfiltration detector (docs/detection.md). Off by default.
/// <code>
/// detection:
///   enabled: true
///   public-suffix-list: /usr/share/publicsuffix/public_suffix_list.dat
///   alert-log: /var/log/portcullis/detector.jsonl
///   allow: [ corp.example ]
///   action: alert            # alert | block | rate-limit
///   action-duration: 10m
/// </code>
/// </summary>
public sealed class DetectionConfig
{
    public bool Enabled { get; set; }
    public string PublicSuffixList { get; set; } = Detection.PublicSuffixList.DebianPath;
    /// <summary>JSON-lines file the alerts are appended to (none: alerts go to the log and the metric only).</summary>
    public string? AlertLog { get; set; }
    /// <summary>Domains never scored (suffix match), added to the built-in list.</summary>
    public List<string> Allow { get; set; } = [];
    /// <summary>Use the built-in allow-list (<see cref="DefaultAllowList"/>).</summary>
    public bool BuiltinAllow { get; set; } = true;
    /// <summary>alert (default), block, or rate-limit the alerted domain or client.</summary>
    public string Action { get; set; } = "alert";
    public string ActionDuration { get; set; } = "10m";
    /// <summary>Queries per second an alerted domain or client keeps under rate-limit.</summary>
    public double RateLimit { get; set; } = 1;
    /// <summary>What a blocked domain's queries get: refused (REFUSED with EDE 15 Blocked) or drop.</summary>
    public string DomainResponse { get; set; } = "refused";
    /// <summary>What a blocked client's queries get: drop (dnsdist's dynamic-block default) or refused.</summary>
    public string ClientResponse { get; set; } = "drop";
    /// <summary>act-on-clients: apply block/rate-limit to alerted clients as well (off: spoofable over UDP).</summary>
    public bool ActOnClients { get; set; }
    /// <summary>Score at which a registered domain raises an alert (docs/detection.md).</summary>
    public double Threshold { get; set; } = DetectorOptions.DefaultThreshold;
    /// <summary>Queries a domain must have (in the decayed window) before it can alert.</summary>
    public int MinQueries { get; set; } = DetectorOptions.DefaultMinQueries;
    /// <summary>Registered domains tracked at once (least recently seen, lowest score evicted).</summary>
    public int MaxDomains { get; set; } = DetectorOptions.DefaultMaxDomains;
    public int MaxClients { get; set; } = DetectorOptions.DefaultMaxClients;

    /// <summary>One line naming what is wrong, or null.</summary>
    public string? Validate()
    {
        if (Action is not ("alert" or "block" or "rate-limit")) return $"detection: action must be alert, block or rate-limit, not '{Action}'";
        if (DomainResponse is not ("refused" or "drop")) return $"detection: domain-response must be refused or drop, not '{DomainResponse}'";
        if (ClientResponse is not ("refused" or "drop")) return $"detection: client-response must be refused or drop, not '{ClientResponse}'";
        try { if (ServerConfig.ParseDuration(ActionDuration) <= TimeSpan.Zero) return "detection: action-duration must be positive"; }
        catch (FormatException e) { return $"detection: action-duration: {e.Message}"; }
        if (RateLimit <= 0) return "detection: rate-limit must be positive";
        if (Threshold <= 0) return "detection: threshold must be positive";
        if (MinQueries < 1) return "detection: min-queries must be at least 1";
        if (MaxDomains is < 16 or > 4_000_000) return "detection: max-domains must be between 16 and 4000000";
        if (MaxClients is < 16 or > 4_000_000) return "detection: max-clients must be between 16 and 4000000";
        foreach (var a in Allow)
            if (NameHash.FromText(a) is null) return $"detection: allow: '{a}' is not a domain name";
        if (Enabled && !File.Exists(PublicSuffixList)) return $"detection: public-suffix-list {PublicSuffixList} does not exist (Debian package publicsuffix)";
        return null;
    }

    public DetectorOptions ToOptions() => new()
    {
        Threshold = Threshold,
        MinQueries = MinQueries,
        MaxDomains = MaxDomains,
        MaxClients = MaxClients,
        Allow = NameSuffixSet.FromText(BuiltinAllow ? [.. DefaultAllowList.Names, .. Allow] : Allow),
        Action = Action switch { "block" => DetectorAction.Block, "rate-limit" => DetectorAction.RateLimit, _ => DetectorAction.Alert },
        ActionDuration = ServerConfig.ParseDuration(ActionDuration),
        RateLimit = RateLimit,
        DomainDrop = DomainResponse == "drop",
        ClientDrop = ClientResponse == "drop",
        ActOnClients = ActOnClients,
    };
}

public enum DetectorAction { Alert, Block, RateLimit }

/// <summary>The detector's tuning (defaults documented and measured in docs/detection.md).</summary>
public sealed class DetectorOptions
{
    public const double DefaultThreshold = 4.5;
    public const int DefaultMinQueries = 15;
    public const int DefaultMaxDomains = 32768;
    public const int DefaultMaxClients = 16384;

    public double Threshold { get; init; } = DefaultThreshold;
    public int MinQueries { get; init; } = DefaultMinQueries;
    public int MaxDomains { get; init; } = DefaultMaxDomains;
    public int MaxClients { get; init; } = DefaultMaxClients;
    /// <summary>Time constant of the decayed query, type and lexical averages.</summary>
    public TimeSpan Window { get; init; } = TimeSpan.FromMinutes(10);
    /// <summary>Time constant of the information budget (ibHH's and Nadler's per-hour figures).</summary>
    public TimeSpan InfoWindow { get; init; } = TimeSpan.FromHours(1);
    /// <summary>Tumbling window of the distinct-name sketch.</summary>
    public TimeSpan UniqueWindow { get; init; } = TimeSpan.FromMinutes(10);
    /// <summary>Information (payload octets of distinct names per client) that saturates its score term.</summary>
    public double InfoSaturation { get; init; } = 4096;
    public NameSuffixSet Allow { get; init; } = NameSuffixSet.FromText(DefaultAllowList.Names);
    public DetectorAction Action { get; init; } = DetectorAction.Alert;
    public TimeSpan ActionDuration { get; init; } = TimeSpan.FromMinutes(10);
    public double RateLimit { get; init; } = 1;
    public bool DomainDrop { get; init; }
    public bool ClientDrop { get; init; } = true;
    /// <summary>Whether blocks and rate limits apply to clients too, not only domains. Off by default: over UDP a
    /// client address can be spoofed, so acting on it lets an attacker cut a victim off.</summary>
    public bool ActOnClients { get; init; }
    /// <summary>Score at which a client raises an alert (its own score, docs/detection.md).</summary>
    public double ClientThreshold { get; init; } = 4.0;
    /// <summary>An alerted domain or client alerts again only after this long.</summary>
    public TimeSpan RealertAfter { get; init; } = TimeSpan.FromHours(1);
}

/// <summary>
/// The built-in allow-list: benign services whose names look like encoded data. Each entry matches
/// the name and everything under it. Sources in docs/detection.md.
/// </summary>
public static class DefaultAllowList
{
    public static readonly string[] Names =
    [
        // Reverse lookups (RFC 1035 §3.5, RFC 3596 §2.5): numeric and nibble labels, PTR sweeps.
        "in-addr.arpa", "ip6.arpa",
        // DNSBL / RHSBL / hash lists: reversed addresses, hashed domains and e-mail addresses.
        "spamhaus.org", "dq.spamhaus.net", "spamcop.net", "barracudacentral.org", "sorbs.net", "surbl.org",
        "uribl.com", "dnswl.org", "abuseat.org", "mailspike.net", "spameatingmonkey.net", "psbl.org",
        "nixspam.net", "invaluement.com", "hostkarma.junkemailfilter.com", "senderscore.com", "s5h.net",
        "rbl.jp", "manitu.net", "blocklist.de", "msrbl.net", "anonmails.de",
        // Anti-virus and reputation lookups: file hashes and URLs as labels.
        "sophosxl.net", "mcafee.com", "trellix.com", "avts.mcafee.com", "hash.cymru.com", "cymru.com",
        "avqs.mcafee.com", "e5.sk", "eset.com", "trendmicro.com", "kaspersky-labs.com", "bitdefender.net",
        "avast.com", "avg.com", "webroot.com", "brightcloud.com", "senderbase.org", "ironport.com",
        // The big CDNs' and clouds' hashed per-object names.
        "akamaiedge.net", "akamaihd.net", "akamai.net", "akamaized.net", "edgekey.net", "edgesuite.net",
        "cloudfront.net", "googlevideo.com", "gvt1.com", "gvt2.com", "1e100.net", "azureedge.net",
        "azurefd.net", "trafficmanager.net", "fastly.net", "fastlylb.net", "cloudflare.net", "cdn.cloudflare.net",
        "amazonaws.com", "elb.amazonaws.com", "llnwd.net", "edgecastcdn.net", "msedge.net", "windows.net",
        "footprintdns.com", "apple-dns.net", "aaplimg.com", "icloud.com", "cdn77.org", "b-cdn.net",
    ];
}
