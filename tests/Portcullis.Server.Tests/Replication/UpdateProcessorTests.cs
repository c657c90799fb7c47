using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.Zones;
using Portcullis.Protocol.ZoneText;
using Portcullis.Server.Authoritative;
using Portcullis.Server.Replication;
using Portcullis.Testing;
using Xunit;

namespace Portcullis.Server.Tests.Replication;

/// <summary>
/// RFC 2136 update processing as pure logic: each prerequisite kind true and false (§3.2), each
/// update kind (§3.4.2), the apex protections, CNAME conflicts, the serial (kept, bumped, wrapped),
/// updates that change nothing, malformed forms (§3.1.1, §3.2.1, §3.4.1.3), and messages captured
/// from Debian's nsupdate doing what it was asked.
/// </summary>
public sealed class UpdateProcessorTests
{
    private const string Origin = "example.test.";
    private static readonly DnsName Apex = DnsName.Parse(Origin);

    private const string ZoneText = """
        $ORIGIN example.test.
        $TTL 3600
        @       SOA   ns1 hostmaster 100 7200 900 1209600 300
        @       NS    ns1
        @       NS    ns2
        @       MX    10 mail
        @       TXT   "apex text"
        ns1     A     192.0.2.1
        ns2     A     192.0.2.2
        mail    A     192.0.2.3
        www     A     192.0.2.10
        www     A     192.0.2.11
        www     TXT   "hello"
        alias   CNAME www
        a.b.deep A    192.0.2.20
        """;

    private static Zone Load(string text = ZoneText)
    {
        using var reader = new ZoneReader(new StringReader(text), Apex);
        var result = ZoneCompiler.Compile(reader, Apex);
        Assert.True(result.Ok, string.Join("; ", result.Errors.Select(e => e.Message)));
        return new Zone(result.Data!);
    }

    private static Zone WithSerial(uint serial) => Load(ZoneText.Replace(" 100 7200", $" {serial} 7200"));

    /// <summary>One record from a zone-file line (relative names against the zone).</summary>
    private static ResourceRecord R(string line)
    {
        using var reader = new ZoneReader(new StringReader("$TTL 3600\n" + line + "\n"), Apex);
        return Assert.Single(reader.ReadRecords());
    }

    private static DnsName N(string name) => name == "@" ? Apex : DnsName.Parse(name, Apex);

    private static ResourceRecord Meta(string name, RecordType type, RecordClass @class, uint ttl = 0, byte[]? data = null) =>
        new(N(name), type, @class, ttl, data ?? []);

    // Prerequisites (RFC 2136 §2.4).
    private static ResourceRecord RRsetExists(string name, RecordType type) => Meta(name, type, RecordClass.ANY);
    private static ResourceRecord RRsetAbsent(string name, RecordType type) => Meta(name, type, RecordClass.NONE);
    private static ResourceRecord NameInUse(string name) => Meta(name, RecordType.ANY, RecordClass.ANY);
    private static ResourceRecord NameNotInUse(string name) => Meta(name, RecordType.ANY, RecordClass.NONE);
    private static ResourceRecord RRsetIs(string line) => R(line).WithTtl(0);

    // Updates (RFC 2136 §2.5).
    private static ResourceRecord Add(string line) => R(line);
    private static ResourceRecord DeleteRRset(string name, RecordType type) => Meta(name, type, RecordClass.ANY);
    private static ResourceRecord DeleteName(string name) => Meta(name, RecordType.ANY, RecordClass.ANY);
    private static ResourceRecord DeleteRR(string line)
    {
        var r = R(line);
        return new ResourceRecord(r.Owner, r.Type, RecordClass.NONE, 0, r.Data);
    }

    private static DnsMessage Update(IEnumerable<ResourceRecord> prerequisites, params ResourceRecord[] updates)
    {
        var m = new DnsMessage();
        m.Header.Id = 4242;
        m.Header.Opcode = Opcode.Update;
        m.Questions.Add(new DnsQuestion(Apex, RecordType.SOA, RecordClass.IN));
        m.Answers.AddRange(prerequisites);
        m.Authority.AddRange(updates);
        return m;
    }

    private static DnsMessage Update(params ResourceRecord[] updates) => Update([], updates);

    private static string Line(ResourceRecord r) => r.ToString().ToLowerInvariant();
    private static string L(string line) => Line(R(line));
    private static List<string> Lines(Zone zone) => zone.Records().Select(Line).ToList();

    /// <summary>The update succeeded and changed the zone: the result's zone, checked against its diff.</summary>
    private static Zone Changed(Zone before, UpdateResult result)
    {
        Assert.True(result.Rcode == Rcode.NoError, result.Reason);
        Assert.NotNull(result.Diff);
        var after = Assert.IsType<Zone>(result.NewZone);
        var diff = result.Diff!;
        Assert.Equal(before.Serial, SerialNumber.Of(diff.OldSoa));
        Assert.Equal(after.Serial, SerialNumber.Of(diff.NewSoa));
        Assert.True(SerialNumber.IsNewer(after.Serial, before.Serial));
        // The diff is exactly what IXFR needs: old minus deleted plus added is the new zone (TTLs included).
        var expected = Lines(before).Where(l => !l.Contains(" soa ")).ToHashSet();
        foreach (var d in diff.Deleted) Assert.True(expected.Remove(Line(d)), $"deleted {d}, which the zone did not hold");
        foreach (var a in diff.Added) Assert.True(expected.Add(Line(a)), $"added {a}, which the zone held");
        expected.Add(Line(diff.NewSoa));
        Assert.Equal(expected.Order(StringComparer.Ordinal), Lines(after).Order(StringComparer.Ordinal));
        return after;
    }

    private static void Unchanged(UpdateResult result)
    {
        Assert.True(result.Rcode == Rcode.NoError, result.Reason);
        Assert.Null(result.Diff);
        Assert.Null(result.NewZone);
    }

    private static void Failed(Rcode rcode, UpdateResult result)
    {
        Assert.True(result.Rcode == rcode, $"{result.Rcode}: {result.Reason}");
        Assert.Null(result.Diff);
        Assert.Null(result.NewZone);
        Assert.False(string.IsNullOrWhiteSpace(result.Reason));
        Assert.DoesNotContain('\n', result.Reason);
    }

    // ---- Prerequisites (§3.2) ----

    public static TheoryData<string, Rcode> PrerequisiteCases => new()
    {
        { "yxdomain www", Rcode.NoError }, { "yxdomain nope", Rcode.NXDomain },
        { "yxdomain deep", Rcode.NXDomain },   // an empty non-terminal owns no RR (§2.4.4)
        { "nxdomain nope", Rcode.NoError }, { "nxdomain www", Rcode.YXDomain }, { "nxdomain deep", Rcode.NoError },
        { "yxrrset www A", Rcode.NoError }, { "yxrrset www MX", Rcode.NXRRSet }, { "yxrrset nope A", Rcode.NXRRSet },
        { "nxrrset www MX", Rcode.NoError }, { "nxrrset www A", Rcode.YXRRSet },
        { "rrset www A 192.0.2.10|www A 192.0.2.11", Rcode.NoError },
        { "rrset www A 192.0.2.11|www A 192.0.2.10|www A 192.0.2.11", Rcode.NoError },   // a set: duplicates and order do not count
        { "rrset www A 192.0.2.10", Rcode.NXRRSet },
        { "rrset www A 192.0.2.10|www A 192.0.2.11|www A 192.0.2.12", Rcode.NXRRSet },
        { "rrset nope A 192.0.2.10", Rcode.NXRRSet },
        { "rrset alias CNAME WWW.Example.Test.", Rcode.NoError },   // names in RDATA compared without case
        { "yxdomain www|nxrrset www A", Rcode.YXRRSet },   // all must hold
    };

    [Theory]
    [MemberData(nameof(PrerequisiteCases))]
    public void Each_prerequisite_kind_holds_or_fails_with_its_rcode(string prerequisites, Rcode expected)
    {
        var zone = Load();
        var list = new List<ResourceRecord>();
        foreach (var p in prerequisites.Split('|'))
        {
            var words = p.Split(' ', 2);
            list.Add(words[0] switch
            {
                "yxdomain" => NameInUse(words[1]),
                "nxdomain" => NameNotInUse(words[1]),
                "yxrrset" => RRsetExists(words[1].Split(' ')[0], Enum.Parse<RecordType>(words[1].Split(' ')[1])),
                "nxrrset" => RRsetAbsent(words[1].Split(' ')[0], Enum.Parse<RecordType>(words[1].Split(' ')[1])),
                "rrset" => RRsetIs(words[1]),
                _ => RRsetIs(p),   // a further record of the RRset before it
            });
        }
        var result = UpdateProcessor.Process(zone, Update(list, Add("added A 192.0.2.50")));
        if (expected == Rcode.NoError) Assert.Contains(L("added A 192.0.2.50"), Lines(Changed(zone, result)));
        else Failed(expected, result);
    }

    [Fact]
    public void Prerequisites_are_checked_against_the_zone_before_the_update()
    {
        // The update deletes www, but "www is in use" is a prerequisite on the zone as it was.
        var zone = Load();
        var after = Changed(zone, UpdateProcessor.Process(zone, Update([NameInUse("www")], DeleteName("www"))));
        Assert.DoesNotContain(Lines(after), l => l.StartsWith("www.", StringComparison.Ordinal));
    }

    public static TheoryData<string, Rcode> MalformedPrerequisites => new()
    {
        { "ttl", Rcode.FormErr }, { "any-rdata", Rcode.FormErr }, { "none-rdata", Rcode.FormErr },
        { "class-ch", Rcode.FormErr }, { "meta-type", Rcode.FormErr }, { "outside", Rcode.NotZone },
    };

    [Theory]
    [MemberData(nameof(MalformedPrerequisites))]
    public void Malformed_prerequisites_are_FORMERR_and_names_outside_the_zone_NOTZONE(string form, Rcode expected)
    {
        var a = R("www A 192.0.2.10").Data;
        var prerequisite = form switch
        {
            "ttl" => Meta("www", RecordType.A, RecordClass.ANY, ttl: 60),
            "any-rdata" => Meta("www", RecordType.A, RecordClass.ANY, data: a),
            "none-rdata" => Meta("www", RecordType.A, RecordClass.NONE, data: a),
            "class-ch" => Meta("www", RecordType.A, RecordClass.CH, data: a),
            "meta-type" => Meta("www", RecordType.AXFR, RecordClass.ANY),
            _ => new ResourceRecord(DnsName.Parse("www.other.test."), RecordType.ANY, RecordClass.ANY, 0, []),
        };
        Failed(expected, UpdateProcessor.Process(Load(), Update([prerequisite], Add("added A 192.0.2.50"))));
    }

    // ---- The zone section (§3.1.1) ----

    [Fact]
    public void The_zone_section_must_be_one_SOA_question_naming_the_zone()
    {
        var zone = Load();
        var none = Update(Add("added A 192.0.2.50"));
        none.Questions.Clear();
        Failed(Rcode.FormErr, UpdateProcessor.Process(zone, none));
        var two = Update(Add("added A 192.0.2.50"));
        two.Questions.Add(two.Questions[0]);
        Failed(Rcode.FormErr, UpdateProcessor.Process(zone, two));
        var notSoa = Update(Add("added A 192.0.2.50"));
        notSoa.Questions[0] = new DnsQuestion(Apex, RecordType.A, RecordClass.IN);
        Failed(Rcode.FormErr, UpdateProcessor.Process(zone, notSoa));
        var other = Update(Add("added A 192.0.2.50"));
        other.Questions[0] = new DnsQuestion(DnsName.Parse("other.test."), RecordType.SOA, RecordClass.IN);
        Failed(Rcode.NotAuth, UpdateProcessor.Process(zone, other));
        var below = Update(Add("added A 192.0.2.50"));
        below.Questions[0] = new DnsQuestion(N("www"), RecordType.SOA, RecordClass.IN);
        Failed(Rcode.NotAuth, UpdateProcessor.Process(zone, below));
        var query = Update(Add("added A 192.0.2.50"));
        query.Header.Opcode = Opcode.Query;
        Failed(Rcode.FormErr, UpdateProcessor.Process(zone, query));
        // The zone name is compared without case.
        var upper = Update(Add("added A 192.0.2.50"));
        upper.Questions[0] = new DnsQuestion(DnsName.Parse("EXAMPLE.Test."), RecordType.SOA, RecordClass.IN);
        Changed(zone, UpdateProcessor.Process(zone, upper));
    }

    // ---- Prescan (§3.4.1.3) ----

    public static TheoryData<string, Rcode> MalformedUpdates => new()
    {
        { "add-any", Rcode.FormErr }, { "add-axfr", Rcode.FormErr }, { "add-maila", Rcode.FormErr }, { "add-opt", Rcode.FormErr },
        { "add-bad-rdata", Rcode.FormErr }, { "delete-rrset-ttl", Rcode.FormErr }, { "delete-rrset-rdata", Rcode.FormErr },
        { "delete-rrset-ixfr", Rcode.FormErr }, { "delete-rr-ttl", Rcode.FormErr }, { "delete-rr-any", Rcode.FormErr },
        { "class-ch", Rcode.FormErr }, { "outside", Rcode.NotZone },
    };

    [Theory]
    [MemberData(nameof(MalformedUpdates))]
    public void Malformed_updates_are_refused_before_any_is_applied(string form, Rcode expected)
    {
        var a = R("www A 192.0.2.10").Data;
        var bad = form switch
        {
            "add-any" => Meta("www", RecordType.ANY, RecordClass.IN, 300, a),
            "add-axfr" => Meta("www", RecordType.AXFR, RecordClass.IN, 300, a),
            "add-maila" => Meta("www", RecordType.MAILA, RecordClass.IN, 300, a),
            "add-opt" => Meta("www", RecordType.OPT, RecordClass.IN, 300, a),
            "add-bad-rdata" => Meta("www", RecordType.A, RecordClass.IN, 300, [1, 2, 3]),
            "delete-rrset-ttl" => Meta("www", RecordType.A, RecordClass.ANY, ttl: 300),
            "delete-rrset-rdata" => Meta("www", RecordType.A, RecordClass.ANY, data: a),
            "delete-rrset-ixfr" => Meta("www", RecordType.IXFR, RecordClass.ANY),
            "delete-rr-ttl" => Meta("www", RecordType.A, RecordClass.NONE, 300, a),
            "delete-rr-any" => Meta("www", RecordType.ANY, RecordClass.NONE),
            "class-ch" => Meta("www", RecordType.A, RecordClass.CH, 300, a),
            _ => new ResourceRecord(DnsName.Parse("www.other.test."), RecordType.A, RecordClass.IN, 300, a),
        };
        // A good update first: the prescan rejects the whole message before applying anything.
        Failed(expected, UpdateProcessor.Process(Load(), Update(Add("added A 192.0.2.50"), bad)));
    }

    // ---- Each update kind (§3.4.2) ----

    [Fact]
    public void Add_creates_names_and_RRsets_and_ignores_duplicates()
    {
        var zone = Load();
        var after = Changed(zone, UpdateProcessor.Process(zone, Update(Add("new 300 A 192.0.2.99"), Add("www A 192.0.2.12"), Add("new 300 A 192.0.2.99"))));
        var lines = Lines(after);
        Assert.Contains(L("new 300 A 192.0.2.99"), lines);
        Assert.Equal(3, lines.Count(l => l.StartsWith("www.example.test. 3600 in a ", StringComparison.Ordinal)));
        Assert.Equal(101u, after.Serial);

        // A record already there (RDATA compared canonically, the owner without case) changes nothing: no serial bump.
        Unchanged(UpdateProcessor.Process(zone, Update(Add("WWW A 192.0.2.10"), Add("alias CNAME WWW.EXAMPLE.TEST."))));
    }

    [Fact]
    public void Adding_with_a_new_TTL_gives_the_whole_RRset_that_TTL()
    {
        // RFC 2181 §5.2: one TTL per RRset; the latest given wins (as BIND does). IXFR sees delete + add.
        var zone = Load();
        var result = UpdateProcessor.Process(zone, Update(Add("www 60 A 192.0.2.10")));
        var after = Changed(zone, result);
        Assert.Equal(2, Lines(after).Count(l => l.StartsWith("www.example.test. 60 in a ", StringComparison.Ordinal)));
        Assert.Equal(2, result.Diff!.Deleted.Count);
        Assert.Equal(2, result.Diff.Added.Count);
    }

    [Fact]
    public void Delete_RRset_removes_one_type_and_leaves_the_others()
    {
        var zone = Load();
        var after = Lines(Changed(zone, UpdateProcessor.Process(zone, Update(DeleteRRset("www", RecordType.A)))));
        Assert.DoesNotContain(after, l => l.StartsWith("www.example.test. 3600 in a ", StringComparison.Ordinal));
        Assert.Contains(L("www TXT \"hello\""), after);
        // An RRset that is not there: nothing to do.
        Unchanged(UpdateProcessor.Process(zone, Update(DeleteRRset("www", RecordType.MX), DeleteRRset("nope", RecordType.A))));
    }

    [Fact]
    public void Delete_name_removes_every_RRset_at_the_name()
    {
        var zone = Load();
        var after = Lines(Changed(zone, UpdateProcessor.Process(zone, Update(DeleteName("www"), DeleteName("alias")))));
        Assert.DoesNotContain(after, l => l.StartsWith("www.", StringComparison.Ordinal) || l.StartsWith("alias.", StringComparison.Ordinal));
        Assert.Contains(L("a.b.deep A 192.0.2.20"), after);
        Unchanged(UpdateProcessor.Process(zone, Update(DeleteName("nope"), DeleteName("deep"))));
    }

    [Fact]
    public void Delete_RR_removes_one_record()
    {
        var zone = Load();
        var after = Lines(Changed(zone, UpdateProcessor.Process(zone, Update(DeleteRR("www A 192.0.2.10")))));
        Assert.DoesNotContain(L("www A 192.0.2.10"), after);
        Assert.Contains(L("www A 192.0.2.11"), after);
        // The last record of an RRset takes the RRset with it; a record not there changes nothing.
        after = Lines(Changed(zone, UpdateProcessor.Process(zone, Update(DeleteRR("www TXT \"hello\"")))));
        Assert.DoesNotContain(after, l => l.StartsWith("www.example.test. 3600 in txt", StringComparison.Ordinal));
        Unchanged(UpdateProcessor.Process(zone, Update(DeleteRR("www A 192.0.2.99"), DeleteRR("nope A 192.0.2.99"))));
    }

    [Fact]
    public void The_apex_SOA_and_NS_survive_every_delete()
    {
        var zone = Load();
        // §3.4.2.3: deleting the SOA or NS RRset at the apex is ignored.
        Unchanged(UpdateProcessor.Process(zone, Update(DeleteRRset("@", RecordType.SOA), DeleteRRset("@", RecordType.NS))));
        // §3.4.2.4: the SOA is never deleted as an RR.
        Unchanged(UpdateProcessor.Process(zone, Update(DeleteRR("@ SOA ns1 hostmaster 100 7200 900 1209600 300"))));
        // §3.4.2.3: deleting the apex name keeps its SOA and NS, takes the rest.
        var after = Lines(Changed(zone, UpdateProcessor.Process(zone, Update(DeleteName("@")))));
        Assert.Equal(2, after.Count(l => l.StartsWith("example.test. 3600 in ns ", StringComparison.Ordinal)));
        Assert.Single(after, l => l.StartsWith("example.test. 3600 in soa ", StringComparison.Ordinal));
        Assert.DoesNotContain(after, l => l.StartsWith("example.test. 3600 in mx ", StringComparison.Ordinal) || l.StartsWith("example.test. 3600 in txt ", StringComparison.Ordinal));
        // §3.4.2.4: the last apex NS is never deleted; deleting both in one update leaves the second.
        var result = UpdateProcessor.Process(zone, Update(DeleteRR("@ NS ns1"), DeleteRR("@ NS ns2")));
        after = Lines(Changed(zone, result));
        Assert.Equal([L("@ NS ns2")], after.Where(l => l.StartsWith("example.test. 3600 in ns ", StringComparison.Ordinal)));
        Assert.Equal([L("@ NS ns1")], result.Diff!.Deleted.Select(Line));
        // An NS RRset below the apex (a delegation) may go entirely.
        var delegated = Load(ZoneText + "\nsub NS ns.sub\nns.sub A 192.0.2.30\n");
        after = Lines(Changed(delegated, UpdateProcessor.Process(delegated, Update(DeleteRR("sub NS ns.sub")))));
        Assert.DoesNotContain(after, l => l.StartsWith("sub.example.test. 3600 in ns", StringComparison.Ordinal));
    }

    [Fact]
    public void CNAME_and_other_data_never_meet()
    {
        var zone = Load();
        // §3.4.2.2: a CNAME where other data is, and other data where a CNAME is, are ignored.
        Unchanged(UpdateProcessor.Process(zone, Update(Add("www CNAME mail"), Add("alias A 192.0.2.40"), Add("alias TXT \"x\""))));
        Unchanged(UpdateProcessor.Process(zone, Update(Add("@ CNAME www"))));
        // A CNAME replaces the CNAME (a singleton), and the last of two adds in one update wins.
        var after = Lines(Changed(zone, UpdateProcessor.Process(zone, Update(Add("alias CNAME mail"), Add("new CNAME www"), Add("new CNAME mail")))));
        Assert.Contains(L("alias CNAME mail"), after);
        Assert.DoesNotContain(L("alias CNAME www"), after);
        Assert.Equal([L("new CNAME mail")], after.Where(l => l.StartsWith("new.", StringComparison.Ordinal)));
        // Within one update: a CNAME added first keeps out the A after it, and the other way round.
        after = Lines(Changed(zone, UpdateProcessor.Process(zone, Update(Add("c1 CNAME www"), Add("c1 A 192.0.2.41"), Add("c2 A 192.0.2.42"), Add("c2 CNAME www")))));
        Assert.Equal([L("c1 CNAME www")], after.Where(l => l.StartsWith("c1.", StringComparison.Ordinal)));
        Assert.Equal([L("c2 A 192.0.2.42")], after.Where(l => l.StartsWith("c2.", StringComparison.Ordinal)));
        // Deleting the other data first lets the CNAME in.
        after = Lines(Changed(zone, UpdateProcessor.Process(zone, Update(DeleteName("www"), Add("www CNAME mail")))));
        Assert.Equal([L("www CNAME mail")], after.Where(l => l.StartsWith("www.", StringComparison.Ordinal)));
        // RRSIG and NSEC may stand beside a CNAME (RFC 4035 §2.5).
        after = Lines(Changed(zone, UpdateProcessor.Process(zone, Update(Add("alias NSEC www A RRSIG NSEC")))));
        Assert.Contains(L("alias NSEC www A RRSIG NSEC"), after);
    }

    [Fact]
    public void Updates_apply_in_order_and_pairs_that_cancel_leave_no_trace()
    {
        var zone = Load();
        // Added then deleted, deleted then added back: nothing changed, so no new serial.
        Unchanged(UpdateProcessor.Process(zone, Update(Add("x A 192.0.2.60"), DeleteRRset("x", RecordType.A))));
        Unchanged(UpdateProcessor.Process(zone, Update(DeleteRR("www A 192.0.2.10"), Add("www A 192.0.2.10"))));
        Unchanged(UpdateProcessor.Process(zone, Update(DeleteName("www"), Add("www A 192.0.2.10"), Add("www A 192.0.2.11"), Add("www TXT \"hello\""))));
        // Deleted then added with another value: the diff holds only the difference.
        var result = UpdateProcessor.Process(zone, Update(DeleteRRset("www", RecordType.A), Add("www A 192.0.2.11"), Add("www A 192.0.2.12")));
        Changed(zone, result);
        Assert.Equal([L("www A 192.0.2.10")], result.Diff!.Deleted.Select(Line));
        Assert.Equal([L("www A 192.0.2.12")], result.Diff.Added.Select(Line));
    }

    // ---- The serial ----

    [Fact]
    public void The_serial_is_bumped_unless_the_update_raised_it()
    {
        var zone = Load();
        Assert.Equal(101u, Changed(zone, UpdateProcessor.Process(zone, Update(Add("x A 192.0.2.60")))).Serial);
        // An SOA with a newer serial replaces the SOA, and its serial is the zone's.
        var raised = Changed(zone, UpdateProcessor.Process(zone, Update(Add("@ SOA ns1 hostmaster 500 3600 600 1209600 60"), Add("x A 192.0.2.60"))));
        Assert.Equal(500u, raised.Serial);
        Assert.Contains(L("@ SOA ns1 hostmaster 500 3600 600 1209600 60"), Lines(raised));
        // An older or equal serial is ignored (RFC 2136 §3.4.2.2; equal as BIND does); alone it changes nothing.
        Unchanged(UpdateProcessor.Process(zone, Update(Add("@ SOA ns1 hostmaster 99 3600 600 1209600 60"))));
        Unchanged(UpdateProcessor.Process(zone, Update(Add("@ SOA ns1 hostmaster 100 3600 600 1209600 60"))));
        var older = Changed(zone, UpdateProcessor.Process(zone, Update(Add("@ SOA ns1 hostmaster 99 3600 600 1209600 60"), Add("x A 192.0.2.60"))));
        Assert.Equal(101u, older.Serial);
        Assert.Contains(L("@ SOA ns1 hostmaster 101 7200 900 1209600 300"), Lines(older));
        // An SOA anywhere but the apex is ignored.
        Unchanged(UpdateProcessor.Process(zone, Update(Add("www SOA ns1 hostmaster 500 3600 600 1209600 60"))));
    }

    [Fact]
    public void The_serial_wraps_by_RFC_1982()
    {
        var top = WithSerial(uint.MaxValue);
        // 2^32 - 1 + 1 wraps to 0, which BIND skips: 1.
        Assert.Equal(1u, Changed(top, UpdateProcessor.Process(top, Update(Add("x A 192.0.2.60")))).Serial);
        Assert.Equal(4_000_000_001u, Changed(WithSerial(4_000_000_000), UpdateProcessor.Process(WithSerial(4_000_000_000), Update(Add("x A 192.0.2.60")))).Serial);
        // 5 is newer than 4,294,967,290 in serial arithmetic: an SOA with it is taken.
        var near = WithSerial(4_294_967_290);
        Assert.Equal(5u, Changed(near, UpdateProcessor.Process(near, Update(Add("@ SOA ns1 hostmaster 5 7200 900 1209600 300")))).Serial);
        // 2^31 + 100 apart is older in serial arithmetic, though larger as a number: ignored.
        var low = WithSerial(100);
        Unchanged(UpdateProcessor.Process(low, Update(Add($"@ SOA ns1 hostmaster {100u + 0x8000_0000u + 100} 7200 900 1209600 300"))));
    }

    [Fact]
    public void A_result_the_zone_checks_reject_is_REFUSED()
    {
        // An apex NS whose in-zone target has no address fails the zone checks (as in BIND's check-integrity).
        var zone = Load();
        var result = UpdateProcessor.Process(zone, Update(DeleteRRset("ns1", RecordType.A)));
        Failed(Rcode.Refused, result);
        Assert.Contains("no address records", result.Reason);
        Failed(Rcode.Refused, UpdateProcessor.Process(zone, Update(Add("@ NS ns3"))));
        // With the address in the same update it is fine.
        Changed(zone, UpdateProcessor.Process(zone, Update(Add("@ NS ns3"), Add("ns3 A 192.0.2.5"))));
    }

    [Fact]
    public void An_RRset_larger_than_any_message_can_carry_is_REFUSED()
    {
        // 65,535 records is the most a message can carry (section counts are 16 bits); one more is refused.
        var compiler = new ZoneCompiler(Apex);
        var position = new ZonePosition(null, 0, 0);
        using (var reader = new ZoneReader(new StringReader(ZoneText), Apex))
            foreach (var r in reader.ReadRecords()) compiler.Add(r, position);
        var big = N("big");
        for (int i = 0; i < ushort.MaxValue; i++)
            compiler.Add(new ResourceRecord(big, RecordType.A, RecordClass.IN, 60, [10, 0, (byte)(i >> 8), (byte)i]), position);
        var compiled = compiler.Finish();
        Assert.True(compiled.Ok);
        var zone = new Zone(compiled.Data!);
        var result = UpdateProcessor.Process(zone, Update(Add("big 60 A 10.1.0.0")));
        Failed(Rcode.Refused, result);
        Assert.Contains("65536", result.Reason);
        // Replacing one of them is fine.
        Changed(zone, UpdateProcessor.Process(zone, Update(DeleteRR("big A 10.0.0.0"), Add("big 60 A 10.1.0.0"))));
    }

    // ---- Parsing ----

    [Fact]
    public void TryParse_accepts_the_empty_RDATA_of_deletes_and_prerequisites_and_rejects_garbage()
    {
        // Written by hand: the message writer, like DnsMessage.Parse, holds RDATA to its type's form.
        var wire = new List<byte>();
        void U16(int v) { wire.Add((byte)(v >> 8)); wire.Add((byte)v); }
        void Name(string n) => wire.AddRange(DnsName.Parse(n).Wire.ToArray());
        U16(7); U16(5 << 11); U16(1); U16(1); U16(2); U16(0);
        Name(Origin); U16((int)RecordType.SOA); U16(1);
        Name("www." + Origin); U16((int)RecordType.A); U16(255); U16(0); U16(0); U16(0);         // prereq: www A exists
        Name("www." + Origin); U16((int)RecordType.TXT); U16(255); U16(0); U16(0); U16(0);       // delete www TXT
        Name("new." + Origin); U16((int)RecordType.A); U16(1); U16(0); U16(300); U16(4); wire.AddRange([192, 0, 2, 70]);
        var bytes = wire.ToArray();

        Assert.False(DnsMessage.TryParse(bytes, out _));
        Assert.True(UpdateProcessor.TryParse(bytes, out var update, out var error), error);
        var zone = Load();
        var after = Lines(Changed(zone, UpdateProcessor.Process(zone, update!)));
        Assert.Contains(L("new 300 A 192.0.2.70"), after);
        Assert.DoesNotContain(L("www TXT \"hello\""), after);

        Assert.False(UpdateProcessor.TryParse(bytes.AsSpan(0, bytes.Length - 1), out _, out error));
        Assert.False(UpdateProcessor.TryParse([.. bytes, 0], out _, out error));
        Assert.False(UpdateProcessor.TryParse(bytes.AsSpan(0, 11), out _, out error));
        // Empty RDATA is a form for classes ANY and NONE only.
        var classIn = (byte[])bytes.Clone();
        int at = 12 + Apex.WireLength + 4 + N("www").WireLength + 2;
        classIn[at + 1] = 1;
        Assert.False(UpdateProcessor.TryParse(classIn, out _, out error));
    }

    // ---- Messages from Debian's nsupdate ----

    public static TheoryData<string, string> NsupdateCases => new()
    {
        { "add", "update add new.example.test. 300 A 192.0.2.99" },
        { "delete-rrset", "update delete www.example.test. A" },
        { "delete-name", "update delete www.example.test." },
        { "delete-rr", "update delete www.example.test. A 192.0.2.10" },
        { "prereq-nxdomain", "prereq nxdomain new.example.test.\nupdate add new.example.test. 300 TXT \"made\"" },
        { "prereq-nxdomain-fails", "prereq nxdomain www.example.test.\nupdate add www.example.test. 300 TXT \"made\"" },
    };

    [Theory]
    [MemberData(nameof(NsupdateCases))]
    public async Task Messages_from_nsupdate_do_what_it_asked(string name, string commands)
    {
        var message = await CaptureFromNsupdate(commands);
        Assert.True(UpdateProcessor.TryParse(message, out var update, out var error), error);
        var zone = Load();
        var result = UpdateProcessor.Process(zone, update!);
        if (name == "prereq-nxdomain-fails")
        {
            Failed(Rcode.YXDomain, result);
            return;
        }
        var after = Lines(Changed(zone, result));
        var www = after.Where(l => l.StartsWith("www.", StringComparison.Ordinal)).ToList();
        switch (name)
        {
            case "add":
                Assert.Contains(L("new 300 A 192.0.2.99"), after);
                Assert.Equal([L("new 300 A 192.0.2.99")], result.Diff!.Added.Select(Line));
                break;
            case "delete-rrset":
                Assert.Equal([L("www TXT \"hello\"")], www);
                break;
            case "delete-name":
                Assert.Empty(www);
                break;
            case "delete-rr":
                Assert.Equal([L("www A 192.0.2.11"), L("www TXT \"hello\"")], www);
                break;
            case "prereq-nxdomain":
                Assert.Contains(L("new 300 TXT \"made\""), after);
                break;
        }
    }

    /// <summary>
    /// Runs nsupdate against a UDP socket of the test's, returns the UPDATE it sent and answers it
    /// NOERROR so that nsupdate exits 0. The socket is bound to port 0 (the kernel's free port, as
    /// FreePort asks for it) and kept open, so no other process can take the port in between.
    /// </summary>
    private static async Task<byte[]> CaptureFromNsupdate(string commands)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        int port = ((IPEndPoint)socket.LocalEndPoint!).Port;
        string script = $"server 127.0.0.1 {port}\nzone {Origin}\n{commands}\nsend\n";
        var nsupdate = Task.Run(() => ExternalProcess.Run("nsupdate", [], script));
        var buffer = new byte[65535];
        using var timeout = new CancellationTokenSource(ExternalProcess.DefaultTimeout);
        var receive = socket.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), timeout.Token).AsTask();
        if (await Task.WhenAny(receive, nsupdate) == nsupdate)
        {
            // nsupdate ended without sending: its exit code and stderr say why.
            (await nsupdate).EnsureSuccess();
            Assert.Fail($"nsupdate exited without sending an update:\n{script}");
        }
        var received = await receive;
        var message = buffer[..received.ReceivedBytes];
        var reply = new DnsMessage();
        reply.Header.Id = BinaryPrimitives.ReadUInt16BigEndian(message);
        reply.Header.IsResponse = true;
        reply.Header.Opcode = Opcode.Update;
        reply.Questions.Add(new DnsQuestion(Apex, RecordType.SOA, RecordClass.IN));
        await socket.SendToAsync(reply.ToWire(), SocketFlags.None, received.RemoteEndPoint, timeout.Token);
        (await nsupdate).EnsureSuccess();
        return message;
    }
}
