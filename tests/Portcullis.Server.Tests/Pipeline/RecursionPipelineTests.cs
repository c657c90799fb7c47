using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.Wire;
using Portcullis.Server.Configuration;
using Portcullis.Server.Hosting;
using Portcullis.Server.Resolution;
using Portcullis.Server.Security;
using Portcullis.Server.Tests.Support;
using Portcullis.Testing;

namespace Portcullis.Server.Tests.Pipeline;

/// <summary>
/// A small real <see cref="IRecursion"/> for these tests (the resolver is built elsewhere): every
/// question goes over TCP to one authoritative server (Knot here); with <c>cache</c>, what it got is
/// kept and answered from <see cref="TryAnswerFromCache"/>. A gate can hold resolutions.
/// </summary>
internal sealed class ForwardingRecursion(IPEndPoint upstream, bool cache = false) : IRecursion
{
    private readonly ConcurrentDictionary<(string, RecordType), DnsMessage> _cache = new();
    private int _resolutions;
    private static int _id = 0x3000;

    /// <summary>When set, resolutions wait for it (after signalling <see cref="Started"/>).</summary>
    public TaskCompletionSource? Gate { get; set; }
    public SemaphoreSlim Started { get; } = new(0);
    public int Resolutions => Volatile.Read(ref _resolutions);

    public bool TryAnswerFromCache(scoped ReadOnlySpan<byte> qname, RecordType qtype, RecordClass qclass, bool dnssecOk, bool checkingDisabled,
        ref DnsMessageWriter w, out CacheAnswer answer)
    {
        answer = new CacheAnswer { Rcode = Rcode.NoError, Ede = -1 };
        if (!cache || !_cache.TryGetValue((DnsName.FromWire(qname).ToString().ToLowerInvariant(), qtype), out var m)) return false;
        answer.Rcode = m.Rcode;
        foreach (var rr in m.Answers)
            if (!w.TryWriteRecord(rr, DnsSection.Answer)) { answer.Truncated = true; return true; }
        foreach (var rr in m.Authority)
            if (!w.TryWriteRecord(rr, DnsSection.Authority)) { answer.Truncated = true; return true; }
        return true;
    }

    public async Task<ResolutionResult> ResolveAsync(ResolverQuestion question, CancellationToken token)
    {
        Interlocked.Increment(ref _resolutions);
        Started.Release();
        if (Gate is { } gate) await gate.Task.WaitAsync(token);
        var query = DnsMessage.CreateQuery(question.Name, question.Type, question.Class, (ushort)Interlocked.Increment(ref _id), recursionDesired: false);
        var m = await Task.Run(() => DnsMessage.Parse(new DnsTestClient(upstream).TcpRaw(query.ToWire())), token);
        if (cache) _cache[(question.Name.ToString().ToLowerInvariant(), question.Type)] = m;
        return new ResolutionResult { Rcode = m.Rcode, Answer = m.Answers, Authority = m.Authority };
    }
}

/// <summary>
/// Recursion in the query pipeline, on a running server: admitted clients get forwarded answers
/// (RA set, AA clear, the question as asked), others REFUSED as prohibited; RD=0 is answered as
/// Unbound answers it; resolutions in flight are bounded; the served zones keep their
/// authoritative answers. The upstream is a real Knot serving fwd.test.
/// </summary>
public sealed class RecursionPipelineTests : IDisposable
{
    private const string FwdZone = """
        $TTL 300
        @       SOA ns1 hostmaster 1 7200 3600 1209600 300
        @       NS  ns1
        ns1     A   127.0.0.1
        www     A   192.0.2.80
        alias   CNAME www
        """;

    private static int _nextAddress;
    private readonly string _dir = Directory.CreateTempSubdirectory("portcullis-recursion-").FullName;
    private readonly KnotPeer _knot;
    private readonly List<IDisposable> _owned = [];

    public RecursionPipelineTests()
    {
        var big = new StringBuilder(FwdZone).Append('\n');
        for (int i = 0; i < 30; i++) big.Append($"big TXT \"{i:D2} {new string('x', 60)}\"\n");
        var file = Path.Combine(_dir, "fwd.test.zone");
        File.WriteAllText(file, big.ToString());
        _knot = new KnotPeer([new PeerZone("fwd.test", file)]);
    }

    public void Dispose()
    {
        foreach (var d in _owned) d.Dispose();
        _knot.Dispose();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    /// <summary>A server on its own 127.0.1.x serving example.test, with recursion from <paramref name="recursion"/>; 127.0.0.1 is admitted.</summary>
    private DnsServer Serve(IRecursion recursion, Action<ServerConfig>? configure = null)
    {
        var zone = Path.Combine(_dir, "example.test.zone");
        File.WriteAllText(zone, TestServer.ExampleZone);
        int host = Interlocked.Increment(ref _nextAddress) % 200 + 20;
        var config = new ServerConfig
        {
            Listen = [$"127.0.1.{host}:0"],
            Zones = [new ZoneConfig { Name = "example.test.", File = zone }],
            AllowRecursion = ["127.0.0.1"],
        };
        configure?.Invoke(config);
        var server = new DnsServer(config, NullLoggerFactory.Instance, recursion: (_, _, _) => recursion);
        _owned.Add(server);
        server.Start();
        return server;
    }

    private static DnsMessage Ask(DnsServer server, string name, RecordType type, bool rd = true, bool tcp = false, bool edns = true,
        string from = "127.0.0.1")
    {
        var q = DnsTestClient.Query(name, type, edns);
        q.Header.RecursionDesired = rd;
        var client = new DnsTestClient(server.UdpEndPoints[0], IPAddress.Parse(from));
        var r = DnsMessage.Parse(tcp ? client.TcpRaw(q.ToWire()) : client.UdpRaw(q.ToWire()));
        Assert.Equal(q.Header.Id, r.Header.Id);
        return r;
    }

    private static ExtendedDnsErrorCode? Ede(DnsMessage m) =>
        m.Edns?.Options.OfType<ExtendedDnsErrorOption>().Select(o => (ExtendedDnsErrorCode?)o.InfoCode).FirstOrDefault();

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void An_admitted_client_gets_the_forwarded_answer_with_ra(bool tcp)
    {
        var recursion = new ForwardingRecursion(_knot.EndPoint);
        var server = Serve(recursion);
        var r = Ask(server, "WwW.Fwd.TEST.", RecordType.A, tcp: tcp);
        Assert.Equal(Rcode.NoError, r.Rcode);
        Assert.True(r.Header.RecursionAvailable);
        Assert.True(r.Header.RecursionDesired);
        Assert.False(r.Header.AuthoritativeAnswer);
        Assert.Equal("WwW.Fwd.TEST.", r.Questions[0].Name.ToString());   // the question as asked
        Assert.Equal("192.0.2.80", new IPAddress(Assert.Single(r.Answers).Data).ToString());
        Assert.NotNull(r.Edns);
        // A CNAME chain and a negative answer come back as the upstream gave them.
        var alias = Ask(server, "alias.fwd.test.", RecordType.A, tcp: tcp);
        Assert.Equal([RecordType.CNAME, RecordType.A], alias.Answers.Select(a => a.Type));
        var missing = Ask(server, "nope.fwd.test.", RecordType.A, tcp: tcp);
        Assert.Equal(Rcode.NXDomain, missing.Rcode);
        Assert.Equal(RecordType.SOA, Assert.Single(missing.Authority).Type);
        Assert.True(missing.Header.RecursionAvailable);
        Assert.Equal(3, server.Processor.Counters[SecurityReason.RecursionResolved]);
        Assert.Equal(3, server.Processor.Counters[SecurityReason.RecursionCacheMiss]);
    }

    [Fact]
    public void A_client_outside_allow_recursion_is_refused_as_prohibited_and_nothing_is_resolved()
    {
        var recursion = new ForwardingRecursion(_knot.EndPoint, cache: true);
        var server = Serve(recursion);
        Ask(server, "www.fwd.test.", RecordType.A);   // now in the cache
        foreach (bool rd in new[] { true, false })
        {
            var r = Ask(server, "www.fwd.test.", RecordType.A, rd, from: "127.0.0.77");
            Assert.Equal(Rcode.Refused, r.Rcode);
            Assert.Empty(r.Answers);   // the cache answers nobody else
            Assert.Equal(ExtendedDnsErrorCode.Prohibited, Ede(r));
        }
        // The admitted client gets the cached answer (a hit: AA clear, RA set).
        var hit = Ask(server, "www.fwd.test.", RecordType.A);
        Assert.Equal(Rcode.NoError, hit.Rcode);
        Assert.True(hit.Header.RecursionAvailable);
        Assert.False(hit.Header.AuthoritativeAnswer);
        Assert.Single(hit.Answers);
        Assert.Equal(1, server.Processor.Counters[SecurityReason.RecursionCacheHit]);
        Assert.Equal(1, recursion.Resolutions);
        Assert.Equal(2, server.Processor.Counters[SecurityReason.RecursionRefused]);
    }

    [Fact]
    public void Rd_clear_is_answered_as_unbound_answers_it()
    {
        using var unbound = new UnboundPeer(stubs: [("fwd.test", _knot.EndPoint)]);
        var server = Serve(new ForwardingRecursion(_knot.EndPoint, cache: true));
        var oursClient = new DnsTestClient(server.UdpEndPoints[0], IPAddress.Loopback);
        var theirsClient = new DnsTestClient(unbound.EndPoint);
        // Unbound's default access (allow, not allow_snoop) refuses RD=0 whether the cache holds the
        // answer or not: before the name is resolved, after it with RD=1, and its RD=1 cache hit.
        int step = 0;
        foreach (bool rd in new[] { false, true, false, true })
        {
            var q = DnsTestClient.Query("www.fwd.test.", RecordType.A, edns: true);
            q.Header.RecursionDesired = rd;
            var ours = DnsMessage.Parse(oursClient.UdpRaw(q.ToWire()));
            var theirs = DnsMessage.Parse(theirsClient.UdpRaw(q.ToWire()));
            Assert.True(theirs.Rcode == ours.Rcode, $"step {step}: unbound {theirs.Rcode} ({theirs.Answers.Count} answers), ours {ours.Rcode}");
            step++;
            Assert.Equal(theirs.Header.RecursionAvailable, ours.Header.RecursionAvailable);
            Assert.Equal(theirs.Header.AuthoritativeAnswer, ours.Header.AuthoritativeAnswer);
            Assert.Equal(theirs.Answers.Select(a => (a.Type, Convert.ToHexString(a.Data))), ours.Answers.Select(a => (a.Type, Convert.ToHexString(a.Data))));
        }
        Assert.Equal(1, server.Processor.Counters[SecurityReason.RecursionCacheHit]);
        Assert.Equal(2, server.Processor.Counters[SecurityReason.RecursionNotDesired]);
    }

    [Fact]
    public async Task Resolutions_beyond_the_in_flight_bound_get_servfail_at_once()
    {
        var recursion = new ForwardingRecursion(_knot.EndPoint) { Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously) };
        var server = Serve(recursion, c => c.Recursion.MaxInFlight = 1);
        using var first = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { ReceiveTimeout = 10_000 };
        first.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        first.Connect(server.UdpEndPoints[0]);
        var q = DnsTestClient.Query("www.fwd.test.", RecordType.A, edns: true);
        q.Header.RecursionDesired = true;
        first.Send(q.ToWire());
        Assert.True(await recursion.Started.WaitAsync(TimeSpan.FromSeconds(10)));
        var overflow = Ask(server, "alias.fwd.test.", RecordType.A);
        Assert.Equal(Rcode.ServFail, overflow.Rcode);
        Assert.Equal(ExtendedDnsErrorCode.Other, Ede(overflow));
        Assert.Equal(1, server.Processor.Counters[SecurityReason.RecursionOverload]);
        recursion.Gate.SetResult();
        var buffer = new byte[4096];
        int n = first.Receive(buffer);
        var answer = DnsMessage.Parse(buffer.AsSpan(0, n));
        Assert.Equal(q.Header.Id, answer.Header.Id);
        Assert.Equal(Rcode.NoError, answer.Rcode);
        // The place is free again.
        Assert.Equal(Rcode.NoError, Ask(server, "alias.fwd.test.", RecordType.A).Rcode);
    }

    [Fact]
    public void The_served_zones_are_still_answered_authoritatively()
    {
        var recursion = new ForwardingRecursion(_knot.EndPoint, cache: true);
        var server = Serve(recursion);
        foreach (bool rd in new[] { true, false })
        {
            var r = Ask(server, "www.example.test.", RecordType.A, rd);
            Assert.Equal(Rcode.NoError, r.Rcode);
            Assert.True(r.Header.AuthoritativeAnswer);
            Assert.NotEmpty(r.Answers);
        }
        var wildcard = Ask(server, "anything.example.test.", RecordType.A);   // the zone's wildcard, not a resolution
        Assert.True(wildcard.Header.AuthoritativeAnswer);
        Assert.Equal(0, recursion.Resolutions);
    }

    [Fact]
    public void A_deferred_answer_too_big_for_the_client_is_truncated_over_udp_and_whole_over_tcp()
    {
        var server = Serve(new ForwardingRecursion(_knot.EndPoint));
        var udp = Ask(server, "big.fwd.test.", RecordType.TXT, edns: false);
        Assert.True(udp.Header.Truncated);
        Assert.True(udp.ToWire().Length <= 512);
        var tcp = Ask(server, "big.fwd.test.", RecordType.TXT, tcp: true, edns: false);
        Assert.False(tcp.Header.Truncated);
        Assert.Equal(30, tcp.Answers.Count);
    }

    [Fact]
    public void Without_recursion_names_outside_the_zones_are_refused_as_before()
    {
        var recursion = new ForwardingRecursion(_knot.EndPoint);
        var server = Serve(recursion, c => c.Recursion.Enabled = false);
        var r = Ask(server, "www.fwd.test.", RecordType.A);
        Assert.Equal(Rcode.Refused, r.Rcode);
        Assert.Equal(ExtendedDnsErrorCode.NotAuthoritative, Ede(r));
        Assert.Null(server.Recursion);
        Assert.Equal(0, recursion.Resolutions);
    }

    [Theory]
    [InlineData("+notcp")]
    [InlineData("+tcp")]
    public void Dig_gets_the_answer(string transport)
    {
        var server = Serve(new ForwardingRecursion(_knot.EndPoint));
        var ep = server.UdpEndPoints[0];
        var dig = ExternalProcess.Run("dig", [$"@{ep.Address}", "-p", ep.Port.ToString(), "-b", "127.0.0.1", "www.fwd.test.", "A",
            transport, "+time=5", "+tries=1"]).EnsureSuccess();
        Assert.Contains("status: NOERROR", dig.Stdout);
        Assert.Matches(@"flags: qr rd ra;", dig.Stdout);
        Assert.Matches(@"www\.fwd\.test\.\s+\d+\s+IN\s+A\s+192\.0\.2\.80", dig.Stdout);
    }
}
