using System.Net;
using Microsoft.Extensions.Logging.Abstractions;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.Tsig;
using Portcullis.Server.Authoritative;
using Portcullis.Server.Configuration;
using Portcullis.Server.Hosting;
using Portcullis.Server.Replication;
using Portcullis.Server.Tests.Support;
using Portcullis.Testing;
using Xunit;

namespace Portcullis.Server.Tests.Replication;

/// <summary>The edges of replication: whom NOTIFY goes to, the zone file after a clean shutdown, an expired secondary copy.</summary>
public sealed class ReplicationEdgesTests
{
    private const string Origin = "example.test.";

    [Fact]
    public void Notify_ns_adds_the_zones_own_name_servers_but_not_the_primary_named_in_the_SOA()
    {
        string text = "$ORIGIN example.test.\n$TTL 3600\n@ SOA ns1 hostmaster 1 7200 1800 1209600 300\n@ NS ns1\n@ NS ns2\n@ NS ns.elsewhere.example.\n"
            + "ns1 A 192.0.2.1\nns2 A 192.0.2.2\nns2 AAAA 2001:db8::2\n";
        var zone = ZoneLoader.LoadText(DnsName.Parse(Origin), text, "z.zone").Zone;
        var zc = new ZoneConfig { Name = Origin, Notify = ["198.51.100.9@5300"], NotifyNs = true };
        var targets = DnsServer.NotifyTargets(zc, zone, TsigKeyRing.Empty).Select(t => t.EndPoint.ToString()).ToList();
        Assert.Equal(["198.51.100.9:5300", "192.0.2.2:53", "[2001:db8::2]:53"], targets);
        zc.NotifyNs = false;
        Assert.Single(DnsServer.NotifyTargets(zc, zone, TsigKeyRing.Empty));
    }

    [Fact]
    public void A_clean_shutdown_writes_updates_into_the_zone_file()
    {
        string file;
        using (var server = new TestServer(c => c.AllowUpdate = ["127.0.0.0/8"], (Origin, TestServer.ExampleZone)))
        {
            file = server.ZoneFile(Origin);
            var update = ExternalProcess.Run("nsupdate", [],
                standardInput: $"server {server.EndPoint.Address} {server.EndPoint.Port}\nzone example.test\nupdate add kept.example.test 300 TXT \"kept\"\nsend\n");
            Assert.True(update.ExitCode == 0, update.Stdout + update.Stderr);
            // Disposed at once: well before the zone file's scheduled rewrite, so the shutdown writes it.
            server.Server.Dispose();
            string written = File.ReadAllText(file);
            Assert.Contains("kept.example.test.", written);
            Assert.Contains("2024060102", written);   // the serial the update made
        }
    }

    [Fact]
    public async Task A_saved_secondary_copy_older_than_the_SOA_expire_time_is_served_as_unavailable()
    {
        string dir = Directory.CreateTempSubdirectory("expired").FullName;
        try
        {
            string file = Path.Combine(dir, "example.test.zone");
            File.WriteAllText(file, TestServer.ExampleZone);   // SOA expire: 1209600 s (14 days)
            File.WriteAllText(file + ".state", $"refreshed {DateTimeOffset.UtcNow.AddDays(-15).ToUnixTimeSeconds()}\n");
            Zone? served = null;
            // A primary that cannot answer (the discard port): the copy stays expired.
            await using var secondary = new SecondaryZone(DnsName.Parse(Origin), [new PrimaryServer(new IPEndPoint(IPAddress.Loopback, 9), null)], file,
                z => served = z, NullLogger.Instance);
            secondary.Start();
            Assert.True(secondary.Expired);
            Assert.NotNull(served);
            Assert.True(served!.Unavailable);

            // Fresh state: served as it is.
            File.WriteAllText(file + ".state", $"refreshed {DateTimeOffset.UtcNow.AddDays(-1).ToUnixTimeSeconds()}\n");
            Zone? fresh = null;
            await using var again = new SecondaryZone(DnsName.Parse(Origin), [new PrimaryServer(new IPEndPoint(IPAddress.Loopback, 9), null)], file,
                z => fresh = z, NullLogger.Instance);
            again.Start();
            Assert.False(fresh!.Unavailable);
        }
        finally { Directory.Delete(dir, true); }
    }
}
