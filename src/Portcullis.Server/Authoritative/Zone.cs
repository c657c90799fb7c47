using System.Buffers.Binary;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.Zones;

namespace Portcullis.Server.Authoritative;

/// <summary>
/// One authoritative zone as served: its <see cref="ZoneData"/> (flat arrays, immutable, with cuts,
/// empty non-terminals and additional-section targets worked out at load) and the SOA facts the
/// answerer needs. A reload builds a new Zone and swaps it in.
/// </summary>
public sealed class Zone
{
    public Zone(ZoneData data)
    {
        Data = data;
        Soa = data.Apex.Exists ? data.Apex.Get(RecordType.SOA) : default;
        if (!Soa.Exists || !data.NegativeSoa.Exists)
            throw new ArgumentException($"zone {data.Origin} has no SOA at its apex", nameof(data));
        var soaData = Soa.First;
        Serial = BinaryPrimitives.ReadUInt32BigEndian(soaData[^20..]);
    }

    public ZoneData Data { get; }
    /// <summary>
    /// A secondary zone that has expired (no primary reached within the SOA expire time) or has not
    /// been transferred yet: queries for it get SERVFAIL (RFC 1035 §4.3.5 — stale data must not be
    /// served as authoritative), as BIND, Knot and NSD answer.
    /// </summary>
    public bool Unavailable { get; init; }
    /// <summary>The zone's journal of changes (dynamic updates, reloads), from which IXFR is answered; null when none.</summary>
    public Replication.ZoneJournal? Journal { get; init; }
    public DnsName Origin => Data.Origin;
    public RecordClass Class => Data.Class;
    public ZoneNode Apex => Data.Apex;
    public RecordSet Soa { get; }
    /// <summary>The SOA as it goes into the authority section of negative answers (RFC 2308 §3).</summary>
    public RecordSet NegativeSoa => Data.NegativeSoa;
    public uint Serial { get; }
    public int RecordCount => Data.RecordCount;
    public int NodeCount => Data.NodeCount;

    /// <summary>The node of this wire name, or a node that does not <see cref="ZoneNode.Exists"/>.</summary>
    public ZoneNode Find(ReadOnlySpan<byte> wireName) => Data.Find(wireName);

    public ZoneNode Find(DnsName name) => Data.Find(name.Wire);

    /// <summary>Every record, in canonical order (for AXFR and printing).</summary>
    public IEnumerable<ResourceRecord> Records() => Data.CanonicalRecords();
}
