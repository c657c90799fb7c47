using System.Text.Json;
using Portcullis.Server.Tests.Support;
using Portcullis.Testing;
using Xunit;

namespace Portcullis.Server.Tests.Detection;

/// <summary>
/// Debian's iodine carries a TCP connection over DNS with Portcullis as the only resolver between
/// the client (in a network namespace of its own) and iodined (authoritative for the tunnel domain,
/// reached through a forward-zone): the tunnel comes up, data crosses it intact both ways, and the
/// server's query log holds the tunnel's queries, as the tunnel detector will see them.
/// </summary>
public sealed class IodineTunnelTests
{
    [Theory]
    [InlineData("NULL", "")]                       // iodine's own choice: NULL records, raw binary downstream
    [InlineData("TXT", "-T TXT -O Base64")]
    [InlineData("CNAME", "-T CNAME")]              // data in the answer's hostname (Base128 here)
    public async Task A_TCP_connection_crosses_an_iodine_tunnel_that_runs_through_the_resolver_and_every_query_is_logged(
        string recordType, string iodineOptions)
    {
        string[] options = iodineOptions.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var log = Path.Combine(Path.GetTempPath(), $"portcullis-iodine-{Guid.NewGuid():N}", "queries.jsonl");
        try
        {
            using var tunnel = new IodineTunnel();
            using var server = new TestServer(c =>
            {
                c.Listen = [$"{tunnel.ResolverAddress}:53"];
                c.AllowRecursion = [tunnel.ClientNetwork];
                c.Recursion.Enabled = true;
                c.Recursion.ForwardZones[IodineTunnel.Domain] = [tunnel.ForwarderSpec];
                // The tunnel's zone is unsigned and outside any signed tree: a negative trust anchor, as an operator would set.
                c.Recursion.NegativeTrustAnchors = [IodineTunnel.Domain];
                c.Recursion.OutgoingInterface = [tunnel.OutgoingAddress.ToString()];
                c.QueryLog.File = log;
                c.Detection.Enabled = true;   // alert only (the default action): the tunnel keeps working
                c.Detection.AlertLog = Path.Combine(Path.GetDirectoryName(log)!, "alerts.jsonl");
            });
            TunnelTransfer transfer;
            using (var client = tunnel.Connect(options))
            {
                transfer = tunnel.Transfer(upload: 20_000, download: 20_000);
                Assert.False(client.HasExited, client.Output);
            }
            Assert.True(transfer.UploadIntact, $"upload: sent {transfer.ClientSent}, received {transfer.ServerReceived}");
            Assert.True(transfer.DownloadIntact, $"download: sent {transfer.ServerSent}, received {transfer.ClientReceived}");

            await server.Server.QueryEvents!.DrainAsync();
            var lines = File.ReadAllLines(log).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();
            var tunnelLines = lines.Where(l => l.GetProperty("qname").GetString()!
                .EndsWith(".t.tunnel.test.", StringComparison.OrdinalIgnoreCase)).ToList();
            // 20,000 random octets up in Base32 hostnames of at most 255 octets need well over 100
            // queries; every one came from the client inside the namespace, over UDP.
            Assert.True(tunnelLines.Count >= 100, $"{tunnelLines.Count} tunnel queries in the log");
            Assert.All(tunnelLines, l => Assert.Equal(tunnel.ClientAddress.ToString(), l.GetProperty("client").GetString()));
            Assert.All(tunnelLines, l => Assert.Equal("udp", l.GetProperty("proto").GetString()));
            int ofType = tunnelLines.Count(l => l.GetProperty("qtype").GetString() == recordType);
            Assert.True(ofType * 2 > tunnelLines.Count, $"{ofType} of {tunnelLines.Count} tunnel queries are {recordType}");
            // Most answers went back (NOERROR); lazy mode's long-held queries may end in SERVFAIL.
            int answered = tunnelLines.Count(l => l.GetProperty("rcode").GetString() == "NOERROR");
            Assert.True(answered * 2 > tunnelLines.Count, $"{answered} of {tunnelLines.Count} tunnel queries answered NOERROR");

            // The detector, watching the same traffic live, flagged the tunnel's registered domain.
            var alerts = File.ReadAllLines(server.Config.Detection.AlertLog!).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();
            Assert.Contains(alerts, a => a.TryGetProperty("domain", out var d) && d.GetString() == "tunnel.test.");
        }
        finally
        {
            try { Directory.Delete(Path.GetDirectoryName(log)!, recursive: true); } catch (DirectoryNotFoundException) { }
        }
    }

    /// <summary>
    /// The labelled tunnel captures (bench/detect/capture-iodine.sh) that the detector's evaluation
    /// replays: every line of every file is a query-log line of a query in the tunnel domain, and the
    /// set covers the record types iodine was made to use.
    /// </summary>
    [Fact]
    public void The_captured_iodine_sessions_are_query_log_lines_of_tunnel_queries_of_several_record_types()
    {
        var files = Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "Detection", "Data"), "iodine-*.jsonl");
        Assert.True(files.Length >= 6, $"{files.Length} capture files");
        var types = new HashSet<string>();
        foreach (var file in files)
        {
            Assert.True(new FileInfo(file).Length < 1_000_000, $"{file} is over 1 MB");
            int lines = 0;
            foreach (var line in File.ReadLines(file))
            {
                using var json = JsonDocument.Parse(line);
                var e = json.RootElement;
                Assert.EndsWith(".t.tunnel.test.", e.GetProperty("qname").GetString()!, StringComparison.OrdinalIgnoreCase);
                Assert.Equal("IN", e.GetProperty("qclass").GetString());
                Assert.True(e.GetProperty("qsize").GetInt32() > 12, line);
                Assert.True(e.GetProperty("latency_us").GetInt64() >= 0, line);
                Assert.True(DateTime.TryParse(e.GetProperty("time").GetString(), null, System.Globalization.DateTimeStyles.RoundtripKind, out _), line);
                types.Add(e.GetProperty("qtype").GetString()!);
                lines++;
            }
            Assert.True(lines >= 300, $"{file}: {lines} lines");
        }
        Assert.Superset(new HashSet<string> { "NULL", "TXT", "CNAME", "MX", "SRV", "TYPE65399" }, types);
    }
}
