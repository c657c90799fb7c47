using System.Text;

namespace Portcullis.Protocol.Records.Text;

/// <summary>
/// &lt;character-string&gt; presentation (RFC 1035 §5.1): <c>\X</c> stands for X and <c>\DDD</c>
/// for the octet DDD; text beyond ASCII is taken as UTF-8, as BIND does.
/// </summary>
internal static class CharacterStrings
{
    /// <summary>Decodes escapes in <paramref name="text"/> into <paramref name="sink"/>.</summary>
    public static bool TryUnescape(ReadOnlySpan<char> text, ByteSink sink, out string? error)
    {
        error = null;
        Span<byte> utf8 = stackalloc byte[4];
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (c == '\\')
            {
                if (i + 1 >= text.Length) { error = "a backslash at the end of the text"; return false; }
                char n = text[i + 1];
                if (char.IsAsciiDigit(n))
                {
                    if (i + 3 >= text.Length || !char.IsAsciiDigit(text[i + 2]) || !char.IsAsciiDigit(text[i + 3]))
                    {
                        error = "a \\DDD escape needs three digits"; return false;
                    }
                    int b = (n - '0') * 100 + (text[i + 2] - '0') * 10 + (text[i + 3] - '0');
                    if (b > 255) { error = $"\\{b} is above 255"; return false; }
                    sink.WriteU8((byte)b);
                    i += 3;
                    continue;
                }
                i++;
                c = text[i];
            }
            if (c < 0x80) { sink.WriteU8((byte)c); continue; }
            // Non-ASCII text goes in as UTF-8; a surrogate pair is one code point.
            int count;
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                count = new Rune(c, text[i + 1]).EncodeToUtf8(utf8);
                i++;
            }
            else if (Rune.TryCreate(c, out var rune)) count = rune.EncodeToUtf8(utf8);
            else { error = "a lone surrogate character"; return false; }
            sink.Write(utf8[..count]);
        }
        return true;
    }

    /// <summary>Appends octets as a quoted string, escaping '"', '\' and octets outside printable ASCII.</summary>
    public static void AppendQuoted(StringBuilder sb, ReadOnlySpan<byte> octets)
    {
        sb.Append('"');
        AppendEscaped(sb, octets);
        sb.Append('"');
    }

    /// <summary>The inside of a quoted string.</summary>
    public static void AppendEscaped(StringBuilder sb, ReadOnlySpan<byte> octets)
    {
        foreach (byte b in octets)
        {
            if (b == '"' || b == '\\') sb.Append('\\').Append((char)b);
            else if (b < 0x20 || b >= 0x7F) AppendDecimalEscape(sb, b);
            else sb.Append((char)b);
        }
    }

    public static void AppendDecimalEscape(StringBuilder sb, byte b) =>
        sb.Append('\\').Append((char)('0' + b / 100)).Append((char)('0' + b / 10 % 10)).Append((char)('0' + b % 10));
}
