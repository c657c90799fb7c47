using System.Net;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Server.Configuration;
using Portcullis.Server.Tests.Support;
using Portcullis.Testing;
using Xunit;
using static Portcullis.Server.Tests.Transfer.TransferClient;

namespace Portcullis.Server.Tests.Replication;

/// <summary>
/// Dynamic updates with Debian's nsupdate against `serve`: signed with the key allow-update names,
/// applied, journaled and answered; a Knot secondary is NOTIFYed and takes the change by IXFR, and
/// its AXFR then equals ours; unsigned updates are refused; and a server killed with SIGKILL at
/// any point restarts with every update it acknowledged.
/// </summary>
public sealed class UpdateServeTests
{
    private static readonly PeerKey Key = PeerKey.TestOnly;
    private const string Origin = "example.test.";
    private const uint Serial = 2024060101;

    private static ProcessResult NsUpdate(IPEndPoint server, string commands, bool signed = true) =>
        ExternalProcess.Run("nsupdate", signed ? ["-y", $"{Key.Algorithm}:{Key.Name}:{Key.Secret}"] : [],
            standardInput: $"server {server.Address} {server.Port}\nzone example.test\n{commands}\nsend\n");

    [Fact]
    public void An_nsupdate_change_reaches_a_Knot_secondary_by_NOTIFY_and_IXFR_and_both_zones_are_equal()
    {
        int secondaryPort = FreePort.ForUdpAndTcp();
        using var primary = new TestServer(c =>
        {
            c.Keys = [new KeyConfig { Name = Key.Name, Algorithm = Key.Algorithm, Secret = Key.Secret }];
            c.AllowTransfer = ["127.0.0.0/8"];
            c.AllowUpdate = [$"key {Key.Name}"];
            c.Zones[0].Notify = [$"127.0.0.1@{secondaryPort}"];
        }, (Origin, TestServer.ExampleZone));
        using var secondary = new KnotSecondary(primary.Server.TcpEndPoints[0], [Origin.TrimEnd('.')], port: secondaryPort);

        // Unsigned: refused, nothing changes.
        var refused = NsUpdate(primary.EndPoint, "update add sneaky.example.test 300 A 192.0.2.66", signed: false);
        Assert.NotEqual(0, refused.ExitCode);
        Assert.Contains("REFUSED", refused.Stdout + refused.Stderr);

        var update = NsUpdate(primary.EndPoint, "update add new.example.test 300 A 192.0.2.123\nupdate delete www.example.test A");
        Assert.True(update.ExitCode == 0, update.Stdout + update.Stderr);
        var answer = primary.Client().Udp("new.example.test.", RecordType.A);
        Assert.Equal(IPAddress.Parse("192.0.2.123"), new IPAddress(Assert.Single(answer.Answers).Data));
        Assert.Empty(primary.Client().Udp("www.example.test.", RecordType.A).Answers);
        // (The zone has a wildcard A 192.0.2.99: the refused record's own address must not appear.)
        Assert.DoesNotContain(primary.Client().Udp("sneaky.example.test.", RecordType.A).Answers, r => new IPAddress(r.Data).Equals(IPAddress.Parse("192.0.2.66")));

        // Knot hears the NOTIFY and asks IXFR for the one step; its zone then equals ours.
        Assert.True(secondary.WaitForLog($"-> {Serial + 1}", TimeSpan.FromSeconds(30)), secondary.Log);
        Assert.Contains("IXFR", secondary.Log);
        AssertSameZone(Parse(Kdig(primary.Server.TcpEndPoints[0], Origin), Origin), Parse(Kdig(secondary.EndPoint, Origin), Origin));
    }

    /// <summary>The TXT record update <paramref name="i"/> added (the wildcard has another TXT).</summary>
    private static bool HasUpdate(IPEndPoint server, int i) =>
        new DnsTestClient(server).Udp($"n{i}.example.test.", RecordType.TXT).Answers.Any(r => r.Data.AsSpan(1).SequenceEqual(System.Text.Encoding.ASCII.GetBytes($"u{i}")));

    [Fact]
    public async Task Every_acknowledged_update_survives_a_SIGKILL_at_any_point()
    {
        string dir = Directory.CreateTempSubdirectory("update-crash").FullName;
        try
        {
            string zoneFile = Path.Combine(dir, "example.test.zone");
            File.WriteAllText(zoneFile, TestServer.ExampleZone);
            int port = FreePort.ForUdpAndTcp();
            string config = Path.Combine(dir, "portcullis.yaml");
            File.WriteAllText(config, $"""
                listen: [ "127.0.0.1:{port}" ]
                keys:
                  - name: {Key.Name}
                    algorithm: {Key.Algorithm}
                    secret: {Key.Secret}
                allow-update: [ "key {Key.Name}" ]
                rate-limit:
                  responses-per-second: 0
                zones:
                  - name: example.test
                    file: {zoneFile}
                """);
            var endPoint = new IPEndPoint(IPAddress.Loopback, port);
            var acknowledged = new List<int>();
            var random = new Random(20261130);
            int next = 0;
            for (int round = 0; round < 4; round++)
            {
                using var server = new BackgroundProcess("dotnet", [Path.Combine(AppContext.BaseDirectory, "portcullis.dll"), "serve", "--config", config]);
                Assert.True(server.WaitForOutput("ready", TimeSpan.FromSeconds(30)), server.Output);
                // Everything acknowledged before is served after the restart.
                foreach (int i in acknowledged)
                    Assert.True(HasUpdate(endPoint, i), $"update {i} lost after a SIGKILL\n{server.Output}");
                // A few updates, one at a time, then one more whose process races the SIGKILL.
                int count = random.Next(1, 6);
                for (int k = 0; k < count; k++, next++)
                {
                    var r = NsUpdate(endPoint, $"update add n{next}.example.test 300 TXT \"u{next}\"");
                    Assert.True(r.ExitCode == 0, r.Stdout + r.Stderr);
                    acknowledged.Add(next);
                }
                int raced = next++;
                var racing = Task.Run(() => NsUpdate(endPoint, $"update add n{raced}.example.test 300 TXT \"u{raced}\""));
                if (random.Next(2) == 0) await racing;   // sometimes after it, sometimes while it may be in flight
                ExternalProcess.Run("kill", ["-KILL", server.Id.ToString()]);
                server.WaitForExit(TimeSpan.FromSeconds(10));
                var result = await racing;
                if (result.ExitCode == 0) acknowledged.Add(raced);
            }
            // The files on disk make a consistent zone: `zone check` passes on the zone file, and a
            // last start serves every acknowledged update.
            using var last = new BackgroundProcess("dotnet", [Path.Combine(AppContext.BaseDirectory, "portcullis.dll"), "serve", "--config", config]);
            Assert.True(last.WaitForOutput("ready", TimeSpan.FromSeconds(30)), last.Output);
            foreach (int i in acknowledged)
                Assert.True(HasUpdate(endPoint, i), $"update {i} lost");
            Assert.True(acknowledged.Count >= 4);
        }
        finally { Directory.Delete(dir, true); }
    }
}
