using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Portcullis.Server.Tests.Support;
using Portcullis.Testing;

namespace Portcullis.Server.Tests.Cli;

/// <summary>
/// `portcullis check` as an operator runs it: the real binary against Portcullis (configured well)
/// and against Knot and BIND configured badly; each finding must match the configuration.
/// Bursts are 100 queries so each test stays short.
/// </summary>
public sealed class CheckCommandTests
{
    private static string Binary => Path.Combine(AppContext.BaseDirectory, "portcullis.dll");

    private static ProcessResult Check(params string[] args) => ExternalProcess.Run("dotnet", [Binary, "check", .. args]);

    private sealed record Report(int ExitCode, Dictionary<string, List<(string Severity, string Text)>> Findings, string Stderr, string Raw);

    private static Report Json(string address, int port, params string[] args)
    {
        var result = Check([address, "-p", port.ToString(), "--json", "--burst", "100", .. args]);
        var findings = new Dictionary<string, List<(string, string)>>();
        using var doc = JsonDocument.Parse(result.Stdout);
        // Every report the tests read is also held to the documented schema.
        JsonSchemaCheck.AssertValid("check.schema.json", doc.RootElement);
        foreach (var f in doc.RootElement.GetProperty("findings").EnumerateArray())
        {
            string check = f.GetProperty("check").GetString()!;
            if (!findings.TryGetValue(check, out var list)) findings[check] = list = [];
            list.Add((f.GetProperty("severity").GetString()!, f.GetProperty("finding").GetString()!));
            Assert.NotNull(f.GetProperty("fix").GetString());
        }
        return new Report(result.ExitCode, findings, result.Stderr, result.Stdout);
    }

    private static string Severity(Report report, string check) => report.Findings[check].Select(f => f.Severity).OrderBy(Rank).Last();

    private static int Rank(string severity) => Array.IndexOf(["ok", "info", "warning", "critical"], severity);

    [Fact]
    public void Portcullis_with_defaults_has_no_critical_finding_and_limits_the_burst()
    {
        // TestServer's clients are loopback, which RRL exempts by default: exempt nobody, and one
        // bucket per address, so that the burst meets the limiter.
        // A large TXT RRset at the apex gives the truncation check something to truncate.
        string bigTxt = string.Concat(Enumerable.Range(0, 8).Select(i => $"@ TXT \"{new string((char)('a' + i), 100)}\"\n"));
        using var server = new TestServer(c => { c.RateLimit.ExemptClients = []; c.RateLimit.Ipv4PrefixLength = 32; },
            ("example.test", TestServer.ExampleZone + bigTxt));
        var report = Json(server.Address.ToString(), server.EndPoint.Port, "--zone", "example.test");
        Assert.DoesNotContain(report.Findings.Values.SelectMany(v => v), f => f.Severity == "critical");
        Assert.Equal("ok", Severity(report, "udp"));
        Assert.Equal("ok", Severity(report, "tcp"));
        Assert.Equal("ok", Severity(report, "zone"));
        Assert.Equal("ok", Severity(report, "open-resolver"));
        Assert.Equal("ok", Severity(report, "axfr"));
        Assert.Equal("ok", Severity(report, "rrl"));
        Assert.Equal("ok", Severity(report, "cookies"));
        Assert.Equal("ok", Severity(report, "any"));
        Assert.All(report.Findings["edns"], f => Assert.True(f.Severity == "ok", f.Text));
        Assert.Equal("info", Severity(report, "dnssec"));
        Assert.Equal("ok", Severity(report, "truncation"));
        Assert.Contains("TC=1", report.Findings["truncation"][0].Text);
        Assert.Contains("sending 100 identical queries", report.Stderr);
        Assert.Equal(report.Findings.Values.SelectMany(v => v).Any(f => f.Severity == "warning") ? 1 : 0, report.ExitCode);
    }

    [Fact]
    public void Knot_allowing_transfers_is_critical()
    {
        string dir = Directory.CreateTempSubdirectory("check-knot").FullName;
        try
        {
            string file = Path.Combine(dir, "example.test.zone");
            File.WriteAllText(file, TestServer.ExampleZone);
            using var knot = new KnotPeer([new PeerZone("example.test", file)], allowTransfer: true);
            var report = Json("127.0.0.1", knot.Port, "--zone", "example.test", "--no-burst");
            Assert.Equal("critical", Severity(report, "axfr"));
            Assert.Equal("ok", Severity(report, "open-resolver"));
            Assert.Equal("info", Severity(report, "rrl"));
            Assert.Equal(1, report.ExitCode);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Bind_with_open_recursion_is_critical_and_text_table_reads()
    {
        string dir = Directory.CreateTempSubdirectory("check-bind").FullName;
        try
        {
            string file = Path.Combine(dir, "example.test.zone");
            File.WriteAllText(file, TestServer.ExampleZone);
            // Open recursion; transfers refused so that the only critical finding is the resolver.
            using var bind = new BindPeer([new PeerZone("example.test", file)], "allow-transfer { none; };", recursion: true);
            var report = Json("127.0.0.1", bind.Port, "--zone", "example.test", "--no-burst");
            Assert.True(Severity(report, "open-resolver") == "critical", report.Raw);
            Assert.Equal(1, report.ExitCode);
            var text = Check("127.0.0.1", "-p", bind.Port.ToString(), "--zone", "example.test", "--no-burst");
            Assert.Contains("recursion offered to this client", text.Stdout);
            Assert.Contains("fix:", text.Stdout);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Rate_limiting_and_cookies_are_reported_as_the_peers_are_configured()
    {
        string dir = Directory.CreateTempSubdirectory("check-peers").FullName;
        try
        {
            string file = Path.Combine(dir, "example.test.zone");
            File.WriteAllText(file, TestServer.ExampleZone);
            var zones = new[] { new PeerZone("example.test", file) };
            using (var knot = new KnotPeer(zones, rrlRate: 5))
                Assert.Equal("ok", Severity(Json("127.0.0.1", knot.Port, "--zone", "example.test"), "rrl"));
            using (var knot = new KnotPeer(zones))
                Assert.Equal("warning", Severity(Json("127.0.0.1", knot.Port, "--zone", "example.test"), "rrl"));
            using (var bind = new BindPeer(zones, "allow-transfer { none; };"))
                Assert.Equal("ok", Severity(Json("127.0.0.1", bind.Port, "--zone", "example.test", "--no-burst"), "cookies"));
            using (var bind = new BindPeer(zones, "allow-transfer { none; }; answer-cookie no;"))
                Assert.Equal("info", Severity(Json("127.0.0.1", bind.Port, "--zone", "example.test", "--no-burst"), "cookies"));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Bind_disclosing_its_version_is_a_warning()
    {
        string dir = Directory.CreateTempSubdirectory("check-bind").FullName;
        try
        {
            string file = Path.Combine(dir, "example.test.zone");
            File.WriteAllText(file, TestServer.ExampleZone);
            using var bind = new BindPeer([new PeerZone("example.test", file)], "version \"9.x\"; allow-transfer { none; };");
            var report = Json("127.0.0.1", bind.Port, "--zone", "example.test", "--no-burst");
            Assert.Equal("warning", Severity(report, "version.bind"));
            Assert.Contains(report.Findings["version.bind"], f => f.Text.Contains("9.x"));
            Assert.True(Severity(report, "open-resolver") == "ok", report.Raw);
            Assert.True(Severity(report, "axfr") == "ok", report.Raw);
            Assert.Equal(1, report.ExitCode);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Usage_errors_and_unreachable_targets()
    {
        Assert.Equal(2, Check("127.0.0.1", "127.0.0.2").ExitCode);                  // one address per run
        Assert.Equal(2, Check("127.0.0.1", "--burst", "1001").ExitCode);
        Assert.Equal(2, Check().ExitCode);
        // A port nobody listens on: ICMP port unreachable over UDP, RST over TCP.
        var unreachable = Check("127.0.0.1", "-p", "9", "--timeout", "1", "--json");
        Assert.Equal(9, unreachable.ExitCode);
        Assert.False(JsonDocument.Parse(unreachable.Stdout).RootElement.GetProperty("reachable").GetBoolean());
    }

    /// <summary>The example zone moved to example.com: the name outside example.test the open-resolver check asks for.</summary>
    private static string ExampleCom => TestServer.ExampleZone.Replace("example.test", "example.com");

    [Fact]
    public void Unbound_offering_recursion_to_loopback_is_an_open_resolver()
    {
        // Portcullis is authoritative for both zones; Unbound resolves them through its stub zones.
        using var auth = new TestServer(("example.test", TestServer.ExampleZone), ("example.com", ExampleCom));
        using var unbound = new UnboundPeer("allow", [("example.test", auth.EndPoint), ("example.com", auth.EndPoint)]);
        var report = Json("127.0.0.1", unbound.Port, "--zone", "example.test", "--no-burst");
        Assert.True(Severity(report, "open-resolver") == "critical", report.Raw);
        Assert.Contains(report.Findings["open-resolver"], f => f.Text.Contains("www.example.com. A with RD=1 gave NOERROR ra, 1 answer(s)"));
        // A resolver answers example.test's SOA, but not with authority.
        Assert.Equal("warning", Severity(report, "zone"));
        Assert.Equal(1, report.ExitCode);
    }

    [Fact]
    public void Unbound_resolving_only_its_stub_zone_for_this_client_is_still_an_open_resolver()
    {
        // Names outside the stub are refused (local-zone "." refuse), but example.test is resolved
        // for this client: recursion is offered, which the audit must see.
        using var auth = new TestServer(("example.test", TestServer.ExampleZone));
        using var unbound = new UnboundPeer("allow", [("example.test", auth.EndPoint)]);
        var report = Json("127.0.0.1", unbound.Port, "--zone", "example.test", "--no-burst");
        Assert.True(Severity(report, "open-resolver") == "critical", report.Raw);
        Assert.Contains(report.Findings["open-resolver"], f => f.Text.Contains("example.test. SOA with RD=1 was answered recursively"));
    }

    [Fact]
    public void Unbound_refusing_this_client_is_no_open_resolver()
    {
        using var auth = new TestServer(("example.test", TestServer.ExampleZone), ("example.com", ExampleCom));
        using var unbound = new UnboundPeer("refuse", [("example.test", auth.EndPoint), ("example.com", auth.EndPoint)]);
        var report = Json("127.0.0.1", unbound.Port, "--zone", "example.test", "--no-burst");
        Assert.True(Severity(report, "open-resolver") == "ok", report.Raw);
        Assert.Contains("REFUSED", report.Findings["open-resolver"].Single().Text);
        Assert.Equal("ok", Severity(report, "udp"));
    }

    /// <summary>Eight 100-character strings: a TXT RRset of about 900 octets, the zone's largest answer.</summary>
    private static string BigTxt(string owner) =>
        string.Concat(Enumerable.Range(0, 8).Select(i => $"{owner} TXT \"{new string((char)('a' + i), 100)}\"\n"));

    [Fact]
    public void Amplification_names_the_largest_answer_guessed_or_found_in_the_transfer()
    {
        // Portcullis refuses AXFR: the big RRset is found among the guessed names (www TXT).
        using (var server = new TestServer(("example.test", TestServer.ExampleZone + BigTxt("www"))))
        {
            var report = Json(server.Address.ToString(), server.EndPoint.Port, "--zone", "example.test", "--no-burst");
            AssertLargest(report, "www.example.test. TXT");
            Assert.Contains($"sending {2 + 6 + 6} queries (ANY, DNSKEY and 12 of the zone's largest answers, guessed)", report.Stderr);
        }
        // Knot allows AXFR: the big RRset is at a name no guess tries, and the transfer finds it.
        string dir = Directory.CreateTempSubdirectory("check-knot").FullName;
        try
        {
            string file = Path.Combine(dir, "example.test.zone");
            File.WriteAllText(file, TestServer.ExampleZone + BigTxt("big"));
            using var knot = new KnotPeer([new PeerZone("example.test", file)], allowTransfer: true);
            var report = Json("127.0.0.1", knot.Port, "--zone", "example.test", "--no-burst");
            AssertLargest(report, "big.example.test. TXT");
            Assert.Matches(@"sending \d+ queries \(ANY, DNSKEY and \d+ of the zone's largest answers, from the transfer\)", report.Stderr);
        }
        finally { Directory.Delete(dir, true); }

        static void AssertLargest(Report report, string query)
        {
            var finding = Assert.Single(report.Findings["amplification"]);
            var m = Regex.Match(finding.Text, @"^largest ratio (\d+\.\d)x \((\S+ \S+): (\d+) octets for a (\d+)-octet query");
            Assert.True(m.Success, finding.Text);
            Assert.Equal(query, m.Groups[2].Value);
            double ratio = double.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture) / double.Parse(m.Groups[4].Value, CultureInfo.InvariantCulture);
            Assert.Equal(ratio.ToString("0.0", CultureInfo.InvariantCulture), m.Groups[1].Value);
            Assert.True(ratio > 10, finding.Text);   // about 900 octets for about 45
            Assert.Equal("warning", finding.Severity);
        }
    }
}
