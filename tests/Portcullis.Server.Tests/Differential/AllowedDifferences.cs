using Portcullis.Protocol.Records;

namespace Portcullis.Server.Tests.Differential;

/// <summary>A way two correct authoritative servers may answer the same query differently, with the RFC that allows it.</summary>
public sealed record AllowedDifference(string Name, string Rfc, string Justification)
{
    public override string ToString() => $"{Name} ({Rfc}): {Justification}";
}

/// <summary>
/// The implementation freedom the differential test accepts. Each is applied narrowly (see
/// <see cref="ResponseComparer"/>): only the part of the answer the RFC leaves open may differ, and
/// anything a server adds must be the zone's own data.
/// </summary>
public static class AllowedDifferences
{
    public static readonly AllowedDifference ApexNsInAuthority = new(
        "apex NS in the authority section of positive answers",
        "RFC 1034 §4.3.2 step 3a/6, RFC 2181 §6.1",
        "the authority section of a positive answer may carry the zone's NS RRset or be empty (minimal responses); "
        + "NSD adds it, Knot and Portcullis do not. Accepted only as the whole apex NS RRset of a served zone.");

    public static readonly AllowedDifference OptionalAdditional = new(
        "optional additional-section addresses",
        "RFC 1034 §4.3.2 step 6, RFC 2181 §9, RFC 9471 §3",
        "A/AAAA records of NS, MX or SRV targets named in the answer or authority section are optional extra data, "
        + "except the in-domain glue of a referral, which RFC 9471 makes mandatory (or TC=1). Accepted only when the "
        + "record is the zone's own data (as written, or synthesised from a wildcard of the zone).");

    public static readonly AllowedDifference MinimalAny = new(
        "which RRsets answer ANY",
        "RFC 8482 §4.1-4.2, §7",
        "a server may answer QTYPE=ANY with any non-empty subset of the RRsets at the name, over UDP and TCP alike "
        + "(Knot and NSD give one RRset on both; Portcullis one over UDP, all over TCP). Accepted when each answer is "
        + "whole RRsets owned by the query name, exactly as the zone defines them (or its wildcard synthesises them).");

    public static readonly AllowedDifference CnameToOtherZone = new(
        "CNAME chain into another served zone",
        "RFC 1034 §4.3.2 step 3a",
        "when a CNAME points into a different zone the server also serves, it may restart the lookup there "
        + "(RFC 1034's \"go back to step 1\", as NSD does) or stop and leave the rest to the resolver (as Knot and "
        + "Portcullis do). Accepted when the shorter answer is the start of the longer one and what the longer adds is "
        + "the other zone's own data (its records, its apex NS in authority).");

    public static readonly AllowedDifference TruncatedBody = new(
        "content of truncated UDP answers",
        "RFC 2181 §9, RFC 1035 §4.2.1, RFC 7766 §5",
        "with TC=1 the client discards the answer and retries over TCP, so what a server puts beside TC=1 is its own "
        + "choice; TC itself must agree, and every truncated UDP answer is re-asked over TCP and compared in full.");

    public static readonly AllowedDifference PeerGlueWithoutTc = new(
        "peer drops referral glue without TC",
        "RFC 9471 §3",
        "RFC 9471 (2023) requires TC=1 when a referral's in-domain glue does not fit; NSD 4.6 predates it and "
        + "silently drops glue, while Portcullis (and Knot) set TC=1. Accepted only in that direction: Portcullis has "
        + "TC=1, the peer TC=0 with in-domain glue of its referral missing; the TCP retry is compared in full.");

    public static readonly AllowedDifference EdnsDetails = new(
        "OPT record details",
        "RFC 6891 §6.2.3, §6.2.5; RFC 5001",
        "each server advertises its own UDP payload size and may add options (NSID, keepalive); only the presence of "
        + "OPT in the answer (iff the query had it), its version and the extended RCODE are compared.");

    public static readonly AllowedDifference OwnerCase = new(
        "case of owner names",
        "RFC 4343 §3-4, RFC 1035 §2.3.3",
        "names compare without regard to ASCII case, and a server may write an owner in the case of the query or of "
        + "the zone file; owners are compared without case and case differences are counted separately.");

    public static readonly AllowedDifference[] All =
        [ApexNsInAuthority, OptionalAdditional, MinimalAny, CnameToOtherZone, TruncatedBody, PeerGlueWithoutTc, EdnsDetails, OwnerCase];
}

/// <summary>
/// A Portcullis answer known to be wrong, kept visible while it is being fixed: the test accepts
/// the queries <see cref="Applies"/> selects (given the query's zone and all zones) differing (and nothing else), and fails when an entry
/// no longer matches any differing answer, so that the list is emptied as fixes land.
/// <see cref="Peer"/> limits an entry to the comparison with one peer ("knot" or "nsd"); null means both.
/// </summary>
public sealed record KnownDifference(string Id, string Reason, Func<DifferentialQuery, DifferentialZone, IReadOnlyList<DifferentialZone>, bool> Applies, string? Peer = null)
{
    public override string ToString() => $"{Id}: {Reason}";
}

public static class KnownDifferences
{
    // Empty: the four answering bugs this test found (ANY at a CNAME, CNAME loops written again and
    // again, DS at a served child apex, QTYPE=CNAME below a DNAME) are fixed.
    public static readonly KnownDifference[] List = [];
}
