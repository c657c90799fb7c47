using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;

namespace Portcullis.Server.Authoritative;

/// <summary>
/// An RRset as served: owner, type, class, one TTL (RFC 2181 §5.2) and the uncompressed RDATA of
/// each record. Built once at zone load; read-only afterwards, so readers never lock.
/// </summary>
public sealed class RecordSet
{
    public RecordSet(DnsName owner, RecordType type, RecordClass @class, uint ttl, byte[][] data)
    {
        Owner = owner;
        Type = type;
        Class = @class;
        Ttl = ttl;
        Data = data;
    }

    public DnsName Owner { get; }
    public RecordType Type { get; }
    public RecordClass Class { get; }
    public uint Ttl { get; }
    public byte[][] Data { get; }

    /// <summary>
    /// Address RRsets (A, AAAA) of the names this RRset points at (NS, MX, SRV targets), found at
    /// load so that additional-section processing is a walk over a list.
    /// </summary>
    public RecordSet[] Additional { get; internal set; } = [];

    public IEnumerable<ResourceRecord> ToRecords()
    {
        foreach (var d in Data) yield return new ResourceRecord(Owner, Type, Class, Ttl, d);
    }
}
