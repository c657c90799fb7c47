using System.Runtime.CompilerServices;

namespace Portcullis.Server.Security;

/// <summary>The response classes RRL accounts separately (BIND's rtypes).</summary>
public enum ResponseKind : byte
{
    /// <summary>A non-empty answer (CNAMEs included).</summary>
    Answer,
    /// <summary>NOERROR with no answer: the name exists, the type does not (or an empty non-terminal).</summary>
    NoData,
    /// <summary>NXDOMAIN.</summary>
    NXDomain,
    /// <summary>A referral to a delegated child zone.</summary>
    Referral,
    /// <summary>REFUSED, FORMERR, SERVFAIL, NOTIMP and the other error responses.</summary>
    Error,
}

/// <summary>What the caller does with a response.</summary>
public enum RateDecision : byte
{
    /// <summary>Send it as usual.</summary>
    Send,
    /// <summary>Send nothing.</summary>
    Drop,
    /// <summary>Send an empty TC=1 response instead (or BADCOOKIE when the query had a client
    /// cookie), so a real client retries over TCP, where it is not limited.</summary>
    Slip,
}

/// <summary>
/// Response rate limiting settings, with the meanings of BIND 9's <c>rate-limit</c> options. A
/// rate of 0 means that class is not limited. The per-class rates default to
/// <see cref="ResponsesPerSecond"/> when null.
/// </summary>
public sealed record RrlSettings
{
    /// <summary>The largest rate accepted for any class (BIND's DNS_RRL_MAX_RATE).</summary>
    public const int MaxRate = 1000;

    /// <summary>Non-empty answers per second per (client prefix, name, type, class). 0..1000.</summary>
    public int ResponsesPerSecond { get; init; } = 20;

    /// <summary>NODATA responses per second per (prefix, name, class); null = <see cref="ResponsesPerSecond"/>.</summary>
    public int? NoDataPerSecond { get; init; }

    /// <summary>NXDOMAIN responses per second per (prefix, zone); null = <see cref="ResponsesPerSecond"/>.</summary>
    public int? NxdomainsPerSecond { get; init; }

    /// <summary>Referrals per second per (prefix, delegation point); null = <see cref="ResponsesPerSecond"/>.</summary>
    public int? ReferralsPerSecond { get; init; }

    /// <summary>Error responses per second per prefix; null = <see cref="ResponsesPerSecond"/>.</summary>
    public int? ErrorsPerSecond { get; init; }

    /// <summary>All responses per second per prefix, charged in addition to the class; 0 = no limit.
    /// BIND's ARM advises at least 4 × the other rates.</summary>
    public int AllPerSecond { get; init; }

    /// <summary>Seconds, 1..3600: the debt floor is −Window × rate, so a client that flooded is
    /// limited for up to Window seconds after it stops; an account idle longer is forgotten.</summary>
    public int Window { get; init; } = 15;

    /// <summary>0..10: 0 never slips, 1 slips every limited response, n slips one in n.</summary>
    public int Slip { get; init; } = 2;

    /// <summary>IPv4 clients are grouped by this prefix, 0..32.</summary>
    public int Ipv4PrefixLength { get; init; } = 24;

    /// <summary>IPv6 clients are grouped by this prefix, 0..128.</summary>
    public int Ipv6PrefixLength { get; init; } = 56;

    /// <summary>Accounts kept, rounded up to a power of two; the table never grows.</summary>
    public int TableSize { get; init; } = 65536;

    /// <summary>Account and report as if limiting, but always send.</summary>
    public bool LogOnly { get; init; }

    /// <summary>The effective rate of a class (0 = not limited).</summary>
    public int RateFor(ResponseKind kind) => kind switch
    {
        ResponseKind.Answer => ResponsesPerSecond,
        ResponseKind.NoData => NoDataPerSecond ?? ResponsesPerSecond,
        ResponseKind.NXDomain => NxdomainsPerSecond ?? ResponsesPerSecond,
        ResponseKind.Referral => ReferralsPerSecond ?? ResponsesPerSecond,
        _ => ErrorsPerSecond ?? ResponsesPerSecond,
    };

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first setting out of range.</summary>
    public void Validate()
    {
        CheckRate(ResponsesPerSecond, nameof(ResponsesPerSecond));
        CheckRate(NoDataPerSecond ?? 0, nameof(NoDataPerSecond));
        CheckRate(NxdomainsPerSecond ?? 0, nameof(NxdomainsPerSecond));
        CheckRate(ReferralsPerSecond ?? 0, nameof(ReferralsPerSecond));
        CheckRate(ErrorsPerSecond ?? 0, nameof(ErrorsPerSecond));
        CheckRate(AllPerSecond, nameof(AllPerSecond));
        CheckRange(Window, 1, 3600, nameof(Window));
        CheckRange(Slip, 0, 10, nameof(Slip));
        CheckRange(Ipv4PrefixLength, 0, 32, nameof(Ipv4PrefixLength));
        CheckRange(Ipv6PrefixLength, 0, 128, nameof(Ipv6PrefixLength));
        CheckRange(TableSize, 1, RateTable.MaxSize, nameof(TableSize));
    }

    private static void CheckRate(int value, string name) => CheckRange(value, 0, MaxRate, name);

    private static void CheckRange(int value, int min, int max, string name)
    {
        if (value < min || value > max)
            throw new ArgumentOutOfRangeException(name, value, $"{name} must be in {min}..{max}.");
    }
}

/// <summary>
/// BIND-style response rate limiting (RRL) for UDP responses: one token-bucket account per
/// (client prefix, response class, identity name, type, class), in a fixed table.
/// </summary>
/// <remarks>
/// <para><b>Accounts</b>, as BIND's ARM describes them: "each combination of identical response
/// and client has a conceptual account that earns a specified number of credits every second. A
/// prospective response debits its account by one. Responses are dropped or truncated while the
/// account is negative. … The account cannot become more positive than the per-second limit or
/// more negative than window times the per-second limit." And in BIND's code (lib/dns/rrl.c,
/// digested in shared/reference/security.md §1.1) an account idle for more than <c>window</c>
/// seconds starts afresh with a full second of credit.</para>
/// <para><b>What <c>window</c> means, as we read it.</b> It is not an averaging period: it bounds the
/// debt. A flood drives the balance down to −window × rate, and since credit returns at rate per
/// second, a client that stops flooding is limited for up to <c>window</c> seconds more. So a
/// steady stream above the rate gets one second's worth through (the initial balance), then
/// only slips, for as long as it lasts; a stream at or below the rate is never limited. That is
/// what makes RRL useless to a reflection attacker and harmless to a real resolver, which asks
/// a given question at most a few times per TTL.</para>
/// <para><b>Differences from BIND</b>: credit accrues per millisecond (balances are fixed point,
/// 1/1000 of a response where it fits in 24 bits) instead of per whole second, so a second
/// boundary gives no extra burst; the balance starts at (and is capped to) one second of credit
/// as in BIND. The table is fixed (see <see cref="RateTable"/>) rather than grown between
/// min/max-table-size. As in BIND, NODATA, NXDOMAIN and referral accounts do not include the
/// qtype, ERROR accounts include neither name nor type, and ERROR and ALL responses are never
/// slipped (BIND's ns_client_error: some error responses cannot be slipped), only dropped.</para>
/// <para><b>Exemptions are the caller's</b>: TCP, clients with a valid server cookie, exempt
/// prefixes are simply not checked.</para>
/// <para>Thread-safe without locks and allocation-free per call; see <see cref="RateTable"/> for
/// the races that are tolerated. Counters are exact (Interlocked).</para>
/// </remarks>
public sealed class ResponseRateLimiter
{
    // State word of an account (see RateTable for the key word):
    //   bits  0..31  time of the last debit, low 32 bits of nowMs (ages are taken modulo 2^32)
    //   bits 32..55  balance, signed 24 bits, in units of 1/scale response
    //   bits 56..59  slip counter (0..9)
    //   bit  60      in use (0 = claimed but never debited: starts with full credit)
    //   bit  63      limiting (the last response was dropped or slipped); RateTable keeps these
    private const int BalanceShift = 32;
    private const int SlipShift = 56;
    private const long UsedBit = 1L << 60;
    private const long LimitedBit = long.MinValue;
    private const int MaxBalanceUnits = (1 << 23) - 1;
    private const int CasAttempts = 4;
    private const int AllKind = 5; // the ALL account: per prefix, every class together

    private readonly RateTable _table;
    private readonly ulong _seed;
    private readonly int[] _rates = new int[6];
    private readonly int[] _scales = new int[6];
    private readonly int _windowMs;
    private readonly int _window;
    private readonly int _slip;
    private readonly int _v4Bits;
    private readonly int _v6Bits;
    private readonly bool _logOnly;
    private long _dropped;
    private long _slipped;
    private long _logOnlyWouldLimit;

    /// <exception cref="ArgumentOutOfRangeException">a setting is out of range.</exception>
    public ResponseRateLimiter(RrlSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        settings.Validate();
        Settings = settings;
        _window = settings.Window;
        _windowMs = settings.Window * 1000;
        _slip = settings.Slip;
        _v4Bits = settings.Ipv4PrefixLength;
        _v6Bits = settings.Ipv6PrefixLength;
        _logOnly = settings.LogOnly;
        for (int k = 0; k <= (int)ResponseKind.Error; k++)
            _rates[k] = settings.RateFor((ResponseKind)k);
        _rates[AllKind] = settings.AllPerSecond;
        for (int k = 0; k < _rates.Length; k++)
        {
            // Units per response: 1000 (exact per-millisecond credit) unless the debt floor
            // −(window+1)·rate would not fit in 24 bits; at BIND's maxima (1000/s, 3600 s) it is 2.
            long span = (long)(_window + 1) * Math.Max(1, _rates[k]);
            _scales[k] = (int)Math.Clamp(MaxBalanceUnits / span, 1, 1000);
        }
        _table = new RateTable(settings.TableSize, _windowMs);
        _seed = RateTable.NewSeed();
    }

    /// <summary>The settings this limiter was built with.</summary>
    public RrlSettings Settings { get; }

    /// <summary>Responses dropped (not counted under <see cref="RrlSettings.LogOnly"/>).</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Responses slipped (not counted under <see cref="RrlSettings.LogOnly"/>).</summary>
    public long Slipped => Interlocked.Read(ref _slipped);

    /// <summary>Under <see cref="RrlSettings.LogOnly"/>: responses that would have been dropped or slipped.</summary>
    public long LogOnlyWouldLimit => Interlocked.Read(ref _logOnlyWouldLimit);

    /// <summary>Accounts evicted to make room for new ones.</summary>
    public long TableReplacements => _table.Replacements;

    /// <summary>Entries in the table (TableSize rounded up to a power of two).</summary>
    public int TableEntries => _table.Size;

    /// <summary>
    /// Debits the accounts of one UDP response and says what to do with it.
    /// </summary>
    /// <param name="clientAddress">4 or 16 octets (IPv4-mapped IPv6 counts as IPv4); masked to the prefix length.</param>
    /// <param name="kind">The response class.</param>
    /// <param name="identityName">Uncompressed wire name chosen as BIND does: the qname for answers and
    /// NODATA (<c>*.zone</c> for wildcard answers), the zone apex for NXDOMAIN, the delegation point for
    /// referrals. Compared without ASCII case. Ignored for <see cref="ResponseKind.Error"/>.</param>
    /// <param name="qtype">Part of the account for <see cref="ResponseKind.Answer"/> only.</param>
    /// <param name="qclass">Part of the account except for <see cref="ResponseKind.Error"/>.</param>
    /// <param name="nowMs">A monotonic clock in milliseconds (e.g. Environment.TickCount64).</param>
    /// <param name="newlyLimited">True when this response moved an account from sending to limited
    /// (log one line per episode, not per packet). Also true under LogOnly.</param>
    public RateDecision Check(ReadOnlySpan<byte> clientAddress, ResponseKind kind, ReadOnlySpan<byte> identityName,
        ushort qtype, ushort qclass, long nowMs, out bool newlyLimited)
    {
        if (!RateTable.TryMaskPrefix(clientAddress, _v4Bits, _v6Bits, out ulong hi, out ulong lo, out bool v6))
            ThrowBadAddress(clientAddress.Length);

        ulong prefixHash = RateTable.Mix(RateTable.Mix(_seed, hi), lo ^ (v6 ? 1UL : 0UL));
        int k = (int)kind;
        if ((uint)k > (uint)ResponseKind.Error)
            k = (int)ResponseKind.Error;

        RateDecision decision = RateDecision.Send;
        bool newly = false;
        int rate = _rates[k];
        if (rate > 0)
        {
            ulong fields = (uint)k | ((ulong)qclass << 16);
            if (k == (int)ResponseKind.Error)
            {
                fields = (uint)k; // one ERROR account per prefix: no name, type or class
                identityName = default;
            }
            else if (k == (int)ResponseKind.Answer)
                fields |= (ulong)qtype << 32;
            ulong h = RateTable.Mix(prefixHash, fields | ((ulong)identityName.Length << 48));
            h = RateTable.Finish(RateTable.MixNameLower(h, identityName));
            decision = Debit(h, rate, _scales[k], slips: k != (int)ResponseKind.Error, nowMs, out newly);
        }

        int all = _rates[AllKind];
        if (all > 0)
        {
            ulong h = RateTable.Finish(RateTable.Mix(prefixHash, AllKind));
            if (Debit(h, all, _scales[AllKind], slips: false, nowMs, out bool allNewly) != RateDecision.Send)
                decision = RateDecision.Drop; // as in BIND, the ALL account's drop wins over a slip
            newly |= allNewly;
        }

        newlyLimited = newly;
        if (decision == RateDecision.Send)
            return RateDecision.Send;
        if (_logOnly)
        {
            Interlocked.Increment(ref _logOnlyWouldLimit);
            return RateDecision.Send;
        }
        Interlocked.Increment(ref decision == RateDecision.Drop ? ref _dropped : ref _slipped);
        return decision;
    }

    /// <summary>
    /// BIND's debit_rrl_entry, per millisecond: credit for the time since the last debit (capped
    /// at one second's worth, which also restarts the slip count), debit one response, floor the
    /// debt at −window·rate, and slip one in <c>slip</c> of the limited responses, the first one
    /// first. A compare-and-swap loop makes concurrent debits of one account exact; after a few
    /// lost races we answer from our last computation without storing it (an approximate count,
    /// never a corrupt one: another thread made progress meanwhile).
    /// </summary>
    private RateDecision Debit(ulong hash, int rate, int scale, bool slips, long nowMs, out bool newlyLimited)
    {
        ref long slot = ref _table.Acquire(hash, nowMs);
        uint now = (uint)nowMs;
        long cap = (long)rate * scale;
        long floor = -(long)_window * rate * scale;

        RateDecision decision = RateDecision.Send;
        newlyLimited = false;
        for (int attempt = 0; attempt < CasAttempts; attempt++)
        {
            long old = Volatile.Read(ref slot);
            bool wasLimited = old < 0;
            uint stamp = now;
            long balance;
            int slipCount;
            if ((old & UsedBit) == 0)
            {
                balance = cap; // a new account: "forever" since the last response
                slipCount = 0;
                wasLimited = false;
            }
            else
            {
                balance = (int)((uint)(old >> BalanceShift) << 8) >> 8; // sign-extend 24 bits
                slipCount = (int)(old >> SlipShift) & 0xF;
                // Another identity's state may sit here after a race (RateTable remarks): clamp.
                balance = Math.Clamp(balance, floor, cap);
                if (slipCount >= _slip)
                    slipCount = 0;
                int age = (int)(now - (uint)old);
                if (age > _windowMs || age < -RateTable.ClockSkewMs)
                {
                    // Idle longer than the window (or so long that the 32-bit time wrapped):
                    // forgotten, as in BIND.
                    balance = cap;
                    slipCount = 0;
                    wasLimited = false;
                }
                else if (age > 0)
                {
                    balance += (long)age * rate * scale / 1000;
                    if (balance > cap)
                    {
                        balance = cap;
                        slipCount = 0;
                    }
                }
                else if (age < 0)
                    stamp = (uint)old; // a thread with a slightly later clock debited it: no credit, keep its time
            }

            balance -= scale;
            bool limited;
            if (balance >= 0)
            {
                decision = RateDecision.Send;
                limited = false;
            }
            else
            {
                if (balance < floor)
                    balance = floor;
                decision = RateDecision.Drop;
                if (slips && _slip != 0)
                {
                    if (slipCount++ == 0)
                    {
                        if (slipCount >= _slip)
                            slipCount = 0;
                        decision = RateDecision.Slip;
                    }
                    else if (slipCount >= _slip)
                        slipCount = 0;
                }
                limited = true;
            }

            long next = stamp
                | ((balance & 0xFFFFFF) << BalanceShift)
                | ((long)(uint)slipCount << SlipShift)
                | UsedBit
                | (limited ? LimitedBit : 0);
            if (Interlocked.CompareExchange(ref slot, next, old) == old)
            {
                newlyLimited = limited && !wasLimited;
                return decision;
            }
        }
        return decision;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowBadAddress(int length) =>
        throw new ArgumentException($"A client address is 4 or 16 octets, not {length}.", "clientAddress");
}
