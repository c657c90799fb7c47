using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;

namespace Portcullis.Protocol.Dnssec;

/// <summary>What a validator knows of a zone's keys: its state, and the validated DNSKEY RRset when secure.</summary>
public readonly record struct SignerKeys(DnssecSecurity Security, IReadOnlyList<ResourceRecord> Keys, ExtendedDnsErrorCode? Reason = null)
{
    public static SignerKeys Insecure { get; } = new(DnssecSecurity.Insecure, []);
    public static SignerKeys BogusFor(ExtendedDnsErrorCode reason) => new(DnssecSecurity.Bogus, [], reason);
}

/// <summary>The verdict on one response: the weakest state of its parts, the first bogus reason, and the TTL cap.</summary>
public readonly record struct ResponseVerdict(DnssecSecurity Security, ExtendedDnsErrorCode? Reason, uint MaxTtl, string? Detail)
{
    public bool IsSecure => Security == DnssecSecurity.Secure;
    /// <summary>The NSEC and NSEC3 records that verified, with their RRSIGs: all a cache may keep of the denial (and use again, RFC 8198).</summary>
    public IReadOnlyList<ResourceRecord> Denial { get; init; } = [];
}

/// <summary>
/// Validation of one authoritative response as a resolver receives it (RFC 4035 §5): every RRset
/// of the answer section is checked against the keys of its signer (given by the caller, who
/// follows the chain of trust: <see cref="RrsetValidator.ValidateKeys"/>); a wildcard answer needs
/// the proof that the name itself does not exist (§5.3.4); a negative answer (NXDOMAIN, or NOERROR
/// without the type asked) needs its SOA and its NSEC or NSEC3 records validated and the denial
/// proven (§5.4, RFC 5155 §8). The result is the weakest of the parts: bogus if any is, else
/// insecure if any is (an unsigned zone below an insecure delegation), else secure.
/// <c>keysFor(name)</c> answers for the zone that holds <c>name</c> (the caller walks up to the
/// closest zone it knows: a signer name, or the owner of unsigned data).
/// </summary>
public static class ResponseValidator
{
    public static ResponseVerdict Validate(DnsMessage response, DnsQuestion question, Func<DnsName, SignerKeys> keysFor, DateTimeOffset now,
        ref ValidationBudget budget, ref Nsec3Budget nsec3Budget)
    {
        var state = new Verdict();
        var answers = Group(response.Answers);
        var authority = Group(response.Authority);
        // The answer section: each RRset (CNAME/DNAME chains included) on its own signer's keys.
        foreach (var set in answers)
        {
            if (set.Type == RecordType.RRSIG) continue;
            // A CNAME synthesised from a DNAME in the answer is unsigned (RFC 6672 §5.3.1): the
            // DNAME is validated, and the chain below follows the DNAME, not the wire CNAME.
            if (set.Type == RecordType.CNAME && !HasSignatures(set, answers)
                && answers.Exists(d => d.Type == RecordType.DNAME && set.Owner.IsSubdomainOf(d.Owner) && set.Owner != d.Owner))
                continue;
            var result = ValidateSet(set, answers, keysFor, now, ref budget, out var signer);
            state.Add(result.Security, result.Reason, result.MaxTtl, $"{set.Owner} {RecordTypes.ToText(set.Type)}");
            if (result.Security == DnssecSecurity.Secure && result.Labels < set.Owner.LabelCount && !set.Owner.IsWildcard)
            {
                // Synthesised from a wildcard: the name itself must be proven absent.
                var proof = WildcardProof(authority, keysFor, set.Owner, result.Labels, signer!, now, ref budget, ref nsec3Budget, ref state);
                if (proof != DenialResult.Proven)
                    state.Add(proof is DenialResult.OptOut or DenialResult.Unsupported ? DnssecSecurity.Insecure : DnssecSecurity.Bogus,
                        Reason(proof), uint.MaxValue, $"{set.Owner}: wildcard answer without proof that the name does not exist");
            }
        }
        var (target, answered) = FollowChain(answers, question);
        if (answered || response.Header.Rcode is not (byte)Rcode.NoError and not (byte)Rcode.NXDomain) return state.Result;

        // A negative answer for the end of the chain: SOA and NSEC/NSEC3 validated, then the proof.
        var soa = authority.FirstOrDefault(s => s.Type == RecordType.SOA && target.IsSubdomainOf(s.Owner));
        // A chain that leads out of what this response holds (no SOA for its end): judged as far as
        // it goes; its target is a question of its own.
        if (soa is null && target != question.Name) return state.Result;
        if (soa is null)
        {
            // No SOA: a referral or a lame answer, not a negative answer this validator can judge.
            state.Add(DnssecSecurity.Bogus, ExtendedDnsErrorCode.DnssecBogus, uint.MaxValue, $"{target}: negative answer without SOA");
            return state.Result;
        }
        var zone = soa.Owner;
        var soaResult = ValidateSet(soa, authority, keysFor, now, ref budget, out _);
        state.Add(soaResult.Security, soaResult.Reason, soaResult.MaxTtl, $"{zone} SOA");
        if (soaResult.Security != DnssecSecurity.Secure) return state.Result;
        var (nsecs, nsec3s) = DenialRecords(authority, zone, keysFor, now, ref budget, ref state);
        if (state.Security == DnssecSecurity.Bogus) return state.Result;
        bool nxdomain = response.Header.Rcode == (byte)Rcode.NXDomain;
        DenialResult denial;
        if (nsec3s.Count > 0)
            denial = nxdomain ? Nsec3Proofs.NameError(nsec3s, target, zone, ref nsec3Budget)
                : Nsec3Proofs.NoData(nsec3s, target, question.Type, zone, ref nsec3Budget);
        else if (nsecs.Count > 0)
            denial = nxdomain ? NsecProofs.NameError(nsecs, target, zone) : NsecProofs.NoData(nsecs, target, question.Type, zone);
        else
        {
            state.Add(DnssecSecurity.Bogus, ExtendedDnsErrorCode.NsecMissing, uint.MaxValue, $"{target}: no NSEC or NSEC3 records");
            return state.Result;
        }
        if (denial != DenialResult.Proven)
            state.Add(denial is DenialResult.OptOut or DenialResult.Unsupported ? DnssecSecurity.Insecure : DnssecSecurity.Bogus,
                Reason(denial), uint.MaxValue, $"{target}: {(nxdomain ? "NXDOMAIN" : "NODATA")} not proven ({denial})");
        return state.Result;
    }

    /// <summary>
    /// The end of the answer chain from the question's name: data of the type asked (answered), or
    /// the last name reached through CNAMEs and DNAMEs (the DNAME substitution computed here, RFC
    /// 6672 §2.2, never read from the wire CNAME).
    /// </summary>
    private static (DnsName Target, bool Answered) FollowChain(List<RecordSet> answers, DnsQuestion question)
    {
        var target = question.Name;
        for (int step = 0; step < 32; step++)
        {
            if (answers.Exists(s => s.Owner == target && s.Type != RecordType.RRSIG && (s.Type == question.Type || question.Type == RecordType.ANY)))
                return (target, true);
            var cname = answers.Find(s => s.Owner == target && s.Type == RecordType.CNAME && HasSignaturesOrNoDname(s, answers));
            if (cname is not null && cname.Records.Count > 0 && DnsName.TryMeasureWire(cname.Records[0].Data, out int length, out _))
            {
                target = DnsName.FromWire(cname.Records[0].Data.AsSpan(0, length));
                continue;
            }
            var dname = answers.Find(s => s.Type == RecordType.DNAME && target.IsSubdomainOf(s.Owner) && target != s.Owner);
            if (dname is not null && dname.Records.Count > 0 && DnsName.TryMeasureWire(dname.Records[0].Data, out int dl, out _))
            {
                if (!target.TrySubstitute(dname.Owner, DnsName.FromWire(dname.Records[0].Data.AsSpan(0, dl)), out var next)) break;
                target = next;
                continue;
            }
            break;
        }
        return (target, false);
    }

    /// <summary>A CNAME the chain may follow: signed, or not one synthesised below a DNAME of the answer.</summary>
    private static bool HasSignaturesOrNoDname(RecordSet set, List<RecordSet> answers) =>
        HasSignatures(set, answers) || !answers.Exists(d => d.Type == RecordType.DNAME && set.Owner.IsSubdomainOf(d.Owner) && set.Owner != d.Owner);

    private static ExtendedDnsErrorCode? Reason(DenialResult d) => d switch
    {
        DenialResult.Unsupported => ExtendedDnsErrorCode.UnsupportedNsec3IterationsValue,
        DenialResult.BudgetExceeded => ExtendedDnsErrorCode.DnssecBogus,   // a limit hit, told as Unbound tells it
        DenialResult.OptOut => null,
        _ => ExtendedDnsErrorCode.DnssecBogus,   // records there, proving nothing: 6 (12 is for no NSEC/NSEC3 at all), as Unbound
    };

    /// <summary>
    /// The validated NSEC and NSEC3 records of a section that belong to <paramref name="zone"/>: owned
    /// inside it and signed by it (an NSEC of another signed zone, however valid, proves nothing
    /// about this one: its "next" name may point anywhere).
    /// </summary>
    private static (List<NsecRecord>, List<Nsec3Record>) DenialRecords(List<RecordSet> sets, DnsName zone, Func<DnsName, SignerKeys> keysFor, DateTimeOffset now,
        ref ValidationBudget budget, ref Verdict state)
    {
        var nsecs = new List<NsecRecord>();
        var nsec3s = new List<Nsec3Record>();
        foreach (var set in sets)
        {
            if (set.Type is not (RecordType.NSEC or RecordType.NSEC3) || !set.Owner.IsSubdomainOf(zone)) continue;
            if (!SignedOnlyBy(set, sets, zone)) continue;
            // Only validated records prove anything; others are ignored (not counted against the
            // verdict: an extra unsigned NSEC must not make a signed answer insecure). Without
            // validated ones the proof fails, and that is bogus.
            var result = ValidateSet(set, sets, keysFor, now, ref budget, out _);
            if (result.Security != DnssecSecurity.Secure)
            {
                if (result.LimitExceeded) state.Add(DnssecSecurity.Bogus, result.Reason, uint.MaxValue, "validation limit");
                continue;
            }
            state.Add(result.Security, result.Reason, result.MaxTtl, $"{set.Owner} {RecordTypes.ToText(set.Type)}");
            state.AddDenial(set.Records, sets, set.Owner, set.Type);
            foreach (var r in set.Records)
            {
                if (r.Type == RecordType.NSEC && NsecRecord.From(r) is { } n) nsecs.Add(n);
                if (r.Type == RecordType.NSEC3 && Nsec3Record.From(r) is { } n3) nsec3s.Add(n3);
            }
        }
        return (nsecs, nsec3s);
    }

    private static DenialResult WildcardProof(List<RecordSet> authority, Func<DnsName, SignerKeys> keysFor, DnsName name, int labels, DnsName zone,
        DateTimeOffset now, ref ValidationBudget budget, ref Nsec3Budget nsec3Budget, ref Verdict state)
    {
        var (nsecs, nsec3s) = DenialRecords(authority, zone, keysFor, now, ref budget, ref state);
        if (nsec3s.Count > 0) return Nsec3Proofs.WildcardAnswer(nsec3s, name, labels, zone, ref nsec3Budget);
        return NsecProofs.WildcardAnswer(nsecs, name);
    }

    /// <summary>One RRset on the keys of the signer its RRSIGs name (the signer must be the owner or an ancestor).</summary>
    private static ValidationResult ValidateSet(RecordSet set, List<RecordSet> section, Func<DnsName, SignerKeys> keysFor, DateTimeOffset now,
        ref ValidationBudget budget, out DnsName? signer)
    {
        signer = null;
        var sigs = new List<ResourceRecord>();
        foreach (var s in section)
            if (s.Type == RecordType.RRSIG && s.Owner == set.Owner)
                foreach (var r in s.Records)
                    if (Rrsig.TryRead(r.Data, out var rrsig) && rrsig.TypeCovered == set.Type)
                    {
                        sigs.Add(r);
                        if (signer is null && DnsName.TryMeasureWire(rrsig.SignerName, out int length, out _))
                            signer = DnsName.FromWire(rrsig.SignerName[..length]);
                    }
        if (signer is null || !set.Owner.IsSubdomainOf(signer))
        {
            // Unsigned: fine only where the zone holding the owner is insecure.
            // In a zone already found bogus (its keys missing or broken), that is the reason given.
            var keys = keysFor(set.Owner);
            return keys.Security switch
            {
                DnssecSecurity.Insecure => ValidationResult.InsecureFor(null),
                DnssecSecurity.Bogus when keys.Reason is { } reason => ValidationResult.BogusFor(reason),
                _ => ValidationResult.BogusFor(ExtendedDnsErrorCode.RrsigsMissing),
            };
        }
        var signerKeys = keysFor(signer);
        return signerKeys.Security switch
        {
            DnssecSecurity.Insecure => ValidationResult.InsecureFor(null),
            DnssecSecurity.Bogus => ValidationResult.BogusFor(signerKeys.Reason ?? ExtendedDnsErrorCode.DnssecBogus),
            _ => RrsetValidator.Validate(set.Records, sigs, signer, signerKeys.Keys, now, ref budget),
        };
    }

    /// <summary>Whether every RRSIG covering the set names <paramref name="zone"/> as its signer (and there is one).</summary>
    private static bool SignedOnlyBy(RecordSet set, List<RecordSet> section, DnsName zone)
    {
        bool any = false;
        foreach (var s in section)
            if (s.Type == RecordType.RRSIG && s.Owner == set.Owner)
                foreach (var r in s.Records)
                    if (Rrsig.TryRead(r.Data, out var sig) && sig.TypeCovered == set.Type)
                    {
                        if (!DnsName.EqualsIgnoreCase(sig.SignerName, zone.Wire)) return false;
                        any = true;
                    }
        return any;
    }

    private static bool HasSignatures(RecordSet set, List<RecordSet> section)
    {
        foreach (var s in section)
            if (s.Type == RecordType.RRSIG && s.Owner == set.Owner)
                foreach (var r in s.Records)
                    if (Rrsig.TryRead(r.Data, out var rrsig) && rrsig.TypeCovered == set.Type) return true;
        return false;
    }

    private sealed record RecordSet(DnsName Owner, RecordType Type, List<ResourceRecord> Records);

    /// <summary>A section as RRsets in order of first appearance (RRSIGs grouped by owner).</summary>
    private static List<RecordSet> Group(IReadOnlyList<ResourceRecord> records)
    {
        var sets = new List<RecordSet>();
        foreach (var r in records)
        {
            var set = sets.Find(s => s.Type == r.Type && s.Owner == r.Owner);
            if (set is null) sets.Add(set = new RecordSet(r.Owner, r.Type, []));
            set.Records.Add(r);
        }
        return sets;
    }

    /// <summary>The running verdict: the weakest security seen, the first reason of it, the lowest TTL cap.</summary>
    private struct Verdict()
    {
        public DnssecSecurity Security = DnssecSecurity.Secure;
        private ExtendedDnsErrorCode? _reason = null;
        private uint _maxTtl = uint.MaxValue;
        private string? _detail;
        private List<ResourceRecord>? _denial;

        /// <summary>Keeps a verified NSEC/NSEC3 RRset and the RRSIGs covering it.</summary>
        public void AddDenial(List<ResourceRecord> records, List<RecordSet> section, DnsName owner, RecordType type)
        {
            _denial ??= [];
            foreach (var r in records) if (!_denial.Contains(r)) _denial.Add(r);
            foreach (var s in section)
                if (s.Type == RecordType.RRSIG && s.Owner == owner)
                    foreach (var r in s.Records)
                        if (Rrsig.TryRead(r.Data, out var sig) && sig.TypeCovered == type && !_denial.Contains(r)) _denial.Add(r);
        }

        public void Add(DnssecSecurity security, ExtendedDnsErrorCode? reason, uint maxTtl, string detail)
        {
            _maxTtl = Math.Min(_maxTtl, maxTtl);
            if (Rank(security) <= Rank(Security)) return;
            Security = security;
            _reason = reason;
            _detail = detail;
        }

        private static int Rank(DnssecSecurity s) => s switch { DnssecSecurity.Secure => 0, DnssecSecurity.Insecure => 1, _ => 2 };

        public readonly ResponseVerdict Result => new(Security, _reason, _maxTtl, _detail) { Denial = _denial ?? [] };
    }
}
