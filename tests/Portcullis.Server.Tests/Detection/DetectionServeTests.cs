using System.Text.Json;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Records;
using Portcullis.Server.Tests.Support;

namespace Portcullis.Server.Tests.Detection;

/// <summary>
/// Detection in a running server (needs the processor wiring: QueryProcessor.Events and
/// QueryProcessor.DetectorActions, set by DnsServer when detection.enabled): exfiltration-like
/// queries raise an alert in the alert log, and with action block the domain is then REFUSED with
/// Extended DNS Error 15 (Blocked) for every client, while other names still answer.
/// </summary>
public sealed class DetectionServeTests
{
    private static ExtendedDnsErrorCode? Ede(DnsMessage m) =>
        m.Edns?.Options.OfType<ExtendedDnsErrorOption>().Select(o => (ExtendedDnsErrorCode?)o.InfoCode).FirstOrDefault();

    private const string OtherZone = """
        $ORIGIN other.test.
        $TTL 1h
        @ IN SOA ns.other.test. hostmaster.other.test. 1 2h 30m 2w 5m
          IN NS ns
        ns IN A 192.0.2.1
        www IN A 192.0.2.80
        """;

    [Fact]
    public async Task An_exfiltrating_domain_is_alerted_then_blocked_with_extended_error_blocked()
    {
        string? alertLog = null;
        using var server = new TestServer(c =>
        {
            alertLog = Path.Combine(Path.GetTempPath(), $"portcullis-alerts-{Guid.NewGuid():N}.jsonl");
            c.Detection.Enabled = true;
            c.Detection.Action = "block";
            c.Detection.AlertLog = alertLog;
        }, ("example.test.", TestServer.ExampleZone), ("other.test.", OtherZone));
        try
        {
            var client = server.Client();
            // Before: an ordinary answer.
            var before = client.Udp("www.example.test", RecordType.A, edns: true);
            Assert.Equal(Rcode.NoError, before.Rcode);

            // Hex chunks of a "file" under example.test, as TXT queries: the server answers them
            // (NXDOMAIN) while the detector, off the query path, scores the domain.
            var r = new Random(5);
            for (int i = 0; i < 40; i++)
            {
                var chunk = Convert.ToHexString(Enumerable.Range(0, 30).Select(_ => (byte)r.Next(256)).ToArray()).ToLowerInvariant();
                client.Udp($"{i}.{chunk}.s7.example.test", RecordType.TXT);
            }
            await server.Server.QueryEvents!.DrainAsync();
            Assert.True(server.Server.Detector!.DomainAlerts >= 1, "no alert raised");

            // After: the domain is refused as Blocked, for any client, and other zones still answer.
            var blocked = client.Udp("www.example.test", RecordType.A, edns: true);
            Assert.Equal(Rcode.Refused, blocked.Rcode);
            Assert.Equal(ExtendedDnsErrorCode.Blocked, Ede(blocked));
            var fromElsewhere = server.ClientFrom("127.0.0.3").Udp("ns1.example.test", RecordType.AAAA, edns: true);
            Assert.Equal(Rcode.Refused, fromElsewhere.Rcode);
            var other = client.Udp("www.other.test", RecordType.A, edns: true);
            Assert.Equal(Rcode.NoError, other.Rcode);

            await server.Server.QueryEvents!.DrainAsync();
            var line = File.ReadLines(alertLog!).First();
            using var json = JsonDocument.Parse(line);
            Assert.Equal("example.test.", json.RootElement.GetProperty("domain").GetString());
            Assert.Equal("block", json.RootElement.GetProperty("action").GetString());
        }
        finally
        {
            if (alertLog is not null) File.Delete(alertLog);
        }
    }
}
