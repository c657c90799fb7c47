using System.Runtime.CompilerServices;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.Wire;
using Portcullis.Protocol.Zones;

namespace Portcullis.Server.Authoritative;

/// <summary>What an authoritative lookup came to, so the caller can set RCODE and AA.</summary>
public enum AnswerKind : byte
{
    /// <summary>Data (possibly after CNAME/DNAME steps): NOERROR, AA.</summary>
    Answer,
    /// <summary>The name exists but not the type (RFC 2308 NODATA): NOERROR, AA, SOA in authority.</summary>
    NoData,
    /// <summary>The name does not exist: NXDOMAIN, AA, SOA in authority.</summary>
    NameError,
    /// <summary>The name is below a zone cut: NOERROR, no AA, NS in authority, glue in additional.</summary>
    Referral,
    /// <summary>A DNAME substitution made a name too long (RFC 6672 §2.2): YXDOMAIN.</summary>
    NameTooLong,
}

/// <summary>
/// What was answered; for a referral, <paramref name="Cut"/> is the delegation point; for an answer
/// synthesised from a wildcard (RFC 4592) at the first step, <paramref name="Wildcard"/> is its node.
/// </summary>
public readonly record struct AnswerResult(AnswerKind Kind, bool Truncated, bool Authoritative, ZoneNode Cut = default, ZoneNode Wildcard = default);

/// <summary>
/// Answers a question from one zone by the algorithm of RFC 1034 §4.3.2 with its later
/// clarifications: zone cuts, CNAME chains inside the zone, DNAME (RFC 6672), wildcards
/// (RFC 4592), negative answers (RFC 2308), minimal ANY over UDP (RFC 8482). It writes straight into
/// the response and allocates nothing.
/// </summary>
public static class Answerer
{
    /// <summary>How many CNAME/DNAME steps one answer may take (BIND and Knot stop near here).</summary>
    public const int MaxChain = 8;

    private static ReadOnlySpan<byte> WildcardLabel => [1, (byte)'*'];

    public static AnswerResult Answer(Zone zone, scoped ReadOnlySpan<byte> qname, RecordType qtype, bool minimalAny, ref DnsMessageWriter w) =>
        Answer(zone, qname, qtype, minimalAny, dnssecOk: false, ref w);

    /// <summary>
    /// As above; with <paramref name="dnssecOk"/> (the query's EDNS DO bit, RFC 3225) the answer
    /// carries what RFC 4035 §3.1 asks of a signed zone: the RRSIGs of every RRset written in the
    /// answer and authority sections (and in the additional section when they fit), the NSEC proofs
    /// (RFC 4035 §3.1.3) or NSEC3 proofs (RFC 5155 §7.2) of negative and wildcard answers, DS or its
    /// absence at referrals. A zone without signatures or NSEC/NSEC3 records answers the same either way.
    /// </summary>
    public static AnswerResult Answer(Zone zone, scoped ReadOnlySpan<byte> qname, RecordType qtype, bool minimalAny, bool dnssecOk, ref DnsMessageWriter w)
    {
        var proofs = new Proofs();
        var result = AnswerCore(zone, qname, qtype, minimalAny, dnssecOk, ref w, ref proofs);
        // The proofs not written yet go last in the authority section; an answer that was cut short
        // gets none. If one does not fit the client must ask over TCP (RFC 4035 §3.1.1).
        if (proofs.Count > proofs.Written && !result.Truncated && !FlushProofs(ref w, zone, ref proofs)) result = result with { Truncated = true };
        return result;
    }

    private static AnswerResult AnswerCore(Zone zone, scoped ReadOnlySpan<byte> qname, RecordType qtype, bool minimalAny, bool dnssec, ref DnsMessageWriter w, ref Proofs proofs)
    {
        Span<byte> chase = stackalloc byte[DnsName.MaxLength];
        Span<byte> synth = stackalloc byte[DnsName.MaxLength + 2];
        Span<int> offsets = stackalloc int[128];
        var added = new AddedSets();
        int addedCount = 0;
        // CNAME/DNAME RRsets already written: a loop stops at the first repeat (RFC 1034 §3.6.2),
        // so no record appears twice (RFC 2181 §5).
        var chain = new AddedSets();
        int chainCount = 0;
        scoped ReadOnlySpan<byte> current = qname;
        bool truncated = false;
        var kind = AnswerKind.Answer;
        ZoneNode wildcard = default;

        for (int hop = 0; ; hop++)
        {
            int n = LabelOffsets(current, offsets);
            int k = zone.Origin.LabelCount;
            ZoneNode exact = n == k ? zone.Apex : default;
            int ceDepth = k;
            ZoneNode dnameNode = default, cutNode = default;
            if (n > k && zone.Apex.Has(NodeFlags.Dname)) dnameNode = zone.Apex;
            for (int d = k + 1; d <= n && !dnameNode.Exists; d++)
            {
                var found = zone.Find(current[offsets[n - d]..]);
                if (!found.Exists) break;
                // RFC 5155 §7.2.8: the owners of NSEC3 records (hashes right below the apex) are not
                // names of the zone; a question for one is answered as for a name that does not exist.
                if (d == k + 1 && zone.Data.HasNsec3 && found.Get(RecordType.NSEC3).Exists) break;
                ceDepth = d;
                if (found.Has(NodeFlags.Delegation) && !(d == n && qtype == RecordType.DS)) { cutNode = found; break; }
                if (found.Has(NodeFlags.Dname) && d < n) { dnameNode = found; break; }
                if (d == n) exact = found;
            }

            if (cutNode.Exists)
            {
                // RFC 1034 §4.3.2 step 3b: a referral. After a CNAME the answer keeps its AA.
                var ns = cutNode.Get(RecordType.NS);
                if (!WriteSet(ref w, ns, default, DnsSection.Authority)) truncated = true;
                else if (dnssec && !WriteReferralProof(ref w, zone, cutNode, current, offsets, n, ceDepth, ref proofs)) truncated = true;
                else if (!FlushProofs(ref w, zone, ref proofs)) truncated = true;
                else if (!WriteAdditional(ref w, ns, ref added, ref addedCount, mustFit: true, dnssec)) truncated = true;
                return new AnswerResult(hop == 0 ? AnswerKind.Referral : kind, truncated, hop > 0, cutNode);
            }

            if (dnameNode.Exists)
            {
                var dname = dnameNode.Get(RecordType.DNAME);
                if (Contains(ref chain, chainCount, dname)) return new(kind, false, true);
                if (chainCount < AddedSets.Capacity) chain[chainCount++] = dname.Index;
                if (!WriteSigned(ref w, dname, default, DnsSection.Answer, dnssec)) return new(kind, true, true);
                // RFC 6672 §2.2: replace the DNAME owner suffix of the name with the DNAME target.
                int prefixLength = offsets[n - dnameNode.LabelCount];
                ReadOnlySpan<byte> target = dname.First;
                if (prefixLength + target.Length > DnsName.MaxLength)
                    return new AnswerResult(AnswerKind.NameTooLong, false, true);
                current[..prefixLength].CopyTo(synth);
                target.CopyTo(synth[prefixLength..]);
                var newName = synth[..(prefixLength + target.Length)];
                if (!w.TryWriteRecord(current, RecordType.CNAME, zone.Class, dname.Ttl, newName, DnsSection.Answer))
                    return new(kind, true, true);
                // The synthesised CNAME is itself the answer to a CNAME query (RFC 6672 §3).
                if (qtype == RecordType.CNAME || hop >= MaxChain || !IsInZone(newName, zone)) return new(kind, false, true);
                newName.CopyTo(chase);
                current = chase[..newName.Length];
                continue;
            }

            scoped ReadOnlySpan<byte> owner = default;   // default: the owner as stored; else a synthesised owner
            if (!exact.Exists)
            {
                // RFC 4592 §3.3.1: the source of synthesis is "*" below the closest encloser.
                var ceSuffix = current[offsets[n - ceDepth]..];
                WildcardLabel.CopyTo(synth);
                ceSuffix.CopyTo(synth[2..]);
                exact = zone.Find(synth[..(2 + ceSuffix.Length)]);
                if (hop == 0) wildcard = exact;
                if (!exact.Exists)
                {
                    if (!WriteSigned(ref w, zone.NegativeSoa, default, DnsSection.Authority, dnssec)) truncated = true;
                    else if (dnssec && zone.Data.HasNsec)
                    {
                        // RFC 4035 §3.1.3.2: the NSEC that covers the name and the one that shows
                        // there is no wildcard at the closest encloser (often the same RRset).
                        proofs.Add(zone.Data.FindNsec(current));
                        proofs.Add(zone.Data.FindNsec(synth[..(2 + ceSuffix.Length)]));
                    }
                    else if (dnssec && zone.Data.HasNsec3)
                    {
                        // RFC 5155 §7.2.2: the closest encloser proof (the NSEC3 matching the closest
                        // encloser, the one covering the next closer name) and the NSEC3 covering the
                        // wildcard at the closest encloser.
                        int ce = AddClosestEncloserProof(zone, current, offsets, n, ceDepth, ref proofs);
                        if (ce >= k)
                        {
                            var provable = current[offsets[n - ce]..];
                            provable.CopyTo(synth[2..]);
                            AddNsec3(zone, synth[..(2 + provable.Length)], matching: false, ref proofs);
                        }
                    }
                    return new AnswerResult(AnswerKind.NameError, truncated, true);
                }
                owner = current;
                // RFC 4035 §3.1.3.3 and §3.1.3.4: an answer from a wildcard, positive or NODATA,
                // proves that the name itself does not exist.
                if (dnssec && zone.Data.HasNsec) proofs.Add(zone.Data.FindNsec(current));
                // RFC 5155 §7.2.6: the NSEC3 covering the next closer name (the RRSIG's labels field
                // names the closest encloser); wildcard NODATA adds to it below (§7.2.5).
                else if (dnssec && zone.Data.HasNsec3) AddNsec3(zone, current[offsets[n - ceDepth - 1]..], matching: false, ref proofs);
            }

            // RFC 1034 §4.3.2 step 3a: restart at the canonical name unless the question asks for
            // the CNAME itself or for every type (ANY matches the CNAME, RFC 1034 §3.7.1).
            if (exact.Has(NodeFlags.Cname) && qtype is not (RecordType.CNAME or RecordType.ANY))
            {
                var cname = exact.Get(RecordType.CNAME);
                if (Contains(ref chain, chainCount, cname)) return new(kind, false, true, default, wildcard);
                if (chainCount < AddedSets.Capacity) chain[chainCount++] = cname.Index;
                if (!WriteSigned(ref w, cname, owner, DnsSection.Answer, dnssec)) return new(kind, true, true, default, wildcard);
                ReadOnlySpan<byte> target = cname.First;
                if (hop >= MaxChain || !IsInZone(target, zone)) return new(kind, false, true, default, wildcard);
                target.CopyTo(chase);
                current = chase[..target.Length];
                continue;
            }

            if (qtype == RecordType.ANY)
            {
                bool any = false;
                foreach (var set in exact.Sets)
                {
                    // With DO each RRSIG set goes out beside the RRset it covers.
                    if (dnssec && set.Type == RecordType.RRSIG) continue;
                    if (!WriteSigned(ref w, set, owner, DnsSection.Answer, dnssec)) return new(kind, true, true, default, wildcard);
                    any = true;
                    // RFC 8482 §4.2: over UDP one RRset is enough.
                    if (minimalAny) break;
                }
                if (any) return new(kind, false, true, default, wildcard);
            }
            else if (qtype == RecordType.RRSIG)
            {
                // RRSIGs are held as one set per covered type; the question asks for all of them.
                bool any = false;
                foreach (var set in exact.Sets)
                {
                    if (set.Type != RecordType.RRSIG) continue;
                    if (!WriteSet(ref w, set, owner, DnsSection.Answer)) return new(kind, true, true, default, wildcard);
                    any = true;
                }
                if (any) return new(kind, false, true, default, wildcard);
            }
            else if (exact.Get(qtype) is { Exists: true } answer)
            {
                // At the first step the owner written is the question's name (the node's, or the
                // wildcard's synthesis at it): the precomputed fragment applies.
                if (!WriteSigned(ref w, answer, owner, DnsSection.Answer, dnssec, atQuestion: hop == 0)) return new(kind, true, true, default, wildcard);
                // The wildcard proof belongs in the authority section, before any additional data.
                if (dnssec && !FlushProofs(ref w, zone, ref proofs)) return new(kind, true, true, default, wildcard);
                WriteAdditional(ref w, answer, ref added, ref addedCount, mustFit: false, dnssec);
                return new(kind, false, true, default, wildcard);
            }

            if (!WriteSigned(ref w, zone.NegativeSoa, default, DnsSection.Authority, dnssec)) truncated = true;
            // RFC 4035 §3.1.3.1: the NSEC at the name shows the type is absent (for an empty
            // non-terminal, the NSEC that covers it); at a wildcard, §3.1.3.4, the wildcard's NSEC.
            else if (dnssec && zone.Data.HasNsec) proofs.Add(zone.Data.FindNsec(exact.Name));
            else if (dnssec && zone.Data.HasNsec3)
            {
                if (!owner.IsEmpty)
                {
                    // RFC 5155 §7.2.5, wildcard NODATA: the NSEC3 matching the closest encloser (the
                    // next closer name's covering NSEC3 is already there) and the one matching the
                    // wildcard, whose type bitmap lacks the type.
                    AddNsec3(zone, current[offsets[n - ceDepth]..], matching: true, ref proofs);
                    AddNsec3(zone, exact.Name, matching: true, ref proofs);
                }
                // RFC 5155 §7.2.3: the NSEC3 matching the name. Only with opt-out can there be none
                // (a DS question at an insecure delegation, §7.2.4, or an empty non-terminal above
                // only such delegations): then the closest provable encloser proof.
                else if (!AddNsec3(zone, current, matching: true, ref proofs))
                    AddClosestEncloserProof(zone, current, offsets, n, n - 1, ref proofs);
            }
            return new AnswerResult(hop == 0 ? AnswerKind.NoData : kind, truncated, true, default, wildcard);
        }
    }

    /// <summary>
    /// Writes a whole RRset, or nothing (RFC 2181 §9 never splits an RRset). When its owner in the
    /// response is the question's name (<paramref name="atQuestion"/>), the fragment built at load is
    /// copied in one go: the same bytes the record-by-record path writes.
    /// </summary>
    private static bool WriteSet(ref DnsMessageWriter w, RecordSet set, scoped ReadOnlySpan<byte> owner, DnsSection section, bool atQuestion = false)
    {
        if (atQuestion && set.AnswerFragment is { IsEmpty: false } fragment)
            return w.TryWriteRecords(fragment, set.Count, section);
        var mark = w.GetMark();
        ReadOnlySpan<byte> ownerWire = owner.IsEmpty ? set.Owner : owner;
        foreach (var data in set.Rdata)
        {
            if (!w.TryWriteRecord(ownerWire, set.Type, set.Class, set.Ttl, data, section))
            {
                w.Rewind(mark);
                return false;
            }
        }
        return true;
    }

    /// <summary>
    /// Writes an RRset and, with DO, the RRSIGs that cover it (under the same owner, so a wildcard's
    /// signature goes out at the synthesised name and its labels field tells the validator, RFC 4035
    /// §3.1.3.3); both or neither: an RRset never leaves without its signature (§3.1.1).
    /// </summary>
    private static bool WriteSigned(ref DnsMessageWriter w, RecordSet set, scoped ReadOnlySpan<byte> owner, DnsSection section, bool dnssec, bool atQuestion = false)
    {
        if (!dnssec) return WriteSet(ref w, set, owner, section, atQuestion);
        var mark = w.GetMark();
        if (!WriteSet(ref w, set, owner, section, atQuestion)) return false;
        var signatures = set.Node.GetSignatures(set.Type);
        if (!signatures.Exists || WriteSet(ref w, signatures, owner, section)) return true;
        w.Rewind(mark);
        return false;
    }

    /// <summary>
    /// RFC 4035 §3.1.4: after the NS of a referral, the DS RRset and its RRSIG when the child is
    /// signed, else the NSEC at the cut (with its RRSIG) proving there is no DS; in an NSEC3 zone
    /// (RFC 5155 §7.2.7) the NSEC3 matching the cut, or with opt-out, where the cut has none, the
    /// closest provable encloser proof (its next closer name's NSEC3 carries the opt-out flag).
    /// The cut is the suffix of <paramref name="name"/> with <paramref name="cutDepth"/> labels.
    /// </summary>
    private static bool WriteReferralProof(ref DnsMessageWriter w, Zone zone, ZoneNode cut, scoped ReadOnlySpan<byte> name,
        scoped ReadOnlySpan<int> offsets, int n, int cutDepth, ref Proofs proofs)
    {
        var ds = cut.Get(RecordType.DS);
        if (ds.Exists) return WriteSigned(ref w, ds, default, DnsSection.Authority, dnssec: true);
        if (zone.Data.HasNsec) proofs.Add(cut.Get(RecordType.NSEC));
        else if (zone.Data.HasNsec3 && !AddNsec3(zone, cut.Name, matching: true, ref proofs))
            AddClosestEncloserProof(zone, name, offsets, n, cutDepth - 1, ref proofs);
        return true;
    }

    /// <summary>
    /// Adds the NSEC3 that matches (<paramref name="matching"/>) or covers the hash of a name
    /// (RFC 5155 §7.2); false when there is none. The hash is computed in a stack buffer.
    /// </summary>
    private static bool AddNsec3(Zone zone, scoped ReadOnlySpan<byte> name, bool matching, ref Proofs proofs)
    {
        Span<byte> hash = stackalloc byte[ZoneData.Nsec3HashLength];
        zone.Data.HashNsec3(name, hash);
        var nsec3 = matching ? zone.Data.FindNsec3Matching(hash) : zone.Data.FindNsec3Covering(hash);
        proofs.Add(nsec3);
        return nsec3.Exists;
    }

    /// <summary>
    /// RFC 5155 §7.2.1, the closest encloser proof of a name of <paramref name="n"/> labels: from the
    /// ancestor of <paramref name="depth"/> labels upwards (at most n - 1, so that a next closer name
    /// exists), the first with a matching NSEC3 is the closest provable encloser (with opt-out an
    /// empty non-terminal or insecure delegation may have none); adds that NSEC3 and the one
    /// covering the next closer name (the encloser plus one label of the name). Returns the
    /// encloser's label count, or -1 when no ancestor down to the apex has an NSEC3.
    /// </summary>
    private static int AddClosestEncloserProof(Zone zone, scoped ReadOnlySpan<byte> name, scoped ReadOnlySpan<int> offsets, int n, int depth,
        ref Proofs proofs)
    {
        for (int d = Math.Min(depth, n - 1), k = zone.Origin.LabelCount; d >= k; d--)
        {
            if (!AddNsec3(zone, name[offsets[n - d]..], matching: true, ref proofs)) continue;
            AddNsec3(zone, name[offsets[n - d - 1]..], matching: false, ref proofs);
            return d;
        }
        return -1;
    }

    /// <summary>Writes the NSEC/NSEC3 RRsets gathered so far, each once, with their RRSIGs, into the authority section.</summary>
    private static bool FlushProofs(ref DnsMessageWriter w, Zone zone, ref Proofs proofs)
    {
        for (; proofs.Written < proofs.Count; proofs.Written++)
        {
            int set = proofs.Sets[proofs.Written];
            bool seen = false;
            for (int i = 0; i < proofs.Written; i++) if (proofs.Sets[i] == set) seen = true;
            if (seen) continue;
            if (!WriteSigned(ref w, zone.Data.GetSet(set), default, DnsSection.Authority, dnssec: true)) return false;
        }
        return true;
    }

    /// <summary>NSEC or NSEC3 RRsets an answer must carry, by number in the zone, gathered along the way.</summary>
    private struct Proofs
    {
        public AddedSets Sets;
        public int Count;
        public int Written;

        public void Add(RecordSet nsec)
        {
            if (nsec.Exists && Count < AddedSets.Capacity) Sets[Count++] = nsec.Index;
        }
    }

    /// <summary>Adds the addresses of NS/MX/SRV targets; false when one that must fit (glue) did not.</summary>
    private static bool WriteAdditional(ref DnsMessageWriter w, RecordSet set, ref AddedSets added, ref int addedCount, bool mustFit, bool dnssec)
    {
        bool allFit = true;
        foreach (var extra in set.Additional)
        {
            if (Contains(ref added, addedCount, extra)) continue;
            if (!WriteSigned(ref w, extra, default, DnsSection.Additional, dnssec)) { allFit = false; if (mustFit) return false; continue; }
            if (addedCount < AddedSets.Capacity) added[addedCount++] = extra.Index;
        }
        return allFit || !mustFit;
    }

    private static bool Contains(ref AddedSets sets, int count, RecordSet set)
    {
        for (int i = 0; i < count; i++) if (sets[i] == set.Index) return true;
        return false;
    }

    private static bool IsInZone(ReadOnlySpan<byte> name, Zone zone)
    {
        int pos = 0;
        int labels = 0;
        while (name[pos] != 0) { pos += 1 + name[pos]; labels++; }
        int skip = labels - zone.Origin.LabelCount;
        if (skip < 0) return false;
        pos = 0;
        for (int i = 0; i < skip; i++) pos += 1 + name[pos];
        return DnsName.EqualsIgnoreCase(name[pos..], zone.Origin.Wire);
    }

    /// <summary>Start offset of each label; returns the label count (offsets[count] is the root label).</summary>
    private static int LabelOffsets(ReadOnlySpan<byte> name, Span<int> offsets)
    {
        int pos = 0, n = 0;
        while (name[pos] != 0) { offsets[n++] = pos; pos += 1 + name[pos]; }
        offsets[n] = pos;
        return n;
    }

    [InlineArray(Capacity)]
    private struct AddedSets
    {
        public const int Capacity = 16;
        private int _element;   // RRset numbers within the zone
    }
}
