using System.Buffers.Binary;
using System.Collections.Frozen;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;

namespace Portcullis.Server.Authoritative;

/// <summary>
/// One authoritative zone, immutable once built: its nodes in a frozen table probed by wire name,
/// with everything that can be worked out at load (cuts, empty non-terminals, additional-section
/// targets) worked out then. A reload builds a new Zone and swaps it in.
/// </summary>
public sealed class Zone
{
    private readonly FrozenDictionary<DnsName, ZoneNode> _nodes;
    private readonly FrozenDictionary<DnsName, ZoneNode>.AlternateLookup<ReadOnlySpan<byte>> _lookup;

    internal Zone(DnsName origin, RecordClass @class, FrozenDictionary<DnsName, ZoneNode> nodes, RecordSet soa, int recordCount)
    {
        Origin = origin;
        Class = @class;
        _nodes = nodes;
        _lookup = nodes.GetAlternateLookup<ReadOnlySpan<byte>>();
        Soa = soa;
        RecordCount = recordCount;
        Apex = nodes[origin];
        var soaData = soa.First;
        int p = 0;
        for (int i = 0; i < 2; i++) { DnsName.TryMeasureWire(soaData[p..], out int len, out _); p += len; }
        Serial = BinaryPrimitives.ReadUInt32BigEndian(soaData[p..]);
        uint minimum = BinaryPrimitives.ReadUInt32BigEndian(soaData[(p + 16)..]);
        // RFC 2308 §3: the TTL of the SOA in a negative answer is min(SOA TTL, SOA MINIMUM).
        NegativeSoa = soa.WithTtl(Math.Min(soa.Ttl, minimum));
    }

    public DnsName Origin { get; }
    public RecordClass Class { get; }
    public ZoneNode Apex { get; }
    public RecordSet Soa { get; }
    /// <summary>The SOA as it goes into the authority section of negative answers.</summary>
    public RecordSet NegativeSoa { get; }
    public uint Serial { get; }
    public int RecordCount { get; }
    public int NodeCount => _nodes.Count;

    public ZoneNode? Find(ReadOnlySpan<byte> wireName) => _lookup.TryGetValue(wireName, out var node) ? node : null;

    public ZoneNode? Find(DnsName name) => _nodes.GetValueOrDefault(name);

    public IEnumerable<ZoneNode> Nodes => _nodes.Values;

    /// <summary>Every record, in canonical order (for AXFR and printing).</summary>
    public IEnumerable<ResourceRecord> Records()
    {
        var names = _nodes.Keys.ToArray();
        Array.Sort(names);
        foreach (var n in names)
            foreach (var set in _nodes[n].Sets)
                foreach (var r in set.ToRecords()) yield return r;
    }
}
