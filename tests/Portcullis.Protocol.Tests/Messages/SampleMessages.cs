using System.Buffers.Binary;
using System.Net;
using System.Text;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.Wire;

namespace Portcullis.Protocol.Tests.Messages;

/// <summary>RDATA building blocks, so tests do not depend on the presentation parser.</summary>
internal static class Rd
{
    public static byte[] U8(int v) => [(byte)v];
    public static byte[] U16(int v) { var b = new byte[2]; BinaryPrimitives.WriteUInt16BigEndian(b, (ushort)v); return b; }
    public static byte[] U32(uint v) { var b = new byte[4]; BinaryPrimitives.WriteUInt32BigEndian(b, v); return b; }
    public static byte[] Name(string name) => DnsName.Parse(name).Wire.ToArray();
    public static byte[] Str(string s) { var b = Encoding.ASCII.GetBytes(s); return [(byte)b.Length, .. b]; }
    public static byte[] Ip(string address) => IPAddress.Parse(address).GetAddressBytes();
    public static byte[] Hex(string hex) => Convert.FromHexString(hex.Replace(" ", ""));
    public static byte[] Cat(params byte[][] parts) => parts.SelectMany(p => p).ToArray();
}

/// <summary>Valid messages of many shapes and record types, built through the writer.</summary>
internal static class SampleMessages
{
    public static DnsName N(string name) => DnsName.Parse(name);

    public static ResourceRecord Rr(string owner, RecordType type, uint ttl, byte[] rdata, RecordClass @class = RecordClass.IN) =>
        new(N(owner), type, @class, ttl, rdata);

    /// <summary>One record of every shape the schema knows, plus unknown types.</summary>
    public static IEnumerable<ResourceRecord> RecordsOfManyTypes()
    {
        yield return Rr("example.com.", RecordType.A, 300, Rd.Ip("192.0.2.1"));
        yield return Rr("example.com.", RecordType.AAAA, 300, Rd.Ip("2001:db8::1"));
        yield return Rr("example.com.", RecordType.NS, 86400, Rd.Name("ns1.example.com."));
        yield return Rr("www.example.com.", RecordType.CNAME, 300, Rd.Name("example.com."));
        yield return Rr("example.com.", RecordType.SOA, 3600, Rd.Cat(Rd.Name("ns1.example.com."), Rd.Name("hostmaster.example.com."),
            Rd.U32(2024010101), Rd.U32(7200), Rd.U32(3600), Rd.U32(1209600), Rd.U32(300)));
        yield return Rr("1.2.0.192.in-addr.arpa.", RecordType.PTR, 300, Rd.Name("host.example.com."));
        yield return Rr("example.com.", RecordType.HINFO, 300, Rd.Cat(Rd.Str("PC"), Rd.Str("Linux")));
        yield return Rr("example.com.", RecordType.MX, 300, Rd.Cat(Rd.U16(10), Rd.Name("mail.example.com.")));
        yield return Rr("example.com.", RecordType.TXT, 300, Rd.Cat(Rd.Str("v=spf1 -all"), Rd.Str(""), Rd.Str("second string")));
        yield return Rr("example.com.", RecordType.RP, 300, Rd.Cat(Rd.Name("admin.example.com."), Rd.Name("info.example.com.")));
        yield return Rr("example.com.", RecordType.AFSDB, 300, Rd.Cat(Rd.U16(1), Rd.Name("afs.example.com.")));
        yield return Rr("example.com.", RecordType.LOC, 300, Rd.Hex("00 12 16 13 88 6D C9 8B 70 4F 6B 5C 00 98 96 80"));
        yield return Rr("_sip._tcp.example.com.", RecordType.SRV, 300, Rd.Cat(Rd.U16(10), Rd.U16(60), Rd.U16(5060), Rd.Name("sip.example.com.")));
        yield return Rr("example.com.", RecordType.NAPTR, 300, Rd.Cat(Rd.U16(100), Rd.U16(10), Rd.Str("S"), Rd.Str("SIP+D2U"), Rd.Str(""), Rd.Name("_sip._udp.example.com.")));
        yield return Rr("example.com.", RecordType.KX, 300, Rd.Cat(Rd.U16(10), Rd.Name("kx.example.com.")));
        yield return Rr("example.com.", RecordType.CERT, 300, Rd.Cat(Rd.U16(1), Rd.U16(12345), Rd.U8(8), Rd.Hex("0102030405")));
        yield return Rr("old.example.com.", RecordType.DNAME, 300, Rd.Name("new.example.com."));
        yield return Rr("example.com.", RecordType.DS, 86400, Rd.Cat(Rd.U16(12345), Rd.U8(13), Rd.U8(2), Rd.Hex("2BB183AF5F22588179A53B0A98631FAD1A292118")));
        yield return Rr("example.com.", RecordType.SSHFP, 300, Rd.Cat(Rd.U8(4), Rd.U8(2), Rd.Hex("123456789ABCDEF67890123456789ABCDEF67890123456789ABCDEF123456789")));
        yield return Rr("example.com.", RecordType.IPSECKEY, 300, Rd.Cat(Rd.U8(10), Rd.U8(3), Rd.U8(2), Rd.Name("gw.example.com."), Rd.Hex("0102030405060708")));
        yield return Rr("example.com.", RecordType.IPSECKEY, 300, Rd.Cat(Rd.U8(10), Rd.U8(1), Rd.U8(2), Rd.Ip("192.0.2.38"), Rd.Hex("0102030405060708")));
        yield return Rr("example.com.", RecordType.RRSIG, 300, Rd.Cat(Rd.U16((int)RecordType.A), Rd.U8(13), Rd.U8(2), Rd.U32(300),
            Rd.U32(1735689600), Rd.U32(1733097600), Rd.U16(12345), Rd.Name("example.com."), Rd.Hex("DEADBEEFCAFEBABE0011223344556677")));
        yield return Rr("example.com.", RecordType.NSEC, 300, Rd.Cat(Rd.Name("a.example.com."), Rd.Hex("00 07 62 01 80 08 00 03 80"), Rd.Hex("01 01 40")));
        yield return Rr("example.com.", RecordType.DNSKEY, 300, Rd.Cat(Rd.U16(257), Rd.U8(3), Rd.U8(13), Rd.Hex("AABBCCDDEEFF00112233445566778899")));
        yield return Rr("example.com.", RecordType.DHCID, 300, Rd.Hex("000101"));
        yield return Rr("2vptu5timamqttgl4luu9kg21e0aor3s.example.com.", RecordType.NSEC3, 300, Rd.Cat(Rd.U8(1), Rd.U8(1), Rd.U16(0), Rd.U8(0),
            Rd.U8(20), Rd.Hex("0123456789ABCDEF0123456789ABCDEF01234567"), Rd.Hex("00 02 60 01")));
        yield return Rr("example.com.", RecordType.NSEC3PARAM, 0, Rd.Cat(Rd.U8(1), Rd.U8(0), Rd.U16(0), Rd.U8(4), Rd.Hex("AABBCCDD")));
        yield return Rr("_443._tcp.example.com.", RecordType.TLSA, 300, Rd.Cat(Rd.U8(3), Rd.U8(1), Rd.U8(1), Rd.Hex("0123456789ABCDEF0123456789ABCDEF")));
        yield return Rr("example.com.", RecordType.OPENPGPKEY, 300, Rd.Hex("99010D04"));
        yield return Rr("example.com.", RecordType.CSYNC, 300, Rd.Cat(Rd.U32(66), Rd.U16(3), Rd.Hex("00 03 60 00 08")));
        yield return Rr("example.com.", RecordType.ZONEMD, 300, Rd.Cat(Rd.U32(2024010101), Rd.U8(1), Rd.U8(1), Rd.Hex(new string('A', 96))));
        yield return Rr("example.com.", RecordType.SVCB, 300, Rd.Cat(Rd.U16(1), Rd.Name("svc.example.com."), Rd.U16(1), Rd.U16(3), Rd.Str("h2"), Rd.U16(3), Rd.U16(2), Rd.U16(8443)));
        yield return Rr("example.com.", RecordType.HTTPS, 300, Rd.Cat(Rd.U16(0), Rd.Name("cdn.example.net.")));
        yield return Rr("example.com.", RecordType.SPF, 300, Rd.Str("v=spf1 mx -all"));
        yield return Rr("example.com.", RecordType.EUI48, 300, Rd.Hex("00005E0053 2A"));
        yield return Rr("example.com.", RecordType.EUI64, 300, Rd.Hex("00005EFFFE00532A"));
        yield return Rr("_ftp._tcp.example.com.", RecordType.URI, 300, Rd.Cat(Rd.U16(10), Rd.U16(1), Encoding.ASCII.GetBytes("ftp://ftp.example.com/public")));
        yield return Rr("example.com.", RecordType.CAA, 300, Rd.Cat(Rd.U8(0), Rd.Str("issue"), Encoding.ASCII.GetBytes("ca.example.net")));
        yield return Rr("example.com.", (RecordType)65280, 300, Rd.Hex("0A0B0C"));
        yield return Rr("example.com.", RecordType.NULL, 300, []);
        yield return Rr("example.com.", RecordType.WKS, 300, Rd.Hex("C000020106400000"));
        yield return Rr("example.com.", RecordType.TXT, 300, Rd.Str("chaos"), RecordClass.CH);
    }

    public static Edns FullEdns() => new()
    {
        UdpPayloadSize = 1232,
        DnssecOk = true,
        Options =
        {
            new NsidOption(Encoding.ASCII.GetBytes("ns1.fra")),
            new CookieOption(Rd.Hex("0102030405060708"), Rd.Hex("1112131415161718191A1B1C1D1E1F20")),
            new ClientSubnetOption(IPAddress.Parse("192.0.2.77"), 24, 24),
            new TcpKeepaliveOption(1200),
            new ExtendedDnsErrorOption(ExtendedDnsErrorCode.StaleAnswer, "served stale ✓"),
            new UnknownEdnsOption((EdnsOptionCode)65001, Rd.Hex("BEEF")),
            new PaddingOption(17),
        },
    };

    public static DnsMessage Query(string name = "www.example.com.", RecordType type = RecordType.A, bool edns = true)
    {
        var m = DnsMessage.CreateQuery(N(name), type, id: 0x1234);
        if (edns) m.Edns = new Edns { UdpPayloadSize = 1232, Options = { new CookieOption(Rd.Hex("0102030405060708")) } };
        return m;
    }

    public static DnsMessage Response(IEnumerable<ResourceRecord> answers, IEnumerable<ResourceRecord>? authority = null,
        IEnumerable<ResourceRecord>? additional = null, Edns? edns = null, string qname = "example.com.", RecordType qtype = RecordType.ANY)
    {
        var m = DnsMessage.CreateQuery(N(qname), qtype, id: 0xBEEF);
        m.Header.IsResponse = true;
        m.Header.AuthoritativeAnswer = true;
        m.Answers.AddRange(answers);
        if (authority is not null) m.Authority.AddRange(authority);
        if (additional is not null) m.Additional.AddRange(additional);
        m.Edns = edns;
        return m;
    }

    /// <summary>Queries and responses of many shapes, each valid.</summary>
    public static IEnumerable<(string Name, DnsMessage Message)> All()
    {
        yield return ("query without EDNS", Query(edns: false));
        yield return ("query with cookie", Query());
        yield return ("query with every option", ((Func<DnsMessage>)(() => { var q = Query("Mixed.Case.Example.", RecordType.AAAA); q.Edns = FullEdns(); return q; }))());
        var records = RecordsOfManyTypes().ToList();
        for (int i = 0; i < records.Count; i++)
            yield return ($"answer {RecordTypes.ToText(records[i].Type)} #{i}", Response([records[i]], edns: i % 2 == 0 ? new Edns() : null));
        yield return ("response of every type", Response(records, edns: FullEdns()));
        yield return ("referral", Response([],
            [Rr("sub.example.com.", RecordType.NS, 3600, Rd.Name("ns1.sub.example.com.")), Rr("sub.example.com.", RecordType.NS, 3600, Rd.Name("ns2.sub.example.com."))],
            [Rr("ns1.sub.example.com.", RecordType.A, 3600, Rd.Ip("192.0.2.53")), Rr("ns2.sub.example.com.", RecordType.AAAA, 3600, Rd.Ip("2001:db8::53"))],
            new Edns(), "www.sub.example.com.", RecordType.A));
        var nx = Response([], [records.First(r => r.Type == RecordType.SOA), records.First(r => r.Type == RecordType.NSEC)], edns: new Edns { DnssecOk = true },
            qname: "nope.example.com.", qtype: RecordType.A);
        nx.Rcode = Rcode.NXDomain;
        yield return ("nxdomain", nx);
        var badvers = Response([], edns: new Edns(), qname: "example.com.", qtype: RecordType.SOA);
        badvers.Rcode = Rcode.BadVers;
        yield return ("badvers", badvers);
        var tsig = Response([records[0]],
            additional: [Rr("key.example.", RecordType.TSIG, 0, Rd.Cat(Rd.Name("hmac-sha256."), Rd.Hex("000065432100"), Rd.U16(300), Rd.U16(4), Rd.Hex("01020304"), Rd.U16(0xBEEF), Rd.U16(0), Rd.U16(0)), RecordClass.ANY)],
            edns: new Edns());
        yield return ("response with TSIG last", tsig);
        yield return ("many questions", ((Func<DnsMessage>)(() =>
        {
            var m = Query(edns: false);
            m.Questions.Add(new DnsQuestion(N("example.net."), RecordType.MX));
            m.Questions.Add(new DnsQuestion(N("."), RecordType.NS, RecordClass.CH));
            return m;
        }))());
        yield return ("empty message", new DnsMessage());
    }

    /// <summary>A query written directly with the zero-allocation writer, OPT included.</summary>
    public static byte[] WriterQuery(ReadOnlySpan<byte> clientCookie, bool dnssecOk = true, ushort payload = 1232)
    {
        var buffer = new byte[512];
        var w = new DnsMessageWriter(buffer);
        w.Header.Id = 0x4242;
        w.Header.RecursionDesired = true;
        Assert.True(w.TryWriteQuestion(N("www.example.com.").Wire, RecordType.A, RecordClass.IN));
        Span<byte> options = stackalloc byte[64];
        Assert.True(EdnsOptionWire.TryWriteCookie(options, clientCookie, default, out int n));
        Assert.True(w.TryWriteOpt(payload, 0, 0, dnssecOk, options[..n]));
        return buffer[..w.Finish()];
    }
}

/// <summary>Message comparison as DNS sees it: names without case, RDATA names without case, TTLs exactly.</summary>
internal static class MessageAssert
{
    public static void Equivalent(DnsMessage expected, DnsMessage actual)
    {
        Assert.Equal(expected.Header.Id, actual.Header.Id);
        Assert.Equal(expected.Header.Flags, actual.Header.Flags);
        Assert.Equal(expected.Questions, actual.Questions);
        Records(expected.Answers, actual.Answers);
        Records(expected.Authority, actual.Authority);
        Records(expected.Additional, actual.Additional);
        Assert.Equal(expected.Edns is null, actual.Edns is null);
        if (expected.Edns is { } e && actual.Edns is { } a)
        {
            Assert.Equal(e.UdpPayloadSize, a.UdpPayloadSize);
            Assert.Equal(e.ExtendedRcode, a.ExtendedRcode);
            Assert.Equal(e.Version, a.Version);
            Assert.Equal(e.Flags, a.Flags);
            Assert.Equal(e.Options, a.Options);
        }
        Assert.Equal(expected.Rcode, actual.Rcode);
    }

    private static void Records(List<ResourceRecord> expected, List<ResourceRecord> actual)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i], actual[i]);          // owner, type, class, RDATA (names ignoring case)
            Assert.Equal(expected[i].Ttl, actual[i].Ttl);
        }
    }
}
