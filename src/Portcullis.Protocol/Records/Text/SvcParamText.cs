using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using Portcullis.Protocol.ZoneText;

namespace Portcullis.Protocol.Records.Text;

/// <summary>
/// SVCB/HTTPS SvcParams in presentation form (RFC 9460 §2.1 and Appendix A): <c>key=value</c> or a
/// bare <c>key</c>, keys by name (mandatory, alpn, no-default-alpn, port, ipv4hint, ech, ipv6hint,
/// dohpath of RFC 9461, ohttp of RFC 9540) or as keyNNNNN.
/// </summary>
internal static class SvcParamText
{
    private const ushort Mandatory = 0, Alpn = 1, NoDefaultAlpn = 2, Port = 3, Ipv4Hint = 4, Ech = 5, Ipv6Hint = 6, DohPath = 7, Ohttp = 8;
    private const ushort ReservedKey = 65535;   // RFC 9460 §14.3.2: "Invalid key"

    private static readonly string[] KeyNames = ["mandatory", "alpn", "no-default-alpn", "port", "ipv4hint", "ech", "ipv6hint", "dohpath", "ohttp"];

    public static string KeyToText(ushort key) =>
        key < KeyNames.Length ? KeyNames[key] : "key" + key.ToString(CultureInfo.InvariantCulture);

    public static bool TryParseKey(ReadOnlySpan<char> text, out ushort key)
    {
        for (int i = 0; i < KeyNames.Length; i++)
        {
            if (text.Equals(KeyNames[i], StringComparison.Ordinal)) { key = (ushort)i; return true; }
        }
        key = 0;
        // keyNNNNN: decimal without leading zeros (RFC 9460 §2.1), and never the reserved 65535.
        if (text.Length < 4 || !text.StartsWith("key", StringComparison.Ordinal)) return false;
        var digits = text[3..];
        if (digits.Length > 1 && digits[0] == '0') return false;
        if (!Numbers.TryParseUnsigned(digits, ReservedKey - 1, out ulong n)) return false;
        key = (ushort)n;
        return true;
    }

    /// <summary>
    /// Appends the params in wire (ascending key) order. False when a value breaks its key's rules
    /// (RFC 9460 §7, §8), so the record is shown in the RFC 3597 form instead.
    /// </summary>
    public static bool TryAppend(StringBuilder sb, ReadOnlySpan<byte> data)
    {
        if (!IsSelfConsistent(data)) return false;
        int pos = 0;
        while (pos < data.Length)
        {
            ushort key = BinaryPrimitives.ReadUInt16BigEndian(data[pos..]);
            int length = BinaryPrimitives.ReadUInt16BigEndian(data[(pos + 2)..]);
            var value = data.Slice(pos + 4, length);
            if (pos > 0) sb.Append(' ');
            if (!TryAppendParam(sb, key, value)) return false;
            pos += 4 + length;
        }
        return true;
    }

    /// <summary>
    /// Every key named in "mandatory" must be present (RFC 9460 §8), and no-default-alpn needs alpn
    /// (§7.1.1), as BIND also insists.
    /// </summary>
    private static bool IsSelfConsistent(ReadOnlySpan<byte> data)
    {
        var present = new HashSet<ushort>();
        for (int pos = 0; pos < data.Length; pos += 4 + BinaryPrimitives.ReadUInt16BigEndian(data[(pos + 2)..]))
            present.Add(BinaryPrimitives.ReadUInt16BigEndian(data[pos..]));
        if (present.Contains(NoDefaultAlpn) && !present.Contains(Alpn)) return false;
        if (!present.Contains(Mandatory)) return true;
        var list = data.Slice(4, BinaryPrimitives.ReadUInt16BigEndian(data[2..]));
        for (int i = 0; i + 1 < list.Length; i += 2)
            if (!present.Contains(BinaryPrimitives.ReadUInt16BigEndian(list[i..]))) return false;
        return true;
    }

    /// <summary>
    /// What is wrong with a value under its key's rules (RFC 9460 §7, §8; RFC 9540 §4), or null.
    /// Values in the generic keyNNNNN form are held to the same rules.
    /// </summary>
    public static string? CheckValue(ushort key, ReadOnlySpan<byte> value)
    {
        switch (key)
        {
            case Mandatory:
                if (value.Length == 0 || value.Length % 2 != 0) return "mandatory needs a non-empty list of 2-octet keys";
                int last = -1;
                for (int i = 0; i < value.Length; i += 2)
                {
                    ushort k = BinaryPrimitives.ReadUInt16BigEndian(value[i..]);
                    if (k <= last) return "mandatory keys must be in strictly increasing order";
                    if (k == Mandatory) return "mandatory must not list itself";
                    if (k == ReservedKey) return "mandatory lists the reserved key65535";
                    last = k;
                }
                return null;
            case Alpn:
                if (value.Length == 0) return "alpn needs at least one protocol ID";
                for (int pos = 0; pos < value.Length; pos += 1 + value[pos])
                {
                    if (value[pos] == 0) return "empty protocol ID in alpn";
                    if (pos + 1 + value[pos] > value.Length) return "protocol ID in alpn runs past the end";
                }
                return null;
            case NoDefaultAlpn or Ohttp:
                return value.Length == 0 ? null : $"{KeyToText(key)} takes no value";
            case Port:
                return value.Length == 2 ? null : "port needs 2 octets";
            case Ipv4Hint:
                return value.Length > 0 && value.Length % 4 == 0 ? null : "ipv4hint needs one or more 4-octet addresses";
            case Ipv6Hint:
                return value.Length > 0 && value.Length % 16 == 0 ? null : "ipv6hint needs one or more 16-octet addresses";
            case ReservedKey:
                return "key65535 is reserved";
            default:
                return null;
        }
    }

    private static bool TryAppendParam(StringBuilder sb, ushort key, ReadOnlySpan<byte> value)
    {
        if (CheckValue(key, value) is not null) return false;
        switch (key)
        {
            case Mandatory:
                sb.Append("mandatory=");
                for (int i = 0; i < value.Length; i += 2)
                {
                    if (i > 0) sb.Append(',');
                    sb.Append(KeyToText(BinaryPrimitives.ReadUInt16BigEndian(value[i..])));
                }
                return true;
            case Alpn:
                // Each protocol ID with list-level escapes for ',' and '' (RFC 9460 Appendix A.1),
                // then the whole as one quoted character-string.
                var listed = new List<byte>(value.Length + 8);
                for (int pos = 0; pos < value.Length; pos += 1 + value[pos])
                {
                    if (pos > 0) listed.Add((byte)',');
                    foreach (byte b in value.Slice(pos + 1, value[pos]))
                    {
                        if (b is (byte)',' or (byte)'\\') listed.Add((byte)'\\');
                        listed.Add(b);
                    }
                }
                sb.Append("alpn=\"");
                CharacterStrings.AppendEscaped(sb, listed.ToArray());
                sb.Append('"');
                return true;
            case NoDefaultAlpn or Ohttp:
                sb.Append(KeyToText(key));
                return true;
            case Port:
                sb.Append("port=").Append(BinaryPrimitives.ReadUInt16BigEndian(value));
                return true;
            case Ipv4Hint:
                sb.Append("ipv4hint=");
                for (int i = 0; i < value.Length; i += 4)
                {
                    if (i > 0) sb.Append(',');
                    IpAddressText.AppendIPv4(sb, value.Slice(i, 4));
                }
                return true;
            case Ipv6Hint:
                sb.Append("ipv6hint=");
                for (int i = 0; i < value.Length; i += 16)
                {
                    if (i > 0) sb.Append(',');
                    IpAddressText.AppendIPv6(sb, value.Slice(i, 16));
                }
                return true;
            case Ech:
                sb.Append("ech=");
                if (value.IsEmpty) sb.Append("\"\"");
                else BinaryText.AppendBase64(sb, value);
                return true;
            default:
                // dohpath and unknown keys: the octets as a quoted string, BIND's bare "key9" when empty.
                sb.Append(KeyToText(key));
                if (value.IsEmpty && key != DohPath) return true;
                sb.Append('=');
                CharacterStrings.AppendQuoted(sb, value);
                return true;
        }
    }

    private readonly record struct Param(ushort Key, byte[] Value, ZoneToken Token);

    /// <summary>Parses the remaining tokens as SvcParams, writing them sorted by key.</summary>
    public static void Parse(RdataTokenReader reader, ByteSink sink)
    {
        var parameters = new List<Param>();
        ZoneToken? mandatoryToken = null;
        ushort[] mandatory = [];
        while (!reader.AtEnd)
        {
            var t = reader.Next("a SvcParam");
            if (t.Quoted) throw reader.Expected(t, "a SvcParam key");
            string text = t.Text;
            int eq = text.IndexOf('=');
            string keyText = eq < 0 ? text : text[..eq];
            if (!TryParseKey(keyText, out ushort key))
                throw reader.Error(t, $"expected a SvcParam key (mandatory, alpn, no-default-alpn, port, ipv4hint, ech, ipv6hint, dohpath, ohttp or key0 to key65534), found '{keyText}'");

            string? raw = null;
            if (eq >= 0)
            {
                raw = text[(eq + 1)..];
                // The lexer may hand a quoted value over as its own token ("alpn=" then "h2,h3"),
                // or leave the quotes inside this one (alpn="h2,h3").
                if (raw.Length == 0 && !reader.AtEnd && reader.Peek().Quoted) raw = reader.Next("a value").Text;
                else if (raw.Length >= 2 && raw[0] == '"' && raw[^1] == '"' && !EndsInEscape(raw.AsSpan(0, raw.Length - 1))) raw = raw[1..^1];
                else if (raw.Contains('"')) throw reader.Error(t, $"unbalanced quotes in the value of {keyText}");
            }

            var valueSink = new ByteSink();
            if (raw is not null && !CharacterStrings.TryUnescape(raw, valueSink, out var escapeError))
                throw reader.Error(t, $"bad value for {keyText}: {escapeError}");
            byte[] value;
            if (keyText.StartsWith("key", StringComparison.Ordinal))
            {
                // RFC 9460 §2.1: in the keyNNNNN form the decoded value is the wire value itself.
                value = valueSink.ToArray();
                if (CheckValue(key, value) is { } problem) throw reader.Error(t, $"bad value for {keyText}: {problem}");
            }
            else value = ParseValue(reader, t, key, raw is null ? null : valueSink.ToArray());
            if (value.Length > 65535) throw reader.Error(t, $"the value of {keyText} is longer than 65535 octets");
            if (key == Mandatory)
            {
                mandatoryToken = t;
                mandatory = new ushort[value.Length / 2];
                for (int i = 0; i < mandatory.Length; i++) mandatory[i] = BinaryPrimitives.ReadUInt16BigEndian(value.AsSpan(i * 2));
            }
            parameters.Add(new Param(key, value, t));
        }

        parameters.Sort((a, b) => a.Key.CompareTo(b.Key));
        for (int i = 1; i < parameters.Count; i++)
        {
            if (parameters[i].Key == parameters[i - 1].Key)
            {
                var later = parameters[i].Token.Line > parameters[i - 1].Token.Line
                    || (parameters[i].Token.Line == parameters[i - 1].Token.Line && parameters[i].Token.Column > parameters[i - 1].Token.Column)
                    ? parameters[i] : parameters[i - 1];
                throw reader.Error(later.Token, $"SvcParam key {KeyToText(later.Key)} appears more than once (RFC 9460 §2.2)");
            }
        }
        var present = new HashSet<ushort>(parameters.Select(p => p.Key));
        if (present.Contains(NoDefaultAlpn) && !present.Contains(Alpn))
            throw reader.Error(parameters.First(p => p.Key == NoDefaultAlpn).Token, "no-default-alpn needs alpn as well (RFC 9460 §7.1.1)");
        foreach (ushort k in mandatory)
        {
            if (!present.Contains(k))
                throw reader.Error(mandatoryToken!.Value, $"mandatory lists {KeyToText(k)}, which is not among the SvcParams (RFC 9460 §8)");
        }
        foreach (var p in parameters)
        {
            sink.WriteU16(p.Key);
            sink.WriteU16((ushort)p.Value.Length);
            sink.Write(p.Value);
        }
    }

    private static bool EndsInEscape(ReadOnlySpan<char> text)
    {
        int backslashes = 0;
        for (int i = text.Length - 1; i >= 0 && text[i] == '\\'; i--) backslashes++;
        return backslashes % 2 == 1;
    }

    /// <summary>The wire value of one param from its unescaped presentation value (null when there was no "=").</summary>
    private static byte[] ParseValue(RdataTokenReader reader, ZoneToken t, ushort key, byte[]? value)
    {
        string name = KeyToText(key);
        switch (key)
        {
            case Mandatory:
            {
                var keys = new SortedSet<ushort>();
                foreach (var item in SplitSimple(reader, t, name, value))
                {
                    if (!TryParseKey(item, out ushort k)) throw reader.Error(t, $"expected a SvcParam key in mandatory, found '{item}'");
                    if (k == Mandatory) throw reader.Error(t, "mandatory must not list itself (RFC 9460 §8)");
                    if (!keys.Add(k)) throw reader.Error(t, $"mandatory lists {item} more than once (RFC 9460 §8)");
                }
                var result = new byte[keys.Count * 2];
                int i = 0;
                foreach (ushort k in keys) { BinaryPrimitives.WriteUInt16BigEndian(result.AsSpan(i), k); i += 2; }
                return result;
            }
            case Alpn:
            {
                if (value is null || value.Length == 0) throw reader.Error(t, "expected alpn=ID[,ID...], found no value");
                var sink = new ByteSink();
                var item = new List<byte>();
                // RFC 9460 Appendix A.1: a value-list, where "\," and "\\" stand for ',' and '\' inside an item.
                for (int i = 0; i <= value.Length; i++)
                {
                    if (i == value.Length || value[i] == ',')
                    {
                        if (item.Count == 0) throw reader.Error(t, "empty protocol ID in alpn");
                        if (item.Count > 255) throw reader.Error(t, "protocol ID in alpn longer than 255 octets");
                        sink.WriteU8((byte)item.Count);
                        sink.Write(item.ToArray());
                        item.Clear();
                        continue;
                    }
                    if (value[i] == '\\')
                    {
                        if (++i == value.Length) throw reader.Error(t, "a backslash at the end of alpn");
                    }
                    item.Add(value[i]);
                }
                return sink.ToArray();
            }
            case NoDefaultAlpn or Ohttp:
                if (value is { Length: > 0 }) throw reader.Error(t, $"{name} takes no value");
                return [];
            case Port:
            {
                if (value is null || !Numbers.TryParseUnsigned(Encoding.ASCII.GetString(value), ushort.MaxValue, out ulong port) || !IsAscii(value))
                    throw reader.Error(t, $"expected port=NUMBER from 0 to 65535, found {RdataTokenReader.Show(t)}");
                var result = new byte[2];
                BinaryPrimitives.WriteUInt16BigEndian(result, (ushort)port);
                return result;
            }
            case Ipv4Hint or Ipv6Hint:
            {
                var sink = new ByteSink();
                Span<byte> address = stackalloc byte[16];
                foreach (var item in SplitSimple(reader, t, name, value))
                {
                    bool ok = key == Ipv4Hint ? IpAddressText.TryParseIPv4(item, address) : IpAddressText.TryParseIPv6(item, address);
                    if (!ok) throw reader.Error(t, $"expected an {(key == Ipv4Hint ? "IPv4" : "IPv6")} address in {name}, found '{item}'");
                    sink.Write(address[..(key == Ipv4Hint ? 4 : 16)]);
                }
                return sink.ToArray();
            }
            case Ech:
            {
                if (value is null) throw reader.Error(t, "expected ech=BASE64, found no value");
                var sink = new ByteSink();
                if (!IsAscii(value) || !BinaryText.TryDecodeBase64(Encoding.ASCII.GetString(value), sink))
                    throw reader.Error(t, $"expected ech=BASE64, found {RdataTokenReader.Show(t)}");
                return sink.ToArray();
            }
            default:
                // dohpath (RFC 9461 §5: a URI template as UTF-8) and unknown keys: the octets as given.
                return value ?? [];
        }
    }

    private static bool IsAscii(byte[] value)
    {
        foreach (byte b in value) if (b >= 0x80) return false;
        return true;
    }

    /// <summary>A comma-separated list of plain items (keys or addresses), at least one.</summary>
    private static string[] SplitSimple(RdataTokenReader reader, ZoneToken t, string name, byte[]? value)
    {
        if (value is null || value.Length == 0) throw reader.Error(t, $"expected {name}=VALUE[,VALUE...], found no value");
        if (!IsAscii(value)) throw reader.Error(t, $"non-ASCII text in {name}");
        var items = Encoding.ASCII.GetString(value).Split(',');
        foreach (var item in items) if (item.Length == 0) throw reader.Error(t, $"empty item in {name}");
        return items;
    }
}
