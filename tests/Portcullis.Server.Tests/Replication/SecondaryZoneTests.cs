using Microsoft.Extensions.Logging.Abstractions;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Tsig;
using Portcullis.Server.Authoritative;
using Portcullis.Server.Replication;
using Portcullis.Server.Tests.Support;
using Portcullis.Testing;
using Xunit;
using static Portcullis.Server.Tests.Transfer.TransferClient;

namespace Portcullis.Server.Tests.Replication;

/// <summary>
/// The secondary-zone engine against real primaries (Knot with a journal, BIND with
/// ixfr-from-differences), TSIG-signed: the first pull is AXFR, a change on the primary arrives by
/// IXFR when asked (as on NOTIFY), the copy on disk is served at once after a restart, and the
/// zone served always equals the primary's AXFR.
/// </summary>
public sealed class SecondaryZoneTests
{
    private static readonly PeerKey Key = PeerKey.TestOnly;
    private const string Origin = "example.test.";
    private const uint OldSerial = 2024060101, NewSerial = 2024060102;
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    private static TsigKey Tsig() => new(DnsName.Parse(Key.Name), TsigAlgorithm.HmacSha256, Convert.FromBase64String(Key.Secret));

    private static string Changed => TestServer.ExampleZone.Replace(OldSerial.ToString(), NewSerial.ToString()) + "added A 192.0.2.7\n";

    /// <summary>The zone served holds exactly the records of the zone text (as sets: order is free).</summary>
    private static void AssertSameRecords(string zoneText, Zone zone) =>
        Assert.Equal(Parse(zoneText, Origin).Order(StringComparer.Ordinal), Lines(zone.Records()).Order(StringComparer.Ordinal));

    [Theory]
    [InlineData("knot")]
    [InlineData("bind")]
    public async Task Pulls_by_AXFR_then_IXFR_and_serves_its_saved_copy_after_a_restart(string peer)
    {
        string dir = Directory.CreateTempSubdirectory("secondary").FullName;
        try
        {
            string source = Path.Combine(dir, "source.zone");
            File.WriteAllText(source, TestServer.ExampleZone);
            using PeerServer primary = peer == "knot"
                ? new KnotPeer([new PeerZone("example.test", source)], journalDifferences: true, transferKey: Key)
                : new BindPeer([new PeerZone("example.test", source)], extraOptions: "ixfr-from-differences yes;", transferKey: Key);
            string file = Path.Combine(dir, "secondary", "example.test.zone");
            Zone? served = null;
            var origin = DnsName.Parse(Origin);
            PrimaryServer[] primaries = [new(primary.EndPoint, Tsig())];

            await using (var secondary = new SecondaryZone(origin, primaries, file, z => served = z, NullLogger.Instance))
            {
                secondary.Start();
                await secondary.WaitForSerialAsync(OldSerial).WaitAsync(Wait);
                Assert.Equal("AXFR", secondary.LastTransfer);
                AssertSameRecords(TestServer.ExampleZone, served!);

                // The primary changes; a NOTIFY (here: the call it leads to) brings the change by IXFR.
                if (primary is KnotPeer knot) { File.WriteAllText(knot.ZoneFile("example.test"), Changed); knot.ReloadZone("example.test", NewSerial); }
                else if (primary is BindPeer bind) { File.WriteAllText(bind.ZoneFile("example.test"), Changed); bind.ReloadZone("example.test", NewSerial); }
                secondary.Notify();
                await secondary.WaitForSerialAsync(NewSerial).WaitAsync(Wait);
                Assert.Equal("IXFR", secondary.LastTransfer);
                Assert.Equal(NewSerial, served!.Serial);
                AssertSameRecords(Changed, served);
            }

            // Restart: the saved copy is served before any primary is asked.
            Assert.True(File.Exists(file));
            Zone? again = null;
            await using (var restarted = new SecondaryZone(origin, [new(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 9), Tsig())], file, z => again = z, NullLogger.Instance))
            {
                restarted.Start();
                Assert.NotNull(again);
                Assert.False(again!.Unavailable);
                Assert.Equal(NewSerial, again.Serial);
                AssertSameRecords(Changed, again);
            }
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public async Task A_wrong_key_gets_no_zone()
    {
        string dir = Directory.CreateTempSubdirectory("secondary-key").FullName;
        try
        {
            string source = Path.Combine(dir, "source.zone");
            File.WriteAllText(source, TestServer.ExampleZone);
            using var knot = new KnotPeer([new PeerZone("example.test", source)], transferKey: Key);
            var wrong = new TsigKey(DnsName.Parse(Key.Name), TsigAlgorithm.HmacSha256, new byte[32]);
            var e = await Assert.ThrowsAsync<TransferException>(() =>
                Portcullis.Server.Replication.TransferClient.TransferAsync(knot.EndPoint, DnsName.Parse(Origin), null, wrong, new TransferLimits(), CancellationToken.None));
            Assert.Contains("BadSig", e.Message, StringComparison.OrdinalIgnoreCase);
        }
        finally { Directory.Delete(dir, true); }
    }
}
