using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.Wire;

namespace Portcullis.Protocol.Tests.Rdata;

/// <summary>
/// Presentation of every type with a schema row: zone-file text in, BIND's canonical text
/// (<c>named-compilezone -s full</c>, base64 and hex unsplit) out, and the octets stable through
/// text and through a DNS message.
/// </summary>
public class RdataTextTests
{
    private static readonly DnsName Origin = DnsName.Parse("example.");

    // (type, as an operator writes it, as BIND prints it). The expectations were checked against
    // named-compilezone 9.18 -s full on the same input.
    public static readonly TheoryData<string, string, string> Cases = new()
    {
        { "A", "192.0.2.1", "192.0.2.1" },
        { "A", "0.0.0.0", "0.0.0.0" },
        { "NS", "ns1", "ns1.example." },
        { "NS", "@", "example." },
        { "MD", "a.b.", "a.b." },
        { "MF", "a.b.", "a.b." },
        { "CNAME", @"x\.y\032z", @"x\.y\032z.example." },
        { "SOA", "ns1 hostmaster 1 1h30m 15m 1w2d 1d", "ns1.example. hostmaster.example. 1 5400 900 777600 86400" },
        { "SOA", ". . 4294967295 0 0 0 0", ". . 4294967295 0 0 0 0" },
        { "MB", "x", "x.example." },
        { "MG", "x", "x.example." },
        { "MR", "x", "x.example." },
        { "PTR", "x.", "x." },
        { "HINFO", "\"PC\" Linux", "\"PC\" \"Linux\"" },
        { "MINFO", "a b", "a.example. b.example." },
        { "MX", "10 mail", "10 mail.example." },
        { "MX", "0 .", "0 ." },
        { "TXT", "\"a\\\"b\\\\c\" \"\\255\\001x y\" plain", "\"a\\\"b\\\\c\" \"\\255\\001x y\" \"plain\"" },
        { "TXT", "\"\"", "\"\"" },
        { "TXT", "a\\;b \"c;d\" \"é\"", "\"a;b\" \"c;d\" \"\\195\\169\"" },
        { "RP", "mbox txt", "mbox.example. txt.example." },
        { "AFSDB", "1 host", "1 host.example." },
        { "RT", "2 host", "2 host.example." },
        { "PX", "10 a b", "10 a.example. b.example." },
        { "AAAA", "2001:db8::1", "2001:db8::1" },
        { "AAAA", "::ffff:1.2.3.4", "::ffff:1.2.3.4" },
        { "AAAA", "::1.2.3.4", "::1.2.3.4" },
        { "AAAA", "::0.1.0.1", "::0.1.0.1" },
        { "AAAA", "2001:0:0:1:0:0:0:1", "2001:0:0:1::1" },
        { "AAAA", "2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1" },
        { "AAAA", "2001:0DB8:0:8002::2000:1", "2001:db8:0:8002::2000:1" },
        { "AAAA", "::", "::" },
        { "AAAA", "::1", "::1" },
        { "AAAA", "1::", "1::" },
        { "LOC", "52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000m 10m", "52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000m 10m" },
        { "LOC", "42 21 54 N 71 06 18 W -24m 30m", "42 21 54.000 N 71 6 18.000 W -24.00m 30m 10000m 10m" },
        { "LOC", "42 21 43.952 N 71 5 6.344 W -24m 1m 200m 10m", "42 21 43.952 N 71 5 6.344 W -24.00m 1m 200m 10m" },
        { "LOC", "0 S 0 W 0", "0 0 0.000 N 0 0 0.000 E 0.00m 1m 10000m 10m" },
        { "LOC", "90 N 180 E 42849672.95m 90000000m 90000000m 90000000m", "90 0 0.000 N 180 0 0.000 E 42849672.95m 90000000m 90000000m 90000000m" },
        { "LOC", "1 2 S 3 4 5.5 W -100000m 0.5m 0.1 9", "1 2 0.000 S 3 4 5.500 W -100000.00m 0.50m 0.10m 9m" },
        { "SRV", "1 2 3 target", "1 2 3 target.example." },
        { "NAPTR", "100 10 \"S\" \"SIP+D2U\" \"!^.*$!sip:customer-service@example.com!\" _sip._udp.example.com.",
          "100 10 \"S\" \"SIP+D2U\" \"!^.*$!sip:customer-service@example.com!\" _sip._udp.example.com." },
        { "KX", "1 host", "1 host.example." },
        { "CERT", "PGP 0 0 AAEC", "PGP 0 0 AAEC" },
        { "CERT", "1 2 RSASHA256 AAEC", "PKIX 2 RSASHA256 AAEC" },
        { "CERT", "65000 2 3 AAEC", "65000 2 DSA AAEC" },
        { "CERT", "uri 0 0 aHR0cDovL2V4YW1wbGUuY29tLw==", "URI 0 0 aHR0cDovL2V4YW1wbGUuY29tLw==" },
        { "DNAME", "x", "x.example." },
        { "DS", "12345 8 1 49FD46E6C4B45C55D4AC 69CBD3CD34AC1AFE51de", "12345 8 1 49FD46E6C4B45C55D4AC69CBD3CD34AC1AFE51DE" },
        { "DS", "12345 RSASHA256 2 2BB183AF5F22588179A53B0A98631FAD1A292118 1FAD1A29 2118123456789ABC", "12345 8 2 2BB183AF5F22588179A53B0A98631FAD1A2921181FAD1A292118123456789ABC" },
        { "CDS", "0 0 0 00", "0 0 0 00" },
        { "TA", "12345 8 1 49FD46E6C4B45C55D4AC69CBD3CD34AC1AFE51DE", "12345 8 1 49FD46E6C4B45C55D4AC69CBD3CD34AC1AFE51DE" },
        { "DLV", "12345 8 1 49fd46e6c4b45c55d4ac69cbd3cd34ac1afe51de", "12345 8 1 49FD46E6C4B45C55D4AC69CBD3CD34AC1AFE51DE" },
        { "DLV", "12345 8 99 49fd46e6", "12345 8 99 49FD46E6" },
        { "SSHFP", "1 1 dd465c09cfa51fb45020cc83316fff21b9ec74ac", "1 1 DD465C09CFA51FB45020CC83316FFF21B9EC74AC" },
        { "IPSECKEY", "10 0 2 . AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ==", "10 0 2 . AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ==" },
        { "IPSECKEY", "10 1 2 192.0.2.38 AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ==", "10 1 2 192.0.2.38 AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ==" },
        { "IPSECKEY", "10 2 2 2001:0DB8:0:8002::2000:1 AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ==", "10 2 2 2001:db8:0:8002::2000:1 AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ==" },
        { "IPSECKEY", "10 3 2 gw.example.net. AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ==", "10 3 2 gw.example.net. AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ==" },
        { "RRSIG", "A 8 2 3600 20240101000000 20231201000000 12345 example. oJB1W6WNGv+ldvQ3WDG0MQkg5IEhjRip8WTrPYGv07h108dUKGMeDPKi jVCHX3DDKdfb+v6oB9wfuh3DTJXUAfI=",
          "A 8 2 3600 20240101000000 20231201000000 12345 example. oJB1W6WNGv+ldvQ3WDG0MQkg5IEhjRip8WTrPYGv07h108dUKGMeDPKijVCHX3DDKdfb+v6oB9wfuh3DTJXUAfI=" },
        { "RRSIG", "NSEC RSASHA256 2 3600 1704067200 1701388800 12345 @ AAAA", "NSEC 8 2 3600 20240101000000 20231201000000 12345 example. AAAA" },
        { "RRSIG", "TYPE65280 8 0 0 20500101000000 19700101000001 0 . AAAA", "TYPE65280 8 0 0 20500101000000 19700101000001 0 . AAAA" },
        { "SIG", "A 8 2 3600 20240101000000 20231201000000 12345 example. AAAA", "A 8 2 3600 20240101000000 20231201000000 12345 example. AAAA" },
        { "NSEC", "host.example. A MX RRSIG NSEC TYPE1234", "host.example. A MX RRSIG NSEC TYPE1234" },
        { "NSEC", "host NSEC type1 caa TYPE65535", "host.example. A NSEC CAA TYPE65535" },
        { "DNSKEY", "257 3 8 AwEAAagAIKlVZrpC6Ia7gEzahOR+9W29euxhJhVVLOyQbSEW0O8gcCjF FVQUTf6v58fLjwBd0YI0EzrAcQqBGCzh/RStIoO8g0NfnfL2MTJRkxoX",
          "257 3 8 AwEAAagAIKlVZrpC6Ia7gEzahOR+9W29euxhJhVVLOyQbSEW0O8gcCjFFVQUTf6v58fLjwBd0YI0EzrAcQqBGCzh/RStIoO8g0NfnfL2MTJRkxoX" },
        { "DNSKEY", "256 3 ECDSAP256SHA256 AwEAAQ==", "256 3 13 AwEAAQ==" },
        { "CDNSKEY", "0 3 0 AA==", "0 3 0 AA==" },
        { "KEY", "256 3 8 AwEAAQ==", "256 3 8 AwEAAQ==" },
        { "DHCID", "AAIBY2/AuCccgoJbsaxcQc9TUapptP69lOjxfNuVAA2kjEA=", "AAIBY2/AuCccgoJbsaxcQc9TUapptP69lOjxfNuVAA2kjEA=" },
        { "NSEC3", "1 1 12 aabbccdd 2vptu5timamqttgl4luu9kg21e0aor3s A RRSIG", "1 1 12 AABBCCDD 2VPTU5TIMAMQTTGL4LUU9KG21E0AOR3S A RRSIG" },
        { "NSEC3", "1 0 0 - 2vptu5timamqttgl4luu9kg21e0aor3s", "1 0 0 - 2VPTU5TIMAMQTTGL4LUU9KG21E0AOR3S" },
        { "NSEC3PARAM", "1 0 0 -", "1 0 0 -" },
        { "NSEC3PARAM", "1 0 10 abcd", "1 0 10 ABCD" },
        { "TLSA", "3 1 1 d2abde240d7cd3ee6b4b28c54df034b97983a1d16e8a410e4561cb106618e971", "3 1 1 D2ABDE240D7CD3EE6B4B28C54DF034B97983A1D16E8A410E4561CB106618E971" },
        { "SMIMEA", "3 1 1 d2abde240d7cd3ee6b4b28c5 4df034b97983a1d16e8a410e4561cb106618e971", "3 1 1 D2ABDE240D7CD3EE6B4B28C54DF034B97983A1D16E8A410E4561CB106618E971" },
        { "OPENPGPKEY", "AQID", "AQID" },
        { "CSYNC", "66 3 A NS AAAA", "66 3 A NS AAAA" },
        { "CSYNC", "66 0", "66 0" },
        { "ZONEMD", "1 1 9 000000000000000000000000", "1 1 9 000000000000000000000000" },
        { "SSHFP", "1 3 AABB", "1 3 AABB" },
        { "ZONEMD", "2018031900 1 1 c68090d90a7aed716bc459f9340e3d7c1370d4d24b7e2fc3a1ddc0b9a87153b9a9713b3c9ae5cc27777f98b8e730044c",
          "2018031900 1 1 C68090D90A7AED716BC459F9340E3D7C1370D4D24B7E2FC3A1DDC0B9A87153B9A9713B3C9AE5CC27777F98B8E730044C" },
        { "SVCB", "1 . alpn=h2,h3 port=853 ipv4hint=1.2.3.4,5.6.7.8 key65000=abc", "1 . alpn=\"h2,h3\" port=853 ipv4hint=1.2.3.4,5.6.7.8 key65000=\"abc\"" },
        { "SVCB", "0 foo.example.", "0 foo.example." },
        { "SVCB", "16 foo.example.org. mandatory=ipv4hint,alpn alpn=\"h2,h3\" ipv4hint=192.0.2.1", "16 foo.example.org. mandatory=alpn,ipv4hint alpn=\"h2,h3\" ipv4hint=192.0.2.1" },
        { "SVCB", "1 foo.example.org. key667=\"hello\\210qoo\"", "1 foo.example.org. key667=\"hello\\210qoo\"" },
        { "SVCB", "1 foo.example.org. alpn=\"f\\\\\\\\oo\\\\,bar,h2\"", "1 foo.example.org. alpn=\"f\\\\\\\\oo\\\\,bar,h2\"" },
        { "SVCB", "1 foo ipv6hint=2001:db8::1,2001:db8::53:1 no-default-alpn alpn=h2", "1 foo.example. alpn=\"h2\" no-default-alpn ipv6hint=2001:db8::1,2001:db8::53:1" },
        { "SVCB", "1 foo.example.org. ech=AEn+DQBFKwAgACABWIHUGj4u+PIggYXcR5JF0gYk3dCRioBW8uJq9H4mKAAIAAEAAQABAANAEnB1YmxpYy50bHMtZWNoLmRldgAA",
          "1 foo.example.org. ech=AEn+DQBFKwAgACABWIHUGj4u+PIggYXcR5JF0gYk3dCRioBW8uJq9H4mKAAIAAEAAQABAANAEnB1YmxpYy50bHMtZWNoLmRldgAA" },
        { "HTTPS", "1 . alpn=h2", "1 . alpn=\"h2\"" },
        { "SPF", "\"v=spf1 -all\"", "\"v=spf1 -all\"" },
        { "EUI48", "00-00-5e-00-53-2a", "00-00-5e-00-53-2a" },
        { "EUI64", "00-00-5E-EF-10-00-00-2a", "00-00-5e-ef-10-00-00-2a" },
        { "URI", "10 1 \"ftp://ftp1.example.com/public\"", "10 1 \"ftp://ftp1.example.com/public\"" },
        { "URI", "10 1 \"\"", "10 1 \"\"" },
        { "CAA", "0 issue \"ca.example.net; account=230123\"", "0 issue \"ca.example.net; account=230123\"" },
        { "CAA", "128 tbs \"Unknown\"", "128 tbs \"Unknown\"" },
        { "CAA", "0 iodef mailto:security@example.com", "0 iodef \"mailto:security@example.com\"" },
        { "CAA", "0 issue \"\"", "0 issue \"\"" },
    };

    // Beyond what named-compilezone 9.18 reads: TSIG (a meta-type BIND refuses in zones), ohttp
    // (RFC 9540, newer than that BIND), and a quoted SvcParam value after "key=" and a space.
    public static readonly TheoryData<string, string, string> ExtraCases = new()
    {
        // BIND 9.18 reads dohpath (RFC 9461) but prints it as key7.
        { "SVCB", "1 foo.example.org. dohpath=/dns-query{?dns}", "1 foo.example.org. dohpath=\"/dns-query{?dns}\"" },
        // RFC 4034 §3.1.5: times are 32-bit serial numbers; we print them in 1970..2106 (BIND picks
        // the date nearest today, so it shows this one as 19691231235959).
        { "RRSIG", "A 8 0 0 21060207062815 4294967295 0 . AAAA", "A 8 0 0 21060207062815 21060207062815 0 . AAAA" },
        { "RRSIG", "A 8 0 0 21060207062816 19700101000000 0 . AAAA", "A 8 0 0 19700101000000 19700101000000 0 . AAAA" },
        { "SVCB", "1 foo.example.org. key7=\"/q{?dns}\" ohttp key9=", "1 foo.example.org. dohpath=\"/q{?dns}\" ohttp key9" },
        { "SVCB", "1 foo.example.org. key1=\\002h2 key3=\\000\\053", "1 foo.example.org. alpn=\"h2\" port=53" },
        { "HTTPS", "1 . alpn= \"h3,h2\" port=\"8443\"", "1 . alpn=\"h3,h2\" port=8443" },
        { "TSIG", "hmac-sha256. 1234567890 300 4 AAECAw== 4321 NOERROR 0", "hmac-sha256. 1234567890 300 4 AAECAw== 4321 NOERROR 0" },
        { "TSIG", "hmac-sha256. 281474976710655 300 0 4321 18 6 AAAAAAAA", "hmac-sha256. 281474976710655 300 0 4321 BADTIME 6 AAAAAAAA" },
    };

    public static IEnumerable<object[]> AllCases() => Cases.Concat(ExtraCases);

    private static RecordType TypeOf(string mnemonic)
    {
        Assert.True(RecordTypes.TryParse(mnemonic, out var type));
        return type;
    }

    private static byte[] Parse(RecordType type, string text) => RdataText.Parse(type, RdataTokens.Split(text), Origin, "test.zone");

    [Theory]
    [MemberData(nameof(AllCases))]
    public void Presentation_parses_to_the_canonical_text(string mnemonic, string input, string canonical)
    {
        var type = TypeOf(mnemonic);
        var rdata = Parse(type, input);
        Assert.Equal(canonical, RdataText.Format(type, rdata));
    }

    [Theory]
    [MemberData(nameof(AllCases))]
    public void Canonical_text_parses_back_to_the_same_octets(string mnemonic, string input, string canonical)
    {
        var type = TypeOf(mnemonic);
        var rdata = Parse(type, input);
        Assert.Equal(rdata, Parse(type, canonical));
        // The RFC 3597 form of the same octets is accepted for a known type too.
        Assert.Equal(rdata, Parse(type, $"\\# {rdata.Length} {Convert.ToHexString(rdata)}"));
    }

    [Theory]
    [MemberData(nameof(AllCases))]
    public void Rdata_survives_a_dns_message(string mnemonic, string input, string canonical)
    {
        _ = canonical;
        var type = TypeOf(mnemonic);
        var owner = DnsName.Parse("host.example.");
        var record = new ResourceRecord(owner, type, RecordClass.IN, 3600, Parse(type, input));
        var buffer = new byte[70000];
        var writer = new DnsMessageWriter(buffer);
        Assert.True(writer.TryWriteRecord(record, DnsSection.Answer));
        int length = writer.Finish();
        var reader = new DnsMessageReader(buffer.AsSpan(0, length));
        var read = reader.ReadRecord();
        Assert.Equal(record.Data, read.Data);
        Assert.Equal(type, read.Type);
        Assert.Equal(record.ToString(), read.ToString());
    }

    [Fact]
    public void Every_type_with_a_schema_is_in_the_table()
    {
        var covered = new HashSet<string>();
        foreach (var row in AllCases()) covered.Add((string)row[0]);
        for (int t = 0; t < 65536; t++)
        {
            if (RdataSchema.Get((RecordType)t) is null) continue;
            Assert.Contains(RecordTypes.ToText((RecordType)t), covered);
        }
    }

    [Fact]
    public void Names_are_compressed_in_rfc_1035_types_only()
    {
        // MX target shares "example." with the owner: a pointer instead of 9 octets.
        var owner = DnsName.Parse("host.example.");
        int Size(string type, string text)
        {
            var t = TypeOf(type);
            var buffer = new byte[512];
            var writer = new DnsMessageWriter(buffer);
            Assert.True(writer.TryWriteRecord(new ResourceRecord(owner, t, RecordClass.IN, 60, Parse(t, text)), DnsSection.Answer));
            return writer.Finish();
        }
        int mx = Size("MX", "10 mail.example.");
        int kx = Size("KX", "10 mail.example.");   // RFC 2230 names are never compressed (RFC 3597 §4)
        Assert.Equal(kx - "example.".Length - 1 + 2, mx);
    }

    [Fact]
    public void Resource_record_prints_one_canonical_line()
    {
        var rr = new ResourceRecord(DnsName.Parse("www.example."), RecordType.MX, RecordClass.IN, 300, Parse(RecordType.MX, "10 mail"));
        Assert.Equal("www.example. 300 IN MX 10 mail.example.", rr.ToString());
    }

    [Theory]
    [InlineData("TYPE65280", "\\# 4 0A0b0c0d", "\\# 4 0A0B0C0D")]
    [InlineData("TYPE65281", "\\# 0", "\\# 0")]
    [InlineData("A", "\\# 4 c0000201", "192.0.2.1")]
    [InlineData("TXT", "\\# 6 05 68656c6c6f", "\"hello\"")]
    [InlineData("NULL", "\\# 3 010203", "\\# 3 010203")]
    [InlineData("WKS", "\\# 1 ff", "\\# 1 FF")]
    public void Generic_rfc_3597_form_is_accepted_for_any_type(string mnemonic, string input, string canonical)
    {
        var type = TypeOf(mnemonic);
        var rdata = Parse(type, input);
        Assert.Equal(canonical, RdataText.Format(type, rdata));
        Assert.Equal(rdata, Parse(type, canonical));
    }

    [Theory]
    [InlineData("A", "01020304FF")]                 // too long for A
    [InlineData("DNSKEY", "01010303")]              // no key: BIND refuses an empty key too
    [InlineData("DS", "00010801")]                  // no digest
    [InlineData("DS", "000108011234")]              // a SHA-1 digest of 2 octets
    [InlineData("NSEC", "0100")]                    // an NSEC without types
    [InlineData("NSEC", "0100000200")]              // window 0 with a zero trailing octet
    [InlineData("LOC", "00A2161300000000000000000000000000")] // mantissa 10
    [InlineData("SVCB", "00010000000300010035")]    // port of one octet
    [InlineData("SVCB", "00010000000000020001")]    // mandatory names alpn, which is absent
    [InlineData("HTTPS", "00010000020000")]          // no-default-alpn without alpn
    [InlineData("SSHFP", "0101ABCD")]               // a SHA-1 fingerprint of 2 octets
    [InlineData("NSEC3", "0100000000050000000000")] // a SHA-1 hash of 5 octets
    [InlineData("CAA", "00012D41")]                 // tag "-" is not alphanumeric
    public void Rdata_without_an_exact_presentation_prints_in_the_generic_form(string mnemonic, string hex)
    {
        var type = TypeOf(mnemonic);
        var rdata = Convert.FromHexString(hex);
        string text = RdataText.Format(type, rdata);
        Assert.StartsWith("\\# ", text);
        if (RdataWire.IsValid(type, rdata, out _)) Assert.Equal(rdata, Parse(type, text));
    }
}
