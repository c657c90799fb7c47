using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Records;
using Portcullis.Server.Tests.Support;

namespace Portcullis.Server.Tests.Authoritative;

/// <summary>
/// RFC 1034 §4.3.2 and its clarifications, asked of a running server over UDP, against the
/// shipped example zone (zones/example.test.zone).
/// </summary>
public sealed class AnsweringTests : IDisposable
{
    private readonly TestServer _server = new(("example.test.", TestServer.ExampleZone));
    private DnsTestClient Client => _server.Client();

    public void Dispose() => _server.Dispose();

    private static string[] Lines(IEnumerable<ResourceRecord> records) => records.Select(r => r.ToString()).Order().ToArray();

    [Fact]
    public void Exact_match_is_authoritative_data()
    {
        var r = Client.Udp("www.example.test.", RecordType.A);
        Assert.Equal(Rcode.NoError, r.Rcode);
        Assert.True(r.Header.AuthoritativeAnswer);
        Assert.True(r.Header.IsResponse);
        Assert.Equal(["www.example.test. 3600 IN A 192.0.2.80"], Lines(r.Answers));
        Assert.Empty(r.Authority);
    }

    [Fact]
    public void Question_case_is_echoed_and_matching_ignores_case()
    {
        var r = Client.Udp("WwW.ExAmPlE.TeSt.", RecordType.A);
        Assert.Equal("WwW.ExAmPlE.TeSt.", r.Questions[0].Name.ToString());
        Assert.Single(r.Answers);
        Assert.Equal("192.0.2.80", RdataText.Format(RecordType.A, r.Answers[0].Data));
    }

    [Fact]
    public void Cname_is_followed_inside_the_zone()
    {
        var r = Client.Udp("ftp.example.test.", RecordType.A);
        Assert.Equal(Rcode.NoError, r.Rcode);
        Assert.True(r.Header.AuthoritativeAnswer);
        Assert.Equal(["ftp.example.test. 3600 IN CNAME www.example.test.", "www.example.test. 3600 IN A 192.0.2.80"], Lines(r.Answers));
    }

    [Fact]
    public void Cname_query_returns_the_cname_itself()
    {
        var r = Client.Udp("ftp.example.test.", RecordType.CNAME);
        Assert.Equal(["ftp.example.test. 3600 IN CNAME www.example.test."], Lines(r.Answers));
    }

    [Fact]
    public void Wildcard_synthesises_the_answer_at_the_query_name()
    {
        var r = Client.Udp("nothing-here.example.test.", RecordType.A);
        Assert.Equal(Rcode.NoError, r.Rcode);
        Assert.True(r.Header.AuthoritativeAnswer);
        Assert.Equal(["nothing-here.example.test. 3600 IN A 192.0.2.99"], Lines(r.Answers));
    }

    [Fact]
    public void Wildcard_nodata_gives_soa()
    {
        var r = Client.Udp("nothing-here.example.test.", RecordType.MX);
        Assert.Equal(Rcode.NoError, r.Rcode);
        Assert.Empty(r.Answers);
        Assert.Equal(RecordType.SOA, Assert.Single(r.Authority).Type);
    }

    [Fact]
    public void Empty_non_terminal_is_nodata_and_blocks_the_wildcard()
    {
        var ent = Client.Udp("b.ent.example.test.", RecordType.A);
        Assert.Equal(Rcode.NoError, ent.Rcode);
        Assert.Empty(ent.Answers);
        Assert.Equal(RecordType.SOA, Assert.Single(ent.Authority).Type);

        // RFC 4592 §2.2.2: below an existing (empty) name the zone's wildcard does not apply.
        var below = Client.Udp("x.b.ent.example.test.", RecordType.A);
        Assert.Equal(Rcode.NXDomain, below.Rcode);
        Assert.True(below.Header.AuthoritativeAnswer);
        Assert.Empty(below.Answers);
    }

    [Fact]
    public void Negative_answers_carry_the_soa_with_ttl_bounded_by_its_minimum()
    {
        var r = Client.Udp("x.b.ent.example.test.", RecordType.A);
        var soa = Assert.Single(r.Authority);
        Assert.Equal(RecordType.SOA, soa.Type);
        // RFC 2308 §3: min(SOA TTL 3600, MINIMUM 300).
        Assert.Equal(300u, soa.Ttl);
    }

    [Fact]
    public void Nodata_for_a_missing_type()
    {
        var r = Client.Udp("www.example.test.", RecordType.MX);
        Assert.Equal(Rcode.NoError, r.Rcode);
        Assert.True(r.Header.AuthoritativeAnswer);
        Assert.Empty(r.Answers);
        Assert.Equal(RecordType.SOA, Assert.Single(r.Authority).Type);
    }

    [Fact]
    public void Delegation_gives_a_referral_with_glue_and_no_aa()
    {
        var r = Client.Udp("host.sub.example.test.", RecordType.A);
        Assert.Equal(Rcode.NoError, r.Rcode);
        Assert.False(r.Header.AuthoritativeAnswer);
        Assert.Empty(r.Answers);
        Assert.Equal(["sub.example.test. 3600 IN NS ns.sub.example.test.", "sub.example.test. 3600 IN NS ns2.example.test."], Lines(r.Authority));
        Assert.Contains("ns.sub.example.test. 3600 IN A 192.0.2.153", Lines(r.Additional));
    }

    [Fact]
    public void Ds_at_a_delegation_is_answered_by_the_parent()
    {
        var r = Client.Udp("sub.example.test.", RecordType.DS);
        Assert.True(r.Header.AuthoritativeAnswer);
        Assert.Empty(r.Answers);
        Assert.Equal(RecordType.SOA, Assert.Single(r.Authority).Type);
    }

    [Fact]
    public void Glue_is_not_answered_authoritatively()
    {
        var r = Client.Udp("ns.sub.example.test.", RecordType.A);
        Assert.False(r.Header.AuthoritativeAnswer);
        Assert.Equal("sub.example.test.", r.Authority[0].Owner.ToString());
    }

    [Fact]
    public void Dname_substitutes_and_synthesises_a_cname()
    {
        var r = Client.Udp("www.old.example.test.", RecordType.A);
        Assert.Equal(Rcode.NoError, r.Rcode);
        Assert.True(r.Header.AuthoritativeAnswer);
        Assert.Equal(["old.example.test. 3600 IN DNAME example.net.", "www.old.example.test. 3600 IN CNAME www.example.net."], Lines(r.Answers));
    }

    [Fact]
    public void Mx_targets_get_their_addresses_in_additional()
    {
        var r = Client.Udp("example.test.", RecordType.MX);
        Assert.Equal(["example.test. 3600 IN MX 10 mail.example.test."], Lines(r.Answers));
        Assert.Equal(["mail.example.test. 3600 IN AAAA 2001:db8::25", "mail.example.test. 86400 IN A 192.0.2.25"], Lines(r.Additional));
    }

    [Fact]
    public void Srv_targets_get_their_addresses_in_additional()
    {
        var r = Client.Udp("_sip._tcp.example.test.", RecordType.SRV);
        Assert.Single(r.Answers);
        Assert.Equal(["sip.example.test. 3600 IN A 192.0.2.60"], Lines(r.Additional));
    }

    [Fact]
    public void Names_outside_every_zone_are_refused()
    {
        var r = Client.Udp("www.example.com.", RecordType.A);
        Assert.Equal(Rcode.Refused, r.Rcode);
        Assert.False(r.Header.AuthoritativeAnswer);
        Assert.Empty(r.Answers);
        Assert.Equal("www.example.com.", r.Questions[0].Name.ToString());
    }

    [Fact]
    public void Any_over_udp_is_minimal_and_over_tcp_complete()
    {
        var udp = Client.Udp("example.test.", RecordType.ANY);
        Assert.Equal(Rcode.NoError, udp.Rcode);
        Assert.Single(udp.Answers.Select(a => a.Type).Distinct());
        var tcp = Client.Tcp("example.test.", RecordType.ANY);
        var types = tcp.Answers.Select(a => a.Type).Distinct().ToHashSet();
        Assert.Superset(new HashSet<RecordType> { RecordType.SOA, RecordType.NS, RecordType.A, RecordType.AAAA, RecordType.MX, RecordType.TXT, RecordType.CAA }, types);
    }

    [Fact]
    public void Chaos_identity_queries_are_refused_by_default()
    {
        var r = DnsMessage.Parse(Client.UdpRaw(DnsTestClient.Query("version.bind.", RecordType.TXT, @class: RecordClass.CH).ToWire()));
        Assert.Equal(Rcode.Refused, r.Rcode);
        Assert.Empty(r.Answers);
    }

    [Fact]
    public void Chaos_version_is_answered_when_configured()
    {
        using var server = new TestServer(c => c.Chaos.Version = "Portcullis test", ("example.test.", TestServer.ExampleZone));
        var r = DnsMessage.Parse(server.Client().UdpRaw(DnsTestClient.Query("version.bind.", RecordType.TXT, @class: RecordClass.CH).ToWire()));
        Assert.Equal(Rcode.NoError, r.Rcode);
        Assert.Equal("\"Portcullis test\"", RdataText.Format(RecordType.TXT, Assert.Single(r.Answers).Data));
    }

    [Fact]
    public void An_rrsig_question_gets_the_signatures_of_every_covered_type()
    {
        const string sig = "20300101000000 20200101000000 1 signed.test. AAAA";
        using var server = new TestServer(("signed.test.",
            "$TTL 1h\n@ SOA ns1 hostmaster 1 2h 30m 2w 5m\n@ NS ns1\nns1 A 192.0.2.1\n"
            + $"www A 192.0.2.2\nwww RRSIG A 13 2 3600 {sig}\nwww AAAA 2001:db8::2\nwww RRSIG AAAA 13 2 3600 {sig}\n"));
        var r = server.Client().Udp("www.signed.test.", RecordType.RRSIG);
        Assert.Equal(Rcode.NoError, r.Rcode);
        Assert.Equal(["A", "AAAA"], r.Answers.Select(a => RecordTypes.ToText((RecordType)(a.Data[0] << 8 | a.Data[1]))).Order());
        var a = server.Client().Udp("www.signed.test.", RecordType.A);
        Assert.Equal(["www.signed.test. 3600 IN A 192.0.2.2"], Lines(a.Answers));
    }
}
