using Portcullis.Protocol.Dnssec;

namespace Portcullis.Server.Dnssec;

/// <summary>
/// How a zone is signed and its keys rolled, with the defaults of Knot's automatic key management
/// (BIND's dnssec-policy "default" is close). The timing fields are the parameters of RFC 7583 §3:
/// they decide every wait of <see cref="ZoneKeys.Plan"/> (see docs/dnssec.md, "Key rollovers").
/// </summary>
public sealed record DnssecPolicy
{
    /// <summary>The algorithm of the keys made; when the active keys have another, an algorithm rollover starts (RFC 6781 §4.1.4).</summary>
    public DnssecAlgorithm Algorithm { get; init; } = DnssecAlgorithm.EcdsaP256Sha256;
    /// <summary>One combined signing key (CSK, flags 257) instead of a KSK and a ZSK (Knot's single-type-signing).</summary>
    public bool CombinedKey { get; init; }
    /// <summary>From a KSK's (or CSK's) activation to the start of its rollover; null: only when asked (RollNow). Knot's default is never.</summary>
    public TimeSpan? KskLifetime { get; init; }
    /// <summary>From a ZSK's activation to the start of its rollover; null: only when asked. Knot's default is 30 days.</summary>
    public TimeSpan? ZskLifetime { get; init; } = TimeSpan.FromDays(30);
    /// <summary>TTL of the DNSKEY, CDS and CDNSKEY RRsets, seconds (RFC 7583: TTLkey).</summary>
    public uint DnskeyTtl { get; init; } = 3600;
    /// <summary>How long a change at the primary takes to reach every secondary (RFC 7583: Dprp).</summary>
    public TimeSpan PropagationDelay { get; init; } = TimeSpan.FromHours(1);
    /// <summary>TTL of the DS RRset at the parent (RFC 7583: TTLds); many TLDs use one day.</summary>
    public TimeSpan ParentDsTtl { get; init; } = TimeSpan.FromDays(1);
    /// <summary>How long a DS change takes to reach all the parent's servers (RFC 7583: DprpP).</summary>
    public TimeSpan ParentPropagationDelay { get; init; } = TimeSpan.FromHours(1);
    /// <summary>Signature validity (RFC 6781 §4.4.2).</summary>
    public TimeSpan SignatureValidity { get; init; } = TimeSpan.FromDays(14);
    /// <summary>A signature is re-made when it would expire within this time.</summary>
    public TimeSpan SignatureRefresh { get; init; } = TimeSpan.FromDays(5);
    /// <summary>Expirations are spread over this much so that re-signing comes in small batches.</summary>
    public TimeSpan SignatureJitter { get; init; } = TimeSpan.FromHours(12);
    /// <summary>NSEC3 (RFC 5155) instead of NSEC.</summary>
    public bool Nsec3 { get; init; }
    /// <summary>RFC 9276 §3.1: additional iterations SHOULD be 0.</summary>
    public ushort Nsec3Iterations { get; init; }
    /// <summary>RFC 9276 §3.1: the salt SHOULD be empty.</summary>
    public int Nsec3SaltLength { get; init; }
    /// <summary>Publish CDS (SHA-256) and CDNSKEY for the keys whose DS the parent should hold (RFC 7344, RFC 8078).</summary>
    public bool PublishCds { get; init; } = true;
    /// <summary>Keep a ZONEMD (RFC 8976, SIMPLE, SHA-384) at the apex, recomputed with every new version.</summary>
    public bool Zonemd { get; init; }
}
