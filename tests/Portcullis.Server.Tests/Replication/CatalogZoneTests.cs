using System.Net;
using System.Text;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.ZoneText;
using Portcullis.Server.Hosting;
using Portcullis.Server.Replication;
using Portcullis.Server.Tests.Support;
using TestTransfer = Portcullis.Server.Tests.Transfer.TransferClient;
using Portcullis.Testing;
using Xunit;

namespace Portcullis.Server.Tests.Replication;

/// <summary>
/// Catalog zones (RFC 9432): <see cref="CatalogZone.Parse(DnsName, IEnumerable{ResourceRecord})"/>
/// on hand-written catalogs (version, member nodes, properties, broken producers),
/// <see cref="CatalogZone.Diff"/>, <see cref="CatalogZone.Build"/> round trips, a catalog generated
/// by Knot read by us, and our catalog served by Portcullis consumed by BIND, which provisions the
/// member zones from it.
/// </summary>
public sealed class CatalogZoneTests
{
    private static readonly DnsName Catalog = DnsName.Parse("catalog.test.");

    private static DnsName N(string text) => DnsName.Parse(text);

    /// <summary>Records of a catalog written as zone text relative to catalog.test.</summary>
    private static List<ResourceRecord> Records(string body)
    {
        string text = "$ORIGIN catalog.test.\n$TTL 0\n@ SOA invalid. invalid. 1 3600 600 2147483646 0\n@ NS invalid.\n" + body;
        using var reader = new ZoneReader(new StringReader(text), Catalog);
        return reader.ReadRecords().ToList();
    }

    private static string Text(IEnumerable<ResourceRecord> records)
    {
        var w = new StringWriter();
        ZoneWriter.Write(w, records);
        return w.ToString();
    }

    [Fact]
    public void A_built_catalog_parses_back_to_its_members_with_stable_ids()
    {
        DnsName[] members = [N("a.test."), N("B.Example."), N("c.d.test.")];
        var built = CatalogZone.Build(Catalog, 7, members);

        // A valid zone: it compiles as a zone file would, and its text reads back the same.
        var zone = ZoneLoader.FromRecords(Catalog, built, "catalog.test.zone");
        Assert.Equal(7u, zone.Serial);
        Assert.Equal(["catalog.test. 0 IN SOA invalid. invalid. 7 3600 600 2147483646 0", "catalog.test. 0 IN NS invalid.",
            "version.catalog.test. 0 IN TXT \"2\""], built.Take(3).Select(r => r.ToString()));
        Assert.Equal(3, built.Count(r => r.Type == RecordType.PTR));

        var parsed = CatalogZone.Parse(zone);
        Assert.True(parsed.Ok, parsed.Error);
        Assert.Empty(parsed.Warnings);
        Assert.Equal(members.OrderBy(m => m.ToString().ToLowerInvariant()), parsed.Members.Select(m => m.Zone).OrderBy(m => m.ToString().ToLowerInvariant()));
        foreach (var m in parsed.Members)
        {
            Assert.Equal(CatalogZone.MemberId(m.Zone), m.Id);
            Assert.Equal(16, m.Id.Length);
            Assert.Null(m.Group);
            Assert.Null(m.ChangeOfOwnership);
        }
        // The ID is a function of the name alone (case does not count): adding a zone or rebuilding
        // keeps every other member's ID, so the consumers reset nothing (RFC 9432 §5.4).
        Assert.Equal(CatalogZone.MemberId(N("b.example.")), CatalogZone.MemberId(N("B.EXAMPLE.")));
        var rebuilt = CatalogZone.Parse(Catalog, CatalogZone.Build(Catalog, 8, [N("new.test."), .. Enumerable.Reverse(members), N("a.test.")]));
        var (added, removed) = CatalogZone.Diff(parsed.Members, rebuilt.Members);
        Assert.Equal([N("new.test.")], added);
        Assert.Empty(removed);
        Assert.Equal(4, rebuilt.Members.Count);   // a.test listed twice in the input: one member node

        // Through zone text (what a zone file or kdig prints) the result is the same.
        using var reader = new ZoneReader(new StringReader(Text(built)), Catalog);
        var again = CatalogZone.Parse(Catalog, reader.ReadRecords());
        Assert.Equal(parsed.Members, again.Members);

        Assert.Throws<ArgumentException>(() => CatalogZone.Build(Catalog, 1, [Catalog]));
    }

    [Theory]
    [InlineData("", "no version property")]
    [InlineData("version TXT \"1\"\n", "schema version \"1\"")]
    [InlineData("version TXT \"3\"\n", "schema version \"3\"")]
    [InlineData("version TXT \"2\" \"2\"\n", "schema version \"2\" \"2\"")]
    [InlineData("version TXT \"2\"\nversion TXT \"1\"\n", "2 version TXT records")]
    [InlineData("version A 192.0.2.1\n", "no version property")]
    public void A_catalog_without_version_2_is_not_used(string version, string why)
    {
        var parsed = CatalogZone.Parse(Catalog, Records(version + "m1.zones PTR a.test.\n"));
        Assert.False(parsed.Ok);
        Assert.Contains(why, parsed.Error);
        Assert.StartsWith("catalog zone catalog.test. ", parsed.Error);
        Assert.Empty(parsed.Members);
    }

    [Fact]
    public void Broken_member_nodes_are_ignored_with_a_warning_and_the_rest_kept()
    {
        var parsed = CatalogZone.Parse(Catalog, Records("""
            version TXT "2"
            m1.zones PTR a.test.
            m2.zones PTR b.test.
            m2.zones PTR c.test.
            m0.zones PTR a.test.
            m9.zones PTR A.TEST.
            m3.zones PTR d.test.
            m3.zones PTR d.test.
            m4.zones PTR catalog.test.
            """));
        Assert.True(parsed.Ok, parsed.Error);
        // a.test is at m0, m1 and m9: m0 comes first in canonical order and wins; two PTRs at m2:
        // neither b.test nor c.test; the same PTR twice at m3 is one record; the catalog itself is no member.
        Assert.Equal(["a.test.:m0", "d.test.:m3"], parsed.Members.Select(m => $"{m.Zone}:{m.Id}"));
        Assert.Equal(4, parsed.Warnings.Count);
        Assert.Contains(parsed.Warnings, w => w.Contains("member zone a.test. is listed again at m1.zones.catalog.test. (first at m0.zones.catalog.test.)"));
        Assert.Contains(parsed.Warnings, w => w.Contains("member zone A.TEST. is listed again at m9.zones.catalog.test."));
        Assert.Contains(parsed.Warnings, w => w.Contains("member node m2.zones.catalog.test. has 2 PTR records, not one"));
        Assert.Contains(parsed.Warnings, w => w.Contains("names the catalog itself"));
    }

    [Fact]
    public void Group_and_coo_properties_are_read_and_unknown_records_ignored()
    {
        var parsed = CatalogZone.Parse(Catalog, Records("""
            version TXT "2"
            M1.zones PTR a.test.
            group.m1.zones TXT "nodnssec"
            coo.m1.zones PTR other-catalog.test.
            m2.zones PTR b.test.
            group.m2.zones TXT "one" "two"
            m3.zones PTR c.test.
            group.m3.zones TXT "x"
            group.m3.zones TXT "y"
            coo.m3.zones PTR x.test.
            coo.m3.zones PTR y.test.
            m3.zones TXT "a TXT at a member node means nothing"
            serial.m1.zones TXT "an unknown property"
            ext.catalog.test. TXT "a custom property"
            zones A 192.0.2.1
            deep.below.m1.zones PTR e.test.
            orphan.zones.zones PTR f.test.
            """));
        Assert.True(parsed.Ok, parsed.Error);
        Assert.Equal(3, parsed.Members.Count);
        var a = parsed.Members.Single(m => m.Zone == N("a.test."));
        Assert.Equal("m1", a.Id);   // kept in lower case: IDs are compared as DNS labels
        Assert.Equal("nodnssec", a.Group);
        Assert.Equal(N("other-catalog.test."), a.ChangeOfOwnership);
        // Ambiguous properties are dropped, the member itself is kept.
        Assert.Null(parsed.Members.Single(m => m.Zone == N("b.test.")).Group);
        var c = parsed.Members.Single(m => m.Zone == N("c.test."));
        Assert.Null(c.Group);
        Assert.Null(c.ChangeOfOwnership);
        Assert.Equal(3, parsed.Warnings.Count);
        Assert.Equal(2, parsed.Warnings.Count(w => w.Contains("group property")));
        Assert.Single(parsed.Warnings, w => w.Contains("coo property of m3.zones.catalog.test."));
    }

    [Fact]
    public void Diff_reports_added_and_removed_zones_and_an_id_change_as_both()
    {
        CatalogMember M(string zone, string id) => new(N(zone), id, null);
        var (added, removed) = CatalogZone.Diff(
            [M("a.test.", "1"), M("b.test.", "2"), M("c.test.", "3")],
            [M("A.TEST.", "1"), M("c.test.", "9"), M("d.test.", "4")]);
        // a.test stays (case of the name does not count); c.test's ID changed: reset (RFC 9432 §5.4).
        Assert.Equal([N("c.test."), N("d.test.")], added);
        Assert.Equal([N("b.test."), N("c.test.")], removed);
        var none = CatalogZone.Diff([M("a.test.", "1")], [M("a.test.", "1")]);
        Assert.Empty(none.Added);
        Assert.Empty(none.Removed);
    }

    private static string MemberZone(string origin, uint serial = 2024010101) => $"""
        $ORIGIN {origin}
        $TTL 300
        @ SOA ns.{origin} hostmaster.{origin} {serial} 3600 600 86400 300
        @ NS ns.{origin}
        ns A 192.0.2.53
        www A 192.0.2.80

        """;

    [Fact]
    public void A_catalog_generated_by_Knot_parses_to_its_members()
    {
        string dir = Directory.CreateTempSubdirectory("portcullis-catalog-knot-").FullName;
        try
        {
            foreach (var z in new[] { "a.test", "b.test" })
                File.WriteAllText(Path.Combine(dir, z + ".zone"), MemberZone(z + "."));
            int port = FreePort.ForUdpAndTcp();
            // Knot generates catalog.test from the zones marked as its members (catalog-role:
            // generate / member); it has no zone file of its own.
            File.WriteAllText(Path.Combine(dir, "knot.conf"), $"""
                server:
                    rundir: "{dir}"
                    listen: 127.0.0.1@{port}
                    udp-workers: 1
                    tcp-workers: 1
                    background-workers: 1
                database:
                    storage: "{dir}"
                log:
                  - target: stderr
                    any: info
                acl:
                  - id: loopback-transfer
                    address: 127.0.0.0/8
                    action: transfer
                template:
                  - id: default
                    storage: "{dir}"
                    file: "%s.zone"
                    acl: loopback-transfer
                zone:
                  - domain: catalog.test
                    catalog-role: generate
                  - domain: a.test
                    catalog-role: member
                    catalog-zone: catalog.test
                  - domain: b.test
                    catalog-role: member
                    catalog-zone: catalog.test

                """);
            using var knot = new BackgroundProcess("knotd", ["-c", Path.Combine(dir, "knot.conf")], dir);
            foreach (var line in new[] { "[a.test.] loaded", "[b.test.] loaded", "[catalog.test.] loaded" })
                Assert.True(knot.WaitForOutput(line, ExternalProcess.DefaultTimeout), $"knotd did not log `{line}`:\n{knot.Output}");

            // Knot may generate the catalog before the second member is loaded and then update it:
            // ask (bounded) until the catalog it serves lists both.
            var endPoint = new IPEndPoint(IPAddress.Loopback, port);
            CatalogParse? parsed = null;
            string axfr = "";
            for (int i = 0; i < 50; i++)
            {
                axfr = TestTransfer.Kdig(endPoint, "catalog.test.");
                using var reader = new ZoneReader(new StringReader(axfr), Catalog);
                parsed = CatalogZone.Parse(Catalog, reader.ReadRecords());
                if (parsed.Ok && parsed.Members.Count == 2) break;
                using var pause = new ManualResetEventSlim();
                pause.Wait(100);   // between polls of what Knot serves, not standing in for it
            }
            Assert.True(parsed!.Ok, parsed.Error);
            Assert.Empty(parsed.Warnings);
            Assert.Equal(["a.test.", "b.test."], parsed.Members.Select(m => m.Zone.ToString()).Order());
            // Knot's own IDs (its hash), one label each: not ours, and that is fine (§4.3 only asks for uniqueness).
            Assert.All(parsed.Members, m => Assert.Matches("^[0-9a-z]+$", m.Id));
            Assert.Contains("version.catalog.test.", axfr);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void BIND_consumes_our_catalog_and_serves_its_member_zones()
    {
        string[] members = ["a.test.", "b.test."];
        var catalog = CatalogZone.Build(Catalog, 1, members.Select(N));
        int primaryPort = FreePort.ForUdpAndTcp();
        using var primary = new TestServer(c =>
        {
            TestTransfer.AllowLoopback(c);
            // One port for UDP and TCP: named asks the SOA over UDP, then transfers over TCP.
            c.Listen = [$"127.0.0.1:{primaryPort}"];
        }, [("catalog.test.", Text(catalog)), .. members.Select((m, i) => (m, MemberZone(m, 2024010101u + (uint)i)))]);

        string dir = Directory.CreateTempSubdirectory("portcullis-catalog-bind-").FullName;
        try
        {
            int port = FreePort.ForUdpAndTcp();
            string at = $"127.0.0.1 port {primaryPort}";
            // named is a secondary of the catalog; catalog-zones makes it provision every member
            // as a secondary of the default primaries (BIND 9.18 adds them as new zones).
            var config = new StringBuilder(BindPeer.Options(dir, port, $$"""
                    recursion no;
                    dnssec-validation no;
                    allow-query { any; };
                    notify no;
                    allow-new-zones yes;
                    catalog-zones { zone "catalog.test" default-primaries { {{at}}; }; };
                """));
            config.Append($"zone \"catalog.test\" {{ type secondary; file \"catalog.test.db\"; primaries {{ {at}; }}; }};\n");
            File.WriteAllText(Path.Combine(dir, "named.conf"), config.ToString());
            using var named = new BackgroundProcess(File.Exists("/usr/sbin/named") ? "/usr/sbin/named" : "named",
                ["-g", "-c", Path.Combine(dir, "named.conf")], dir);
            string[] lines =
            [
                $"transfer of 'catalog.test/IN' from 127.0.0.1#{primaryPort}: Transfer completed",
                .. members.Select(m => $"catz: adding zone '{m.TrimEnd('.')}' from catalog 'catalog.test'"),
                .. members.Select(m => $"transfer of '{m.TrimEnd('.')}/IN' from 127.0.0.1#{primaryPort}: Transfer completed"),
            ];
            foreach (var line in lines)
                Assert.True(named.WaitForOutput(line, ExternalProcess.DefaultTimeout), $"named did not log `{line}`:\n{named.Output}");

            // named now answers for the member zones with the primary's data.
            var client = new DnsTestClient(new IPEndPoint(IPAddress.Loopback, port));
            for (int i = 0; i < members.Length; i++)
            {
                var soa = client.Udp(members[i], RecordType.SOA);
                Assert.Equal(Rcode.NoError, soa.Rcode);
                Assert.True(soa.Header.AuthoritativeAnswer);
                Assert.Equal(2024010101u + (uint)i, Portcullis.Server.Replication.SerialNumber.Of(Assert.Single(soa.Answers)));
                var www = client.Udp("www." + members[i], RecordType.A);
                Assert.Equal("192.0.2.80", RdataText.Format(RecordType.A, Assert.Single(www.Answers).Data));
            }
            // A zone not in the catalog is not served by it.
            Assert.Equal(Rcode.Refused, client.Udp("c.test.", RecordType.SOA).Rcode);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
