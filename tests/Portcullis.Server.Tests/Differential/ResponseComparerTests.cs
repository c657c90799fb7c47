using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;

namespace Portcullis.Server.Tests.Differential;

/// <summary>
/// The differential test is only as honest as its comparer: these feed it hand-made answer pairs
/// (no servers) and check that real faults stay differences while the allowed freedom does not.
/// </summary>
public sealed class ResponseComparerTests
{
    private static readonly string Data = Path.Combine(AppContext.BaseDirectory, "Differential", "Data");

    private static readonly IReadOnlyList<DifferentialZone> Zones =
    [
        new DifferentialZone("stress.test", Path.Combine(Data, "stress.test.zone")),
        new DifferentialZone("kid.stress.test", Path.Combine(Data, "kid.stress.test.zone")),
    ];

    private readonly ResponseComparer _comparer = new(Zones);

    private static List<ResourceRecord> Zone(string owner, RecordType type) =>
        DifferentialZone.For(Zones, DnsName.Parse(owner))!.RRset(DnsName.Parse(owner), type);

    private static DifferentialQuery Query(string name, RecordType type, bool tcp = false) =>
        new(DnsName.Parse(name), type, Edns: false, RecursionDesired: false, tcp, "comparer test");

    private static Observation Answer(DifferentialQuery q, bool aa = true, bool tc = false, Rcode rcode = Rcode.NoError,
        IEnumerable<ResourceRecord>? answer = null, IEnumerable<ResourceRecord>? authority = null, IEnumerable<ResourceRecord>? additional = null)
    {
        var m = DnsMessage.CreateQuery(q.Name, q.Type, RecordClass.IN, 1, q.RecursionDesired);
        m.Header.IsResponse = true;
        m.Header.AuthoritativeAnswer = aa;
        m.Header.Truncated = tc;
        m.Rcode = rcode;
        m.Answers.AddRange(answer ?? []);
        m.Authority.AddRange(authority ?? []);
        m.Additional.AddRange(additional ?? []);
        return new Observation(DnsMessage.Parse(m.ToWire()), null);
    }

    private static List<ResourceRecord> ApexNs => Zone("stress.test.", RecordType.NS);

    [Fact]
    public void Identical_answers_fully_agree()
    {
        var q = Query("www.stress.test.", RecordType.A);
        var c = _comparer.Compare(q, Answer(q, answer: Zone("www.stress.test.", RecordType.A)), Answer(q, answer: Zone("www.stress.test.", RecordType.A)));
        Assert.True(c.FullyAgrees);
    }

    [Fact]
    public void Apex_NS_and_its_addresses_added_to_a_positive_answer_are_allowed_but_not_full_agreement()
    {
        var q = Query("www.stress.test.", RecordType.A);
        var www = Zone("www.stress.test.", RecordType.A);
        var addresses = Zone("ns1.stress.test.", RecordType.A).Concat(Zone("ns2.stress.test.", RecordType.A));
        var c = _comparer.Compare(q, Answer(q, answer: www), Answer(q, answer: www, authority: ApexNs, additional: addresses));
        Assert.False(c.FullyAgrees);
        Assert.True(c.AgreesAfterAllowed, string.Join("; ", c.Remaining));
        Assert.Contains(AllowedDifferences.ApexNsInAuthority, c.AllowedUsed);
        Assert.Contains(AllowedDifferences.OptionalAdditional, c.AllowedUsed);
    }

    [Fact]
    public void A_wrong_TTL_a_flipped_AA_and_an_rcode_stay_differences()
    {
        var q = Query("www.stress.test.", RecordType.A);
        var www = Zone("www.stress.test.", RecordType.A);
        Assert.False(_comparer.Compare(q, Answer(q, answer: www.Select(r => r.WithTtl(299))), Answer(q, answer: www)).AgreesAfterAllowed);
        Assert.False(_comparer.Compare(q, Answer(q, aa: false, answer: www), Answer(q, answer: www)).AgreesAfterAllowed);
        Assert.False(_comparer.Compare(q, Answer(q, rcode: Rcode.NXDomain, answer: www), Answer(q, answer: www)).AgreesAfterAllowed);
    }

    [Fact]
    public void Missing_in_domain_glue_without_TC_is_a_difference()
    {
        var q = Query("host.del.stress.test.", RecordType.A);
        var ns = Zone("del.stress.test.", RecordType.NS);
        var glue = Zone("ns.del.stress.test.", RecordType.A).Concat(Zone("ns.del.stress.test.", RecordType.AAAA)).ToList();
        var c = _comparer.Compare(q, Answer(q, aa: false, authority: ns, additional: glue.Take(1)), Answer(q, aa: false, authority: ns, additional: glue));
        Assert.False(c.AgreesAfterAllowed);
    }

    [Fact]
    public void An_additional_address_that_is_not_the_zones_data_is_a_difference()
    {
        var q = Query("stress.test.", RecordType.MX);
        var mx = Zone("stress.test.", RecordType.MX);
        var forged = new ResourceRecord(DnsName.Parse("mx1.stress.test."), RecordType.A, RecordClass.IN, 300, [10, 0, 0, 1]);
        var c = _comparer.Compare(q, Answer(q, answer: mx, additional: [forged]), Answer(q, answer: mx));
        Assert.False(c.AgreesAfterAllowed);
    }

    [Fact]
    public void ANY_answered_with_part_of_an_RRset_is_a_difference_but_a_whole_one_is_allowed()
    {
        var q = Query("stress.test.", RecordType.ANY, tcp: true);
        var all = Zone("stress.test.", RecordType.SOA).Concat(ApexNs).Concat(Zone("stress.test.", RecordType.MX)).ToList();
        var whole = _comparer.Compare(q, Answer(q, answer: all), Answer(q, answer: Zone("stress.test.", RecordType.MX)));
        Assert.True(whole.AgreesAfterAllowed, string.Join("; ", whole.Remaining));
        var part = _comparer.Compare(q, Answer(q, answer: all), Answer(q, answer: Zone("stress.test.", RecordType.MX).Take(1)));
        Assert.False(part.AgreesAfterAllowed);
    }

    [Fact]
    public void Repeated_records_are_a_difference_even_though_the_sets_are_equal()
    {
        var q = Query("self.stress.test.", RecordType.A);
        var cname = Zone("self.stress.test.", RecordType.CNAME);
        var c = _comparer.Compare(q, Answer(q, answer: cname.Concat(cname)), Answer(q, answer: cname));
        Assert.False(c.AgreesAfterAllowed);
    }

    [Fact]
    public void TC_must_agree_unless_the_peer_dropped_required_glue()
    {
        var q = Query("www.stress.test.", RecordType.A);
        var www = Zone("www.stress.test.", RecordType.A);
        Assert.False(_comparer.Compare(q, Answer(q, tc: true), Answer(q, answer: www)).AgreesAfterAllowed);

        var referral = Query("x.manyns.stress.test.", RecordType.A);
        var ns = Zone("manyns.stress.test.", RecordType.NS);
        var glue = Zone("ns01.manyns.stress.test.", RecordType.A);
        var c = _comparer.Compare(referral, Answer(referral, aa: false, tc: true, authority: ns), Answer(referral, aa: false, authority: ns, additional: glue));
        Assert.True(c.AgreesAfterAllowed, string.Join("; ", c.Remaining));
        // The other way round, Portcullis would be the one breaking RFC 9471 §3.
        var reverse = _comparer.Compare(referral, Answer(referral, aa: false, authority: ns, additional: glue), Answer(referral, aa: false, tc: true, authority: ns));
        Assert.False(reverse.AgreesAfterAllowed);
    }
}
