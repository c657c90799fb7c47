using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;

namespace Portcullis.Server.Security;

/// <summary>
/// A fixed-size, set-associative table of rate-accounting entries, shared by
/// <see cref="ResponseRateLimiter"/> and <see cref="ClientRateLimiter"/>. It is allocated once and
/// never grows: a flood of spoofed sources only replaces entries (the oldest of a set of
/// <see cref="Ways"/>), so memory stays bounded whatever the attacker sends.
/// </summary>
/// <remarks>
/// <para>Each entry is two 64-bit words:</para>
/// <list type="bullet">
/// <item><c>Key</c> = tag (high 32 bits of the identity hash, never 0) ‖ last use (low 32 bits of
/// nowMs). 0 means empty. The set is chosen by the low bits of the hash, so tag and set index
/// together use ~46 bits of it for a 65 536-entry table.</item>
/// <item><c>State</c>: owned by the limiter, updated with a compare-and-swap loop so that
/// concurrent updates to one identity are not lost. Convention: a negative state (bit 63 set)
/// means "currently limited/blocked", which the replacement policy keeps in preference, as BIND
/// keeps entries that are still limiting.</item>
/// </list>
/// <para>Thread safety without locks. Every access is a single atomic 64-bit read, write or
/// compare-and-swap on one word (Volatile/Interlocked, atomic even on 32-bit runtimes), indexes
/// are masked into the array, and the array is never replaced. So the worst a race can do is
/// pair a key with a state written for another identity (for instance a thread still updating
/// the previous owner of an entry that another thread has just claimed), or claim two entries
/// of a set for one identity. Both are benign: the limiters clamp every decoded state into its
/// valid range, a duplicate ages out, and the only effect is an approximate count for a moment.
/// Nothing can leave the table unusable.</para>
/// <para>Like BIND, two identities whose hashes collide share a bucket. The hash is seeded per
/// instance with random bits, so collisions cannot be computed in advance. It is a fast
/// non-cryptographic mix, not a MAC: it keeps collisions rare and unpredictable, but it is not a
/// proof against an attacker who can observe the server's behaviour at length.</para>
/// </remarks>
internal sealed class RateTable
{
    /// <summary>Entries per set: a new identity may replace the oldest of these.</summary>
    public const int Ways = 4;

    /// <summary>The largest table: 2^28 entries (4 GiB), which keeps set bits clear of the tag.</summary>
    public const int MaxSize = 1 << 28;

    /// <summary>
    /// Times are kept as the low 32 bits of nowMs. Threads read the clock at slightly different
    /// moments, so a time up to this far in the future is "now"; one further in the future can
    /// only be a wrapped time from ≥ 24.8 days ago, and counts as old.
    /// </summary>
    public const int ClockSkewMs = 1000;

    private struct Entry
    {
        public long Key;
        public long State;
    }

    private readonly Entry[] _entries;
    private readonly int _setMask;
    private readonly int _keepMs;
    private long _replacements;

    /// <param name="size">Entries; rounded up to a power of two, at least <see cref="Ways"/>.</param>
    /// <param name="keepMs">How long after its last use a limiting entry is still preferred over
    /// others when a victim is chosen; after that its limiting has lapsed anyway (the RRL window,
    /// the block time), and keeping it would only pin stale entries in the set.</param>
    public RateTable(int size, int keepMs)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(keepMs);
        _keepMs = keepMs;
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(size, MaxSize);
        int entries = Math.Max(Ways, (int)BitOperations.RoundUpToPowerOf2((uint)size));
        _entries = new Entry[entries];
        _setMask = entries / Ways - 1;
    }

    /// <summary>Entries allocated (the rounded size).</summary>
    public int Size => _entries.Length;

    /// <summary>Entries whose previous identity was evicted to make room for a new one.</summary>
    public long Replacements => Interlocked.Read(ref _replacements);

    /// <summary>
    /// The state word of the identity <paramref name="hash"/>, claiming an entry for it if it has
    /// none: an empty one, else the least recently used one that is not limiting (negative
    /// state), else the least recently used one. A claimed entry's state is 0 ("never used").
    /// Marks the entry used at <paramref name="nowMs"/>.
    /// </summary>
    public ref long Acquire(ulong hash, long nowMs)
    {
        uint tag = (uint)(hash >> 32);
        if (tag == 0)
            tag = 1; // keep 0 for "empty"
        uint now = (uint)nowMs;
        long wanted = (long)(((ulong)tag << 32) | now);
        int start = (int)((uint)hash & (uint)_setMask) * Ways;

        // Two passes at most: if another thread claims our victim between our look and our CAS,
        // the second pass probably finds the identity (it was the same one) or another victim.
        // After that we accept any entry of the set: sharing for one call is benign.
        for (int pass = 0; pass < 2; pass++)
        {
            int victim = -1;
            long victimKey = 0;
            int victimScore = int.MinValue;
            for (int i = start; i < start + Ways; i++)
            {
                ref Entry e = ref _entries[i];
                long key = Volatile.Read(ref e.Key);
                if ((uint)((ulong)key >> 32) == tag)
                {
                    // Refresh the last-use time; a failed CAS means someone else refreshed or
                    // replaced it, and either is fine.
                    if ((uint)key != now)
                        Interlocked.CompareExchange(ref e.Key, wanted, key);
                    return ref e.State;
                }
                int score;
                if (key == 0)
                    score = int.MaxValue;
                else
                {
                    int age = (int)(now - (uint)key);
                    if (age < 0)
                    {
                        // Slightly negative: a thread with a later clock touched it (newest).
                        // Very negative: the 32-bit time wrapped; it is ≥ 24.8 days old.
                        age = age < -ClockSkewMs ? int.MaxValue : 0;
                    }
                    // Limiting entries lose only to other limiting entries (score offset).
                    score = age <= _keepMs && Volatile.Read(ref e.State) < 0
                        ? (age >> 1) - (int.MaxValue >> 1) - 1
                        : (age >> 1);
                }
                if (score > victimScore)
                {
                    victimScore = score;
                    victim = i;
                    victimKey = key;
                }
            }

            ref Entry v = ref _entries[victim];
            if (Interlocked.CompareExchange(ref v.Key, wanted, victimKey) == victimKey)
            {
                // A thread still holding the previous identity may write its state after this;
                // that is the benign pairing described in the class remarks.
                Volatile.Write(ref v.State, 0);
                if (victimKey != 0)
                    Interlocked.Increment(ref _replacements);
                return ref v.State;
            }
        }
        return ref _entries[start + (int)(now & (Ways - 1))].State;
    }

    // ---- Hashing and prefixes, shared by the limiters ----

    private const ulong K1 = 0x9E3779B97F4A7C15UL;
    private const ulong K2 = 0xC2B2AE3D27D4EB4FUL;

    /// <summary>A random per-instance seed (process-unpredictable, so collisions are too).</summary>
    public static ulong NewSeed()
    {
        Span<byte> b = stackalloc byte[8];
        RandomNumberGenerator.Fill(b);
        return BinaryPrimitives.ReadUInt64LittleEndian(b) | 1;
    }

    /// <summary>One round: absorb 64 bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Mix(ulong h, ulong v) => BitOperations.RotateLeft(h ^ (v * K1), 31) * K2;

    /// <summary>The final avalanche (the murmur3 64-bit finaliser), so low bits pick sets well.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Finish(ulong h)
    {
        h ^= h >> 33;
        h *= 0xFF51AFD7ED558CCDUL;
        h ^= h >> 33;
        h *= 0xC4CEB9FE1A85EC53UL;
        h ^= h >> 33;
        return h;
    }

    /// <summary>
    /// Absorbs a wire-format name with ASCII letters lowered (RFC 4343: names compare without
    /// ASCII case), 8 octets at a time. Length octets (≤ 63) and octets ≥ 0x80 are left alone.
    /// </summary>
    public static ulong MixNameLower(ulong h, ReadOnlySpan<byte> name)
    {
        int i = 0;
        for (; i + 8 <= name.Length; i += 8)
            h = Mix(h, LowerAscii8(BinaryPrimitives.ReadUInt64LittleEndian(name.Slice(i))));
        if (i < name.Length)
        {
            ulong tail = 0;
            for (int s = 0; i < name.Length; i++, s += 8)
                tail |= (ulong)name[i] << s;
            h = Mix(h, LowerAscii8(tail));
        }
        return h;
    }

    /// <summary>Lowers the ASCII capitals among 8 packed octets without a branch per octet.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong LowerAscii8(ulong x)
    {
        const ulong Ones = 0x0101010101010101UL;
        const ulong High = 0x8080808080808080UL;
        ulong low7 = x & ~High;                   // adding below cannot carry into the next octet
        ulong atLeastA = low7 + Ones * (0x80 - 'A'); // high bit set where octet ≥ 'A'
        ulong aboveZ = low7 + Ones * (0x80 - 'Z' - 1); // high bit set where octet > 'Z'
        ulong upper = atLeastA & ~aboveZ & ~x & High;  // and the octet itself < 0x80
        return x | (upper >> 2);                  // 0x80 >> 2 = 0x20: 'A' → 'a'
    }

    /// <summary>
    /// Masks a client address to its prefix. <paramref name="address"/> is 4 (IPv4) or 16 (IPv6)
    /// octets; an IPv4-mapped IPv6 address (::ffff:a.b.c.d, what a dual-stack socket reports) is
    /// treated as the IPv4 address, so one client is one identity whichever socket it reached.
    /// Returns false for any other length.
    /// </summary>
    public static bool TryMaskPrefix(ReadOnlySpan<byte> address, int ipv4Bits, int ipv6Bits,
        out ulong hi, out ulong lo, out bool ipv6)
    {
        if (address.Length == 16 && BinaryPrimitives.ReadUInt64BigEndian(address) == 0
            && BinaryPrimitives.ReadUInt32BigEndian(address.Slice(8)) == 0x0000FFFF)
            address = address.Slice(12);

        if (address.Length == 4)
        {
            ulong v4 = BinaryPrimitives.ReadUInt32BigEndian(address);
            hi = ipv4Bits == 0 ? 0 : v4 & (0xFFFFFFFFUL << (32 - ipv4Bits));
            lo = 0;
            ipv6 = false;
            return true;
        }
        if (address.Length == 16)
        {
            ulong a = BinaryPrimitives.ReadUInt64BigEndian(address);
            ulong b = BinaryPrimitives.ReadUInt64BigEndian(address.Slice(8));
            hi = ipv6Bits >= 64 ? a : ipv6Bits == 0 ? 0 : a & (ulong.MaxValue << (64 - ipv6Bits));
            lo = ipv6Bits >= 128 ? b : ipv6Bits <= 64 ? 0 : b & (ulong.MaxValue << (128 - ipv6Bits));
            ipv6 = true;
            return true;
        }
        hi = lo = 0;
        ipv6 = false;
        return false;
    }
}
