using System.Text;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.ZoneText;

namespace Portcullis.Server.Tests.Differential;

/// <summary>
/// One zone of the differential test as read from its file with the protocol library: every
/// record, every name (owners and the empty non-terminals above them), the cuts, wildcards and
/// DNAMEs. The queries are generated from it, and the allowed-difference rules check against it
/// that extra data a server gave really is the zone's.
/// </summary>
public sealed class DifferentialZone
{
    public DifferentialZone(string origin, string file)
    {
        Origin = DnsName.Parse(origin.EndsWith('.') ? origin : origin + ".");
        File = file;
        using (var reader = ZoneReader.Open(file, Origin))
            Records = reader.ReadRecords().ToList();
        foreach (var r in Records)
        {
            for (var n = r.Owner; n.LabelCount >= Origin.LabelCount; n = n.Parent())
            {
                Names.Add(n);
                if (n.LabelCount == Origin.LabelCount) break;
            }
            Keys.Add(RecordKey.Of(r));
            if (r.Type == RecordType.NS && !r.Owner.Equals(Origin)) Cuts.Add(r.Owner);
            if (r.Type == RecordType.DNAME) Dnames[r.Owner] = DnsName.FromWire(r.Data);
            if (r.Owner.IsWildcard) Wildcards.Add(r.Owner);
        }
    }

    public DnsName Origin { get; }
    public string File { get; }
    public List<ResourceRecord> Records { get; }

    /// <summary>Owner names and the empty non-terminals between them and the apex.</summary>
    public HashSet<DnsName> Names { get; } = [];

    /// <summary>Delegation points (NS below the apex), nested ones included.</summary>
    public HashSet<DnsName> Cuts { get; } = [];
    public HashSet<DnsName> Wildcards { get; } = [];
    public Dictionary<DnsName, DnsName> Dnames { get; } = [];

    /// <summary>Every record as (owner without case, type, class, TTL, canonical RDATA).</summary>
    public HashSet<string> Keys { get; } = [];

    public IEnumerable<RecordType> TypesAt(DnsName name) => Records.Where(r => r.Owner.Equals(name)).Select(r => r.Type).Distinct();

    /// <summary>The apex NS RRset, as a set of record keys.</summary>
    public HashSet<string> ApexNsKeys() => Records.Where(r => r.Type == RecordType.NS && r.Owner.Equals(Origin)).Select(RecordKey.Of).ToHashSet();

    /// <summary>True when the name is at or below a cut of this zone (answered by referral, or occluded).</summary>
    public bool IsAtOrBelowCut(DnsName name) => Cuts.Any(name.IsSubdomainOf);

    /// <summary>The served zone a name belongs to: the one with the longest origin above it.</summary>
    public static DifferentialZone? For(IEnumerable<DifferentialZone> zones, DnsName name) =>
        zones.Where(z => name.IsSubdomainOf(z.Origin)).MaxBy(z => z.Origin.LabelCount);

    /// <summary>
    /// The records of an RRset as the zone defines it at <paramref name="owner"/>: the records
    /// there, or for a name that does not exist those synthesised from the wildcard at its closest
    /// encloser (RFC 4592 §3.3.1).
    /// </summary>
    public List<ResourceRecord> RRset(DnsName owner, RecordType type)
    {
        if (Names.Contains(owner)) return Records.Where(r => r.Owner.Equals(owner) && r.Type == type).ToList();
        var encloser = owner;
        while (!Names.Contains(encloser) && encloser.LabelCount > Origin.LabelCount) encloser = encloser.Parent();
        var wildcard = encloser.Prepend("*"u8);
        return Records.Where(r => r.Owner.Equals(wildcard) && r.Type == type)
            .Select(r => new ResourceRecord(owner, r.Type, r.Class, r.Ttl, r.Data)).ToList();
    }

    /// <summary>True when the name owns a CNAME, as written or synthesised from a wildcard.</summary>
    public bool HasCname(DnsName name) => RRset(name, RecordType.CNAME).Count > 0;

    /// <summary>True when the name is strictly below a DNAME owner of this zone (RFC 6672 §2.3).</summary>
    public bool IsBelowDname(DnsName name) => Dnames.Keys.Any(d => name.LabelCount > d.LabelCount && name.IsSubdomainOf(d));

    /// <summary>True when following CNAMEs from the name inside this zone comes back to a name already passed.</summary>
    public bool IsOnCnameLoop(DnsName name)
    {
        var seen = new HashSet<DnsName>();
        for (var n = name; n.IsSubdomainOf(Origin);)
        {
            if (!seen.Add(n)) return true;
            var cname = RRset(n, RecordType.CNAME);
            if (cname.Count == 0) return false;
            n = DnsName.FromWire(cname[0].Data);
        }
        return false;
    }
}

/// <summary>The identity of a record for set comparison: owner compared without case (RFC 4343), RDATA in canonical form.</summary>
public static class RecordKey
{
    public static string Of(ResourceRecord r)
    {
        var canonical = RdataWire.ToCanonical(r.Type, r.Data);
        return $"{r.Owner.ToLowerInvariant()}|{(ushort)r.Type}|{(ushort)r.Class}|{r.Ttl}|{Convert.ToHexString(canonical)}";
    }

    /// <summary>The RRset a record belongs to: owner without case, type, class.</summary>
    public static string SetOf(ResourceRecord r) => $"{r.Owner.ToLowerInvariant()}|{(ushort)r.Type}|{(ushort)r.Class}";

    public static string Show(ResourceRecord r)
    {
        try
        {
            return r.ToString();
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or Protocol.DnsFormatException)
        {
            var sb = new StringBuilder();
            sb.Append(r.Owner).Append(' ').Append(r.Ttl).Append(' ').Append(RecordTypes.ToText(r.Type)).Append(" \\# ").Append(Convert.ToHexString(r.Data));
            return sb.ToString();
        }
    }
}
