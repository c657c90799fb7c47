using System.Buffers.Binary;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Records;
using static Portcullis.Protocol.Tests.Messages.SampleMessages;

namespace Portcullis.Protocol.Tests.Messages;

public class DnsMessageTests
{
    public static TheoryData<string> SampleNames()
    {
        var data = new TheoryData<string>();
        foreach (var (name, _) in All()) data.Add(name);
        return data;
    }

    private static DnsMessage Sample(string name) => All().First(s => s.Name == name).Message;

    [Theory]
    [MemberData(nameof(SampleNames))]
    public void Every_sample_message_round_trips_through_the_wire(string sample)
    {
        var message = Sample(sample);
        var wire = message.ToWire();
        var parsed = DnsMessage.Parse(wire);
        MessageAssert.Equivalent(message, parsed);
        Assert.True(DnsMessage.IsWellFormed(wire));
        // The parsed model writes the same octets again.
        Assert.Equal(wire, parsed.ToWire());
    }

    [Fact]
    public void Every_section_and_every_option_survive_a_round_trip()
    {
        var message = Response(RecordsOfManyTypes().Take(10), RecordsOfManyTypes().Skip(10).Take(10), RecordsOfManyTypes().Skip(20), FullEdns());
        var parsed = DnsMessage.Parse(message.ToWire());

        Assert.Equal(10, parsed.Answers.Count);
        Assert.Equal(10, parsed.Authority.Count);
        Assert.Equal(RecordsOfManyTypes().Count() - 20, parsed.Additional.Count);
        Assert.DoesNotContain(parsed.Additional, r => r.Type == RecordType.OPT);
        var edns = parsed.Edns!;
        Assert.True(edns.DnssecOk);
        Assert.Equal(1232, edns.UdpPayloadSize);
        Assert.Equal("ns1.fra", System.Text.Encoding.ASCII.GetString(edns.Find<NsidOption>()!.Data));
        var cookie = edns.Find<CookieOption>()!;
        Assert.Equal("0102030405060708", Convert.ToHexString(cookie.ClientCookie));
        Assert.Equal(16, cookie.ServerCookie.Length);
        var ecs = edns.Find<ClientSubnetOption>()!;
        Assert.Equal("192.0.2.0", ecs.Address.ToString());
        Assert.Equal((24, 24), (ecs.SourcePrefixLength, ecs.ScopePrefixLength));
        Assert.Equal((ushort)1200, edns.Find<TcpKeepaliveOption>()!.Timeout);
        var ede = edns.Find<ExtendedDnsErrorOption>()!;
        Assert.Equal(ExtendedDnsErrorCode.StaleAnswer, ede.InfoCode);
        Assert.Equal("served stale ✓", ede.ExtraText);
        Assert.Equal(17, edns.Find<PaddingOption>()!.Length);
        var unknown = Assert.IsType<UnknownEdnsOption>(edns.Options.Single(o => (ushort)o.Code == 65001));
        Assert.Equal("BEEF", Convert.ToHexString(unknown.Data));
        // Options keep their order.
        Assert.Equal(FullEdns().Options.Select(o => o.Code), edns.Options.Select(o => o.Code));
    }

    [Fact]
    public void Compression_shrinks_a_response_and_decodes_to_the_same_records()
    {
        var answers = Enumerable.Range(1, 10)
            .Select(i => Rr($"host{i}.example.com.", RecordType.MX, 300, Rd.Cat(Rd.U16(i), Rd.Name($"mail{i}.example.com."))))
            .ToList();
        var message = Response(answers, qname: "example.com.", qtype: RecordType.MX);
        var wire = message.ToWire();

        int uncompressed = 12 + message.Questions[0].Name.WireLength + 4
            + answers.Sum(r => r.Owner.WireLength + 10 + r.Data.Length);
        Assert.True(wire.Length < uncompressed, $"compressed {wire.Length} octets, uncompressed {uncompressed}");
        // Every owner after the question ends in a pointer to "example.com." at offset 12.
        Assert.True(CountPointersTo(wire, 12) >= 20, "owners and MX exchanges point at the question name");
        MessageAssert.Equivalent(message, DnsMessage.Parse(wire));
    }

    private static int CountPointersTo(byte[] wire, int offset)
    {
        int count = 0;
        for (int i = 0; i + 1 < wire.Length; i++)
            if (wire[i] == (0xC0 | (offset >> 8)) && wire[i + 1] == (offset & 0xFF)) count++;
        return count;
    }

    [Fact]
    public void Names_in_rdata_of_newer_types_are_not_compressed()
    {
        // RFC 3597 §4: only RFC 1035 types may carry compressed names; SRV's target must not.
        var message = Response([Rr("_sip._tcp.example.com.", RecordType.SRV, 300, Rd.Cat(Rd.U16(1), Rd.U16(1), Rd.U16(5060), Rd.Name("example.com.")))],
            qname: "example.com.", qtype: RecordType.SRV);
        var wire = message.ToWire();
        var target = Rd.Name("example.com.");
        Assert.True(wire.AsSpan().IndexOf(target) != wire.AsSpan().LastIndexOf(target), "the SRV target is written out in full");
    }

    [Theory]
    [InlineData(nameof(DnsHeaderBits.IsResponse), 0x8000)]
    [InlineData(nameof(DnsHeaderBits.AuthoritativeAnswer), 0x0400)]
    [InlineData(nameof(DnsHeaderBits.Truncated), 0x0200)]
    [InlineData(nameof(DnsHeaderBits.RecursionDesired), 0x0100)]
    [InlineData(nameof(DnsHeaderBits.RecursionAvailable), 0x0080)]
    [InlineData(nameof(DnsHeaderBits.Z), 0x0040)]
    [InlineData(nameof(DnsHeaderBits.AuthenticData), 0x0020)]
    [InlineData(nameof(DnsHeaderBits.CheckingDisabled), 0x0010)]
    public void Each_header_flag_is_its_own_bit_on_the_wire(string flag, int bit)
    {
        var message = new DnsMessage();
        DnsHeaderBits.Set(ref message.Header, flag, true);
        var wire = message.ToWire();
        Assert.Equal(bit, BinaryPrimitives.ReadUInt16BigEndian(wire.AsSpan(2)));
        var parsed = DnsMessage.Parse(wire);
        Assert.True(DnsHeaderBits.Get(parsed.Header, flag));
        DnsHeaderBits.Set(ref parsed.Header, flag, false);
        Assert.Equal(0, parsed.Header.Flags);
    }

    [Theory]
    [InlineData(Opcode.Query)]
    [InlineData(Opcode.Notify)]
    [InlineData(Opcode.Update)]
    [InlineData((Opcode)15)]
    public void Opcode_sits_in_bits_11_to_14_and_round_trips(Opcode opcode)
    {
        var message = new DnsMessage();
        message.Header.IsResponse = true;
        message.Header.Opcode = opcode;
        message.Header.Rcode = 5;
        var wire = message.ToWire();
        Assert.Equal(0x8000 | ((int)opcode << 11) | 5, BinaryPrimitives.ReadUInt16BigEndian(wire.AsSpan(2)));
        var parsed = DnsMessage.Parse(wire);
        Assert.Equal(opcode, parsed.Header.Opcode);
        Assert.True(parsed.Header.IsResponse);
        Assert.Equal(Rcode.Refused, parsed.Rcode);
    }

    [Theory]
    [InlineData(Rcode.BadVers, 0, 1)]
    [InlineData(Rcode.BadCookie, 7, 1)]
    [InlineData((Rcode)0xFFF, 15, 255)]
    [InlineData(Rcode.NXDomain, 3, 0)]
    public void Extended_rcode_is_split_between_header_and_opt(Rcode rcode, int headerPart, int extendedPart)
    {
        var message = Response([], edns: new Edns());
        message.Rcode = rcode;
        var wire = message.ToWire();
        Assert.Equal(headerPart, wire[3] & 0xF);
        // The OPT record is the last record: root owner, TYPE 41, CLASS, then TTL's first octet.
        int opt = wire.Length - 11;
        Assert.Equal(0, wire[opt]);
        Assert.Equal(41, BinaryPrimitives.ReadUInt16BigEndian(wire.AsSpan(opt + 1)));
        Assert.Equal(extendedPart, wire[opt + 5]);
        Assert.Equal(rcode, DnsMessage.Parse(wire).Rcode);
    }

    [Fact]
    public void An_extended_rcode_needs_edns()
    {
        var message = new DnsMessage();
        Assert.Throws<InvalidOperationException>(() => message.Rcode = Rcode.BadCookie);
        message.Rcode = Rcode.ServFail;
        Assert.Equal(Rcode.ServFail, message.Rcode);
    }

    [Fact]
    public void Rcode_helpers_combine_and_split_twelve_bits()
    {
        Assert.Equal(Rcode.BadCookie, Rcodes.Combine(7, 1));
        Assert.Equal(Rcode.NoError, Rcodes.Combine(0, 0));
        Assert.Equal((Rcode)0xFFF, Rcodes.Combine(0xFF, 0xFF));      // stray high header bits are ignored
        Assert.Equal(7, Rcodes.HeaderPart(Rcode.BadCookie));
        Assert.Equal(1, Rcodes.ExtendedPart(Rcode.BadCookie));
        Assert.True(Rcodes.NeedsEdns(Rcode.BadVers));
        Assert.False(Rcodes.NeedsEdns(Rcode.Refused));
        Assert.Throws<ArgumentOutOfRangeException>(() => Rcodes.HeaderPart((Rcode)0x1000));
    }

    [Fact]
    public void Opt_goes_before_a_final_tsig_record()
    {
        var message = Sample("response with TSIG last");
        var wire = message.ToWire();
        var reader = new Portcullis.Protocol.Wire.DnsMessageReader(wire);
        reader.ReadQuestion();
        var types = new List<RecordType>();
        Span<byte> name = stackalloc byte[255];
        for (int i = 0; i < reader.Header.AnswerCount + reader.Header.AdditionalCount; i++)
        {
            Assert.True(reader.TryReadRecordHeader(name, out _, out var type, out _, out _, out _, out _));
            types.Add(type);
        }
        Assert.Equal([RecordType.A, RecordType.OPT, RecordType.TSIG], types);
    }

    [Fact]
    public void Writing_an_opt_record_in_additional_is_refused()
    {
        var message = Response([], additional: [Rr(".", RecordType.OPT, 0, [])]);
        Assert.Throws<InvalidOperationException>(() => message.ToWire());
    }

    [Fact]
    public void A_message_too_large_for_the_limit_is_refused_not_cut()
    {
        var message = Response(Enumerable.Range(0, 40).Select(i => Rr($"h{i}.example.com.", RecordType.AAAA, 60, Rd.Ip($"2001:db8::{i + 1:x}"))));
        Assert.Throws<InvalidOperationException>(() => message.ToWire(512));
        Assert.True(message.ToWire().Length > 512);
        Assert.False(message.TryWrite(new byte[512], out _));
        Assert.Throws<ArgumentException>(() => message.Write(new byte[100]));
    }

    [Fact]
    public void Malformed_rdata_in_the_model_is_reported_when_writing()
    {
        var message = Response([Rr("example.com.", RecordType.MX, 300, Rd.U16(10))]);
        Assert.Throws<DnsFormatException>(() => message.ToWire());
    }

    [Fact]
    public void Question_case_is_kept_for_0x20_resolvers()
    {
        var query = Query("wWw.ExAmPlE.cOm.");
        var parsed = DnsMessage.Parse(query.ToWire());
        Assert.Equal("wWw.ExAmPlE.cOm.", parsed.Questions[0].Name.ToString());
    }

    [Fact]
    public void Checking_a_response_of_every_type_allocates_nothing()
    {
        var wire = Response(RecordsOfManyTypes(), edns: FullEdns()).ToWire();
        Assert.True(DnsMessage.IsWellFormed(wire));
        Assert.True(Portcullis.Protocol.Messages.OptRecord.TryRead(wire, out _));
        long before = GC.GetAllocatedBytesForCurrentThread();
        bool ok = DnsMessage.IsWellFormed(wire) & Portcullis.Protocol.Messages.OptRecord.TryRead(wire, out _);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.True(ok);
    }

    [Fact]
    public void Write_fills_a_caller_span()
    {
        var message = Query();
        Span<byte> buffer = stackalloc byte[512];
        int n = message.Write(buffer);
        Assert.Equal(message.ToWire(), buffer[..n].ToArray());
    }
}

/// <summary>Named access to the header's flag properties for theories.</summary>
internal static class DnsHeaderBits
{
    public const string IsResponse = nameof(IsResponse), AuthoritativeAnswer = nameof(AuthoritativeAnswer), Truncated = nameof(Truncated),
        RecursionDesired = nameof(RecursionDesired), RecursionAvailable = nameof(RecursionAvailable), Z = nameof(Z),
        AuthenticData = nameof(AuthenticData), CheckingDisabled = nameof(CheckingDisabled);

    public static void Set(ref DnsHeader h, string flag, bool on)
    {
        switch (flag)
        {
            case IsResponse: h.IsResponse = on; break;
            case AuthoritativeAnswer: h.AuthoritativeAnswer = on; break;
            case Truncated: h.Truncated = on; break;
            case RecursionDesired: h.RecursionDesired = on; break;
            case RecursionAvailable: h.RecursionAvailable = on; break;
            case Z: h.Z = on; break;
            case AuthenticData: h.AuthenticData = on; break;
            case CheckingDisabled: h.CheckingDisabled = on; break;
            default: throw new ArgumentException(flag);
        }
    }

    public static bool Get(DnsHeader h, string flag) => flag switch
    {
        IsResponse => h.IsResponse,
        AuthoritativeAnswer => h.AuthoritativeAnswer,
        Truncated => h.Truncated,
        RecursionDesired => h.RecursionDesired,
        RecursionAvailable => h.RecursionAvailable,
        Z => h.Z,
        AuthenticData => h.AuthenticData,
        CheckingDisabled => h.CheckingDisabled,
        _ => throw new ArgumentException(flag),
    };
}
