using System.Collections.Concurrent;
using Portcullis.Protocol.Dnssec;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Server.Validation;

namespace Portcullis.Server.Resolution;

/// <summary>
/// DNSSEC validation of what the resolver receives (RFC 4033–4035, RFC 5155), before anything is
/// cached. Of each answer or negative answer only what the cache would keep is judged — the
/// question's CNAME/DNAME chain, the SOA of a negative answer, the NSEC/NSEC3 records — by
/// <see cref="ResponseValidator"/>, on the keys of the zones that signed it. Those keys come from
/// the chain of trust, walked down from the closest trust anchor one label at a time:
/// <list type="bullet">
/// <item>at the anchor, the DNSKEY RRset must be signed by a key the anchor designates;</item>
/// <item>below, "NAME DS" is resolved (from the parent's servers) and validated on the parent's keys:
/// DS present → NAME is a secure zone whose DNSKEY RRset must match one (RFC 4035 §5.2); no DS
/// with an NSEC/NSEC3 showing NS there (or NSEC3 opt-out) → an insecure delegation, and everything
/// below is insecure; no DS and no NS → NAME is no zone cut, the walk goes on; anything bogus → bogus.</item>
/// </list>
/// Signed data is judged on its signer's keys (the walk goes down to the signer, which must be the
/// apex of the zone holding it, and not above the closest anchor of the data). Unsigned data is
/// judged on the state of the zone the answering servers were asked as (the delegation followed);
/// behind a forwarder, which gives no delegations, on the walk down to its owner.
/// A chain of trust that cannot be built now (a server unreachable, the question's budget spent)
/// is a failure of this question only: nothing is cached from it, neither the zone's state nor the data.
/// Zone states are kept in a bounded cache of their own (<see cref="MaxCuts"/>, rebuilt whenever the
/// anchors change); DNSKEY and DS RRsets also go to the record cache with their state. Per response
/// at most <see cref="MaxZonesPerResponse"/> distinct zones are looked up and per question at most
/// <see cref="MaxVerificationsPerQuestion"/> signatures verified, on top of
/// <see cref="ValidationBudget"/> and <see cref="Nsec3Budget"/> per response (KeyTrap and NSEC3 limits).
/// </summary>
public sealed partial class IterativeResolver
{
    /// <summary>Zones (signers, or holders of unsigned data) one response may make the validator look up.</summary>
    public const int MaxZonesPerResponse = 16;
    /// <summary>Zone states kept (each a name and, when secure, its DNSKEY RRset).</summary>
    public const int MaxCuts = 20_000;
    /// <summary>Signature verifications one client question may cause, its whole chain of trust included (8 responses' worth).</summary>
    public const int MaxVerificationsPerQuestion = 8 * ValidationBudget.MaxVerifications;
    /// <summary>The shortest time a zone's state is kept (a DNSKEY or DS TTL of 0 would otherwise rebuild it per question).</summary>
    public const uint MinCutTtl = 5;

    /// <summary>The anchors and the zone states built on them, swapped together (a validation reads them once).</summary>
    private sealed record AnchorState(TrustAnchors Anchors, ConcurrentDictionary<DnsName, Cut> Cuts);
    private volatile AnchorState? _state;
    private long _verifications, _secure, _insecure, _bogus;

    /// <summary>Signature verifications run (each bounded per response by <see cref="ValidationBudget"/>: KeyTrap shows here).</summary>
    public long SignatureVerifications => Interlocked.Read(ref _verifications);
    /// <summary>Responses validated, by verdict.</summary>
    public (long Secure, long Insecure, long Bogus) Verdicts => (Interlocked.Read(ref _secure), Interlocked.Read(ref _insecure), Interlocked.Read(ref _bogus));

    /// <summary>The trust anchors validation starts from (null: no validation); RFC 5011 updates swap them.</summary>
    public TrustAnchors? Anchors
    {
        get => _state?.Anchors;
        set
        {
            if (ReferenceEquals(_state?.Anchors, value)) return;
            // Zone states built on the old anchors go with them: a walk still running on the old
            // state stores into the old dictionary, which nobody reads any more.
            _state = value is null ? null : new AnchorState(value, new ConcurrentDictionary<DnsName, Cut>());
            NsecRanges.Clear();
        }
    }

    /// <summary>
    /// The validator's verdict on one response, as the cache stores it. <see cref="Raw"/>: a chain of
    /// trust's own lookup, judged by its caller (nothing cached); <see cref="Skipped"/>: taken for a
    /// referral (nothing cached, and an answer is refused); <see cref="Transient"/>: the chain could
    /// not be built now (nothing cached, the question fails).
    /// </summary>
    private readonly record struct Verdict(ValidationState State, int Reason, uint MaxTtl)
    {
        public bool Raw { get; init; }
        public bool Skipped { get; init; }
        public bool Transient { get; init; }
        public IReadOnlyList<ResourceRecord>? Denial { get; init; }
        public static Verdict None { get; } = new(ValidationState.Unchecked, -1, uint.MaxValue);
    }

    /// <summary>The verdict of a lookup made without validation: judged (or not used) by whoever asked.</summary>
    private Verdict RawVerdict => Anchors is null ? Verdict.None : Verdict.None with { Raw = true };

    /// <summary>What is known of a name on the way down: whether it is a zone cut, and if so its keys (or insecurity).</summary>
    private readonly record struct Cut(bool IsCut, SignerKeys Keys, long ExpiresMs);

    /// <summary>Whether <paramref name="a"/> is a weaker state than <paramref name="b"/> (Bogus &lt; Unchecked &lt; Insecure &lt; Secure).</summary>
    private static bool Weaker(ValidationState a, ValidationState b) => Strength(a) < Strength(b);

    private static int Strength(ValidationState s) => s switch
    {
        ValidationState.Secure => 3,
        ValidationState.Insecure => 2,
        ValidationState.Unchecked => 1,
        _ => 0,
    };

    private static ResolutionResult Resolved(Rcode rcode, List<ResourceRecord> answer, List<ResourceRecord> authority, ValidationState validation, int reason) =>
        new()
        {
            Rcode = rcode,
            Answer = answer,
            Authority = authority,
            Validation = validation,
            Ede = validation == ValidationState.Bogus ? (ushort)(reason >= 0 ? reason : (int)ExtendedDnsErrorCode.DnssecBogus) : null,
            Failure = validation == ValidationState.Bogus ? "DNSSEC validation failed" : null,
        };

    /// <summary>The RRSIGs among <paramref name="records"/> covering the RRset of <paramref name="rr"/>.</summary>
    private static List<ResourceRecord> Signatures(List<ResourceRecord> records, ResourceRecord rr)
    {
        var list = new List<ResourceRecord>();
        foreach (var r in records)
            if (r.Type == RecordType.RRSIG && r.Class == rr.Class && r.Owner == rr.Owner && Rrsig.TryRead(r.Data, out var sig) && sig.TypeCovered == rr.Type)
                list.Add(r);
        return list;
    }

    /// <summary>
    /// A negative answer's proof as the cache keeps it: the SOA's RRSIGs and the NSEC/NSEC3 records
    /// (with theirs) — only those the validator verified, when it judged the response (RFC 4035 §3.1.3).
    /// </summary>
    private static List<ResourceRecord> DenialProof(DnsMessage m, ResourceRecord? soa, Verdict verdict)
    {
        var list = new List<ResourceRecord>();
        if (soa is null) return list;
        foreach (var r in m.Authority)
        {
            if (r.Class != soa.Class || r.Type != RecordType.RRSIG || !Rrsig.TryRead(r.Data, out var sig)) continue;
            if (sig.TypeCovered == RecordType.SOA && r.Owner == soa.Owner) list.Add(r);
        }
        if (verdict.Denial is { } validated)
        {
            list.AddRange(validated);
            return list;
        }
        // Not judged (validation off): the denial as it came.
        foreach (var r in m.Authority)
        {
            if (r.Class != soa.Class) continue;
            if (r.Type is RecordType.NSEC or RecordType.NSEC3
                || (r.Type == RecordType.RRSIG && Rrsig.TryRead(r.Data, out var sig) && sig.TypeCovered is RecordType.NSEC or RecordType.NSEC3))
                list.Add(r);
        }
        return list;
    }

    /// <summary>
    /// The part of a response that the cache may keep, as a message of its own for the validator:
    /// the chain from the question's name within <paramref name="zone"/> (CNAMEs; a DNAME, whose
    /// substitution is computed, not the wire CNAME), the SOA covering its end, and the NSEC/NSEC3 records — each with its RRSIGs.
    /// Anything else in the response is not judged: it is not kept either, and must not sway the verdict.
    /// </summary>
    private static DnsMessage ValidationView(DnsMessage m, DnsName zone, DnsName qname, RecordType qtype, RecordClass @class)
    {
        var view = new DnsMessage { Header = m.Header };
        view.Questions.Add(new DnsQuestion(qname, qtype, @class));
        void Take(List<ResourceRecord> from, List<ResourceRecord> into, DnsName owner, RecordType type)
        {
            foreach (var r in from)
                if (r.Class == @class && r.Owner == owner && !into.Contains(r)
                    && (r.Type == type || (r.Type == RecordType.RRSIG && Rrsig.TryRead(r.Data, out var sig) && sig.TypeCovered == type)))
                    into.Add(r);
        }
        var current = qname;
        for (int step = 0; step < 16; step++)
        {
            // As the scrubber: the chain stops where it leaves the zone the servers were asked as.
            if (!current.IsSubdomainOf(zone)) break;
            bool final = false;
            foreach (var r in m.Answers)
                if (r.Class == @class && r.Owner == current && r.Type != RecordType.RRSIG && (r.Type == qtype || qtype == RecordType.ANY))
                {
                    Take(m.Answers, view.Answers, current, r.Type);
                    final = true;
                }
            if (final) break;
            var cname = m.Answers.Find(r => r.Class == @class && r.Owner == current && r.Type == RecordType.CNAME);
            var dname = m.Answers.Find(r => r.Class == @class && r.Type == RecordType.DNAME && current.IsSubdomainOf(r.Owner) && current != r.Owner
                && r.Owner.IsSubdomainOf(zone));
            if (dname is not null && DnsName.TryMeasureWire(dname.Data, out int dl, out _))
            {
                Take(m.Answers, view.Answers, dname.Owner, RecordType.DNAME);
                if (!current.TrySubstitute(dname.Owner, DnsName.FromWire(dname.Data.AsSpan(0, dl)), out var next)) break;
                current = next;
                continue;
            }
            if (cname is not null && DnsName.TryMeasureWire(cname.Data, out int cl, out _))
            {
                Take(m.Answers, view.Answers, current, RecordType.CNAME);
                current = DnsName.FromWire(cname.Data.AsSpan(0, cl));
                continue;
            }
            break;
        }
        var soa = m.Authority.Find(r => r.Class == @class && r.Type == RecordType.SOA && current.IsSubdomainOf(r.Owner));
        if (soa is not null) Take(m.Authority, view.Authority, soa.Owner, RecordType.SOA);
        foreach (var r in m.Authority)
            if (r.Class == @class && r.Type is RecordType.NSEC or RecordType.NSEC3 && r.Owner.IsSubdomainOf(zone)) Take(m.Authority, view.Authority, r.Owner, r.Type);
        return view;
    }

    /// <summary>
    /// Validates a response that will be classified as an answer or a negative answer (referrals and
    /// lame answers are not judged: nothing from them reaches a client). Returns the verdict the
    /// cache stores with what it keeps. <paramref name="zone"/> is the zone the servers were asked as.
    /// </summary>
    private async Task<Verdict> ValidateAsync(DnsMessage m, DnsName zone, DnsName qname, RecordType qtype, RecordClass @class, bool forwarded, Context ctx)
    {
        if (_state is not { } state) return Verdict.None;
        var anchors = state.Anchors;
        if (m.Rcode is not (Rcode.NoError or Rcode.NXDomain)) return Verdict.None;
        if (!forwarded && !m.Header.AuthoritativeAnswer) return Verdict.None with { Skipped = true };
        if (!forwarded && IsReferral(m, @class)) return Verdict.None with { Skipped = true };
        // RRSIGs are not signed themselves: an RRSIG question's answer cannot be validated (RFC 4035
        // §5.3). It goes to the client without AD and nothing of it is cached (a forged chain or
        // NXDOMAIN in it must not stand for the name's other types).
        if (qtype == RecordType.RRSIG) return Judged(new Verdict(ValidationState.Insecure, -1, uint.MaxValue) { Raw = true });
        var view = ValidationView(m, zone, qname, qtype, @class);
        // The zones whose keys the view needs: the signers its RRSIGs name; for unsigned RRsets, the
        // zone asked (or, behind a forwarder, the zone holding each owner).
        var signers = new List<DnsName>();
        var unsigned = new List<DnsName>();
        foreach (var section in (List<ResourceRecord>[])[view.Answers, view.Authority])
            foreach (var r in section)
            {
                if (r.Type == RecordType.RRSIG)
                {
                    if (!Rrsig.TryRead(r.Data, out var sig) || !DnsName.TryMeasureWire(sig.SignerName, out int length, out _)) continue;
                    var signer = DnsName.FromWire(sig.SignerName[..length]).ToLowerInvariant();
                    // Only an ancestor of the data signs it, and (from authoritative servers) one at or
                    // below the zone asked; any other RRSIG is ignored, and costs no chain walk.
                    if (!r.Owner.IsSubdomainOf(signer) || (!forwarded && !signer.IsSubdomainOf(zone))) continue;
                    // A signer above the closest anchor of the data is no signer of it (an island of trust
                    // below an insecure parent would otherwise take signatures of that parent).
                    if (anchors.ClosestAnchor(r.Owner) is { } anchor && anchor != signer && anchor.IsSubdomainOf(signer))
                        return Judged(new Verdict(ValidationState.Bogus, (int)ExtendedDnsErrorCode.DnssecBogus, RecordCache.BogusTtl));
                    if (!signers.Contains(signer)) signers.Add(signer);
                    continue;
                }
                if (Signatures(section, r).Count == 0)
                {
                    var owner = r.Owner.ToLowerInvariant();
                    if (!unsigned.Contains(owner)) unsigned.Add(owner);
                }
            }
        if (signers.Count + unsigned.Count > MaxZonesPerResponse)
            return Judged(new Verdict(ValidationState.Bogus, (int)ExtendedDnsErrorCode.DnssecBogus, RecordCache.BogusTtl));
        var keys = new Dictionary<DnsName, SignerKeys>();
        var holders = new Dictionary<DnsName, SignerKeys>();
        foreach (var s in signers)
        {
            var (k, transient) = await SignerKeysAsync(state, s, @class, ctx).ConfigureAwait(false);
            if (transient) return Verdict.None with { Transient = true };
            keys[s] = k;
        }
        // Unsigned RRsets: fine only in an insecure zone. From an authoritative server, the zone asked
        // says it when it is insecure itself and no anchor lies between it and the data; otherwise
        // (a secure zone whose servers may also serve an unsigned child, an island of trust below it,
        // or behind a forwarder, which gives no delegations) the walk goes down to the owner.
        (DnsName Zone, SignerKeys Keys, bool Transient)? asked = null;
        foreach (var u in unsigned)
        {
            if (!forwarded && anchors.ClosestAnchor(u) == anchors.ClosestAnchor(zone))
            {
                asked ??= await ZoneStateAsync(state, zone, @class, ctx).ConfigureAwait(false);
                if (asked.Value.Transient) return Verdict.None with { Transient = true };
                if (asked.Value.Keys.Security != DnssecSecurity.Secure)
                {
                    holders[u] = asked.Value.Keys;
                    continue;
                }
            }
            var (_, k, transient) = await ZoneStateAsync(state, u, @class, ctx).ConfigureAwait(false);
            if (transient) return Verdict.None with { Transient = true };
            holders[u] = k;
        }
        // keysFor(name): a signer's keys; for an unsigned RRset's owner, the state of the zone holding it.
        SignerKeys KeysFor(DnsName name)
        {
            var lower = name.ToLowerInvariant();
            if (keys.TryGetValue(lower, out var k)) return k;
            if (holders.TryGetValue(lower, out k)) return k;
            return SignerKeys.BogusFor(ExtendedDnsErrorCode.DnskeyMissing);
        }
        var budget = new ValidationBudget { Sha1Disabled = !_options.AllowSha1 };
        var nsec3Budget = new Nsec3Budget();
        var v = ResponseValidator.Validate(view, new DnsQuestion(qname, qtype, @class), KeysFor, _time.GetUtcNow(), ref budget, ref nsec3Budget);
        Spent(ctx, budget.Verifications);
        if (ctx.Verifications > MaxVerificationsPerQuestion) return Verdict.None with { Transient = true };
        // At or below a negative trust anchor nothing is secure (RFC 7646 §1.1): what its zone signs is
        // already insecure (its keys are not used); a secure verdict from a zone above it (a parent's
        // NXDOMAIN) is reported insecure too. Bogus parts outside the anchor stay bogus.
        if (v.Security == DnssecSecurity.Secure && anchors.IsNegative(qname)) v = v with { Security = DnssecSecurity.Insecure };
        var verdict = v.Security switch
        {
            DnssecSecurity.Secure => new Verdict(ValidationState.Secure, -1, v.MaxTtl),
            DnssecSecurity.Insecure => new Verdict(ValidationState.Insecure, v.Reason is { } r ? (int)r : -1, uint.MaxValue),
            _ => new Verdict(ValidationState.Bogus, (int)(v.Reason ?? ExtendedDnsErrorCode.DnssecBogus), RecordCache.BogusTtl),
        };
        return Judged(verdict with { Denial = v.Denial });
    }

    /// <summary>Counts a verdict for the metrics.</summary>
    private Verdict Judged(Verdict v)
    {
        if (v.State == ValidationState.Secure) Interlocked.Increment(ref _secure);
        else if (v.State == ValidationState.Insecure) Interlocked.Increment(ref _insecure);
        else if (v.State == ValidationState.Bogus) Interlocked.Increment(ref _bogus);
        return v;
    }

    private void Spent(Context ctx, int verifications)
    {
        Interlocked.Add(ref _verifications, verifications);
        ctx.Verifications += verifications;
    }

    /// <summary>A referral as <see cref="Classify"/> takes it: no answer, no SOA, NS of the class in the authority section.</summary>
    private static bool IsReferral(DnsMessage m, RecordClass @class) =>
        m.Answers.Count == 0 && m.Rcode == Rcode.NoError && !m.Authority.Exists(r => r.Type == RecordType.SOA && r.Class == @class)
        && m.Authority.Exists(r => r.Type == RecordType.NS && r.Class == @class);

    /// <summary>The keys of a signer: its zone must be a secure zone cut named exactly so, or lie below an insecure delegation.</summary>
    private async Task<(SignerKeys Keys, bool Transient)> SignerKeysAsync(AnchorState state, DnsName signer, RecordClass @class, Context ctx)
    {
        var (zone, keys, transient) = await ZoneStateAsync(state, signer, @class, ctx).ConfigureAwait(false);
        // A signer that is not the apex of the secure zone holding it has no keys (a forged signer name).
        if (keys.Security == DnssecSecurity.Secure && zone != signer) return (SignerKeys.BogusFor(ExtendedDnsErrorCode.DnskeyMissing), transient);
        return (keys, transient);
    }

    /// <summary>
    /// The deepest zone at or above <paramref name="name"/> and its state: the walk from the closest
    /// trust anchor down, stopping at the first insecure or bogus zone. No anchor above the name,
    /// or a negative trust anchor (RFC 7646), makes it insecure. Transient: some step could not be
    /// decided now (not cached).
    /// </summary>
    private async Task<(DnsName Zone, SignerKeys Keys, bool Transient)> ZoneStateAsync(AnchorState state, DnsName name, RecordClass @class, Context ctx)
    {
        var (anchors, cuts) = (state.Anchors, state.Cuts);
        name = name.ToLowerInvariant();
        if (anchors.IsNegative(name)) return (name, SignerKeys.Insecure, false);
        if (anchors.ClosestAnchor(name) is not { } anchor) return (DnsName.Root, SignerKeys.Insecure, false);
        var zone = anchor;
        var cut = await CutAsync(cuts, anchors, anchor, @class, ctx).ConfigureAwait(false);
        if (cut.ExpiresMs == 0) return (zone, cut.Keys, true);
        var keys = cut.Keys;
        for (int labels = anchor.LabelCount + 1; labels <= name.LabelCount && keys.Security == DnssecSecurity.Secure; labels++)
        {
            var child = name.Parent(name.LabelCount - labels);
            cut = await CutAsync(cuts, anchors, child, @class, ctx).ConfigureAwait(false);
            if (cut.ExpiresMs == 0) return (child, cut.Keys, true);
            if (!cut.IsCut) continue;
            zone = child;
            keys = cut.Keys;
        }
        return (zone, keys, false);
    }

    /// <summary>What <paramref name="name"/> is (a secure, insecure or bogus zone, or no cut), cached by name; ExpiresMs 0: undecided now.</summary>
    private async Task<Cut> CutAsync(ConcurrentDictionary<DnsName, Cut> cuts, TrustAnchors anchors, DnsName name, RecordClass @class, Context ctx)
    {
        long now = Cache.NowMs;
        if (cuts.TryGetValue(name, out var known) && known.ExpiresMs > now) return known;
        // A chain of trust that needs itself (a DS answer signed by the zone it is for) cannot be built.
        if (!ctx.CutsInProgress.Add(name)) return new Cut(true, SignerKeys.BogusFor(ExtendedDnsErrorCode.DnskeyMissing), 0);
        Cut cut;
        try
        {
            var (anchorDs, anchorKeys) = anchors.For(name);
            if (anchorDs.Count > 0 || anchorKeys.Count > 0)
            {
                var (keys, ttl, transient) = await ZoneKeysAsync(name, anchorDs, anchorKeys, @class, ctx).ConfigureAwait(false);
                cut = new Cut(true, keys, transient ? 0 : Until(now, keys.Security == DnssecSecurity.Bogus ? RecordCache.BogusTtl : ttl));
            }
            else cut = await CutFromDsAsync(name, @class, ctx).ConfigureAwait(false);
        }
        finally { ctx.CutsInProgress.Remove(name); }
        if (cut.ExpiresMs > now)
        {
            if (cuts.Count >= MaxCuts) TrimCuts(cuts, now);
            cuts[name] = cut;
        }
        return cut;
    }

    private long Until(long now, uint ttl) => now + 1000L * Math.Clamp(ttl, MinCutTtl, (uint)Math.Max(MinCutTtl, _options.MaxTtl.TotalSeconds));

    /// <summary>The cut at <paramref name="name"/> judged from its DS RRset (or the proof that it has none), asked of the parent.</summary>
    private async Task<Cut> CutFromDsAsync(DnsName name, RecordClass @class, Context ctx)
    {
        long now = Cache.NowMs;
        var o = await ResolveOneAsync(name, RecordType.DS, @class, ctx, refresh: false).ConfigureAwait(false);
        long bogusUntil = now + 1000L * RecordCache.BogusTtl;
        var bogus = SignerKeys.BogusFor(o.Reason >= 0 ? (ExtendedDnsErrorCode)o.Reason : ExtendedDnsErrorCode.DnssecBogus);
        uint negativeTtl = o.Soa?.Ttl ?? 0;
        // NSEC3 with too many iterations (RFC 9276) leaves a denial insecure; it cannot make a name a
        // zone cut, or any unsigned data below it in a signed zone would pass as insecure.
        bool unsupported = o.Reason == (int)ExtendedDnsErrorCode.UnsupportedNsec3IterationsValue;
        switch (o.Kind)
        {
            case Kind.Answer:
            {
                var ds = o.Records.FindAll(r => r.Type == RecordType.DS);
                if (o.Validation == ValidationState.Bogus) return new Cut(true, bogus, bogusUntil);
                if (o.Validation != ValidationState.Secure) return new Cut(true, SignerKeys.Insecure, Until(now, ds.Count > 0 ? ds[0].Ttl : 0));
                var (keys, ttl, transient) = await ZoneKeysAsync(name, ds, [], @class, ctx).ConfigureAwait(false);
                if (transient) return new Cut(true, keys, 0);
                return new Cut(true, keys, keys.Security == DnssecSecurity.Bogus ? bogusUntil : Until(now, Math.Min(ttl, ds.Count > 0 ? ds[0].Ttl : ttl)));
            }
            case Kind.NoData:
                return o.Validation switch
                {
                    // No DS: an insecure delegation when the proof shows NS there, else no cut at all.
                    ValidationState.Secure => new Cut(CutProofs.ShowsDelegation(o.Proof, name), SignerKeys.Insecure, Until(now, negativeTtl)),
                    // NSEC3 opt-out (RFC 5155 §9.2): an unsigned delegation may be there.
                    ValidationState.Insecure when !unsupported => new Cut(true, SignerKeys.Insecure, Until(now, negativeTtl)),
                    ValidationState.Insecure => new Cut(false, SignerKeys.Insecure, Until(now, negativeTtl)),
                    _ => new Cut(true, bogus, bogusUntil),
                };
            case Kind.NxDomain:
            case Kind.Cname:
                // No such name, or an alias: no zone cut here (data below it is judged on the parent's keys).
                return o.Validation switch
                {
                    ValidationState.Secure => new Cut(false, SignerKeys.Insecure, Until(now, negativeTtl)),
                    ValidationState.Insecure when !unsupported => new Cut(true, SignerKeys.Insecure, Until(now, negativeTtl)),
                    ValidationState.Insecure => new Cut(false, SignerKeys.Insecure, Until(now, negativeTtl)),
                    _ => new Cut(true, bogus, bogusUntil),
                };
            default:
                // No answer for the DS: the chain cannot be built now (not cached: a network failure passes).
                return new Cut(true, SignerKeys.BogusFor(ExtendedDnsErrorCode.DnskeyMissing), 0);
        }
    }

    /// <summary>
    /// A zone's DNSKEY RRset (fetched without the general validation, and without caching: it is
    /// what validates the rest) checked against the DS records or trusted keys designating it (RFC
    /// 4035 §5.2), then cached with its state; the TTL returned is the RRset's, capped by its
    /// signatures' life. Transient: no answer could be had now.
    /// </summary>
    private async Task<(SignerKeys Keys, uint Ttl, bool Transient)> ZoneKeysAsync(DnsName zone, IReadOnlyList<ResourceRecord> ds,
        IReadOnlyList<ResourceRecord> anchorKeys, RecordClass @class, Context ctx)
    {
        // While fetching, a key set that does not match the DS is one server's (or a spoofer's): the
        // zone's other servers are asked before it is believed, as for any bogus answer.
        var outer = ctx.KeyCheck;
        ctx.KeyCheck = (zone, m =>
        {
            var keys = m.Answers.FindAll(r => r.Type == RecordType.DNSKEY && r.Owner == zone);
            var sigs = m.Answers.FindAll(r => r.Type == RecordType.RRSIG && r.Owner == zone);
            var budget = new ValidationBudget { Sha1Disabled = !_options.AllowSha1 };
            var check = RrsetValidator.ValidateKeys(keys, sigs, zone, ds, anchorKeys, _time.GetUtcNow(), ref budget);
            Spent(ctx, budget.Verifications);
            return check.Security != DnssecSecurity.Bogus;
        });
        Outcome o;
        try
        {
            // A key set cached as bogus is fetched again (perhaps from another server) rather than believed.
            bool cachedBogus = Cache.TryGet(zone.Wire, RecordType.DNSKEY, @class, Cache.NowMs, false, out var cached)
                && cached.Validation == ValidationState.Bogus;
            o = await ResolveOneAsync(zone, RecordType.DNSKEY, @class, ctx, refresh: cachedBogus, validate: false).ConfigureAwait(false);
        }
        finally { ctx.KeyCheck = outer; }
        if (o.Kind is Kind.Fail or Kind.Lame or Kind.Referral) return (SignerKeys.BogusFor(ExtendedDnsErrorCode.DnskeyMissing), 0, true);
        if (o.Kind != Kind.Answer) return (SignerKeys.BogusFor(ExtendedDnsErrorCode.DnskeyMissing), RecordCache.BogusTtl, false);
        var dnskeys = o.Records.FindAll(r => r.Type == RecordType.DNSKEY && r.Owner == zone);
        var sigs = o.Records.FindAll(r => r.Type == RecordType.RRSIG && r.Owner == zone);
        if (dnskeys.Count == 0) return (SignerKeys.BogusFor(ExtendedDnsErrorCode.DnskeyMissing), RecordCache.BogusTtl, false);
        var budget = new ValidationBudget { Sha1Disabled = !_options.AllowSha1 };
        var result = RrsetValidator.ValidateKeys(dnskeys, sigs, zone, ds, anchorKeys, _time.GetUtcNow(), ref budget);
        Spent(ctx, budget.Verifications);
        uint ttl = Math.Min(dnskeys[0].Ttl, result.MaxTtl);
        var (keys, state) = result.Security switch
        {
            DnssecSecurity.Secure => (new SignerKeys(DnssecSecurity.Secure, dnskeys), ValidationState.Secure),
            DnssecSecurity.Insecure => (SignerKeys.Insecure, ValidationState.Insecure),
            _ => (SignerKeys.BogusFor(result.Reason ?? ExtendedDnsErrorCode.DnssecBogus), ValidationState.Bogus),
        };
        // The record cache gets the RRset with its verdict, for clients asking for it.
        Cache.AddRRset(dnskeys, TrustRank.AuthAnswer, state, sigs,
            state == ValidationState.Bogus ? (int)(result.Reason ?? ExtendedDnsErrorCode.DnssecBogus) : -1, result.MaxTtl);
        return (keys, ttl, false);
    }

    /// <summary>Whether a response to the chain of trust's own DNSKEY lookup fails the key check it runs under.</summary>
    private static bool KeysRejected(Context ctx, DnsMessage m, DnsName name, RecordType type, bool answer) =>
        answer && ctx.KeyCheck is { } check && type == RecordType.DNSKEY && name == check.Zone && m.Rcode == Rcode.NoError
        && m.Answers.Count > 0 && !check.Accept(m);

    /// <summary>
    /// The DNSKEY RRset of <paramref name="zone"/> and its RRSIGs, fresh from upstream (RFC 5011
    /// active refresh: the cache is neither asked nor changed), for the trust anchor updater to
    /// judge; null when no server answered with it.
    /// </summary>
    public async Task<(IReadOnlyList<ResourceRecord> Keys, IReadOnlyList<ResourceRecord> Sigs)?> FetchDnskeysAsync(DnsName zone, CancellationToken token)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(token);
        cts.CancelAfter(_options.ResolutionTimeout);
        var o = await ResolveOneAsync(zone, RecordType.DNSKEY, RecordClass.IN, new Context(cts.Token), refresh: true, validate: false).ConfigureAwait(false);
        if (o.Kind != Kind.Answer) return null;
        var keys = o.Records.FindAll(r => r.Type == RecordType.DNSKEY && r.Owner == zone);
        var sigs = o.Records.FindAll(r => r.Type == RecordType.RRSIG && r.Owner == zone);
        return keys.Count == 0 ? null : (keys, sigs);
    }

    /// <summary>The validated NSEC ranges answers are synthesised from (RFC 8198).</summary>
    public AggressiveNsec NsecRanges { get; } = new();

    /// <summary>Keeps the NSEC records of a secure negative answer for RFC 8198 synthesis (only those the validator verified).</summary>
    private void KeepNsecRanges(ResourceRecord soa, List<ResourceRecord> proof, Verdict verdict)
    {
        if (verdict.State != ValidationState.Secure || verdict.Denial is null || !_options.AggressiveNsec || soa.Class != RecordClass.IN
            || soa.Data.Length < 20) return;
        uint minimum = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(soa.Data.AsSpan(soa.Data.Length - 4));
        uint ttl = Math.Min(Math.Min(soa.Ttl, minimum), Math.Min(verdict.MaxTtl, (uint)_options.MaxNegativeTtl.TotalSeconds));
        NsecRanges.Add(soa, proof, ttl, Cache.NowMs);
    }

    /// <summary>
    /// RFC 8198: NXDOMAIN or NODATA from cached validated NSEC ranges, secure, cached as any negative
    /// answer (so the next asker is answered on the receive thread); null when the ranges do not prove it.
    /// </summary>
    private Outcome? FromNsecRanges(DnsName name, RecordType type, RecordClass @class)
    {
        if (!_options.AggressiveNsec || Anchors is not { } anchors || @class != RecordClass.IN || type is RecordType.ANY) return null;
        // Below a negative trust anchor nothing is validated, so nothing is proven either.
        if (anchors.IsNegative(name)) return null;
        if (!NsecRanges.TrySynthesise(name, type, Cache.NowMs, out bool nx, out var soa, out var proof, out uint ttl, out var chainZone)) return null;
        // A forward zone below the chain's zone (split horizon) answers for its names, not the public chain.
        foreach (var (forwarded, _) in _forwarders)
            if (name.IsSubdomainOf(forwarded) && forwarded.IsSubdomainOf(chainZone) && forwarded != chainZone) return null;
        NsecRanges.CountSynthesised();
        var soaNow = soa.WithTtl(Math.Min(soa.Ttl, ttl));
        Cache.AddNegative(name, type, @class, nx, soaNow, TrustRank.AuthAuthority, ValidationState.Secure, proof, -1, ttl);
        return new Outcome(nx ? Kind.NxDomain : Kind.NoData, [], NegativeSoa(soaNow)) { Validation = ValidationState.Secure, Proof = proof };
    }

    /// <summary>Drops expired zone states; if that is not enough, all of them (they are rebuilt from the record cache).</summary>
    private static void TrimCuts(ConcurrentDictionary<DnsName, Cut> cuts, long now)
    {
        foreach (var (name, cut) in cuts)
            if (cut.ExpiresMs <= now) cuts.TryRemove(name, out _);
        if (cuts.Count >= MaxCuts) cuts.Clear();
    }
}
