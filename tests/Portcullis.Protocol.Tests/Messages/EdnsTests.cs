using System.Buffers.Binary;
using System.Net;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.Wire;
using static Portcullis.Protocol.Tests.Messages.SampleMessages;

namespace Portcullis.Protocol.Tests.Messages;

public class EdnsTests
{
    private static readonly byte[] ClientCookie = Rd.Hex("C1C2C3C4C5C6C7C8");

    [Fact]
    public void The_opt_record_written_by_the_writer_has_the_rfc_6891_layout()
    {
        var wire = WriterQuery(ClientCookie, dnssecOk: true, payload: 4096);
        // Header says one question, one additional record.
        Assert.Equal(1, BinaryPrimitives.ReadUInt16BigEndian(wire.AsSpan(10)));
        int opt = wire.Length - (11 + 4 + 8);
        Assert.Equal(0, wire[opt]);                                                        // owner: root
        Assert.Equal(41, BinaryPrimitives.ReadUInt16BigEndian(wire.AsSpan(opt + 1)));      // TYPE OPT
        Assert.Equal(4096, BinaryPrimitives.ReadUInt16BigEndian(wire.AsSpan(opt + 3)));    // CLASS: payload size
        Assert.Equal(0x00008000u, BinaryPrimitives.ReadUInt32BigEndian(wire.AsSpan(opt + 5))); // ext-rcode 0, version 0, DO
        Assert.Equal(12, BinaryPrimitives.ReadUInt16BigEndian(wire.AsSpan(opt + 9)));     // RDLENGTH
        Assert.Equal(10, BinaryPrimitives.ReadUInt16BigEndian(wire.AsSpan(opt + 11)));    // OPTION-CODE COOKIE
        Assert.Equal(8, BinaryPrimitives.ReadUInt16BigEndian(wire.AsSpan(opt + 13)));
        Assert.Equal(ClientCookie, wire[(opt + 15)..]);
    }

    [Fact]
    public void The_server_reads_opt_from_a_query_without_allocating()
    {
        var wire = WriterQuery(ClientCookie);
        // Warm up, then measure.
        ReadOpt(wire, out _);
        long before = GC.GetAllocatedBytesForCurrentThread();
        bool ok = true;
        int payload = 0;
        for (int i = 0; i < 100; i++) ok &= ReadOpt(wire, out payload);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(ok);
        Assert.Equal(1232, payload);
        Assert.Equal(0, allocated);
    }

    private static bool ReadOpt(ReadOnlySpan<byte> wire, out int payload)
    {
        payload = 0;
        if (!OptRecord.TryRead(wire, out var opt) || !opt.IsPresent || !opt.DnssecOk || opt.Version != 0) return false;
        if (!opt.TryGetCookie(out var client, out var server) || client.Length != 8 || !server.IsEmpty) return false;
        payload = opt.UdpPayloadSize;
        return DnsMessage.IsWellFormed(wire);
    }

    [Fact]
    public void Opt_can_be_read_by_continuing_a_reader_after_the_question()
    {
        var wire = WriterQuery(ClientCookie, dnssecOk: false, payload: 100);
        var reader = new DnsMessageReader(wire);
        Span<byte> name = stackalloc byte[255];
        Assert.True(reader.TryReadQuestion(name, out _, out var type, out _));
        Assert.Equal(RecordType.A, type);
        Assert.True(OptRecord.TryReadFrom(ref reader, out var opt));
        Assert.True(opt.IsPresent);
        Assert.False(opt.DnssecOk);
        Assert.Equal(100, opt.UdpPayloadSize);
        Assert.Equal(512, opt.EffectiveUdpPayloadSize);          // RFC 6891 §6.2.5
        Assert.Equal(0, reader.Remaining);
        Assert.True(opt.TryGetCookie(out var client, out _));
        Assert.Equal(ClientCookie, client.ToArray());
        Assert.False(opt.TryGetOption(EdnsOptionCode.Nsid, out _));
    }

    [Fact]
    public void A_query_without_opt_reads_as_absent()
    {
        var wire = Query(edns: false).ToWire();
        Assert.True(OptRecord.TryRead(wire, out var opt));
        Assert.False(opt.IsPresent);
        Assert.False(opt.TryGetCookie(out _, out _));
        Assert.Null(DnsMessage.Parse(wire).Edns);
    }

    [Fact]
    public void Opt_options_can_be_walked_in_order()
    {
        var message = Query();
        message.Edns = FullEdns();
        var wire = message.ToWire();
        Assert.True(OptRecord.TryRead(wire, out var opt));
        var codes = new List<EdnsOptionCode>();
        foreach (var option in opt) codes.Add(option.Code);
        Assert.Equal(FullEdns().Options.Select(o => o.Code), codes);
        Assert.True(opt.TryGetCookie(out _, out var server));
        Assert.Equal(16, server.Length);
    }

    [Fact]
    public void Server_side_writers_build_options_a_client_can_read()
    {
        Span<byte> options = stackalloc byte[200];
        int n = 0;
        Assert.True(EdnsOptionWire.TryWriteCookie(options[n..], ClientCookie, Rd.Hex("0101010101010101AABBCCDDEEFF0011"), out int w)); n += w;
        Assert.True(EdnsOptionWire.TryWriteExtendedError(options[n..], ExtendedDnsErrorCode.Prohibited, "no"u8, out w)); n += w;
        Assert.True(EdnsOptionWire.TryWriteTcpKeepalive(options[n..], 300, out w)); n += w;
        Assert.True(EdnsOptionWire.TryWriteOption(options[n..], EdnsOptionCode.Nsid, "ns1"u8, out w)); n += w;
        Assert.True(EdnsOptionWire.TryWritePadding(options[n..], 5, out w)); n += w;

        var buffer = new byte[512];
        var writer = new DnsMessageWriter(buffer);
        writer.Header.IsResponse = true;
        writer.Header.Rcode = Rcodes.HeaderPart(Rcode.BadCookie);
        Assert.True(writer.TryWriteQuestion(N("example.com.").Wire, RecordType.A, RecordClass.IN));
        Assert.True(writer.TryWriteOpt(1232, Rcodes.ExtendedPart(Rcode.BadCookie), 0, false, options[..n]));
        var message = DnsMessage.Parse(buffer.AsSpan(0, writer.Finish()));

        Assert.Equal(Rcode.BadCookie, message.Rcode);
        var edns = message.Edns!;
        Assert.Equal(16, edns.Find<CookieOption>()!.ServerCookie.Length);
        Assert.Equal(ExtendedDnsErrorCode.Prohibited, edns.Find<ExtendedDnsErrorOption>()!.InfoCode);
        Assert.Equal("no", edns.Find<ExtendedDnsErrorOption>()!.ExtraText);
        Assert.Equal((ushort)300, edns.Find<TcpKeepaliveOption>()!.Timeout);
        Assert.Equal("ns1"u8.ToArray(), edns.Find<NsidOption>()!.Data.ToArray());
        Assert.Equal(5, edns.Find<PaddingOption>()!.Length);
    }

    [Fact]
    public void TryWriteOpt_leaves_the_message_alone_when_it_does_not_fit()
    {
        var buffer = new byte[44];      // header 12 + question 21 + empty OPT 11
        var writer = new DnsMessageWriter(buffer);
        Assert.True(writer.TryWriteQuestion(N("www.example.com.").Wire, RecordType.A, RecordClass.IN));
        int before = writer.Position;
        Assert.False(writer.TryWriteOpt(1232, 0, 0, true, new byte[20]));
        Assert.Equal(before, writer.Position);
        Assert.Equal(0, writer.Header.AdditionalCount);
        Assert.True(writer.TryWriteOpt(1232, 0, 0, true, default));
        Assert.Equal(1, writer.Header.AdditionalCount);
    }

    [Fact]
    public void Writers_refuse_cookies_of_the_wrong_size()
    {
        var destination = new byte[64];
        Assert.Throws<ArgumentException>(() => EdnsOptionWire.TryWriteCookie(destination, new byte[7], default, out _));
        Assert.Throws<ArgumentException>(() => EdnsOptionWire.TryWriteCookie(destination, new byte[8], new byte[7], out _));
        Assert.Throws<ArgumentException>(() => new CookieOption(new byte[8], new byte[33]));
        Assert.False(EdnsOptionWire.TryWriteCookie(new byte[11], new byte[8], default, out _));
    }

    [Fact]
    public void Padding_length_brings_the_message_to_the_block_size()
    {
        // RFC 8467 §4.1: responses padded to a multiple of 468 octets.
        for (int length = 12; length < 1500; length += 37)
        {
            int padding = EdnsOptionWire.PaddingLengthFor(length, 468);
            Assert.Equal(0, (length + 4 + padding) % 468);
            Assert.InRange(padding, 0, 467);
        }
    }

    [Theory]
    [InlineData("192.0.2.77", 24, "C0 00 02", "192.0.2.0")]
    [InlineData("192.0.2.77", 0, "", "0.0.0.0")]
    [InlineData("192.0.2.255", 25, "C0 00 02 80", "192.0.2.128")]
    [InlineData("192.0.2.77", 32, "C0 00 02 4D", "192.0.2.77")]
    [InlineData("2001:db8:abcd:12ff::1", 56, "20 01 0D B8 AB CD 12", "2001:db8:abcd:1200::")]
    [InlineData("2001:db8:abcd:12ff::1", 57, "20 01 0D B8 AB CD 12 80", "2001:db8:abcd:1280::")]
    public void Client_subnet_truncates_the_address_to_the_prefix(string address, int prefix, string wireAddress, string subnet)
    {
        var option = new ClientSubnetOption(IPAddress.Parse(address), prefix);
        Assert.Equal(Rd.Hex(wireAddress), option.TruncatedAddress.ToArray());
        Assert.Equal(IPAddress.Parse(subnet), option.Address);
        var data = option.GetData();
        Assert.Equal(option.Family, BinaryPrimitives.ReadUInt16BigEndian(data));
        Assert.True(EdnsOptionWire.TryValidateOption(EdnsOptionCode.ClientSubnet, data, out _));
        Assert.Equal(option, EdnsOption.FromWire(EdnsOptionCode.ClientSubnet, data));
    }

    [Theory]
    [InlineData("0001 18 00 C00002", true)]       // 192.0.2.0/24
    [InlineData("0001 00 00", true)]              // /0: the client asks for no subnet
    [InlineData("0002 38 00 20010DB8ABCD12", true)]
    [InlineData("0001 18 00 C00002FF", false)]    // too many address octets
    [InlineData("0001 18 00 C000", false)]        // too few
    [InlineData("0001 17 00 C00003", false)]      // a bit set past /23
    [InlineData("0001 21 00 C0000201FF", false)]  // /33 for IPv4
    [InlineData("0002 80 81 20010DB8000000000000000000000001", false)]  // scope /129
    [InlineData("0003 00 00", false)]             // unknown family
    [InlineData("0001 18", false)]                // shorter than the fixed part
    public void Client_subnet_data_is_checked_as_rfc_7871_asks(string hex, bool valid)
    {
        Assert.Equal(valid, EdnsOptionWire.TryValidateOption(EdnsOptionCode.ClientSubnet, Rd.Hex(hex), out _));
    }

    [Theory]
    [InlineData(8, true)]
    [InlineData(16, true)]
    [InlineData(40, true)]
    [InlineData(0, false)]
    [InlineData(7, false)]
    [InlineData(9, false)]
    [InlineData(15, false)]
    [InlineData(41, false)]
    public void Cookie_lengths_follow_rfc_7873(int length, bool valid)
    {
        Assert.Equal(valid, EdnsOptionWire.TryValidateOption(EdnsOptionCode.Cookie, new byte[length], out _));
        if (!valid) Assert.Throws<DnsFormatException>(() => EdnsOption.FromWire(EdnsOptionCode.Cookie, new byte[length]));
    }

    [Theory]
    [InlineData(0, true)]
    [InlineData(2, true)]
    [InlineData(1, false)]
    [InlineData(4, false)]
    public void Tcp_keepalive_is_empty_or_two_octets(int length, bool valid)
    {
        Assert.Equal(valid, EdnsOptionWire.TryValidateOption(EdnsOptionCode.TcpKeepalive, new byte[length], out _));
    }

    [Fact]
    public void Extended_dns_errors_have_their_registry_names()
    {
        Assert.Equal("Stale Answer", ExtendedDnsErrors.ToText(ExtendedDnsErrorCode.StaleAnswer));
        Assert.Equal("DNSSEC Bogus", ExtendedDnsErrors.ToText(ExtendedDnsErrorCode.DnssecBogus));
        Assert.Equal("Not Authoritative", ExtendedDnsErrors.ToText((ExtendedDnsErrorCode)20));
        Assert.Equal("Unknown Error 4000", ExtendedDnsErrors.ToText((ExtendedDnsErrorCode)4000));
        Assert.False(EdnsOptionWire.TryValidateOption(EdnsOptionCode.ExtendedDnsError, new byte[1], out _));
        var ede = (ExtendedDnsErrorOption)EdnsOption.FromWire(EdnsOptionCode.ExtendedDnsError, Rd.Hex("0006"));
        Assert.Equal(ExtendedDnsErrorCode.DnssecBogus, ede.InfoCode);
        Assert.Equal("", ede.ExtraText);
        Assert.Equal("EDE: 6 (DNSSEC Bogus)", ede.ToString());
    }

    [Fact]
    public void Unknown_options_and_non_zero_padding_are_accepted()
    {
        var unknown = EdnsOption.FromWire((EdnsOptionCode)0xFDE9, Rd.Hex("00FF"));
        Assert.IsType<UnknownEdnsOption>(unknown);
        // RFC 7830 §3: responders must not reject padding that is not zeros.
        var padding = Assert.IsType<PaddingOption>(EdnsOption.FromWire(EdnsOptionCode.Padding, Rd.Hex("DEAD")));
        Assert.Equal(2, padding.Length);
    }

    [Fact]
    public void Version_and_z_bits_are_kept()
    {
        var message = Query();
        message.Edns!.Version = 1;
        message.Edns.Flags = 0x8001;
        var parsed = DnsMessage.Parse(message.ToWire());
        Assert.Equal(1, parsed.Edns!.Version);
        Assert.True(parsed.Edns.DnssecOk);
        Assert.Equal(0x8001, parsed.Edns.Flags);
        Assert.True(OptRecord.TryRead(message.ToWire(), out var opt));
        Assert.Equal(1, opt.Version);
    }
}
