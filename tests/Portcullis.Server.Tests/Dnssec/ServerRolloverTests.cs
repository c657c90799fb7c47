using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Portcullis.Protocol.Dnssec;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Server.Configuration;
using Portcullis.Server.Dnssec;
using Portcullis.Server.Hosting;
using Xunit;
using static Portcullis.Server.Tests.Transfer.TransferClient;

namespace Portcullis.Server.Tests.Dnssec;

/// <summary>
/// Whole rollovers run by the server itself on a fake clock: its signing timer takes each step
/// (RollOverTests check the key engine alone). Every 20 fake minutes the zone is pulled by AXFR and
/// a validator model checks what a cache could hold at that moment: the DNSKEY RRsets fetched
/// within their TTL validate the fresh data, the data fetched within its TTL validates under the
/// fresh DNSKEY RRset, and the parent's DS sets (now, and cached within the DS TTL) validate the
/// fresh DNSKEY RRset. The parent follows the zone's CDS (RFC 7344 §4.1) and tells the server
/// with ds-seen / ds-withdrawn (through the key directory, as the CLI does) and a reload.
/// </summary>
public sealed class ServerRolloverTests
{
    private static readonly DnsName Origin = DnsName.Parse("example.test.");
    private static readonly TimeSpan Step = TimeSpan.FromMinutes(20);
    private static readonly TimeSpan Ttl = TimeSpan.FromHours(1);   // DNSKEY (dnskey-ttl) and the parent's DS (parent-ds-ttl)

    private sealed record Fetch(DateTimeOffset At, List<ResourceRecord> Records);

    [Theory]
    [InlineData("zsk")]
    [InlineData("ksk")]
    [InlineData("algorithm")]
    public void A_rollover_runs_to_its_end_on_the_servers_own_timer_and_a_validator_with_cached_state_always_validates(string kind)
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        string dir = Directory.CreateTempSubdirectory("portcullis-server-rollover-").FullName;
        try
        {
            string file = Path.Combine(dir, "example.test.zone");
            File.WriteAllText(file, Support.TestServer.ExampleZone);
            var config = new ServerConfig
            {
                Listen = [$"{Portcullis.Server.Tests.Support.TestServer.NextAddress()}:0"],
                AllowTransfer = ["127.0.0.0/8"],
                Zones = [new ZoneConfig { Name = "example.test.", File = file, DnssecSigning = true, DnssecPolicy = "fast" }],
                DnssecPolicies =
                {
                    ["fast"] = new DnssecPolicyConfig
                    {
                        ZskLifetime = kind == "zsk" ? "1d" : "0", KskLifetime = kind == "ksk" ? "1d" : "0",
                        DnskeyTtl = 3600, PropagationDelay = "10m", ParentDsTtl = "1h", ParentPropagationDelay = "10m",
                    },
                },
            };
            // An algorithm rollover starts when a reload brings a policy with another algorithm (13 → 15).
            var reloaded = config;
            using var server = new DnsServer(config, NullLoggerFactory.Instance, () => reloaded, clock);
            server.Start();
            string keyDir = Path.Combine(dir, "keys");

            var fetches = new List<Fetch>();
            var parent = new List<(DateTimeOffset At, List<byte[]> Ds)>();
            var first = Pull(server, clock);
            var firstKeys = Dnskeys(first.Records).Select(k => DnsKey.KeyTag(k)).ToHashSet();
            parent.Add((clock.GetUtcNow(), Cds(first.Records)));
            FollowCds(server, keyDir, clock, parent, first.Records);
            if (kind == "algorithm")
            {
                reloaded = new ServerConfig
                {
                    Listen = config.Listen, AllowTransfer = config.AllowTransfer, Zones = config.Zones,
                    DnssecPolicies = { ["fast"] = new DnssecPolicyConfig
                    {
                        Algorithm = "ed25519", ZskLifetime = "0", KskLifetime = "0",
                        DnskeyTtl = 3600, PropagationDelay = "10m", ParentDsTtl = "1h", ParentPropagationDelay = "10m",
                    } },
                };
                Assert.Equal(0, server.Reload());
            }
            bool rolled = false;
            var trace = new List<string>();
            // The zone has a record with a TTL of one day: the old ZSK's signatures live that long in caches.
            for (int i = 0; i < 60 * 3 && !rolled; i++)
            {
                clock.Advance(Step);
                var fetch = Pull(server, clock);
                FollowCds(server, keyDir, clock, parent, fetch.Records);
                fetch = Pull(server, clock);
                AssertAValidatorAlwaysValidates(fetch, fetches, parent, clock.GetUtcNow());
                fetches.Add(fetch);
                // The end: the first key of the role rolled is removed (out of the zone) and another is active.
                var status = KeysStatus(keyDir, clock);
                trace.Add($"{clock.GetUtcNow():MM-dd HH:mm} serial {Portcullis.Server.Replication.SerialNumber.Of(fetch.Records[0])}: "
                    + string.Join(", ", status.Select(s => $"{s.KeyTag} {s.Role} {s.State} next {s.NextTransition:MM-dd HH:mm}")));
                if (kind == "algorithm")
                {
                    // The end: only Ed25519 keys and signatures; the old keys removed.
                    rolled = status.Where(s => firstKeys.Contains(s.KeyTag)).All(s => s.State == KeyState.Removed)
                        && fetch.Records.Where(r => r.Type == RecordType.RRSIG).All(r => r.Data[2] == (byte)DnssecAlgorithm.Ed25519);
                    continue;
                }
                var role = kind == "ksk" ? KeyRole.Ksk : KeyRole.Zsk;
                rolled = status.Any(s => s.Role == role && firstKeys.Contains(s.KeyTag) && s.State == KeyState.Removed)
                    && status.Any(s => s.Role == role && !firstKeys.Contains(s.KeyTag) && s.State == KeyState.Active);
                if (rolled)
                    Assert.DoesNotContain(Dnskeys(fetch.Records), k => DnsKey.IsSecureEntryPoint(k) == (kind == "ksk") && firstKeys.Contains(DnsKey.KeyTag(k)));
            }
            Assert.True(rolled, $"the {kind} rollover did not end within 60 fake hours: "
                + string.Join("\n", trace.TakeLast(12)));
            // The other role kept its key (an algorithm rollover replaces both); the serial went up with every new version.
            var last = fetches[^1].Records;
            if (kind == "algorithm") Assert.All(Dnskeys(last), k => Assert.Equal((byte)DnssecAlgorithm.Ed25519, k[3]));
            else Assert.Contains(Dnskeys(last), k => DnsKey.IsSecureEntryPoint(k) != (kind == "ksk") && firstKeys.Contains(DnsKey.KeyTag(k)));
            Assert.True(Portcullis.Server.Replication.SerialNumber.IsNewer(Portcullis.Server.Replication.SerialNumber.Of(last[0]), Portcullis.Server.Replication.SerialNumber.Of(first.Records[0])));
        }
        finally { Directory.Delete(dir, true); }
    }

    private static Fetch Pull(DnsServer server, FakeTimeProvider clock)
    {
        var records = Transfer.TransferClient.Pull(server.TcpEndPoints[0], "example.test.").Records;
        return new Fetch(clock.GetUtcNow(), records.Take(records.Count - 1).ToList());
    }

    private static IReadOnlyList<KeyStatus> KeysStatus(string keyDir, TimeProvider clock)
    {
        using var keys = ZoneKeys.OpenForTools(Origin, keyDir, clock);
        return keys.Status;
    }

    private static List<byte[]> Dnskeys(List<ResourceRecord> records) =>
        records.Where(r => r.Type == RecordType.DNSKEY && r.Owner.Equals(Origin)).Select(r => r.Data).ToList();

    private static List<byte[]> Cds(List<ResourceRecord> records) =>
        records.Where(r => r.Type == RecordType.CDS && r.Owner.Equals(Origin)).Select(r => r.Data).ToList();

    /// <summary>
    /// The parent follows the CDS RRset: a DS it asks for is added (then ds-seen), a DS it no longer
    /// lists is removed (then ds-withdrawn), and the server is reloaded to hear of it at once.
    /// </summary>
    private static void FollowCds(DnsServer server, string keyDir, FakeTimeProvider clock,
        List<(DateTimeOffset At, List<byte[]> Ds)> parent, List<ResourceRecord> records)
    {
        var cds = Cds(records);
        var current = parent[^1].Ds;
        var added = cds.Where(d => !current.Exists(c => c.AsSpan().SequenceEqual(d))).ToList();
        var removed = current.Where(c => !cds.Exists(d => d.AsSpan().SequenceEqual(c))).ToList();
        using var keys = ZoneKeys.OpenForTools(Origin, keyDir, clock);
        var waiting = keys.Status.Where(s => s.Ds == DsState.Submitted).Select(s => s.KeyTag).ToList();
        var leaving = keys.Status.Where(s => s.Ds == DsState.WithdrawnSubmitted).Select(s => s.KeyTag).ToList();
        if (added.Count == 0 && removed.Count == 0 && waiting.Count == 0 && leaving.Count == 0) return;
        if (added.Count > 0 || removed.Count > 0) parent.Add((clock.GetUtcNow(), cds));
        foreach (var tag in waiting) keys.DsSeen(tag);
        foreach (var tag in leaving) keys.DsWithdrawn(tag);
        Assert.Equal(0, server.Reload());
    }

    private static void AssertAValidatorAlwaysValidates(Fetch fresh, List<Fetch> earlier, List<(DateTimeOffset At, List<byte[]> Ds)> parent, DateTimeOffset now)
    {
        var freshKeys = fresh.Records.Where(r => r.Type == RecordType.DNSKEY && r.Owner.Equals(Origin)).ToList();
        var cached = earlier.Where(f => now - f.At < Ttl).ToList();
        // The parent's DS RRset now, and those a cache may still hold: each validates the fresh DNSKEY RRset.
        var dsSets = parent.Where((p, i) => i == parent.Count - 1 || now - parent[i + 1].At < Ttl).ToList();
        foreach (var (at, ds) in dsSets)
            Assert.True(DnskeyValidatesUnder(ds, fresh.Records, now), $"the DS set of {at:u} does not validate the DNSKEY RRset at {now:u}");
        foreach (var (owner, type, rrset, sigs) in SignedRrsets(fresh.Records))
        {
            if (type is RecordType.DNSKEY or RecordType.CDS or RecordType.CDNSKEY) continue;
            Assert.True(AnyValid(sigs, rrset, freshKeys, now), $"{owner} {type} at {now:u}: no signature verifies with the DNSKEY RRset");
            foreach (var old in cached)
            {
                var oldKeys = old.Records.Where(r => r.Type == RecordType.DNSKEY && r.Owner.Equals(Origin)).ToList();
                Assert.True(AnyValid(sigs, rrset, oldKeys, now), $"{owner} {type} at {now:u}: not valid under the DNSKEY RRset cached at {old.At:u}");
            }
        }
        // Data cached within its own TTL (a day for the zone's longest) under the fresh DNSKEY RRset.
        foreach (var old in earlier)
            foreach (var (owner, type, rrset, sigs) in SignedRrsets(old.Records))
            {
                if (type is RecordType.DNSKEY or RecordType.CDS or RecordType.CDNSKEY) continue;
                if (now - old.At >= TimeSpan.FromSeconds(rrset[0].Ttl)) continue;
                Assert.True(AnyValid(sigs, rrset, freshKeys, now), $"{owner} {type} cached at {old.At:u}: not valid under the DNSKEY RRset of {now:u}");
            }
    }

    private static bool DnskeyValidatesUnder(List<byte[]> ds, List<ResourceRecord> records, DateTimeOffset now)
    {
        var dnskeys = records.Where(r => r.Type == RecordType.DNSKEY && r.Owner.Equals(Origin)).ToList();
        var sigs = records.Where(r => r.Type == RecordType.RRSIG && r.Owner.Equals(Origin) && (RecordType)(r.Data[0] << 8 | r.Data[1]) == RecordType.DNSKEY).ToList();
        foreach (var key in dnskeys)
        {
            if (!ds.Exists(d => DsDigest.Compare(d, Origin, key.Data) == DsMatch.Match)) continue;
            if (sigs.Exists(s => DnssecVerifier.Verify(s, dnskeys, key, now).IsValid)) return true;
        }
        return false;
    }

    private static bool AnyValid(List<ResourceRecord> sigs, List<ResourceRecord> rrset, List<ResourceRecord> dnskeys, DateTimeOffset now) =>
        sigs.Exists(s => DnssecVerifier.Verify(s, rrset, dnskeys, now).IsValid);

    private static IEnumerable<(DnsName Owner, RecordType Type, List<ResourceRecord> Rrset, List<ResourceRecord> Sigs)> SignedRrsets(List<ResourceRecord> records)
    {
        var sigs = records.Where(r => r.Type == RecordType.RRSIG).ToLookup(r => (r.Owner, (RecordType)(r.Data[0] << 8 | r.Data[1])));
        foreach (var group in records.Where(r => r.Type != RecordType.RRSIG).GroupBy(r => (r.Owner, r.Type)))
        {
            var covering = sigs[group.Key].ToList();
            if (covering.Count > 0) yield return (group.Key.Owner, group.Key.Type, group.ToList(), covering);
        }
    }
}
