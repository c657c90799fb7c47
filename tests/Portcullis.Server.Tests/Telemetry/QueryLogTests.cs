using System.Net;
using System.Text.Json;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Records;
using Portcullis.Server.Configuration;
using Portcullis.Server.Telemetry;
using Portcullis.Server.Tests.Support;
using Portcullis.Testing;
using Portcullis.Transport;
using Xunit;

namespace Portcullis.Server.Tests.Telemetry;

/// <summary>
/// query-log: one JSON line per query, read back by jq and System.Text.Json: the fields match what
/// was asked and answered; sampling, filters and rotation do what the configuration says; a slow
/// consumer costs dropped (counted) lines, never a blocked query path.
/// </summary>
public sealed class QueryLogTests
{
    private static string TempLog() => Path.Combine(Path.GetTempPath(), $"portcullis-querylog-{Guid.NewGuid():N}", "queries.jsonl");

    private static List<JsonElement> Lines(string path) =>
        File.ReadAllLines(path).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();

    [Fact]
    public async Task Every_query_answered_over_UDP_and_TCP_is_a_JSON_line_that_jq_reads()
    {
        var log = TempLog();
        try
        {
            using (var server = new TestServer(c =>
            {
                c.QueryLog.File = log;
                c.AllowQuery = ["127.0.0.1"];   // 127.0.0.2 is refused: the acl-refused policy shows in the log
            }, ("example.test.", TestServer.ExampleZone)))
            {
                Assert.NotEmpty(server.Client().Udp("www.example.test.", RecordType.A).Answers);
                Assert.Equal(Rcode.NXDomain, server.Client().Udp("nope.ent.example.test.", RecordType.AAAA, edns: true).Rcode);
                Assert.NotEmpty(server.Client().Tcp("Example.TEST.", RecordType.MX).Answers);
                Assert.Equal(Rcode.Refused, server.ClientFrom("127.0.0.2").Udp("www.example.test.", RecordType.TXT).Rcode);
                await server.Server.QueryEvents!.DrainAsync();

                var lines = Lines(log);
                Assert.Equal(4, lines.Count);
                var www = lines[0];
                Assert.Equal("www.example.test.", www.GetProperty("qname").GetString());
                Assert.Equal("A", www.GetProperty("qtype").GetString());
                Assert.Equal("IN", www.GetProperty("qclass").GetString());
                Assert.Equal("NOERROR", www.GetProperty("rcode").GetString());
                Assert.Equal("udp", www.GetProperty("proto").GetString());
                Assert.Equal("127.0.0.1", www.GetProperty("client").GetString());
                Assert.Equal("qr aa", www.GetProperty("flags").GetString());
                Assert.True(www.GetProperty("rsize").GetInt32() > www.GetProperty("qsize").GetInt32());
                Assert.True(www.GetProperty("latency_us").GetInt64() >= 0);
                Assert.Equal("none", www.GetProperty("policy").GetString());
                Assert.True(DateTime.Parse(www.GetProperty("time").GetString()!, null, System.Globalization.DateTimeStyles.RoundtripKind).Year >= 2024);

                Assert.Equal("NXDOMAIN", lines[1].GetProperty("rcode").GetString());
                Assert.Equal("AAAA", lines[1].GetProperty("qtype").GetString());
                Assert.Equal("tcp", lines[2].GetProperty("proto").GetString());
                Assert.Equal("Example.TEST.", lines[2].GetProperty("qname").GetString());   // case as sent
                Assert.Equal("REFUSED", lines[3].GetProperty("rcode").GetString());
                Assert.Equal("acl-refused", lines[3].GetProperty("policy").GetString());
                Assert.Equal("127.0.0.2", lines[3].GetProperty("client").GetString());
            }
            // jq, as an operator would: the names of the refused queries.
            var jq = ExternalProcess.Run("jq", ["-r", "select(.policy != \"none\") | .qname + \" \" + .qtype + \" \" + .client", log]).EnsureSuccess();
            Assert.Equal("www.example.test. TXT 127.0.0.2", jq.Stdout.Trim());
            var count = ExternalProcess.Run("jq", ["-s", "length", log]).EnsureSuccess();
            Assert.Equal("4", count.Stdout.Trim());
        }
        finally { Directory.Delete(Path.GetDirectoryName(log)!, recursive: true); }
    }

    [Fact]
    public async Task Sampling_logs_one_query_in_N_and_filters_keep_only_what_they_name()
    {
        var sampled = TempLog();
        var nx = TempLog();
        try
        {
            using (var server = new TestServer(c =>
            {
                c.QueryLog.File = sampled;
                c.QueryLog.Sample = 10;
            }, ("example.test.", TestServer.ExampleZone)))
            {
                for (int i = 0; i < 100; i++) server.Client().Udp("www.example.test.", RecordType.A);
                await server.Server.QueryEvents!.DrainAsync();
                Assert.Equal(10, Lines(sampled).Count);
            }
            using (var server = new TestServer(c =>
            {
                c.QueryLog.File = nx;
                c.QueryLog.Rcodes = ["NXDOMAIN"];
                c.QueryLog.Qtypes = ["A", "AAAA"];
            }, ("example.test.", TestServer.ExampleZone)))
            {
                for (int i = 0; i < 5; i++) server.Client().Udp($"missing{i}.ent.example.test.", RecordType.A);
                server.Client().Udp("missing.ent.example.test.", RecordType.TXT);      // NXDOMAIN, but TXT
                server.Client().Udp("www.example.test.", RecordType.A);            // A, but NOERROR
                await server.Server.QueryEvents!.DrainAsync();
                var lines = Lines(nx);
                Assert.Equal(5, lines.Count);
                Assert.All(lines, l => Assert.Equal("NXDOMAIN", l.GetProperty("rcode").GetString()));
            }
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(sampled)!, recursive: true);
            Directory.Delete(Path.GetDirectoryName(nx)!, recursive: true);
        }
    }

    [Fact]
    public async Task The_log_rotates_by_size_and_keeps_the_configured_number_of_files()
    {
        var log = TempLog();
        try
        {
            using var server = new TestServer(c =>
            {
                c.QueryLog.File = log;
                c.QueryLog.MaxSize = "2K";
                c.QueryLog.Keep = 2;
            }, ("example.test.", TestServer.ExampleZone));
            for (int i = 0; i < 60; i++) server.Client().Udp($"name{i:D3}.example.test.", RecordType.A);
            await server.Server.QueryEvents!.DrainAsync();

            Assert.True(File.Exists(log));
            Assert.True(File.Exists(log + ".1"));
            Assert.True(File.Exists(log + ".2"));
            Assert.False(File.Exists(log + ".3"));
            foreach (var f in new[] { log, log + ".1", log + ".2" })
            {
                Assert.InRange(new FileInfo(f).Length, 1, 2048);
                Assert.All(Lines(f), l => Assert.StartsWith("name", l.GetProperty("qname").GetString()));
            }
            // The newest lines are in FILE, the ones before in FILE.1: nothing between them was lost.
            var newest = Lines(log).Select(l => l.GetProperty("qname").GetString()).ToList();
            var before = Lines(log + ".1").Select(l => l.GetProperty("qname").GetString()).ToList();
            Assert.Equal("name059.example.test.", newest[^1]);
            int first = int.Parse(newest[0]![4..7]);
            Assert.Equal($"name{first - 1:D3}.example.test.", before[^1]);
        }
        finally { Directory.Delete(Path.GetDirectoryName(log)!, recursive: true); }
    }

    /// <summary>An observer that blocks until released: a disk that stopped answering.</summary>
    private sealed class StuckObserver : IQueryObserver
    {
        public readonly ManualResetEventSlim Release = new();
        public int Seen;
        public void Observe(in QueryEvent e) { Release.Wait(); Seen++; }
        public void Flush() { }
    }

    [Fact]
    public async Task A_stuck_writer_costs_counted_drops_and_never_blocks_the_poster()
    {
        var stuck = new StuckObserver();
        await using var hub = new QueryEventHub([stuck], capacity: 16);
        var query = DnsTestClient.Query("www.example.test.", RecordType.A).ToWire();
        var client = new IPEndPoint(IPAddress.Loopback, 5353).Serialize();
        for (int i = 0; i < 200; i++) hub.Post(query, default, TransportKind.Udp, client, 0);   // returns although nothing is written

        Assert.InRange(hub.Dropped, 200 - 17, 200 - 16);   // the queue holds 16, the observer may hold one more
        stuck.Release.Set();
        await hub.DrainAsync();
        Assert.Equal(200, hub.Dropped + stuck.Seen);
        Assert.Equal(stuck.Seen, hub.Observed);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task The_smallest_rings_still_deliver_and_stop(int capacity)
    {
        var observer = new StuckObserver();
        observer.Release.Set();
        var hub = new QueryEventHub([observer], capacity);
        var query = DnsTestClient.Query("www.example.test.", RecordType.A).ToWire();
        var client = new IPEndPoint(IPAddress.Loopback, 5353).Serialize();
        for (int i = 0; i < 50; i++)
        {
            hub.Post(query, default, TransportKind.Udp, client, 0);
            await hub.DrainAsync();
        }
        await hub.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(50, observer.Seen + hub.Dropped);
        Assert.True(observer.Seen > 0);
    }

    [Fact]
    public async Task Posting_from_the_query_path_allocates_nothing()
    {
        var stuck = new StuckObserver();
        stuck.Release.Set();
        await using var hub = new QueryEventHub([stuck], capacity: 4096);
        var query = DnsTestClient.Query("www.example.test.", RecordType.A).ToWire();
        var response = new byte[64];
        query.CopyTo(response, 0);
        var client = new IPEndPoint(IPAddress.Loopback, 5353).Serialize();
        hub.Post(query, response, TransportKind.Udp, client, 0, QueryPolicy.RpzNxdomain, "rpz.test");
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++) hub.Post(query, response, TransportKind.Udp, client, 0, QueryPolicy.RpzNxdomain, "rpz.test");
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        await hub.DrainAsync();
        Assert.Equal(1001, stuck.Seen + hub.Dropped);
    }

    [Fact]
    public void Names_with_odd_bytes_are_escaped_so_the_line_stays_one_valid_JSON_object()
    {
        byte[] wire = [5, (byte)'a', (byte)'"', (byte)'.', 0xC3, (byte)'\\', 4, (byte)'t', (byte)'e', (byte)'s', (byte)'t', 0];
        var line = QueryLog.FormatLine(new QueryEvent
        {
            Time = new DateTime(2026, 11, 30, 6, 1, 2, DateTimeKind.Utc),
            Client = [192, 0, 2, 1],
            Qname = wire,
            QType = RecordType.NULL,
            QClass = RecordClass.IN,
            ResponseSize = 0,
            Policy = QueryPolicy.RpzNxdomain,
            PolicyName = "block\"list\u0001é",
        });
        Assert.EndsWith("\n", line);
        var json = JsonDocument.Parse(line).RootElement;
        Assert.Equal("a\\\"\\.\\195\\\\.test.", json.GetProperty("qname").GetString());   // RFC 1035 presentation form
        Assert.Equal("DROPPED", json.GetProperty("rcode").GetString());
        Assert.Equal("2026-11-30T06:01:02.000000Z", json.GetProperty("time").GetString());
        Assert.Equal("rpz-nxdomain", json.GetProperty("policy").GetString());
        Assert.Equal("block\"list\u0001é", json.GetProperty("policy_name").GetString());
    }

    [Theory]
    [InlineData("query-log: { file: q.log, sample: 0 }", "sample must be at least 1")]
    [InlineData("query-log: { file: q.log, max-size: 10X }", "max-size")]
    [InlineData("query-log: { file: q.log, rcodes: [ NOPE ] }", "'NOPE' is not an RCODE")]
    [InlineData("query-log: { file: q.log, qtypes: [ BOGUS ] }", "'BOGUS' is not a record type")]
    public void Bad_query_log_settings_are_errors_that_name_the_file_and_line(string yaml, string expected)
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(yaml, "/etc/portcullis.yaml"));
        Assert.Contains("/etc/portcullis.yaml:1", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public async Task Recursive_answers_sent_later_are_logged_and_the_upstream_exchange_is_in_dnstap_as_resolver_messages()
    {
        var log = TempLog();
        var tap = Path.Combine(Path.GetDirectoryName(log)!, "resolver.fstrm");
        Directory.CreateDirectory(Path.GetDirectoryName(log)!);
        try
        {
            using var upstream = new TestServer(("example.test.", TestServer.ExampleZone));
            using (var resolver = new TestServer(c =>
            {
                var self = ServerConfig.ParseEndPoint(c.Listen[0]).Address.ToString();
                c.Recursion.Enabled = true;
                c.Recursion.Forwarders = [$"{upstream.Address}@{upstream.EndPoint.Port}"];
                c.Recursion.DnssecValidation = false;   // an unsigned upstream
                c.Recursion.OutgoingInterface = [self];
                c.QueryLog.File = log;
                c.Dnstap.File = tap;
            }))
            {
                var q = DnsTestClient.Query("www.example.test.", RecordType.A, edns: true);
                q.Header.RecursionDesired = true;
                var answer = DnsMessage.Parse(resolver.Client().UdpRaw(q.ToWire()));
                Assert.Equal(Rcode.NoError, answer.Rcode);
                Assert.NotEmpty(answer.Answers);
                Assert.True(answer.Header.RecursionAvailable);
                await resolver.Server.QueryEvents!.DrainAsync();
                var line = Assert.Single(Lines(log));
                Assert.Equal("www.example.test.", line.GetProperty("qname").GetString());
                Assert.Equal("qr rd ra", line.GetProperty("flags").GetString());
                Assert.True(line.GetProperty("rsize").GetInt32() > 0);
            }
            var lines = ExternalProcess.Run("dnstap-read", [tap]).EnsureSuccess().Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Contains(lines, l => l.Contains(" CQ ") && l.Contains("www.example.test/IN/A"));
            Assert.Contains(lines, l => l.Contains(" CR ") && l.Contains("www.example.test/IN/A"));
            Assert.Contains(lines, l => l.Contains(" RQ ") && l.Contains($"{upstream.Address}:{upstream.EndPoint.Port}"));
            Assert.Contains(lines, l => l.Contains(" RR ") && l.Contains($"{upstream.Address}:{upstream.EndPoint.Port}"));
        }
        finally { Directory.Delete(Path.GetDirectoryName(log)!, recursive: true); }
    }

    [Theory]
    [InlineData("192.0.2.1")]
    [InlineData("0.0.0.0")]
    [InlineData("255.255.255.255")]
    [InlineData("::")]
    [InlineData("::1")]
    [InlineData("2001:db8::1")]
    [InlineData("2001:db8:0:0:1:0:0:1")]
    [InlineData("fe80::")]
    [InlineData("2001:db8:1:2:3:4:5:6")]
    [InlineData("2001:0:0:1::1")]
    public void Addresses_are_written_as_the_framework_writes_them_without_allocating(string text)
    {
        var address = IPAddress.Parse(text);
        var bytes = address.GetAddressBytes();
        Span<char> into = stackalloc char[AddressText.MaxLength];
        AddressText.Format(bytes, into);   // warm
        long before = GC.GetAllocatedBytesForCurrentThread();
        int n = AddressText.Format(bytes, into);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(address.ToString(), into[..n].ToString());
    }
}
