using System.Globalization;
using Portcullis.Server.Configuration;
using Portcullis.Server.Hosting;
using Portcullis.Server.Policy;
using Portcullis.Server.Security;
using Portcullis.Server.Tests.Pipeline;
using Portcullis.Server.Tests.Support;
using Portcullis.Testing;
using Xunit;

namespace Portcullis.Server.Tests.Policy;

/// <summary>
/// A real server with recursion (every question forwarded to a real Knot serving fwd.test) and a
/// response policy zone plus a hosts-format block list, asked with dig: each RPZ action as a client
/// sees it, the precedence of exact, wildcard and passthru triggers, authoritative zones untouched,
/// hits counted and logged, and a changed policy file taking effect on reload.
/// </summary>
public sealed class PolicyServeTests : IDisposable
{
    private const string FwdZone = """
        $TTL 300
        @        SOA ns1 hostmaster 1 7200 3600 1209600 300
        @        NS  ns1
        ns1      A   127.0.0.1
        www      A   192.0.2.80
        ok.wild  A   192.0.2.81
        tcp      A   192.0.2.82
        nx       A   192.0.2.83
        clean    A   192.0.2.84
        """;

    private const string RpzZone = """
        $TTL 300
        @                SOA ns.rpz. hostmaster.rpz. 1 3600 600 86400 60
        @                NS  localhost.
        nx.fwd.test      CNAME .
        nodata.fwd.test  CNAME *.
        drop.fwd.test    CNAME rpz-drop.
        *.wild.fwd.test  CNAME .
        ok.wild.fwd.test CNAME rpz-passthru.
        local.fwd.test   A     192.0.2.99
        local.fwd.test   TXT   "blocked by policy"
        alias.fwd.test   CNAME www.fwd.test.
        *.garden.fwd.test CNAME *.walled.example.
        tcp.fwd.test     CNAME rpz-tcp-only.
        www.example.test CNAME .
        """;

    private const string HostsList = """
        # StevenBlack-style hosts file
        127.0.0.1 localhost
        0.0.0.0 ads.fwd.test
        """;

    private readonly string _dir = Directory.CreateTempSubdirectory("portcullis-rpz-serve-").FullName;
    private readonly KnotPeer _knot;
    private readonly DnsServer _server;
    private readonly CollectingLoggerFactory _logs = new();

    public PolicyServeTests()
    {
        var fwd = Path.Combine(_dir, "fwd.test.zone");
        File.WriteAllText(fwd, FwdZone);
        _knot = new KnotPeer([new PeerZone("fwd.test", fwd)]);
        File.WriteAllText(Path.Combine(_dir, "rpz.test.zone"), RpzZone);
        File.WriteAllText(Path.Combine(_dir, "hosts.txt"), HostsList);
        var example = Path.Combine(_dir, "example.test.zone");
        File.WriteAllText(example, TestServer.ExampleZone);
        var config = new ServerConfig
        {
            Listen = [$"{TestServer.NextAddress()}:0"],
            Zones = [new ZoneConfig { Name = "example.test.", File = example }],
            AllowRecursion = ["127.0.0.1"],
            QueryLog = new Server.Telemetry.QueryLogConfig { File = Path.Combine(_dir, "queries.log") },
            ResponsePolicy = new ResponsePolicyConfig
            {
                Zones = [new PolicyZoneConfig { Name = "rpz.test", File = Path.Combine(_dir, "rpz.test.zone") }],
                Lists = [new PolicyListConfig { File = Path.Combine(_dir, "hosts.txt") }],
            },
        };
        try
        {
            var recursion = new ForwardingRecursion(_knot.EndPoint);
            _server = new DnsServer(config, _logs, recursion: (_, _, _) => recursion);
            _server.Start();
        }
        catch
        {
            _knot.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        _server.Dispose();
        _knot.Dispose();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private ProcessResult Dig(string name, string type, params string[] options)
    {
        var ep = _server.UdpEndPoints[0];
        return ExternalProcess.Run("dig", [$"@{ep.Address}", "-p", ep.Port.ToString(CultureInfo.InvariantCulture), "-b", "127.0.0.1",
            name, type, "+time=2", "+tries=1", .. options]);
    }

    private long Count(SecurityReason reason) => _server.Processor.Counters[reason];

    /// <summary>The query log's lines once every query so far is written.</summary>
    private async Task<string[]> QueryLogLines()
    {
        await _server.QueryEvents!.DrainAsync().WaitAsync(TimeSpan.FromSeconds(10));
        return File.ReadAllLines(Path.Combine(_dir, "queries.log"));
    }

    [Theory]
    [InlineData("+notcp")]
    [InlineData("+tcp")]
    public async Task Nxdomain_carries_the_policy_soa_and_ede_blocked(string transport)
    {
        var dig = Dig("nx.fwd.test.", "A", transport).EnsureSuccess();
        Assert.Contains("status: NXDOMAIN", dig.Stdout);
        Assert.Matches(@"flags: qr rd ra;", dig.Stdout);                        // a recursive answer, not authoritative
        Assert.Contains("EDE: 15 (Blocked)", dig.Stdout);
        Assert.Matches(@"rpz\.test\.\s+60\s+IN\s+SOA\s+ns\.rpz\.", dig.Stdout);  // TTL = min(300, MINIMUM 60)
        Assert.DoesNotContain("192.0.2.83", dig.Stdout);                          // the real answer was not given
        Assert.Equal(1, Count(SecurityReason.PolicyNxdomain));
        Assert.True(_logs.WaitFor("rpz rpz.test: 127.0.0.1 nx.fwd.test./A: NXDOMAIN (exact QNAME trigger)", TimeSpan.FromSeconds(10)),
            string.Join("\n", _logs.Lines));
        var line = Assert.Single(await QueryLogLines(), l => l.Contains("\"qname\":\"nx.fwd.test.\"", StringComparison.Ordinal));
        Assert.Contains("\"rcode\":\"NXDOMAIN\"", line);
        Assert.EndsWith("\"policy\":\"rpz-nxdomain\",\"policy_name\":\"rpz.test\"}", line);
    }

    [Fact]
    public void Nodata_is_noerror_without_answers()
    {
        var dig = Dig("nodata.fwd.test.", "A").EnsureSuccess();
        Assert.Contains("status: NOERROR", dig.Stdout);
        Assert.Contains("ANSWER: 0,", dig.Stdout);
        Assert.Contains("EDE: 15 (Blocked)", dig.Stdout);
        Assert.Equal(1, Count(SecurityReason.PolicyNodata));
    }

    [Fact]
    public async Task Drop_sends_nothing_so_dig_times_out()
    {
        var dig = Dig("drop.fwd.test.", "A", "+time=1");
        Assert.Equal(9, dig.ExitCode);   // dig: no reply from the server
        Assert.Contains("timed out", dig.Stdout + dig.Stderr);
        Assert.Equal(1, Count(SecurityReason.PolicyDrop));
        // The server is fine: the next question is answered.
        Assert.Contains("192.0.2.84", Dig("clean.fwd.test.", "A").EnsureSuccess().Stdout);
        var line = Assert.Single(await QueryLogLines(), l => l.Contains("\"qname\":\"drop.fwd.test.\"", StringComparison.Ordinal));
        Assert.Contains("\"rcode\":\"DROPPED\"", line);
        Assert.EndsWith("\"policy\":\"rpz-drop\",\"policy_name\":\"rpz.test\"}", line);
    }

    [Fact]
    public void Wildcard_blocks_every_name_below_and_an_exact_passthru_lets_one_through()
    {
        var blocked = Dig("deep.below.wild.fwd.test.", "A").EnsureSuccess();
        Assert.Contains("status: NXDOMAIN", blocked.Stdout);
        var passed = Dig("ok.wild.fwd.test.", "A").EnsureSuccess();
        Assert.Contains("status: NOERROR", passed.Stdout);
        Assert.Matches(@"ok\.wild\.fwd\.test\.\s+\d+\s+IN\s+A\s+192\.0\.2\.81", passed.Stdout);   // from upstream
        Assert.DoesNotContain("EDE", passed.Stdout);
        Assert.Equal(1, Count(SecurityReason.PolicyPassthru));
        Assert.Equal(1, Count(SecurityReason.PolicyNxdomain));
    }

    [Fact]
    public void Local_data_answers_with_the_policy_records()
    {
        var a = Dig("LOCAL.fwd.test.", "A").EnsureSuccess();
        Assert.Matches(@"LOCAL\.fwd\.test\.\s+300\s+IN\s+A\s+192\.0\.2\.99", a.Stdout);
        Assert.Contains("EDE: 4 (Forged Answer)", a.Stdout);
        var txt = Dig("local.fwd.test.", "TXT").EnsureSuccess();
        Assert.Contains("\"blocked by policy\"", txt.Stdout);
        var none = Dig("local.fwd.test.", "AAAA").EnsureSuccess();
        Assert.Contains("ANSWER: 0,", none.Stdout);
        Assert.Contains("status: NOERROR", none.Stdout);
        var alias = Dig("alias.fwd.test.", "A").EnsureSuccess();
        Assert.Matches(@"alias\.fwd\.test\.\s+300\s+IN\s+CNAME\s+www\.fwd\.test\.", alias.Stdout);
        // The walled-garden form: "*.SUFFIX" rewrites to the query name with SUFFIX appended.
        var garden = Dig("host.garden.fwd.test.", "A").EnsureSuccess();
        Assert.Matches(@"host\.garden\.fwd\.test\.\s+300\s+IN\s+CNAME\s+host\.garden\.fwd\.test\.walled\.example\.", garden.Stdout);
        Assert.Equal(5, Count(SecurityReason.PolicyLocalData));
    }

    [Fact]
    public void Tcp_only_truncates_over_udp_and_answers_over_tcp()
    {
        var udp = Dig("tcp.fwd.test.", "A", "+notcp", "+ignore").EnsureSuccess();
        Assert.Matches(@"flags: qr tc rd ra;", udp.Stdout);
        Assert.Contains("ANSWER: 0,", udp.Stdout);
        // dig's default: TC → the same question over TCP, answered normally.
        var retried = Dig("tcp.fwd.test.", "A").EnsureSuccess();
        Assert.Matches(@"tcp\.fwd\.test\.\s+\d+\s+IN\s+A\s+192\.0\.2\.82", retried.Stdout);
        Assert.Equal(3, Count(SecurityReason.PolicyTcpOnly));   // two over UDP, one over TCP
    }

    [Fact]
    public void A_hosts_list_blocks_its_names_and_their_subdomains()
    {
        foreach (var name in new[] { "ads.fwd.test.", "x.y.ads.fwd.test." })
        {
            var dig = Dig(name, "A").EnsureSuccess();
            Assert.Contains("status: NXDOMAIN", dig.Stdout);
            Assert.Contains("EDE: 15 (Blocked)", dig.Stdout);
            Assert.Contains("AUTHORITY: 0,", dig.Stdout);   // a list has no SOA
        }
        Assert.Equal(2, Count(SecurityReason.PolicyNxdomain));
    }

    [Fact]
    public void Policy_applies_to_recursion_only()
    {
        // A served zone's name is answered authoritatively though the policy lists it.
        var auth = Dig("www.example.test.", "A").EnsureSuccess();
        Assert.Contains("status: NOERROR", auth.Stdout);
        Assert.Matches(@"flags: qr aa rd;", auth.Stdout);
        // RD=0: refused as before, not rewritten.
        Assert.Contains("status: REFUSED", Dig("nx.fwd.test.", "A", "+norec").EnsureSuccess().Stdout);
        Assert.Equal(0, Count(SecurityReason.PolicyNxdomain));
    }

    [Fact]
    public void A_changed_policy_file_takes_effect_on_reload()
    {
        Assert.Contains("192.0.2.84", Dig("clean.fwd.test.", "A").EnsureSuccess().Stdout);
        File.WriteAllText(Path.Combine(_dir, "rpz.test.zone"), RpzZone.Replace(" 1 3600", " 2 3600") + "\nclean.fwd.test CNAME .\n");
        Assert.Equal(0, _server.Reload());
        Assert.Contains("status: NXDOMAIN", Dig("clean.fwd.test.", "A").EnsureSuccess().Stdout);
        // A broken edit keeps the last good policy.
        File.WriteAllText(Path.Combine(_dir, "rpz.test.zone"), RpzZone + "\nbroken A 999.0.0.1\n");
        _server.Reload();
        Assert.Contains("status: NXDOMAIN", Dig("clean.fwd.test.", "A").EnsureSuccess().Stdout);
        Assert.Contains(_logs.Lines, l => l.Contains("rpz.test.zone:", StringComparison.Ordinal) && l.Contains("keeping its last good version", StringComparison.Ordinal));
    }
}
