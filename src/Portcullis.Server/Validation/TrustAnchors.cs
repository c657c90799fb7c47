using Portcullis.Protocol.Dnssec;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.ZoneText;
using Portcullis.Server.Configuration;

namespace Portcullis.Server.Validation;

/// <summary>
/// The trust anchors a validator starts from (RFC 4033 §5, RFC 4035 §4.4): DS or DNSKEY records per
/// zone, read from zone-file lines as Unbound's trust-anchor-file and Debian's dns-root-data
/// (/usr/share/dns/root.key) hold them. Without a file, the root's KSK-2017 and KSK-2024 DS records
/// as IANA publishes them (root-anchors.xml) are built in, as BIND builds them in. Negative trust
/// anchors (RFC 7646) name zones below which validation is off.
/// </summary>
public sealed class TrustAnchors
{
    /// <summary>Debian's dns-root-data: the root's DNSKEY trust anchors.</summary>
    public const string DebianRootKey = "/usr/share/dns/root.key";

    /// <summary>IANA's root DS records (KSK-2017 tag 20326, KSK-2024 tag 38696; RSASHA256, SHA-256).</summary>
    public const string IanaRootDs = """
        . IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D
        . IN DS 38696 8 2 683D2D0ACB8C9B712A1948B27F741219298D0A450D612C483AF444A4C0FB2B16
        """;

    private readonly Dictionary<DnsName, (List<ResourceRecord> Ds, List<ResourceRecord> Keys)> _anchors;
    private readonly HashSet<DnsName> _negative;

    private TrustAnchors(Dictionary<DnsName, (List<ResourceRecord>, List<ResourceRecord>)> anchors, IEnumerable<DnsName> negative, string source)
    {
        _anchors = anchors;
        _negative = [.. negative];
        Source = source;
    }

    /// <summary>Where the anchors came from (a file, or "built-in").</summary>
    public string Source { get; }

    public IEnumerable<DnsName> Zones => _anchors.Keys;
    public IReadOnlyCollection<DnsName> NegativeAnchors => _negative;

    /// <summary>The anchor's DS records and DNSKEY records for <paramref name="zone"/> (both empty when it has none).</summary>
    public (IReadOnlyList<ResourceRecord> Ds, IReadOnlyList<ResourceRecord> Keys) For(DnsName zone) =>
        _anchors.TryGetValue(zone, out var a) ? (a.Ds, a.Keys) : ([], []);

    /// <summary>The closest anchored zone at or above <paramref name="name"/>, or null when none is (the name is then insecure).</summary>
    public DnsName? ClosestAnchor(DnsName name)
    {
        for (var n = name; ; n = n.Parent())
        {
            if (_anchors.ContainsKey(n)) return n;
            if (n.IsRoot) return null;
        }
    }

    /// <summary>Whether a negative trust anchor covers the name (RFC 7646: treat as insecure, do not validate).</summary>
    public bool IsNegative(DnsName name)
    {
        for (var n = name; ; n = n.Parent())
        {
            if (_negative.Contains(n)) return true;
            if (n.IsRoot) return false;
        }
    }

    /// <summary>
    /// The anchors of <paramref name="files"/> (zone-file text with DS and DNSKEY records, other
    /// types ignored as Unbound ignores them); none given: Debian's root.key when installed, else the
    /// built-in IANA DS records. A problem names the file and line.
    /// </summary>
    public static TrustAnchors Load(IReadOnlyList<string> files, IEnumerable<string>? negative = null, string defaultFile = DebianRootKey)
    {
        var anchors = new Dictionary<DnsName, (List<ResourceRecord>, List<ResourceRecord>)>();
        string source;
        if (files.Count == 0 && File.Exists(defaultFile)) files = [defaultFile];
        if (files.Count == 0)
        {
            Add(anchors, Read(new StringReader(IanaRootDs), "built-in root anchors"));
            source = "built-in (IANA root DS 20326, 38696)";
        }
        else
        {
            foreach (var f in files)
            {
                TextReader text;
                try { text = new StreamReader(f); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    throw new ConfigException($"{f}: cannot read the trust anchors: {e.Message}");
                }
                using (text)
                {
                    int added = Add(anchors, Read(text, f));
                    if (added == 0) throw new ConfigException($"{f}: no DS or DNSKEY records: not a trust anchor file");
                }
            }
            source = string.Join(", ", files);
        }
        var nta = new List<DnsName>();
        foreach (var n in negative ?? [])
        {
            try { nta.Add(ServerConfig.AbsoluteName(n)); }
            catch (FormatException e) { throw new ConfigException($"negative-trust-anchors: '{n}': {e.Message}", n); }
        }
        return new TrustAnchors(anchors, nta, source);
    }

    /// <summary>
    /// Anchors built in code from DS and DNSKEY <paramref name="records"/> (other types ignored, revoked
    /// keys ignored) and negative anchors; <paramref name="source"/> says where they came from.
    /// </summary>
    public static TrustAnchors From(IEnumerable<ResourceRecord> records, IEnumerable<DnsName>? negative = null, string source = "in code")
    {
        var anchors = new Dictionary<DnsName, (List<ResourceRecord>, List<ResourceRecord>)>();
        Add(anchors, [.. records]);
        return new TrustAnchors(anchors, negative ?? [], source);
    }

    /// <summary>
    /// These anchors with those of <paramref name="zone"/> replaced by <paramref name="records"/> (its DS
    /// and DNSKEY records; other zones and the negative anchors kept). No usable record for the zone
    /// removes its trust point: RFC 5011 §5, a trust point whose keys are all revoked is treated as if it
    /// had never been configured (names below it are then insecure unless a higher anchor covers them).
    /// </summary>
    public TrustAnchors With(DnsName zone, IEnumerable<ResourceRecord> records, string source)
    {
        var owner = zone.ToLowerInvariant();
        var anchors = new Dictionary<DnsName, (List<ResourceRecord>, List<ResourceRecord>)>();
        foreach (var (z, a) in _anchors)
            if (!z.Equals(owner)) anchors[z] = a;
        var mine = new List<ResourceRecord>();
        foreach (var r in records)
            if (r.Owner.ToLowerInvariant().Equals(owner)) mine.Add(r);
        Add(anchors, mine);
        return new TrustAnchors(anchors, _negative, source);
    }

    /// <summary>No anchors at all, no negative anchors.</summary>
    public static TrustAnchors None { get; } = From([], null, "none");

    private static List<ResourceRecord> Read(TextReader text, string name)
    {
        try
        {
            using var reader = new ZoneReader(text, DnsName.Root, name, new ZoneReaderOptions { DefaultTtl = 3600 });
            return reader.ReadRecords().ToList();
        }
        catch (ZoneFormatException e) { throw new ConfigException(e.Message); }
    }

    private static int Add(Dictionary<DnsName, (List<ResourceRecord> Ds, List<ResourceRecord> Keys)> anchors, List<ResourceRecord> records)
    {
        int added = 0;
        foreach (var r in records)
        {
            if (r.Type is not (RecordType.DS or RecordType.DNSKEY)) continue;
            // A revoked key (RFC 5011 §2.1) anchors nothing.
            if (r.Type == RecordType.DNSKEY && (!DnsKey.IsWellFormed(r.Data) || DnsKey.IsRevoked(r.Data))) continue;
            var owner = r.Owner.ToLowerInvariant();
            if (!anchors.TryGetValue(owner, out var a)) anchors[owner] = a = ([], []);
            (r.Type == RecordType.DS ? a.Ds : a.Keys).Add(r);
            added++;
        }
        return added;
    }
}
