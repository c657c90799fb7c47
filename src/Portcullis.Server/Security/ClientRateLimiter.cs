using System.Runtime.CompilerServices;

namespace Portcullis.Server.Security;

/// <summary>
/// Dynamic per-client blocks, in the manner of dnsdist's <c>setQueryRate(rate, seconds, …, blockingTime)</c>.
/// </summary>
public sealed record ClientLimitSettings
{
    /// <summary>The largest count per window the table can hold: QueriesPerSecond × Window must not exceed it.</summary>
    public const int MaxQueriesPerWindow = 2_000_000;

    /// <summary>Queries per second, averaged over <see cref="Window"/>, above which a prefix is blocked; 0 = off.</summary>
    public int QueriesPerSecond { get; init; }

    /// <summary>Seconds (1..3600) over which the rate is averaged: a prefix is blocked when it sent
    /// more than QueriesPerSecond × Window queries in the last Window seconds.</summary>
    public int Window { get; init; } = 10;

    /// <summary>How long a block lasts, seconds (1..604800).</summary>
    public int BlockSeconds { get; init; } = 60;

    /// <summary>IPv4 clients are grouped by this prefix, 0..32.</summary>
    public int Ipv4PrefixLength { get; init; } = 32;

    /// <summary>IPv6 clients are grouped by this prefix, 0..128.</summary>
    public int Ipv6PrefixLength { get; init; } = 64;

    /// <summary>Prefixes tracked, rounded up to a power of two; the table never grows.</summary>
    public int TableSize { get; init; } = 65536;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first setting out of range.</summary>
    public void Validate()
    {
        CheckRange(QueriesPerSecond, 0, MaxQueriesPerWindow, nameof(QueriesPerSecond));
        CheckRange(Window, 1, 3600, nameof(Window));
        if ((long)QueriesPerSecond * Window > MaxQueriesPerWindow)
            throw new ArgumentOutOfRangeException(nameof(QueriesPerSecond), QueriesPerSecond,
                $"QueriesPerSecond × Window must not exceed {MaxQueriesPerWindow}.");
        CheckRange(BlockSeconds, 1, 604800, nameof(BlockSeconds));
        CheckRange(Ipv4PrefixLength, 0, 32, nameof(Ipv4PrefixLength));
        CheckRange(Ipv6PrefixLength, 0, 128, nameof(Ipv6PrefixLength));
        CheckRange(TableSize, 1, RateTable.MaxSize, nameof(TableSize));
    }

    private static void CheckRange(int value, int min, int max, string name)
    {
        if (value < min || value > max)
            throw new ArgumentOutOfRangeException(name, value, $"{name} must be in {min}..{max}.");
    }
}

/// <summary>
/// Counts queries per client prefix and blocks a prefix for <see cref="ClientLimitSettings.BlockSeconds"/>
/// once it sent more than QueriesPerSecond × Window queries within the last Window seconds (dnsdist's
/// dynamic block rule). When the block expires, counting starts over.
/// </summary>
/// <remarks>
/// <para>The count over the last window is the usual two-bucket estimate: windows are aligned on
/// multiples of Window seconds of the clock, each prefix keeps the count of the current and of
/// the previous window, and the previous one is weighted by the part of it that still lies inside
/// the sliding window (a steady stream of q/s is estimated at exactly q × Window). dnsdist scans
/// a ring buffer once per second instead; this decides on each query, with no scan and no
/// allocation.</para>
/// <para>Unlike RRL this applies to every transport (a forged UDP source can get a prefix blocked,
/// as with dnsdist: keep it for TCP or cookie-verified traffic, or set the rate well above what a
/// real client sends). Lock-free and allocation-free; races are tolerated as described in
/// <see cref="RateTable"/>: concurrent counts of one prefix are exact (compare-and-swap), a race
/// with an eviction may lose a few counts.</para>
/// </remarks>
public sealed class ClientRateLimiter
{
    // State word:
    //   bit 63 set (blocked; RateTable keeps these): bits 0..31 = block start, low 32 bits of nowMs.
    //   bit 63 clear: bits 0..19 window index (nowMs / windowMs, low 20 bits; wraps after ≥ 12 days),
    //                 bits 20..40 previous window's count, bits 41..61 this window's count (21 bits each),
    //                 bit 62 in use (0 = claimed, never counted).
    private const long BlockedBit = long.MinValue;
    private const long UsedBit = 1L << 62;
    private const int PeriodMask = (1 << 20) - 1;
    private const int CountMask = (1 << 21) - 1;
    private const int PrevShift = 20;
    private const int CurShift = 41;
    private const int CasAttempts = 4;

    private readonly RateTable? _table;
    private readonly ulong _seed;
    private readonly long _threshold;
    private readonly long _windowMs;
    private readonly uint _blockMs;
    private readonly int _v4Bits;
    private readonly int _v6Bits;
    private long _blocked;
    private long _blocksStarted;

    /// <exception cref="ArgumentOutOfRangeException">a setting is out of range.</exception>
    public ClientRateLimiter(ClientLimitSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        settings.Validate();
        Settings = settings;
        _threshold = (long)settings.QueriesPerSecond * settings.Window;
        _windowMs = settings.Window * 1000L;
        _blockMs = (uint)settings.BlockSeconds * 1000u;
        _v4Bits = settings.Ipv4PrefixLength;
        _v6Bits = settings.Ipv6PrefixLength;
        _seed = RateTable.NewSeed();
        if (settings.QueriesPerSecond > 0)
            _table = new RateTable(settings.TableSize, (int)_blockMs);
    }

    /// <summary>The settings this limiter was built with.</summary>
    public ClientLimitSettings Settings { get; }

    /// <summary>Queries refused because their prefix was blocked (the one that started a block included).</summary>
    public long Blocked => Interlocked.Read(ref _blocked);

    /// <summary>Blocks started.</summary>
    public long BlocksStarted => Interlocked.Read(ref _blocksStarted);

    /// <summary>Counts one query; false when its prefix is blocked (answer nothing, or REFUSED).</summary>
    /// <param name="clientAddress">4 or 16 octets (IPv4-mapped IPv6 counts as IPv4).</param>
    /// <param name="nowMs">A monotonic, non-negative clock in milliseconds.</param>
    /// <param name="newlyBlocked">True for the query that started a block (log one line per block).</param>
    public bool Admit(ReadOnlySpan<byte> clientAddress, long nowMs, out bool newlyBlocked)
    {
        newlyBlocked = false;
        if (_table is null)
            return true;
        if (!RateTable.TryMaskPrefix(clientAddress, _v4Bits, _v6Bits, out ulong hi, out ulong lo, out bool v6))
            ThrowBadAddress(clientAddress.Length);

        ulong hash = RateTable.Finish(RateTable.Mix(RateTable.Mix(_seed, hi), lo ^ (v6 ? 1UL : 0UL)));
        ref long slot = ref _table.Acquire(hash, nowMs);
        uint now = (uint)nowMs;
        long period = nowMs / _windowMs;
        long intoPeriod = nowMs - period * _windowMs;

        for (int attempt = 0; ; attempt++)
        {
            long old = Volatile.Read(ref slot);
            long prev = 0, cur = 0;
            if (old < 0)
            {
                // Blocked since (uint)old. A start up to ClockSkewMs in our future is a thread with a
                // later clock; unsigned arithmetic makes a wrapped (≥ 49 days old) start expired.
                uint sinceStart = now - (uint)old + RateTable.ClockSkewMs;
                if (sinceStart < _blockMs + RateTable.ClockSkewMs)
                {
                    Interlocked.Increment(ref _blocked);
                    return false;
                }
                // Expired: counting starts over (prev = cur = 0).
            }
            else if ((old & UsedBit) != 0)
            {
                int stored = (int)(old & PeriodMask);
                int distance = ((int)period - stored) & PeriodMask;
                if (distance <= 1)
                {
                    long c = (old >> CurShift) & CountMask;
                    if (distance == 0)
                    {
                        cur = c;
                        prev = (old >> PrevShift) & CountMask;
                    }
                    else
                        prev = c;
                }
            }

            cur++;
            // Queries in the last Window seconds ≈ prev × (unexpired part of it) + cur > rate × Window?
            // Multiplied through by windowMs to stay in integers (≤ 2^21 × 3.6·10^6 < 2^63).
            bool block = prev * (_windowMs - intoPeriod) + cur * _windowMs > _threshold * _windowMs;
            long next = block
                ? BlockedBit | now
                : UsedBit | (period & PeriodMask) | (prev << PrevShift) | (Math.Min(cur, CountMask) << CurShift);
            if (Interlocked.CompareExchange(ref slot, next, old) == old)
            {
                if (!block)
                    return true;
                Interlocked.Increment(ref _blocksStarted);
                Interlocked.Increment(ref _blocked);
                newlyBlocked = true;
                return false;
            }
            if (attempt == CasAttempts - 1)
                return !block; // lost every race: answer from our estimate without storing it
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowBadAddress(int length) =>
        throw new ArgumentException($"A client address is 4 or 16 octets, not {length}.", "clientAddress");
}
