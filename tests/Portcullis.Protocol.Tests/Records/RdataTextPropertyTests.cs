using System.Buffers.Binary;
using CsCheck;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.ZoneText;

namespace Portcullis.Protocol.Tests.Rdata;

/// <summary>
/// Random RDATA printed and read back must give the same octets: arbitrary bytes in strings and
/// labels, type bitmaps, SvcParams, and plain noise for every type (which may only ever print in
/// the RFC 3597 form or in an exact one).
/// </summary>
public class RdataTextPropertyTests
{
    private static readonly DnsName Origin = DnsName.Parse("example.");

    private static void AssertRoundTrip(RecordType type, byte[] rdata)
    {
        string text = RdataText.Format(type, rdata);
        byte[] back = RdataText.Parse(type, RdataTokens.Split(text), Origin);
        Assert.True(rdata.AsSpan().SequenceEqual(back), $"{RecordTypes.ToText(type)} {text}: {Convert.ToHexString(rdata)} came back as {Convert.ToHexString(back)}");
    }

    private static readonly Gen<byte[]> CharacterString =
        Gen.Byte.Array[0, 255].Select(s => (byte[])[(byte)s.Length, .. s]);

    [Fact]
    public void Txt_strings_of_any_octets_round_trip()
    {
        CharacterString.Array[1, 6].Select(strings => strings.SelectMany(s => s).ToArray())
            .Sample(rdata => AssertRoundTrip(RecordType.TXT, rdata), iter: 2000);
    }

    private static readonly Gen<byte[]> NameWire =
        Gen.Byte.Array[1, 20].Array[0, 6].Select(labels =>
        {
            var wire = new List<byte>();
            foreach (var label in labels) { wire.Add((byte)label.Length); wire.AddRange(label); }
            wire.Add(0);
            return wire.ToArray();
        });

    [Fact]
    public void Names_with_odd_octets_round_trip()
    {
        Gen.Select(Gen.UShort, NameWire, NameWire, (preference, a, b) =>
        {
            var rdata = new byte[2 + a.Length];
            BinaryPrimitives.WriteUInt16BigEndian(rdata, preference);
            a.CopyTo(rdata, 2);
            return (mx: rdata, rp: a.Concat(b).ToArray());
        }).Sample(x =>
        {
            AssertRoundTrip(RecordType.MX, x.mx);
            AssertRoundTrip(RecordType.RP, x.rp);
        }, iter: 2000);
    }

    /// <summary>Windows built here independently of the library (RFC 4034 §4.1.2).</summary>
    private static byte[] Bitmap(IEnumerable<ushort> types)
    {
        var set = new SortedSet<ushort>(types);
        var result = new List<byte>();
        foreach (var window in set.GroupBy(t => t >> 8))
        {
            var bits = new byte[32];
            foreach (ushort t in window) bits[(t & 0xFF) >> 3] |= (byte)(0x80 >> (t & 7));
            int length = 32;
            while (bits[length - 1] == 0) length--;
            result.Add((byte)window.Key);
            result.Add((byte)length);
            result.AddRange(bits.Take(length));
        }
        return result.ToArray();
    }

    [Fact]
    public void Type_bitmaps_round_trip()
    {
        var typeGen = Gen.Frequency((3, Gen.UShort[1, 300]), (1, Gen.UShort));
        Gen.Select(typeGen.Array[1, 40], NameWire, (types, next) => (types, next)).Sample(x =>
        {
            var bitmap = Bitmap(x.types);
            AssertRoundTrip(RecordType.NSEC, [.. x.next, .. bitmap]);
            AssertRoundTrip(RecordType.CSYNC, [0, 0, 0, 1, 0, 3, .. bitmap]);
            AssertRoundTrip(RecordType.NSEC3, [1, 0, 0, 0, 0, 2, 0xAB, 0xCD, .. bitmap]);
        }, iter: 1000);
    }

    private static byte[] Param(ushort key, byte[] value)
    {
        var p = new byte[4 + value.Length];
        BinaryPrimitives.WriteUInt16BigEndian(p, key);
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(2), (ushort)value.Length);
        value.CopyTo(p, 4);
        return p;
    }

    private static readonly Gen<(ushort Key, byte[] Value)> SvcParam = Gen.OneOf(
        // alpn: protocol IDs of any octets, commas and backslashes included
        Gen.Byte.Array[1, 12].Array[1, 4].Select(ids => ((ushort)1, ids.SelectMany(id => (byte[])[(byte)id.Length, .. id]).ToArray())),
        Gen.Const(((ushort)2, Array.Empty<byte>())),
        Gen.UShort.Select(port => ((ushort)3, (byte[])[(byte)(port >> 8), (byte)port])),
        Gen.Byte.Array[4].Array[1, 3].Select(a => ((ushort)4, a.SelectMany(x => x).ToArray())),
        Gen.Byte.Array[0, 40].Select(ech => ((ushort)5, ech)),
        Gen.Byte.Array[16].Array[1, 3].Select(a => ((ushort)6, a.SelectMany(x => x).ToArray())),
        Gen.Byte.Array[0, 30].Select(path => ((ushort)7, path)),
        Gen.Const(((ushort)8, Array.Empty<byte>())),
        Gen.Select(Gen.UShort[9, 65534], Gen.Byte.Array[0, 30], (key, value) => (key, value)));

    [Fact]
    public void Svc_params_round_trip()
    {
        Gen.Select(SvcParam.Array[0, 8], Gen.Bool, NameWire, (ps, withMandatory, target) => (ps, withMandatory, target)).Sample(x =>
        {
            var unique = x.ps.GroupBy(p => p.Key).Select(g => g.First()).OrderBy(p => p.Key).ToList();
            // RFC 9460 §7.1.1: no-default-alpn only with alpn.
            if (!unique.Any(p => p.Key == 1)) unique.RemoveAll(p => p.Key == 2);
            if (x.withMandatory && unique.Count > 0)
            {
                var listed = unique.Where((_, i) => i % 2 == 0).SelectMany(p => (byte[])[(byte)(p.Key >> 8), (byte)p.Key]).ToArray();
                unique.Insert(0, ((ushort)0, listed));
            }
            byte[] rdata = [0, 1, .. x.target, .. unique.SelectMany(p => Param(p.Key, p.Value))];
            string text = RdataText.Format(RecordType.SVCB, rdata);
            Assert.False(text.StartsWith("\\#", StringComparison.Ordinal), text);
            AssertRoundTrip(RecordType.SVCB, rdata);
            AssertRoundTrip(RecordType.HTTPS, rdata);
        }, iter: 2000);
    }

    private static readonly RecordType[] SchemaTypes =
        Enumerable.Range(0, 65536).Select(t => (RecordType)t).Where(t => RdataSchema.Get(t) is not null).ToArray();

    [Fact]
    public void Any_octets_for_any_known_type_print_in_a_form_that_reads_back()
    {
        Gen.Select(Gen.Int[0, SchemaTypes.Length - 1], Gen.Byte.Array[0, 48], (i, rdata) => (type: SchemaTypes[i], rdata))
            .Sample(x =>
            {
                // Noise is mostly invalid; printing it must not throw, and must read back exactly when valid.
                string text = RdataText.Format(x.type, x.rdata);
                if (RdataWire.IsValid(x.type, x.rdata, out _)) AssertRoundTrip(x.type, x.rdata);
                else Assert.StartsWith("\\# ", text);
            }, iter: 20000);
    }

    private static readonly string[] Words =
    [
        "0", "1", "255", "65535", "4294967296", "-1", "@", ".", "a", "a.b.", "\\#", "\\", "\"", "=", "N", "S", "E", "W",
        "1h", "1.5", "99.999", "m", "-0.5m", "A", "TYPE1", "AAAA==", "ab", "-", "alpn=h2", "mandatory=alpn", "port=",
        "ipv4hint=1.2.3.4", "key1=", "ech=", "\\255", "\\999", "1-2-3", "00-00-00-00-00-00", "20240101000000",
    ];

    [Fact]
    public void Token_noise_ends_in_a_zone_format_error_or_in_rdata_that_prints_back()
    {
        var tokenGen = Gen.Select(Gen.Int[0, Words.Length - 1], Gen.Bool, (i, quoted) => new ZoneToken(Words[i], quoted && Words[i] != "\\#", 1, 1));
        Gen.Select(Gen.Int[0, SchemaTypes.Length - 1], tokenGen.Array[0, 12], (i, tokens) => (type: SchemaTypes[i], tokens))
            .Sample(x =>
            {
                byte[] rdata;
                try { rdata = RdataText.Parse(x.type, x.tokens, Origin); }
                catch (ZoneFormatException) { return; }
                Assert.True(RdataWire.IsValid(x.type, rdata, out _));
                AssertRoundTrip(x.type, rdata);
            }, iter: 20000);
    }
}
