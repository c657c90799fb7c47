using System.Globalization;
using System.Text;
using Portcullis.Protocol.Dnssec;

namespace Portcullis.Server.Dnssec;

/// <summary>
/// One key of a zone under automatic management: its key pair (BIND's K-files) and its state
/// (the K&lt;zone&gt;+alg+tag.state file beside them).
/// </summary>
internal sealed class ManagedKey
{
    public required string BasePath { get; init; }
    public required DnssecPrivateKey Key { get; init; }
    public ushort Tag => Key.KeyTag;
    public DnssecAlgorithm Algorithm => Key.Algorithm;
    public KeyRole Role { get; set; }
    public KeyState State { get; set; }
    public DateTimeOffset StateSince { get; set; }
    public DsState Ds { get; set; }
    public DateTimeOffset? DsSince { get; set; }
    public DateTimeOffset Created { get; set; }
    public DateTimeOffset? Published { get; set; }
    public DateTimeOffset? Activated { get; set; }
    public DateTimeOffset? Retired { get; set; }
    public DateTimeOffset? Removed { get; set; }
    public ushort? Successor { get; set; }
    public ushort? Predecessor { get; set; }
    public RolloverKind Rollover { get; set; }
    /// <summary>The largest zone TTL known while this key was written (caches may still hold records with it).</summary>
    public uint ZoneMaxTtl { get; set; }
    public bool Adopted { get; set; }
    /// <summary>The timings of the policy the key was last written under (<see cref="PolicyTimings"/>), for the CLI's listing.</summary>
    public string Timings { get; set; } = "";
    public bool Dirty { get; set; }
    /// <summary>The .state file's modification time when last read or written here: a different one means another process (the CLI) changed it.</summary>
    public DateTime FileStamp { get; set; }

    public bool IsLive => State != KeyState.Removed;
    public bool SignsKeys => KeyStates.IsSigning(State) && Role != KeyRole.Zsk;
    public bool SignsZone => KeyStates.IsSigning(State) && Role != KeyRole.Ksk;
    public bool HasDs => Role != KeyRole.Zsk;

    /// <summary>Moves to <paramref name="state"/> at <paramref name="now"/>, stamping the BIND-like timestamps.</summary>
    public void Enter(KeyState state, DateTimeOffset now)
    {
        bool wasPublished = KeyStates.IsPublished(State), wasSigning = KeyStates.IsSigning(State);
        State = state;
        StateSince = now;
        if (KeyStates.IsPublished(state) && !wasPublished && Published is null) Published = now;
        if (KeyStates.IsSigning(state) && !wasSigning && Activated is null) Activated = now;
        if (!KeyStates.IsSigning(state) && wasSigning) Retired = now;
        if (state == KeyState.Removed) Removed = now;
        Dirty = true;
    }

    public void SetDs(DsState ds, DateTimeOffset now)
    {
        Ds = ds;
        DsSince = now;
        Dirty = true;
    }

    public string StatePath => BasePath + ".state";

    /// <summary>"dnskey-ttl=3600 propagation-delay=3600 …": what the waits are made of, in seconds ("-": no lifetime).</summary>
    public static string PolicyTimings(DnssecPolicy p) => string.Create(CultureInfo.InvariantCulture,
        $"dnskey-ttl={p.DnskeyTtl} propagation-delay={(long)p.PropagationDelay.TotalSeconds} parent-ds-ttl={(long)p.ParentDsTtl.TotalSeconds} parent-propagation-delay={(long)p.ParentPropagationDelay.TotalSeconds} zsk-lifetime={Seconds(p.ZskLifetime)} ksk-lifetime={Seconds(p.KskLifetime)}");

    private static string Seconds(TimeSpan? t) => t is { } v ? ((long)v.TotalSeconds).ToString(CultureInfo.InvariantCulture) : "-";

    /// <summary>The timings of <see cref="PolicyTimings"/> read back onto <paramref name="policy"/>; null when the text is not such a line.</summary>
    public static DnssecPolicy? ApplyTimings(DnssecPolicy policy, string text)
    {
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string part in text.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = part.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0) return null;
            fields[part[..eq]] = part[(eq + 1)..];
        }
        TimeSpan? Get(string name, out bool ok)
        {
            ok = fields.TryGetValue(name, out string? v);
            if (!ok || v == "-") return null;
            ok = long.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out long seconds);
            return ok ? TimeSpan.FromSeconds(seconds) : null;
        }
        var ttl = Get("dnskey-ttl", out bool a);
        var prop = Get("propagation-delay", out bool b);
        var dsTtl = Get("parent-ds-ttl", out bool c);
        var parentProp = Get("parent-propagation-delay", out bool d);
        var zsk = Get("zsk-lifetime", out bool e);
        var ksk = Get("ksk-lifetime", out bool f);
        if (!(a && b && c && d && e && f) || ttl is null || prop is null || dsTtl is null || parentProp is null) return null;
        return policy with
        {
            DnskeyTtl = (uint)ttl.Value.TotalSeconds, PropagationDelay = prop.Value, ParentDsTtl = dsTtl.Value,
            ParentPropagationDelay = parentProp.Value, ZskLifetime = zsk, KskLifetime = ksk,
        };
    }

    public const string Header = "; Portcullis key state v1";

    public string Format(string zone)
    {
        var sb = new StringBuilder();
        sb.Append(Header).Append(": written by portcullis, read back at every start and reload (docs/dnssec.md)\n");
        void Line(string name, string value) => sb.Append(name).Append(": ").Append(value).Append('\n');
        Line("zone", zone);
        Line("tag", Tag.ToString(CultureInfo.InvariantCulture));
        Line("algorithm", ((byte)Algorithm).ToString(CultureInfo.InvariantCulture));
        Line("role", KeyStates.ToText(Role));
        Line("state", KeyStates.ToText(State));
        Line("state-since", KeyStates.Time(StateSince));
        Line("ds", KeyStates.ToText(Ds));
        Line("ds-since", KeyStates.Time(DsSince));
        Line("created", KeyStates.Time(Created));
        Line("published", KeyStates.Time(Published));
        Line("active", KeyStates.Time(Activated));
        Line("retired", KeyStates.Time(Retired));
        Line("removed", KeyStates.Time(Removed));
        Line("rollover", KeyStates.ToText(Rollover));
        Line("successor", Successor?.ToString(CultureInfo.InvariantCulture) ?? "-");
        Line("predecessor", Predecessor?.ToString(CultureInfo.InvariantCulture) ?? "-");
        Line("zone-max-ttl", ZoneMaxTtl.ToString(CultureInfo.InvariantCulture));
        Line("adopted", Adopted ? "yes" : "no");
        if (Timings.Length > 0) Line("policy", Timings);
        return sb.ToString();
    }

    /// <summary>Reads the .state file into this key; FormatException names the file and the line.</summary>
    public void Parse(string path, string text)
    {
        var lines = text.Split('\n');
        if (lines.Length == 0 || !lines[0].StartsWith(Header, StringComparison.Ordinal))
            throw new FormatException($"{path}: not a Portcullis key state file (BIND's dnssec-policy writes .state files too: move it away to have the key adopted)");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 1; i < lines.Length; i++)
        {
            string line = lines[i].Trim();
            if (line.Length == 0 || line[0] == ';') continue;
            int colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0) throw new FormatException($"{path}:{i + 1}: expected 'name: value'");
            string name = line[..colon].Trim(), value = line[(colon + 1)..].Trim();
            FormatException Bad() => new($"{path}:{i + 1}: {name}: '{value}' is not valid");
            seen.Add(name);
            switch (name)
            {
                case "zone": break;
                case "tag":
                    if (!ushort.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out ushort tag) || tag != Tag)
                        throw new FormatException($"{path}:{i + 1}: tag {value} is not the key's tag {Tag}");
                    break;
                case "algorithm":
                    if (!byte.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out byte alg) || alg != (byte)Algorithm)
                        throw new FormatException($"{path}:{i + 1}: algorithm {value} is not the key's algorithm {(byte)Algorithm}");
                    break;
                case "role": Role = KeyStates.TryParseRole(value, out var role) ? role : throw Bad(); break;
                case "state": State = KeyStates.TryParseState(value, out var state) ? state : throw Bad(); break;
                case "state-since": StateSince = Time(value) ?? throw Bad(); break;
                case "ds": Ds = KeyStates.TryParseDs(value, out var ds) ? ds : throw Bad(); break;
                case "ds-since": DsSince = Time(value); break;
                case "created": Created = Time(value) ?? throw Bad(); break;
                case "published": Published = Time(value); break;
                case "active": Activated = Time(value); break;
                case "retired": Retired = Time(value); break;
                case "removed": Removed = Time(value); break;
                case "rollover": Rollover = KeyStates.TryParseRollover(value, out var kind) ? kind : throw Bad(); break;
                case "successor": Successor = Tag16(value); break;
                case "predecessor": Predecessor = Tag16(value); break;
                case "zone-max-ttl":
                    ZoneMaxTtl = uint.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out uint ttl) ? ttl : throw Bad();
                    break;
                case "adopted": Adopted = value == "yes"; break;
                case "policy": Timings = value; break;
                default: throw new FormatException($"{path}:{i + 1}: unknown field '{name}'");
            }

            DateTimeOffset? Time(string v)
            {
                if (v == "-") return null;
                if (DateTimeOffset.TryParseExact(v, "yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture,
                        DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t)) return t;
                throw Bad();
            }
            ushort? Tag16(string v) => v == "-" ? null
                : ushort.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out ushort t) ? t : throw Bad();
        }
        foreach (string required in (string[])["role", "state", "state-since", "ds", "created"])
            if (!seen.Contains(required)) throw new FormatException($"{path}: no '{required}' line");
    }

    /// <summary>Reads the .state file again.</summary>
    public void Reload()
    {
        var stamp = File.GetLastWriteTimeUtc(StatePath);
        Parse(StatePath, File.ReadAllText(StatePath));
        FileStamp = stamp;
    }

    /// <summary>Temp file, flush to the disk, rename over: a crash leaves the old state or the new, never half of one.</summary>
    public void Save(string zone)
    {
        string temp = StatePath + ".tmp";
        using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            byte[] bytes = new UTF8Encoding(false).GetBytes(Format(zone));
            stream.Write(bytes);
            stream.Flush(flushToDisk: true);
        }
        File.Move(temp, StatePath, overwrite: true);
        FileStamp = File.GetLastWriteTimeUtc(StatePath);
        Dirty = false;
    }
}
