using System.Globalization;
using System.Net;
using Microsoft.Extensions.Logging.Abstractions;
using Portcullis.Server.Configuration;
using Portcullis.Server.Hosting;
using Portcullis.Server.Policy;
using Portcullis.Server.Tests.Pipeline;
using Portcullis.Server.Tests.Support;
using Portcullis.Testing;
using Xunit;

namespace Portcullis.Server.Tests.Policy;

/// <summary>
/// A response policy zone kept current by zone transfer from a real Knot primary: transferred at
/// start, then Knot's zone edited and reloaded; Knot's NOTIFY makes the server fetch the new
/// version (IXFR) and the new block applies; the policy zone itself is never served. Also: a
/// broken policy file stops the start with its file and line.
/// </summary>
public sealed class PolicyTransferTests
{
    private static string Rpz(uint serial, string extra = "") => $"""
        $TTL 300
        @             SOA ns.rpz. hostmaster.rpz. {serial} 3600 600 86400 60
        @             NS  localhost.
        bad.fwd.test  CNAME .
        {extra}
        """;

    private const string FwdZone = """
        $TTL 300
        @      SOA ns1 hostmaster 1 7200 3600 1209600 300
        @      NS  ns1
        ns1    A   127.0.0.1
        bad    A   192.0.2.66
        worse  A   192.0.2.67
        """;

    private static ProcessResult Dig(IPEndPoint server, string name, string type = "A") =>
        ExternalProcess.Run("dig", [$"@{server.Address}", "-p", server.Port.ToString(CultureInfo.InvariantCulture), "-b", "127.0.0.1",
            name, type, "+time=2", "+tries=1"]).EnsureSuccess();

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_transferred_policy_zone_follows_its_primary_through_notify(bool signed)
    {
        var key = PeerKey.TestOnly;
        var logs = new CollectingLoggerFactory();
        string dir = Directory.CreateTempSubdirectory("portcullis-rpz-xfr-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "fwd.test.zone"), FwdZone);
            File.WriteAllText(Path.Combine(dir, "rpz.test.zone"), Rpz(1));
            using var upstream = new KnotPeer([new PeerZone("fwd.test", Path.Combine(dir, "fwd.test.zone"))]);
            var address = TestServer.NextAddress();
            int port = FreePort.ForUdpAndTcp();
            // Signed: Knot transfers only with the key and signs its NOTIFY with it.
            using var primary = new KnotPeer([new PeerZone("rpz.test", Path.Combine(dir, "rpz.test.zone"))], allowTransfer: !signed,
                journalDifferences: true, notifyTo: new IPEndPoint(address, port), transferKey: signed ? key : null);
            var config = new ServerConfig
            {
                Listen = [$"{address}:{port}"],
                AllowRecursion = ["127.0.0.1"],
                Keys = signed ? [new KeyConfig { Name = key.Name, Algorithm = key.Algorithm, Secret = key.Secret }] : [],
                ResponsePolicy = new ResponsePolicyConfig
                {
                    Zones =
                    [
                        new PolicyZoneConfig
                        {
                            Name = "rpz.test", Primaries = [$"127.0.0.1@{primary.Port}"], TsigKey = signed ? key.Name : null,
                            File = Path.Combine(dir, "copy", "rpz.test.zone"),
                        },
                    ],
                },
            };
            var recursion = new ForwardingRecursion(upstream.EndPoint);
            using var server = new DnsServer(config, logs, recursion: (_, _, _) => recursion);
            server.Start();
            var zones = server.ResponsePolicyZones!;
            await zones.WaitForSerialAsync("rpz.test", 1).WaitAsync(TimeSpan.FromSeconds(30));

            var ep = server.UdpEndPoints[0];
            Assert.Contains("status: NXDOMAIN", Dig(ep, "bad.fwd.test.").Stdout);
            Assert.Contains("192.0.2.67", Dig(ep, "worse.fwd.test.").Stdout);
            // Transferred for its content only: the policy zone is not served.
            Assert.Contains("status: REFUSED", ExternalProcess.Run("dig", [$"@{ep.Address}", "-p", ep.Port.ToString(CultureInfo.InvariantCulture),
                "-b", "127.0.0.1", "rpz.test.", "SOA", "+norec", "+time=2", "+tries=1"]).EnsureSuccess().Stdout);
            Assert.True(File.Exists(Path.Combine(dir, "copy", "rpz.test.zone")));   // the saved copy

            // The primary's zone changes: Knot reloads it and NOTIFYs us; the new version is pulled.
            File.WriteAllText(primary.ZoneFile("rpz.test"), Rpz(2, "worse.fwd.test CNAME *."));
            primary.ReloadZone("rpz.test", 2);
            await zones.WaitForSerialAsync("rpz.test", 2).WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Contains(logs.Lines, l => l.Contains("rpz.test.: IXFR done, serial 2", StringComparison.Ordinal));
            var worse = Dig(ep, "worse.fwd.test.");
            Assert.Contains("status: NOERROR", worse.Stdout);
            Assert.Contains("ANSWER: 0,", worse.Stdout);
            Assert.Contains("EDE: 15 (Blocked)", worse.Stdout);
            Assert.Contains("status: NXDOMAIN", Dig(ep, "bad.fwd.test.").Stdout);

            // NOTIFY for the policy zone is taken from its primary's address only, and signed with the
            // primary's key when there is one (an unsigned one from the primary's address may be spoofed).
            var notify = DnsTestClient.Query("rpz.test.", Protocol.Records.RecordType.SOA);
            notify.Header.Opcode = Protocol.Messages.Opcode.Notify;
            notify.Header.RecursionDesired = false;
            var fromPrimary = Protocol.Messages.DnsMessage.Parse(new DnsTestClient(ep, IPAddress.Loopback).UdpRaw(notify.ToWire()));
            Assert.Equal(signed ? Protocol.Messages.Rcode.Refused : Protocol.Messages.Rcode.NoError, fromPrimary.Rcode);
            var fromOther = Protocol.Messages.DnsMessage.Parse(new DnsTestClient(ep, IPAddress.Parse("127.0.0.77")).UdpRaw(notify.ToWire()));
            Assert.Equal(Protocol.Messages.Rcode.Refused, fromOther.Rcode);
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }

    [Fact]
    public void A_broken_policy_file_stops_the_start_naming_its_line()
    {
        string dir = Directory.CreateTempSubdirectory("portcullis-rpz-bad-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "rpz.test.zone"), Rpz(1, "oops.fwd.test A not-an-address"));
            File.WriteAllText(Path.Combine(dir, "list.txt"), "fine.example\n");
            var config = new ServerConfig
            {
                Listen = [$"{TestServer.NextAddress()}:0"],
                ResponsePolicy = new ResponsePolicyConfig
                {
                    Zones = [new PolicyZoneConfig { Name = "rpz.test", File = Path.Combine(dir, "rpz.test.zone") }],
                    Lists = [new PolicyListConfig { File = Path.Combine(dir, "list.txt") }],
                },
            };
            using var server = new DnsServer(config, NullLoggerFactory.Instance, recursion: (_, _, _) => throw new InvalidOperationException("not reached"));
            var e = Assert.Throws<ZoneLoadException>(server.Start);
            Assert.Contains("rpz.test.zone:5:", e.Message);
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }
}
