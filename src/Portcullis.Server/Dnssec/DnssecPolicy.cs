using Portcullis.Protocol.Dnssec;

namespace Portcullis.Server.Dnssec;

/// <summary>TEMPORARY stub (replaced by the key-management work): how a zone is signed and its keys rolled.</summary>
public sealed record DnssecPolicy
{
    public DnssecAlgorithm Algorithm { get; init; } = DnssecAlgorithm.EcdsaP256Sha256;
    public bool CombinedKey { get; init; }
    public TimeSpan? KskLifetime { get; init; }
    public TimeSpan? ZskLifetime { get; init; } = TimeSpan.FromDays(30);
    public uint DnskeyTtl { get; init; } = 3600;
    public TimeSpan PropagationDelay { get; init; } = TimeSpan.FromHours(1);
    public TimeSpan ParentDsTtl { get; init; } = TimeSpan.FromDays(1);
    public TimeSpan ParentPropagationDelay { get; init; } = TimeSpan.FromHours(1);
    public TimeSpan SignatureValidity { get; init; } = TimeSpan.FromDays(14);
    public TimeSpan SignatureRefresh { get; init; } = TimeSpan.FromDays(5);
    public TimeSpan SignatureJitter { get; init; } = TimeSpan.FromHours(12);
    public bool Nsec3 { get; init; }
    public ushort Nsec3Iterations { get; init; }
    public int Nsec3SaltLength { get; init; }
    public bool PublishCds { get; init; } = true;
}
