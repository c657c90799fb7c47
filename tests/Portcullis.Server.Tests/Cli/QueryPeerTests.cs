using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.RegularExpressions;
using Portcullis.Protocol.Messages;
using Portcullis.Server.Tests.Support;
using Portcullis.Testing;

namespace Portcullis.Server.Tests.Cli;

/// <summary>
/// `portcullis query` against the other peers and options: Unbound as a resolver, IXFR and NSID
/// from Knot, IPv4/IPv6 selection, EDNS Client Subnet as sent on the wire. Each compared with dig.
/// </summary>
public sealed class QueryPeerTests
{
    private static ProcessResult Query(params string[] args) => ExternalProcess.Run("dotnet", [QueryCommandTests.Binary, "query", .. args]);

    private static JsonElement Json(params string[] args)
    {
        var result = Query([.. args, "--json"]);
        Assert.True(result.ExitCode == 0, $"exit {result.ExitCode}: {result.Stderr}");
        var json = JsonDocument.Parse(result.Stdout).RootElement.Clone();
        QueryCommandTests.AssertSchema(json);
        return json;
    }

    private static ProcessResult Dig(params string[] args) => ExternalProcess.Run("dig", ["+tries=1", "+time=5", .. args]).EnsureSuccess();

    /// <summary>A resolver's TTLs count down between two queries: compared without them.</summary>
    private static SortedSet<string> WithoutTtl(SortedSet<string> records) =>
        new(records.Select(r => Regex.Replace(r, @"^(\S+) \d+ ", "$1 * ")));

    [Fact]
    public void A_recursive_answer_from_unbound_has_ra_and_matches_dig()
    {
        using var auth = new TestServer(("example.test", TestServer.ExampleZone));
        using var unbound = new UnboundPeer("allow", [("example.test", auth.EndPoint)]);
        string[] at = ["@127.0.0.1", "-p", unbound.Port.ToString()];
        foreach (var query in new[] { "www.example.test A", "example.test MX", "ftp.example.test A", "nope.example.test TXT", "www.example.org A" })
        {
            var words = query.Split(' ');
            var ours = QueryCommandTests.FromJson(Json([.. at, .. words]));
            var theirs = QueryCommandTests.FromDig(Dig([.. at, "+nocmd", "+noall", "+answer", "+authority", "+additional", "+comments", .. words]).Stdout);
            Assert.Equal(theirs.Rcode, ours.Rcode);
            Assert.Equal(theirs.Flags, ours.Flags);
            Assert.Equal(WithoutTtl(theirs.Answer), WithoutTtl(ours.Answer));
            Assert.Equal(WithoutTtl(theirs.Authority), WithoutTtl(ours.Authority));
            if (query.StartsWith("www.example.org")) { Assert.Equal("REFUSED", ours.Rcode); continue; }   // outside the stub: refused, offline
            Assert.Equal("NOERROR", ours.Rcode);
            Assert.NotEmpty(ours.Answer);
            Assert.Contains("ra", ours.Flags);         // recursion available to this client
            Assert.DoesNotContain("aa", ours.Flags);   // and the answer is not authoritative
        }
        var text = Query([.. at, "www.example.test"]);
        Assert.Equal(0, text.ExitCode);
        Assert.Matches(@";; flags: qr rd ra; QUERY: 1, ANSWER: 1, ", text.Stdout);
        Assert.Matches(@"www\.example\.test\.\t\d+\tIN\tA\t192\.0\.2\.80", text.Stdout);
    }

    /// <summary>The answer records in order: an IXFR's meaning is in its order (old SOA, deletions, new SOA, additions).</summary>
    private static List<string> Ordered(JsonElement json) =>
        [.. json.GetProperty("answer").EnumerateArray().Select(r => QueryCommandTests.Normalize(r.GetProperty("name").GetString()!,
            r.GetProperty("ttl").GetUInt32().ToString(), r.GetProperty("class").GetString()!, r.GetProperty("type").GetString()!, r.GetProperty("data").GetString()!))];

    private static List<string> Ordered(string digOutput) =>
        [.. digOutput.Split('\n').Where(l => l.Length > 0 && !l.StartsWith(';')).Select(l => QueryCommandTests.Whitespace().Split(l.Trim(), 5))
            .Select(p => QueryCommandTests.Normalize(p[0], p[1], p[2], p[3], p[4]))];

    [Fact]
    public void Ixfr_from_knot_gives_what_dig_gets_incremental_current_or_whole()
    {
        string dir = Directory.CreateTempSubdirectory("query-ixfr").FullName;
        try
        {
            const uint oldSerial = 2024060101, newSerial = 2024060102;
            string file = Path.Combine(dir, "example.test.zone");
            File.WriteAllText(file, TestServer.ExampleZone);
            using var knot = new KnotPeer([new PeerZone("example.test", file)], allowTransfer: true, journalDifferences: true);
            // One change: www's address moves and a name is added; Knot journals the difference.
            File.WriteAllText(knot.ZoneFile("example.test"), TestServer.ExampleZone
                .Replace(oldSerial.ToString(), newSerial.ToString()).Replace("www                 A     192.0.2.80", "www                 A     192.0.2.81")
                + "added A 192.0.2.7\n");
            knot.ReloadZone("example.test", newSerial);
            string[] at = ["@127.0.0.1", "-p", knot.Port.ToString()];
            foreach (uint serial in new[] { oldSerial, newSerial, 2020010101u })
            {
                var json = Json([.. at, "example.test", $"IXFR={serial}"]);
                Assert.Equal("tcp", json.GetProperty("protocol").GetString());
                var ours = Ordered(json);
                var theirs = Ordered(Dig([.. at, "+nocmd", "+nostats", "example.test", $"IXFR={serial}"]).Stdout);
                Assert.Equal(theirs, ours);
                var soas = ours.Where(r => r.Contains(" SOA ")).Select(r => r.Split(' ')[6]).ToList();
                if (serial == oldSerial)
                {
                    // RFC 1995 §4: new SOA, then the diff (old SOA, deleted, new SOA, added), then new SOA.
                    Assert.Equal([$"{newSerial}", $"{oldSerial}", $"{newSerial}", $"{newSerial}"], soas);
                    Assert.Contains(ours, r => r.StartsWith("www.example.test. 3600 IN A 192.0.2.80"));
                    Assert.Contains(ours, r => r.StartsWith("added.example.test. 3600 IN A 192.0.2.7"));
                    Assert.Equal(7, ours.Count);
                }
                else if (serial == newSerial) Assert.Equal([$"{newSerial}"], soas);   // up to date: the SOA alone
                else Assert.Equal([$"{newSerial}", $"{newSerial}"], soas);           // not in the journal: the whole zone, AXFR-style
            }
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Nsid_from_knot_is_shown_as_dig_shows_it()
    {
        string dir = Directory.CreateTempSubdirectory("query-nsid").FullName;
        try
        {
            string file = Path.Combine(dir, "example.test.zone");
            File.WriteAllText(file, TestServer.ExampleZone);
            using var knot = new KnotPeer([new PeerZone("example.test", file)], nsid: "ns-portcullis-1");
            string[] at = ["@127.0.0.1", "-p", knot.Port.ToString()];
            var ours = Query([.. at, "example.test", "SOA", "--nsid"]);
            Assert.Equal(0, ours.ExitCode);
            var dig = Dig([.. at, "example.test", "SOA", "+nsid"]);
            string Line(string output) => output.Split('\n').Single(l => l.StartsWith("; NSID: "));
            Assert.Equal(Line(dig.Stdout), Line(ours.Stdout));
            var nsid = Json([.. at, "example.test", "SOA", "--nsid"]).GetProperty("edns").GetProperty("options").EnumerateArray()
                .Single(o => o.GetProperty("name").GetString() == "NSID");
            Assert.Equal("ns-portcullis-1", nsid.GetProperty("text").GetString());
            // Not asked, not given (RFC 5001 §2.1).
            Assert.DoesNotContain("NSID", Query([.. at, "example.test", "SOA"]).Stdout);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Ipv4_and_ipv6_servers_and_the_family_options()
    {
        int port = FreePort.ForUdpAndTcp();
        using var server = new TestServer(c => c.Listen = [$"127.0.0.1:{port}", $"[::1]:{port}"], ("example.test", TestServer.ExampleZone));
        string p = port.ToString();
        var v6 = Json("@::1", "-p", p, "-6", "www.example.test");
        Assert.Equal("::1", v6.GetProperty("server").GetString());
        var dig6 = QueryCommandTests.FromDig(Dig("-6", "@::1", "-p", p, "+nocmd", "+noall", "+answer", "+comments", "www.example.test").Stdout);
        Assert.Equal(dig6.Answer, QueryCommandTests.FromJson(v6).Answer);
        Assert.Contains($";; SERVER: ::1#{p}(TCP)", Query("@[::1]", "-p", p, "--tcp", "www.example.test").Stdout);
        Assert.Equal("127.0.0.1", Json("@127.0.0.1", "-p", p, "-4", "www.example.test").GetProperty("server").GetString());

        // A host name: -4 and -6 choose among its addresses (dig's -4/-6). This machine's
        // localhost may or may not have ::1; the expectation follows what the resolver says.
        Assert.Equal("127.0.0.1", Json("@localhost", "-p", p, "-4", "www.example.test").GetProperty("server").GetString());
        bool localhostV6 = Dns.GetHostAddresses("localhost").Any(a => a.AddressFamily == AddressFamily.InterNetworkV6);
        var six = Query("@localhost", "-p", p, "-6", "www.example.test", "--short");
        if (localhostV6) Assert.Equal((0, "192.0.2.80\n"), (six.ExitCode, six.Stdout));
        else
        {
            Assert.Equal(9, six.ExitCode);
            Assert.Equal("portcullis: localhost: no IPv6 address\n", six.Stderr);
        }

        // An address of the other family contradicts the option: a usage error, as dig refuses it.
        var wrong = Query("@::1", "-p", p, "-4", "www.example.test");
        Assert.Equal(2, wrong.ExitCode);
        Assert.Equal("portcullis: ::1: not an IPv4 address (-4 given)\n", wrong.Stderr);
        Assert.Equal(2, Query("@127.0.0.1", "-p", p, "-6", "www.example.test").ExitCode);
        Assert.Equal(2, Query("@127.0.0.1", "-p", p, "-4", "-6", "www.example.test").ExitCode);
    }

    /// <summary>
    /// EDNS Client Subnet: the option on the wire (captured by a loopback socket playing the server)
    /// must be what dig sends for the same +subnet, and the server's echo is shown as dig shows it.
    /// </summary>
    [Fact]
    public void Subnet_is_sent_as_dig_sends_it_and_the_echo_is_shown_like_dig()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        string port = ((IPEndPoint)socket.LocalEndPoint!).Port.ToString();
        (ClientSubnetOption Sent, string Output) Exchange(Func<ProcessResult> client)
        {
            var run = Task.Run(client);
            var buffer = new byte[4096];
            EndPoint from = new IPEndPoint(IPAddress.Any, 0);
            socket.ReceiveTimeout = 20_000;
            int n = socket.ReceiveFrom(buffer, ref from);
            var query = DnsMessage.Parse(buffer.AsSpan(0, n));
            var sent = Assert.Single(query.Edns!.Options.OfType<ClientSubnetOption>());
            // The reply: the question answered with no records, the option echoed with a scope of /24 (RFC 7871 §7.2.1).
            var reply = DnsMessage.CreateQuery(query.Questions[0].Name, query.Questions[0].Type, query.Questions[0].Class, query.Header.Id, query.Header.RecursionDesired);
            reply.Header.IsResponse = true;
            reply.Edns = new Edns { UdpPayloadSize = 1232 };
            reply.Edns.Options.Add(new ClientSubnetOption(IPAddress.Parse("192.0.2.0"), sent.SourcePrefixLength, 24));
            socket.SendTo(reply.ToWire(), from);
            var result = run.GetAwaiter().GetResult();
            Assert.True(result.ExitCode == 0, result.Stderr);
            return (sent, result.Stdout);
        }
        var ours = Exchange(() => Query("@127.0.0.1", "-p", port, "--subnet", "192.0.2.77/24", "www.example.test"));
        var dig = Exchange(() => ExternalProcess.Run("dig", ["@127.0.0.1", "-p", port, "+tries=1", "+time=5", "+subnet=192.0.2.77/24", "www.example.test"]));
        // RFC 7871 §6: family 1, source /24, scope 0, the address cut to 3 octets with the host bits zero.
        Assert.Equal(ClientSubnetOption.FamilyIPv4, ours.Sent.Family);
        Assert.Equal((24, 0), (ours.Sent.SourcePrefixLength, ours.Sent.ScopePrefixLength));
        Assert.Equal(Convert.ToHexString(dig.Sent.GetData()), Convert.ToHexString(ours.Sent.GetData()));
        string Line(string output) => output.Split('\n').Single(l => l.StartsWith("; CLIENT-SUBNET: "));
        Assert.Equal("; CLIENT-SUBNET: 192.0.2.0/24/24", Line(ours.Output));
        Assert.Equal(Line(dig.Output), Line(ours.Output));
    }
}
