using System.Buffers.Binary;
using System.Collections.Concurrent;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;

namespace Portcullis.Server.Resolution;

/// <summary>
/// DNSSEC status of a cached RRset or negative answer: Unchecked when validation is off, else the
/// validator's verdict on the response it came in (RFC 4035 §4.3). Bogus entries are kept briefly
/// (<see cref="RecordCache.BogusTtl"/>) and answered SERVFAIL, except to CD=1 clients.
/// </summary>
public enum ValidationState : byte { Unchecked, Secure, Insecure, Bogus }

/// <summary>
/// Credibility of cached data, RFC 2181 §5.4.1, lowest first: additional-section data and the
/// authority section of a non-authoritative answer (referral NS, glue), the answer section of a
/// non-authoritative answer (a forwarder's), the authority section of an authoritative answer,
/// the answer section of an authoritative answer.
/// </summary>
public enum TrustRank : byte { Additional = 1, NonAuthAnswer = 2, AuthAuthority = 3, AuthAnswer = 4 }

public enum CacheEntryKind : byte { Positive, NoData, NxDomain }

/// <summary>
/// One cached RRset or negative answer. Immutable once published (a newer answer replaces the
/// whole entry), except the CLOCK reference bit, so readers need no lock.
/// </summary>
public sealed class CacheEntry
{
    internal CacheEntry(byte[] key, CacheEntryKind kind, byte[] owner, RecordType type, RecordClass @class,
        byte[] rdata, int count, long expiresMs, uint ttl, TrustRank rank, ValidationState validation, byte[] soaOwner, byte[] soaRdata,
        byte[]? signatures = null, byte[]? proof = null, int reason = -1)
    {
        Key = key; Kind = kind; Owner = owner; Type = type; Class = @class; PackedRdata = rdata; Count = count;
        ExpiresMs = expiresMs; Ttl = ttl; Rank = rank; Validation = validation; SoaOwner = soaOwner; SoaRdata = soaRdata;
        Signatures = signatures ?? []; Proof = proof ?? []; Reason = reason;
        _size = 96 + key.Length + owner.Length + rdata.Length + soaOwner.Length + soaRdata.Length + Signatures.Length + Proof.Length;
    }

    internal byte[] Key { get; }
    public CacheEntryKind Kind { get; }
    /// <summary>Owner name as received (uncompressed wire, case kept).</summary>
    public byte[] Owner { get; }
    public RecordType Type { get; }
    public RecordClass Class { get; }
    /// <summary>The RDATAs, each preceded by its 16-bit length.</summary>
    public byte[] PackedRdata { get; }
    public int Count { get; }
    /// <summary>Absolute expiry (Unix milliseconds of the cache's TimeProvider).</summary>
    public long ExpiresMs { get; }
    /// <summary>TTL the entry was stored with (after floors and ceilings).</summary>
    public uint Ttl { get; }
    public TrustRank Rank { get; }
    public ValidationState Validation { get; }
    /// <summary>
    /// A CNAME synthesised from a DNAME (RFC 6672): the DNAME's entry as it was cached with it, written
    /// before the CNAME (with its RRSIGs for DO=1) so that a validating client can check the chain.
    /// </summary>
    public CacheEntry? Dname { get; internal init; }
    /// <summary>Why a Bogus entry is bogus: the Extended DNS Error code (RFC 8914) to answer with; -1 when none.</summary>
    public int Reason { get; }
    /// <summary>The RRSIGs covering the RRset (packed as <see cref="PackedRdata"/>), for DO=1 clients (RFC 4035 §3.2.1).</summary>
    public byte[] Signatures { get; }
    /// <summary>
    /// Negative entries: the authority records proving the denial — the SOA's RRSIGs, the NSEC/NSEC3
    /// records and their RRSIGs (RFC 4035 §3.1.3) — each as owner wire, type, RDATA length, RDATA.
    /// </summary>
    public byte[] Proof { get; }
    /// <summary>Negative entries: the SOA that came with them (RFC 2308 §5), owner and RDATA.</summary>
    public byte[] SoaOwner { get; }
    public byte[] SoaRdata { get; }
    private readonly int _size;
    /// <summary>Approximate bytes, the DNAME entry it keeps alive included.</summary>
    internal int Size => _size + (Dname?.Size ?? 0);
    /// <summary>CLOCK bit: set by a hit, cleared by the eviction sweep.</summary>
    internal int Referenced;
    /// <summary>1 once a hit near expiry queued this entry for prefetch (so it is queued once).</summary>
    internal int PrefetchQueued;

    /// <summary>Visits each RDATA of the RRset.</summary>
    public RdataEnumerator Rdatas => new(PackedRdata);
    /// <summary>Visits each RRSIG RDATA covering the RRset.</summary>
    public RdataEnumerator SignatureRdatas => new(Signatures);
    /// <summary>Visits the proof records of a negative entry.</summary>
    public ProofEnumerator ProofRecords => new(Proof);

    /// <summary>One record of a packed proof: owner (uncompressed wire), type, RDATA.</summary>
    public readonly ref struct ProofRecord(ReadOnlySpan<byte> owner, RecordType type, ReadOnlySpan<byte> rdata)
    {
        public ReadOnlySpan<byte> Owner { get; } = owner;
        public RecordType Type { get; } = type;
        public ReadOnlySpan<byte> Rdata { get; } = rdata;
    }

    public ref struct ProofEnumerator(byte[] packed)
    {
        private readonly byte[] _packed = packed;
        private int _next;
        public ProofRecord Current { get; private set; }
        public readonly ProofEnumerator GetEnumerator() => this;
        public bool MoveNext()
        {
            if (_next >= _packed.Length || !DnsName.TryMeasureWire(_packed.AsSpan(_next), out int ownerLength, out _)) return false;
            int at = _next + ownerLength;
            if (at + 4 > _packed.Length) return false;
            var type = (RecordType)BinaryPrimitives.ReadUInt16BigEndian(_packed.AsSpan(at));
            int len = BinaryPrimitives.ReadUInt16BigEndian(_packed.AsSpan(at + 2));
            if (at + 4 + len > _packed.Length) return false;
            Current = new ProofRecord(_packed.AsSpan(_next, ownerLength), type, _packed.AsSpan(at + 4, len));
            _next = at + 4 + len;
            return true;
        }
    }

    public ref struct RdataEnumerator(byte[] packed)
    {
        private readonly byte[] _packed = packed;
        private int _next;
        public ReadOnlySpan<byte> Current { get; private set; }
        public readonly RdataEnumerator GetEnumerator() => this;
        public bool MoveNext()
        {
            if (_next + 2 > _packed.Length) return false;
            int len = BinaryPrimitives.ReadUInt16BigEndian(_packed.AsSpan(_next));
            Current = _packed.AsSpan(_next + 2, len);
            _next += 2 + len;
            return true;
        }
    }

    /// <summary>The RRset as records (then its RRSIGs when <paramref name="withSignatures"/>).</summary>
    public List<ResourceRecord> ToRecords(uint ttl, bool withSignatures = false)
    {
        var list = new List<ResourceRecord>(Count);
        var owner = DnsName.FromWire(Owner);
        foreach (var rdata in Rdatas) list.Add(new ResourceRecord(owner, Type, Class, ttl, rdata.ToArray()));
        if (withSignatures)
            foreach (var rdata in SignatureRdatas) list.Add(new ResourceRecord(owner, RecordType.RRSIG, Class, ttl, rdata.ToArray()));
        return list;
    }

    /// <summary>The proof records of a negative entry, with <paramref name="ttl"/>.</summary>
    public List<ResourceRecord> ProofToRecords(uint ttl)
    {
        var list = new List<ResourceRecord>();
        foreach (var p in ProofRecords) list.Add(new ResourceRecord(DnsName.FromWire(p.Owner), p.Type, Class, ttl, p.Rdata.ToArray()));
        return list;
    }

    public ResourceRecord? SoaRecord(uint ttl) =>
        SoaRdata.Length == 0 ? null : new ResourceRecord(DnsName.FromWire(SoaOwner), RecordType.SOA, Class, ttl, SoaRdata);
}

/// <summary>
/// The resolver's cache: positive RRsets and negative answers (RFC 2308) keyed by (lower-cased
/// owner wire, type, class), NXDOMAIN under the reserved type 0. Lookups take a span built on the
/// stack (ConcurrentDictionary's alternate lookup), so a hit allocates nothing and takes no lock.
/// Bounded by approximate bytes: an insert past the bound runs a CLOCK sweep (recently hit entries
/// get a second chance). Expired entries stay up to <see cref="ResolverOptions.MaxStale"/> for
/// serve-stale (RFC 8767).
/// </summary>
public sealed class RecordCache
{
    /// <summary>Key: owner (≤255) + type + class.</summary>
    public const int MaxKeyLength = DnsName.MaxLength + 4;
    private const RecordType NxDomainType = 0;

    private readonly ConcurrentDictionary<byte[], CacheEntry> _entries;
    private readonly ConcurrentDictionary<byte[], CacheEntry>.AlternateLookup<ReadOnlySpan<byte>> _lookup;
    private readonly TimeProvider _time;
    private readonly long _maxBytes;
    private readonly uint _minTtl, _maxTtl, _maxNegativeTtl;
    private readonly long _staleMs;
    private readonly Lock _sweepLock = new();
    private long _bytes;
    private long _evictions;
    private readonly bool _prefetch;
    private readonly CacheEntry?[] _prefetchRing = new CacheEntry?[256];
    private int _prefetchWrite, _prefetchRead;

    /// <summary>A cache that keeps nothing (what a lookup must not store goes here).</summary>
    internal static RecordCache Discarding { get; } = new(new ResolverOptions()) { _discard = true };
    private bool _discard;

    public RecordCache(ResolverOptions options, TimeProvider? time = null)
    {
        _time = time ?? TimeProvider.System;
        _entries = new ConcurrentDictionary<byte[], CacheEntry>(KeyComparer.Instance);
        _lookup = _entries.GetAlternateLookup<ReadOnlySpan<byte>>();
        _maxBytes = Math.Max(options.CacheBytes, 4096);
        _minTtl = (uint)Math.Clamp(options.MinTtl.TotalSeconds, 0, int.MaxValue);
        _maxTtl = (uint)Math.Clamp(options.MaxTtl.TotalSeconds, 0, int.MaxValue);
        _maxNegativeTtl = (uint)Math.Clamp(options.MaxNegativeTtl.TotalSeconds, 0, int.MaxValue);
        _staleMs = options.ServeStale ? (long)options.MaxStale.TotalMilliseconds : 0;
        _prefetch = options.Prefetch;
    }

    /// <summary>
    /// Unbound's prefetch: a hit in the last tenth of an RRset's TTL queues it for a refresh
    /// before it expires, so popular names never miss. Called on the receive thread: a fixed ring
    /// of references and one compare-exchange, no allocation, no lock (a full ring drops the
    /// request; the entry is simply resolved when it expires).
    /// </summary>
    internal void NotePrefetch(CacheEntry entry, long nowMs)
    {
        if (!_prefetch || entry.Kind != CacheEntryKind.Positive || entry.Ttl < 10) return;
        if ((entry.ExpiresMs - nowMs) * 10 > entry.Ttl * 1000L) return;
        if (Interlocked.CompareExchange(ref entry.PrefetchQueued, 1, 0) != 0) return;
        int slot = Interlocked.Increment(ref _prefetchWrite) - 1;
        Volatile.Write(ref _prefetchRing[slot & (_prefetchRing.Length - 1)], entry);
    }

    /// <summary>Takes the entries queued for prefetch (off the query path: allocates).</summary>
    public List<CacheEntry> TakePrefetches()
    {
        var list = new List<CacheEntry>();
        int end = Volatile.Read(ref _prefetchWrite);
        int start = Math.Max(_prefetchRead, end - _prefetchRing.Length);
        for (int i = start; i < end; i++)
        {
            var e = Interlocked.Exchange(ref _prefetchRing[i & (_prefetchRing.Length - 1)], null);
            if (e is not null) list.Add(e);
        }
        _prefetchRead = end;
        return list;
    }

    public long NowMs => _time.GetUtcNow().ToUnixTimeMilliseconds();
    public int Count => _entries.Count;
    public long ApproximateBytes => Interlocked.Read(ref _bytes);
    public long Evictions => Interlocked.Read(ref _evictions);

    /// <summary>Writes the key of (name, type, class) into <paramref name="key"/> (≥ MaxKeyLength): the name lower-cased.</summary>
    public static int BuildKey(ReadOnlySpan<byte> name, RecordType type, RecordClass @class, Span<byte> key)
    {
        name.CopyTo(key);
        DnsName.LowerLabels(key[..name.Length]);
        BinaryPrimitives.WriteUInt16BigEndian(key[name.Length..], (ushort)type);
        BinaryPrimitives.WriteUInt16BigEndian(key[(name.Length + 2)..], (ushort)@class);
        return name.Length + 4;
    }

    /// <summary>
    /// Finds the entry for (name, type, class) — positive or NODATA — or, with type 0, the NXDOMAIN
    /// entry of the name. Fresh only unless <paramref name="allowStale"/>. No allocation.
    /// </summary>
    public bool TryGet(ReadOnlySpan<byte> name, RecordType type, RecordClass @class, long nowMs, bool allowStale, out CacheEntry entry)
    {
        Span<byte> key = stackalloc byte[MaxKeyLength];
        int len = BuildKey(name, type, @class, key);
        if (_lookup.TryGetValue(key[..len], out var found)
            && (found.ExpiresMs > nowMs || (allowStale && found.ExpiresMs + _staleMs > nowMs)))
        {
            // Only write the bit when it changes: a hot entry stays in every core's cache unshared.
            if (found.Referenced == 0) found.Referenced = 1;
            entry = found;
            return true;
        }
        entry = null!;
        return false;
    }

    public bool TryGetNxDomain(ReadOnlySpan<byte> name, RecordClass @class, long nowMs, bool allowStale, out CacheEntry entry) =>
        TryGet(name, NxDomainType, @class, nowMs, allowStale, out entry);

    /// <summary>Remaining TTL in seconds of a fresh entry (0 when expired).</summary>
    public static uint RemainingTtl(CacheEntry entry, long nowMs) =>
        entry.ExpiresMs <= nowMs ? 0 : (uint)((entry.ExpiresMs - nowMs + 999) / 1000);

    private uint ClampPositive(uint ttl) => Math.Min(Math.Max(ttl, _minTtl), _maxTtl);

    /// <summary>How long bogus data is kept (never served but to CD=1 clients): Unbound's val-bogus-ttl, 60 s.</summary>
    public const uint BogusTtl = 60;

    /// <summary>
    /// Caches an RRset (all records share owner, type and class); TTL = the smallest (RFC 2181 §5.2),
    /// clamped, and no longer than <paramref name="maxTtl"/> (the validator's cap: a signature's
    /// remaining life) nor <see cref="BogusTtl"/> when bogus. <paramref name="signatures"/> are the
    /// RRSIGs covering it; <paramref name="reason"/> the EDE code of a bogus verdict.
    /// </summary>
    public bool AddRRset(IReadOnlyList<ResourceRecord> records, TrustRank rank, ValidationState validation = ValidationState.Unchecked,
        IReadOnlyList<ResourceRecord>? signatures = null, int reason = -1, uint maxTtl = uint.MaxValue, CacheEntry? dname = null) =>
        Put(records, rank, validation, signatures, reason, maxTtl, dname) is not null;

    /// <summary>As <see cref="AddRRset"/>; the entry stored, or null when it was not.</summary>
    public CacheEntry? Put(IReadOnlyList<ResourceRecord> records, TrustRank rank, ValidationState validation = ValidationState.Unchecked,
        IReadOnlyList<ResourceRecord>? signatures = null, int reason = -1, uint maxTtl = uint.MaxValue, CacheEntry? dname = null)
    {
        if (records.Count == 0) return null;
        var first = records[0];
        uint ttl = uint.MaxValue;
        foreach (var r in records) ttl = Math.Min(ttl, r.Ttl);
        var packed = Pack(records);
        ttl = Cap(ClampPositive(ttl), validation, maxTtl);
        var key = MakeKey(first.Owner.Wire, first.Type, first.Class);
        var entry = new CacheEntry(key, CacheEntryKind.Positive, first.Owner.Wire.ToArray(), first.Type, first.Class, packed,
            records.Count, NowMs + ttl * 1000L, ttl, rank, validation, [], [],
            signatures is { Count: > 0 } ? Pack(signatures) : null, null, reason) { Dname = dname };
        bool stored = Store(entry);
        // Data for the name exists now: a cached NXDOMAIN for it is out of date.
        if (stored && rank >= TrustRank.NonAuthAnswer) RemoveKey(MakeKey(first.Owner.Wire, NxDomainType, first.Class));
        return stored ? entry : null;
    }

    /// <summary>
    /// Caches a negative answer (RFC 2308 §5): NXDOMAIN for the name (type ignored) or NODATA for
    /// (name, type). TTL = min(SOA TTL, SOA MINIMUM) (§5), capped by the negative ceiling.
    /// </summary>
    public bool AddNegative(DnsName name, RecordType type, RecordClass @class, bool nxDomain, ResourceRecord? soa, TrustRank rank,
        ValidationState validation = ValidationState.Unchecked, IReadOnlyList<ResourceRecord>? proof = null, int reason = -1, uint maxTtl = uint.MaxValue)
    {
        uint ttl = 0;
        if (soa is not null && soa.Data.Length >= 20)
            ttl = Math.Min(soa.Ttl, BinaryPrimitives.ReadUInt32BigEndian(soa.Data.AsSpan(soa.Data.Length - 4)));
        ttl = Cap(Math.Min(ttl, _maxNegativeTtl), validation, maxTtl);
        var t = nxDomain ? NxDomainType : type;
        var entry = new CacheEntry(MakeKey(name.Wire, t, @class), nxDomain ? CacheEntryKind.NxDomain : CacheEntryKind.NoData,
            name.Wire.ToArray(), t, @class, [], 0, NowMs + ttl * 1000L, ttl, rank, validation,
            soa?.Owner.Wire.ToArray() ?? [], soa?.Data ?? [], null, proof is { Count: > 0 } ? PackProof(proof) : null, reason);
        return Store(entry);
    }

    private static uint Cap(uint ttl, ValidationState validation, uint maxTtl) =>
        Math.Min(Math.Min(ttl, maxTtl), validation == ValidationState.Bogus ? BogusTtl : uint.MaxValue);

    /// <summary>RDATAs, each after its 16-bit length.</summary>
    private static byte[] Pack(IReadOnlyList<ResourceRecord> records)
    {
        int size = 0;
        foreach (var r in records) size += 2 + r.Data.Length;
        var packed = new byte[size];
        int at = 0;
        foreach (var r in records)
        {
            BinaryPrimitives.WriteUInt16BigEndian(packed.AsSpan(at), (ushort)r.Data.Length);
            r.Data.CopyTo(packed, at + 2);
            at += 2 + r.Data.Length;
        }
        return packed;
    }

    /// <summary>Whole records: owner wire, type, RDATA length, RDATA.</summary>
    private static byte[] PackProof(IReadOnlyList<ResourceRecord> records)
    {
        int size = 0;
        foreach (var r in records) size += r.Owner.WireLength + 4 + r.Data.Length;
        var packed = new byte[size];
        int at = 0;
        foreach (var r in records)
        {
            r.Owner.Wire.CopyTo(packed.AsSpan(at));
            at += r.Owner.WireLength;
            BinaryPrimitives.WriteUInt16BigEndian(packed.AsSpan(at), (ushort)r.Type);
            BinaryPrimitives.WriteUInt16BigEndian(packed.AsSpan(at + 2), (ushort)r.Data.Length);
            r.Data.CopyTo(packed, at + 4);
            at += 4 + r.Data.Length;
        }
        return packed;
    }

    private static byte[] MakeKey(ReadOnlySpan<byte> name, RecordType type, RecordClass @class)
    {
        var key = new byte[name.Length + 4];
        BuildKey(name, type, @class, key);
        return key;
    }

    private bool Store(CacheEntry entry)
    {
        if (_discard) return false;
        long now = NowMs;
        while (true)
        {
            if (_entries.TryGetValue(entry.Key, out var old))
            {
                // RFC 2181 §5.4.1: lower-ranked data never replaces higher-ranked data still valid.
                if (old.ExpiresMs > now && old.Rank > entry.Rank) return false;
                // Nor does bogus data replace validated data still valid (a spoofed or broken answer
                // would otherwise deny the name for the bogus TTL).
                if (old.ExpiresMs > now && old.Validation == ValidationState.Secure && entry.Validation == ValidationState.Bogus) return false;
                if (!_entries.TryUpdate(entry.Key, entry, old)) continue;
                Interlocked.Add(ref _bytes, entry.Size - old.Size);
            }
            else
            {
                if (!_entries.TryAdd(entry.Key, entry)) continue;
                Interlocked.Add(ref _bytes, entry.Size);
            }
            break;
        }
        if (Interlocked.Read(ref _bytes) > _maxBytes) Sweep(now);
        return true;
    }

    /// <summary>The bytes of the entries present (for tests: the running count must agree once writers are done).</summary>
    internal long RecountBytes()
    {
        long sum = 0;
        foreach (var (_, e) in _entries) sum += e.Size;
        return sum;
    }

    private void RemoveKey(byte[] key)
    {
        if (_entries.TryRemove(key, out var old)) Interlocked.Add(ref _bytes, -old.Size);
    }

    /// <summary>
    /// CLOCK eviction down to 90 % of the bound: entries past their stale window go first, then
    /// entries not hit since the last sweep; hit entries lose their bit and survive this round.
    /// One sweeper at a time; other writers do not wait for it.
    /// </summary>
    private void Sweep(long now)
    {
        if (!_sweepLock.TryEnter()) return;
        try
        {
            long target = _maxBytes * 9 / 10;
            for (int round = 0; round < 3 && Interlocked.Read(ref _bytes) > target; round++)
            {
                foreach (var (key, e) in _entries)
                {
                    if (Interlocked.Read(ref _bytes) <= target) break;
                    bool dead = e.ExpiresMs + _staleMs <= now;
                    if (dead || e.Referenced == 0 || round == 2)
                    {
                        if (_entries.TryRemove(new KeyValuePair<byte[], CacheEntry>(key, e)))
                        {
                            Interlocked.Add(ref _bytes, -e.Size);
                            Interlocked.Increment(ref _evictions);
                        }
                    }
                    else e.Referenced = 0;
                }
            }
        }
        finally { _sweepLock.Exit(); }
    }

    /// <summary>Byte-wise equality and a seeded hash over the lower-cased key (hash flooding needs the seed).</summary>
    private sealed class KeyComparer : IEqualityComparer<byte[]>, IAlternateEqualityComparer<ReadOnlySpan<byte>, byte[]>
    {
        public static readonly KeyComparer Instance = new();
        public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);
        public int GetHashCode(byte[] obj) => Hash(obj);
        public bool Equals(ReadOnlySpan<byte> alternate, byte[] other) => alternate.SequenceEqual(other);
        public int GetHashCode(ReadOnlySpan<byte> alternate) => Hash(alternate);
        public byte[] Create(ReadOnlySpan<byte> alternate) => alternate.ToArray();
        private static int Hash(ReadOnlySpan<byte> key)
        {
            var h = new HashCode();
            h.AddBytes(key);
            return h.ToHashCode();
        }
    }
}
