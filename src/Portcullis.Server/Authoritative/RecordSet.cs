using System.Buffers.Binary;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;

namespace Portcullis.Server.Authoritative;

/// <summary>
/// An RRset as served: owner, type, class, one TTL (RFC 2181 §5.2) and the uncompressed RDATA of
/// its records packed into one array (each record as a 16-bit length and its octets), so an RRset
/// is two objects however many records it has. Built once at zone load; read-only afterwards, so
/// readers never lock.
/// </summary>
public sealed class RecordSet
{
    private readonly byte[] _packed;

    public RecordSet(DnsName owner, RecordType type, RecordClass @class, uint ttl, IReadOnlyList<byte[]> data)
        : this(owner, type, @class, ttl, Pack(data), data.Count) { }

    private RecordSet(DnsName owner, RecordType type, RecordClass @class, uint ttl, byte[] packed, int count)
    {
        Owner = owner;
        Type = type;
        Class = @class;
        Ttl = ttl;
        _packed = packed;
        Count = count;
    }

    public DnsName Owner { get; }
    public RecordType Type { get; }
    public RecordClass Class { get; }
    public uint Ttl { get; }
    public int Count { get; }

    /// <summary>The same records with another TTL (the SOA of negative answers, RFC 2308 §3).</summary>
    public RecordSet WithTtl(uint ttl) => new(Owner, Type, Class, ttl, _packed, Count);

    /// <summary>
    /// Address RRsets (A, AAAA) of the names this RRset points at (NS, MX, SRV targets), found at
    /// load so that additional-section processing is a walk over a list.
    /// </summary>
    public RecordSet[] Additional { get; internal set; } = [];

    /// <summary>The RDATA of the first record (the one record of a CNAME, DNAME or SOA).</summary>
    public ReadOnlySpan<byte> First => _packed.AsSpan(2, BinaryPrimitives.ReadUInt16BigEndian(_packed));

    /// <summary>The RDATA of each record, without allocating: <c>foreach (var rdata in set.Rdata)</c>.</summary>
    public RdataEnumerator Rdata => new(_packed);

    public IEnumerable<ResourceRecord> ToRecords()
    {
        var list = new List<ResourceRecord>(Count);
        foreach (var d in Rdata) list.Add(new ResourceRecord(Owner, Type, Class, Ttl, d.ToArray()));
        return list;
    }

    private static byte[] Pack(IReadOnlyList<byte[]> data)
    {
        int size = 0;
        foreach (var d in data) size += 2 + d.Length;
        var packed = new byte[size];
        int pos = 0;
        foreach (var d in data)
        {
            BinaryPrimitives.WriteUInt16BigEndian(packed.AsSpan(pos), (ushort)d.Length);
            d.CopyTo(packed, pos + 2);
            pos += 2 + d.Length;
        }
        return packed;
    }

    public ref struct RdataEnumerator
    {
        private readonly ReadOnlySpan<byte> _packed;
        private int _next;

        internal RdataEnumerator(ReadOnlySpan<byte> packed)
        {
            _packed = packed;
            _next = 0;
            Current = default;
        }

        public ReadOnlySpan<byte> Current { get; private set; }

        public readonly RdataEnumerator GetEnumerator() => this;

        public bool MoveNext()
        {
            if (_next >= _packed.Length) return false;
            int length = BinaryPrimitives.ReadUInt16BigEndian(_packed[_next..]);
            Current = _packed.Slice(_next + 2, length);
            _next += 2 + length;
            return true;
        }
    }
}
