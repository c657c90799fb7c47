using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.Wire;

namespace Portcullis.Server.Resolution;

/// <summary>
/// Answers a client from the cache alone, on the receive thread: no allocation, no lock. Follows
/// CNAMEs found in the cache (bounded), writes the final RRset or, for a negative answer, its SOA
/// in the authority section (RFC 2308 §3), every TTL decremented by the time spent in the cache.
/// Only data a client may see is used: answer-section data (rank ≥ NonAuthAnswer); referral NS
/// and glue stay inside the resolver (RFC 2181 §5.4.1).
/// </summary>
public static class CacheAnswerer
{
    public static bool TryAnswer(RecordCache cache, int maxChain, scoped ReadOnlySpan<byte> qname, RecordType qtype, RecordClass qclass,
        ref DnsMessageWriter w, out Rcode rcode, out bool truncated)
    {
        rcode = Rcode.NoError;
        truncated = false;
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
                    cache.NotePrefetch(entry, now);
                    if (!WriteRRset(entry, name, RecordCache.RemainingTtl(entry, now), DnsSection.Answer, ref w)) truncated = true;
                    return true;
                }
                if (entry.Kind == CacheEntryKind.NoData)
                {
                    if (!WriteSoa(entry, now, ref w)) truncated = true;
                    return true;
                }
            }
            if (cache.TryGetNxDomain(name, qclass, now, allowStale: false, out var nx) && nx.Rank >= TrustRank.NonAuthAnswer)
            {
                // RFC 6604 §3: after a CNAME the RCODE is the last name's.
                rcode = Rcode.NXDomain;
                if (!WriteSoa(nx, now, ref w)) truncated = true;
                return true;
            }
            if (qtype == RecordType.CNAME
                || !cache.TryGet(name, RecordType.CNAME, qclass, now, allowStale: false, out var cname)
                || cname.Kind != CacheEntryKind.Positive || cname.Rank < TrustRank.NonAuthAnswer)
                break;
            if (!WriteRRset(cname, name, RecordCache.RemainingTtl(cname, now), DnsSection.Answer, ref w))
            {
                truncated = true;
                return true;
            }
            var e = cname.Rdatas;
            if (!e.MoveNext()) break;
            name = e.Current;
        }
        // A chain that leaves the cache (or loops past the bound) is the resolution's to finish.
        w.Rewind(start);
        rcode = Rcode.NoError;
        return false;
    }

    /// <summary>Writes an RRset; owner <paramref name="owner"/> (the name asked, so it compresses against the question).</summary>
    internal static bool WriteRRset(CacheEntry entry, scoped ReadOnlySpan<byte> owner, uint ttl, DnsSection section, ref DnsMessageWriter w)
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
        return true;
    }

    private static bool WriteSoa(CacheEntry entry, long now, ref DnsMessageWriter w)
    {
        if (entry.SoaRdata.Length == 0) return true;
        return w.TryWriteRecord(entry.SoaOwner, RecordType.SOA, entry.Class, RecordCache.RemainingTtl(entry, now), entry.SoaRdata, DnsSection.Authority);
    }
}
