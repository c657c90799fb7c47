using System.Diagnostics.CodeAnalysis;
using Portcullis.Protocol.Names;

namespace Portcullis.Server.Authoritative;

/// <summary>
/// Compares names without regard to case and lets a dictionary keyed by <see cref="DnsName"/> be
/// probed with the wire bytes of a query name, so lookups on the query path allocate nothing.
/// </summary>
public sealed class NameKeyComparer : IEqualityComparer<DnsName>, IAlternateEqualityComparer<ReadOnlySpan<byte>, DnsName>
{
    public static readonly NameKeyComparer Instance = new();

    public bool Equals(DnsName? x, DnsName? y) => x is null ? y is null : x.Equals(y);
    public int GetHashCode([DisallowNull] DnsName obj) => obj.GetHashCode();
    public bool Equals(ReadOnlySpan<byte> alternate, DnsName other) => DnsName.EqualsIgnoreCase(alternate, other.Wire);
    public int GetHashCode(ReadOnlySpan<byte> alternate) => DnsName.HashWire(alternate);
    public DnsName Create(ReadOnlySpan<byte> alternate) => DnsName.FromWire(alternate);
}
