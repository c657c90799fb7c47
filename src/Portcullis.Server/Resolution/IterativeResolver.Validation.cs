using System.Collections.Concurrent;
using Portcullis.Protocol.Dnssec;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Server.Validation;

namespace Portcullis.Server.Resolution;

/// <summary>
/// DNSSEC validation of what the resolver receives (RFC 4033–4035, RFC 5155), before anything is
/// cached. Each answer or negative answer is judged by <see cref="ResponseValidator"/> on the keys
/// of the zones that signed it; those keys come from the chain of trust, walked down from the
/// closest trust anchor one label at a time (as Unbound's validator walks it):
/// <list type="bullet">
/// <item>at the anchor, the DNSKEY RRset must be signed by a key the anchor designates;</item>
/// <item>below, "NAME DS" is resolved (from the parent's servers) and validated on the parent's keys:
/// DS present → NAME is a secure zone whose DNSKEY RRset must match one (RFC 4035 §5.2); no DS
/// with an NSEC/NSEC3 showing NS there (or NSEC3 opt-out) → an insecure delegation, and everything
/// below is insecure; no DS and no NS → NAME is no zone cut, the walk goes on; anything bogus → bogus.</item>
/// </list>
/// Zone states are kept in a bounded cache of their own (<see cref="MaxCuts"/>); DNSKEY and DS
/// RRsets also go to the record cache with their state. Per response at most
/// <see cref="MaxZonesPerResponse"/> distinct zones are looked up, on top of
/// <see cref="ValidationBudget"/> and <see cref="Nsec3Budget"/> (KeyTrap and NSEC3 limits).
/// </summary>
public sealed partial class IterativeResolver
{
    /// <summary>Zones (signers, or holders of unsigned data) one response may make the validator look up.</summary>
    public const int MaxZonesPerResponse = 8;
    /// <summary>Zone states kept (each a name and, when secure, its DNSKEY RRset).</summary>
    public const int MaxCuts = 20_000;

    private volatile TrustAnchors? _anchors;
    private long _verifications, _secure, _insecure, _bogus;

    /// <summary>Signature verifications run (each bounded per response by <see cref="ValidationBudget"/>: KeyTrap shows here).</summary>
    public long SignatureVerifications => Interlocked.Read(ref _verifications);
    /// <summary>Responses validated, by verdict.</summary>
    public (long Secure, long Insecure, long Bogus) Verdicts => (Interlocked.Read(ref _secure), Interlocked.Read(ref _insecure), Interlocked.Read(ref _bogus));
    private readonly ConcurrentDictionary<DnsName, Cut> _cuts = new();

    /// <summary>The trust anchors validation starts from (null: no validation); RFC 5011 updates swap them.</summary>
    public TrustAnchors? Anchors
    {
        get => _anchors;
        set
        {
            if (ReferenceEquals(_anchors, value)) return;
            _anchors = value;
            // Zone states were built on the old anchors: rebuild them (from the record cache) on the new.
            _cuts.Clear();
            NsecRanges.Clear();
        }
    }

    /// <summary>The validator's verdict on one response, as the cache stores it.</summary>
    private readonly record struct Verdict(ValidationState State, int Reason, uint MaxTtl)
    {
        public static Verdict None { get; } = new(ValidationState.Unchecked, -1, uint.MaxValue);
    }

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

    /// <summary>A negative answer's proof: the SOA's RRSIGs, the NSEC and NSEC3 records and their RRSIGs (RFC 4035 §3.1.3).</summary>
    private static List<ResourceRecord> DenialProof(DnsMessage m, ResourceRecord? soa)
    {
        var list = new List<ResourceRecord>();
        if (soa is null) return list;
        foreach (var r in m.Authority)
        {
            if (r.Class != soa.Class) continue;
            if (r.Type is RecordType.NSEC or RecordType.NSEC3) list.Add(r);
            else if (r.Type == RecordType.RRSIG && Rrsig.TryRead(r.Data, out var sig)
                && (sig.TypeCovered is RecordType.NSEC or RecordType.NSEC3 || (sig.TypeCovered == RecordType.SOA && r.Owner == soa.Owner)))
                list.Add(r);
        }
        return list;
    }

    /// <summary>
    /// Validates a response that will be classified as an answer or a negative answer (referrals and
    /// lame answers are not judged: nothing from them reaches a client). Returns the verdict the
    /// cache stores with what it keeps.
    /// </summary>
    private async Task<Verdict> ValidateAsync(DnsMessage m, DnsName zone, DnsName qname, RecordType qtype, RecordClass @class, bool forwarded, Context ctx)
    {
        if (_anchors is not { } anchors) return Verdict.None;
        if (m.Rcode is not (Rcode.NoError or Rcode.NXDomain)) return Verdict.None;
        if (!forwarded && !m.Header.AuthoritativeAnswer) return Verdict.None;
        if (IsReferral(m)) return Verdict.None;
        // The zones whose keys the response needs: the signers its RRSIGs name, and the zones holding
        // unsigned answer, SOA and denial RRsets (those must turn out insecure).
        var signers = new List<DnsName>();
        var unsigned = new List<DnsName>();
        bool dname = m.Answers.Exists(r => r.Type == RecordType.DNAME);
        foreach (var (section, isAnswer) in ((List<ResourceRecord>, bool)[])[(m.Answers, true), (m.Authority, false)])
        {
            foreach (var r in section)
            {
                if (r.Class != @class) continue;
                if (r.Type == RecordType.RRSIG)
                {
                    if (Rrsig.TryRead(r.Data, out var sig) && DnsName.TryMeasureWire(sig.SignerName, out int length, out _))
                        AddName(signers, DnsName.FromWire(sig.SignerName[..length]));
                    continue;
                }
                if (!isAnswer && r.Type is not (RecordType.SOA or RecordType.NSEC or RecordType.NSEC3)) continue;
                if (isAnswer && dname && r.Type == RecordType.CNAME) continue;
                if (Signatures(section, r).Count == 0) AddName(unsigned, r.Owner);
            }
        }
        if (signers.Count + unsigned.Count > MaxZonesPerResponse)
            return new Verdict(ValidationState.Bogus, (int)ExtendedDnsErrorCode.DnssecBogus, RecordCache.BogusTtl);
        var keys = new Dictionary<DnsName, SignerKeys>();
        foreach (var s in signers) keys[s] = await SignerKeysAsync(anchors, s, @class, ctx).ConfigureAwait(false);
        foreach (var u in unsigned)
            if (!keys.ContainsKey(u)) keys[u] = (await ZoneStateAsync(anchors, u, @class, ctx).ConfigureAwait(false)).Keys;
        SignerKeys KeysFor(DnsName name) =>
            keys.TryGetValue(name.ToLowerInvariant(), out var k) ? k : SignerKeys.BogusFor(ExtendedDnsErrorCode.DnskeyMissing);
        var budget = new ValidationBudget { Sha1Disabled = !_options.AllowSha1 };
        var nsec3Budget = new Nsec3Budget();
        var v = ResponseValidator.Validate(m, new DnsQuestion(qname, qtype, @class), KeysFor, _time.GetUtcNow(), ref budget, ref nsec3Budget);
        Interlocked.Add(ref _verifications, budget.Verifications);
        if (v.Security == DnssecSecurity.Secure) Interlocked.Increment(ref _secure);
        else if (v.Security == DnssecSecurity.Insecure) Interlocked.Increment(ref _insecure);
        else Interlocked.Increment(ref _bogus);
        return v.Security switch
        {
            DnssecSecurity.Secure => new Verdict(ValidationState.Secure, -1, v.MaxTtl),
            DnssecSecurity.Insecure => new Verdict(ValidationState.Insecure, -1, uint.MaxValue),
            _ => new Verdict(ValidationState.Bogus, (int)(v.Reason ?? ExtendedDnsErrorCode.DnssecBogus), RecordCache.BogusTtl),
        };
    }

    private static void AddName(List<DnsName> names, DnsName name)
    {
        var lower = name.ToLowerInvariant();
        if (!names.Contains(lower)) names.Add(lower);
    }

    /// <summary>A referral: no answer, no SOA, NS in the authority section.</summary>
    private static bool IsReferral(DnsMessage m) =>
        m.Answers.Count == 0 && m.Rcode == Rcode.NoError && !m.Authority.Exists(r => r.Type == RecordType.SOA)
        && m.Authority.Exists(r => r.Type == RecordType.NS);

    /// <summary>The keys of a signer: its zone must be a secure zone cut named exactly so, or lie below an insecure delegation.</summary>
    private async Task<SignerKeys> SignerKeysAsync(TrustAnchors anchors, DnsName signer, RecordClass @class, Context ctx)
    {
        var (zone, keys) = await ZoneStateAsync(anchors, signer, @class, ctx).ConfigureAwait(false);
        // A signer that is not the apex of the secure zone holding it has no keys (a forged signer name).
        if (keys.Security == DnssecSecurity.Secure && zone != signer) return SignerKeys.BogusFor(ExtendedDnsErrorCode.DnskeyMissing);
        return keys;
    }

    /// <summary>
    /// The deepest zone at or above <paramref name="name"/> and its state: the walk from the closest
    /// trust anchor down, stopping at the first insecure or bogus zone. No anchor above the name,
    /// or a negative trust anchor (RFC 7646), makes it insecure.
    /// </summary>
    private async Task<(DnsName Zone, SignerKeys Keys)> ZoneStateAsync(TrustAnchors anchors, DnsName name, RecordClass @class, Context ctx)
    {
        name = name.ToLowerInvariant();
        if (anchors.IsNegative(name)) return (name, SignerKeys.Insecure);
        if (anchors.ClosestAnchor(name) is not { } anchor) return (DnsName.Root, SignerKeys.Insecure);
        var zone = anchor;
        var keys = (await CutAsync(anchors, anchor, @class, ctx).ConfigureAwait(false)).Keys;
        for (int labels = anchor.LabelCount + 1; labels <= name.LabelCount && keys.Security == DnssecSecurity.Secure; labels++)
        {
            var child = name.Parent(name.LabelCount - labels);
            var cut = await CutAsync(anchors, child, @class, ctx).ConfigureAwait(false);
            if (!cut.IsCut) continue;
            zone = child;
            keys = cut.Keys;
        }
        return (zone, keys);
    }

    /// <summary>What <paramref name="name"/> is (a secure, insecure or bogus zone, or no cut), cached by name.</summary>
    private async Task<Cut> CutAsync(TrustAnchors anchors, DnsName name, RecordClass @class, Context ctx)
    {
        long now = Cache.NowMs;
        if (_cuts.TryGetValue(name, out var known) && known.ExpiresMs > now) return known;
        // A chain of trust that needs itself (a DS answer signed by the zone it is for) cannot be built.
        if (!ctx.CutsInProgress.Add(name)) return new Cut(true, SignerKeys.BogusFor(ExtendedDnsErrorCode.DnskeyMissing), 0);
        Cut cut;
        try
        {
            var (anchorDs, anchorKeys) = anchors.For(name);
            if (anchorDs.Count > 0 || anchorKeys.Count > 0)
            {
                var (keys, ttl) = await ZoneKeysAsync(name, anchorDs, anchorKeys, @class, ctx).ConfigureAwait(false);
                cut = new Cut(true, keys, Expiry(keys, ttl));
            }
            else cut = await CutFromDsAsync(name, @class, ctx).ConfigureAwait(false);
        }
        finally { ctx.CutsInProgress.Remove(name); }
        if (cut.ExpiresMs > now)
        {
            if (_cuts.Count >= MaxCuts) TrimCuts(now);
            _cuts[name] = cut;
        }
        return cut;

        long Expiry(SignerKeys keys, uint ttl) =>
            now + 1000L * (keys.Security == DnssecSecurity.Bogus ? RecordCache.BogusTtl : Math.Min(ttl, (uint)_options.MaxTtl.TotalSeconds));
    }

    /// <summary>The cut at <paramref name="name"/> judged from its DS RRset (or the proof that it has none), asked of the parent.</summary>
    private async Task<Cut> CutFromDsAsync(DnsName name, RecordClass @class, Context ctx)
    {
        long now = Cache.NowMs;
        var o = await ResolveOneAsync(name, RecordType.DS, @class, ctx, refresh: false).ConfigureAwait(false);
        long Until(uint ttl) => now + 1000L * Math.Min(ttl, (uint)_options.MaxTtl.TotalSeconds);
        long bogusUntil = now + 1000L * RecordCache.BogusTtl;
        var bogus = SignerKeys.BogusFor(o.Reason >= 0 ? (ExtendedDnsErrorCode)o.Reason : ExtendedDnsErrorCode.DnssecBogus);
        uint negativeTtl = o.Soa?.Ttl ?? 0;
        switch (o.Kind)
        {
            case Kind.Answer:
            {
                var ds = o.Records.FindAll(r => r.Type == RecordType.DS);
                if (o.Validation == ValidationState.Bogus) return new Cut(true, bogus, bogusUntil);
                if (o.Validation != ValidationState.Secure)
                    return new Cut(true, SignerKeys.Insecure, Until(ds.Count > 0 ? ds[0].Ttl : 0));
                var (keys, ttl) = await ZoneKeysAsync(name, ds, [], @class, ctx).ConfigureAwait(false);
                return new Cut(true, keys, keys.Security == DnssecSecurity.Bogus ? bogusUntil : Until(Math.Min(ttl, ds.Count > 0 ? ds[0].Ttl : ttl)));
            }
            case Kind.NoData:
                return o.Validation switch
                {
                    // No DS: an insecure delegation when the proof shows NS there, else no cut at all.
                    ValidationState.Secure => new Cut(CutProofs.ShowsDelegation(o.Proof, name), SignerKeys.Insecure, Until(negativeTtl)),
                    // NSEC3 opt-out (RFC 5155 §9.2) or a parent found insecure.
                    ValidationState.Insecure => new Cut(true, SignerKeys.Insecure, Until(negativeTtl)),
                    _ => new Cut(true, bogus, bogusUntil),
                };
            case Kind.NxDomain:
            case Kind.Cname:
                // No such name, or an alias: no zone cut here (data below it is judged on the parent's keys).
                return o.Validation switch
                {
                    ValidationState.Secure => new Cut(false, SignerKeys.Insecure, Until(negativeTtl)),
                    ValidationState.Insecure => new Cut(true, SignerKeys.Insecure, Until(negativeTtl)),
                    _ => new Cut(true, bogus, bogusUntil),
                };
            default:
                // No answer for the DS: the chain cannot be built now (not cached: a network failure passes).
                return new Cut(true, SignerKeys.BogusFor(ExtendedDnsErrorCode.DnskeyMissing), 0);
        }
    }

    /// <summary>
    /// A zone's DNSKEY RRset (fetched without the general validation: it is what validates the rest)
    /// checked against the DS records or trusted keys designating it (RFC 4035 §5.2), and cached with
    /// its state; the TTL returned is the RRset's, capped by its signatures' life.
    /// </summary>
    private async Task<(SignerKeys Keys, uint Ttl)> ZoneKeysAsync(DnsName zone, IReadOnlyList<ResourceRecord> ds, IReadOnlyList<ResourceRecord> anchorKeys,
        RecordClass @class, Context ctx)
    {
        var o = await ResolveOneAsync(zone, RecordType.DNSKEY, @class, ctx, refresh: false, validate: false).ConfigureAwait(false);
        if (o.Kind != Kind.Answer) return (SignerKeys.BogusFor(ExtendedDnsErrorCode.DnskeyMissing), 0);
        var dnskeys = o.Records.FindAll(r => r.Type == RecordType.DNSKEY && r.Owner == zone);
        var sigs = o.Records.FindAll(r => r.Type == RecordType.RRSIG && r.Owner == zone);
        if (dnskeys.Count == 0) return (SignerKeys.BogusFor(ExtendedDnsErrorCode.DnskeyMissing), 0);
        var budget = new ValidationBudget { Sha1Disabled = !_options.AllowSha1 };
        var result = RrsetValidator.ValidateKeys(dnskeys, sigs, zone, ds, anchorKeys, _time.GetUtcNow(), ref budget);
        Interlocked.Add(ref _verifications, budget.Verifications);
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
        return (keys, ttl);
    }

    /// <summary>
    /// The DNSKEY RRset of <paramref name="zone"/> and its RRSIGs, fresh from upstream (RFC 5011
    /// active refresh: the cache is not asked), for the trust anchor updater to judge; null when no
    /// server answered with it.
    /// </summary>
    public async Task<(IReadOnlyList<ResourceRecord> Keys, IReadOnlyList<ResourceRecord> Sigs)?> FetchDnskeysAsync(DnsName zone, CancellationToken token)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(token);
        cts.CancelAfter(_options.ResolutionTimeout);
        var o = await ResolveOneAsync(zone, RecordType.DNSKEY, RecordClass.IN, new Context(cts.Token), refresh: true, validate: false).ConfigureAwait(false);
        // The fetch cached the RRset unjudged: the zone's state is rebuilt (and the RRset judged) when next needed.
        _cuts.TryRemove(zone.ToLowerInvariant(), out _);
        if (o.Kind != Kind.Answer) return null;
        var keys = o.Records.FindAll(r => r.Type == RecordType.DNSKEY && r.Owner == zone);
        var sigs = o.Records.FindAll(r => r.Type == RecordType.RRSIG && r.Owner == zone);
        return keys.Count == 0 ? null : (keys, sigs);
    }

    /// <summary>The validated NSEC ranges answers are synthesised from (RFC 8198).</summary>
    public AggressiveNsec NsecRanges { get; } = new();

    /// <summary>Keeps the NSEC records of a secure negative answer for RFC 8198 synthesis.</summary>
    private void KeepNsecRanges(ResourceRecord soa, List<ResourceRecord> proof, Verdict verdict)
    {
        if (verdict.State != ValidationState.Secure || !_options.AggressiveNsec || soa.Class != RecordClass.IN || soa.Data.Length < 20) return;
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
        if (!_options.AggressiveNsec || _anchors is null || @class != RecordClass.IN || type is RecordType.ANY) return null;
        if (!NsecRanges.TrySynthesise(name, type, Cache.NowMs, out bool nx, out var soa, out var proof, out uint ttl)) return null;
        var soaNow = soa.WithTtl(Math.Min(soa.Ttl, ttl));
        Cache.AddNegative(name, type, @class, nx, soaNow, TrustRank.AuthAuthority, ValidationState.Secure, proof, -1, ttl);
        return new Outcome(nx ? Kind.NxDomain : Kind.NoData, [], NegativeSoa(soaNow)) { Validation = ValidationState.Secure, Proof = proof };
    }

    /// <summary>Drops expired zone states; if that is not enough, all of them (they are rebuilt from the record cache).</summary>
    private void TrimCuts(long now)
    {
        foreach (var (name, cut) in _cuts)
            if (cut.ExpiresMs <= now) _cuts.TryRemove(name, out _);
        if (_cuts.Count >= MaxCuts) _cuts.Clear();
    }
}
