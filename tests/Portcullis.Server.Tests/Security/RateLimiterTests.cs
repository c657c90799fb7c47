using System.Buffers.Binary;
using System.Net;
using Portcullis.Protocol.Names;
using Portcullis.Server.Security;

namespace Portcullis.Server.Tests.Security;

/// <summary>
/// Response rate limiting (BIND's algorithm, with BIND's system-test numbers as the oracle where
/// they apply) and dnsdist-style dynamic client blocks. Time is passed in explicitly.
/// </summary>
public sealed class RateLimiterTests
{
    private const ushort A = 1, Txt = 16, Aaaa = 28, Spf = 99, In = 1;

    private static byte[] Ip(string text) => IPAddress.Parse(text).GetAddressBytes();
    private static byte[] Name(string text) => DnsName.Parse(text).Wire.ToArray();

    private static readonly byte[] Client = Ip("192.0.2.10");
    private static readonly byte[] Www = Name("www.example.test.");

    private sealed record Tally(int Send, int Drop, int Slip, int Newly)
    {
        public int Total => Send + Drop + Slip;
    }

    /// <summary>Runs <paramref name="count"/> identical checks, one every <paramref name="stepMs"/>.</summary>
    private static Tally Run(ResponseRateLimiter rrl, int count, long startMs, double stepMs,
        byte[]? client = null, ResponseKind kind = ResponseKind.Answer, byte[]? name = null, ushort qtype = A)
    {
        int send = 0, drop = 0, slip = 0, newly = 0;
        for (int i = 0; i < count; i++)
        {
            var d = rrl.Check(client ?? Client, kind, name ?? Www, qtype, In, startMs + (long)(i * stepMs), out bool n);
            if (n) newly++;
            switch (d)
            {
                case RateDecision.Send: send++; break;
                case RateDecision.Drop: drop++; break;
                default: slip++; break;
            }
        }
        return new Tally(send, drop, slip, newly);
    }

    private static RateDecision Once(ResponseRateLimiter rrl, long nowMs, byte[]? client = null,
        ResponseKind kind = ResponseKind.Answer, byte[]? name = null, ushort qtype = A) =>
        rrl.Check(client ?? Client, kind, name ?? Www, qtype, In, nowMs, out _);

    // ---------------------------------------------------------------- BIND's semantics

    [Fact]
    public void Steady_flood_above_the_rate_gets_only_the_first_seconds_credit()
    {
        // 100 q/s for 10 s against 5/s. BIND's ARM: the account "cannot become more positive than
        // the per-second limit or more negative than window times the per-second limit", and
        // responses are dropped while it is negative. A flood holds it at the floor, so after the
        // first second's 5 nothing more is answered (the slips are what a real client relies on).
        var rrl = new ResponseRateLimiter(new RrlSettings { ResponsesPerSecond = 5, Slip = 0 });
        var t = Run(rrl, 1000, 0, 10);
        Assert.InRange(t.Send, 5, 6);
        Assert.Equal(1000 - t.Send, t.Drop);
        Assert.Equal(0, t.Slip);
        Assert.Equal(t.Drop, rrl.Dropped);
    }

    [Fact]
    public void A_stream_at_or_below_the_rate_is_never_limited()
    {
        var rrl = new ResponseRateLimiter(new RrlSettings { ResponsesPerSecond = 5 });
        Assert.Equal(50, Run(rrl, 50, 0, 200).Send);           // exactly 5/s for 10 s
        Assert.Equal(40, Run(rrl, 40, 20_000, 250).Send);      // 4/s
        // A burst of 5 each whole second (the balance refills to 5, never more).
        for (int s = 40; s < 50; s++)
            Assert.Equal(5, Run(rrl, 5, s * 1000L, 0).Send);
        Assert.Equal(0, rrl.Dropped + rrl.Slipped);
    }

    [Fact]
    public void Window_is_the_recovery_time_after_a_flood()
    {
        // The flood leaves the account at −window × rate = −75; credit returns at 5/s.
        foreach (var (quietMs, expected) in new[] { (14_000L, RateDecision.Drop), (15_500L, RateDecision.Send) })
        {
            var rrl = new ResponseRateLimiter(new RrlSettings { ResponsesPerSecond = 5, Slip = 0, Window = 15 });
            Run(rrl, 1000, 0, 10); // ends at 9 990 ms
            Assert.Equal(expected, Once(rrl, 9_990 + quietMs));
        }
        var shortWindow = new ResponseRateLimiter(new RrlSettings { ResponsesPerSecond = 5, Slip = 0, Window = 1 });
        Run(shortWindow, 1000, 0, 10);
        Assert.Equal(RateDecision.Send, Once(shortWindow, 9_990 + 1_500));
    }

    [Fact]
    public void Identical_queries_match_BINDs_system_test()
    {
        // bin/tests/system/rrl: rps 2, slip 3; 3 × a1.tld2, one second later 10 × a1.tld2
        // → 3 answered, 4 truncated, 6 dropped.
        var rrl = new ResponseRateLimiter(new RrlSettings { ResponsesPerSecond = 2, Slip = 3 });
        var first = Run(rrl, 3, 0, 0);
        var second = Run(rrl, 10, 1000, 0);
        Assert.Equal(3, first.Send + second.Send);
        Assert.Equal(4, first.Slip + second.Slip);
        Assert.Equal(6, first.Drop + second.Drop);
        Assert.Equal(4, rrl.Slipped);
        Assert.Equal(6, rrl.Dropped);
    }

    [Fact]
    public void Nxdomains_for_different_names_share_the_zones_account()
    {
        // BIND's test: 10 distinct NXDOMAIN names in one zone → 2 answered, 3 TC, 5 dropped. The
        // caller passes the zone apex as the identity for NXDOMAIN.
        var rrl = new ResponseRateLimiter(new RrlSettings { ResponsesPerSecond = 2, Slip = 3 });
        var zone = Name("tld2.");
        var t = Run(rrl, 10, 0, 0, kind: ResponseKind.NXDomain, name: zone);
        Assert.Equal(new Tally(2, 5, 3, 1), t);
        // The same zone apex in another case is the same account.
        Assert.NotEqual(RateDecision.Send, Once(rrl, 0, kind: ResponseKind.NXDomain, name: Name("TLD2.")));
        // NXDOMAIN from another zone is another account.
        Assert.Equal(RateDecision.Send, Once(rrl, 0, kind: ResponseKind.NXDomain, name: Name("tld3.")));
    }

    [Fact]
    public void Nodata_ignores_the_type_and_errors_are_never_slipped()
    {
        var rrl = new ResponseRateLimiter(new RrlSettings { ResponsesPerSecond = 2, Slip = 3 });
        var a8 = Name("a8.tld2.");
        // 2 AAAA + 2 TXT + 2 SPF, NODATA on one name: one account → 2 answered, 2 TC, 2 dropped.
        int send = 0, slip = 0, drop = 0;
        foreach (var type in new[] { Aaaa, Aaaa, Txt, Txt, Spf, Spf })
        {
            var d = Once(rrl, 0, kind: ResponseKind.NoData, name: a8, qtype: type);
            if (d == RateDecision.Send) send++; else if (d == RateDecision.Slip) slip++; else drop++;
        }
        Assert.Equal((2, 2, 2), (send, slip, drop));

        // 10 SERVFAIL → 2 answered, 8 dropped, no TC; one account per prefix, whatever the name.
        var errors = new ResponseRateLimiter(new RrlSettings { ResponsesPerSecond = 2, Slip = 3 });
        int errSend = 0, errDrop = 0;
        for (int i = 0; i < 10; i++)
        {
            var d = errors.Check(Client, ResponseKind.Error, Name($"a{i}.tld4."), (ushort)(i + 1), In, 0, out _);
            Assert.NotEqual(RateDecision.Slip, d);
            if (d == RateDecision.Send) errSend++; else errDrop++;
        }
        Assert.Equal((2, 8), (errSend, errDrop));
    }

    [Fact]
    public void Slip_2_slips_half_slip_0_never_slip_1_always()
    {
        foreach (var (slip, expectedSlips) in new[] { (2, 495 / 2 + 1), (0, 0), (1, 495) })
        {
            var rrl = new ResponseRateLimiter(new RrlSettings { ResponsesPerSecond = 5, Slip = slip });
            var t = Run(rrl, 500, 0, 1); // 500 in half a second: 5 answered, 495 limited
            Assert.Equal(5, t.Send);
            Assert.Equal(expectedSlips, t.Slip);
            Assert.Equal(495 - expectedSlips, t.Drop);
        }
    }

    [Fact]
    public void Slips_alternate_with_drops_for_one_account()
    {
        var rrl = new ResponseRateLimiter(new RrlSettings { ResponsesPerSecond = 1, Slip = 2 });
        var seen = new List<RateDecision>();
        for (int i = 0; i < 7; i++)
            seen.Add(Once(rrl, 0));
        Assert.Equal(
            [RateDecision.Send, RateDecision.Slip, RateDecision.Drop, RateDecision.Slip, RateDecision.Drop, RateDecision.Slip, RateDecision.Drop],
            seen);
    }

    [Fact]
    public void Log_only_always_sends_but_accounts_and_reports()
    {
        var settings = new RrlSettings { ResponsesPerSecond = 5, Slip = 2 };
        var real = new ResponseRateLimiter(settings);
        var logOnly = new ResponseRateLimiter(settings with { LogOnly = true });
        var r = Run(real, 300, 0, 10);
        var l = Run(logOnly, 300, 0, 10);
        Assert.Equal(300, l.Send);
        Assert.Equal(r.Drop + r.Slip, logOnly.LogOnlyWouldLimit);
        Assert.Equal(0, logOnly.Dropped + logOnly.Slipped);
        Assert.Equal(r.Newly, l.Newly);
        Assert.Equal(1, l.Newly);
    }

    [Fact]
    public void A_rate_of_zero_leaves_that_class_unlimited()
    {
        var rrl = new ResponseRateLimiter(new RrlSettings { ResponsesPerSecond = 2, NxdomainsPerSecond = 0 });
        Assert.Equal(100, Run(rrl, 100, 0, 0, kind: ResponseKind.NXDomain, name: Name("tld2.")).Send);
        Assert.Equal(2, Run(rrl, 100, 0, 0).Send);
        var off = new ResponseRateLimiter(new RrlSettings { ResponsesPerSecond = 0 });
        Assert.Equal(100, Run(off, 100, 0, 0, kind: ResponseKind.Error).Send);
    }

    // ---------------------------------------------------------------- accounts

    [Fact]
    public void Names_types_and_classes_are_separate_accounts_case_is_not()
    {
        var rrl = new ResponseRateLimiter(new RrlSettings { ResponsesPerSecond = 3, Slip = 0 });
        Assert.Equal(3, Run(rrl, 10, 0, 0).Send);
        Assert.Equal(0, Run(rrl, 10, 0, 0, name: Name("WWW.Example.TEST.")).Send); // same name, other case
        Assert.Equal(3, Run(rrl, 10, 0, 0, name: Name("mail.example.test.")).Send);
        Assert.Equal(3, Run(rrl, 10, 0, 0, qtype: Aaaa).Send);
        Assert.Equal(3, Run(rrl, 10, 0, 0, kind: ResponseKind.NoData).Send);
        Assert.Equal(RateDecision.Send, rrl.Check(Client, ResponseKind.Answer, Www, A, 3 /* CH */, 0, out _));
        // Names differing only in an octet of the last, partial 8-octet chunk.
        Assert.Equal(3, Run(rrl, 10, 0, 0, name: Name("www.example.tesu.")).Send);
    }

    [Fact]
    public void Ipv4_clients_share_a_slash_24()
    {
        var rrl = new ResponseRateLimiter(new RrlSettings { ResponsesPerSecond = 4, Slip = 0 });
        Assert.Equal(4, Run(rrl, 10, 0, 0, client: Ip("198.51.100.1")).Send);
        Assert.Equal(0, Run(rrl, 10, 0, 0, client: Ip("198.51.100.254")).Send);
        Assert.Equal(0, Run(rrl, 10, 0, 0, client: Ip("::ffff:198.51.100.7")).Send); // IPv4-mapped
        Assert.Equal(4, Run(rrl, 10, 0, 0, client: Ip("198.51.101.1")).Send);
        Assert.Equal(4, Run(rrl, 10, 0, 0, client: Ip("199.51.100.1")).Send);

        var per32 = new ResponseRateLimiter(new RrlSettings { ResponsesPerSecond = 4, Ipv4PrefixLength = 32 });
        Assert.Equal(4, Run(per32, 10, 0, 0, client: Ip("198.51.100.1")).Send);
        Assert.Equal(4, Run(per32, 10, 0, 0, client: Ip("198.51.100.2")).Send);
    }

    [Fact]
    public void Ipv6_clients_share_a_slash_56()
    {
        var rrl = new ResponseRateLimiter(new RrlSettings { ResponsesPerSecond = 4, Slip = 0 });
        Assert.Equal(4, Run(rrl, 10, 0, 0, client: Ip("2001:db8:0:1::1")).Send);
        Assert.Equal(0, Run(rrl, 10, 0, 0, client: Ip("2001:db8:0:ff:ffff::2")).Send); // same /56
        Assert.Equal(4, Run(rrl, 10, 0, 0, client: Ip("2001:db8:0:100::1")).Send);    // next /56
        Assert.Equal(4, Run(rrl, 10, 0, 0, client: Ip("2001:db9:0:1::1")).Send);
        // An IPv4 address whose 4 octets begin the IPv6 address is still another family.
        Assert.Equal(4, Run(rrl, 10, 0, 0, client: Ip("32.1.13.184")).Send);
    }

    [Fact]
    public void A_second_client_at_the_same_time_is_unaffected()
    {
        var rrl = new ResponseRateLimiter(new RrlSettings { ResponsesPerSecond = 5, Slip = 2 });
        var victim = Ip("203.0.113.9");
        int victimSent = 0;
        for (int i = 0; i < 2000; i++)
        {
            long now = i * 5; // the flood: 200/s for 10 s
            Once(rrl, now);
            if (i % 50 == 0 && Once(rrl, now, client: victim) == RateDecision.Send) // 4/s
                victimSent++;
        }
        Assert.Equal(40, victimSent);
    }

    [Fact]
    public void Newly_limited_fires_once_per_episode()
    {
        var rrl = new ResponseRateLimiter(new RrlSettings { ResponsesPerSecond = 2, Slip = 0, Window = 15 });
        var first = Run(rrl, 10, 0, 0);
        Assert.Equal(1, first.Newly);                  // the third response, not the next seven
        Assert.Equal(0, Run(rrl, 10, 500, 0).Newly);   // still the same episode

        // Balance −17 after those 20 (above the floor of −30), +2/s: positive again 9 s later.
        Assert.NotEqual(RateDecision.Send, Once(rrl, 8_000));
        Assert.Equal(RateDecision.Send, Once(rrl, 10_000));
        var again = Run(rrl, 10, 10_000, 0);
        Assert.Equal(1, again.Newly);

        // An account idle for longer than the window is forgotten: a new episode too.
        Assert.Equal(1, Run(rrl, 10, 60_000, 0).Newly);
    }

    [Fact]
    public void All_per_second_limits_a_prefix_across_names_and_never_slips()
    {
        // BIND's test: all-per-second 50, 60 distinct names → 50 answered, 10 dropped, 0 TC.
        var rrl = new ResponseRateLimiter(new RrlSettings { ResponsesPerSecond = 2, AllPerSecond = 50, Slip = 3 });
        int send = 0, drop = 0, newly = 0;
        for (int i = 0; i < 60; i++)
        {
            var d = rrl.Check(Client, ResponseKind.Answer, Name($"all{i}.a9.tld2."), A, In, 0, out bool n);
            Assert.NotEqual(RateDecision.Slip, d);
            if (d == RateDecision.Send) send++; else drop++;
            if (n) newly++;
        }
        Assert.Equal((50, 10, 1), (send, drop, newly));
        // Another prefix has its own ALL account.
        Assert.Equal(RateDecision.Send, Once(rrl, 0, client: Ip("192.0.3.1"), name: Name("all0.a9.tld2.")));
    }

    // ---------------------------------------------------------------- the table

    [Fact]
    public void A_million_spoofed_prefixes_churn_the_table_without_allocating()
    {
        var rrl = new ResponseRateLimiter(new RrlSettings { ResponsesPerSecond = 5, Slip = 2 });
        var legit = Ip("203.0.113.9");
        var spoofed = new byte[4];
        var names = new[] { Www, Name("mail.example.test."), Name("tld2.") };

        void Flood(int from, int to, ref int legitSent, ref int legitAsked)
        {
            for (int i = from; i < to; i++)
            {
                long now = i / 100; // 100 000 q/s
                spoofed[0] = (byte)(i >> 16); // a different /24 for each query
                spoofed[1] = (byte)(i >> 8);
                spoofed[2] = (byte)i;
                spoofed[3] = (byte)(i * 7);
                rrl.Check(spoofed, i % 5 == 0 ? ResponseKind.NXDomain : ResponseKind.Answer, names[i % 3], A, In, now, out _);
                if (i % 20_000 == 0) // the real client: 5/s, at its limit
                {
                    legitAsked++;
                    if (rrl.Check(legit, ResponseKind.Answer, Www, A, In, now, out _) == RateDecision.Send)
                        legitSent++;
                }
            }
        }

        int sent = 0, asked = 0;
        Flood(0, 20_000, ref sent, ref asked); // warm up (JIT)
        long before = GC.GetAllocatedBytesForCurrentThread();
        Flood(20_000, 1_020_000, ref sent, ref asked);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.InRange(allocated, 0, 1024);
        Assert.True(rrl.TableReplacements > 900_000, $"replacements {rrl.TableReplacements}");
        Assert.True(sent >= asked * 9 / 10, $"legitimate client got {sent} of {asked}");

        // And afterwards, a steady 5/s from the real client still gets through.
        int after = 0;
        for (int i = 0; i < 50; i++)
            if (rrl.Check(legit, ResponseKind.Answer, Www, A, In, 20_000 + i * 200L, out _) == RateDecision.Send)
                after++;
        Assert.True(after >= 48, $"after the flood {after} of 50");
    }

    [Fact]
    public void Limited_accounts_survive_a_spoofed_flood_of_new_entries()
    {
        // A small table; the reflection target's account is in debt. New spoofed identities must
        // not evict it (which would hand the attacker a fresh second of credit).
        var rrl = new ResponseRateLimiter(new RrlSettings { ResponsesPerSecond = 5, Slip = 0, TableSize = 64 });
        var target = Ip("203.0.113.9");
        Run(rrl, 200, 0, 5, client: target); // limited
        var spoofed = new byte[4];
        for (int i = 0; i < 10_000; i++)
        {
            spoofed[0] = 10; spoofed[1] = (byte)(i >> 8); spoofed[2] = (byte)i;
            Once(rrl, 1_000 + i / 10, client: spoofed);
            if (i % 1000 == 999)
                Assert.Equal(RateDecision.Drop, Once(rrl, 1_000 + i / 10, client: target));
        }
        Assert.True(rrl.TableReplacements > 9_000);
    }

    [Fact]
    public void Concurrent_checks_are_safe_and_counts_plausible()
    {
        var rrl = new ResponseRateLimiter(new RrlSettings { ResponsesPerSecond = 10, Slip = 2, TableSize = 256 });
        var clients = Enumerable.Range(0, 64).Select(i => Ip($"10.{i}.0.1")).ToArray();
        var hot = Ip("198.51.100.1");
        long clock = 0, hotSent = 0, send = 0, drop = 0, slip = 0;
        const int N = 400_000;
        Parallel.For(0, N, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
        {
            long now = Interlocked.Increment(ref clock) / 40; // 40 000 checks/s → 10 s in all
            bool isHot = i % 4 == 0;
            var d = rrl.Check(isHot ? hot : clients[i % 64], (ResponseKind)(i % 5), isHot ? Www : Name2(i), A, In, now, out _);
            if (d == RateDecision.Send) { Interlocked.Increment(ref send); if (isHot && i % 5 == 0) Interlocked.Increment(ref hotSent); }
            else if (d == RateDecision.Drop) Interlocked.Increment(ref drop);
            else Interlocked.Increment(ref slip);
        });
        Assert.Equal(N, send + drop + slip);
        Assert.Equal(drop, rrl.Dropped);
        Assert.Equal(slip, rrl.Slipped);
        // The hot answer account: 10 in the first second, then a flood at the debt floor. The table
        // is lock-free and tolerates benign races (two threads may both spend the last credit), so
        // under load a few more slip through than the single-threaded tests' exact 10 — but of the
        // 20,000 hot answers asked for, only a handful.
        Assert.InRange(hotSent, 10, 40);

        // The table is still fully usable: a fresh identity gets exactly its rate.
        Assert.Equal(10, Run(rrl, 30, 20_000, 0, client: Ip("203.0.113.1")).Send);
    }

    private static readonly byte[][] SomeNames = Enumerable.Range(0, 16).Select(i => Name($"n{i}.example.test.")).ToArray();
    private static byte[] Name2(int i) => SomeNames[i % 16];

    [Fact]
    public void Settings_are_checked_and_defaulted_as_in_BIND()
    {
        var s = new RrlSettings();
        Assert.Equal((20, 15, 2, 24, 56, 0, false), (s.ResponsesPerSecond, s.Window, s.Slip, s.Ipv4PrefixLength, s.Ipv6PrefixLength, s.AllPerSecond, s.LogOnly));
        Assert.Equal(20, s.RateFor(ResponseKind.NXDomain));
        Assert.Equal(7, (s with { ErrorsPerSecond = 7 }).RateFor(ResponseKind.Error));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ResponseRateLimiter(s with { Window = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ResponseRateLimiter(s with { Window = 3601 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ResponseRateLimiter(s with { Slip = 11 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ResponseRateLimiter(s with { ResponsesPerSecond = 1001 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ResponseRateLimiter(s with { Ipv6PrefixLength = 129 }));
        Assert.Equal(65536, new ResponseRateLimiter(s with { TableSize = 40_000 }).TableEntries);
        Assert.Throws<ArgumentException>(() => new ResponseRateLimiter(s).Check([1, 2, 3], ResponseKind.Answer, Www, A, In, 0, out _));
    }

    [Fact]
    public void Extreme_rate_and_window_still_account_correctly()
    {
        // 1000/s with a 3600 s window: the balance uses coarser fixed point but the same rules.
        var rrl = new ResponseRateLimiter(new RrlSettings { ResponsesPerSecond = 1000, Window = 3600, Slip = 0 });
        Assert.Equal(1000, Run(rrl, 5000, 0, 0).Send);
        Assert.Equal(1000, Run(rrl, 1000, 3_601_000, 1).Send); // forgotten after the window: fresh
    }

    [Fact]
    public void Ascii_lowering_of_packed_octets_touches_only_capitals()
    {
        for (int b = 0; b < 256; b++)
        {
            ulong packed = 0x0101010101010101UL * (ulong)b;
            byte expected = b is >= 'A' and <= 'Z' ? (byte)(b + 32) : (byte)b;
            Assert.Equal(0x0101010101010101UL * expected, RateTable.LowerAscii8(packed));
        }
        Assert.Equal(BinaryPrimitives.ReadUInt64LittleEndian("azaz@[`{"u8), RateTable.LowerAscii8(BinaryPrimitives.ReadUInt64LittleEndian("AZaz@[`{"u8)));
    }

    // ---------------------------------------------------------------- dynamic client blocks

    private static (int Admitted, int Refused, int Newly, long FirstRefusedMs) Stream(ClientRateLimiter lim, byte[] client,
        long startMs, long endMs, double stepMs)
    {
        int admitted = 0, refused = 0, newly = 0;
        long first = -1;
        for (int i = 0; ; i++)
        {
            long now = startMs + (long)(i * stepMs);
            if (now >= endMs)
                break;
            if (lim.Admit(client, now, out bool n))
                admitted++;
            else
            {
                refused++;
                if (first < 0) first = now;
            }
            if (n) newly++;
        }
        return (admitted, refused, newly, first);
    }

    [Fact]
    public void Client_is_blocked_when_the_window_average_exceeds_the_rate_then_unblocked()
    {
        var lim = new ClientRateLimiter(new ClientLimitSettings { QueriesPerSecond = 10, Window = 10, BlockSeconds = 60 });
        // 20 q/s: the 101st query within 10 s (t = 5 s) exceeds 10/s averaged over the window.
        var s = Stream(lim, Client, 0, 65_000, 50);
        Assert.Equal(5_000, s.FirstRefusedMs);
        Assert.Equal(100, s.Admitted);
        Assert.Equal(1, s.Newly);
        Assert.Equal(1, lim.BlocksStarted);
        Assert.Equal(s.Refused, lim.Blocked);

        // The block ends 60 s after it began, and counting starts over.
        Assert.False(lim.Admit(Client, 64_999, out _));
        Assert.True(lim.Admit(Client, 65_000, out bool newly));
        Assert.False(newly);
        var again = Stream(lim, Client, 65_050, 80_000, 50);
        Assert.Equal(1, again.Newly);
        Assert.Equal(2, lim.BlocksStarted);
        Assert.InRange(again.FirstRefusedMs, 69_000, 71_000);
    }

    [Fact]
    public void Client_below_the_rate_is_never_blocked_and_others_are_unaffected()
    {
        var lim = new ClientRateLimiter(new ClientLimitSettings { QueriesPerSecond = 10, Window = 10 });
        Assert.Equal(0, Stream(lim, Client, 0, 100_000, 1000.0 / 9).Refused); // 9/s for 100 s

        var other = Ip("192.0.2.11"); // same /24, but the default prefix is /32
        for (int i = 0; i < 101; i++)
            lim.Admit(other, 100_000, out _);
        Assert.False(lim.Admit(other, 100_001, out _));
        Assert.True(lim.Admit(Client, 100_001, out _));

        var v6 = new ClientRateLimiter(new ClientLimitSettings { QueriesPerSecond = 1, Window = 10 });
        for (int i = 0; i < 10; i++)
            Assert.True(v6.Admit(Ip("2001:db8:1:2::" + (i + 1)), 0, out _)); // one /64
        Assert.False(v6.Admit(Ip("2001:db8:1:2::ffff"), 0, out bool n6));
        Assert.True(n6);
        Assert.True(v6.Admit(Ip("2001:db8:1:3::1"), 0, out _));
    }

    [Fact]
    public void A_burst_above_the_window_budget_is_blocked_at_the_first_query_over()
    {
        var lim = new ClientRateLimiter(new ClientLimitSettings { QueriesPerSecond = 10, Window = 10, BlockSeconds = 60 });
        int newly = 0;
        for (int i = 1; i <= 100; i++)
            Assert.True(lim.Admit(Client, 1234, out _));
        for (int i = 0; i < 50; i++)
        {
            Assert.False(lim.Admit(Client, 1234 + i * 100, out bool n));
            if (n) newly++;
        }
        Assert.Equal(1, newly);
        Assert.Equal(50, lim.Blocked);
    }

    [Fact]
    public void Client_limiter_off_admits_everything_and_checks_settings()
    {
        var off = new ClientRateLimiter(new ClientLimitSettings());
        for (int i = 0; i < 10_000; i++)
            Assert.True(off.Admit(Client, 0, out _));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ClientRateLimiter(new ClientLimitSettings { Window = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ClientRateLimiter(new ClientLimitSettings { QueriesPerSecond = 1_000_000, Window = 10 }));
    }

    [Fact]
    public void Client_limiter_is_safe_concurrently_and_does_not_allocate()
    {
        var lim = new ClientRateLimiter(new ClientLimitSettings { QueriesPerSecond = 100, Window = 10, BlockSeconds = 30, TableSize = 128 });
        long clock = 0, admitted = 0, refused = 0;
        Parallel.For(0, 200_000, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
        {
            long now = Interlocked.Increment(ref clock) / 10; // 20 s
            var addr = i % 2 == 0 ? Client : new byte[] { 10, 0, (byte)(i >> 8), (byte)i };
            if (lim.Admit(addr, now, out _)) Interlocked.Increment(ref admitted); else Interlocked.Increment(ref refused);
        });
        Assert.Equal(200_000, admitted + refused);
        Assert.Equal(refused, lim.Blocked);
        Assert.InRange(lim.BlocksStarted, 1, 20);

        var spoofed = new byte[4];
        lim.Admit(spoofed, 0, out _);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 100_000; i++)
        {
            spoofed[1] = (byte)(i >> 8); spoofed[2] = (byte)i;
            lim.Admit(spoofed, 30_000 + i, out _);
        }
        Assert.InRange(GC.GetAllocatedBytesForCurrentThread() - before, 0, 1024);
    }
}
