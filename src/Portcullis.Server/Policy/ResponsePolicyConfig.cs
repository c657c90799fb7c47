using Portcullis.Server.Configuration;

namespace Portcullis.Server.Policy;

/// <summary>
/// response-policy: (BIND's response-policy, Unbound's rpz:): Response Policy Zones, each from a
/// file or kept current by zone transfer from its primaries, and plain domain-list files. Applied
/// to recursive queries only (RD=1, a client allow-recursion admits, a name in no served zone).
/// Zones are consulted in their order, then the lists in theirs: the first that matches decides.
/// </summary>
public sealed class ResponsePolicyConfig
{
    public List<PolicyZoneConfig> Zones { get; set; } = [];
    public List<PolicyListConfig> Lists { get; set; } = [];

    /// <summary>Nothing configured: no policy at all.</summary>
    public bool IsEmpty => Zones.Count == 0 && Lists.Count == 0;

    /// <summary>Actions a zone's <c>policy:</c> override may name (BIND's policy override; "given" keeps the zone's own).</summary>
    public static readonly string[] ZonePolicies = ["given", "nxdomain", "nodata", "drop", "passthru", "tcp-only", "disabled"];

    /// <summary>Actions a list may take for the names it lists.</summary>
    public static readonly string[] ListActions = ["nxdomain", "nodata", "drop", "passthru", "tcp-only"];

    /// <summary>
    /// The first problem found, as one line ("response-policy: zones: rpz.test: ..."), and the
    /// configuration text it is about (to point at its line), or null when all is well.
    /// <paramref name="keyExists"/> says whether a TSIG key of that name is configured.
    /// </summary>
    public string? Validate(Func<string, bool>? keyExists, out string? scalar)
    {
        scalar = null;
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var z in Zones)
        {
            if (string.IsNullOrWhiteSpace(z.Name)) { scalar = "zones"; return "response-policy: zones: a zone has no name"; }
            string at = $"response-policy: zones: {z.Name}";
            try { ServerConfig.AbsoluteName(z.Name); }
            catch (FormatException e) { scalar = z.Name; return $"{at}: not a domain name: {e.Message}"; }
            if (!seen.Add(z.Name.TrimEnd('.'))) { scalar = z.Name; return $"{at}: listed twice"; }
            bool hasPrimaries = z.Primaries is { Count: > 0 };
            if (!hasPrimaries && string.IsNullOrWhiteSpace(z.File)) { scalar = z.Name; return $"{at}: give file (the policy zone file) or primaries (to transfer it)"; }
            if (z.TsigKey is not null && !hasPrimaries) { scalar = z.TsigKey; return $"{at}: tsig-key without primaries"; }
            foreach (var p in z.Primaries ?? [])
            {
                try
                {
                    var (_, key) = ParsePrimary(p);
                    if (key is not null && keyExists is not null && !keyExists(key)) { scalar = p; return $"{at}: primaries: '{p}': no key named {key} under keys"; }
                }
                catch (FormatException e) { scalar = p; return $"{at}: primaries: {e.Message}"; }
            }
            if (z.TsigKey is not null && keyExists is not null && !keyExists(z.TsigKey)) { scalar = z.TsigKey; return $"{at}: tsig-key: no key named {z.TsigKey} under keys"; }
            if (Array.IndexOf(ZonePolicies, z.Policy) < 0) { scalar = z.Policy; return $"{at}: policy '{z.Policy}' is not one of {string.Join(", ", ZonePolicies)}"; }
        }
        foreach (var l in Lists)
        {
            if (string.IsNullOrWhiteSpace(l.File)) { scalar = "lists"; return "response-policy: lists: a list has no file"; }
            string at = $"response-policy: lists: {l.File}";
            if (Array.IndexOf(ListActions, l.Action) < 0) { scalar = l.Action; return $"{at}: action '{l.Action}' is not one of {string.Join(", ", ListActions)}"; }
            if (!seen.Add(l.PolicyName)) { scalar = l.File; return $"{at}: the policy name {l.PolicyName} is used twice (give the list a name:)"; }
        }
        return null;
    }

    /// <summary>Makes file paths relative to the configuration file's directory (and gives transferred zones their default copy).</summary>
    public void ResolvePaths(string? configPath)
    {
        string dir = configPath is null ? Directory.GetCurrentDirectory() : Path.GetDirectoryName(Path.GetFullPath(configPath))!;
        foreach (var z in Zones)
        {
            if (string.IsNullOrWhiteSpace(z.File) && z.Primaries is { Count: > 0 })
                z.File = Path.Combine("rpz", z.Name.TrimEnd('.') + ".zone");
            if (!string.IsNullOrWhiteSpace(z.File) && !Path.IsPathRooted(z.File)) z.File = Path.GetFullPath(Path.Combine(dir, z.File));
        }
        foreach (var l in Lists)
            if (!string.IsNullOrWhiteSpace(l.File) && !Path.IsPathRooted(l.File)) l.File = Path.GetFullPath(Path.Combine(dir, l.File));
    }

    /// <summary>
    /// A primary: "ADDRESS[@PORT] [key NAME]" as the secondary zones write it, or "ADDRESS:PORT" /
    /// "[V6]:PORT". Throws FormatException naming what is wrong.
    /// </summary>
    public static (System.Net.IPEndPoint EndPoint, string? Key) ParsePrimary(string text)
    {
        try { return ServerConfig.ParsePeer(text); }
        catch (FormatException) when (!text.Contains(' ') && !text.Contains('@'))
        {
            return (ServerConfig.ParseEndPoint(text), null);
        }
    }
}

/// <summary>One Response Policy Zone.</summary>
public sealed class PolicyZoneConfig
{
    /// <summary>The policy zone's name (its origin), e.g. rpz.example; also the policy's name in logs.</summary>
    public string Name { get; set; } = "";
    /// <summary>The zone file; with primaries, where the transferred copy is kept (default rpz/NAME.zone beside the configuration).</summary>
    public string? File { get; set; }
    /// <summary>Pull the zone from these servers ("ADDRESS[@PORT] [key NAME]"), refreshed by its SOA timers and NOTIFY.</summary>
    public List<string>? Primaries { get; set; }
    /// <summary>The TSIG key for every primary that names none.</summary>
    public string? TsigKey { get; set; }
    /// <summary>given (the actions the zone encodes), or one action for all its triggers: nxdomain, nodata, drop, passthru, tcp-only; disabled ignores the zone.</summary>
    public string Policy { get; set; } = "given";
    /// <summary>Log a line per hit (the counters count every hit regardless).</summary>
    public bool Log { get; set; } = true;
}

/// <summary>A plain domain list: one domain a line (or hosts-file lines); each name blocks itself and every name below it.</summary>
public sealed class PolicyListConfig
{
    public string File { get; set; } = "";
    /// <summary>nxdomain (default), nodata, drop, passthru or tcp-only.</summary>
    public string Action { get; set; } = "nxdomain";
    /// <summary>The policy's name in logs (default: the file's name).</summary>
    public string? Name { get; set; }
    public bool Log { get; set; } = true;

    public string PolicyName => Name ?? Path.GetFileName(File);
}
