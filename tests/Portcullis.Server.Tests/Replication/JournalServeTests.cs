using Microsoft.Extensions.Logging.Abstractions;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Server.Hosting;
using Portcullis.Server.Replication;
using Portcullis.Server.Tests.Support;
using Portcullis.Testing;
using Xunit;

namespace Portcullis.Server.Tests.Replication;

/// <summary>
/// A primary zone with its journal under `serve`: an edited zone file reloaded with a newer serial
/// becomes an IXFR step (as BIND's ixfr-from-differences), answered incrementally to our own client
/// and to kdig, and still after a restart (the journal is on disk).
/// </summary>
public sealed class JournalServeTests
{
    private const string Origin = "example.test.";
    private const uint OldSerial = 2024060101, NewSerial = 2024060102;
    private static string Changed => TestServer.ExampleZone.Replace(OldSerial.ToString(), NewSerial.ToString())
        .Replace("www                 A     192.0.2.80", "www                 A     192.0.2.81") + "added A 192.0.2.7\n";

    private static async Task<TransferResult> Ixfr(TestServer server, uint serial) =>
        await Portcullis.Server.Replication.TransferClient.TransferAsync(server.Server.TcpEndPoints[0], DnsName.Parse(Origin), serial, null,
            new TransferLimits(), CancellationToken.None);

    [Fact]
    public async Task An_edited_zone_file_is_served_by_IXFR_as_one_step_even_after_a_restart()
    {
        using (var server = new TestServer(Transfer.TransferClient.AllowLoopback, (Origin, TestServer.ExampleZone)))
        {
            File.WriteAllText(server.ZoneFile(Origin), Changed);
            Assert.Equal(0, server.Server.Reload());

            var result = await Ixfr(server, OldSerial);
            Assert.Equal(TransferKind.Incremental, result.Kind);
            var step = Assert.Single(result.Diffs!);
            Assert.Equal(["www.example.test. 3600 IN A 192.0.2.80"], step.Deleted.Select(r => r.ToString()));
            Assert.Equal(["added.example.test. 3600 IN A 192.0.2.7", "www.example.test. 3600 IN A 192.0.2.81"], step.Added.Select(r => r.ToString()).Order());

            // kdig reads the same incremental answer: SOA new, SOA old, deleted, SOA new, added, SOA new.
            var kdig = ExternalProcess.Run("kdig", [$"@{server.EndPoint.Address}", "-p", server.EndPoint.Port.ToString(), "+retry=0", Origin, $"IXFR={OldSerial}"]).EnsureSuccess();
            var soas = kdig.Stdout.Split('\n').Where(l => l.Contains("\tSOA\t")).Select(l => l.Split('\t', StringSplitOptions.RemoveEmptyEntries)[^1].Split(' ')[2]).ToList();
            Assert.Equal([$"{NewSerial}", $"{OldSerial}", $"{NewSerial}", $"{NewSerial}"], soas);

            // Up to date: the SOA alone; a serial the journal does not know: the whole zone.
            Assert.Equal(TransferKind.UpToDate, (await Ixfr(server, NewSerial)).Kind);
            Assert.Equal(TransferKind.Full, (await Ixfr(server, 2020010101)).Kind);
        }
        // A restart on the same files (TestServer keeps its directory only while it lives: reuse by hand).
        string dir = Directory.CreateTempSubdirectory("journal-restart").FullName;
        try
        {
            string file = Path.Combine(dir, "example.test.zone");
            File.WriteAllText(file, TestServer.ExampleZone);
            using (var first = new TestServer(c => { Transfer.TransferClient.AllowLoopback(c); c.Zones.Add(new Configuration.ZoneConfig { Name = Origin, File = file }); }))
            {
                File.WriteAllText(file, Changed);
                Assert.Equal(0, first.Server.Reload());
            }
            Assert.True(File.Exists(file + ".jnl"));
            using var second = new TestServer(c => { Transfer.TransferClient.AllowLoopback(c); c.Zones.Add(new Configuration.ZoneConfig { Name = Origin, File = file }); });
            var again = await Ixfr(second, OldSerial);
            Assert.Equal(TransferKind.Incremental, again.Kind);
            Assert.Equal(NewSerial, again.Serial);
        }
        finally { Directory.Delete(dir, true); }
    }
}
