using System.Net;
using Portcullis.Protocol.Names;

namespace Portcullis.Server.Resolution;

/// <summary>
/// How the resolver works, from the configuration's recursion: section (the hosting maps it);
/// defaults as Unbound's where it has one.
/// </summary>
public sealed record ResolverOptions
{
    /// <summary>Root servers to prime from (RFC 8109); empty = the built-in IANA root hints.</summary>
    public IReadOnlyList<(DnsName Name, IPAddress Address)> RootHints { get; init; } = [];
    /// <summary>Forwarding (Unbound's forward-zone): names at or below a key go to its servers instead of iterating; "." forwards everything.</summary>
    public IReadOnlyDictionary<DnsName, IReadOnlyList<IPEndPoint>> Forwarders { get; init; } = new Dictionary<DnsName, IReadOnlyList<IPEndPoint>>();
    /// <summary>Upper bound of the cache's memory (approximate bytes of records kept), Unbound's rrset-cache-size + msg-cache-size.</summary>
    public long CacheBytes { get; init; } = 64L << 20;
    /// <summary>TTL floor and ceiling for cached positive data (cache-min-ttl, cache-max-ttl).</summary>
    public TimeSpan MinTtl { get; init; } = TimeSpan.Zero;
    public TimeSpan MaxTtl { get; init; } = TimeSpan.FromDays(1);
    /// <summary>Ceiling for negative answers (cache-max-negative-ttl; RFC 2308 §5 suggests 1-3 hours).</summary>
    public TimeSpan MaxNegativeTtl { get; init; } = TimeSpan.FromHours(1);
    /// <summary>RFC 9156 in relaxed mode (Unbound's qname-minimisation: yes, strict: no).</summary>
    public bool QnameMinimisation { get; init; } = true;
    /// <summary>RFC 8767: answer from expired data when every upstream fails (serve-expired), with this TTL in the answer.</summary>
    public bool ServeStale { get; init; } = true;
    public TimeSpan StaleAnswerTtl { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>How long expired data may still be served (RFC 8767 §5 suggests 1-3 days).</summary>
    public TimeSpan MaxStale { get; init; } = TimeSpan.FromDays(1);
    /// <summary>Refresh popular records shortly before they expire (Unbound's prefetch: the last 10% of the TTL).</summary>
    public bool Prefetch { get; init; } = true;
    /// <summary>EDNS buffer size offered upstream (DNS flag day 2020).</summary>
    public ushort EdnsBufferSize { get; init; } = 1232;
    /// <summary>Bounds on one client question's work (NXNSAttack, CNAME loops, deep delegations).</summary>
    public int MaxQueriesPerResolution { get; init; } = 64;
    public int MaxCnameChain { get; init; } = 12;
    public int MaxNsNamesResolvedPerDelegation { get; init; } = 3;
    /// <summary>A resolution gives up (SERVFAIL) after this long.</summary>
    public TimeSpan ResolutionTimeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>
    /// Local addresses upstream queries leave from (Unbound's outgoing-interface), one per address
    /// family at most is used; empty = any. A fixed address also keeps the resolver's random source
    /// ports off the other addresses of the machine.
    /// </summary>
    public IReadOnlyList<IPAddress> OutgoingAddresses { get; init; } = [];
    /// <summary>Upstream port: 53. Only tests of forwarding point elsewhere (forwarders carry their own port).</summary>
    public int UpstreamPort { get; init; } = 53;
    /// <summary>
    /// DNSSEC validation (RFC 4033–4035): the trust anchors to validate from, or null for no
    /// validation. The configuration's default is Debian's root key (dnssec-validation: yes).
    /// </summary>
    public Validation.TrustAnchors? TrustAnchors { get; init; }
    /// <summary>SHA-1 in DNSSEC (RSASHA1 signatures, SHA-1 DS): trusted (the default, as Unbound and BIND on Debian), or treated as unsupported, making such zones insecure (RHEL's policy).</summary>
    public bool AllowSha1 { get; init; } = true;
    /// <summary>RFC 8198: NXDOMAIN/NODATA synthesised from validated NSEC ranges in the cache (Unbound's aggressive-nsec, on by default).</summary>
    public bool AggressiveNsec { get; init; } = true;
}
