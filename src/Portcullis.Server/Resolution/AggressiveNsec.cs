using System.Collections.Concurrent;
using System.Buffers.Binary;
using Portcullis.Protocol.Dnssec;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;

namespace Portcullis.Server.Resolution;

/// <summary>
/// Aggressive use of the DNSSEC-validated cache (RFC 8198): the NSEC records of validated negative
/// answers are kept per zone in canonical order, and a later question whose name falls in a cached
/// NSEC range (or whose type an NSEC at the name denies) is answered NXDOMAIN or NODATA from them,
/// without asking upstream — which also blunts random-subdomain floods against signed zones.
/// As Unbound (aggressive-nsec: yes) only NSEC is used, not NSEC3 (RFC 8198 §4 allows both; NSEC3
/// ranges cover hashes, which a resolver would have to compute per question and per ancestor), and
/// no wildcard answers are synthesised: when the wildcard of the closest encloser exists, the
/// question goes upstream. The TTL of what is synthesised is the smallest of the NSEC records'
/// and the SOA's remaining TTLs (§5.4: negative TTL of the SOA, already capped by SOA MINIMUM).
/// Written on the resolution path only (a lock per write; each zone's chain an immutable snapshot —
/// sorted NSEC records, SOA and its RRSIGs — swapped in whole); read without lock. Bounded by
/// <see cref="MaxPerZone"/> NSEC records per zone (a zone past it starts over) and
/// <see cref="MaxRecords"/> in all (everything starts over).
/// </summary>
public sealed class AggressiveNsec
{
    public const int MaxRecords = 100_000;
    public const int MaxPerZone = 10_000;

    /// <summary>One NSEC record: parsed, with the records to send (the NSEC and its RRSIGs), until when it may be used.</summary>
    private sealed record Entry(NsecRecord Nsec, ResourceRecord[] Records, long ExpiresMs);

    private sealed record Chain(DnsName Zone, Entry[] Entries, ResourceRecord Soa, ResourceRecord[] SoaSignatures, long SoaExpiresMs);

    private readonly ConcurrentDictionary<DnsName, Chain> _zones = new();
    private readonly Lock _write = new();
    private int _records;
    private long _synthesised;

    /// <summary>Answers synthesised from the NSEC ranges (counted by the caller when it uses one).</summary>
    public long Synthesised => Interlocked.Read(ref _synthesised);

    internal void CountSynthesised() => Interlocked.Increment(ref _synthesised);

    /// <summary>
    /// Keeps the NSEC records of a validated (secure) negative answer of zone <paramref name="soa"/>'s
    /// owner: <paramref name="proof"/> is what the cache keeps with it (SOA RRSIGs, NSEC/NSEC3 and theirs).
    /// </summary>
    public void Add(ResourceRecord soa, IReadOnlyList<ResourceRecord> proof, uint ttl, long nowMs)
    {
        var zone = soa.Owner.ToLowerInvariant();
        var fresh = new List<Entry>();
        var soaSigs = new List<ResourceRecord>();
        foreach (var r in proof)
        {
            if (r.Type == RecordType.RRSIG && r.Owner == soa.Owner && r.Data.Length >= 2
                && (RecordType)BinaryPrimitives.ReadUInt16BigEndian(r.Data) == RecordType.SOA)
                soaSigs.Add(r);
            if (r.Type != RecordType.NSEC || !r.Owner.IsSubdomainOf(zone) || NsecRecord.From(r) is not { } nsec) continue;
            var records = new List<ResourceRecord> { r };
            foreach (var s in proof)
                if (s.Type == RecordType.RRSIG && s.Owner == r.Owner && s.Data.Length >= 2
                    && (RecordType)BinaryPrimitives.ReadUInt16BigEndian(s.Data) == RecordType.NSEC)
                    records.Add(s);
            fresh.Add(new Entry(nsec, [.. records], nowMs + 1000L * Math.Min(ttl, r.Ttl)));
        }
        if (fresh.Count == 0) return;
        lock (_write)
        {
            if (_records > MaxRecords)
            {
                _zones.Clear();
                _records = 0;
            }
            var old = _zones.TryGetValue(zone, out var c) && c.Entries.Length + fresh.Count <= MaxPerZone ? c.Entries : [];
            // The chain stays sorted: fresh records go in by binary search (one copy, no re-sort).
            var list = new List<Entry>(old.Length + fresh.Count);
            foreach (var e in old)
                if (e.ExpiresMs > nowMs) list.Add(e);
            foreach (var f in fresh)
            {
                int at = Search(list, f.Nsec.Owner);
                if (at >= 0) list[at] = f;
                else list.Insert(~at, f);
            }
            _records += list.Count - (c?.Entries.Length ?? 0);
            _zones[zone] = new Chain(zone, [.. list], soa, [.. soaSigs], nowMs + 1000L * ttl);
        }
    }

    /// <summary>Forgets everything (new trust anchors).</summary>
    public void Clear()
    {
        lock (_write)
        {
            _zones.Clear();
            _records = 0;
        }
    }

    /// <summary>
    /// NXDOMAIN or NODATA for (<paramref name="qname"/>, <paramref name="qtype"/>) proven by cached
    /// NSEC records of the deepest zone holding the name (for DS, of the zone above it), with the
    /// zone's SOA and the proof, or false.
    /// </summary>
    public bool TrySynthesise(DnsName qname, RecordType qtype, long nowMs, out bool nxDomain, out ResourceRecord soa,
        out List<ResourceRecord> proof, out uint ttl, out DnsName chainZone)
    {
        nxDomain = false;
        soa = null!;
        chainZone = null!;
        proof = null!;
        ttl = 0;
        if (_zones.IsEmpty) return false;
        Chain? chain = null;
        var zone = qtype == RecordType.DS && !qname.IsRoot ? qname.Parent() : qname;
        for (; ; zone = zone.Parent())
        {
            if (_zones.TryGetValue(zone, out chain)) break;
            if (zone.IsRoot) return false;
        }
        var entries = chain.Entries;
        chainZone = chain.Zone;
        if (chain.SoaExpiresMs <= nowMs) return false;
        var cover = Floor(entries, qname, nowMs);
        if (cover is null) return false;
        var used = new List<Entry> { cover };
        DenialResult result;
        if (cover.Nsec.Owner == qname || (cover.Nsec.Covers(qname) && cover.Nsec.Next.IsSubdomainOf(qname)))
        {
            // NODATA: the NSEC at the name lacks the type, or the name is an empty non-terminal.
            result = NsecProofs.NoData([cover.Nsec], qname, qtype, zone);
        }
        else if (cover.Nsec.Covers(qname))
        {
            var wildcard = NsecProofs.ClosestEncloser(qname, cover.Nsec, zone).Prepend("*"u8);
            var wildCover = Floor(entries, wildcard, nowMs);
            // The wildcard exists (or is not known absent): the answer may be synthesised from it upstream.
            if (wildCover is null || wildCover.Nsec.Owner == wildcard) return false;
            if (wildCover != cover) used.Add(wildCover);
            result = NsecProofs.NameError([cover.Nsec, wildCover.Nsec], qname, zone);
            nxDomain = true;
        }
        else return false;
        if (result != DenialResult.Proven) return false;
        long until = chain.SoaExpiresMs;
        proof = [.. chain.SoaSignatures];
        foreach (var e in used)
        {
            until = Math.Min(until, e.ExpiresMs);
            proof.AddRange(e.Records);
        }
        ttl = (uint)Math.Max(0, (until - nowMs) / 1000);
        if (ttl == 0) return false;
        soa = chain.Soa;
        return true;
    }

    /// <summary>Index of the entry owned by <paramref name="owner"/>, else the complement of where it would go.</summary>
    private static int Search(List<Entry> list, DnsName owner)
    {
        int lo = 0, hi = list.Count - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            int c = list[mid].Nsec.Owner.CompareTo(owner);
            if (c == 0) return mid;
            if (c < 0) lo = mid + 1; else hi = mid - 1;
        }
        return ~lo;
    }

    /// <summary>The fresh entry with the greatest owner at or before <paramref name="name"/> in canonical order.</summary>
    private static Entry? Floor(Entry[] entries, DnsName name, long nowMs)
    {
        int lo = 0, hi = entries.Length - 1, found = -1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            if (entries[mid].Nsec.Owner.CompareTo(name) <= 0) { found = mid; lo = mid + 1; }
            else hi = mid - 1;
        }
        return found >= 0 && entries[found].ExpiresMs > nowMs ? entries[found] : null;
    }
}
