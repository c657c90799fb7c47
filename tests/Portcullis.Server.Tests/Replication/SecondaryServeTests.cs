using System.Net;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Records;
using Portcullis.Server.Configuration;
using Portcullis.Server.Tests.Support;
using Portcullis.Testing;
using Xunit;

namespace Portcullis.Server.Tests.Replication;

/// <summary>
/// `serve` with a secondary zone (type: secondary, primaries: "ADDR@PORT key NAME"): SERVFAIL until
/// the first transfer, then the primary's data; a change on the primary (Knot) arrives by NOTIFY and
/// IXFR (from Knot and from BIND) and is answered within the test's bounded wait; a NOTIFY from a stranger is refused.
/// </summary>
public sealed class SecondaryServeTests
{
    private static readonly PeerKey Key = PeerKey.TestOnly;
    private const string Origin = "example.test.";
    private const uint OldSerial = 2024060101, NewSerial = 2024060102;

    /// <summary>Asks the SOA until the serial served is <paramref name="serial"/>: bounded tries, each waiting for its answer.</summary>
    private static DnsMessage WaitForSerial(TestServer server, uint serial)
    {
        DnsMessage? last = null;
        for (int i = 0; i < 200; i++)
        {
            last = server.Client().Udp(Origin, RecordType.SOA);
            if (last.Rcode == Rcode.NoError && last.Answers.Count == 1 && Portcullis.Server.Replication.SerialNumber.Of(last.Answers[0]) == serial) return last;
            using var pause = new ManualResetEventSlim();
            pause.Wait(100);   // between polls of the served state, not standing in for it
        }
        throw new Xunit.Sdk.XunitException($"serial {serial} never served; last answer {last?.Rcode} {string.Join(' ', last?.Answers ?? [])}");
    }

    [Theory]
    [InlineData("knot", true)]
    [InlineData("bind", true)]
    [InlineData("knot", false)]
    [InlineData("bind", false)]
    public async Task A_secondary_zone_follows_its_primary_through_NOTIFY_and_IXFR(string peer, bool signed)
    {
        string dir = Directory.CreateTempSubdirectory("serve-secondary").FullName;
        try
        {
            int primaryPort = FreePort.ForUdpAndTcp();
            using var server = new TestServer(c =>
            {
                c.Keys = [new KeyConfig { Name = Key.Name, Algorithm = Key.Algorithm, Secret = Key.Secret }];
                c.AllowTransfer = ["127.0.0.0/8"];   // our own secondaries may pull from us
                c.Zones.Add(new ZoneConfig
                {
                    Name = Origin, Type = "secondary", File = Path.Combine(dir, "secondary", "example.test.zone"),
                    Primaries = [signed ? $"127.0.0.1@{primaryPort} key {Key.Name}" : $"127.0.0.1@{primaryPort}"],
                });
            });
            // Before any transfer: SERVFAIL, not REFUSED and not data.
            Assert.Equal(Rcode.ServFail, server.Client().Udp(Origin, RecordType.SOA).Rcode);

            string source = Path.Combine(dir, "source.zone");
            File.WriteAllText(source, TestServer.ExampleZone);
            // The primary NOTIFYs the secondary on every change and keeps the differences for IXFR.
            using PeerServer primary = peer == "knot"
                ? new KnotPeer([new PeerZone("example.test", source)], port: primaryPort, journalDifferences: true, allowTransfer: !signed,
                    transferKey: signed ? Key : null, notifyTo: server.EndPoint)
                : new BindPeer([new PeerZone("example.test", source)], port: primaryPort, transferKey: signed ? Key : null,
                    extraOptions: $"ixfr-from-differences yes; notify explicit; also-notify {{ {server.EndPoint.Address} port {server.EndPoint.Port}; }};"
                        + (signed ? "" : " allow-transfer { 127.0.0.0/8; };"));
            var first = WaitForSerial(server, OldSerial);
            Assert.True(first.Header.AuthoritativeAnswer);
            Assert.Equal("192.0.2.80", string.Join(' ', server.Client().Udp("www.example.test.", RecordType.A).Answers.Select(r => new IPAddress(r.Data))));

            // The primary changes: Knot sends NOTIFY, the secondary asks IXFR and serves the change.
            string changed = TestServer.ExampleZone.Replace(OldSerial.ToString(), NewSerial.ToString()) + "added A 192.0.2.7\n";
            if (primary is KnotPeer knot) { File.WriteAllText(knot.ZoneFile("example.test"), changed); knot.ReloadZone("example.test", NewSerial); }
            else if (primary is BindPeer bind) { File.WriteAllText(bind.ZoneFile("example.test"), changed); bind.ReloadZone("example.test", NewSerial); }
            WaitForSerial(server, NewSerial);
            var added = server.Client().Udp("added.example.test.", RecordType.A);
            Assert.Equal(Rcode.NoError, added.Rcode);
            Assert.Equal(IPAddress.Parse("192.0.2.7"), new IPAddress(Assert.Single(added.Answers).Data));
            Assert.True(File.Exists(Path.Combine(dir, "secondary", "example.test.zone")));

            // Our own secondaries get the change by IXFR from us too (the secondary's journal).
            var fromUs = await Portcullis.Server.Replication.TransferClient.TransferAsync(server.Server.TcpEndPoints[0], Portcullis.Protocol.Names.DnsName.Parse(Origin),
                OldSerial, null, new Portcullis.Server.Replication.TransferLimits(), CancellationToken.None);
            Assert.Equal(Portcullis.Server.Replication.TransferKind.Incremental, fromUs.Kind);
            Assert.Contains(Assert.Single(fromUs.Diffs!).Added, r => r.Owner.ToString() == "added.example.test.");

            // A NOTIFY from an address that is not a primary (and not in allow-notify) is refused.
            var notify = DnsTestClient.Query(Origin, RecordType.SOA);
            notify.Header = notify.Header with { Opcode = Opcode.Notify };
            var refused = DnsMessage.Parse(server.ClientFrom("127.0.0.77").UdpRaw(notify.ToWire()));
            Assert.Equal(Rcode.Refused, refused.Rcode);
        }
        finally { Directory.Delete(dir, true); }
    }
}
