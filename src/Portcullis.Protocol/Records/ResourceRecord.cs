using Portcullis.Protocol.Names;

namespace Portcullis.Protocol.Records;

/// <summary>
/// One resource record. RDATA is held in uncompressed wire form (names expanded, case kept), as
/// Knot and NSD keep it: answers copy it out, DNSSEC canonicalises it, presentation is derived.
/// </summary>
public sealed class ResourceRecord : IEquatable<ResourceRecord>
{
    public ResourceRecord(DnsName owner, RecordType type, RecordClass @class, uint ttl, byte[] data)
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
    /// <summary>Uncompressed RDATA.</summary>
    public byte[] Data { get; }

    public ResourceRecord WithTtl(uint ttl) => new(Owner, Type, Class, ttl, Data);

    /// <summary>Same owner (ignoring case), type, class and RDATA (names in RDATA compared ignoring case); TTL is not compared.</summary>
    public bool Equals(ResourceRecord? other) =>
        other is not null && Type == other.Type && Class == other.Class && Owner.Equals(other.Owner)
        && RdataWire.CanonicalEquals(Type, Data, other.Data);

    public override bool Equals(object? obj) => obj is ResourceRecord r && Equals(r);

    public override int GetHashCode() => HashCode.Combine(Owner, Type, Class, Data.Length);

    /// <summary>One line of canonical presentation: absolute owner, TTL, class, type, RDATA.</summary>
    public override string ToString() =>
        $"{Owner} {Ttl} {RecordClasses.ToText(Class)} {RecordTypes.ToText(Type)} {RdataText.Format(Type, Data)}".TrimEnd();
}
