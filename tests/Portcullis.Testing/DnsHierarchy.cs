using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Portcullis.Testing;

/// <summary>
/// A DNS hierarchy for resolver tests (issue 9), offline on loopback: every server listens on port 53
/// of an address in 127.53.N.0/24, N taken from a process-wide counter so that hierarchies in parallel
/// never collide (other suites use 127.54/16). Dispose stops every process and socket.
/// </summary>
/// <remarks>
/// <para>Layout (x = host part of 127.53.N.x). Every public server is a <see cref="HierarchyServer"/>
/// (C#) that counts queries; NSD processes sit behind the forwarding ones at 127.53.N.(100+x).</para>
/// <list type="bullet">
/// <item>.1 root "." (NSD); root hints: ns.root-servers.test. A 127.53.N.1 (<see cref="RootHints"/>, <see cref="RootHintsFile"/>).</item>
/// <item>.2 "test." (NSD), .3 "example." (NSD), separate processes.</item>
/// <item>.4 "sld.test." (NSD): www, victim, MX, TXT, a wildcard *.wild, the CNAME chain
/// cname.sld.test → a.other.example → back.sld.test; also the lame server of lame.test (REFUSED: it lacks the zone).</item>
/// <item>.5 (NSD) "other.example.", "oob.test." (its NS is ns.other.example., no glue: resolved separately),
/// "lame.test." (the good one of its two servers) and "tcponly.test." (the backend of .7).</item>
/// <item>.7 "tcponly.test.": UDP answered with TC=1 and nothing else; TCP forwarded to .105.</item>
/// <item>.8 "evil.test.": <see cref="EvilZone"/>, injects out-of-bailiwick records.</item>
/// <item>"dead.test." is delegated to .250 (receives, never answers: timeouts) and .251 (nothing bound: ICMP unreachable / RST).</item>
/// <item>.200 is left for the resolver under test (<see cref="ResolverAddress"/>).</item>
/// </list>
/// </remarks>
public sealed class DnsHierarchy : LoopbackHierarchy
{
    private static int _lastSubnet;

    private readonly Dictionary<string, HierarchyServer> _servers = [];

    public DnsHierarchy() : base(53, ref _lastSubnet, "portcullis-hierarchy-") => Start(Start);


    /// <summary>The root servers as a resolver takes them: (name, address), port 53.</summary>
    public IReadOnlyList<(string Name, IPAddress Address)> RootHints => [("ns.root-servers.test.", Address(1))];

    /// <summary>The root hints in zone-file form (what Unbound's root-hints: and BIND's hint zone read).</summary>
    public string RootHintsText => $". 3600000 NS ns.root-servers.test.\nns.root-servers.test. 3600000 A {Address(1)}\n";

    /// <summary>The counting front servers by role: root, test, example, sld, other, tcponly, evil, dead-silent.</summary>
    public IReadOnlyDictionary<string, HierarchyServer> Servers => _servers;

    /// <summary>Queries for <paramref name="name"/> (any type, any case) received by all servers of the hierarchy so far.</summary>
    public int QueriesFor(string name) => _servers.Values.Sum(s => s.QueriesFor(name));

    /// <summary>Every query received by every server so far.</summary>
    public int TotalQueries => _servers.Values.Sum(s => s.Queries.Count);


    private void Start()
    {
        File.WriteAllText(RootHintsFile, RootHintsText);
        var zones = Zones();
        // NSD start-ups are independent: run them side by side.
        (string Role, int Host, string[] Origins)[] nsds =
        [
            ("root", 1, ["."]),
            ("test", 2, ["test."]),
            ("example", 3, ["example."]),
            ("sld", 4, ["sld.test."]),
            ("other", 5, ["other.example.", "oob.test.", "lame.test.", "tcponly.test."]),
        ];
        var starting = nsds.Select(d => Task.Run(() =>
            new HierarchyNsd(d.Role, Address(100 + d.Host), [.. d.Origins.Select(o => (o, zones[o]))]))).ToArray();
        try
        {
            // Unbounded here on purpose: every HierarchyNsd constructor bounds its own waits, and
            // waiting for all of them is what lets Dispose stop every NSD that did start.
            Task.WaitAll(starting);
        }
        catch (AggregateException)
        {
            // Reported below, after the ones that started are owned.
        }
        foreach (var t in starting)
            if (t.IsCompletedSuccessfully) Owned.Add(t.Result);
        if (starting.FirstOrDefault(t => !t.IsCompletedSuccessfully) is { } failed)
            throw failed.Exception!.InnerException!;
        foreach (var (role, host, _) in nsds)
            Add(role, host, HierarchyServer.Forward(new IPEndPoint(Address(100 + host), 53)));
        Add("tcponly", 7, HierarchyServer.TruncateUdp(new IPEndPoint(Address(105), 53)));
        Add("evil", 8, EvilZone.Handler(Address(8)));
        Add("dead-silent", 250, HierarchyServer.Silent());
    }

    private void Add(string role, int host, Func<byte[], bool, CancellationToken, Task<byte[]?>> handler)
    {
        var server = new HierarchyServer(role, new IPEndPoint(Address(host), 53), handler);
        Owned.Add(server);
        _servers[role] = server;
    }

    /// <summary>The zone texts, by origin. Answer data uses 192.0.2.0/24 so that <see cref="Scenarios"/> need not know N.</summary>
    private Dictionary<string, string> Zones()
    {
        string a(int host) => Address(host).ToString();
        static string Soa(string origin, string ns) =>
            $"$TTL 300\n{origin} SOA {ns} hostmaster.{(origin == "." ? "root-servers.test." : origin)} 1 3600 600 86400 300\n{origin} NS {ns}\n";
        return new()
        {
            ["."] = Soa(".", "ns.root-servers.test.") + $"""
                ns.root-servers.test. A {a(1)}
                test. NS ns.nic.test.
                ns.nic.test. A {a(2)}
                example. NS ns.nic.example.
                ns.nic.example. A {a(3)}

                """,
            ["test."] = Soa("test.", "ns.nic.test.") + $"""
                ns.nic.test. A {a(2)}
                ns.root-servers.test. A {a(1)}
                sld.test. NS ns1.sld.test.
                ns1.sld.test. A {a(4)}
                oob.test. NS ns.other.example.
                lame.test. NS ns1.lame.test.
                lame.test. NS ns2.lame.test.
                ns1.lame.test. A {a(4)}
                ns2.lame.test. A {a(5)}
                dead.test. NS ns1.dead.test.
                dead.test. NS ns2.dead.test.
                ns1.dead.test. A {a(250)}
                ns2.dead.test. A {a(251)}
                tcponly.test. NS ns.tcponly.test.
                ns.tcponly.test. A {a(7)}
                evil.test. NS ns.evil.test.
                ns.evil.test. A {a(8)}

                """,
            ["example."] = Soa("example.", "ns.nic.example.") + $"""
                ns.nic.example. A {a(3)}
                other.example. NS ns.other.example.
                ns.other.example. A {a(5)}

                """,
            ["sld.test."] = Soa("sld.test.", "ns1.sld.test.") + $"""
                ns1.sld.test. A {a(4)}
                www.sld.test. A 192.0.2.10
                victim.sld.test. A 192.0.2.20
                sld.test. MX 10 mail.sld.test.
                mail.sld.test. A 192.0.2.25
                txt.sld.test. TXT "portcullis hierarchy" "second string"
                *.wild.sld.test. A 192.0.2.40
                cname.sld.test. CNAME a.other.example.
                back.sld.test. A 192.0.2.30

                """,
            ["other.example."] = Soa("other.example.", "ns.other.example.") + $"""
                ns.other.example. A {a(5)}
                www.other.example. A 192.0.2.60
                a.other.example. CNAME back.sld.test.

                """,
            ["oob.test."] = Soa("oob.test.", "ns.other.example.") + """
                www.oob.test. A 192.0.2.50

                """,
            ["lame.test."] = Soa("lame.test.", "ns1.lame.test.") + $"""
                lame.test. NS ns2.lame.test.
                ns1.lame.test. A {a(4)}
                ns2.lame.test. A {a(5)}
                www.lame.test. A 192.0.2.70

                """,
            ["tcponly.test."] = Soa("tcponly.test.", "ns.tcponly.test.") + $"""
                ns.tcponly.test. A {a(7)}
                www.tcponly.test. A 192.0.2.80

                """,
        };
    }

    // ---- Scenarios ----

    /// <summary>
    /// The scenario table, to be run IN ORDER against one resolver that starts with an empty cache:
    /// some rows depend on earlier ones (the out-of-bailiwick row is first so that ns.other.example
    /// is not yet cached; the rows after "evil" ask names the evil server tried to poison).
    /// </summary>
    public static IReadOnlyList<ResolverScenario> Scenarios { get; } =
    [
        new("out-of-bailiwick-ns", "www.oob.test.", "A", "NOERROR", ["www.oob.test. A 192.0.2.50"],
            "oob.test. NS ns.other.example. without glue: the NS address needs its own resolution from the root"),
        new("plain", "www.sld.test.", "A", "NOERROR", ["www.sld.test. A 192.0.2.10"], "root → test. → sld.test."),
        new("other-tld", "www.other.example.", "A", "NOERROR", ["www.other.example. A 192.0.2.60"], "a second TLD on another server"),
        new("mx", "sld.test.", "MX", "NOERROR", ["sld.test. MX 10 mail.sld.test."], "MX at the apex"),
        new("txt", "txt.sld.test.", "TXT", "NOERROR", ["txt.sld.test. TXT \"portcullis hierarchy\" \"second string\""], "two strings"),
        new("wildcard", "anything.wild.sld.test.", "A", "NOERROR", ["anything.wild.sld.test. A 192.0.2.40"], "*.wild.sld.test. expanded"),
        new("cname-chain", "cname.sld.test.", "A", "NOERROR",
            ["cname.sld.test. CNAME a.other.example.", "a.other.example. CNAME back.sld.test.", "back.sld.test. A 192.0.2.30"],
            "CNAME into other.example. and back into sld.test."),
        new("nxdomain-cached", "nx.sld.test.", "A", "NXDOMAIN", [], "asked twice: the second query sends nothing upstream (RFC 2308 §5)")
            { RepeatFromCache = true },
        new("nodata-cached", "mail.sld.test.", "AAAA", "NOERROR", [], "asked twice: the second query sends nothing upstream (RFC 2308 §5)")
            { RepeatFromCache = true },
        new("nxdomain-tld", "nosuchtld.", "A", "NXDOMAIN", [], "NXDOMAIN from the root itself") { RepeatFromCache = true },
        new("lame", "www.lame.test.", "A", "NOERROR", ["www.lame.test. A 192.0.2.70"],
            "lame.test. has a server that answers REFUSED and a good one"),
        new("tcp-only", "www.tcponly.test.", "A", "NOERROR", ["www.tcponly.test. A 192.0.2.80"],
            "the server answers every UDP query with TC=1 and nothing else: TCP fallback"),
        new("dead", "www.dead.test.", "A", "SERVFAIL", [],
            "dead.test. servers: one never answers, one has nothing listening; SERVFAIL within the bound") { MaxSeconds = 15 },
        new("evil", "www.evil.test.", "A", "NOERROR", ["www.evil.test. A 192.0.2.66"],
            "the answer also carries www/victim.sld.test A 6.6.6.6 and sld.test NS ns.evil.test: not served"),
        new("after-evil-victim", "victim.sld.test.", "A", "NOERROR", ["victim.sld.test. A 192.0.2.20"],
            "first asked after evil injected 6.6.6.6 for it: nothing was cached"),
        new("after-evil-www", "www.sld.test.", "A", "NOERROR", ["www.sld.test. A 192.0.2.10"],
            "asked again after evil injected 6.6.6.6 for it: the cache kept the real answer"),
        new("after-evil-delegation", "mail.sld.test.", "A", "NOERROR", ["mail.sld.test. A 192.0.2.25"],
            "a new name in sld.test.: the injected NS (ns.evil.test, which answers 6.6.6.6) was not believed"),
    ];

    /// <summary>
    /// Asks <paramref name="resolver"/> the scenario's question with dig (RD set, one try) and, for rows
    /// with <see cref="ResolverScenario.RepeatFromCache"/>, asks again and counts the queries for the
    /// name that reached any server of this hierarchy in between.
    /// </summary>
    public ScenarioResult Run(IPEndPoint resolver, ResolverScenario s)
    {
        int before = QueriesFor(s.QName);
        var first = Dig(resolver, s);
        int upstream = QueriesFor(s.QName) - before;
        int? repeat = null;
        if (s.RepeatFromCache)
        {
            int again = QueriesFor(s.QName);
            Dig(resolver, s);
            repeat = QueriesFor(s.QName) - again;
        }
        return first with { UpstreamQueries = upstream, RepeatUpstreamQueries = repeat };
    }

    /// <summary>Runs the whole table in order.</summary>
    public IReadOnlyList<ScenarioResult> RunAll(IPEndPoint resolver) => [.. Scenarios.Select(s => Run(resolver, s))];

    private static ScenarioResult Dig(IPEndPoint resolver, ResolverScenario s)
    {
        int wait = (int)Math.Ceiling(s.MaxSeconds) + 2;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var r = ExternalProcess.Run("dig", [$"@{resolver.Address}", "-p", resolver.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "+tries=1", $"+time={wait}", "+nottlid", "+noclass", s.QName, s.QType], timeout: TimeSpan.FromSeconds(wait + 10));
        var elapsed = clock.Elapsed;
        return ScenarioResult.ParseDig(s.Name, r.Stdout, elapsed);
    }

    /// <summary>Null when <paramref name="r"/> is what the scenario expects, else why not (one line).</summary>
    public static string? Check(ResolverScenario s, ScenarioResult r)
    {
        if (r.Rcode != s.ExpectedRcode) return $"{s.Name}: rcode {r.Rcode}, expected {s.ExpectedRcode}";
        var expected = s.ExpectedAnswer.Select(ScenarioResult.NormalizeLine).ToHashSet();
        if (!expected.SetEquals(r.Answer))
            return $"{s.Name}: answer [{string.Join(" | ", r.Answer)}], expected [{string.Join(" | ", expected)}]";
        if (r.Answer.Any(l => l.EndsWith(" " + EvilZone.PoisonAddress, StringComparison.Ordinal)))
            return $"{s.Name}: served the injected {EvilZone.PoisonAddress}";
        if (s.ExpectedRcode == "SERVFAIL" && r.Elapsed.TotalSeconds > s.MaxSeconds)
            return $"{s.Name}: SERVFAIL after {r.Elapsed.TotalSeconds:0.0} s, bound {s.MaxSeconds} s";
        if (s.RepeatFromCache && r.UpstreamQueries == 0)
            return $"{s.Name}: the first query reached no server of the hierarchy (counting broken?)";
        if (s.RepeatFromCache && r.RepeatUpstreamQueries != 0)
            return $"{s.Name}: the repeated query sent {r.RepeatUpstreamQueries} queries upstream, expected 0";
        return null;
    }

    /// <summary>Null when two resolvers agree on a row (RCODE and answer set; TTLs and timing aside), else the difference.</summary>
    public static string? Compare(ResolverScenario s, ScenarioResult baseline, ScenarioResult other)
    {
        if (baseline.Rcode != other.Rcode) return $"{s.Name}: rcode {other.Rcode}, baseline {baseline.Rcode}";
        if (!baseline.Answer.ToHashSet().SetEquals(other.Answer))
            return $"{s.Name}: answer [{string.Join(" | ", other.Answer)}], baseline [{string.Join(" | ", baseline.Answer)}]";
        if (s.RepeatFromCache && (baseline.RepeatUpstreamQueries == 0) != (other.RepeatUpstreamQueries == 0))
            return $"{s.Name}: repeat sent {other.RepeatUpstreamQueries} upstream, baseline {baseline.RepeatUpstreamQueries}";
        return null;
    }

    /// <summary>The table as text for reports: row, rcode, answer, time, upstream queries (first / repeat).</summary>
    public static string FormatTable(IEnumerable<ScenarioResult> results)
    {
        var text = new StringBuilder();
        foreach (var r in results)
            text.Append(
                $"{r.Scenario,-22} {r.Rcode,-9} {r.Elapsed.TotalMilliseconds,7:0} ms  up {r.UpstreamQueries}{(r.RepeatUpstreamQueries is { } n ? $"/{n}" : "")}  {string.Join(" | ", r.Answer)}\n");
        return text.ToString();
    }

}

/// <summary>One row of the resolver scenario table.</summary>
/// <param name="ExpectedAnswer">The answer section as zone-file lines without TTL and class ("www.sld.test. A 192.0.2.10"), any order.</param>
public sealed record ResolverScenario(string Name, string QName, string QType, string ExpectedRcode, IReadOnlyList<string> ExpectedAnswer, string Description)
{
    /// <summary>How long the answer (a SERVFAIL included) may take at most, in seconds.</summary>
    public double MaxSeconds { get; init; } = 5;

    /// <summary>Ask twice; the second must be answered from the cache, sending no query for the name to any server.</summary>
    public bool RepeatFromCache { get; init; }

    public override string ToString() => Name;
}

/// <summary>What a resolver answered to one scenario.</summary>
/// <param name="Rcode">NOERROR, NXDOMAIN, SERVFAIL, ... or TIMEOUT when no answer came.</param>
/// <param name="Answer">Answer section lines, normalised: "owner TYPE rdata", owner lower case, no TTL or class.</param>
/// <param name="Elapsed">dig's "Query time" when it printed one, else the time until dig gave up.</param>
public sealed record ScenarioResult(string Scenario, string Rcode, IReadOnlyList<string> Answer, TimeSpan Elapsed)
{
    /// <summary>Queries for the name that reached the hierarchy during the first query.</summary>
    public int UpstreamQueries { get; init; }

    /// <summary>Queries for the name that reached the hierarchy during the repeated query (rows that repeat), else null.</summary>
    public int? RepeatUpstreamQueries { get; init; }

    /// <summary>Parses dig's default output printed with +nottlid +noclass.</summary>
    public static ScenarioResult ParseDig(string scenario, string stdout, TimeSpan wallClock)
    {
        string rcode = "TIMEOUT";
        var answer = new List<string>();
        TimeSpan elapsed = wallClock;
        bool inAnswer = false;
        foreach (var raw in stdout.Split('\n'))
        {
            string line = raw.TrimEnd('\r');
            int at = line.IndexOf("status: ", StringComparison.Ordinal);
            if (at >= 0) rcode = line[(at + 8)..].Split(',')[0].Trim();
            if (line.StartsWith(";; ANSWER SECTION:", StringComparison.Ordinal)) { inAnswer = true; continue; }
            if (inAnswer && (line.Length == 0 || line.StartsWith(';'))) inAnswer = false;
            else if (inAnswer) answer.Add(NormalizeLine(line));
            if (line.StartsWith(";; Query time: ", StringComparison.Ordinal)
                && int.TryParse(line[15..].Split(' ')[0], out int ms))
                elapsed = TimeSpan.FromMilliseconds(ms);
        }
        return new ScenarioResult(scenario, rcode, answer, elapsed);
    }

    /// <summary>Whitespace collapsed, the owner in lower case.</summary>
    public static string NormalizeLine(string line)
    {
        var parts = line.Split([' ', '\t'], 2, StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length < 2) return line.Trim();
        var rest = string.Join(' ', parts[1].Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries));
        return parts[0].ToLowerInvariant() + " " + rest;
    }
}
