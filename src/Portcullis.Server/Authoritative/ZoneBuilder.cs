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
    // Per owner its RRsets in a short list: a handful of types per name, where a dictionary per
    // name would cost more memory than the records.
    private readonly Dictionary<DnsName, List<Pending>> _names = new(NameKeyComparer.Instance);
    private int _records;

    private sealed class Pending(DnsName owner, RecordType type, uint ttl)
    {
        public DnsName Owner = owner;
        public RecordType Type = type;
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
            _names[record.Owner] = types = new List<Pending>(2);
        Pending? pending = null;
        foreach (var p in types) if (p.Type == record.Type) { pending = p; break; }
        if (pending is null)
            types.Add(pending = new Pending(record.Owner, record.Type, record.Ttl));
        else if (pending.Ttl != record.Ttl)
            pending.Ttl = Math.Min(pending.Ttl, record.Ttl);   // RFC 2181 §5.2: one TTL per RRset
        // Duplicates were already dropped by the zone checker (RFC 2181 §5).
        pending.Data.Add(record.Data);
        _records++;
    }

    /// <summary>Builds the zone; the apex must have its SOA.</summary>
    public Zone Build()
    {
        if (!_names.TryGetValue(_origin, out var apexTypes) || !apexTypes.Exists(p => p.Type == RecordType.SOA))
            throw new InvalidOperationException($"zone {_origin} has no SOA at its apex");

        // Materialise nodes, including empty non-terminals between every name and the apex.
        var sets = new Dictionary<DnsName, ZoneNode>(_names.Count, NameKeyComparer.Instance);
        var byWire = sets.GetAlternateLookup<ReadOnlySpan<byte>>();
        foreach (var (name, types) in _names)
        {
            var arr = new RecordSet[types.Count];
            for (int i = 0; i < arr.Length; i++)
                arr[i] = new RecordSet(name, types[i].Type, _class, types[i].Ttl, types[i].Data);   // one owner object per node
            sets[name] = new ZoneNode(name, arr, NodeFlags.None);
        }
        _names.Clear();
        var owners = sets.Keys.ToArray();
        foreach (var name in owners)
        {
            // Walk up by slicing the wire name; stop at the first ancestor already there (its own
            // walk, or the one that made it, covers the rest).
            var wire = name.Wire;
            int labels = name.LabelCount;
            for (int pos = 1 + wire[0]; labels-- > _origin.LabelCount + 1; pos += 1 + wire[pos])
            {
                if (byWire.ContainsKey(wire[pos..])) break;
                var ent = DnsName.FromWire(wire[pos..]);
                sets[ent] = new ZoneNode(ent, [], NodeFlags.EmptyNonTerminal);
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
            var wire = node.Name.Wire;
            int labels = node.Name.LabelCount;
            for (int pos = 1 + wire[0]; labels-- > _origin.LabelCount; pos += 1 + wire[pos])
            {
                var ancestor = byWire[wire[pos..]];
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
                foreach (var data in set.Rdata)
                {
                    var target = TargetOf(set.Type, data);
                    if (target is null || !sets.TryGetValue(target, out var targetNode)) continue;
                    // Glue below a cut is only given with the referral it belongs to.
                    if (targetNode.Has(NodeFlags.BelowCut) && !(referral && target.IsSubdomainOf(node.Name))) continue;
                    if (targetNode.Get(RecordType.A) is { } a && !extra.Contains(a)) extra.Add(a);
                    if (targetNode.Get(RecordType.AAAA) is { } aaaa && !extra.Contains(aaaa)) extra.Add(aaaa);
                }
                set.Additional = extra.ToArray();
            }
        }
        var frozen = sets.ToFrozenDictionary(NameKeyComparer.Instance);
        return new Zone(_origin, _class, frozen, frozen[_origin].Get(RecordType.SOA)!, _records);
    }

    /// <summary>The host name an NS, MX or SRV record points at.</summary>
    private static DnsName? TargetOf(RecordType type, ReadOnlySpan<byte> data)
    {
        int offset = type switch { RecordType.NS => 0, RecordType.MX => 2, RecordType.SRV => 6, _ => -1 };
        if (offset < 0 || data.Length <= offset) return null;
        try { return DnsName.FromWire(data[offset..]); }
        catch (DnsFormatException) { return null; }
    }
}
