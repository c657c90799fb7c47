using CsCheck;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.ZoneText;
using Portcullis.Protocol.Zones;
using static Portcullis.Protocol.Tests.ZoneText.ZoneTestText;

namespace Portcullis.Protocol.Tests.Zones;

/// <summary>The flat zone structure the server answers from, as built by <see cref="ZoneCompiler"/>.</summary>
public class ZoneDataTests
{
    private const string Apex = "$TTL 1h\n@ SOA ns1 hostmaster 7 2h 30m 2w 5m\n  NS ns1\nns1 A 192.0.2.1\n";

    private static ZoneData Build(string zone)
    {
        using var reader = new ZoneReader(new StringReader(zone), Origin, "z.zone", new ZoneReaderOptions { CollectErrors = true });
        var result = ZoneChecker.Check(reader, Origin, file: "z.zone");
        Assert.True(result.Ok, string.Join("\n", result.Errors.Select(e => e.Message)));
        return result.Data!;
    }

    private static string Text(RecordSet set)
    {
        var lines = new List<string>();
        foreach (var r in set.ToRecords()) lines.Add(Line(r));
        return string.Join("|", lines);
    }

    [Fact]
    public void Names_are_found_in_any_case_and_missing_names_are_not()
    {
        var zone = Build(Apex + "WWW.Sub A 192.0.2.2\n");
        Assert.True(zone.Find(DnsName.Parse("www.SUB.example.TEST.")).Exists);
        Assert.Equal("WWW.Sub.example.test.", zone.Find(DnsName.Parse("www.sub.example.test.")).ToString());
        Assert.False(zone.Find(DnsName.Parse("other.example.test.")).Exists);
        Assert.False(zone.Find(DnsName.Parse("www.sub.example.test.example.test.")).Exists);
    }

    [Fact]
    public void Names_between_an_owner_and_the_apex_exist_as_empty_non_terminals()
    {
        var zone = Build(Apex + "a.b.c A 192.0.2.2\n");
        var b = zone.Find(DnsName.Parse("b.c.example.test."));
        var c = zone.Find(DnsName.Parse("c.example.test."));
        Assert.True(b.Has(NodeFlags.EmptyNonTerminal) && c.Has(NodeFlags.EmptyNonTerminal));
        Assert.Equal(0, b.Sets.Count);
        Assert.Equal(3, zone.NameCount);   // apex, ns1, a.b.c: the two empty non-terminals are not owners
        Assert.Equal(5, zone.NodeCount);
    }

    [Fact]
    public void Records_of_one_owner_scattered_through_the_file_form_one_rrset_each()
    {
        var zone = Build(Apex + "www A 192.0.2.3\nmail A 192.0.2.9\nwww AAAA 2001:db8::1\nwww A 192.0.2.2\nwww A 192.0.2.3\n");
        var www = zone.Find(DnsName.Parse("www.example.test."));
        Assert.Equal(2, www.Sets.Count);
        Assert.Equal("www.example.test. 3600 IN A 192.0.2.2|www.example.test. 3600 IN A 192.0.2.3", Text(www.Get(RecordType.A)));
        Assert.Equal(7, zone.RecordCount);   // the repeated A counts once
    }

    [Fact]
    public void Rrsigs_form_one_set_per_covered_type_right_after_it()
    {
        const string sig = "20300101000000 20200101000000 1 example.test. AAAA";
        var zone = Build(Apex + $"www RRSIG AAAA 8 3 60 {sig}\nwww A 192.0.2.2\nwww RRSIG A 8 3 60 {sig}\nwww AAAA 2001:db8::1\n");
        var types = new List<string>();
        foreach (var set in zone.Find(DnsName.Parse("www.example.test.")).Sets)
            types.Add(set.Type == RecordType.RRSIG ? "RRSIG " + RecordTypes.ToText((RecordType)(set.First[0] << 8 | set.First[1])) : RecordTypes.ToText(set.Type));
        Assert.Equal(["A", "RRSIG A", "AAAA", "RRSIG AAAA"], types);
    }

    [Fact]
    public void Cuts_occlusion_and_glue_are_worked_out_at_load()
    {
        var zone = Build(Apex + "sub NS ns.sub\nns.sub A 192.0.2.7\n@ MX 10 ns.sub\nmail MX 10 ns1\n");
        Assert.True(zone.Find(DnsName.Parse("sub.example.test.")).Has(NodeFlags.Delegation));
        Assert.True(zone.Find(DnsName.Parse("ns.sub.example.test.")).Has(NodeFlags.BelowCut));
        Assert.True(zone.Apex.Has(NodeFlags.Apex));
        // The glue goes with the referral, not with the apex MX that points below the cut.
        Assert.Equal(1, zone.Find(DnsName.Parse("sub.example.test.")).Get(RecordType.NS).Additional.Count);
        Assert.Equal(0, zone.Apex.Get(RecordType.MX).Additional.Count);
        Assert.Equal(1, zone.Find(DnsName.Parse("mail.example.test.")).Get(RecordType.MX).Additional.Count);
    }

    [Fact]
    public void Every_name_under_a_cut_or_dname_however_deep_is_occluded_and_no_other()
    {
        string deep = string.Join(".", Enumerable.Range(0, 60).Select(i => $"l{i}"));
        var zone = Build(Apex + $"sub NS ns.sub\nns.sub A 192.0.2.7\n{deep}.sub A 192.0.2.8\n{deep}.free A 192.0.2.9\nmoved DNAME elsewhere.test.\nx.y.moved A 192.0.2.10\n");
        Assert.True(zone.Find(DnsName.Parse($"{deep}.sub.example.test.")).Has(NodeFlags.BelowCut));
        Assert.True(zone.Find(DnsName.Parse($"l59.sub.example.test.")).Has(NodeFlags.BelowCut));
        Assert.False(zone.Find(DnsName.Parse($"{deep}.free.example.test.")).Has(NodeFlags.BelowCut));
        Assert.True(zone.Find(DnsName.Parse("x.y.moved.example.test.")).Has(NodeFlags.BelowCut));
        Assert.False(zone.Find(DnsName.Parse("sub.example.test.")).Has(NodeFlags.BelowCut));
        Assert.False(zone.Find(DnsName.Parse("moved.example.test.")).Has(NodeFlags.BelowCut));
    }

    [Fact]
    public void Answer_fragments_are_the_bytes_the_writer_produces_record_by_record()
    {
        var zone = Build(Apex + "www A 192.0.2.2\nwww A 192.0.2.3\nwww AAAA 2001:db8::1\nwww TXT \"one\" \"two\"\nwww CAA 0 issue \"ca.example\"\n"
            + "www MX 10 mail\nmail A 192.0.2.25\n_s._tcp SRV 0 0 443 www\nwww HINFO \"a\" \"b\"\n");
        int compared = 0;
        for (int n = 0; n < zone.NodeCount; n++)
        {
            foreach (var set in zone[n].Sets)
            {
                var fragment = set.AnswerFragment;
                // Types whose RDATA names the writer compresses (NS, MX, SOA, ...) have none.
                Assert.Equal(Portcullis.Protocol.Wire.DnsMessageWriter.CompressesRdata(set.Type), fragment.IsEmpty);
                if (fragment.IsEmpty) continue;
                var byRecord = new byte[512];
                var w1 = new Portcullis.Protocol.Wire.DnsMessageWriter(byRecord);
                w1.TryWriteQuestion(set.Owner, set.Type, RecordClass.IN);
                foreach (var rdata in set.Rdata)
                    Assert.True(w1.TryWriteRecord(set.Owner, set.Type, RecordClass.IN, set.Ttl, rdata, Portcullis.Protocol.Wire.DnsSection.Answer));
                int n1 = w1.Finish();
                var byFragment = new byte[512];
                var w2 = new Portcullis.Protocol.Wire.DnsMessageWriter(byFragment);
                w2.TryWriteQuestion(set.Owner, set.Type, RecordClass.IN);
                Assert.True(w2.TryWriteRecords(fragment, set.Count, Portcullis.Protocol.Wire.DnsSection.Answer));
                int n2 = w2.Finish();
                Assert.Equal(byRecord.AsSpan(0, n1).ToArray(), byFragment.AsSpan(0, n2).ToArray());
                compared++;
            }
        }
        Assert.True(compared >= 7, $"{compared} fragments compared");
    }

    [Fact]
    public void The_negative_soa_has_the_smaller_of_its_ttl_and_minimum()
    {
        var zone = Build(Apex);
        Assert.Equal(300u, zone.NegativeSoa.Ttl);
        Assert.Equal(3600u, zone.Apex.Get(RecordType.SOA).Ttl);
    }

    [Fact]
    public void A_large_rrset_is_kept_whole_and_in_canonical_order()
    {
        var lines = string.Concat(Enumerable.Range(0, 300).Reverse().Select(i => $"big TXT \"r{i:D3}\"\n"));
        var zone = Build(Apex + lines + lines);
        var set = zone.Find(DnsName.Parse("big.example.test.")).Get(RecordType.TXT);
        Assert.Equal(300, set.Count);
        Assert.Equal("big.example.test. 3600 IN TXT \"r000\"", Line(set.ToRecords().First()));
    }

    [Fact]
    public void Any_file_order_builds_the_same_zone()
    {
        // Random permutations of the same records (with duplicates) give the same canonical content.
        var records = new List<string>
        {
            "@ SOA ns1 hostmaster 7 2h 30m 2w 5m", "@ NS ns1", "@ NS ns2", "ns1 A 192.0.2.1", "ns2 A 192.0.2.2",
            "www A 192.0.2.3", "www A 192.0.2.4", "www AAAA 2001:db8::3", "a.b.c TXT x", "b.c MX 10 www",
            "*.w A 192.0.2.9", "sub NS ns.sub", "ns.sub A 192.0.2.10", "www A 192.0.2.3", "alias CNAME www",
        };
        string Canonical(IEnumerable<string> order)
        {
            var zone = Build("$TTL 1h\n" + string.Join("\n", order) + "\n");
            return string.Join("\n", zone.CanonicalRecords().Select(Line));
        }
        var expected = Canonical(records);
        Gen.Shuffle(records.ToArray()).Sample(shuffled => Assert.Equal(expected, Canonical(shuffled)), iter: 200);
    }

    [Fact]
    public void An_RRset_of_more_than_65535_records_is_an_error_not_a_crash()
    {
        string zone = Apex + "$GENERATE 0-65535 big TXT \"t$\"\n";
        using var reader = new ZoneReader(new StringReader(zone), Origin, "z.zone", new ZoneReaderOptions { CollectErrors = true });
        var result = ZoneChecker.Check(reader, Origin, file: "z.zone");
        Assert.False(result.Ok);
        Assert.Contains(result.Errors, e => e.Message.Contains("65536 records, more than any message can carry"));
    }
}
