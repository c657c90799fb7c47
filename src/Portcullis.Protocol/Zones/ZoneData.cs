using System.Buffers.Binary;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;

namespace Portcullis.Protocol.Zones;

[Flags]
public enum NodeFlags : byte
{
    None = 0,
    Apex = 1,
    /// <summary>NS at a name other than the apex: a zone cut (RFC 1034 §4.2.1).</summary>
    Delegation = 2,
    Cname = 4,
    Dname = 8,
    /// <summary>Below a zone cut or a DNAME: glue or occluded data, never answered authoritatively.</summary>
    BelowCut = 16,
    /// <summary>Exists only because names exist below it (RFC 4592 §2.2.2); it has no RRsets.</summary>
    EmptyNonTerminal = 32,
}

/// <summary>
/// One zone's data, immutable once built, laid out as a handful of flat arrays instead of an object
/// per name and per RRset: the owner names back to back in one byte array, the nodes and the RRsets
/// as arrays of small structs, every RDATA packed in one byte array, and an open-addressing hash
/// table of node numbers probed with the wire bytes of a name. A million-record zone is a dozen
/// objects, so the garbage collector never walks it, and a lookup touches three or four cache lines.
/// <see cref="ZoneNode"/> and <see cref="RecordSet"/> are handles (the zone and an index) into it.
/// Built by <see cref="ZoneCompiler"/>.
/// </summary>
public sealed class ZoneData
{
    internal struct NodeEntry
    {
        public int Name;        // offset of the owner's wire name in _names
        public int FirstSet;    // its RRsets are _sets[FirstSet .. FirstSet + SetCount)
        public int SetCount;
        public byte NameLength;
        public byte Labels;
        public NodeFlags Flags;
    }

    internal struct SetEntry
    {
        public int Data;        // offset in _rdata of the records, each a 16-bit length and its octets
        public int Length;      // bytes of packed records
        public int Node;
        public int Extra;       // offset in _extra of the additional-section list (count, then set numbers); 0: none
        public int Fragment;    // offset in Fragments of the records in wire form with the owner a pointer to the question; -1: none
        public uint Ttl;
        public RecordType Type;
        public ushort Count;
    }

    /// <summary>A hash-table slot: the name's hash beside the node number, so a probe that misses reads one cache line.</summary>
    internal struct Bucket
    {
        public int Hash;
        public int Node;        // node number + 1; 0 for an empty slot
    }

    internal readonly byte[] Names;
    internal readonly NodeEntry[] Nodes;
    internal readonly SetEntry[] Sets;
    internal readonly byte[] Rdata;
    internal readonly int[] Extra;
    /// <summary>Answer fragments (NSD's idea): each RRset whose RDATA has no compressible name, as the
    /// records appear in an answer to a question for its own name: owner C0 0C, type, class, TTL,
    /// RDLENGTH, RDATA. Answering such a question is then one copy.</summary>
    internal readonly byte[] Fragments;
    private readonly Bucket[] _buckets;
    private readonly int _shift;
    private readonly int _nodeCount;
    private readonly int _setCount;    // sets that belong to nodes; the negative SOA, if any, follows them

    internal ZoneData(DnsName origin, RecordClass @class, byte[] names, NodeEntry[] nodes, int nodeCount, SetEntry[] sets, int setCount,
        byte[] rdata, int[] extra, byte[] fragments, Bucket[] buckets, int recordCount, int nameCount)
    {
        Origin = origin;
        Class = @class;
        Names = names;
        Nodes = nodes;
        _nodeCount = nodeCount;
        Sets = sets;
        _setCount = setCount;
        Rdata = rdata;
        Extra = extra;
        Fragments = fragments;
        _buckets = buckets;
        _shift = 32 - System.Numerics.BitOperations.Log2((uint)buckets.Length);
        RecordCount = recordCount;
        NameCount = nameCount;
        Apex = Find(origin.Wire);
        if (sets.Length > setCount) NegativeSoa = new RecordSet(this, setCount);
        _nsec = BuildNsecOrder();
        (_nsec3, _nsec3Hashes, _nsec3Salt, Nsec3Iterations, Nsec3Problem) = BuildNsec3Index();
    }

    /// <summary>
    /// The NSEC RRsets in canonical order of their owners (RFC 4034 §6.1), built once at load so that
    /// the NSEC covering a name that does not exist (RFC 4035 §3.1.3.2) is a binary search.
    /// </summary>
    private readonly int[] _nsec;

    private int[] BuildNsecOrder()
    {
        int count = 0;
        for (int i = 0; i < _setCount; i++) if (Sets[i].Type == RecordType.NSEC) count++;
        if (count == 0) return [];
        var order = new int[count];
        count = 0;
        for (int i = 0; i < _setCount; i++) if (Sets[i].Type == RecordType.NSEC) order[count++] = i;
        Array.Sort(order, (a, b) => DnsName.CompareCanonical(NameOf(Sets[a].Node), NameOf(Sets[b].Node)));
        return order;
    }

    /// <summary>True when the zone holds an NSEC chain (a zone signed with NSEC).</summary>
    public bool HasNsec => _nsec.Length > 0;

    /// <summary>
    /// The NSEC whose owner is the name itself or the last one before it in canonical order: the
    /// NSEC at an existing name, else the one that covers it (RFC 4034 §4.1, RFC 4035 §3.1.3). The
    /// last NSEC, whose next name is the apex, covers the names after it. Missing without a chain.
    /// </summary>
    public RecordSet FindNsec(ReadOnlySpan<byte> wire)
    {
        var order = _nsec;
        if (order.Length == 0) return default;
        int lo = 0, hi = order.Length - 1, found = order.Length - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            if (DnsName.CompareCanonical(NameOf(Sets[order[mid]].Node), wire) <= 0) { found = mid; lo = mid + 1; }
            else hi = mid - 1;
        }
        return new RecordSet(this, order[found]);
    }

    /// <summary>
    /// The most additional NSEC3 iterations (RFC 5155 §5) for which answers carry NSEC3 proofs. Each
    /// proof hashes a name (iterations + 1) times at query time, so a zone with a high count turns
    /// every negative answer into work for the server (RFC 9276 §2.4, §6). 150 is the most BIND's
    /// dnssec-signzone (9.18) accepts ("Maximum iterations allowed 150") and the most Unbound 1.17
    /// (val-nsec3-keysize-iterations) and BIND's validator treat as secure; above it validators call
    /// the zone insecure anyway (RFC 9276 §3.2). Such a zone is served without NSEC3 proofs and
    /// <see cref="Nsec3Problem"/> says why, for the load log.
    /// </summary>
    public const int MaxNsec3Iterations = 150;

    /// <summary>The length of an NSEC3 hash with SHA-1, the one algorithm defined (RFC 5155 §11).</summary>
    public const int Nsec3HashLength = 20;

    /// <summary>NSEC3 RRsets in the order of their owners' hashes (RFC 5155 §7.1), and the hashes back to back.</summary>
    private readonly int[] _nsec3;
    private readonly byte[] _nsec3Hashes;
    private readonly byte[] _nsec3Salt;

    /// <summary>True when the zone holds a usable NSEC3 chain (SHA-1, at most <see cref="MaxNsec3Iterations"/>).</summary>
    public bool HasNsec3 => _nsec3.Length > 0;
    /// <summary>The chain's additional iterations (from NSEC3PARAM at the apex, else the first NSEC3).</summary>
    public int Nsec3Iterations { get; }
    public ReadOnlySpan<byte> Nsec3Salt => _nsec3Salt;
    /// <summary>Why a zone that holds NSEC3 records gets no NSEC3 proofs in answers (a line for the load log), or null.</summary>
    public string? Nsec3Problem { get; }

    /// <summary>
    /// Builds the NSEC3 index: the NSEC3 parameters come from the apex NSEC3PARAM with flags 0
    /// (RFC 5155 §4.1.2: the one a primary uses), else from the first NSEC3 record; only NSEC3
    /// RRsets with those parameters, owned by a base32hex label right below the apex (§3.3), count.
    /// </summary>
    private (int[] Sets, byte[] Hashes, byte[] Salt, int Iterations, string? Problem) BuildNsec3Index()
    {
        ReadOnlySpan<byte> parameters = default;   // algorithm, flags, iterations, salt length, salt
        if (Apex.Exists && Apex.Get(RecordType.NSEC3PARAM) is { Exists: true } param)
            foreach (var rdata in param.Rdata)
                if (rdata.Length >= 5 && rdata[1] == 0 && rdata.Length == 5 + rdata[4]) { parameters = rdata; break; }
        var found = new List<(byte[] Hash, int Set)>();
        int apexLabels = Origin.LabelCount;
        for (int i = 0; i < _setCount; i++)
        {
            ref readonly var s = ref Sets[i];
            if (s.Type != RecordType.NSEC3 || Nodes[s.Node].Labels != apexLabels + 1) continue;
            bool matches = false;
            foreach (var rdata in new RecordSet(this, i).Rdata)
            {
                if (rdata.Length < 5 || rdata.Length < 5 + rdata[4]) continue;
                if (parameters.IsEmpty) parameters = rdata[..(5 + rdata[4])];
                // The flags octet differs between NSEC3 (opt-out bit) and NSEC3PARAM: compare the rest.
                if (rdata[0] == parameters[0] && rdata.Slice(2, 3 + rdata[4]).SequenceEqual(parameters.Slice(2, 3 + parameters[4]))) matches = true;
            }
            var hash = new byte[Nsec3HashLength];
            if (matches && TryDecodeHashLabel(NameOf(s.Node), hash)) found.Add((hash, i));
        }
        if (parameters.IsEmpty) return ([], [], [], 0, null);
        int iterations = parameters[2] << 8 | parameters[3];
        byte[] salt = parameters.Slice(5, parameters[4]).ToArray();
        string? problem = null;
        if (parameters[0] != 1) problem = $"NSEC3 hash algorithm {parameters[0]} is not SHA-1 (RFC 5155 §11): answers carry no NSEC3 proofs";
        else if (iterations > MaxNsec3Iterations)
            problem = $"NSEC3 iterations {iterations} exceed {MaxNsec3Iterations} (RFC 9276 §3.1 asks for 0): answers carry no NSEC3 proofs";
        else if (found.Count == 0) problem = "NSEC3PARAM without NSEC3 records: answers carry no NSEC3 proofs";
        if (problem is not null) return ([], [], salt, iterations, problem);
        found.Sort((a, b) => a.Hash.AsSpan().SequenceCompareTo(b.Hash));
        var sets = new int[found.Count];
        var hashes = new byte[found.Count * Nsec3HashLength];
        for (int i = 0; i < found.Count; i++)
        {
            sets[i] = found[i].Set;
            found[i].Hash.CopyTo(hashes, i * Nsec3HashLength);
        }
        return (sets, hashes, salt, iterations, null);
    }

    /// <summary>Decodes the first label of an NSEC3 owner: 32 base32hex characters, any case (RFC 4648 §7), 20 octets.</summary>
    internal static bool TryDecodeHashLabel(ReadOnlySpan<byte> wire, Span<byte> hash)
    {
        if (wire.Length == 0 || wire[0] != 32) return false;
        ulong bits = 0;
        int have = 0, written = 0;
        for (int i = 1; i <= 32; i++)
        {
            int c = wire[i] | 0x20;   // lower case; digits are unchanged by this bit
            int v = c is >= '0' and <= '9' ? c - '0' : c is >= 'a' and <= 'v' ? c - 'a' + 10 : -1;
            if (v < 0) return false;
            bits = bits << 5 | (uint)v;
            have += 5;
            if (have >= 8)
            {
                have -= 8;
                hash[written++] = (byte)(bits >> have);
            }
        }
        return written == Nsec3HashLength;
    }

    /// <summary>
    /// The NSEC3 hash of a name with the zone's parameters (RFC 5155 §5): SHA-1 over the name in
    /// canonical (lowered) wire form and the salt, then <see cref="Nsec3Iterations"/> more times over
    /// the digest and the salt. Writes 20 octets; works in stack buffers, allocates nothing. SHA-1 is
    /// computed here rather than by the BCL: its one-shot call goes through OpenSSL and costs about
    /// 1 µs for these one-block inputs, four times the whole compression done in place.
    /// </summary>
    public void HashNsec3(ReadOnlySpan<byte> wire, Span<byte> hash)
    {
        var salt = _nsec3Salt;
        Span<byte> input = stackalloc byte[DnsName.MaxLength + 255];
        wire.CopyTo(input);
        DnsName.LowerLabels(input[..wire.Length]);
        salt.CopyTo(input[wire.Length..]);
        Sha1(input[..(wire.Length + salt.Length)], hash);
        for (int i = 0; i < Nsec3Iterations; i++)
        {
            hash[..Nsec3HashLength].CopyTo(input);
            salt.CopyTo(input[Nsec3HashLength..]);
            Sha1(input[..(Nsec3HashLength + salt.Length)], hash);
        }
    }

    /// <summary>SHA-1 (FIPS 180-4 §6.1) of <paramref name="data"/> into the first 20 octets of <paramref name="digest"/>, on the stack.</summary>
    internal static void Sha1(ReadOnlySpan<byte> data, Span<byte> digest)
    {
        Span<uint> h = [0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u, 0xC3D2E1F0u];
        Span<uint> w = stackalloc uint[80];
        int full = data.Length & ~63;
        for (int at = 0; at < full; at += 64) Sha1Block(data.Slice(at, 64), w, h);
        // Padding (§5.1.1): 0x80, zeros, the message length in bits as 64 bits; one or two blocks.
        Span<byte> tail = stackalloc byte[128];
        int rest = data.Length - full;
        int tailLength = rest + 9 <= 64 ? 64 : 128;
        tail[..tailLength].Clear();
        data[full..].CopyTo(tail);
        tail[rest] = 0x80;
        BinaryPrimitives.WriteUInt64BigEndian(tail[(tailLength - 8)..], (ulong)data.Length * 8);
        for (int at = 0; at < tailLength; at += 64) Sha1Block(tail.Slice(at, 64), w, h);
        for (int i = 0; i < 5; i++) BinaryPrimitives.WriteUInt32BigEndian(digest[(4 * i)..], h[i]);
    }

    private static void Sha1Block(ReadOnlySpan<byte> block, Span<uint> w, Span<uint> h)
    {
        for (int t = 0; t < 16; t++) w[t] = BinaryPrimitives.ReadUInt32BigEndian(block[(4 * t)..]);
        for (int t = 16; t < 80; t++) w[t] = uint.RotateLeft(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);
        uint a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
        // The four rounds of 20 steps, each with its function and constant (§4.1.1, §4.2.1).
        for (int t = 0; t < 20; t++) Sha1Step(ref a, ref b, ref c, ref d, ref e, ((b & c) | (~b & d)) + 0x5A827999u + w[t]);
        for (int t = 20; t < 40; t++) Sha1Step(ref a, ref b, ref c, ref d, ref e, (b ^ c ^ d) + 0x6ED9EBA1u + w[t]);
        for (int t = 40; t < 60; t++) Sha1Step(ref a, ref b, ref c, ref d, ref e, ((b & c) | (b & d) | (c & d)) + 0x8F1BBCDCu + w[t]);
        for (int t = 60; t < 80; t++) Sha1Step(ref a, ref b, ref c, ref d, ref e, (b ^ c ^ d) + 0xCA62C1D6u + w[t]);
        h[0] += a;
        h[1] += b;
        h[2] += c;
        h[3] += d;
        h[4] += e;
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static void Sha1Step(ref uint a, ref uint b, ref uint c, ref uint d, ref uint e, uint fkw)
    {
        uint temp = uint.RotateLeft(a, 5) + fkw + e;
        e = d;
        d = c;
        c = uint.RotateLeft(b, 30);
        b = a;
        a = temp;
    }

    /// <summary>The index of the last NSEC3 whose owner hash is at or before <paramref name="hash"/>, or -1 when it precedes them all.</summary>
    private int Nsec3AtOrBefore(ReadOnlySpan<byte> hash, out bool match)
    {
        int lo = 0, hi = _nsec3.Length - 1, found = -1;
        match = false;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            int c = _nsec3Hashes.AsSpan(mid * Nsec3HashLength, Nsec3HashLength).SequenceCompareTo(hash[..Nsec3HashLength]);
            if (c <= 0)
            {
                found = mid;
                lo = mid + 1;
                if (c == 0) { match = true; break; }
            }
            else hi = mid - 1;
        }
        return found;
    }

    /// <summary>The NSEC3 whose owner is this hash (RFC 5155 §7.2: "matches"), or a missing set.</summary>
    public RecordSet FindNsec3Matching(ReadOnlySpan<byte> hash)
    {
        if (_nsec3.Length == 0) return default;
        int at = Nsec3AtOrBefore(hash, out bool match);
        return match ? new RecordSet(this, _nsec3[at]) : default;
    }

    /// <summary>
    /// The NSEC3 that covers this hash (RFC 5155 §3.1.7: the hash falls strictly between its owner
    /// and its next hashed owner): the last one before it in hash order, or the last of the chain,
    /// whose next is the first, for a hash before them all. Missing when an NSEC3 matches the hash.
    /// </summary>
    public RecordSet FindNsec3Covering(ReadOnlySpan<byte> hash)
    {
        if (_nsec3.Length == 0) return default;
        int at = Nsec3AtOrBefore(hash, out bool match);
        if (match) return default;
        return new RecordSet(this, _nsec3[at < 0 ? _nsec3.Length - 1 : at]);
    }

    public DnsName Origin { get; }
    public RecordClass Class { get; }
    /// <summary>The node of the origin (missing only in a zone with no records at its apex).</summary>
    public ZoneNode Apex { get; }
    /// <summary>Records, duplicates not counted.</summary>
    public int RecordCount { get; }
    /// <summary>Owner names with records (empty non-terminals not counted).</summary>
    public int NameCount { get; }
    /// <summary>Nodes, empty non-terminals included.</summary>
    public int NodeCount => _nodeCount;

    /// <summary>The apex SOA with the TTL negative answers give it: min(TTL, MINIMUM) (RFC 2308 §3).</summary>
    public RecordSet NegativeSoa { get; }

    public ZoneNode this[int node] => (uint)node < (uint)_nodeCount ? new ZoneNode(this, node) : throw new ArgumentOutOfRangeException(nameof(node));

    /// <summary>The RRset with this number (<see cref="RecordSet.Index"/>), or a missing set.</summary>
    public RecordSet GetSet(int index) => (uint)index < (uint)Sets.Length ? new RecordSet(this, index) : default;

    internal static int BucketOf(int hash, int shift) => (int)((uint)hash * 2654435769u >> shift);

    /// <summary>The node with this uncompressed wire name (any case), or a missing node.</summary>
    public ZoneNode Find(ReadOnlySpan<byte> wire)
    {
        int n = Probe(Names, Nodes, _buckets, _shift, wire, DnsName.HashWire(wire));
        return n < 0 ? default : new ZoneNode(this, n);
    }

    /// <summary>Linear probing from the name's Fibonacci-hashed bucket; the node number, or -1.</summary>
    internal static int Probe(byte[] names, NodeEntry[] nodes, Bucket[] buckets, int shift, ReadOnlySpan<byte> wire, int hash)
    {
        int mask = buckets.Length - 1;
        for (int i = BucketOf(hash, shift); ; i = (i + 1) & mask)
        {
            ref readonly var b = ref buckets[i];
            if (b.Node == 0) return -1;
            if (b.Hash != hash) continue;
            ref readonly var e = ref nodes[b.Node - 1];
            if (e.NameLength == wire.Length && DnsName.EqualsIgnoreCase(names.AsSpan(e.Name, e.NameLength), wire))
                return b.Node - 1;
        }
    }

    public ZoneNode Find(DnsName name) => Find(name.Wire);

    /// <summary>Every record, in canonical order (RFC 4034 §6): names, then types, then RDATA.</summary>
    public IEnumerable<ResourceRecord> CanonicalRecords()
    {
        // Only nodes holding records (empty non-terminals hold none). Nodes are numbered as their
        // owners first came in, so a zone compiled from records in canonical order (a signed zone,
        // a transfer, the last version's Records()) is in order already: a linear check spares
        // the n log n name comparisons.
        int count = 0;
        for (int i = 0; i < _nodeCount; i++) if (Nodes[i].SetCount > 0) count++;
        var order = new int[count];
        count = 0;
        for (int i = 0; i < _nodeCount; i++) if (Nodes[i].SetCount > 0) order[count++] = i;
        bool sorted = true;
        for (int i = 1; i < order.Length && sorted; i++)
            sorted = DnsName.CompareCanonical(NameOf(order[i - 1]), NameOf(order[i])) < 0;
        if (!sorted) Array.Sort(order, (a, b) => DnsName.CompareCanonical(NameOf(a), NameOf(b)));
        foreach (int n in order)
        {
            var node = new ZoneNode(this, n);
            if (node.Sets.Count == 0) continue;
            var owner = node.ToName();
            foreach (var set in node.Sets)
                foreach (var data in set.ToRdataArrays())
                    yield return new ResourceRecord(owner, set.Type, Class, set.Ttl, data);
        }
    }

    internal ReadOnlySpan<byte> NameOf(int node)
    {
        ref readonly var e = ref Nodes[node];
        return Names.AsSpan(e.Name, e.NameLength);
    }

    internal int SetCountOfNodes => _setCount;
}

/// <summary>A node of a <see cref="ZoneData"/>: an owner name (or empty non-terminal) and its RRsets.</summary>
public readonly struct ZoneNode : IEquatable<ZoneNode>
{
    private readonly ZoneData? _zone;
    private readonly int _index;

    internal ZoneNode(ZoneData zone, int index)
    {
        _zone = zone;
        _index = index;
    }

    /// <summary>False for the node a failed lookup returns.</summary>
    public bool Exists => _zone is not null;
    public int Index => _index;

    private ref readonly ZoneData.NodeEntry Entry => ref _zone!.Nodes[_index];

    /// <summary>The owner name as uncompressed wire bytes, in the case the zone file gave.</summary>
    public ReadOnlySpan<byte> Name => _zone!.NameOf(_index);
    public int LabelCount => Entry.Labels;
    public NodeFlags Flags => Entry.Flags;
    public bool Has(NodeFlags flag) => (Entry.Flags & flag) != 0;
    public DnsName ToName() => DnsName.FromWire(Name);

    public SetList Sets
    {
        get
        {
            ref readonly var e = ref Entry;
            return new SetList(_zone!, e.FirstSet, e.SetCount);
        }
    }

    /// <summary>The RRset of this type (for RRSIG, the first of the per-covered-type sets), or a missing set.</summary>
    public RecordSet Get(RecordType type)
    {
        ref readonly var e = ref Entry;
        var sets = _zone!.Sets;
        for (int i = e.FirstSet, end = e.FirstSet + e.SetCount; i < end; i++)
            if (sets[i].Type == type) return new RecordSet(_zone, i);
        return default;
    }

    /// <summary>The RRSIG RRset covering this type at this node (RRSIGs are held one set per covered type), or a missing set.</summary>
    public RecordSet GetSignatures(RecordType covered)
    {
        ref readonly var e = ref Entry;
        var sets = _zone!.Sets;
        var rdata = _zone.Rdata;
        for (int i = e.FirstSet, end = e.FirstSet + e.SetCount; i < end; i++)
        {
            ref readonly var s = ref sets[i];
            // Packed records: a 16-bit length, then the RDATA whose first field is the type covered (RFC 4034 §3.1).
            if (s.Type == RecordType.RRSIG && BinaryPrimitives.ReadUInt16BigEndian(rdata.AsSpan(s.Data + 2)) == (ushort)covered)
                return new RecordSet(_zone, i);
        }
        return default;
    }

    public bool Equals(ZoneNode other) => ReferenceEquals(_zone, other._zone) && _index == other._index;
    public override bool Equals(object? obj) => obj is ZoneNode n && Equals(n);
    public override int GetHashCode() => _index;
    public override string ToString() => Exists ? ToName().ToString() : "(none)";

    /// <summary>A node's RRsets in canonical type order, enumerated without allocating.</summary>
    public readonly struct SetList(ZoneData zone, int first, int count)
    {
        public int Count => count;
        public RecordSet this[int i] => (uint)i < (uint)count ? new RecordSet(zone, first + i) : throw new ArgumentOutOfRangeException(nameof(i));
        public Enumerator GetEnumerator() => new(zone, first, first + count);

        public struct Enumerator(ZoneData zone, int first, int end)
        {
            private int _next = first;
            public RecordSet Current { get; private set; }

            public bool MoveNext()
            {
                if (_next >= end) return false;
                Current = new RecordSet(zone, _next++);
                return true;
            }
        }
    }
}

/// <summary>
/// An RRset of a <see cref="ZoneData"/>: owner, type, one TTL (RFC 2181 §5.2) and the RDATA of its
/// records (uncompressed, canonical order). RRSIGs form one set per covered type.
/// </summary>
public readonly struct RecordSet : IEquatable<RecordSet>
{
    private readonly ZoneData? _zone;
    private readonly int _index;

    internal RecordSet(ZoneData zone, int index)
    {
        _zone = zone;
        _index = index;
    }

    public bool Exists => _zone is not null;
    /// <summary>The set's number in its zone: two handles are the same RRset when the numbers are equal.</summary>
    public int Index => _index;

    private ref readonly ZoneData.SetEntry Entry => ref _zone!.Sets[_index];

    public RecordType Type => Entry.Type;
    public RecordClass Class => _zone!.Class;
    public uint Ttl => Entry.Ttl;
    public int Count => Entry.Count;
    public ReadOnlySpan<byte> Owner => _zone!.NameOf(Entry.Node);
    public ZoneNode Node => new(_zone!, Entry.Node);

    private ReadOnlySpan<byte> Packed
    {
        get
        {
            ref readonly var e = ref Entry;
            return _zone!.Rdata.AsSpan(e.Data, e.Length);
        }
    }

    /// <summary>The RDATA of the first record (the one record of a CNAME, DNAME or SOA).</summary>
    public ReadOnlySpan<byte> First
    {
        get
        {
            var packed = Packed;
            return packed.Slice(2, BinaryPrimitives.ReadUInt16BigEndian(packed));
        }
    }

    /// <summary>The RDATA of each record, without allocating: <c>foreach (var rdata in set.Rdata)</c>.</summary>
    public RdataEnumerator Rdata => new(Packed);

    /// <summary>
    /// The address RRsets (A, AAAA) of the names this RRset points at (NS, MX, SRV targets), found at
    /// load so that additional-section processing is a walk over a list.
    /// </summary>
    public AdditionalList Additional
    {
        get
        {
            int at = Entry.Extra;
            var extra = _zone!.Extra;
            return new AdditionalList(_zone, extra.AsSpan(at + 1, extra[at]));
        }
    }

    /// <summary>
    /// The whole RRset in wire form as it is written in answer to a question for its owner (owner a
    /// pointer to the question), or empty when its RDATA holds names to compress.
    /// </summary>
    public ReadOnlySpan<byte> AnswerFragment
    {
        get
        {
            ref readonly var e = ref Entry;
            return e.Fragment < 0 ? default : _zone!.Fragments.AsSpan(e.Fragment, e.Length + 10 * e.Count);
        }
    }

    public List<byte[]> ToRdataArrays()
    {
        var list = new List<byte[]>(Count);
        foreach (var d in Rdata) list.Add(d.ToArray());
        return list;
    }

    public IEnumerable<ResourceRecord> ToRecords()
    {
        var owner = DnsName.FromWire(Owner);
        var list = new List<ResourceRecord>(Count);
        foreach (var d in Rdata) list.Add(new ResourceRecord(owner, Type, Class, Ttl, d.ToArray()));
        return list;
    }

    public bool Equals(RecordSet other) => ReferenceEquals(_zone, other._zone) && _index == other._index;
    public override bool Equals(object? obj) => obj is RecordSet s && Equals(s);
    public override int GetHashCode() => _index;

    public ref struct RdataEnumerator
    {
        private readonly ReadOnlySpan<byte> _packed;
        private int _next;

        internal RdataEnumerator(ReadOnlySpan<byte> packed)
        {
            _packed = packed;
            _next = 0;
            Current = default;
        }

        public ReadOnlySpan<byte> Current { get; private set; }

        public readonly RdataEnumerator GetEnumerator() => this;

        public bool MoveNext()
        {
            if (_next >= _packed.Length) return false;
            int length = BinaryPrimitives.ReadUInt16BigEndian(_packed[_next..]);
            Current = _packed.Slice(_next + 2, length);
            _next += 2 + length;
            return true;
        }
    }

    public readonly ref struct AdditionalList
    {
        private readonly ZoneData _zone;
        private readonly ReadOnlySpan<int> _sets;

        internal AdditionalList(ZoneData zone, ReadOnlySpan<int> sets)
        {
            _zone = zone;
            _sets = sets;
        }

        public int Count => _sets.Length;
        public RecordSet this[int i] => new(_zone, _sets[i]);
        public Enumerator GetEnumerator() => new(_zone, _sets);

        public ref struct Enumerator
        {
            private readonly ZoneData _zone;
            private readonly ReadOnlySpan<int> _sets;
            private int _next;

            internal Enumerator(ZoneData zone, ReadOnlySpan<int> sets)
            {
                _zone = zone;
                _sets = sets;
                _next = -1;
            }

            public readonly RecordSet Current => new(_zone, _sets[_next]);
            public bool MoveNext() => ++_next < _sets.Length;
        }
    }
}
