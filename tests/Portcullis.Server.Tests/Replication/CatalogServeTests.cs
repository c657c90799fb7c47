using System.Net;
using Microsoft.Extensions.Logging.Abstractions;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Records;
using Portcullis.Server.Configuration;
using Portcullis.Server.Hosting;
using Portcullis.Server.Tests.Support;
using Portcullis.Testing;
using Xunit;

namespace Portcullis.Server.Tests.Replication;

/// <summary>
/// Catalog zones (RFC 9432) under `serve`: a primary generates catalog.test from the zones that name
/// it, a Portcullis secondary interpreting that catalog provisions every member as a secondary zone,
/// and a zone added on the primary (configuration reload) appears on the secondary through NOTIFY
/// of the catalog — no change to the secondary's configuration. BIND consumes the same catalog.
/// </summary>
public sealed class CatalogServeTests
{
    private static string Zone(string origin, uint serial) =>
        $"$ORIGIN {origin}\n$TTL 3600\n@ SOA ns1 hostmaster {serial} 7200 1800 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.80\n";

    /// <summary>Asks until the server answers the zone's SOA authoritatively: bounded tries, each waiting for its answer.</summary>
    private static bool Serves(IPEndPoint server, string origin)
    {
        for (int i = 0; i < 200; i++)
        {
            var r = new DnsTestClient(server).Udp(origin, RecordType.SOA);
            if (r.Rcode == Rcode.NoError && r.Header.AuthoritativeAnswer && r.Answers.Count == 1) return true;
            using var pause = new ManualResetEventSlim();
            pause.Wait(100);   // between polls of the served state
        }
        return false;
    }

    [Fact]
    public void Adding_a_zone_on_the_primary_provisions_it_on_the_secondary()
    {
        string dir = Directory.CreateTempSubdirectory("catalog-serve").FullName;
        try
        {
            int secondaryPort = FreePort.ForUdpAndTcp();
            int primaryPort = FreePort.ForUdpAndTcp();
            ZoneConfig Member(string name)
            {
                string file = Path.Combine(dir, name + ".zone");
                File.WriteAllText(file, Zone(name + ".", 1));
                return new ZoneConfig { Name = name, File = file, CatalogRole = "member", CatalogZone = "catalog.test" };
            }
            ServerConfig Config(params string[] members) => new()
            {
                Listen = [$"127.0.0.1:{primaryPort}"],
                AllowTransfer = ["127.0.0.0/8"],
                Zones = [.. members.Select(Member), new ZoneConfig { Name = "catalog.test", CatalogRole = "generate", Notify = [$"127.0.0.2@{secondaryPort}"] }],
            };
            var config = Config("one.test", "two.test");
            using var primary = new DnsServer(config, NullLoggerFactory.Instance, () => config);
            primary.Start();

            using var secondary = new TestServer(c =>
            {
                c.Listen = [$"127.0.0.2:{secondaryPort}"];
                c.Zones.Add(new ZoneConfig
                {
                    Name = "catalog.test", Type = "secondary", CatalogRole = "interpret", File = Path.Combine(dir, "secondary", "catalog.test.zone"),
                    Primaries = [$"127.0.0.1@{primaryPort}"],
                });
            });
            Assert.True(Serves(secondary.EndPoint, "one.test."), "one.test was not provisioned");
            Assert.True(Serves(secondary.EndPoint, "two.test."), "two.test was not provisioned");
            Assert.Equal(Rcode.Refused, secondary.Client().Udp("three.test.", RecordType.SOA).Rcode);

            // A new zone on the primary only: the catalog's NOTIFY brings it to the secondary.
            config = Config("one.test", "two.test", "three.test");
            Assert.Equal(0, primary.Reload());
            Assert.True(Serves(secondary.EndPoint, "three.test."), "three.test was not provisioned after the primary added it");
            Assert.True(File.Exists(Path.Combine(dir, "secondary", "catz", "three.test.zone")));

            // BIND consumes the same catalog (catalog-zones with default-primaries).
            using var bind = new CatalogBind(new IPEndPoint(IPAddress.Loopback, primaryPort), "catalog.test");
            Assert.True(bind.WaitForLog("catz: adding zone 'three.test'", TimeSpan.FromSeconds(30)), bind.Log);
            Assert.True(Serves(bind.EndPoint, "three.test."), bind.Log);
        }
        finally { Directory.Delete(dir, true); }
    }

    /// <summary>named as a secondary of a catalog zone, provisioning its members from the same primary.</summary>
    private sealed class CatalogBind : PeerServer
    {
        public CatalogBind(IPEndPoint primary, string catalog) : base("bind-catalog", [], null)
        {
            string config = Path.Combine(Directory, "named.conf");
            File.WriteAllText(config, BindPeer.Options(Directory, Port, $$"""
                    recursion no;
                    dnssec-validation no;
                    allow-query { any; };
                    allow-new-zones yes;
                    catalog-zones { zone "{{catalog}}" default-primaries { {{primary.Address}} port {{primary.Port}}; }; };
                """) + $"zone \"{catalog}\" {{ type secondary; file \"{catalog}.zone\"; primaries {{ {primary.Address} port {primary.Port}; }}; }};\n");
            Start(File.Exists("/usr/sbin/named") ? "/usr/sbin/named" : "named", ["-g", "-c", config], ["running"]);
        }
    }
}
