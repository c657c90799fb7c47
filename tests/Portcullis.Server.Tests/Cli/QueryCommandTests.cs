using System.Text.Json;
using System.Text.RegularExpressions;
using Portcullis.Server.Tests.Support;
using Portcullis.Testing;

namespace Portcullis.Server.Tests.Cli;

/// <summary>
/// `portcullis query` as an operator runs it: the real binary against an in-process Portcullis on
/// 127.0.0.x (and Knot for a transfer), its JSON compared with dig's view of the same query.
/// </summary>
public sealed partial class QueryCommandTests : IDisposable
{
    /// <summary>The example zone plus an RRset too large for a 1232-octet UDP reply.</summary>
    private static readonly string Zone = TestServer.ExampleZone + "\n" + string.Concat(
        Enumerable.Range(0, 60).Select(i => $"big TXT \"large record number {i:D2} padding padding padding\"\n"));

    private readonly TestServer _server = new(("example.test", Zone));

    public void Dispose() => _server.Dispose();

    internal static string Binary => Path.Combine(AppContext.BaseDirectory, "portcullis.dll");

    private static ProcessResult Query(params string[] args) => ExternalProcess.Run("dotnet", [Binary, "query", .. args]);

    private string[] At => [$"@{_server.Address}", "-p", _server.EndPoint.Port.ToString()];

    internal sealed record View(string Rcode, SortedSet<string> Flags, SortedSet<string> Answer, SortedSet<string> Authority, SortedSet<string> Additional);

    internal static string Normalize(string name, string ttl, string @class, string type, string data) =>
        $"{name.ToLowerInvariant()} {ttl} {@class} {type} {Whitespace().Replace(data.Trim(), " ")}";

    [GeneratedRegex(@"\s+")]
    internal static partial Regex Whitespace();

    internal static View FromJson(JsonElement root)
    {
        var header = root.GetProperty("header");
        var flags = new SortedSet<string>(header.GetProperty("flags").EnumerateObject().Where(p => p.Value.GetBoolean()).Select(p => p.Name));
        SortedSet<string> Section(string name) => new(root.GetProperty(name).EnumerateArray().Select(r => Normalize(
            r.GetProperty("name").GetString()!, r.GetProperty("ttl").GetUInt32().ToString(), r.GetProperty("class").GetString()!,
            r.GetProperty("type").GetString()!, r.GetProperty("data").GetString()!)));
        return new View(header.GetProperty("rcode").GetString()!, flags, Section("answer"), Section("authority"), Section("additional"));
    }

    internal static View FromDig(string output)
    {
        string rcode = Regex.Match(output, @"status: (\w+)").Groups[1].Value;
        var flags = new SortedSet<string>(Regex.Match(output, @";; flags:([^;]*);").Groups[1].Value.Split(' ', StringSplitOptions.RemoveEmptyEntries));
        var sections = new Dictionary<string, SortedSet<string>> { ["ANSWER"] = [], ["AUTHORITY"] = [], ["ADDITIONAL"] = [] };
        SortedSet<string>? current = null;
        foreach (var line in output.Split('\n'))
        {
            var m = Regex.Match(line, @"^;; (\w+) SECTION:");
            if (m.Success) { current = sections.GetValueOrDefault(m.Groups[1].Value); continue; }
            if (line.Length == 0 || line.StartsWith(';')) { if (line.Length == 0) current = null; continue; }
            var parts = Whitespace().Split(line.Trim(), 5);
            current?.Add(Normalize(parts[0], parts[1], parts[2], parts[3], parts.Length > 4 ? parts[4] : ""));
        }
        return new View(rcode, flags, sections["ANSWER"], sections["AUTHORITY"], sections["ADDITIONAL"]);
    }

    private JsonElement Json(params string[] args)
    {
        var result = Query([.. At, "--json", .. args]);
        Assert.True(result.ExitCode == 0, $"exit {result.ExitCode}: {result.Stderr}");
        return JsonDocument.Parse(result.Stdout).RootElement.Clone();
    }

    [Theory]
    [InlineData("www.example.test A")]
    [InlineData("www.example.test AAAA")]
    [InlineData("example.test MX")]
    [InlineData("nope.x.b.ent.example.test A")]
    [InlineData("www.sub.example.test A")]
    [InlineData("_dmarc.example.test TXT")]
    [InlineData("example.test ANY --tcp")]
    [InlineData("big.example.test TXT")]
    [InlineData("version.bind TXT CH")]
    public void Json_output_matches_dig(string query)
    {
        var words = query.Split(' ');
        var digArgs = words.Select(w => w == "--tcp" ? "+tcp" : w).ToArray();
        var json = Json(words);
        var dig = ExternalProcess.Run("dig", [$"@{_server.Address}", "-p", _server.EndPoint.Port.ToString(), "+tries=1", "+time=5",
            "+nocmd", "+noall", "+answer", "+authority", "+additional", "+comments", .. digArgs]).EnsureSuccess();
        var ours = FromJson(json);
        var theirs = FromDig(dig.Stdout);
        Assert.Equal(theirs.Rcode, ours.Rcode);
        // Guards the parsers: an answer both sides failed to read would compare equal.
        if (theirs.Rcode == "NOERROR" && !query.Contains("sub.")) Assert.NotEmpty(ours.Answer);
        Assert.Equal(theirs.Flags, ours.Flags);
        Assert.Equal(theirs.Answer, ours.Answer);
        Assert.Equal(theirs.Authority, ours.Authority);
        Assert.Equal(theirs.Additional, ours.Additional);
        AssertSchema(json);
    }

    [Fact]
    public void A_truncated_udp_answer_is_retried_over_tcp_unless_told_not_to()
    {
        var json = Json("big.example.test", "TXT");
        Assert.Equal("tcp", json.GetProperty("protocol").GetString());
        Assert.Equal(60, json.GetProperty("answer").GetArrayLength());
        var ignored = Json("big.example.test", "TXT", "--ignore-tc");
        Assert.Equal("udp", ignored.GetProperty("protocol").GetString());
        Assert.True(ignored.GetProperty("header").GetProperty("flags").GetProperty("tc").GetBoolean());
    }

    [Fact]
    public void Short_prints_only_the_answer_rdata()
    {
        var result = Query([.. At, "www.example.test", "--short"]);
        Assert.Equal(0, result.ExitCode);
        Assert.Equal("192.0.2.80\n", result.Stdout);
        var mx = Query([.. At, "example.test", "MX", "--short"]);
        Assert.Equal("10 mail.example.test.\n", mx.Stdout);
    }

    [Fact]
    public void Text_output_has_the_dig_layout()
    {
        var result = Query([.. At, "example.test", "MX"]);
        Assert.Equal(0, result.ExitCode);
        Assert.Matches(@";; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: \d+", result.Stdout);
        Assert.Matches(@";; flags: qr aa rd; QUERY: 1, ANSWER: 1, AUTHORITY: 0, ADDITIONAL: 3", result.Stdout);
        Assert.Contains(";; OPT PSEUDOSECTION:\n; EDNS: version: 0, flags:; udp: 1232", result.Stdout);
        Assert.Contains(";; ANSWER SECTION:\nexample.test.\t3600\tIN\tMX\t10 mail.example.test.", result.Stdout);
        Assert.Contains($";; SERVER: {_server.Address}#{_server.EndPoint.Port}(UDP)", result.Stdout);
        Assert.Matches(@";; Query time: \d+ msec", result.Stdout);
        Assert.Contains(";; MSG SIZE  rcvd: ", result.Stdout);
    }

    [Fact]
    public void Nothing_listening_exits_9_with_one_line_on_stderr()
    {
        int port = FreePort.ForUdpAndTcp();
        var udp = Query($"@{_server.Address}", "-p", port.ToString(), "--timeout", "1", "--retries", "0", "example.test");
        Assert.Equal(9, udp.ExitCode);
        Assert.Matches(@"^portcullis: no reply from [\d.]+:\d+ over UDP: .+\n$", udp.Stderr);
        var tcp = Query($"@{_server.Address}", "-p", port.ToString(), "--timeout", "1", "--tcp", "example.test");
        Assert.Equal(9, tcp.ExitCode);
        Assert.StartsWith("portcullis: no reply", tcp.Stderr);
    }

    [Theory]
    [InlineData("--tsig", "k:hmac-sha256:AAAA", "example.test")]
    [InlineData("--bogus", "example.test")]
    [InlineData("example.test", "IXFR")]
    [InlineData("--subnet", "192.0.2.0/33", "example.test")]
    [InlineData("--cookie=abc", "example.test")]
    public void Usage_errors_exit_2(params string[] args)
    {
        var result = Query([.. At, .. args]);
        Assert.Equal(2, result.ExitCode);
        Assert.StartsWith("portcullis: ", result.Stderr);
        Assert.DoesNotContain("   at ", result.Stderr);
        if (args[0] == "--tsig") Assert.Contains("--tsig secret of key 'k': 3 octets, fewer than 16", result.Stderr);
    }

    [Fact]
    public void The_server_cookie_is_printed_and_in_the_json()
    {
        const string client = "0102030405060708";
        var text = Query([.. At, "www.example.test", $"--cookie={client}"]);
        Assert.Matches($"; COOKIE: {client}[0-9a-f]{{32}}\n", text.Stdout);
        var json = Json("www.example.test", "--cookie");
        var cookie = json.GetProperty("edns").GetProperty("options").EnumerateArray().Single(o => o.GetProperty("name").GetString() == "COOKIE");
        Assert.Equal(16, cookie.GetProperty("client").GetString()!.Length);
        Assert.Equal(32, cookie.GetProperty("server").GetString()!.Length);
        var echoed = Json("www.example.test", $"--cookie={client}");
        Assert.Equal(client, echoed.GetProperty("edns").GetProperty("options")[0].GetProperty("client").GetString());
    }

    [Fact]
    public void No_edns_sends_no_opt_and_gets_none_back()
    {
        var json = Json("www.example.test", "--no-edns");
        Assert.Equal(JsonValueKind.Null, json.GetProperty("edns").ValueKind);
        Assert.Equal(0, json.GetProperty("header").GetProperty("arcount").GetInt32());
    }

    [Fact]
    public void Axfr_from_knot_gives_every_record_dig_gets()
    {
        string file = Path.Combine(_server.Directory, "knot-example.test.zone");
        File.WriteAllText(file, TestServer.ExampleZone);
        using var knot = new KnotPeer([new PeerZone("example.test", file)], allowTransfer: true);
        var result = Query("@127.0.0.1", "-p", knot.Port.ToString(), "--json", "example.test", "AXFR");
        Assert.True(result.ExitCode == 0, result.Stderr);
        var json = JsonDocument.Parse(result.Stdout).RootElement;
        AssertSchema(json);
        Assert.Equal("tcp", json.GetProperty("protocol").GetString());
        var ours = FromJson(json).Answer;
        var dig = ExternalProcess.Run("dig", ["@127.0.0.1", "-p", knot.Port.ToString(), "+nocmd", "+nostats", "example.test", "AXFR"]).EnsureSuccess();
        var theirs = new SortedSet<string>(dig.Stdout.Split('\n').Where(l => l.Length > 0 && !l.StartsWith(';'))
            .Select(l => Whitespace().Split(l.Trim(), 5)).Select(p => Normalize(p[0], p[1], p[2], p[3], p[4])));
        Assert.Equal(theirs, ours);
        Assert.Equal(2, json.GetProperty("answer").EnumerateArray().Count(r => r.GetProperty("type").GetString() == "SOA"));
        var refused = Query([.. At, "example.test", "AXFR", "--json"]);   // Portcullis allows no transfers by default
        Assert.Equal("REFUSED", JsonDocument.Parse(refused.Stdout).RootElement.GetProperty("header").GetProperty("rcode").GetString());
        // In the text output the refusal says why, as dig's "; Transfer failed." does.
        Assert.Contains("; Transfer failed: REFUSED (EDE: 18 (Prohibited))", Query([.. At, "example.test", "AXFR"]).Stdout);
    }

    /// <summary>docs/query.schema.json, checked by the shared <see cref="JsonSchemaCheck"/>.</summary>
    internal static void AssertSchema(JsonElement value) => JsonSchemaCheck.AssertValid("query.schema.json", value);
}
