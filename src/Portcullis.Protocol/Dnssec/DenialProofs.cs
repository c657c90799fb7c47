using System.Buffers.Binary;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.Zones;

namespace Portcullis.Protocol.Dnssec;

/// <summary>What a set of NSEC or NSEC3 records proves about a question (a validator's view).</summary>
public enum DenialResult
{
    /// <summary>The records prove what was claimed.</summary>
    Proven,
    /// <summary>They do not (missing, or contradicting): bogus if the zone is signed.</summary>
    NotProven,
    /// <summary>NSEC3 opt-out covers the name: an unsigned delegation may exist there, so an answer below it is insecure (RFC 5155 §9.2).</summary>
    OptOut,
    /// <summary>NSEC3 with more iterations than the validator accepts, or an unknown hash algorithm: treated as insecure (RFC 9276 §3.2, RFC 5155 §8.1).</summary>
    Unsupported,
    /// <summary>The validator's hash budget ran out (CVE-2023-50868): answer SERVFAIL.</summary>
    BudgetExceeded,
}

/// <summary>Type bitmaps of NSEC and NSEC3 (RFC 4034 §4.1.2): window, length, bits.</summary>
public static class TypeBitmaps
{
    /// <summary>Whether <paramref name="type"/> is set; a malformed bitmap holds nothing.</summary>
    public static bool Contains(ReadOnlySpan<byte> bitmap, RecordType type)
    {
        int window = (ushort)type >> 8, low = (ushort)type & 0xFF;
        int at = 0;
        while (at + 2 <= bitmap.Length)
        {
            int w = bitmap[at], length = bitmap[at + 1];
            if (length is 0 or > 32 || at + 2 + length > bitmap.Length) return false;
            if (w == window)
                return low / 8 < length && (bitmap[at + 2 + low / 8] & (0x80 >> (low % 8))) != 0;
            if (w > window) return false;
            at += 2 + length;
        }
        return false;
    }
}

/// <summary>An NSEC record read for proofs: owner, next owner name, type bitmap (RFC 4034 §4.1).</summary>
public sealed record NsecRecord(DnsName Owner, DnsName Next, byte[] Bitmap)
{
    public static NsecRecord? From(ResourceRecord rr)
    {
        if (rr.Type != RecordType.NSEC) return null;
        if (!DnsName.TryMeasureWire(rr.Data, out int length, out _)) return null;
        return new NsecRecord(rr.Owner.ToLowerInvariant(), DnsName.FromWire(rr.Data.AsSpan(0, length)).ToLowerInvariant(), rr.Data[length..]);
    }

    public bool Has(RecordType type) => TypeBitmaps.Contains(Bitmap, type);

    /// <summary>A delegation seen from the parent: NS without SOA (RFC 6840 §4.4: proves nothing below it, and of its own types only DS).</summary>
    public bool IsDelegation => Has(RecordType.NS) && !Has(RecordType.SOA);

    /// <summary>
    /// Whether the NSEC proves that <paramref name="name"/> does not exist: owner &lt; name &lt; next
    /// in canonical order, or, for the last NSEC of the chain (next is the apex, at or before the
    /// owner), name after the owner (RFC 4034 §4.1.1, §6.1). Names below a delegation or DNAME at
    /// the owner are not covered by it (RFC 6840 §4.1).
    /// </summary>
    public bool Covers(DnsName name)
    {
        int afterOwner = name.CompareTo(Owner);
        if (afterOwner <= 0) return false;
        if (name.IsSubdomainOf(Owner) && (IsDelegation || Has(RecordType.DNAME))) return false;
        // The last NSEC of the chain points back to the apex: it covers every later name in the zone.
        if (Next.CompareTo(Owner) <= 0) return name.IsSubdomainOf(Next);
        return name.CompareTo(Next) < 0;
    }
}

/// <summary>An NSEC3 record read for proofs (RFC 5155 §3): its owner's hash, parameters, next hash and bitmap.</summary>
public sealed record Nsec3Record(DnsName Owner, DnsName Zone, byte[] OwnerHash, byte HashAlgorithm, byte Flags, ushort Iterations,
    byte[] Salt, byte[] NextHash, byte[] Bitmap)
{
    public bool OptOut => (Flags & 1) != 0;

    public static Nsec3Record? From(ResourceRecord rr)
    {
        if (rr.Type != RecordType.NSEC3 || rr.Owner.LabelCount < 2) return null;
        var d = rr.Data;
        if (d.Length < 5) return null;
        int saltLength = d[4];
        if (d.Length < 5 + saltLength + 1) return null;
        int hashLength = d[5 + saltLength];
        int bitmapAt = 6 + saltLength + hashLength;
        if (d.Length < bitmapAt || hashLength is 0) return null;
        var ownerHash = new byte[ZoneData.Nsec3HashLength];
        if (!ZoneData.TryDecodeHashLabel(rr.Owner.Wire, ownerHash)) return null;
        return new Nsec3Record(rr.Owner.ToLowerInvariant(), rr.Owner.Parent().ToLowerInvariant(), ownerHash, d[0], d[1],
            BinaryPrimitives.ReadUInt16BigEndian(d.AsSpan(2)), d[5..(5 + saltLength)], d[(6 + saltLength)..bitmapAt], d[bitmapAt..]);
    }

    public bool Has(RecordType type) => TypeBitmaps.Contains(Bitmap, type);
    public bool IsDelegation => Has(RecordType.NS) && !Has(RecordType.SOA);

    public bool Matches(ReadOnlySpan<byte> hash) => hash.SequenceEqual(OwnerHash);

    /// <summary>owner hash &lt; hash &lt; next hash, or, at the end of the chain (next ≤ owner), after the owner or before the next (RFC 5155 §8.3).</summary>
    public bool Covers(ReadOnlySpan<byte> hash)
    {
        if (NextHash.Length != hash.Length) return false;
        int afterOwner = hash.SequenceCompareTo(OwnerHash), beforeNext = hash.SequenceCompareTo(NextHash);
        return ((ReadOnlySpan<byte>)NextHash).SequenceCompareTo(OwnerHash) > 0
            ? afterOwner > 0 && beforeNext < 0
            : afterOwner > 0 || beforeNext < 0;
    }
}

/// <summary>
/// Denial of existence as a validator checks it, for NSEC (RFC 4035 §5.4, RFC 6840 §4) and NSEC3
/// (RFC 5155 §8). The records given are those of the response's authority section, already
/// verified against the zone's keys (their RRSIGs); these functions only reason about names.
/// </summary>
public static class NsecProofs
{
    /// <summary>
    /// NXDOMAIN: an NSEC covers the name, and one covers (or proves absent) the wildcard at its
    /// closest encloser, the longest common ancestor of the name with the covering NSEC's owner or
    /// next name (RFC 4035 §5.4).
    /// </summary>
    public static DenialResult NameError(IReadOnlyList<NsecRecord> nsecs, DnsName qname, DnsName zone)
    {
        var cover = Find(nsecs, n => n.Covers(qname));
        if (cover is null) return DenialResult.NotProven;
        var ce = ClosestEncloser(qname, cover, zone);
        var wildcard = ce.Prepend("*"u8);
        return Find(nsecs, n => n.Covers(wildcard)) is not null ? DenialResult.Proven : DenialResult.NotProven;
    }

    /// <summary>
    /// NODATA: an NSEC at the name without the type (nor CNAME); or, for a wildcard NODATA, one covering the
    /// name and one at the wildcard of its closest encloser without the type. A parent-side NSEC
    /// (NS without SOA) proves only the absence of DS (RFC 6840 §4.4), and a DS question is answered
    /// from the parent's side of the cut.
    /// </summary>
    public static DenialResult NoData(IReadOnlyList<NsecRecord> nsecs, DnsName qname, RecordType qtype, DnsName zone)
    {
        var at = Find(nsecs, n => n.Owner == qname);
        if (at is not null)
        {
            if (at.Has(qtype) || at.Has(RecordType.CNAME)) return DenialResult.NotProven;
            if (qtype == RecordType.DS) return at.Has(RecordType.SOA) && !qname.IsRoot ? DenialResult.NotProven : DenialResult.Proven;
            return at.IsDelegation ? DenialResult.NotProven : DenialResult.Proven;
        }
        // An empty non-terminal: an NSEC whose next name is below the name proves it has no types (RFC 4035 §3.1.3.2).
        var ent = Find(nsecs, n => n.Covers(qname) && n.Next.IsSubdomainOf(qname));
        if (ent is not null) return DenialResult.Proven;
        var cover = Find(nsecs, n => n.Covers(qname));
        if (cover is null) return DenialResult.NotProven;
        var wildcard = ClosestEncloser(qname, cover, zone).Prepend("*"u8);
        var wild = Find(nsecs, n => n.Owner == wildcard);
        return wild is not null && !wild.Has(qtype) && !wild.Has(RecordType.CNAME) ? DenialResult.Proven : DenialResult.NotProven;
    }

    /// <summary>
    /// A positive answer synthesised from a wildcard (its RRSIG has fewer labels than the name, RFC
    /// 4035 §5.3.4): an NSEC must prove that the name itself does not exist (§5.4).
    /// </summary>
    public static DenialResult WildcardAnswer(IReadOnlyList<NsecRecord> nsecs, DnsName qname) =>
        Find(nsecs, n => n.Covers(qname)) is not null ? DenialResult.Proven : DenialResult.NotProven;

    /// <summary>The longest ancestor of <paramref name="name"/> shared with the covering NSEC's owner or next name, within the zone.</summary>
    public static DnsName ClosestEncloser(DnsName name, NsecRecord cover, DnsName zone)
    {
        var a = CommonAncestor(name, cover.Owner);
        var b = CommonAncestor(name, cover.Next);
        var ce = a.LabelCount >= b.LabelCount ? a : b;
        return ce.IsSubdomainOf(zone) ? ce : zone;
    }

    public static DnsName CommonAncestor(DnsName a, DnsName b)
    {
        var x = a.LabelCount > b.LabelCount ? a.Parent(a.LabelCount - b.LabelCount) : a;
        var y = b.LabelCount > a.LabelCount ? b.Parent(b.LabelCount - a.LabelCount) : b;
        while (!x.IsRoot && x != y)
        {
            x = x.Parent();
            y = y.Parent();
        }
        return x;
    }

    private static NsecRecord? Find(IReadOnlyList<NsecRecord> nsecs, Func<NsecRecord, bool> test)
    {
        for (int i = 0; i < nsecs.Count; i++)
            if (test(nsecs[i])) return nsecs[i];
        return null;
    }
}

/// <summary>
/// NSEC3 proofs (RFC 5155 §8) with the limits resolvers adopted after CVE-2023-50868: records
/// whose iterations exceed <see cref="Nsec3Budget.MaxIterations"/> (50, as BIND, PowerDNS and Knot
/// Resolver; RFC 9276 §3.2) make the answer insecure, and every hash computed is charged to a
/// per-response budget (<see cref="Nsec3Budget.MaxHashes"/>); when it runs out the proof fails
/// with <see cref="DenialResult.BudgetExceeded"/>.
/// </summary>
public static class Nsec3Proofs
{
    /// <summary>
    /// The closest encloser proof (§8.3): the longest ancestor of the name whose hash matches an
    /// NSEC3 (not a delegation or DNAME: §8.3, RFC 6840 §4.1), and an NSEC3 covering the hash of the
    /// next closer name (the ancestor one label longer). For a DS question at a name that exists, the
    /// match is the name itself (the caller checks types).
    /// </summary>
    public static DenialResult ClosestEncloser(IReadOnlyList<Nsec3Record> nsec3s, DnsName qname, DnsName zone, ref Nsec3Budget budget,
        out DnsName? closestEncloser, out Nsec3Record? nextCloserCover)
    {
        closestEncloser = null;
        nextCloserCover = null;
        if (Parameters(nsec3s, zone) is not { } p) return Unusable(nsec3s, zone);
        Span<byte> hash = stackalloc byte[ZoneData.Nsec3HashLength];
        DnsName? previous = null;
        for (var candidate = qname; ; candidate = candidate.Parent())
        {
            if (!candidate.IsSubdomainOf(zone)) return DenialResult.NotProven;
            if (!budget.Charge()) return DenialResult.BudgetExceeded;
            Hash(candidate, p, hash);
            var match = Find(nsec3s, zone, p, hash, matching: true);
            if (match is not null && previous is not null)
            {
                if (match.IsDelegation && candidate != zone || match.Has(RecordType.DNAME)) return DenialResult.NotProven;
                if (!budget.Charge()) return DenialResult.BudgetExceeded;
                Hash(previous, p, hash);
                var cover = Find(nsec3s, zone, p, hash, matching: false);
                if (cover is null) return DenialResult.NotProven;
                closestEncloser = candidate;
                nextCloserCover = cover;
                return DenialResult.Proven;
            }
            if (candidate == zone) return DenialResult.NotProven;
            previous = candidate;
        }
    }

    /// <summary>NXDOMAIN (§8.4): the closest encloser proof and an NSEC3 covering the wildcard at the closest encloser.</summary>
    public static DenialResult NameError(IReadOnlyList<Nsec3Record> nsec3s, DnsName qname, DnsName zone, ref Nsec3Budget budget)
    {
        var ce = ClosestEncloser(nsec3s, qname, zone, ref budget, out var encloser, out var cover);
        if (ce != DenialResult.Proven) return ce;
        var p = Parameters(nsec3s, zone)!.Value;
        if (!budget.Charge()) return DenialResult.BudgetExceeded;
        Span<byte> hash = stackalloc byte[ZoneData.Nsec3HashLength];
        Hash(encloser!.Prepend("*"u8), p, hash);
        if (Find(nsec3s, zone, p, hash, matching: false) is null) return DenialResult.NotProven;
        // Opt-out on the next closer name: an unsigned delegation could be there; the NXDOMAIN is not secure (§9.2).
        return cover!.OptOut ? DenialResult.OptOut : DenialResult.Proven;
    }

    /// <summary>
    /// NODATA (§8.5–8.7): an NSEC3 matching the name without the type or CNAME; for DS, when none
    /// matches, a closest encloser proof whose next-closer cover has opt-out (an insecure delegation,
    /// §8.6); for a wildcard NODATA, the closest encloser proof and an NSEC3 matching the wildcard without the type.
    /// </summary>
    public static DenialResult NoData(IReadOnlyList<Nsec3Record> nsec3s, DnsName qname, RecordType qtype, DnsName zone, ref Nsec3Budget budget)
    {
        if (Parameters(nsec3s, zone) is not { } p) return Unusable(nsec3s, zone);
        Span<byte> hash = stackalloc byte[ZoneData.Nsec3HashLength];
        if (!budget.Charge()) return DenialResult.BudgetExceeded;
        Hash(qname, p, hash);
        var match = Find(nsec3s, zone, p, hash, matching: true);
        if (match is not null)
        {
            if (match.Has(qtype) || match.Has(RecordType.CNAME)) return DenialResult.NotProven;
            if (qtype == RecordType.DS) return match.Has(RecordType.SOA) && qname != zone ? DenialResult.NotProven : DenialResult.Proven;
            return match.IsDelegation ? DenialResult.NotProven : DenialResult.Proven;
        }
        var ce = ClosestEncloser(nsec3s, qname, zone, ref budget, out var encloser, out var cover);
        if (ce != DenialResult.Proven) return ce;
        if (qtype == RecordType.DS) return cover!.OptOut ? DenialResult.OptOut : DenialResult.NotProven;
        if (!budget.Charge()) return DenialResult.BudgetExceeded;
        Hash(encloser!.Prepend("*"u8), p, hash);
        var wild = Find(nsec3s, zone, p, hash, matching: true);
        return wild is not null && !wild.Has(qtype) && !wild.Has(RecordType.CNAME) ? DenialResult.Proven : DenialResult.NotProven;
    }

    /// <summary>
    /// A wildcard answer (§8.8): the source of synthesis is *.E with E from the RRSIG's label count;
    /// an NSEC3 must cover the next closer name (the ancestor of the name one label below E).
    /// </summary>
    public static DenialResult WildcardAnswer(IReadOnlyList<Nsec3Record> nsec3s, DnsName qname, int rrsigLabels, DnsName zone, ref Nsec3Budget budget)
    {
        if (Parameters(nsec3s, zone) is not { } p) return Unusable(nsec3s, zone);
        if (rrsigLabels >= qname.LabelCount) return DenialResult.NotProven;
        var nextCloser = qname.Parent(qname.LabelCount - rrsigLabels - 1);
        if (!budget.Charge()) return DenialResult.BudgetExceeded;
        Span<byte> hash = stackalloc byte[ZoneData.Nsec3HashLength];
        Hash(nextCloser, p, hash);
        var cover = Find(nsec3s, zone, p, hash, matching: false);
        if (cover is null) return DenialResult.NotProven;
        return cover.OptOut ? DenialResult.OptOut : DenialResult.Proven;
    }

    private readonly record struct Params(byte[] Salt, int Iterations);

    /// <summary>The hash parameters of the zone's NSEC3 records (SHA-1 only, iterations within the cap); null when there are none usable.</summary>
    private static Params? Parameters(IReadOnlyList<Nsec3Record> nsec3s, DnsName zone)
    {
        foreach (var n in nsec3s)
            if (n.Zone == zone && n.HashAlgorithm == 1 && n.Iterations <= Nsec3Budget.MaxIterations)
                return new Params(n.Salt, n.Iterations);
        return null;
    }

    /// <summary>Records exist but none is usable: too many iterations or an unknown algorithm make the answer insecure; none at all proves nothing.</summary>
    private static DenialResult Unusable(IReadOnlyList<Nsec3Record> nsec3s, DnsName zone)
    {
        foreach (var n in nsec3s)
            if (n.Zone == zone && (n.HashAlgorithm != 1 || n.Iterations > Nsec3Budget.MaxIterations)) return DenialResult.Unsupported;
        return DenialResult.NotProven;
    }

    private static Nsec3Record? Find(IReadOnlyList<Nsec3Record> nsec3s, DnsName zone, Params p, ReadOnlySpan<byte> hash, bool matching)
    {
        foreach (var n in nsec3s)
        {
            if (n.Zone != zone || n.HashAlgorithm != 1 || n.Iterations != p.Iterations || !n.Salt.AsSpan().SequenceEqual(p.Salt)) continue;
            if (matching ? n.Matches(hash) : n.Covers(hash)) return n;
        }
        return null;
    }

    /// <summary>RFC 5155 §5 with the zone's parameters: SHA-1 of the lowered wire name and salt, then iterations more.</summary>
    public static void Hash(DnsName name, byte[] salt, int iterations, Span<byte> hash) => Hash(name, new Params(salt, iterations), hash);

    private static void Hash(DnsName name, Params p, Span<byte> hash)
    {
        Span<byte> input = stackalloc byte[DnsName.MaxLength + 255];
        var wire = name.Wire;
        wire.CopyTo(input);
        DnsName.LowerLabels(input[..wire.Length]);
        p.Salt.CopyTo(input[wire.Length..]);
        ZoneData.Sha1(input[..(wire.Length + p.Salt.Length)], hash);
        for (int i = 0; i < p.Iterations; i++)
        {
            hash[..ZoneData.Nsec3HashLength].CopyTo(input);
            p.Salt.CopyTo(input[ZoneData.Nsec3HashLength..]);
            ZoneData.Sha1(input[..(ZoneData.Nsec3HashLength + p.Salt.Length)], hash);
        }
    }
}

/// <summary>
/// The NSEC3 work one response may cost a validator (CVE-2023-50868). Unbound stops after 8 hash
/// calculations per step and suspends; PowerDNS allows 600 per query; BIND caps iterations at 50.
/// Portcullis allows <see cref="MaxHashes"/> (= 600) name hashes per response, each of at most
/// <see cref="MaxIterations"/> (= 50) extra iterations, so at most 30,600 SHA-1 blocks.
/// </summary>
public struct Nsec3Budget
{
    public const int MaxIterations = 50;
    public const int MaxHashes = 600;

    private int _used;
    private readonly int _limit;

    /// <summary>A budget of <paramref name="limit"/> hashes instead of <see cref="MaxHashes"/>.</summary>
    public Nsec3Budget(int limit) => _limit = limit;

    public readonly int Used => _used;

    /// <summary>Takes one hash from the budget; false when it is spent.</summary>
    public bool Charge() => ++_used <= (_limit > 0 ? _limit : MaxHashes);
}

/// <summary>What validated denial records say about a zone cut (a validator walking down a chain of trust).</summary>
public static class CutProofs
{
    /// <summary>
    /// Whether the NSEC or NSEC3 records proving "no DS at <paramref name="name"/>" also show that the
    /// name is a delegation — NS without SOA in the bitmap of the record matching it (RFC 4035 §5.2,
    /// RFC 5155 §8.6) — and so an insecure delegation, rather than a name inside the zone with no
    /// DS because it is no cut at all. <paramref name="records"/> must already be validated.
    /// </summary>
    public static bool ShowsDelegation(IReadOnlyList<ResourceRecord> records, DnsName name)
    {
        Span<byte> hash = stackalloc byte[ZoneData.Nsec3HashLength];
        foreach (var r in records)
        {
            if (r.Type == RecordType.NSEC && r.Owner == name && NsecRecord.From(r) is { } n) return n.IsDelegation;
            if (r.Type == RecordType.NSEC3 && Nsec3Record.From(r) is { } n3 && n3.HashAlgorithm == 1
                && n3.Iterations <= Nsec3Budget.MaxIterations && name.IsSubdomainOf(n3.Zone))
            {
                Nsec3Proofs.Hash(name, n3.Salt, n3.Iterations, hash);
                if (n3.Matches(hash)) return n3.IsDelegation;
            }
        }
        return false;
    }
}
