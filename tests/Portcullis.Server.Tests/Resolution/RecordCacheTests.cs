using Microsoft.Extensions.Time.Testing;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.Wire;
using Portcullis.Server.Resolution;

namespace Portcullis.Server.Tests.Resolution;

public sealed class RecordCacheTests
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));

    private static ResourceRecord A(string name, uint ttl, byte last) => new(DnsName.Parse(name), RecordType.A, RecordClass.IN, ttl, [192, 0, 2, last]);

    private static ResourceRecord Soa(string zone, uint ttl, uint minimum)
    {
        var mname = DnsName.Parse("ns." + zone).Wire.ToArray();
        var rname = DnsName.Parse("host." + zone).Wire.ToArray();
        var data = new byte[mname.Length + rname.Length + 20];
        mname.CopyTo(data, 0);
        rname.CopyTo(data, mname.Length);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(data.AsSpan(data.Length - 4), minimum);
        return new ResourceRecord(DnsName.Parse(zone), RecordType.SOA, RecordClass.IN, ttl, data);
    }

    private RecordCache NewCache(ResolverOptions? o = null) => new(o ?? new ResolverOptions(), _time);

    private bool Get(RecordCache c, string name, RecordType type, out CacheEntry e, bool stale = false) =>
        c.TryGet(DnsName.Parse(name).Wire, type, RecordClass.IN, c.NowMs, stale, out e);

    [Fact]
    public void Lower_ranked_data_never_replaces_higher_ranked_data_still_valid()
    {
        var c = NewCache();
        Assert.True(c.AddRRset([A("www.example.", 300, 1)], TrustRank.Additional));
        Assert.True(c.AddRRset([A("www.example.", 300, 2)], TrustRank.AuthAnswer));
        Assert.False(c.AddRRset([A("www.example.", 300, 3)], TrustRank.Additional));
        Assert.False(c.AddRRset([A("WWW.EXAMPLE.", 300, 4)], TrustRank.NonAuthAnswer));
        Assert.True(Get(c, "www.example.", RecordType.A, out var e));
        Assert.Equal(TrustRank.AuthAnswer, e.Rank);
        foreach (var rdata in e.Rdatas) Assert.Equal(2, rdata[3]);
        // Once the better data has expired, anything may replace it.
        _time.Advance(TimeSpan.FromSeconds(301));
        Assert.True(c.AddRRset([A("www.example.", 300, 5)], TrustRank.Additional));
        Assert.Equal(ValidationState.Unchecked, e.Validation);
    }

    [Fact]
    public void Ttl_floor_and_ceiling_apply_to_positive_data_and_the_negative_ceiling_to_negative()
    {
        var c = NewCache(new ResolverOptions { MinTtl = TimeSpan.FromSeconds(60), MaxTtl = TimeSpan.FromHours(1), MaxNegativeTtl = TimeSpan.FromSeconds(100) });
        c.AddRRset([A("low.example.", 5, 1)], TrustRank.AuthAnswer);
        c.AddRRset([A("high.example.", 86400, 1), A("high.example.", 7200, 2)], TrustRank.AuthAnswer);
        Assert.True(Get(c, "low.example.", RecordType.A, out var low));
        Assert.Equal(60u, low.Ttl);
        Assert.True(Get(c, "high.example.", RecordType.A, out var high));
        Assert.Equal(3600u, high.Ttl);
        Assert.Equal(2, high.Count);
        // RFC 2308 §5: min(SOA TTL, MINIMUM), then the ceiling.
        c.AddNegative(DnsName.Parse("a.example."), RecordType.A, RecordClass.IN, true, Soa("example.", 3600, 50), TrustRank.AuthAuthority);
        c.AddNegative(DnsName.Parse("b.example."), RecordType.A, RecordClass.IN, true, Soa("example.", 3600, 900), TrustRank.AuthAuthority);
        Assert.True(c.TryGetNxDomain(DnsName.Parse("a.example.").Wire, RecordClass.IN, c.NowMs, false, out var a));
        Assert.Equal(50u, a.Ttl);
        Assert.True(c.TryGetNxDomain(DnsName.Parse("b.example.").Wire, RecordClass.IN, c.NowMs, false, out var b));
        Assert.Equal(100u, b.Ttl);
    }

    [Fact]
    public void Expired_entries_are_kept_for_serve_stale_until_max_stale()
    {
        var c = NewCache(new ResolverOptions { MaxStale = TimeSpan.FromHours(1) });
        c.AddRRset([A("www.example.", 60, 1)], TrustRank.AuthAnswer);
        _time.Advance(TimeSpan.FromSeconds(61));
        Assert.False(Get(c, "www.example.", RecordType.A, out _));
        Assert.True(Get(c, "www.example.", RecordType.A, out _, stale: true));
        _time.Advance(TimeSpan.FromHours(1));
        Assert.False(Get(c, "www.example.", RecordType.A, out _, stale: true));
    }

    [Fact]
    public void Negative_entries_answer_nodata_and_nxdomain_with_the_soa_and_decremented_ttls()
    {
        var c = NewCache();
        c.AddNegative(DnsName.Parse("nx.example."), RecordType.A, RecordClass.IN, true, Soa("example.", 3600, 300), TrustRank.AuthAuthority);
        c.AddNegative(DnsName.Parse("www.example."), RecordType.AAAA, RecordClass.IN, false, Soa("example.", 3600, 300), TrustRank.AuthAuthority);
        _time.Advance(TimeSpan.FromSeconds(100));
        var (hit, rcode, msg) = Answer(c, "NX.example.", RecordType.MX);
        Assert.True(hit);
        Assert.Equal(Rcode.NXDomain, rcode);
        Assert.Equal(200u, Assert.Single(msg.Authority).Ttl);
        (hit, rcode, msg) = Answer(c, "www.example.", RecordType.AAAA);
        Assert.True(hit);
        Assert.Equal(Rcode.NoError, rcode);
        Assert.Empty(msg.Answers);
        Assert.Equal(RecordType.SOA, Assert.Single(msg.Authority).Type);
        (hit, _, _) = Answer(c, "www.example.", RecordType.A);
        Assert.False(hit);
    }

    [Fact]
    public void Cname_chains_are_followed_in_the_cache_and_glue_is_never_served()
    {
        var c = NewCache();
        c.AddRRset([new ResourceRecord(DnsName.Parse("alias.example."), RecordType.CNAME, RecordClass.IN, 300, DnsName.Parse("www.other.").Wire.ToArray())], TrustRank.AuthAnswer);
        c.AddRRset([A("www.other.", 600, 7)], TrustRank.AuthAnswer);
        c.AddRRset([A("ns.glue.", 600, 8)], TrustRank.Additional);
        _time.Advance(TimeSpan.FromSeconds(10));
        var (hit, rcode, msg) = Answer(c, "alias.example.", RecordType.A);
        Assert.True(hit);
        Assert.Equal(Rcode.NoError, rcode);
        Assert.Equal(2, msg.Answers.Count);
        Assert.Equal(290u, msg.Answers[0].Ttl);
        Assert.Equal(590u, msg.Answers[1].Ttl);
        Assert.False(Answer(c, "ns.glue.", RecordType.A).Hit);
        // A chain that leaves the cache is a miss, and the writer is left as it was.
        c.AddRRset([new ResourceRecord(DnsName.Parse("half.example."), RecordType.CNAME, RecordClass.IN, 300, DnsName.Parse("gone.other.").Wire.ToArray())], TrustRank.AuthAnswer);
        var (miss, _, empty) = Answer(c, "half.example.", RecordType.A);
        Assert.False(miss);
        Assert.Empty(empty.Answers);
        // A loop ends at the bound, as a miss.
        c.AddRRset([new ResourceRecord(DnsName.Parse("l1.example."), RecordType.CNAME, RecordClass.IN, 300, DnsName.Parse("l2.example.").Wire.ToArray())], TrustRank.AuthAnswer);
        c.AddRRset([new ResourceRecord(DnsName.Parse("l2.example."), RecordType.CNAME, RecordClass.IN, 300, DnsName.Parse("l1.example.").Wire.ToArray())], TrustRank.AuthAnswer);
        Assert.False(Answer(c, "l1.example.", RecordType.A).Hit);
    }

    [Fact]
    public void A_cache_hit_allocates_nothing()
    {
        var c = NewCache();
        c.AddRRset([A("www.example.", 300, 1), A("www.example.", 300, 2)], TrustRank.AuthAnswer);
        var buffer = new byte[512];
        var qname = DnsName.Parse("www.example.").Wire.ToArray();
        Hit(c, qname, buffer);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++) Hit(c, qname, buffer);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    /// <summary>
    /// The validator's additions to the hit path: for DO=1 the RRSIGs go with the RRset and a negative
    /// answer carries its proof; a bogus entry is SERVFAIL with its EDE unless CD; all without allocating.
    /// </summary>
    [Fact]
    public void Validated_hits_write_signatures_and_proofs_and_answer_bogus_entries_servfail_without_allocating()
    {
        var c = NewCache();
        var sig = new ResourceRecord(DnsName.Parse("www.example."), RecordType.RRSIG, RecordClass.IN, 300, [0, 1, 13, 2, .. new byte[40]]);
        c.AddRRset([A("www.example.", 300, 1)], TrustRank.AuthAnswer, ValidationState.Secure, [sig]);
        var nsec = new ResourceRecord(DnsName.Parse("a.example."), RecordType.NSEC, RecordClass.IN, 300, [.. DnsName.Parse("z.example.").Wire, 0, 1, 0x40]);
        c.AddNegative(DnsName.Parse("nx.example."), RecordType.A, RecordClass.IN, true, Soa("example.", 3600, 300), TrustRank.AuthAuthority,
            ValidationState.Secure, [nsec]);
        c.AddRRset([A("bad.example.", 300, 6)], TrustRank.AuthAnswer, ValidationState.Bogus, null, (int)ExtendedDnsErrorCode.SignatureExpired);
        var buffer = new byte[1232];
        byte[] www = DnsName.Parse("www.example.").Wire.ToArray(), nx = DnsName.Parse("nx.example.").Wire.ToArray(), bad = DnsName.Parse("bad.example.").Wire.ToArray();
        CacheAnswer Ask(byte[] name, bool dnssecOk, bool cd, out int length)
        {
            var w = new DnsMessageWriter(buffer);
            w.TryWriteQuestion(name, RecordType.A, RecordClass.IN);
            Assert.True(CacheAnswerer.TryAnswer(c, 12, name, RecordType.A, RecordClass.IN, dnssecOk, cd, ref w, out var answer));
            w.Header.IsResponse = true;
            length = w.Finish();
            return answer;
        }
        var secure = Ask(www, dnssecOk: true, cd: false, out int n);
        Assert.True(secure.Secure);
        var m = DnsMessage.Parse(buffer.AsSpan(0, n));
        Assert.Equal([RecordType.A, RecordType.RRSIG], m.Answers.Select(r => r.Type));
        Ask(www, dnssecOk: false, cd: false, out n);
        Assert.Equal([RecordType.A], DnsMessage.Parse(buffer.AsSpan(0, n)).Answers.Select(r => r.Type));
        var negative = Ask(nx, dnssecOk: true, cd: false, out n);
        Assert.Equal((Rcode.NXDomain, true), (negative.Rcode, negative.Secure));
        Assert.Equal([RecordType.SOA, RecordType.NSEC], DnsMessage.Parse(buffer.AsSpan(0, n)).Authority.Select(r => r.Type));
        var bogus = Ask(bad, dnssecOk: true, cd: false, out n);
        Assert.Equal((Rcode.ServFail, (int)ExtendedDnsErrorCode.SignatureExpired, false), (bogus.Rcode, bogus.Ede, bogus.Secure));
        Assert.Empty(DnsMessage.Parse(buffer.AsSpan(0, n)).Answers);
        var checkingDisabled = Ask(bad, dnssecOk: true, cd: true, out n);
        Assert.Equal((Rcode.NoError, false), (checkingDisabled.Rcode, checkingDisabled.Secure));
        Assert.Single(DnsMessage.Parse(buffer.AsSpan(0, n)).Answers);

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++)
        {
            Ask(www, true, false, out _);
            Ask(nx, true, false, out _);
            Ask(bad, true, false, out _);
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    private static void Hit(RecordCache c, byte[] qname, byte[] buffer)
    {
        var w = new DnsMessageWriter(buffer);
        w.TryWriteQuestion(qname, RecordType.A, RecordClass.IN);
        if (!CacheAnswerer.TryAnswer(c, 12, qname, RecordType.A, RecordClass.IN, false, false, ref w, out _)) throw new InvalidOperationException("miss");
    }

    [Fact]
    public void The_byte_bound_holds_and_recently_hit_entries_survive_eviction()
    {
        var c = NewCache(new ResolverOptions { CacheBytes = 64 * 1024 });
        c.AddRRset([A("hot.example.", 3600, 1)], TrustRank.AuthAnswer);
        for (int i = 0; i < 5000; i++)
        {
            c.AddRRset([A($"h{i}.example.", 3600, 1)], TrustRank.AuthAnswer);
            Assert.True(Get(c, "hot.example.", RecordType.A, out _));
        }
        Assert.True(c.ApproximateBytes <= 64 * 1024);
        Assert.True(c.Count < 5000);
        Assert.True(c.Evictions > 0);
        Assert.Equal(c.RecountBytes(), c.ApproximateBytes);
    }

    [Fact]
    public void Many_threads_reading_and_writing_keep_the_cache_consistent()
    {
        var c = NewCache(new ResolverOptions { CacheBytes = 256 * 1024 });
        int threads = 8, misses = 0;
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
        {
            var buffer = new byte[512];
            for (int i = 0; i < 5000; i++)
            {
                string name = $"n{(i * 7 + t) % 3000}.example.";
                c.AddRRset([A(name, 300, (byte)t)], (TrustRank)(1 + (i + t) % 4));
                if (!Answer(c, name, RecordType.A).Hit) Interlocked.Increment(ref misses);
            }
        });
        Assert.True(c.ApproximateBytes <= 256 * 1024);
        Assert.Equal(c.RecountBytes(), c.ApproximateBytes);
        Assert.True(c.Count > 0);
    }

    internal static (bool Hit, Rcode Rcode, DnsMessage Message) Answer(RecordCache c, string name, RecordType type)
    {
        var buffer = new byte[1232];
        var w = new DnsMessageWriter(buffer);
        var qname = DnsName.Parse(name);
        w.TryWriteQuestion(qname.Wire, type, RecordClass.IN);
        bool hit = CacheAnswerer.TryAnswer(c, 12, qname.Wire, type, RecordClass.IN, false, false, ref w, out var answer);
        var rcode = answer.Rcode;
        w.Header.IsResponse = true;
        return (hit, rcode, DnsMessage.Parse(buffer.AsSpan(0, w.Finish())));
    }
}
