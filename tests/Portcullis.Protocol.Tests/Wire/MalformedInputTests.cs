using System.Buffers.Binary;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.Tests.Messages;
using Portcullis.Protocol.Wire;

namespace Portcullis.Protocol.Tests.Wire;

/// <summary>
/// Hostile and broken messages. Every case must end in <see cref="DnsFormatException"/> from
/// <see cref="DnsMessage.Parse"/> (never another exception type) and in false from the
/// zero-allocation paths. Most cases come with the valid message they were broken from, which
/// must parse, so each case fails for the reason it names.
/// </summary>
public class MalformedInputTests
{
    /// <summary>Builds raw messages octet by octet.</summary>
    private sealed class Raw
    {
        private readonly List<byte> _bytes = [];

        public static Raw Header(int qd, int an = 0, int ns = 0, int ar = 0, ushort flags = 0x8400) =>
            new Raw().U16(0xABCD).U16(flags).U16(qd).U16(an).U16(ns).U16(ar);

        public int Position => _bytes.Count;
        public Raw Bytes(params byte[] b) { _bytes.AddRange(b); return this; }
        public Raw U16(int v) => Bytes((byte)(v >> 8), (byte)v);
        public Raw U32(uint v) => U16((int)(v >> 16)).U16((int)(v & 0xFFFF));
        public Raw Name(string name) => Bytes(DnsName.Parse(name).Wire.ToArray());
        public Raw Question(string name, RecordType type = RecordType.A) => Name(name).U16((int)type).U16(1);
        public Raw Question(byte[] name, RecordType type = RecordType.A) => Bytes(name).U16((int)type).U16(1);

        public Raw Record(byte[] owner, RecordType type, byte[] rdata, int? rdlength = null, ushort @class = 1, uint ttl = 300) =>
            Bytes(owner).U16((int)type).U16(@class).U32(ttl).U16(rdlength ?? rdata.Length).Bytes(rdata);

        public Raw Record(string owner, RecordType type, byte[] rdata, int? rdlength = null) =>
            Record(DnsName.Parse(owner).Wire.ToArray(), type, rdata, rdlength);

        public Raw Opt(byte[] options, byte[]? owner = null, ushort payload = 1232, uint ttl = 0) =>
            Record(owner ?? [0], RecordType.OPT, options, null, payload, ttl);

        public byte[] ToArray() => [.. _bytes];
    }

    private static byte[] Option(int code, string hex) => Rd.Cat(Rd.U16(code), Rd.U16(hex.Replace(" ", "").Length / 2), Rd.Hex(hex));

    private static byte[] Answer(RecordType type, byte[] rdata, int? rdlength = null) =>
        Raw.Header(1, 1).Question("example.com.").Record("example.com.", type, rdata, rdlength).ToArray();

    private static byte[] WithOpt(params byte[][] options) =>
        Raw.Header(1, 0, 0, 1).Question("example.com.").Opt(Rd.Cat(options)).ToArray();

    /// <summary>name → (malformed message, the valid message it was broken from or null, whether the OPT reader must refuse it too).</summary>
    private static readonly Dictionary<string, (byte[] Bad, byte[]? Good, bool Structural)> Corpus = BuildCorpus();

    private static Dictionary<string, (byte[], byte[]?, bool)> BuildCorpus()
    {
        var c = new Dictionary<string, (byte[], byte[]?, bool)>();
        void Structural(string name, byte[] bad, byte[]? good = null) => c.Add(name, (bad, good, true));
        void Content(string name, byte[] bad, byte[]? good = null) => c.Add(name, (bad, good, false));
        byte[] L63 = [63, .. Enumerable.Repeat((byte)'a', 63)];

        // Compression pointers (RFC 1035 §4.1.4): only strictly backwards, so no loops.
        Structural("self pointer", Raw.Header(1).Bytes(0xC0, 0x0C).U16(1).U16(1).ToArray());
        Structural("pointer to the start of its own name", Raw.Header(1).Bytes(3, (byte)'a', (byte)'b', (byte)'c', 0xC0, 0x0C).U16(1).U16(1).ToArray(),
            Raw.Header(1).Bytes(3, (byte)'a', (byte)'b', (byte)'c', 0).U16(1).U16(1).ToArray());
        Structural("pointer into the middle of its own name", Raw.Header(1).Bytes(4, 1, (byte)'x', 1, (byte)'y', 0xC0, 0x0D).U16(1).U16(1).ToArray());
        // Name at 12 points to 14, whose two octets (the question's TYPE) point back to 12.
        Structural("two pointers pointing at each other", Raw.Header(1).Bytes(0xC0, 0x0E, 0xC0, 0x0C).U16(1).ToArray());
        // The same loop entered from a later record through a backward pointer first.
        Structural("loop entered through a backward pointer",
            Raw.Header(1, 1).Bytes(0xC0, 0x0E, 0xC0, 0x0C).U16(1).Record([0xC0, 0x0E], RecordType.A, Rd.Ip("192.0.2.1")).ToArray());
        var forwardGood = Raw.Header(1, 1).Question("example.com.").Record([0xC0, 0x0C], RecordType.A, Rd.Ip("192.0.2.1")).ToArray();
        Structural("forward pointer", Raw.Header(1, 1).Bytes(0xC0, 0x12).U16(1).U16(1).Record("example.com.", RecordType.A, Rd.Ip("192.0.2.1")).ToArray(), forwardGood);
        Structural("pointer past the end of the message", Raw.Header(1, 1).Question("example.com.").Record([0xC0, 0xFF], RecordType.A, Rd.Ip("192.0.2.1")).ToArray(), forwardGood);
        Structural("pointer cut in half at the end", Raw.Header(1).Bytes(1, (byte)'a', 0xC0).ToArray());
        {
            // 200 pointers, each pointing at the one before, ending in the root name at offset 12.
            var chain = new List<byte>();
            int baseOffset = 12 + 5 + 11;                  // after the question and the carrier record's fixed part
            for (int i = 0; i < 200; i++)
            {
                int target = i == 0 ? 12 : baseOffset + 2 * (i - 1);
                chain.Add((byte)(0xC0 | (target >> 8)));
                chain.Add((byte)target);
            }
            int last = baseOffset + 2 * 199;
            Structural("more than 127 pointer hops",
                Raw.Header(1, 2).Bytes(0).U16(1).U16(1).Record([0], (RecordType)65280, [.. chain])
                    .Record([(byte)(0xC0 | (last >> 8)), (byte)last], RecordType.A, Rd.Ip("192.0.2.1")).ToArray());
        }

        // Label types and lengths (RFC 1035 §2.3.4, RFC 6891 §5).
        foreach (byte type in new byte[] { 0x40, 0x41, 0x7F, 0x80, 0xBF })
            Structural($"label type 0x{type:X2}", Raw.Header(1).Bytes([type, .. Enumerable.Repeat((byte)'a', 0x40), 0]).U16(1).U16(1).ToArray());
        Structural("name over 255 octets without pointers",
            Raw.Header(1).Bytes([.. L63, .. L63, .. L63, .. L63, 0]).U16(1).U16(1).ToArray(),
            Raw.Header(1).Bytes([.. L63, .. L63, .. L63, 61, .. Enumerable.Repeat((byte)'b', 61), 0]).U16(1).U16(1).ToArray());
        {
            // Each question is a 63-octet label in front of the previous question's name.
            var good = Raw.Header(3).Bytes([.. L63, 0]).U16(1).U16(1);
            int previous = 12;
            for (int i = 1; i < 3; i++)
            {
                int at = good.Position;
                good.Bytes([.. L63, 0xC0, (byte)previous]).U16(1).U16(1);
                previous = at;
            }
            var bad = Raw.Header(4).Bytes(good.ToArray()[12..]).Bytes([.. L63, 0xC0, (byte)previous]).U16(1).U16(1);
            var goodBytes = good.ToArray();
            Structural("name over 255 octets via pointers", bad.ToArray(), goodBytes);
        }

        // Lengths and counts.
        Structural("RDLENGTH past the end", Answer(RecordType.A, Rd.Ip("192.0.2.1"), rdlength: 5), Answer(RecordType.A, Rd.Ip("192.0.2.1")));
        Structural("RDLENGTH 65535 in a short message", Answer((RecordType)65280, [1, 2, 3], rdlength: 0xFFFF));
        Structural("question count larger than the message", Raw.Header(2).Question("example.com.").ToArray(), Raw.Header(1).Question("example.com.").ToArray());
        Structural("answer count larger than the message", Raw.Header(1, 2).Question("example.com.").Record("example.com.", RecordType.A, Rd.Ip("192.0.2.1")).ToArray(), forwardGood);
        Structural("all counts 65535", Raw.Header(0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF).ToArray());
        Structural("additional count 65535", Raw.Header(1, 0, 0, 0xFFFF).Question("example.com.").ToArray());
        Structural("octets after the last record", [.. forwardGood, 0], forwardGood);
        Structural("a whole extra record beyond the counts", Raw.Header(1, 0).Question("example.com.").Record("example.com.", RecordType.A, Rd.Ip("192.0.2.1")).ToArray(), forwardGood);

        // RDATA of known types whose inner lengths are wrong.
        Content("A with 3 octets", Answer(RecordType.A, [192, 0, 2]), Answer(RecordType.A, [192, 0, 2, 1]));
        Content("A with 5 octets", Answer(RecordType.A, [192, 0, 2, 1, 0]), Answer(RecordType.A, [192, 0, 2, 1]));
        Content("AAAA with 15 octets", Answer(RecordType.AAAA, new byte[15]), Answer(RecordType.AAAA, new byte[16]));
        var soa = Rd.Cat(Rd.Name("ns1.example.com."), Rd.Name("hostmaster.example.com."), Rd.U32(1), Rd.U32(2), Rd.U32(3), Rd.U32(4), Rd.U32(5));
        Content("SOA truncated in its timers", Answer(RecordType.SOA, soa[..^1]), Answer(RecordType.SOA, soa));
        Content("SOA without its timers", Answer(RecordType.SOA, soa[..^20]), Answer(RecordType.SOA, soa));
        Content("SOA with one octet too many", Answer(RecordType.SOA, [.. soa, 0]), Answer(RecordType.SOA, soa));
        Content("SOA MNAME running past RDATA", Answer(RecordType.SOA, soa[..5]));
        Content("MX without its exchange", Answer(RecordType.MX, Rd.U16(10)), Answer(RecordType.MX, Rd.Cat(Rd.U16(10), Rd.Name("mx.example."))));
        // The CNAME RDATA starts at offset 52 (header 12, question 17, owner 13, fixed part 10).
        Content("CNAME pointing at itself", Answer(RecordType.CNAME, [0xC0, 52]), Answer(RecordType.CNAME, [0xC0, 0x0C]));
        Content("CNAME with a forward pointer", Answer(RecordType.CNAME, [0xC0, 53]), Answer(RecordType.CNAME, [0xC0, 0x0C]));
        Content("CNAME name running past RDATA into the next octets", Answer(RecordType.CNAME, [1, (byte)'a', 0], rdlength: 2));
        Content("CNAME with label type 0x80", Answer(RecordType.CNAME, [0x81, (byte)'a', 0]), Answer(RecordType.CNAME, [0x01, (byte)'a', 0]));
        Content("TXT string length past the end", Answer(RecordType.TXT, [5, (byte)'a', (byte)'b']), Answer(RecordType.TXT, [2, (byte)'a', (byte)'b']));
        Content("TXT with empty RDATA", Answer(RecordType.TXT, []), Answer(RecordType.TXT, [0]));
        Content("HINFO with one string", Answer(RecordType.HINFO, Rd.Str("PC")), Answer(RecordType.HINFO, Rd.Cat(Rd.Str("PC"), Rd.Str("Linux"))));
        byte[] nsecName = Rd.Name("a.example.com.");
        Content("NSEC bitmap window of length 0", Answer(RecordType.NSEC, [.. nsecName, 0, 0]), Answer(RecordType.NSEC, [.. nsecName, 0, 1, 0x40]));
        Content("NSEC bitmap window of length 33", Answer(RecordType.NSEC, [.. nsecName, 0, 33, .. new byte[33]]), Answer(RecordType.NSEC, [.. nsecName, 0, 32, .. new byte[32]]));
        Content("NSEC bitmap windows out of order", Answer(RecordType.NSEC, [.. nsecName, 1, 1, 0x40, 0, 1, 0x40]), Answer(RecordType.NSEC, [.. nsecName, 0, 1, 0x40, 1, 1, 0x40]));
        Content("NSEC bitmap window repeated", Answer(RecordType.NSEC, [.. nsecName, 0, 1, 0x40, 0, 1, 0x40]));
        Content("NSEC bitmap window past the end", Answer(RecordType.NSEC, [.. nsecName, 0, 4, 0x40]));
        Content("NSEC bitmap window header cut", Answer(RecordType.NSEC, [.. nsecName, 0]));
        Content("NSEC3 hash length past the end", Answer(RecordType.NSEC3, [1, 0, 0, 0, 0, 20, 1, 2, 3]),
            Answer(RecordType.NSEC3, [1, 0, 0, 0, 0, 3, 1, 2, 3]));
        Content("NSEC3 with an empty hash", Answer(RecordType.NSEC3, [1, 0, 0, 0, 0, 0]));
        Content("NSEC3PARAM salt past the end", Answer(RecordType.NSEC3PARAM, [1, 0, 0, 0, 9, 1]), Answer(RecordType.NSEC3PARAM, [1, 0, 0, 0, 1, 1]));
        Content("SRV target cut", Answer(RecordType.SRV, Rd.Cat(Rd.U16(1), Rd.U16(1), Rd.U16(53), [3, (byte)'n', (byte)'s'])),
            Answer(RecordType.SRV, Rd.Cat(Rd.U16(1), Rd.U16(1), Rd.U16(53), Rd.Name("ns."))));
        Content("DS shorter than its fixed fields", Answer(RecordType.DS, [0, 1, 13]), Answer(RecordType.DS, [0, 1, 13, 2]));
        Content("LOC version 1", Answer(RecordType.LOC, [1, .. new byte[15]]), Answer(RecordType.LOC, [0, .. new byte[15]]));
        Content("CAA with an empty tag", Answer(RecordType.CAA, [0, 0]), Answer(RecordType.CAA, [0, 1, (byte)'x']));
        Content("SVCB keys out of order", Answer(RecordType.SVCB, Rd.Cat(Rd.U16(1), [0], Rd.U16(3), Rd.U16(2), Rd.U16(443), Rd.U16(1), Rd.U16(0))),
            Answer(RecordType.SVCB, Rd.Cat(Rd.U16(1), [0], Rd.U16(1), Rd.U16(0), Rd.U16(3), Rd.U16(2), Rd.U16(443))));
        Content("SVCB value past the end", Answer(RecordType.SVCB, Rd.Cat(Rd.U16(1), [0], Rd.U16(3), Rd.U16(9), Rd.U16(443))));
        Content("IPSECKEY unknown gateway type", Answer(RecordType.IPSECKEY, [10, 9, 2, 1, 2, 3, 4]), Answer(RecordType.IPSECKEY, [10, 1, 2, 1, 2, 3, 4]));
        Content("TSIG MAC length past the end", Answer(RecordType.TSIG, Rd.Cat(Rd.Name("hmac-sha256."), new byte[6], Rd.U16(300), Rd.U16(200), [1, 2])));

        // OPT (RFC 6891 §6.1.1-2).
        var optGood = WithOpt();
        Structural("two OPT records", Raw.Header(1, 0, 0, 2).Question("example.com.").Opt([]).Opt([]).ToArray(), optGood);
        Structural("OPT in the answer section", Raw.Header(1, 1).Question("example.com.").Opt([]).ToArray(), optGood);
        Structural("OPT in the authority section", Raw.Header(1, 0, 1).Question("example.com.").Opt([]).ToArray(), optGood);
        Structural("OPT owner not the root", Raw.Header(1, 0, 0, 1).Question("example.com.").Opt([], owner: Rd.Name("example.com.")).ToArray(), optGood);
        Structural("OPT owner a pointer to a non-root name", Raw.Header(1, 0, 0, 1).Question("example.com.").Opt([], owner: [0xC0, 0x0C]).ToArray(), optGood);
        Structural("EDNS option header cut", WithOpt([0, 10, 0]), WithOpt());
        Structural("EDNS option length past the end", WithOpt(Rd.Cat(Rd.U16(3), Rd.U16(10), [1, 2, 3, 4])), WithOpt(Rd.Cat(Rd.U16(3), Rd.U16(4), [1, 2, 3, 4])));
        Structural("EDNS option length 65535", WithOpt(Rd.Cat(Rd.U16(65001), Rd.U16(0xFFFF))));
        Structural("second EDNS option past the end", WithOpt(Option(3, ""), Rd.Cat(Rd.U16(12), Rd.U16(1))), WithOpt(Option(3, ""), Option(12, "00")));
        foreach (int length in new[] { 0, 7, 9, 15, 41 })
            Structural($"COOKIE of {length} octets", WithOpt(Option(10, new string('A', 2 * length))), WithOpt(Option(10, new string('A', 16))));
        Structural("ECS with bits set past the prefix", WithOpt(Option(8, "0001 17 00 C00003")), WithOpt(Option(8, "0001 17 00 C00002")));
        Structural("ECS IPv6 with bits set past the prefix", WithOpt(Option(8, "0002 21 00 20010DB8FF")), WithOpt(Option(8, "0002 21 00 20010DB880")));
        Structural("ECS address longer than the prefix", WithOpt(Option(8, "0001 08 00 C000")), WithOpt(Option(8, "0001 08 00 C0")));
        Structural("ECS address shorter than the prefix", WithOpt(Option(8, "0001 18 00 C0")), WithOpt(Option(8, "0001 08 00 C0")));
        Structural("ECS unknown family", WithOpt(Option(8, "0000 00 00")), WithOpt(Option(8, "0001 00 00")));
        Structural("ECS source prefix longer than IPv4", WithOpt(Option(8, "0001 21 00 C0000201FF")));
        Structural("ECS scope prefix longer than IPv6", WithOpt(Option(8, "0002 00 81")), WithOpt(Option(8, "0002 00 80")));
        Structural("ECS shorter than its fixed part", WithOpt(Option(8, "0001 00")));
        Structural("TCP keepalive of 1 octet", WithOpt(Option(11, "01")), WithOpt(Option(11, "0001")));
        Structural("TCP keepalive of 3 octets", WithOpt(Option(11, "000100")), WithOpt(Option(11, "")));
        Structural("Extended DNS Error of 1 octet", WithOpt(Option(15, "00")), WithOpt(Option(15, "0000")));
        return c;
    }

    public static TheoryData<string> CaseNames() => [.. Corpus.Keys];

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Hostile_message_is_rejected(string name)
    {
        var (bad, good, structural) = Corpus[name];
        if (good is not null)
        {
            var parsed = DnsMessage.Parse(good);
            Assert.True(DnsMessage.IsWellFormed(good));
            Assert.True(ReaderAccepts(good));
            MessageAssert.Equivalent(parsed, DnsMessage.Parse(parsed.ToWire()));
        }
        AssertRejected(bad, structural);
    }

    [Theory]
    [InlineData(0)] [InlineData(1)] [InlineData(2)] [InlineData(3)] [InlineData(4)] [InlineData(5)]
    [InlineData(6)] [InlineData(7)] [InlineData(8)] [InlineData(9)] [InlineData(10)] [InlineData(11)]
    public void Truncated_header_is_rejected(int length)
    {
        var wire = SampleMessages.Query(edns: false).ToWire()[..length];
        AssertRejected(wire, structural: true);
        Assert.False(DnsMessageReader.TryCreate(wire, out _));
        Assert.Throws<DnsFormatException>(() => new DnsMessageReader(wire));
    }

    [Fact]
    public void A_query_cut_at_every_octet_is_rejected()
    {
        var wire = SampleMessages.Query("www.example.com.", RecordType.AAAA).ToWire();
        Assert.True(DnsMessage.IsWellFormed(wire));
        for (int length = 0; length < wire.Length; length++)
            AssertRejected(wire[..length], structural: true);
    }

    [Fact]
    public void A_response_of_every_type_cut_at_every_octet_is_rejected()
    {
        var message = SampleMessages.Response(SampleMessages.RecordsOfManyTypes(), edns: SampleMessages.FullEdns());
        var wire = message.ToWire();
        for (int length = 0; length < wire.Length; length++)
            AssertRejected(wire[..length], structural: true);
    }

    [Fact]
    public void Zero_allocation_paths_allocate_nothing_on_hostile_pointer_input()
    {
        // The pointer and label checks run without a single allocation, failure included.
        var cases = Corpus.Where(kv => kv.Value.Structural && (kv.Key.Contains("pointer") || kv.Key.Contains("label type")))
            .Select(kv => kv.Value.Bad).ToArray();
        Assert.True(cases.Length >= 10);
        foreach (var wire in cases) { DnsMessage.IsWellFormed(wire); OptRecord.TryRead(wire, out _); }
        long before = GC.GetAllocatedBytesForCurrentThread();
        foreach (var wire in cases)
        {
            Assert.False(DnsMessage.IsWellFormed(wire));
            Assert.False(OptRecord.TryRead(wire, out _));
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    internal static void AssertRejected(byte[] wire, bool structural)
    {
        var error = Record.Exception(() => DnsMessage.Parse(wire));
        Assert.NotNull(error);
        Assert.IsType<DnsFormatException>(error);
        Assert.False(DnsMessage.TryParse(wire, out var message));
        Assert.Null(message);
        Assert.False(DnsMessage.IsWellFormed(wire));
        Assert.False(ReaderAccepts(wire));
        if (structural) Assert.False(OptRecord.TryRead(wire, out _));
    }

    /// <summary>Walks the message with the reader's Try methods alone, as a server would.</summary>
    internal static bool ReaderAccepts(ReadOnlySpan<byte> wire)
    {
        if (!DnsMessageReader.TryCreate(wire, out var reader)) return false;
        Span<byte> name = stackalloc byte[DnsName.MaxLength];
        var rdata = new byte[ushort.MaxValue];
        for (int i = 0; i < reader.Header.QuestionCount; i++)
            if (!reader.TryReadQuestion(name, out _, out _, out _)) return false;
        int records = reader.Header.AnswerCount + reader.Header.AuthorityCount + reader.Header.AdditionalCount;
        int optCount = 0;
        for (int i = 0; i < records; i++)
        {
            int start = reader.Position;
            if (!reader.TryReadRecord(name, out int nameLength, out var type, out var @class, out uint ttl, rdata, out int rdataLength))
            {
                Assert.Equal(start, reader.Position);       // a refused record leaves the reader where it was
                return false;
            }
            if (type != RecordType.OPT) continue;
            if (++optCount > 1 || nameLength != 1 || i < reader.Header.AnswerCount + reader.Header.AuthorityCount) return false;
            if (!OptRecord.TryCreate(@class, ttl, rdata.AsSpan(0, rdataLength), out _, out _)) return false;
        }
        return reader.Remaining == 0;
    }
}
