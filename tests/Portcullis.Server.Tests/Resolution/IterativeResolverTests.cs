using System.Net;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Server.Resolution;

namespace Portcullis.Server.Tests.Resolution;

/// <summary>End-to-end resolutions over <see cref="ResolverHierarchy"/> (real servers, real sockets, port 53 on 127.54.0.x).</summary>
public sealed class IterativeResolverTests(ResolverHierarchy tree) : IClassFixture<ResolverHierarchy>
{
    private static Task<ResolutionResult> Resolve(IterativeResolver r, string name, RecordType type = RecordType.A) =>
        r.ResolveAsync(new ResolverQuestion(DnsName.Parse(name), type, RecordClass.IN), CancellationToken.None);

    private static string[] Addresses(ResolutionResult r) =>
        r.Answer.Where(x => x.Type == RecordType.A).Select(x => new IPAddress(x.Data).ToString()).ToArray();

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Resolves_a_plain_answer_from_the_root_down(bool minimise)
    {
        using var r = new IterativeResolver(tree.Options(o => o with { QnameMinimisation = minimise }));
        var result = await Resolve(r, "www.example.test.");
        Assert.Equal(Rcode.NoError, result.Rcode);
        Assert.Equal(["192.0.2.1"], Addresses(result));
        // The owner has the case asked, not the 0x20 pattern sent upstream.
        Assert.Equal(DnsName.Parse("www.example.test.").Wire.ToArray(), result.Answer[0].Owner.Wire.ToArray());
        long sent = r.Upstream.QueriesSent;
        var again = await Resolve(r, "WWW.Example.TEST.");
        Assert.Equal(["192.0.2.1"], Addresses(again));
        Assert.Equal(sent, r.Upstream.QueriesSent);
    }

    [Fact]
    public async Task Minimisation_walks_through_empty_non_terminals()
    {
        using var r = new IterativeResolver(tree.Options());
        var result = await Resolve(r, "deep.ent.path.example.test.");
        Assert.Equal(["192.0.2.3"], Addresses(result));
    }

    [Fact]
    public async Task Follows_a_cname_into_another_zone()
    {
        using var r = new IterativeResolver(tree.Options());
        var result = await Resolve(r, "alias.example.test.");
        Assert.Equal(Rcode.NoError, result.Rcode);
        Assert.Equal(RecordType.CNAME, result.Answer[0].Type);
        Assert.Equal(["192.0.2.4"], Addresses(result));
        Assert.Equal(DnsName.Parse("www.other."), result.Answer[^1].Owner);
    }

    [Fact]
    public async Task Resolves_out_of_bailiwick_ns_names_separately()
    {
        using var r = new IterativeResolver(tree.Options());
        var result = await Resolve(r, "host.oob.test.");
        Assert.Equal(Rcode.NoError, result.Rcode);
        Assert.Equal(["192.0.2.5"], Addresses(result));
    }

    [Fact]
    public async Task Nxdomain_and_nodata_are_cached_and_the_second_question_sends_nothing()
    {
        using var r = new IterativeResolver(tree.Options());
        var nx = await Resolve(r, "missing.example.test.");
        Assert.Equal(Rcode.NXDomain, nx.Rcode);
        var soa = Assert.Single(nx.Authority);
        Assert.Equal(RecordType.SOA, soa.Type);
        Assert.Equal(60u, soa.Ttl); // min(SOA TTL 3600, MINIMUM 60), RFC 2308 §5
        var nodata = await Resolve(r, "www.example.test.", RecordType.AAAA);
        Assert.Equal(Rcode.NoError, nodata.Rcode);
        Assert.Empty(nodata.Answer);
        Assert.Single(nodata.Authority);

        long sent = r.Upstream.QueriesSent;
        Assert.Equal(Rcode.NXDomain, (await Resolve(r, "missing.example.test.")).Rcode);
        Assert.Equal(Rcode.NoError, (await Resolve(r, "www.example.test.", RecordType.AAAA)).Rcode);
        Assert.Equal(sent, r.Upstream.QueriesSent);

        // And from the receive-thread path: the cache answers both, SOA in the authority section.
        var buffer = new byte[512];
        Assert.True(CacheAnswer(r, "missing.example.test.", RecordType.A, buffer, out var rcode, out var msg));
        Assert.Equal(Rcode.NXDomain, rcode);
        Assert.Equal(RecordType.SOA, Assert.Single(msg.Authority).Type);
    }

    internal static bool CacheAnswer(IRecursion r, string name, RecordType type, byte[] buffer, out Rcode rcode, out DnsMessage message)
    {
        var w = new Portcullis.Protocol.Wire.DnsMessageWriter(buffer);
        var qname = DnsName.Parse(name);
        w.TryWriteQuestion(qname.Wire, type, RecordClass.IN);
        bool hit = r.TryAnswerFromCache(qname.Wire, type, RecordClass.IN, false, false, ref w, out var answer);
        rcode = answer.Rcode;
        w.Header.IsResponse = true;
        w.Header.Rcode = (byte)rcode;
        message = DnsMessage.Parse(buffer.AsSpan(0, w.Finish()));
        return hit;
    }

    [Fact]
    public async Task A_dead_server_ends_in_servfail()
    {
        using var r = new IterativeResolver(tree.Options());
        var result = await Resolve(r, "www.dead.test.");
        Assert.Equal(Rcode.ServFail, result.Rcode);
        Assert.NotNull(result.Failure);
    }

    [Fact]
    public async Task A_silent_server_ends_in_servfail_within_the_resolution_timeout()
    {
        using var r = new IterativeResolver(tree.Options(o => o with { ResolutionTimeout = TimeSpan.FromSeconds(3), ServeStale = false }));
        var result = await Resolve(r, "www.silent.test.");
        Assert.Equal(Rcode.ServFail, result.Rcode);
        // The server was marked with timeouts (its RTO grew from the initial value).
        Assert.True(r.Upstream.State(IPAddress.Parse(ResolverHierarchy.Silent)).RtoMs > ServerState.InitialRtoMs);
    }

    [Fact]
    public async Task Out_of_bailiwick_records_from_a_malicious_server_are_neither_cached_nor_served()
    {
        using var r = new IterativeResolver(tree.Options());
        var evil = await Resolve(r, "www.evil.test.");
        Assert.Equal(["192.0.2.66"], Addresses(evil));
        Assert.DoesNotContain(evil.Answer, x => x.Owner == DnsName.Parse("www.example.test."));
        long now = r.Cache.NowMs;
        Assert.False(r.Cache.TryGet(DnsName.Parse("www.example.test.").Wire, RecordType.A, RecordClass.IN, now, true, out _));
        Assert.False(r.Cache.TryGet(DnsName.Parse("example.test.").Wire, RecordType.NS, RecordClass.IN, now, true, out _));
        Assert.False(r.Cache.TryGet(DnsName.Parse("ns1.example.test.").Wire, RecordType.A, RecordClass.IN, now, true, out _));
        var buffer = new byte[512];
        Assert.False(CacheAnswer(r, "www.example.test.", RecordType.A, buffer, out _, out _));
        // The real data still resolves from the real servers.
        Assert.Equal(["192.0.2.1"], Addresses(await Resolve(r, "www.example.test.")));
    }

    [Fact]
    public async Task Concurrent_identical_questions_share_one_resolution()
    {
        using var r = new IterativeResolver(tree.Options());
        var tasks = Enumerable.Range(0, 20).Select(_ => Resolve(r, "www.other.")).ToArray();
        var results = await Task.WhenAll(tasks);
        Assert.All(results, x => Assert.Equal(["192.0.2.4"], Addresses(x)));
        Assert.Equal(20, r.Resolutions + r.Coalesced);
        Assert.True(r.Coalesced > 0 || r.Upstream.QueriesSent <= 4);
    }

    [Fact]
    public async Task Forwarding_sends_rd_queries_to_the_forwarder_and_caches_the_answer()
    {
        // The "forwarder" is the example.test. server itself: it answers authoritatively.
        using var r = new IterativeResolver(tree.Options(o => o with
        {
            Forwarders = new Dictionary<DnsName, IReadOnlyList<IPEndPoint>>
            {
                [DnsName.Parse("example.test.")] = [new IPEndPoint(IPAddress.Parse(ResolverHierarchy.Sld), 53)],
            },
        }));
        var result = await Resolve(r, "www.example.test.");
        Assert.Equal(["192.0.2.1"], Addresses(result));
        Assert.Equal(1, r.Upstream.QueriesSent);
        var buffer = new byte[512];
        Assert.True(CacheAnswer(r, "www.example.test.", RecordType.A, buffer, out _, out var msg));
        Assert.Single(msg.Answers);
    }

    [Fact]
    public async Task Serves_stale_data_with_ede_3_when_every_server_fails()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.UtcNow);
        using var r = new IterativeResolver(tree.Options(o => o with
        {
            // The forwarder points at the silent server for the second question.
            Forwarders = new Dictionary<DnsName, IReadOnlyList<IPEndPoint>>
            {
                [DnsName.Parse("stale.test.")] = [new IPEndPoint(IPAddress.Parse(ResolverHierarchy.Silent), 53)],
            },
            ResolutionTimeout = TimeSpan.FromSeconds(2),
        }), time);
        r.Cache.AddRRset([new ResourceRecord(DnsName.Parse("www.stale.test."), RecordType.A, RecordClass.IN, 60, [192, 0, 2, 99])], TrustRank.AuthAnswer);
        time.Advance(TimeSpan.FromMinutes(10));
        var result = await Resolve(r, "www.stale.test.");
        Assert.Equal(Rcode.NoError, result.Rcode);
        Assert.Equal((ushort)3, result.Ede);
        Assert.Equal(30u, Assert.Single(result.Answer).Ttl);
    }

    [Fact]
    public async Task A_hit_in_the_last_tenth_of_the_ttl_is_prefetched()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.UtcNow);
        using var r = new IterativeResolver(tree.Options(), time);
        Assert.Equal(["192.0.2.1"], Addresses(await Resolve(r, "www.example.test.")));
        var buffer = new byte[512];
        // Early in the TTL a hit queues nothing.
        Assert.True(CacheAnswer(r, "www.example.test.", RecordType.A, buffer, out _, out _));
        Assert.Equal(0, await r.RunPrefetchesAsync(CancellationToken.None));
        time.Advance(TimeSpan.FromSeconds(3300));
        Assert.True(CacheAnswer(r, "www.example.test.", RecordType.A, buffer, out _, out var before));
        Assert.Equal(300u, before.Answers[0].Ttl);
        long sent = r.Upstream.QueriesSent;
        Assert.Equal(1, await r.RunPrefetchesAsync(CancellationToken.None));
        Assert.True(r.Upstream.QueriesSent > sent);
        Assert.True(CacheAnswer(r, "www.example.test.", RecordType.A, buffer, out _, out var after));
        Assert.Equal(3600u, after.Answers[0].Ttl);
    }

    [Fact]
    public async Task Glueless_ns_names_are_resolved_at_most_the_configured_number_per_delegation()
    {
        using var r = new IterativeResolver(tree.Options());
        var asked = new List<string>();
        r.Upstream.QueryObserver = (_, _, _, name, _) => { lock (asked) asked.Add(name.ToString().ToLowerInvariant()); };
        var result = await Resolve(r, "www.nxns.test.");
        Assert.Equal(Rcode.ServFail, result.Rcode);
        var targets = asked.Where(n => n.EndsWith(".nowhere.other.", StringComparison.Ordinal)).Distinct().ToList();
        Assert.Equal(3, targets.Count); // ResolverOptions.MaxNsNamesResolvedPerDelegation
        // One A query each (NXDOMAIN: no AAAA after it) and nothing sent to the delegation itself.
        Assert.Equal(3, asked.Count(n => n.EndsWith(".nowhere.other.", StringComparison.Ordinal)));
        Assert.DoesNotContain("www.nxns.test.", asked);
    }

    [Fact]
    public async Task Minimisation_sends_only_one_label_more_than_each_zone_cut()
    {
        using var r = new IterativeResolver(tree.Options());
        var asked = new List<(IPAddress Server, string Name, RecordType Type)>();
        r.Upstream.QueryObserver = (s, _, _, name, type) => { lock (asked) asked.Add((s.Address, name.ToString().ToLowerInvariant(), type)); };
        Assert.Equal(["192.0.2.3"], Addresses(await Resolve(r, "deep.ent.path.example.test.")));
        var root = asked.Where(a => a.Server.Equals(IPAddress.Parse(ResolverHierarchy.Root))).ToList();
        Assert.All(root, a => Assert.True(a.Name is "." or "test.", a.Name));
        var tld = asked.Where(a => a.Server.Equals(IPAddress.Parse(ResolverHierarchy.Tld))).ToList();
        Assert.All(tld, a => Assert.Equal("example.test.", a.Name));
        Assert.Contains(("deep.ent.path.example.test.", RecordType.A), asked.Select(a => (a.Name, a.Type)));
    }
}
