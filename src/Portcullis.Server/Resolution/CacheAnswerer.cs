using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.Wire;

namespace Portcullis.Server.Resolution;

/// <summary>What a cache answer came to: its RCODE, TC, whether every part of it was validated secure, and an EDE code (-1 none).</summary>
public struct CacheAnswer
{
    public Rcode Rcode;
    public bool Truncated;
    /// <summary>Every RRset and negative entry used was DNSSEC-validated secure: AD may be set (RFC 4035 §3.2.3, RFC 6840 §5.7).</summary>
    public bool Secure;
    /// <summary>Extended DNS Error code to attach (a bogus entry's reason), -1 for none.</summary>
    public int Ede;
}

/// <summary>
/// Answers a client from the cache alone, on the receive thread: no allocation, no lock. Follows
/// CNAMEs found in the cache (bounded), writes the final RRset or, for a negative answer, its SOA
/// in the authority section (RFC 2308 §3), every TTL decremented by the time spent in the cache.
/// Only data a client may see is used: answer-section data (rank ≥ NonAuthAnswer); referral NS
/// and glue stay inside the resolver (RFC 2181 §5.4.1). For DO=1 clients the RRSIGs go with their
/// RRsets and a negative answer carries its NSEC/NSEC3 proof (RFC 4035 §3.2.1). An entry the
/// validator found bogus is answered SERVFAIL with its EDE (RFC 4035 §5.5, RFC 8914), unless the
/// client set CD, which gets the data as it is (RFC 4035 §3.2.2).
/// </summary>
public static class CacheAnswerer
{
    public static bool TryAnswer(RecordCache cache, int maxChain, scoped ReadOnlySpan<byte> qname, RecordType qtype, RecordClass qclass,
        bool dnssecOk, bool checkingDisabled, ref DnsMessageWriter w, out CacheAnswer answer)
    {
        answer = new CacheAnswer { Rcode = Rcode.NoError, Secure = true, Ede = -1 };
        // ANY and the meta types need the full answer from upstream: leave them to the resolution.
        if (qtype is RecordType.ANY or RecordType.OPT || (ushort)qtype == 0) return false;
        long now = cache.NowMs;
        var start = w.GetMark();
        ReadOnlySpan<byte> name = qname;
        for (int step = 0; step <= maxChain; step++)
        {
            if (cache.TryGet(name, qtype, qclass, now, allowStale: false, out var entry) && entry.Rank >= TrustRank.NonAuthAnswer)
            {
                if (entry.Kind == CacheEntryKind.Positive)
                {
                    if (Bogus(entry, checkingDisabled, ref w, start, ref answer)) return true;
                    cache.NotePrefetch(entry, now);
                    if (!WriteRRset(entry, name, RecordCache.RemainingTtl(entry, now), DnsSection.Answer, dnssecOk, ref w)) answer.Truncated = true;
                    return true;
                }
                if (entry.Kind == CacheEntryKind.NoData)
                {
                    if (Bogus(entry, checkingDisabled, ref w, start, ref answer)) return true;
                    if (!WriteNegative(entry, now, dnssecOk, ref w)) answer.Truncated = true;
                    return true;
                }
            }
            if (cache.TryGetNxDomain(name, qclass, now, allowStale: false, out var nx) && nx.Rank >= TrustRank.NonAuthAnswer)
            {
                if (Bogus(nx, checkingDisabled, ref w, start, ref answer)) return true;
                // RFC 6604 §3: after a CNAME the RCODE is the last name's.
                answer.Rcode = Rcode.NXDomain;
                if (!WriteNegative(nx, now, dnssecOk, ref w)) answer.Truncated = true;
                return true;
            }
            if (qtype == RecordType.CNAME
                || !cache.TryGet(name, RecordType.CNAME, qclass, now, allowStale: false, out var cname)
                || cname.Kind != CacheEntryKind.Positive || cname.Rank < TrustRank.NonAuthAnswer)
                break;
            if (Bogus(cname, checkingDisabled, ref w, start, ref answer)) return true;
            // A CNAME synthesised from a DNAME goes out after the DNAME (RFC 6672 §3.1).
            if (cname.Dname is { } dname
                && !WriteRRset(dname, dname.Owner, RecordCache.RemainingTtl(cname, now), DnsSection.Answer, dnssecOk, ref w))
            {
                answer.Truncated = true;
                return true;
            }
            if (!WriteRRset(cname, name, RecordCache.RemainingTtl(cname, now), DnsSection.Answer, dnssecOk, ref w))
            {
                answer.Truncated = true;
                return true;
            }
            var e = cname.Rdatas;
            if (!e.MoveNext()) break;
            name = e.Current;
        }
        // A chain that leaves the cache (or loops past the bound) is the resolution's to finish.
        w.Rewind(start);
        answer = new CacheAnswer { Rcode = Rcode.NoError, Ede = -1 };
        return false;
    }

    /// <summary>
    /// Notes the entry's validation state; a bogus one (for a client without CD) replaces whatever
    /// was written with SERVFAIL and its reason.
    /// </summary>
    private static bool Bogus(CacheEntry entry, bool checkingDisabled, ref DnsMessageWriter w, DnsMessageWriter.Mark start, ref CacheAnswer answer)
    {
        if (entry.Validation != ValidationState.Secure) answer.Secure = false;
        if (entry.Validation != ValidationState.Bogus || checkingDisabled) return false;
        w.Rewind(start);
        answer.Rcode = Rcode.ServFail;
        answer.Secure = false;
        answer.Ede = entry.Reason >= 0 ? entry.Reason : (int)ExtendedDnsErrorCode.DnssecBogus;
        return true;
    }

    /// <summary>Writes an RRset (and its RRSIGs for DO); owner <paramref name="owner"/> (the name asked, so it compresses against the question).</summary>
    internal static bool WriteRRset(CacheEntry entry, scoped ReadOnlySpan<byte> owner, uint ttl, DnsSection section, bool dnssecOk, ref DnsMessageWriter w)
    {
        var mark = w.GetMark();
        foreach (var rdata in entry.Rdatas)
        {
            if (!w.TryWriteRecord(owner, entry.Type, entry.Class, ttl, rdata, section))
            {
                // RFC 2181 §9: a partial RRset is never sent; the caller sets TC.
                w.Rewind(mark);
                return false;
            }
        }
        if (dnssecOk)
            foreach (var rdata in entry.SignatureRdatas)
                if (!w.TryWriteRecord(owner, RecordType.RRSIG, entry.Class, ttl, rdata, section))
                {
                    w.Rewind(mark);
                    return false;
                }
        return true;
    }

    /// <summary>The SOA of a negative answer, and for DO its RRSIGs and the NSEC/NSEC3 proof.</summary>
    private static bool WriteNegative(CacheEntry entry, long now, bool dnssecOk, ref DnsMessageWriter w)
    {
        if (entry.SoaRdata.Length == 0) return true;
        uint ttl = RecordCache.RemainingTtl(entry, now);
        if (!w.TryWriteRecord(entry.SoaOwner, RecordType.SOA, entry.Class, ttl, entry.SoaRdata, DnsSection.Authority)) return false;
        if (dnssecOk)
            foreach (var p in entry.ProofRecords)
                if (!w.TryWriteRecord(p.Owner, p.Type, entry.Class, ttl, p.Rdata, DnsSection.Authority)) return false;
        return true;
    }
}
