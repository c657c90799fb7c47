using System.Numerics;
using System.Runtime.CompilerServices;
using Portcullis.Protocol.Records;

namespace Portcullis.Server.Policy;

/// <summary>One policy in its place in the configuration: what was read, and how the configuration applies it.</summary>
/// <param name="Override">BIND's policy override: every trigger takes this action instead of the one the zone encodes (null: "given").</param>
public sealed record PolicyLayer(PolicySource Source, PolicyAction? Override = null, bool Log = true, string? Name = null);

/// <summary>
/// Every response policy of the configuration compiled into one immutable snapshot: QNAME triggers
/// of all zones and lists in one open-addressing hash table over lower-case wire names, with flat
/// arrays for the local data. <see cref="TryMatch"/> runs on the receive thread and allocates
/// nothing; a new version of a policy zone builds a new snapshot, swapped in by one reference.
/// </summary>
/// <remarks>
/// Precedence (BIND's, draft-vixie-dnsop-dns-rpz §5): the first policy in configuration order that
/// has any trigger matching the name wins; within it an exact trigger beats a wildcard, and a
/// longer wildcard (closer to the name) beats a shorter one. A wildcard <c>*.example</c> matches
/// every name below example, at any depth, but not example itself. The table keeps, per trigger
/// name, only the earliest policy's trigger, which is all the precedence ever needs.
/// </remarks>
public sealed class ResponsePolicy
{
    private struct Trigger
    {
        public int Name;            // offset in _names of the lower-case wire name
        public int Hash;
        public int FirstRecord;     // local data: _records[FirstRecord .. FirstRecord + RecordCount)
        public ushort RecordCount;
        public ushort Layer;
        public byte NameLength;
        public bool Wildcard;
        public PolicyAction Action;
    }

    private readonly struct Record(RecordType type, uint ttl, int offset, int length)
    {
        public readonly RecordType Type = type;
        public readonly uint Ttl = ttl;
        public readonly int Offset = offset;
        public readonly int Length = length;
    }

    private sealed record LayerInfo(string Name, bool Log, byte[]? SoaOwner, byte[]? SoaData, uint SoaTtl, int Triggers);

    private readonly Trigger[] _triggers;
    private readonly byte[] _names;
    private readonly int[] _table;       // trigger index + 1; 0 empty
    private readonly int _mask;
    private readonly Record[] _records;
    private readonly byte[] _rdata;
    private readonly LayerInfo[] _layers;

    /// <summary>A snapshot with no policy: matches nothing.</summary>
    public static readonly ResponsePolicy Empty = Build([]);

    private ResponsePolicy(Trigger[] triggers, byte[] names, int[] table, Record[] records, byte[] rdata, LayerInfo[] layers)
    {
        _triggers = triggers;
        _names = names;
        _table = table;
        _mask = table.Length - 1;
        _records = records;
        _rdata = rdata;
        _layers = layers;
    }

    /// <summary>QNAME triggers in the table (after overrides and precedence between policies).</summary>
    public int TriggerCount => _triggers.Length;
    /// <summary>The policies, in the order they are consulted.</summary>
    public int LayerCount => _layers.Length;
    public string LayerName(int layer) => _layers[layer].Name;
    public bool LayerLogs(int layer) => _layers[layer].Log;
    /// <summary>Triggers the policy brought (before precedence between policies removed any).</summary>
    public int LayerTriggers(int layer) => _layers[layer].Triggers;

    /// <summary>Compiles the policies in order; a "disabled" policy is simply not given.</summary>
    public static ResponsePolicy Build(IReadOnlyList<PolicyLayer> layers)
    {
        int capacity = 0;
        foreach (var layer in layers) capacity += layer.Source.TriggerCount;
        int size = (int)BitOperations.RoundUpToPowerOf2((uint)Math.Max(16, capacity * 2));
        var table = new int[size];
        var triggers = new List<Trigger>(capacity);
        var names = new List<byte>();
        var records = new List<Record>();
        var rdata = new List<byte>();
        var infos = new LayerInfo[layers.Count];
        int lastName = -1, lastLength = 0;
        for (int l = 0; l < layers.Count; l++)
        {
            var layer = layers[l];
            var source = layer.Source;
            infos[l] = new LayerInfo(layer.Name ?? source.Name, layer.Log, source.SoaOwner, source.SoaData, source.SoaTtl, source.TriggerCount);
            for (int i = 0; i < source.TriggerCount; i++)
            {
                var name = source.NameOf(i);
                bool wildcard = source.IsWildcard(i);
                int hash = FinalHash(HashName(name), wildcard);
                // The earliest policy holding a trigger name decides for it (see remarks): a name
                // already in the table is skipped.
                int slot = hash & (size - 1);
                bool present = false;
                while (table[slot] != 0)
                {
                    var other = triggers[table[slot] - 1];
                    if (other.Hash == hash && other.Wildcard == wildcard && other.NameLength == name.Length
                        && System.Runtime.InteropServices.CollectionsMarshal.AsSpan(names).Slice(other.Name, other.NameLength).SequenceEqual(name))
                    {
                        present = true;
                        break;
                    }
                    slot = (slot + 1) & (size - 1);
                }
                if (present) continue;
                var action = layer.Override ?? source.ActionOf(i);
                // A name equal to the one just stored (a list's exact and wildcard pair) shares its octets.
                int nameOffset = lastName >= 0 && lastLength == name.Length
                    && System.Runtime.InteropServices.CollectionsMarshal.AsSpan(names).Slice(lastName, lastLength).SequenceEqual(name)
                    ? lastName : names.Count;
                if (nameOffset == names.Count)
                {
                    names.AddRange(name);
                    lastName = nameOffset;
                    lastLength = name.Length;
                }
                var trigger = new Trigger
                {
                    Name = nameOffset,
                    NameLength = (byte)name.Length,
                    Wildcard = wildcard,
                    Layer = (ushort)l,
                    Action = action,
                    Hash = hash,
                    FirstRecord = records.Count,
                };
                if (action == PolicyAction.LocalData)
                {
                    int count = 0;
                    foreach (var r in source.RecordsOf(i))
                    {
                        if (count == ushort.MaxValue) break;
                        records.Add(new Record(r.Type, r.Ttl, rdata.Count, r.Data.Length));
                        rdata.AddRange(r.Data);
                        count++;
                    }
                    trigger.RecordCount = (ushort)count;
                }
                triggers.Add(trigger);
                table[slot] = triggers.Count;
            }
        }
        return new ResponsePolicy([.. triggers], [.. names], table, [.. records], [.. rdata], infos);
    }

    /// <summary>
    /// Whether a policy matches the query name (wire form, uncompressed, any case): the winning
    /// trigger by the precedence in the remarks. Allocation-free, lock-free; a malformed name matches nothing.
    /// </summary>
    public bool TryMatch(ReadOnlySpan<byte> qnameWire, out PolicyHit hit)
    {
        hit = default;
        if (_triggers.Length == 0) return false;
        // Label starts, left to right (at most 127 labels in 255 octets).
        Span<int> starts = stackalloc int[128];
        int labels = 0, pos = 0;
        while (true)
        {
            if (pos >= qnameWire.Length || pos > 254) return false;
            int length = qnameWire[pos];
            if (length == 0) break;
            if (length > 63 || labels == starts.Length) return false;
            starts[labels++] = pos;
            pos += length + 1;
        }
        // The root itself: no trigger names it (a wildcard never matches its own name; lists refuse the root).
        if (labels == 0) return false;
        int end = pos;                           // the root label
        // The hash of every suffix, in one pass from the right (see HashName).
        Span<uint> hashes = stackalloc uint[129];
        uint h = Step(Seed, 0);
        hashes[labels] = h;
        int k = end - 1;
        for (int j = labels - 1; j >= 0; j--)
        {
            for (; k >= starts[j]; k--) h = Step(h, Lower(qnameWire[k]));
            hashes[j] = h;
        }

        int best = Find(qnameWire[..(end + 1)], hashes[0], wildcard: false);
        // Wildcards from the longest (closest) to the root; only an earlier policy displaces the best so far.
        for (int j = 1; j <= labels && (best < 0 || _triggers[best].Layer > 0); j++)
        {
            int start = j < labels ? starts[j] : end;
            int found = Find(qnameWire[start..(end + 1)], hashes[j], wildcard: true);
            if (found >= 0 && (best < 0 || _triggers[found].Layer < _triggers[best].Layer)) best = found;
        }
        if (best < 0) return false;
        ref readonly var t = ref _triggers[best];
        hit = new PolicyHit(this, best, t.Layer, t.Action);
        return true;
    }

    private int Find(ReadOnlySpan<byte> name, uint suffixHash, bool wildcard)
    {
        int hash = FinalHash(suffixHash, wildcard);
        int slot = hash & _mask;
        while (true)
        {
            int entry = _table[slot];
            if (entry == 0) return -1;
            ref readonly var t = ref _triggers[entry - 1];
            if (t.Hash == hash && t.Wildcard == wildcard && t.NameLength == name.Length && SameLower(_names.AsSpan(t.Name, t.NameLength), name))
                return entry - 1;
            slot = (slot + 1) & _mask;
        }
    }

    private static bool SameLower(ReadOnlySpan<byte> lower, ReadOnlySpan<byte> any)
    {
        for (int i = 0; i < lower.Length; i++)
            if (lower[i] != Lower(any[i])) return false;
        return true;
    }

    // Label-length octets are at most 63, below 'A', so lowering every octet of a wire name is safe.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static byte Lower(byte b) => b is >= (byte)'A' and <= (byte)'Z' ? (byte)(b | 0x20) : b;

    private const uint Seed = 2166136261;

    /// <summary>FNV-1a over the octets of a name from its last octet to its first: the hash of every suffix falls out of one pass.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Step(uint h, byte b) => (h ^ b) * 16777619;

    private static uint HashName(ReadOnlySpan<byte> lowerWire)
    {
        uint h = Seed;
        for (int i = lowerWire.Length - 1; i >= 0; i--) h = Step(h, lowerWire[i]);
        return h;
    }

    private static int FinalHash(uint h, bool wildcard)
    {
        // murmur3's finaliser: FNV's low bits alone spread poorly over a power-of-two table.
        h ^= wildcard ? 0x9E3779B9u : 0u;
        h ^= h >> 16;
        h *= 0x85EBCA6B;
        h ^= h >> 13;
        h *= 0xC2B2AE35;
        h ^= h >> 16;
        return (int)(h & 0x7FFFFFFF);
    }

    /// <summary>Longest and mean probe sequence over the triggers (table health, for the figures).</summary>
    internal (int Longest, double Mean) ProbeLengths()
    {
        int longest = 0;
        long total = 0;
        for (int i = 0; i < _triggers.Length; i++)
        {
            int slot = _triggers[i].Hash & _mask, probes = 1;
            while (_table[slot] != i + 1) { slot = (slot + 1) & _mask; probes++; }
            longest = Math.Max(longest, probes);
            total += probes;
        }
        return (longest, _triggers.Length == 0 ? 0 : (double)total / _triggers.Length);
    }

    // What the response writer and the hit read.

    internal bool TriggerIsWildcard(int trigger) => _triggers[trigger].Wildcard;
    internal ReadOnlySpan<byte> TriggerName(int trigger) => _names.AsSpan(_triggers[trigger].Name, _triggers[trigger].NameLength);
    internal int RecordCount(int trigger) => _triggers[trigger].RecordCount;
    internal RecordType RecordTypeAt(int trigger, int i) => _records[_triggers[trigger].FirstRecord + i].Type;
    internal uint RecordTtlAt(int trigger, int i) => _records[_triggers[trigger].FirstRecord + i].Ttl;
    internal ReadOnlySpan<byte> RecordDataAt(int trigger, int i)
    {
        ref readonly var r = ref _records[_triggers[trigger].FirstRecord + i];
        return _rdata.AsSpan(r.Offset, r.Length);
    }
    internal ReadOnlySpan<byte> SoaOwner(int layer) => _layers[layer].SoaOwner;
    internal ReadOnlySpan<byte> SoaData(int layer) => _layers[layer].SoaData;
    internal uint SoaTtl(int layer) => _layers[layer].SoaTtl;
}
