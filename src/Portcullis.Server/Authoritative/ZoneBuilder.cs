using System.Collections.Frozen;
using Portcullis.Protocol;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;

namespace Portcullis.Server.Authoritative;

/// <summary>
/// Turns a zone's records into the served structure. The records must already have passed
/// <see cref="Portcullis.Protocol.ZoneText.ZoneChecker"/> (one SOA at the apex, NS at the apex, no
/// out-of-zone data, CNAME exclusivity), which reports problems with their file positions; this
/// only groups RRsets, materialises empty non-terminals, flags cuts and finds additional targets.
/// </summary>
public sealed class ZoneBuilder
{
    private readonly DnsName _origin;
    private readonly RecordClass _class;
    private readonly Dictionary<DnsName, Dictionary<RecordType, Pending>> _names = new();
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

    public void Add(ResourceRecord record)
    {
        if (!record.Owner.IsSubdomainOf(_origin) || record.Class != _class)
            throw new ArgumentException($"{record.Owner} {RecordTypes.ToText(record.Type)} does not belong in zone {_origin}", nameof(record));
        if (!_names.TryGetValue(record.Owner, out var types))
            _names[record.Owner] = types = new Dictionary<RecordType, Pending>();
        if (!types.TryGetValue(record.Type, out var pending))
            types[record.Type] = pending = new Pending(record.Owner, record.Ttl);
        else if (pending.Ttl != record.Ttl)
            pending.Ttl = Math.Min(pending.Ttl, record.Ttl);   // RFC 2181 §5.2: one TTL per RRset
        foreach (var existing in pending.Data)
            if (RdataWire.CanonicalEquals(record.Type, existing, record.Data)) return;   // RFC 2181 §5: duplicates collapse
        pending.Data.Add(record.Data);
        _records++;
    }

    /// <summary>Builds the zone; the apex must have its SOA.</summary>
    public Zone Build()
    {
        if (!_names.TryGetValue(_origin, out var apexTypes) || !apexTypes.ContainsKey(RecordType.SOA))
            throw new InvalidOperationException($"zone {_origin} has no SOA at its apex");

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
                    if (target is null || !sets.TryGetValue(target, out var targetNode)) continue;
                    // Glue below a cut is only given with the referral it belongs to.
                    if (targetNode.Has(NodeFlags.BelowCut) && !(referral && target.IsSubdomainOf(node.Name))) continue;
                    foreach (var t in new[] { RecordType.A, RecordType.AAAA })
                        if (targetNode.Get(t) is { } addr && !extra.Contains(addr)) extra.Add(addr);
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
