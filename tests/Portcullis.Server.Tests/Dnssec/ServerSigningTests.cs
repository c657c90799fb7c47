using System.Net;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Portcullis.Protocol.Dnssec;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Server.Configuration;
using Portcullis.Server.Hosting;
using Portcullis.Server.Tests.Support;
using Portcullis.Testing;
using Xunit;
using static Portcullis.Server.Tests.Transfer.TransferClient;

namespace Portcullis.Server.Tests.Dnssec;

/// <summary>
/// Zones the server signs itself (dnssec-signing: true): served signed from an unsigned zone file
/// with keys it makes, validated live by delv and checked whole by dnssec-verify and
/// ldns-verify-zone; updates signed incrementally with IXFR carrying just the signed difference;
/// keys, signatures and updates kept across restarts; signatures refreshed on a fake clock.
/// </summary>
public sealed class ServerSigningTests
{
    private const string Origin = "example.test.";
    private static readonly PeerKey Key = PeerKey.TestOnly;

    private static void Signed(ServerConfig c, bool nsec3 = false)
    {
        AllowLoopback(c);
        c.Keys = [new KeyConfig { Name = Key.Name, Algorithm = Key.Algorithm, Secret = Key.Secret }];
        c.AllowUpdate = [$"key {Key.Name}"];
        c.Zones[0].DnssecSigning = true;
        if (nsec3)
        {
            c.DnssecPolicies["nsec3"] = new DnssecPolicyConfig { Nsec3 = true };
            c.Zones[0].DnssecPolicy = "nsec3";
        }
    }

    private static ProcessResult NsUpdate(IPEndPoint server, string commands) =>
        ExternalProcess.Run("nsupdate", ["-y", $"{Key.Algorithm}:{Key.Name}:{Key.Secret}"],
            standardInput: $"server {server.Address} {server.Port}\nzone example.test\n{commands}\nsend\n");

    /// <summary>A delv trust-anchors file holding the zone's KSK (the key files the server made under keys/).</summary>
    private static string Anchors(string directory, string? keyDirectory = null)
    {
        var ksk = Directory.GetFiles(keyDirectory ?? Path.Combine(directory, "keys"), "*.key")
            .Select(f => File.ReadAllLines(f).First(l => !l.StartsWith(';')))
            .Single(l => l.Contains(" 257 ", StringComparison.Ordinal));
        var fields = ksk.Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
        int at = Array.IndexOf(fields, "DNSKEY");
        string path = Path.Combine(directory, "anchors.conf");
        File.WriteAllText(path, $"trust-anchors {{ {Origin} static-key {fields[at + 1]} {fields[at + 2]} {fields[at + 3]} \"{string.Concat(fields[(at + 4)..])}\"; }};\n");
        return path;
    }

    private static void AssertValidates(IPEndPoint server, string anchors, string name, string type)
    {
        var r = ExternalProcess.Run("delv", [$"@{server.Address}", "-p", server.Port.ToString(), "-a", anchors, $"+root={Origin}", name, type]);
        string output = r.Stdout + r.Stderr;
        Assert.True(output.Contains("fully validated") && !output.Contains("validation failed"), $"{name} {type}:\n{output}");
    }

    private static string AxfrToFile(TestServer server, string name)
    {
        var records = Pull(server.Server.TcpEndPoints[0], Origin).Records;
        string path = Path.Combine(server.Directory, name);
        File.WriteAllLines(path, records.Take(records.Count - 1).Select(r => Portcullis.Protocol.ZoneText.ZoneWriter.ToLine(r)));
        return path;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_zone_with_dnssec_signing_is_served_signed_and_passes_dnssec_verify_ldns_and_delv(bool nsec3)
    {
        using var server = new TestServer(c => Signed(c, nsec3), (Origin, TestServer.ExampleZone));
        // The unsigned file is left as it was; the keys were made under keys/ beside it.
        Assert.Equal(TestServer.ExampleZone, File.ReadAllText(server.ZoneFile(Origin)));
        Assert.Equal(4, Directory.GetFiles(Path.Combine(server.Directory, "keys"), "K*").Count(f => f.EndsWith(".key") || f.EndsWith(".private")));

        string transferred = AxfrToFile(server, "axfr.zone");
        ExternalProcess.Run("dnssec-verify", ["-o", "example.test", transferred]).EnsureSuccess();
        var ldns = ExternalProcess.Run("ldns-verify-zone", [transferred]).EnsureSuccess();
        Assert.Contains("Zone is verified and complete", ldns.Stdout + ldns.Stderr, StringComparison.Ordinal);
        var text = File.ReadAllText(transferred);
        Assert.Contains("\tCDS\t", text);
        Assert.Contains("\tCDNSKEY\t", text);
        Assert.Contains(nsec3 ? "\tNSEC3PARAM\t1 0 0 -" : "\tNSEC\t", text);

        string anchors = Anchors(server.Directory);
        AssertValidates(server.EndPoint, anchors, "www.example.test", "A");
        AssertValidates(server.EndPoint, anchors, "example.test", "DNSKEY");
        AssertValidates(server.EndPoint, anchors, "example.test", "CDS");
        // Denial proofs: NSEC, or NSEC3 (RFC 5155 §7.2).
        AssertValidates(server.EndPoint, anchors, "nope.www.example.test", "A");
        AssertValidates(server.EndPoint, anchors, "anything.example.test", "TXT");
        AssertValidates(server.EndPoint, anchors, "www.example.test", "MX");
    }

    [Fact]
    public void With_zonemd_the_digest_is_kept_current_through_updates_and_ldns_verify_zone_checks_it()
    {
        using var server = new TestServer(c =>
        {
            Signed(c);
            c.DnssecPolicies["digest"] = new DnssecPolicyConfig { Zonemd = true };
            c.Zones[0].DnssecPolicy = "digest";
        }, (Origin, TestServer.ExampleZone));
        foreach (var step in new[] { "first", "after-update" })
        {
            if (step == "after-update")
                Assert.Equal(0, NsUpdate(server.EndPoint, "update add digest.example.test 300 TXT \"changed\"").ExitCode);
            string transferred = AxfrToFile(server, step + ".zone");
            Assert.Contains("\tZONEMD\t", File.ReadAllText(transferred));
            var ldns = ExternalProcess.Run("ldns-verify-zone", ["-ZZ", transferred]);
            Assert.True(ldns.ExitCode == 0, step + ": " + ldns.Stdout + ldns.Stderr);
        }
    }

    [Fact]
    public void An_update_is_signed_incrementally_and_IXFR_carries_only_the_signed_difference()
    {
        using var server = new TestServer(c => Signed(c), (Origin, TestServer.ExampleZone));
        uint before = SerialOf(server);
        var update = NsUpdate(server.EndPoint, "update add new.example.test 300 A 192.0.2.123");
        Assert.True(update.ExitCode == 0, update.Stdout + update.Stderr);
        Assert.Equal(before + 1, SerialOf(server));

        var ixfr = Pull(server.Server.TcpEndPoints[0], Origin, RecordType.IXFR, before).Records.ToList();
        // SOA(new) | SOA(old) deleted... | SOA(new) added... | SOA(new)
        int second = ixfr.FindIndex(1, r => r.Type == RecordType.SOA);
        int third = ixfr.FindIndex(second + 1, r => r.Type == RecordType.SOA);
        var deleted = ixfr.Skip(second + 1).Take(third - second - 1).ToList();
        var added = ixfr.Skip(third + 1).Take(ixfr.Count - third - 2).ToList();
        // Deleted: the SOA's old signature, the NSEC before the new name and its signature.
        Assert.Equal(["NSEC", "RRSIG NSEC", "RRSIG SOA"], deleted.Select(Describe).Order().ToArray());
        // Added: the record and its signature, the new NSEC and its signature, the changed NSEC and its signature, the SOA's signature.
        Assert.Equal(["A", "NSEC", "NSEC", "RRSIG A", "RRSIG NSEC", "RRSIG NSEC", "RRSIG SOA"], added.Select(Describe).Order().ToArray());
        Assert.Contains(added, r => r.Type == RecordType.A && r.Owner.Equals(DnsName.Parse("new.example.test.")));

        string anchors = Anchors(server.Directory);
        AssertValidates(server.EndPoint, anchors, "new.example.test", "A");
        string transferred = AxfrToFile(server, "after-update.zone");
        ExternalProcess.Run("dnssec-verify", ["-o", "example.test", transferred]).EnsureSuccess();
    }

    private static string Describe(ResourceRecord r) =>
        r.Type == RecordType.RRSIG ? "RRSIG " + (RecordType)(r.Data[0] << 8 | r.Data[1]) : r.Type.ToString();

    private static uint SerialOf(TestServer server) =>
        Portcullis.Server.Replication.SerialNumber.Of(Assert.Single(server.Client().Udp(Origin, RecordType.SOA).Answers));

    [Fact]
    public void A_restart_keeps_the_keys_the_signatures_and_an_acknowledged_update_and_the_zone_file_stays_unsigned()
    {
        string dir = Directory.CreateTempSubdirectory("portcullis-signed-restart-").FullName;
        try
        {
            string file = Path.Combine(dir, "example.test.zone");
            File.WriteAllText(file, TestServer.ExampleZone);
            ServerConfig Config() => new()
            {
                Listen = [$"{Portcullis.Server.Tests.Support.TestServer.NextAddress()}:0"],
                Zones = [new ZoneConfig { Name = Origin, File = file, DnssecSigning = true }],
                AllowTransfer = ["127.0.0.0/8"],
                Keys = [new KeyConfig { Name = Key.Name, Algorithm = Key.Algorithm, Secret = Key.Secret }],
                AllowUpdate = [$"key {Key.Name}"],
            };
            List<string> first;
            using (var server = new DnsServer(Config(), NullLoggerFactory.Instance))
            {
                server.Start();
                Assert.Equal(0, NsUpdate(server.UdpEndPoints[0], "update add new.example.test 300 A 192.0.2.123").ExitCode);
                first = Lines(Pull(server.TcpEndPoints[0], Origin).Records);
            }
            // Shut down cleanly: the zone file has the update and no DNSSEC; the signed version is beside it.
            string unsigned = File.ReadAllText(file);
            Assert.Contains("192.0.2.123", unsigned);
            Assert.DoesNotContain("RRSIG", unsigned);
            Assert.DoesNotContain("DNSKEY", unsigned);
            Assert.Contains("RRSIG", File.ReadAllText(file + ".signed"));
            using (var server = new DnsServer(Config(), NullLoggerFactory.Instance))
            {
                server.Start();
                // The same keys, the same signatures, the same serial: nothing signed anew.
                Assert.Equal(first, Lines(Pull(server.TcpEndPoints[0], Origin).Records));
            }
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Signatures_are_refreshed_before_they_expire_and_the_serial_goes_up()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        string dir = Directory.CreateTempSubdirectory("portcullis-signed-refresh-").FullName;
        try
        {
            string file = Path.Combine(dir, "example.test.zone");
            File.WriteAllText(file, TestServer.ExampleZone);
            var config = new ServerConfig
            {
                Listen = [$"{Portcullis.Server.Tests.Support.TestServer.NextAddress()}:0"],
                Zones = [new ZoneConfig { Name = Origin, File = file, DnssecSigning = true }],
                AllowTransfer = ["127.0.0.0/8"],
            };
            using var server = new DnsServer(config, NullLoggerFactory.Instance, time: clock);
            server.Start();
            var endPoint = server.TcpEndPoints[0];
            var before = Pull(endPoint, Origin).Records;
            uint serial = Portcullis.Server.Replication.SerialNumber.Of(before[0]);
            var firstExpiry = before.Where(r => r.Type == RecordType.RRSIG).Min(Expiration);
            // Policy defaults: validity 14 days less up to 12 h of jitter, refresh 5 days before expiry.
            Assert.InRange(firstExpiry, clock.GetUtcNow() + TimeSpan.FromDays(13.5) - TimeSpan.FromMinutes(1), clock.GetUtcNow() + TimeSpan.FromDays(14));

            clock.Advance(TimeSpan.FromDays(7));   // nothing due yet
            Assert.Equal(serial, Portcullis.Server.Replication.SerialNumber.Of(Pull(endPoint, Origin).Records[0]));
            clock.Advance(TimeSpan.FromDays(2));   // day 9: past expiry - refresh for every signature
            var after = Pull(endPoint, Origin).Records;
            Assert.Equal(serial + 1, Portcullis.Server.Replication.SerialNumber.Of(after[0]));
            var now = clock.GetUtcNow();
            Assert.All(after.Where(r => r.Type == RecordType.RRSIG), r => Assert.True(Expiration(r) > now + TimeSpan.FromDays(5), "every signature refreshed"));
            var records = after.Take(after.Count - 1).ToList();
            var dnskeys = records.Where(r => r.Type == RecordType.DNSKEY).ToList();
            foreach (var sig in records.Where(r => r.Type == RecordType.RRSIG))
            {
                var covered = (RecordType)(sig.Data[0] << 8 | sig.Data[1]);
                var rrset = records.Where(r => r.Type == covered && r.Owner.Equals(sig.Owner)).ToList();
                Assert.True(DnssecVerifier.Verify(sig, rrset, dnskeys, now).IsValid, $"{sig.Owner} {covered}");
            }
        }
        finally { Directory.Delete(dir, true); }
    }

    private static DateTimeOffset Expiration(ResourceRecord rrsig)
    {
        Rrsig.TryRead(rrsig.Data, out var s);
        return Rrsig.ToInstant(s.Expiration, DateTimeOffset.UtcNow);
    }

    [Fact]
    public void An_edited_zone_file_is_signed_on_reload_with_a_higher_serial()
    {
        using var server = new TestServer(c => Signed(c), (Origin, TestServer.ExampleZone));
        uint before = SerialOf(server);
        // The operator adds a record and raises the serial by one.
        string edited = TestServer.ExampleZone.Replace(before.ToString(), (before + 1).ToString()) + "edited 300 IN A 192.0.2.77\n";
        File.WriteAllText(server.ZoneFile(Origin), edited);
        File.SetLastWriteTimeUtc(server.ZoneFile(Origin), DateTime.UtcNow.AddSeconds(5));
        Assert.Equal(0, server.Server.Reload());
        Assert.Equal(before + 1, SerialOf(server));
        AssertValidates(server.EndPoint, Anchors(server.Directory), "edited.example.test", "A");
        string transferred = AxfrToFile(server, "after-edit.zone");
        ExternalProcess.Run("dnssec-verify", ["-o", "example.test", transferred]).EnsureSuccess();
    }

    [Fact]
    public void A_signing_secondary_signs_what_it_transfers_from_an_unsigned_Knot_primary_and_serves_IXFR_of_the_signed_difference()
    {
        const uint oldSerial = 2024060101, newSerial = 2024060102;
        string dir = Directory.CreateTempSubdirectory("portcullis-signing-secondary-").FullName;
        try
        {
            int primaryPort = FreePort.ForUdpAndTcp();
            string zoneFile = Path.Combine(dir, "secondary", "example.test.zone");
            using var server = new TestServer(c =>
            {
                AllowLoopback(c);
                c.Zones.Add(new ZoneConfig
                {
                    Name = Origin, Type = "secondary", File = zoneFile, Primaries = [$"127.0.0.1@{primaryPort}"], DnssecSigning = true,
                });
            });
            string source = Path.Combine(dir, "source.zone");
            File.WriteAllText(source, TestServer.ExampleZone);
            using var primary = new KnotPeer([new PeerZone("example.test", source)], port: primaryPort, journalDifferences: true,
                allowTransfer: true, notifyTo: server.EndPoint);
            WaitForSerial(server, oldSerial);
            string anchors = Anchors(dir, Path.Combine(dir, "secondary", "keys"));
            AssertValidates(server.EndPoint, anchors, "www.example.test", "A");
            ExternalProcess.Run("dnssec-verify", ["-o", "example.test", AxfrToFile(server, "first.zone")]).EnsureSuccess();

            // The primary changes: NOTIFY, IXFR in, signed: only the change and its chain links are new.
            File.WriteAllText(primary.ZoneFile("example.test"), TestServer.ExampleZone.Replace(oldSerial.ToString(), newSerial.ToString()) + "added A 192.0.2.7\n");
            primary.ReloadZone("example.test", newSerial);
            WaitForSerial(server, newSerial);
            AssertValidates(server.EndPoint, anchors, "added.example.test", "A");
            var ixfr = Pull(server.Server.TcpEndPoints[0], Origin, RecordType.IXFR, oldSerial).Records.ToList();
            int second = ixfr.FindIndex(1, r => r.Type == RecordType.SOA);
            int third = ixfr.FindIndex(second + 1, r => r.Type == RecordType.SOA);
            var added = ixfr.Skip(third + 1).Take(ixfr.Count - third - 2).Select(Describe).Order().ToArray();
            Assert.Equal(["A", "NSEC", "NSEC", "RRSIG A", "RRSIG NSEC", "RRSIG NSEC", "RRSIG SOA"], added);
            ExternalProcess.Run("dnssec-verify", ["-o", "example.test", AxfrToFile(server, "second.zone")]).EnsureSuccess();
            // The transferred copy stays unsigned; the signed one is beside it (written on the sync delay or at shutdown).
            Assert.DoesNotContain("RRSIG", File.ReadAllText(zoneFile));
        }
        finally { Directory.Delete(dir, true); }
    }

    /// <summary>Asks the SOA until the serial served is <paramref name="serial"/>: bounded tries, each waiting for its answer.</summary>
    private static void WaitForSerial(TestServer server, uint serial)
    {
        for (int i = 0; i < 200; i++)
        {
            var m = server.Client().Udp(Origin, RecordType.SOA);
            if (m.Rcode == Portcullis.Protocol.Messages.Rcode.NoError && m.Answers.Count == 1 && Portcullis.Server.Replication.SerialNumber.Of(m.Answers[0]) == serial) return;
            using var pause = new ManualResetEventSlim();
            pause.Wait(100);   // between polls of the served state, not standing in for it
        }
        throw new Xunit.Sdk.XunitException($"serial {serial} never served");
    }
}
