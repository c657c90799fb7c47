using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;

namespace Portcullis.Server.Authoritative;

[Flags]
public enum NodeFlags : byte
{
    None = 0,
    Apex = 1,
    /// <summary>NS at a name other than the apex: a zone cut (RFC 1034 §4.2.1).</summary>
    Delegation = 2,
    Cname = 4,
    Dname = 8,
    /// <summary>Below a zone cut: glue or occluded data, never answered authoritatively.</summary>
    BelowCut = 16,
    /// <summary>Exists only because names exist below it (RFC 4592 §2.2.2); it has no RRsets.</summary>
    EmptyNonTerminal = 32,
}

/// <summary>One owner name in a zone with its RRsets (a handful, so a linear scan beats hashing).</summary>
public sealed class ZoneNode
{
    internal ZoneNode(DnsName name, RecordSet[] sets, NodeFlags flags)
    {
        Name = name;
        Sets = sets;
        Flags = flags;
    }

    public DnsName Name { get; }
    public RecordSet[] Sets { get; }
    public NodeFlags Flags { get; internal set; }

    public bool Has(NodeFlags flag) => (Flags & flag) != 0;

    public RecordSet? Get(RecordType type)
    {
        var sets = Sets;
        for (int i = 0; i < sets.Length; i++)
            if (sets[i].Type == type) return sets[i];
        return null;
    }
}
