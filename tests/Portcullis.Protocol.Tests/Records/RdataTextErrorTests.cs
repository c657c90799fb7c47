using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.ZoneText;

namespace Portcullis.Protocol.Tests.Rdata;

/// <summary>Every mistake in RDATA text is a ZoneFormatException that points at the token and says what was wanted.</summary>
public class RdataTextErrorTests
{
    private static readonly DnsName Origin = DnsName.Parse("example.");

    [Theory]
    [InlineData("A", "1.2.3", 1, "expected an IPv4 address, found '1.2.3'")]
    [InlineData("A", "192.0.2.01", 1, "expected an IPv4 address, found '192.0.2.01'")]
    [InlineData("A", "", 0, "expected an IPv4 address, found end of RDATA")]
    [InlineData("A", "192.0.2.1 192.0.2.2", 11, "expected end of RDATA, found '192.0.2.2'")]
    [InlineData("AAAA", "2001:db8::1::2", 1, "expected an IPv6 address, found '2001:db8::1::2'")]
    [InlineData("AAAA", "fe80::1%eth0", 1, "expected an IPv6 address, found 'fe80::1%eth0'")]
    [InlineData("MX", "10", 3, "expected a domain name, found end of RDATA")]
    [InlineData("MX", "65536 mail", 1, "expected a number from 0 to 65535, found '65536'")]
    [InlineData("MX", "-1 mail", 1, "expected a number from 0 to 65535, found '-1'")]
    [InlineData("MX", "10 a..b", 4, "expected a domain name, found 'a..b': empty label in domain name 'a..b'")]
    [InlineData("SOA", "ns hm 1 1x 2 3 4", 9, "expected a time interval (seconds, or units such as 1h30m) up to 4294967295 seconds, found '1x'")]
    [InlineData("SOA", "ns hm 4294967296 1 2 3 4", 7, "expected a number from 0 to 4294967295, found '4294967296'")]
    [InlineData("SOA", "ns hm 1 1 2 3", 14, "expected a time interval, found end of RDATA")]
    [InlineData("HINFO", "a\\", 1, "bad character-string: a backslash at the end of the text")]
    [InlineData("TXT", "\"\\256\"", 1, "bad character-string: \\256 is above 255")]
    [InlineData("RRSIG", "A 8 2 3600 20241301000000 20231201000000 1 example. AAAA", 12, "expected a time as YYYYMMDDHHmmSS or seconds, found '20241301000000'")]
    [InlineData("RRSIG", "BOGUS 8 2 3600 1 2 1 example. AAAA", 1, "expected a record type, found 'BOGUS'")]
    [InlineData("DNSKEY", "256 3 8 AwEAAQ=", 9, "expected base64, found 'AwEAAQ='")]
    [InlineData("DNSKEY", "256 3 FOO AwEAAQ==", 7, "expected an algorithm number from 0 to 255 or mnemonic, found 'FOO'")]
    [InlineData("DS", "1 8 1 ABCD", 7, "expected a 20-octet digest for digest type 1, found 2 octets")]
    [InlineData("DS", "1 8 1 ABC", 7, "expected hex, found 'ABC'")]
    [InlineData("NSEC", "next A FOO", 8, "expected a record type, found 'FOO'")]
    [InlineData("NSEC", "next", 5, "expected a record type, found end of RDATA")]
    [InlineData("NSEC3", "1 0 0 xyz 2vptu5timamqttgl4luu9kg21e0aor3s", 7, "expected hex or '-', found 'xyz'")]
    [InlineData("NSEC3", "1 0 0 - 2vptu5timamqttgl4luu9kg21e0aor3z", 9, "expected base32hex, found '2vptu5timamqttgl4luu9kg21e0aor3z'")]
    [InlineData("LOC", "91 N 0 E 0", 1, "expected latitude degrees from 0 to 90, found '91'")]
    [InlineData("LOC", "90 1 N 0 E 0", 6, "latitude is beyond 90 degrees")]
    [InlineData("LOC", "1 2 3.1234 N 0 E 0", 5, "expected latitude seconds from 0 to 59.999 or N or S, found '3.1234'")]
    [InlineData("LOC", "1 2 3 X 0 E 0", 7, "expected N or S, found 'X'")]
    [InlineData("LOC", "1 N 0 E -100000.01m", 9, "expected an altitude from -100000.00m to 42849672.95m, found '-100000.01m'")]
    [InlineData("LOC", "1 N 0 E 0 90000000.01m", 11, "expected a size from 0 to 90000000.00m, found '90000000.01m'")]
    [InlineData("LOC", "1 N 0 E 0 1 1 1 1", 17, "expected end of RDATA, found '1'")]
    [InlineData("CAA", "0 is-sue \"x\"", 3, "expected a CAA tag of 1 to 255 letters and digits, found 'is-sue'")]
    [InlineData("EUI48", "00-00-5e-00-53", 1, "expected an EUI-48 address (xx-xx-xx-xx-xx-xx), found '00-00-5e-00-53'")]
    [InlineData("EUI64", "00:00:5e:ef:10:00:00:2a", 1, "expected an EUI-64 address (xx-xx-xx-xx-xx-xx-xx-xx), found '00:00:5e:ef:10:00:00:2a'")]
    [InlineData("IPSECKEY", "10 4 2 . AAAA", 4, "expected a gateway type from 0 to 3, found '4'")]
    [InlineData("IPSECKEY", "10 0 2 gw AAAA", 8, "expected '.' for gateway type 0, found 'gw'")]
    [InlineData("IPSECKEY", "10 1 2 2001:db8::1 AAAA", 8, "expected an IPv4 address, found '2001:db8::1'")]
    [InlineData("CERT", "BOGUS 0 0 AAAA", 1, "expected a certificate type number or mnemonic, found 'BOGUS'")]
    [InlineData("TSIG", "hmac-sha256. 1 300 4 AAAA 1 0 0", 22, "expected 4 octets of base64, found 3")]
    [InlineData("TSIG", "hmac-sha256. 1 300 0 1 NOPE 0", 24, "expected an RCODE number or mnemonic, found 'NOPE'")]
    [InlineData("SVCB", "1 . alpn=h2 alpn=h3", 13, "SvcParam key alpn appears more than once (RFC 9460 §2.2)")]
    [InlineData("SVCB", "1 . mandatory=port alpn=h2", 5, "mandatory lists port, which is not among the SvcParams (RFC 9460 §8)")]
    [InlineData("SVCB", "1 . mandatory=mandatory", 5, "mandatory must not list itself (RFC 9460 §8)")]
    [InlineData("SVCB", "1 . alpn=h2,,h3", 5, "empty protocol ID in alpn")]
    [InlineData("SVCB", "1 . port=http", 5, "expected port=NUMBER from 0 to 65535, found 'port=http'")]
    [InlineData("SVCB", "1 . ipv4hint=192.0.2.1,2001:db8::1", 5, "expected an IPv4 address in ipv4hint, found '2001:db8::1'")]
    [InlineData("SVCB", "1 . key65535=x", 5, "expected a SvcParam key (mandatory, alpn, no-default-alpn, port, ipv4hint, ech, ipv6hint, dohpath, ohttp or key0 to key65534), found 'key65535'")]
    [InlineData("SVCB", "1 . key3=\\001", 5, "bad value for key3: port needs 2 octets")]
    [InlineData("SVCB", "1 . no-default-alpn=x", 5, "no-default-alpn takes no value")]
    [InlineData("SVCB", "1 . port=53 no-default-alpn", 13, "no-default-alpn needs alpn as well (RFC 9460 §7.1.1)")]
    [InlineData("SSHFP", "1 2 ABCD", 5, "expected a 32-octet fingerprint for fingerprint type 2, found 2 octets")]
    [InlineData("ZONEMD", "1 1 1 ABCD", 7, "expected a digest of at least 12 octets, found 2 octets")]
    [InlineData("ZONEMD", "1 1 2 000000000000000000000000", 7, "expected a 64-octet digest for hash algorithm 2, found 12 octets")]
    [InlineData("NSEC3", "1 0 0 - 00000000", 9, "expected a 20-octet hash for hash algorithm 1, found 5 octets")]
    [InlineData("SVCB", "1 . \"alpn=h2\"", 5, "expected a SvcParam key, found \"alpn=h2\"")]
    [InlineData("TYPE65280", "0A0B", 1, "expected RFC 3597 generic RDATA (\\# length hex) for type TYPE65280, found '0A0B'")]
    [InlineData("TYPE65280", "\\# 3 0A0B", 6, "2 octets of hex, fewer than the length 3")]
    [InlineData("TYPE65280", "\\# 1 0A0B", 6, "2 octets of hex, more than the length 1")]
    [InlineData("TYPE65280", "\\# 2 0A0", 6, "expected hex digits in pairs, found '0A0'")]
    [InlineData("TYPE65280", "\\# 65536", 4, "expected an RDATA length from 0 to 65535, found '65536'")]
    [InlineData("TYPE65280", "\\# 2", 5, "expected 2 octets of hex, found end of RDATA")]
    [InlineData("A", "\\# 3 010203", 1, "\\# RDATA is not valid A RDATA: field needs 4 octets, 3 left")]
    public void Bad_rdata_is_reported_at_the_offending_token(string mnemonic, string text, int column, string problem)
    {
        Assert.True(RecordTypes.TryParse(mnemonic, out var type));
        var tokens = RdataTokens.Split(text, line: 7);
        var e = Assert.Throws<ZoneFormatException>(() => RdataText.Parse(type, tokens, Origin, "z.zone"));
        Assert.Equal(problem, e.Problem);
        Assert.Equal(column, e.Column);
        Assert.Equal(tokens.Count == 0 ? 0 : 7, e.Line);
        Assert.Equal("z.zone", e.File);
        Assert.IsAssignableFrom<DnsFormatException>(e);
    }

    [Fact]
    public void A_character_string_over_255_octets_is_refused()
    {
        var tokens = RdataTokens.Split("ok \"" + new string('x', 256) + "\"");
        var e = Assert.Throws<ZoneFormatException>(() => RdataText.Parse(RecordType.TXT, tokens, Origin));
        Assert.Equal("expected a character-string of at most 255 octets, found 256 octets", e.Problem);
        Assert.Equal(4, e.Column);
        // Escapes count as the octets they stand for: 255 \DDD escapes are 255 octets.
        var exact = RdataText.Parse(RecordType.TXT, RdataTokens.Split(string.Concat(Enumerable.Repeat("\\255", 255))), Origin);
        Assert.Equal(256, exact.Length);
    }

    [Fact]
    public void Rdata_over_65535_octets_is_refused()
    {
        var tokens = Enumerable.Range(0, 260).Select(i => new ZoneToken(new string('x', 255), true, 3, 1 + i * 258)).ToList();
        var e = Assert.Throws<ZoneFormatException>(() => RdataText.Parse(RecordType.TXT, tokens, Origin));
        Assert.Equal("TXT RDATA is longer than 65535 octets", e.Problem);
    }
}
