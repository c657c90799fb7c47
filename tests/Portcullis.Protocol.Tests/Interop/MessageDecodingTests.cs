using System.Globalization;
using System.Net;
using System.Text;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.ZoneText;

using Portcullis.Testing;

namespace Portcullis.Protocol.Tests.Interop;

/// <summary>
/// Messages real tools put on the wire: dig (BIND 9.18) and kdig (Knot 3.2) query a real knotd
/// through a relay that keeps the bytes; Portcullis decodes each query and response, and what it
/// finds must be what the tool printed: ID, opcode, RCODE, flags, counts, EDNS and every record.
/// </summary>
public sealed class MessageDecodingTests : IClassFixture<KnotServer>, IDisposable
{
    private readonly KnotServer _knot;
    private readonly UdpRelay _relay;

    public MessageDecodingTests(KnotServer knot)
    {
        _knot = knot;
        _relay = new UdpRelay(knot.EndPoint);
    }

    public void Dispose() => _relay.Dispose();

    [Theory]
    [InlineData("www.example.test", "A")]
    [InlineData("www.example.test", "AAAA")]
    [InlineData("example.test", "MX")]
    [InlineData("example.test", "SOA")]
    [InlineData("example.test", "NS")]
    [InlineData("example.test", "CAA")]
    [InlineData("txt.example.test", "TXT")]
    [InlineData("www.example.test", "HTTPS")]
    [InlineData("www.example.test", "SSHFP")]
    [InlineData("_443._tcp.www.example.test", "TLSA")]
    [InlineData("_sip._udp.example.test", "SRV")]
    [InlineData("loc.example.test", "LOC")]
    [InlineData("naptr.example.test", "NAPTR")]
    [InlineData("uri.example.test", "URI")]
    [InlineData("unknown.example.test", "TYPE65280")]
    public void Answers_decode_as_dig_printed_them(string name, string type)
    {
        var (query, response) = DigOnce(name, type);
        Assert.Equal(Rcode.NoError, response.Rcode);
        Assert.True(response.Header.AuthoritativeAnswer, "knotd answers its own zone authoritatively");
        Assert.NotEmpty(response.Answers);
        Assert.All(response.Answers, r => Assert.Equal(query.Questions[0].Type, r.Type));
    }

    [Fact]
    public void A_query_carries_dig_defaults_rd_ad_edns_1232_and_a_client_cookie()
    {
        var (query, _) = DigOnce("www.example.test", "A");
        Assert.False(query.Header.IsResponse);
        Assert.True(query.Header.RecursionDesired);
        Assert.True(query.Header.AuthenticData);
        Assert.NotNull(query.Edns);
        Assert.Equal(1232, query.Edns!.UdpPayloadSize);
        var cookie = query.Edns.Find<CookieOption>();
        Assert.NotNull(cookie);
        Assert.Equal(8, cookie!.ClientCookie.Length);
        Assert.Equal(0, cookie.ServerCookie.Length);
    }

    [Fact]
    public void A_name_that_does_not_exist_is_nxdomain_with_the_soa()
    {
        var (_, response) = DigOnce("nope.example.test", "A");
        Assert.Equal(Rcode.NXDomain, response.Rcode);
        Assert.Empty(response.Answers);
        var soa = Assert.Single(response.Authority);
        Assert.Equal(RecordType.SOA, soa.Type);
        Assert.Equal(DnsName.Parse("example.test."), soa.Owner);
    }

    [Fact]
    public void A_type_the_name_does_not_have_is_nodata_with_the_soa()
    {
        var (_, response) = DigOnce("www.example.test", "TXT");
        Assert.Equal(Rcode.NoError, response.Rcode);
        Assert.Empty(response.Answers);
        Assert.Equal(RecordType.SOA, Assert.Single(response.Authority).Type);
    }

    [Fact]
    public void A_name_below_a_delegation_is_a_referral_with_glue()
    {
        var (_, response) = DigOnce("www.sub.example.test", "A");
        Assert.Equal(Rcode.NoError, response.Rcode);
        Assert.False(response.Header.AuthoritativeAnswer, "a referral is not authoritative (RFC 1034 §4.3.2)");
        Assert.Empty(response.Answers);
        Assert.Equal(2, response.Authority.Count);
        Assert.All(response.Authority, r => Assert.Equal(RecordType.NS, r.Type));
        Assert.Contains(response.Additional, r => r.Type == RecordType.A && r.Owner == DnsName.Parse("ns.sub.example.test."));
        Assert.Contains(response.Additional, r => r.Type == RecordType.AAAA && r.Owner == DnsName.Parse("ns.sub.example.test."));
    }

    [Fact]
    public void A_cname_is_followed_in_the_answer()
    {
        var (_, response) = DigOnce("alias.example.test", "A");
        Assert.Equal(RecordType.CNAME, response.Answers[0].Type);
        Assert.Equal(3, response.Answers.Count);
    }

    [Fact]
    public void Dnssec_ok_buffer_size_and_nsid_are_decoded_both_ways()
    {
        var (query, response) = DigOnce("example.test", "NS", "+dnssec", "+bufsize=4096", "+nsid", "+norec");
        Assert.True(query.Edns!.DnssecOk);
        Assert.Equal(4096, query.Edns.UdpPayloadSize);
        Assert.False(query.Header.RecursionDesired);
        Assert.NotNull(query.Edns.Find<NsidOption>());
        Assert.True(response.Edns!.DnssecOk, "RFC 3225 §3: the DO bit is copied into the response");
        Assert.Equal(KnotServer.Nsid, Encoding.ASCII.GetString(response.Edns.Find<NsidOption>()!.Data));
    }

    [Fact]
    public void Without_edns_there_is_no_opt_record_either_way()
    {
        var (query, response) = DigOnce("www.example.test", "A", "+noedns");
        Assert.Null(query.Edns);
        Assert.Null(response.Edns);
        Assert.Equal(2, response.Answers.Count);
    }

    /// <summary>
    /// cookie.test is served with mod-cookies: dig's first query has a client cookie only and gets
    /// BADCOOKIE (an extended RCODE, 23, split between header and OPT) with a server cookie; dig
    /// retries with both cookies and gets the answer (RFC 7873 §5.2.3, §5.3).
    /// </summary>
    [Fact]
    public void A_bad_cookie_exchange_decodes_as_dig_retried_it()
    {
        var printed = RunDig("www.cookie.test", "A");
        var exchanges = _relay.TakeExchanges();
        Assert.True(exchanges.Count == 2, $"expected dig's query and its retry, relayed {exchanges.Count} exchanges");
        var first = DnsMessage.Parse(exchanges[0].Response);
        Assert.Equal(Rcode.BadCookie, first.Rcode);
        Assert.Equal(7, first.Header.Rcode & 0xF);
        var serverCookie = first.Edns!.Find<CookieOption>()!;
        Assert.True(serverCookie.ServerCookie.Length >= 8);

        var retry = DnsMessage.Parse(exchanges[1].Query);
        var retryCookie = retry.Edns!.Find<CookieOption>()!;
        Assert.Equal(serverCookie.ClientCookie.ToArray(), retryCookie.ClientCookie.ToArray());
        Assert.Equal(serverCookie.ServerCookie.ToArray(), retryCookie.ServerCookie.ToArray());

        // dig prints both queries (+qr) but only the final response.
        var queries = printed.Where(m => !m.IsResponse).ToList();
        Assert.Equal(2, queries.Count);
        AssertDecodesAsPrinted(queries[0], exchanges[0].Query, "dig");
        AssertDecodesAsPrinted(queries[1], exchanges[1].Query, "dig");
        AssertDecodesAsPrinted(printed.Single(m => m.IsResponse), exchanges[1].Response!, "dig");
        Assert.Equal(Rcode.NoError, DnsMessage.Parse(exchanges[1].Response).Rcode);
    }

    [Fact]
    public void Kdig_query_with_nsid_subnet_and_padding_decodes_as_kdig_printed_it()
    {
        var result = ExternalProcess.Run("kdig",
            ["@127.0.0.1", "-p", _relay.Port.ToString(CultureInfo.InvariantCulture), "example.test", "MX",
             "+qr", "+nsid", "+subnet=192.0.2.0/24", "+padding=100", "+retry=0", "+timeout=5"]).EnsureSuccess();
        var printed = KdigText.Parse(result.Stdout);
        var exchange = Assert.Single(_relay.TakeExchanges());
        Assert.Equal(2, printed.Count);
        AssertDecodesAsPrinted(printed[0], exchange.Query, "kdig");
        AssertDecodesAsPrinted(printed[1], exchange.Response!, "kdig");

        var query = DnsMessage.Parse(exchange.Query);
        var subnet = query.Edns!.Find<ClientSubnetOption>()!;
        Assert.Equal(IPAddress.Parse("192.0.2.0"), subnet.Address);
        Assert.Equal(24, subnet.SourcePrefixLength);
        Assert.Equal(100, query.Edns.Find<PaddingOption>()!.Length);
        var response = DnsMessage.Parse(exchange.Response);
        Assert.Equal(Encoding.ASCII.GetBytes(KnotServer.Nsid), response.Edns!.Find<NsidOption>()!.Data.ToArray());
        Assert.Contains(response.Additional, r => r.Type == RecordType.A && r.Owner == DnsName.Parse("mail.example.test."));
    }

    /// <summary>One dig query answered in one exchange; both sides checked against dig's output.</summary>
    private (DnsMessage Query, DnsMessage Response) DigOnce(string name, string type, params string[] options)
    {
        var printed = RunDig(name, type, options);
        var exchanges = _relay.TakeExchanges();
        Assert.True(exchanges.Count == 1, $"dig {name} {type}: expected one exchange, relayed {exchanges.Count}");
        var exchange = exchanges[0];
        Assert.True(exchange.Response is not null, $"knotd did not answer dig {name} {type}.\nknotd log:\n{_knot.Log}");
        Assert.True(printed.Count == 2, $"dig {name} {type}: expected the query and the response in its output, found {printed.Count}");
        AssertDecodesAsPrinted(printed[0], exchange.Query, "dig");
        AssertDecodesAsPrinted(printed[1], exchange.Response!, "dig");
        return (DnsMessage.Parse(exchange.Query), DnsMessage.Parse(exchange.Response));
    }

    private List<PrintedMessage> RunDig(string name, string type, params string[] options)
    {
        // +yaml is dig 9.18's structured output; +qr adds the query; one try so each query is one exchange.
        var result = ExternalProcess.Run("dig",
            ["@127.0.0.1", "-p", _relay.Port.ToString(CultureInfo.InvariantCulture), name, type,
             "+yaml", "+qr", "+tries=1", "+time=5", .. options]).EnsureSuccess();
        return DigYaml.Parse(result.Stdout);
    }

    /// <summary>Decodes <paramref name="wire"/> with DnsMessage.Parse and compares it with what the tool printed.</summary>
    private static void AssertDecodesAsPrinted(PrintedMessage printed, byte[] wire, string tool)
    {
        var message = DnsMessage.Parse(wire);
        string what = $"{tool} {(printed.IsResponse ? "response" : "query")} {printed.Id}";
        Assert.Equal(printed.Id, message.Header.Id);
        Assert.Equal(printed.IsResponse, message.Header.IsResponse);
        Assert.Equal(printed.Opcode, message.Header.Opcode.ToString().ToUpperInvariant());
        Assert.Equal(Enum.Parse<Rcode>(printed.Status, ignoreCase: true), message.Rcode);
        Assert.Equal(printed.Flags.Order(), FlagsOf(message.Header).Order());

        // The printed counts are the wire counts, the OPT record among the additional ones.
        Assert.Equal(printed.QuestionCount, message.Header.QuestionCount);
        Assert.Equal(printed.AnswerCount, message.Header.AnswerCount);
        Assert.Equal(printed.AuthorityCount, message.Header.AuthorityCount);
        Assert.Equal(printed.AdditionalCount, message.Header.AdditionalCount);
        Assert.Equal(printed.AdditionalCount, message.Additional.Count + (message.Edns is null ? 0 : 1));

        AssertSameEdns(printed.Edns, message.Edns, what);

        var question = Assert.Single(message.Questions);
        var q = ZoneTools.NormaliseSpace(Assert.Single(printed.Question)).Split(' ');
        Assert.Equal(DnsName.Parse(q[0]).ToString(), question.Name.ToString());
        Assert.Equal(q[1], RecordClasses.ToText(question.Class));
        Assert.Equal(q[2], RecordTypes.ToText(question.Type));

        AssertSameRecords(printed.Answer, message.Answers, tool, what + " answer");
        AssertSameRecords(printed.Authority, message.Authority, tool, what + " authority");
        AssertSameRecords(printed.Additional.Where(l => !l.Contains("\tOPT\t")).ToList(), message.Additional, tool, what + " additional");
    }

    private static IEnumerable<string> FlagsOf(DnsHeader h)
    {
        if (h.IsResponse) yield return "qr";
        if (h.AuthoritativeAnswer) yield return "aa";
        if (h.Truncated) yield return "tc";
        if (h.RecursionDesired) yield return "rd";
        if (h.RecursionAvailable) yield return "ra";
        if (h.AuthenticData) yield return "ad";
        if (h.CheckingDisabled) yield return "cd";
    }

    /// <summary>Each printed record, read by Portcullis' zone reader, equals the decoded one in order, TTL and case included.</summary>
    private static void AssertSameRecords(List<string> printed, List<ResourceRecord> decoded, string tool, string what)
    {
        var expected = ZoneTools.ReadPrinted(string.Join('\n', printed), tool);
        Assert.True(expected.Count == decoded.Count, $"{what}: {tool} printed {expected.Count} records, Portcullis decoded {decoded.Count}");
        for (int i = 0; i < decoded.Count; i++)
        {
            var e = expected[i].Record;
            var d = decoded[i];
            Assert.True(e.Owner.ToString() == d.Owner.ToString() && e.Type == d.Type && e.Class == d.Class && e.Ttl == d.Ttl
                    && e.Data.AsSpan().SequenceEqual(d.Data),
                $"{what} record {i}: {tool} printed\n  {expected[i].Line}\nPortcullis decoded\n  {ZoneWriter.ToLine(d)}\n  ({ZoneTools.Describe(d)})");
        }
        // dig is BIND's presentation: Portcullis must print the decoded records the same way.
        if (tool == "dig") PresentationDifferences.AssertSamePresentation(expected, PresentationDifferences.Bind, tool, what);
    }

    private static void AssertSameEdns(PrintedEdns? printed, Edns? edns, string what)
    {
        Assert.True((printed is null) == (edns is null), $"{what}: EDNS printed {(printed is null ? "absent" : "present")}, decoded {(edns is null ? "absent" : "present")}");
        if (printed is null || edns is null) return;
        Assert.Equal(printed.Version, edns.Version);
        Assert.Equal(printed.UdpSize, edns.UdpPayloadSize);
        Assert.Equal(printed.Flags.Contains("do"), edns.DnssecOk);
        var options = printed.Options;
        Assert.True(options.Count == edns.Options.Count,
            $"{what}: printed options [{string.Join(", ", options.Select(o => o.Key))}], decoded [{string.Join(", ", edns.Options.Select(o => o.Code))}]");
        for (int i = 0; i < options.Count; i++)
            AssertSameOption(options[i].Key, options[i].Value, edns.Options[i], what);
    }

    /// <summary>An option as dig or kdig names and prints it, against the decoded one.</summary>
    private static void AssertSameOption(string name, string value, EdnsOption option, string what)
    {
        string context = $"{what}: option {name}: {value}";
        switch (name)
        {
            case "COOKIE":
                var cookie = Assert.IsType<CookieOption>(option);
                // dig appends "(good)" when the server cookie checks out.
                string hex = value.Split(' ')[0];
                Assert.True(string.Equals(hex, Convert.ToHexString(cookie.ClientCookie) + Convert.ToHexString(cookie.ServerCookie), StringComparison.OrdinalIgnoreCase), context);
                break;
            case "NSID":
                var nsid = Assert.IsType<NsidOption>(option);
                // dig: `70 6f ("po")`; kdig: `706F "po"`; both empty in a query.
                string digits = value.Split('(', '"')[0].Replace(" ", "", StringComparison.Ordinal);
                Assert.True(string.Equals(digits, Convert.ToHexString(nsid.Data), StringComparison.OrdinalIgnoreCase), context);
                break;
            case "CLIENT-SUBNET":
                var subnet = Assert.IsType<ClientSubnetOption>(option);
                Assert.True(value == $"{subnet.Address}/{subnet.SourcePrefixLength}/{subnet.ScopePrefixLength}", context);
                break;
            case "PAD" or "PADDING":
                var padding = Assert.IsType<PaddingOption>(option);
                string length = value.Split(' ')[0];
                Assert.True(padding.Length == (length.Length == 0 ? 0 : int.Parse(length, CultureInfo.InvariantCulture)), context);
                break;
            case "EXPIRE":
                Assert.True(option.Code == EdnsOptionCode.Expire, context);
                if (value.Length > 0)
                    Assert.True(uint.Parse(value.Split(' ')[0], CultureInfo.InvariantCulture) == System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(option.GetData()), context);
                break;
            default:
                Assert.Fail($"{context}: the test does not know how {name} is printed");
                break;
        }
    }
}
