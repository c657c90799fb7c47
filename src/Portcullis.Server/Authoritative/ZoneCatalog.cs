using System.Collections.Frozen;
using Portcullis.Protocol.Names;

namespace Portcullis.Server.Authoritative;

/// <summary>
/// The zones served, as one immutable snapshot. A reload builds a new catalog and swaps the
/// reference; a query holds the snapshot it started with, so no query sees half a reload.
/// </summary>
public sealed class ZoneCatalog
{
    public static readonly ZoneCatalog Empty = new([]);

    private readonly FrozenDictionary<DnsName, Zone> _zones;
    private readonly FrozenDictionary<DnsName, Zone>.AlternateLookup<ReadOnlySpan<byte>> _lookup;

    public ZoneCatalog(IEnumerable<Zone> zones)
    {
        _zones = zones.ToFrozenDictionary(z => z.Origin, NameKeyComparer.Instance);
        _lookup = _zones.GetAlternateLookup<ReadOnlySpan<byte>>();
    }

    public int Count => _zones.Count;

    public IEnumerable<Zone> Zones => _zones.Values;

    public Zone? Get(DnsName origin) => _zones.GetValueOrDefault(origin);

    /// <summary>
    /// The zone with the longest origin that is <paramref name="name"/> or an ancestor of it. For DS,
    /// which lives on the parent side of a cut (RFC 4035 §3.1.4.1), a zone whose apex is the name
    /// itself is passed over when a parent zone is served too.
    /// </summary>
    public Zone? FindZone(ReadOnlySpan<byte> name, bool forDs = false)
    {
        if (_zones.Count == 0) return null;
        int pos = 0;
        if (forDs && name[0] != 0 && _lookup.TryGetValue(name, out var apexZone))
        {
            var parent = FindZone(name[(1 + name[0])..]);
            return parent ?? apexZone;
        }
        while (true)
        {
            if (_lookup.TryGetValue(name[pos..], out var zone)) return zone;
            int len = name[pos];
            if (len == 0) return null;
            pos += 1 + len;
        }
    }
}
