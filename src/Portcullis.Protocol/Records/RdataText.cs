using System.Buffers.Binary;
using System.Text;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records.Text;
using Portcullis.Protocol.ZoneText;

namespace Portcullis.Protocol.Records;

/// <summary>
/// The presentation side of RDATA, driven by <see cref="RdataSchema"/>: formatting uncompressed
/// RDATA as text and parsing zone-file tokens into RDATA. The text is what BIND's
/// <c>named-compilezone -s full</c> prints, except that base64 and hex are never split by spaces.
/// Whatever <see cref="Format"/> prints, <see cref="Parse"/> turns back into the same octets: RDATA
/// that the type's own syntax cannot show exactly is printed in the RFC 3597 form instead.
/// </summary>
public static class RdataText
{
    /// <summary>Presentation of RDATA; the RFC 3597 <c>\# len hex</c> form for unknown types and for RDATA that is not valid for its type.</summary>
    public static string Format(RecordType type, ReadOnlySpan<byte> rdata)
    {
        var sb = new StringBuilder(rdata.Length * 2 + 16);
        AppendFormatted(sb, type, rdata);
        return sb.ToString();
    }

    /// <summary>Appends the presentation of <paramref name="rdata"/> to <paramref name="sb"/>.</summary>
    public static void AppendFormatted(StringBuilder sb, RecordType type, ReadOnlySpan<byte> rdata)
    {
        var fields = RdataSchema.Get(type);
        if (fields is null || !RdataWire.IsValid(type, rdata, out _))
        {
            FormatGeneric(sb, rdata);
            return;
        }
        int start = sb.Length;
        if (!TryAppendFields(sb, type, fields, rdata))
        {
            sb.Length = start;
            FormatGeneric(sb, rdata);
        }
    }

    /// <summary>The RFC 3597 §5 generic form, hex in uppercase as BIND prints it.</summary>
    public static void FormatGeneric(StringBuilder sb, ReadOnlySpan<byte> rdata)
    {
        sb.Append("\\# ").Append(rdata.Length);
        if (rdata.Length > 0) sb.Append(' ').Append(Convert.ToHexString(rdata));
    }

    /// <summary>
    /// A TTL or other time interval: decimal seconds, or numbers with the units w, d, h, m, s
    /// ("1h30m", "1w2d"), as BIND accepts them. False when it is neither or exceeds 32 bits.
    /// </summary>
    public static bool TryParseInterval(ReadOnlySpan<char> text, out uint seconds) => Numbers.TryParseInterval(text, out seconds);

    private static bool TryAppendFields(StringBuilder sb, RecordType type, RdataField[] fields, ReadOnlySpan<byte> rdata)
    {
        int start = sb.Length;
        int pos = 0;
        for (int i = 0; i < fields.Length; i++)
        {
            var f = fields[i];
            // IsValid has walked these fields already, so measuring cannot fail here.
            if (!RdataWire.TryMeasureField(f, rdata[pos..], rdata[..pos], out int len, out _)) return false;
            if (i > 0) sb.Append(' ');
            if (!TryAppendField(sb, type, i, f, rdata.Slice(pos, len), rdata[..pos])) return false;
            pos += len;
        }
        // A field that shows nothing (an empty type bitmap) leaves a separator behind.
        if (sb.Length > start && sb[^1] == ' ') sb.Length--;
        return true;
    }

    private static bool TryAppendField(StringBuilder sb, RecordType type, int index, RdataField field,
        ReadOnlySpan<byte> value, ReadOnlySpan<byte> before)
    {
        switch (field)
        {
            case RdataField.U8:
                if (type == RecordType.CERT && index == 2) sb.Append(Mnemonics.AlgorithmToText(value[0]));
                else sb.Append(value[0]);
                return true;
            case RdataField.U16:
                ushort u16 = BinaryPrimitives.ReadUInt16BigEndian(value);
                if (type == RecordType.TSIG && index == 5) sb.Append(Mnemonics.RcodeToText(u16));
                else sb.Append(u16);
                return true;
            case RdataField.U32 or RdataField.Interval32:
                sb.Append(BinaryPrimitives.ReadUInt32BigEndian(value));
                return true;
            case RdataField.Time48:
                sb.Append((ulong)BinaryPrimitives.ReadUInt16BigEndian(value) << 32 | BinaryPrimitives.ReadUInt32BigEndian(value[2..]));
                return true;
            case RdataField.Time32:
                sb.Append(TimeText.ToText(BinaryPrimitives.ReadUInt32BigEndian(value)));
                return true;
            case RdataField.CoveredType:
                sb.Append(RecordTypes.ToText((RecordType)BinaryPrimitives.ReadUInt16BigEndian(value)));
                return true;
            case RdataField.CertType:
                sb.Append(Mnemonics.CertTypeToText(BinaryPrimitives.ReadUInt16BigEndian(value)));
                return true;
            case RdataField.IPv4:
                IpAddressText.AppendIPv4(sb, value);
                return true;
            case RdataField.IPv6:
                IpAddressText.AppendIPv6(sb, value);
                return true;
            case RdataField.Name or RdataField.CompressibleName:
                DnsName.AppendPresentation(sb, value);
                return true;
            case RdataField.CharString:
                CharacterStrings.AppendQuoted(sb, value[1..]);
                return true;
            case RdataField.CharStrings:
                for (int pos = 0; pos < value.Length; pos += 1 + value[pos])
                {
                    if (pos > 0) sb.Append(' ');
                    CharacterStrings.AppendQuoted(sb, value.Slice(pos + 1, value[pos]));
                }
                return true;
            case RdataField.TextRest:
                CharacterStrings.AppendQuoted(sb, value);
                return true;
            case RdataField.Base64Rest:
                // An empty key or digest has no presentation of its own (BIND refuses one).
                if (value.IsEmpty) return false;
                BinaryText.AppendBase64(sb, value);
                return true;
            case RdataField.HexRest:
                if (value.IsEmpty || LengthProblem(type, field, before, value.Length) is not null) return false;
                BinaryText.AppendHex(sb, value);
                return true;
            case RdataField.HexU8:
                // RFC 5155 §3.3: an empty salt is shown as "-".
                if (value[0] == 0) sb.Append('-');
                else BinaryText.AppendHex(sb, value[1..]);
                return true;
            case RdataField.Base32U8:
                if (LengthProblem(type, field, before, value.Length - 1) is not null) return false;
                BinaryText.AppendBase32Hex(sb, value[1..]);
                return true;
            case RdataField.Base64U16:
                // TSIG (RFC 8945 §4.2): the size, then the octets when there are any.
                sb.Append(value.Length - 2);
                if (value.Length > 2) BinaryText.AppendBase64(sb.Append(' '), value[2..]);
                return true;
            case RdataField.TypeBitmap:
                // BIND refuses an NSEC without types (RFC 4034 §4.1.2 always has NSEC and RRSIG there).
                if (value.IsEmpty && type == RecordType.NSEC) return false;
                return TypeBitmapText.TryAppend(sb, value);
            case RdataField.Eui48 or RdataField.Eui64:
                for (int i = 0; i < value.Length; i++)
                {
                    if (i > 0) sb.Append('-');
                    sb.Append(value[i].ToString("x2", System.Globalization.CultureInfo.InvariantCulture));
                }
                return true;
            case RdataField.CaaTag:
                // RFC 8659 §4.1: tags are ASCII letters and digits; anything else has no bare form.
                foreach (byte b in value[1..]) if (!char.IsAsciiLetterOrDigit((char)b)) return false;
                sb.Append(Encoding.ASCII.GetString(value[1..]));
                return true;
            case RdataField.IpseckeyGateway:
                switch (before[1])
                {
                    case 0: sb.Append('.'); return true;   // RFC 4025 §3.3: no gateway
                    case 1: IpAddressText.AppendIPv4(sb, value); return true;
                    case 2: IpAddressText.AppendIPv6(sb, value); return true;
                    default: DnsName.AppendPresentation(sb, value); return true;
                }
            case RdataField.Loc:
                return LocText.TryAppend(sb, value);
            case RdataField.SvcParams:
                return SvcParamText.TryAppend(sb, value);
            default:
                return false;
        }
    }

    /// <summary>
    /// Parses RDATA tokens of <paramref name="type"/>; relative names are completed with
    /// <paramref name="origin"/>. Errors are <see cref="ZoneFormatException"/>s at the offending token.
    /// </summary>
    public static byte[] Parse(RecordType type, IReadOnlyList<ZoneToken> tokens, DnsName origin, string? file = null)
    {
        var reader = new RdataTokenReader(tokens, file);
        if (tokens.Count > 0 && !tokens[0].Quoted && tokens[0].Text == "\\#")
            return ParseGeneric(type, reader);

        var fields = RdataSchema.Get(type);
        if (fields is null)
        {
            string expected = $"RFC 3597 generic RDATA (\\# length hex) for type {RecordTypes.ToText(type)}";
            if (reader.AtEnd) throw reader.Missing(expected);
            throw reader.Expected(reader.Peek(), expected);
        }

        var sink = new ByteSink();
        for (int i = 0; i < fields.Length; i++)
            ParseField(type, i, fields[i], reader, origin, sink);
        reader.ExpectEnd();

        if (sink.Length > 65535) throw reader.Error(tokens[0], $"{RecordTypes.ToText(type)} RDATA is longer than 65535 octets");
        var rdata = sink.ToArray();
        // The parsers above only build valid RDATA; this is the safety net that keeps it so.
        if (!RdataWire.IsValid(type, rdata, out var error))
            throw reader.Error(tokens.Count > 0 ? tokens[0] : default, $"invalid {RecordTypes.ToText(type)} RDATA: {error}");
        return rdata;
    }

    /// <summary>RFC 3597 §5: <c>\# length hex...</c>, accepted for every type and checked against known ones.</summary>
    private static byte[] ParseGeneric(RecordType type, RdataTokenReader reader)
    {
        var marker = reader.Next("\\#");
        var lengthToken = reader.Next("the RDATA length after \\#");
        if (!Numbers.TryParseUnsigned(lengthToken.Text, 65535, out ulong length))
            throw reader.Expected(lengthToken, "an RDATA length from 0 to 65535");
        var sink = new ByteSink();
        ZoneToken last = lengthToken;
        while (!reader.AtEnd)
        {
            last = reader.Next("hex");
            if (!BinaryText.TryDecodeHex(last.Text, sink)) throw reader.Expected(last, "hex digits in pairs");
            if ((ulong)sink.Length > length)
                throw reader.Error(last, $"{sink.Length} octets of hex, more than the length {length}");
        }
        if ((ulong)sink.Length != length)
        {
            if (sink.Length == 0) throw reader.Missing($"{length} octets of hex");
            throw reader.Error(last, $"{sink.Length} octets of hex, fewer than the length {length}");
        }
        var rdata = sink.ToArray();
        if (!RdataWire.IsValid(type, rdata, out var error))
            throw reader.Error(marker, $"\\# RDATA is not valid {RecordTypes.ToText(type)} RDATA: {error}");
        return rdata;
    }

    private static void ParseField(RecordType type, int index, RdataField field, RdataTokenReader reader, DnsName origin, ByteSink sink)
    {
        ZoneToken t;
        switch (field)
        {
            case RdataField.U8:
                t = reader.Next("a number from 0 to 255");
                if (IsAlgorithmField(type, index))
                {
                    if (!Mnemonics.TryParseAlgorithm(t.Text, out byte alg)) throw reader.Expected(t, "an algorithm number from 0 to 255 or mnemonic");
                    sink.WriteU8(alg);
                }
                else sink.WriteU8((byte)ParseNumber(reader, t, byte.MaxValue));
                // RFC 4025 §2.3: gateway types 0 to 3 are the only ones with a presentation.
                if (type == RecordType.IPSECKEY && index == 1 && sink.WrittenSpan[1] > 3)
                    throw reader.Expected(t, "a gateway type from 0 to 3");
                return;
            case RdataField.U16:
                if (type == RecordType.TSIG && index == 5)
                {
                    t = reader.Next("an RCODE");
                    if (!Mnemonics.TryParseRcode(t.Text, out ushort rcode)) throw reader.Expected(t, "an RCODE number or mnemonic");
                    sink.WriteU16(rcode);
                    return;
                }
                t = reader.Next("a number from 0 to 65535");
                sink.WriteU16((ushort)ParseNumber(reader, t, ushort.MaxValue));
                return;
            case RdataField.U32:
                t = reader.Next("a number from 0 to 4294967295");
                sink.WriteU32((uint)ParseNumber(reader, t, uint.MaxValue));
                return;
            case RdataField.Interval32:
                t = reader.Next("a time interval");
                if (!Numbers.TryParseInterval(t.Text, out uint seconds))
                    throw reader.Expected(t, "a time interval (seconds, or units such as 1h30m) up to 4294967295 seconds");
                sink.WriteU32(seconds);
                return;
            case RdataField.Time48:
                t = reader.Next("a time in seconds");
                sink.WriteU48(ParseNumber(reader, t, (1UL << 48) - 1));
                return;
            case RdataField.Time32:
                t = reader.Next("a time (YYYYMMDDHHmmSS)");
                if (!TimeText.TryParse(t.Text, out uint time)) throw reader.Expected(t, "a time as YYYYMMDDHHmmSS or seconds");
                sink.WriteU32(time);
                return;
            case RdataField.CoveredType:
                t = reader.Next("a record type");
                if (!RecordTypes.TryParse(t.Text, out var covered)) throw reader.Expected(t, "a record type");
                sink.WriteU16((ushort)covered);
                return;
            case RdataField.CertType:
                t = reader.Next("a certificate type");
                if (!Mnemonics.TryParseCertType(t.Text, out ushort certType)) throw reader.Expected(t, "a certificate type number or mnemonic");
                sink.WriteU16(certType);
                return;
            case RdataField.IPv4:
                t = reader.Next("an IPv4 address");
                WriteIPv4(reader, t, sink);
                return;
            case RdataField.IPv6:
                t = reader.Next("an IPv6 address");
                WriteIPv6(reader, t, sink);
                return;
            case RdataField.Name or RdataField.CompressibleName:
                t = reader.Next("a domain name");
                sink.Write(ParseName(reader, t, origin).Wire);
                return;
            case RdataField.CharString:
                t = reader.Next("a character-string");
                WriteCharacterString(reader, t, sink);
                return;
            case RdataField.CharStrings:
                t = reader.Next("a character-string");
                WriteCharacterString(reader, t, sink);
                while (!reader.AtEnd) WriteCharacterString(reader, reader.Next("a character-string"), sink);
                return;
            case RdataField.TextRest:
                t = reader.Next("a quoted string");
                if (!CharacterStrings.TryUnescape(t.Text, sink, out var textError)) throw reader.Error(t, textError!);
                return;
            case RdataField.Base64Rest:
                WriteJoined(reader, sink, "base64", BinaryText.TryDecodeBase64);
                return;
            case RdataField.HexRest:
                int digestStart = sink.Length;
                var digestToken = WriteJoined(reader, sink, "hex", BinaryText.TryDecodeHex);
                if (LengthProblem(type, field, sink.WrittenSpan[..digestStart], sink.Length - digestStart) is { } problem)
                    throw reader.Error(digestToken, problem);
                return;
            case RdataField.HexU8:
                t = reader.Next("hex or '-'");
                WriteLengthPrefixed(reader, t, sink, t.Text == "-" ? null : BinaryText.TryDecodeHex, "hex or '-'", allowEmpty: true);
                return;
            case RdataField.Base32U8:
                t = reader.Next("base32hex");
                int hashStart = sink.Length;
                WriteLengthPrefixed(reader, t, sink, BinaryText.TryDecodeBase32Hex, "base32hex", allowEmpty: false);
                if (LengthProblem(type, field, sink.WrittenSpan[..hashStart], sink.Length - hashStart - 1) is { } hashProblem)
                    throw reader.Error(t, hashProblem);
                return;
            case RdataField.Base64U16:
                WriteSizedBase64(reader, sink);
                return;
            case RdataField.TypeBitmap:
                WriteTypeBitmap(type, reader, sink);
                return;
            case RdataField.Eui48:
                t = reader.Next("an EUI-48 address");
                WriteEui(reader, t, sink, 6);
                return;
            case RdataField.Eui64:
                t = reader.Next("an EUI-64 address");
                WriteEui(reader, t, sink, 8);
                return;
            case RdataField.CaaTag:
                t = reader.Next("a CAA tag");
                if (t.Text.Length is 0 or > 255 || !t.Text.All(char.IsAsciiLetterOrDigit))
                    throw reader.Expected(t, "a CAA tag of 1 to 255 letters and digits");
                sink.WriteU8((byte)t.Text.Length);
                foreach (char c in t.Text) sink.WriteU8((byte)c);
                return;
            case RdataField.IpseckeyGateway:
                WriteGateway(reader, origin, sink);
                return;
            case RdataField.Loc:
                LocText.Parse(reader, sink);
                return;
            case RdataField.SvcParams:
                SvcParamText.Parse(reader, sink);
                return;
            default:
                throw new InvalidOperationException($"no presentation parser for field kind {field}");
        }
    }

    /// <summary>Fields that hold a DNSSEC algorithm number, where BIND also accepts the mnemonic.</summary>
    private static bool IsAlgorithmField(RecordType type, int index) => (type, index) switch
    {
        (RecordType.DS or RecordType.CDS or RecordType.TA or RecordType.DLV, 1) => true,
        (RecordType.RRSIG or RecordType.SIG, 1) => true,
        (RecordType.DNSKEY or RecordType.CDNSKEY or RecordType.KEY or RecordType.CERT, 2) => true,
        _ => false,
    };

    private static ulong ParseNumber(RdataTokenReader reader, ZoneToken t, ulong max)
    {
        if (!Numbers.TryParseUnsigned(t.Text, max, out ulong value))
            throw reader.Expected(t, $"a number from 0 to {max}");
        return value;
    }

    internal static void WriteIPv4(RdataTokenReader reader, ZoneToken t, ByteSink sink)
    {
        Span<byte> address = stackalloc byte[4];
        if (!IpAddressText.TryParseIPv4(t.Text, address)) throw reader.Expected(t, "an IPv4 address");
        sink.Write(address);
    }

    internal static void WriteIPv6(RdataTokenReader reader, ZoneToken t, ByteSink sink)
    {
        Span<byte> address = stackalloc byte[16];
        if (!IpAddressText.TryParseIPv6(t.Text, address)) throw reader.Expected(t, "an IPv6 address");
        sink.Write(address);
    }

    private static DnsName ParseName(RdataTokenReader reader, ZoneToken t, DnsName origin)
    {
        // "@" is the origin (RFC 1035 §5.1); a quoted "@" is just a label.
        if (!t.Quoted && t.Text == "@") return origin;
        if (!DnsName.TryParse(t.Text, origin, out var name, out var error))
            throw reader.Error(t, $"expected a domain name, found {RdataTokenReader.Show(t)}: {error}");
        return name!;
    }

    private static void WriteCharacterString(RdataTokenReader reader, ZoneToken t, ByteSink sink)
    {
        int lengthAt = sink.Length;
        sink.WriteU8(0);
        if (!CharacterStrings.TryUnescape(t.Text, sink, out var error)) throw reader.Error(t, $"bad character-string: {error}");
        int length = sink.Length - lengthAt - 1;
        if (length > 255) throw reader.Error(t, $"expected a character-string of at most 255 octets, found {length} octets");
        sink.PatchU8(lengthAt, (byte)length);
    }

    private delegate bool Decoder(ReadOnlySpan<char> text, ByteSink sink);

    /// <summary>Base64 or hex to the end of RDATA; it may be split into several tokens by spaces.</summary>
    private static ZoneToken WriteJoined(RdataTokenReader reader, ByteSink sink, string what, Decoder decode)
    {
        var first = reader.Next(what);
        var text = new StringBuilder(first.Text);
        while (!reader.AtEnd) text.Append(reader.Next(what).Text);
        if (!decode(text.ToString(), sink)) throw reader.Expected(first, what);
        return first;
    }

    /// <summary>
    /// Digests and hashes whose length their algorithm fixes, checked as BIND checks them: DS
    /// digests (RFC 4509, 5933, 6605 §4), SSHFP fingerprints (RFC 4255, 6594), ZONEMD digests
    /// (RFC 8976 §2.2.4: at least 12 octets), NSEC3 SHA-1 hashes (RFC 5155 §3.1.7). Null when the
    /// length is right or the algorithm is not one we know.
    /// </summary>
    private static string? LengthProblem(RecordType type, RdataField field, ReadOnlySpan<byte> before, int length)
    {
        int expected;
        string noun, what;
        switch (type)
        {
            case RecordType.DS or RecordType.CDS or RecordType.TA or RecordType.DLV when field == RdataField.HexRest:
                expected = before[3] switch { 1 => 20, 2 => 32, 3 => 32, 4 => 48, _ => -1 };
                (noun, what) = ("digest", $"digest type {before[3]}");
                break;
            case RecordType.SSHFP when field == RdataField.HexRest:
                expected = before[1] switch { 1 => 20, 2 => 32, _ => -1 };
                (noun, what) = ("fingerprint", $"fingerprint type {before[1]}");
                break;
            case RecordType.ZONEMD when field == RdataField.HexRest:
                if (length < 12) return $"expected a digest of at least 12 octets, found {length} octets";
                expected = before[5] switch { 1 => 48, 2 => 64, _ => -1 };
                (noun, what) = ("digest", $"hash algorithm {before[5]}");
                break;
            case RecordType.NSEC3 when field == RdataField.Base32U8:
                expected = before[0] == 1 ? 20 : -1;
                (noun, what) = ("hash", "hash algorithm 1");
                break;
            default:
                return null;
        }
        return expected < 0 || expected == length ? null : $"expected a {expected}-octet {noun} for {what}, found {length} octets";
    }

    private static void WriteLengthPrefixed(RdataTokenReader reader, ZoneToken t, ByteSink sink, Decoder? decode, string what, bool allowEmpty)
    {
        int lengthAt = sink.Length;
        sink.WriteU8(0);
        if (decode is not null && !decode(t.Text, sink)) throw reader.Expected(t, what);
        int length = sink.Length - lengthAt - 1;
        if (length > 255) throw reader.Error(t, $"expected at most 255 octets of {what}, found {length}");
        if (length == 0 && !allowEmpty) throw reader.Expected(t, what);
        sink.PatchU8(lengthAt, (byte)length);
    }

    /// <summary>TSIG MAC and other data (RFC 8945 §4.2): a size, then that many octets in base64 when the size is not 0.</summary>
    private static void WriteSizedBase64(RdataTokenReader reader, ByteSink sink)
    {
        var sizeToken = reader.Next("a size from 0 to 65535");
        int size = (int)ParseNumber(reader, sizeToken, ushort.MaxValue);
        sink.WriteU16((ushort)size);
        if (size == 0) return;
        // One token: the fields after it are numbers, which are base64 too, so joining is ambiguous.
        var first = reader.Next("base64");
        int start = sink.Length;
        if (!BinaryText.TryDecodeBase64(first.Text, sink)) throw reader.Expected(first, "base64");
        if (sink.Length - start != size)
            throw reader.Error(first, $"expected {size} octets of base64, found {sink.Length - start}");
    }

    private static void WriteTypeBitmap(RecordType type, RdataTokenReader reader, ByteSink sink)
    {
        var types = new List<ushort>();
        while (!reader.AtEnd)
        {
            var t = reader.Next("a record type");
            if (!RecordTypes.TryParse(t.Text, out var rt)) throw reader.Expected(t, "a record type");
            types.Add((ushort)rt);
        }
        if (types.Count == 0 && type == RecordType.NSEC) throw reader.Missing("a record type");
        TypeBitmapText.Write(sink, types);
    }

    /// <summary>RFC 7043 §§3.2, 4.2: hex pairs joined by hyphens.</summary>
    private static void WriteEui(RdataTokenReader reader, ZoneToken t, ByteSink sink, int octets)
    {
        string text = t.Text;
        string expected = octets == 6 ? "an EUI-48 address (xx-xx-xx-xx-xx-xx)" : "an EUI-64 address (xx-xx-xx-xx-xx-xx-xx-xx)";
        if (text.Length != octets * 3 - 1) throw reader.Expected(t, expected);
        for (int i = 0; i < octets; i++)
        {
            if (i > 0 && text[i * 3 - 1] != '-') throw reader.Expected(t, expected);
            if (!BinaryText.TryDecodeHex(text.AsSpan(i * 3, 2), sink)) throw reader.Expected(t, expected);
        }
    }

    /// <summary>RFC 4025 §3.3: the gateway's form follows the gateway type parsed just before.</summary>
    private static void WriteGateway(RdataTokenReader reader, DnsName origin, ByteSink sink)
    {
        byte gatewayType = sink.WrittenSpan[1];
        switch (gatewayType)
        {
            case 0:
                var none = reader.Next("'.' for no gateway");
                if (none.Text != ".") throw reader.Expected(none, "'.' for gateway type 0");
                return;
            case 1:
                WriteIPv4(reader, reader.Next("an IPv4 gateway"), sink);
                return;
            case 2:
                WriteIPv6(reader, reader.Next("an IPv6 gateway"), sink);
                return;
            case 3:
                var t = reader.Next("a gateway domain name");
                sink.Write(ParseName(reader, t, origin).Wire);
                return;
            default:
                throw new InvalidOperationException("gateway type checked when parsed");
        }
    }
}
