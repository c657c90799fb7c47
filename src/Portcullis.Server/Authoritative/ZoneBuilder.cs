using System.Collections.Frozen;
using Portcullis.Protocol;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;

namespace Portcullis.Server.Authoritative;

/// <summary>A problem found while building a zone: errors stop the zone from loading, warnings do not.</summary>
public sealed record ZoneIssue(bool IsError, DnsName? Owner, string Message)
{
    public override string ToString() => Owner is null ? Message : $"{Owner}: {Message}";
}

/// <summary>
/// Collects a zone's records and checks them as named-checkzone and kzonecheck do: one SOA at the
/// apex, NS at the apex, no data outside the zone, CNAME exclusivity, and glue for in-bailiwick
/// name servers of delegations (warned when missing).
/// </summary>
public sealed class ZoneBuilder
{
    private readonly DnsName _origin;
    private readonly RecordClass _class;
    private readonly Dictionary<DnsName, Dictionary<RecordType, Pending>> _names = new();
    private readonly List<ZoneIssue> _issues = [];
    private int _records;

    private sealed class Pending(DnsName owner, uint ttl)
    {
        public DnsName Owner = owner;
        public uint Ttl = ttl;
        public readonly List<byte[]> Data = [];
    }

    public ZoneBuilder(DnsName origin, RecordClass @class = RecordClass.IN)
    {
        _origin = origin;
        _class = @class;
    }

    public IReadOnlyList<ZoneIssue> Issues => _issues;

    public void Add(ResourceRecord record)
    {
        if (!record.Owner.IsSubdomainOf(_origin))
        {
            _issues.Add(new ZoneIssue(true, record.Owner, $"out-of-zone data: {RecordTypes.ToText(record.Type)} is not at or below {_origin}"));
            return;
        }
        if (record.Class != _class)
        {
            _issues.Add(new ZoneIssue(true, record.Owner, $"class {RecordClasses.ToText(record.Class)} does not match the zone's class {RecordClasses.ToText(_class)}"));
            return;
        }
        if (RecordTypes.IsMetaType(record.Type))
        {
            _issues.Add(new ZoneIssue(true, record.Owner, $"meta-type {RecordTypes.ToText(record.Type)} cannot be zone data"));
            return;
        }
        if (!_names.TryGetValue(record.Owner, out var types))
            _names[record.Owner] = types = new Dictionary<RecordType, Pending>();
        if (!types.TryGetValue(record.Type, out var pending))
            types[record.Type] = pending = new Pending(record.Owner, record.Ttl);
        else if (pending.Ttl != record.Ttl)
        {
            // RFC 2181 §5.2: all TTLs of an RRset must match; serve the lowest, as a warning.
            _issues.Add(new ZoneIssue(false, record.Owner, $"TTLs differ within the {RecordTypes.ToText(record.Type)} RRset; using {Math.Min(pending.Ttl, record.Ttl)}"));
            pending.Ttl = Math.Min(pending.Ttl, record.Ttl);
        }
        foreach (var existing in pending.Data)
            if (RdataWire.CanonicalEquals(record.Type, existing, record.Data)) return;   // RFC 2181 §5: duplicates collapse
        pending.Data.Add(record.Data);
        _records++;
    }

    /// <summary>Builds the zone, or returns null when an error was found (see <see cref="Issues"/>).</summary>
    public Zone? Build()
    {
        if (!_names.TryGetValue(_origin, out var apexTypes) || !apexTypes.TryGetValue(RecordType.SOA, out var soaPending))
        {
            _issues.Add(new ZoneIssue(true, _origin, "no SOA record at the zone apex"));
            return null;
        }
        if (soaPending.Data.Count != 1)
            _issues.Add(new ZoneIssue(true, _origin, "more than one SOA record at the zone apex"));
        if (!apexTypes.ContainsKey(RecordType.NS))
            _issues.Add(new ZoneIssue(true, _origin, "no NS records at the zone apex"));
        foreach (var (name, types) in _names)
        {
            if (types.ContainsKey(RecordType.SOA) && !name.Equals(_origin))
                _issues.Add(new ZoneIssue(true, name, "SOA record not at the zone apex"));
            if (types.ContainsKey(RecordType.CNAME))
            {
                if (name.Equals(_origin))
                    _issues.Add(new ZoneIssue(true, name, "CNAME at the zone apex"));
                foreach (var t in types.Keys)
                    if (t is not (RecordType.CNAME or RecordType.RRSIG or RecordType.NSEC))
                    {
                        _issues.Add(new ZoneIssue(true, name, $"CNAME and other data ({RecordTypes.ToText(t)}) at the same name"));
                        break;
                    }
                if (types[RecordType.CNAME].Data.Count > 1)
                    _issues.Add(new ZoneIssue(true, name, "more than one CNAME record at one name"));
            }
            if (types.TryGetValue(RecordType.DNAME, out var dname) && dname.Data.Count > 1)
                _issues.Add(new ZoneIssue(true, name, "more than one DNAME record at one name"));
        }
        if (_issues.Any(i => i.IsError)) return null;

        // Materialise nodes, including empty non-terminals between every name and the apex.
        var sets = new Dictionary<DnsName, ZoneNode>();
        foreach (var (name, types) in _names)
        {
            var arr = types.Select(kv => new RecordSet(kv.Value.Owner, kv.Key, _class, kv.Value.Ttl, kv.Value.Data.ToArray())).ToArray();
            sets[name] = new ZoneNode(name, arr, NodeFlags.None);
        }
        foreach (var name in _names.Keys)
        {
            for (var n = name; n.LabelCount > _origin.LabelCount;)
            {
                n = n.Parent();
                if (sets.ContainsKey(n)) continue;
                sets[n] = new ZoneNode(n, [], NodeFlags.EmptyNonTerminal);
            }
        }
        // Flags: apex, cuts, CNAME/DNAME, and everything below a cut or a DNAME is occluded.
        foreach (var node in sets.Values)
        {
            var f = node.Flags;
            if (node.Name.Equals(_origin)) f |= NodeFlags.Apex;
            else if (node.Get(RecordType.NS) is not null) f |= NodeFlags.Delegation;
            if (node.Get(RecordType.CNAME) is not null) f |= NodeFlags.Cname;
            if (node.Get(RecordType.DNAME) is not null) f |= NodeFlags.Dname;
            node.Flags = f;
        }
        foreach (var node in sets.Values)
        {
            for (var n = node.Name; n.LabelCount > _origin.LabelCount;)
            {
                n = n.Parent();
                var ancestor = sets[n];
                if (ancestor.Has(NodeFlags.Delegation) || ancestor.Has(NodeFlags.Dname))
                {
                    node.Flags |= NodeFlags.BelowCut;
                    break;
                }
            }
        }
        // Additional-section targets, and missing glue.
        foreach (var node in sets.Values)
        {
            foreach (var set in node.Sets)
            {
                if (set.Type is not (RecordType.NS or RecordType.MX or RecordType.SRV)) continue;
                bool referral = set.Type == RecordType.NS && node.Has(NodeFlags.Delegation);
                var extra = new List<RecordSet>();
                foreach (var data in set.Data)
                {
                    var target = TargetOf(set.Type, data);
                    if (target is null || !sets.TryGetValue(target, out var targetNode)) 
                    {
                        if (referral && target is not null && target.IsSubdomainOf(node.Name))
                            _issues.Add(new ZoneIssue(false, node.Name, $"missing glue: no address for name server {target}"));
                        continue;
                    }
                    // Glue below a cut is only given with the referral it belongs to.
                    if (targetNode.Has(NodeFlags.BelowCut) && !(referral && target.IsSubdomainOf(node.Name))) continue;
                    int before = extra.Count;
                    foreach (var t in new[] { RecordType.A, RecordType.AAAA })
                        if (targetNode.Get(t) is { } addr && !extra.Contains(addr)) extra.Add(addr);
                    if (referral && extra.Count == before && target.IsSubdomainOf(node.Name))
                        _issues.Add(new ZoneIssue(false, node.Name, $"missing glue: no address for name server {target}"));
                }
                set.Additional = extra.ToArray();
            }
        }
        var frozen = sets.ToFrozenDictionary(NameKeyComparer.Instance);
        return new Zone(_origin, _class, frozen, frozen[_origin].Get(RecordType.SOA)!, _records);
    }

    /// <summary>The host name an NS, MX or SRV record points at.</summary>
    private static DnsName? TargetOf(RecordType type, byte[] data)
    {
        int offset = type switch { RecordType.NS => 0, RecordType.MX => 2, RecordType.SRV => 6, _ => -1 };
        if (offset < 0 || data.Length <= offset) return null;
        try { return DnsName.FromWire(data.AsSpan(offset)); }
        catch (DnsFormatException) { return null; }
    }
}
