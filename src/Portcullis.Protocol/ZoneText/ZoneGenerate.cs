using System.Globalization;
using System.Text;

namespace Portcullis.Protocol.ZoneText;

/// <summary>
/// BIND's <c>$GENERATE start-stop[/step] lhs [ttl] [class] type rhs</c> templates: <c>$</c> is the
/// iterator, <c>${offset[,width[,base]]}</c> adds an offset and pads to a width in base d, o, x, X or
/// n/N (reversed nibbles, as in ip6.arpa labels), <c>$$</c> and <c>\$</c> are a literal dollar.
/// Other escapes are left in place for the name and RDATA parsers.
/// </summary>
public static class ZoneGenerate
{
    private const int MaxWidth = 255;
    private const int MaxExpandedLength = ZoneTokenizer.MaxTokenLength;

    /// <summary>Parses "start-stop" or "start-stop/step" (each 0 to 2^31 - 1, start not above stop, step at least 1).</summary>
    public static bool TryParseRange(string text, out int start, out int stop, out int step, out string? error)
    {
        start = stop = 0;
        step = 1;
        error = null;
        var span = text.AsSpan();
        int slash = span.IndexOf('/');
        if (slash >= 0)
        {
            if (!int.TryParse(span[(slash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out step) || step < 1)
            {
                error = $"bad $GENERATE step in '{text}': expected a number from 1 to 2147483647";
                return false;
            }
            span = span[..slash];
        }
        int dash = span.IndexOf('-');
        if (dash < 0
            || !int.TryParse(span[..dash], NumberStyles.None, CultureInfo.InvariantCulture, out start)
            || !int.TryParse(span[(dash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out stop))
        {
            error = $"bad $GENERATE range '{text}': expected start-stop or start-stop/step";
            return false;
        }
        if (start > stop)
        {
            error = $"bad $GENERATE range '{text}': start is above stop";
            return false;
        }
        return true;
    }

    /// <summary>Substitutes <paramref name="value"/> into <paramref name="template"/>.</summary>
    public static bool TryExpand(string template, long value, out string result, out string? error)
    {
        var sb = new StringBuilder(template.Length + 16);
        error = null;
        result = "";
        for (int i = 0; i < template.Length; i++)
        {
            char c = template[i];
            if (c == '\\' && i + 1 < template.Length)
            {
                // "\$" is a literal dollar; keep other escapes intact for the next parser.
                if (template[i + 1] == '$') sb.Append('$');
                else sb.Append(c).Append(template[i + 1]);
                i++;
            }
            else if (c != '$')
            {
                sb.Append(c);
            }
            else if (i + 1 < template.Length && template[i + 1] == '$')
            {
                sb.Append('$');
                i++;
            }
            else if (i + 1 < template.Length && template[i + 1] == '{')
            {
                int close = template.IndexOf('}', i + 2);
                if (close < 0) { error = $"unclosed '${{' in $GENERATE template '{template}'"; return false; }
                if (!TryAppendModified(sb, template.AsSpan(i + 2, close - i - 2), value, out error)) return false;
                i = close;
            }
            else
            {
                sb.Append(value.ToString(CultureInfo.InvariantCulture));
            }
            if (sb.Length > MaxExpandedLength) { error = "$GENERATE template expands to too long a text"; return false; }
        }
        result = sb.ToString();
        return true;
    }

    private static bool TryAppendModified(StringBuilder sb, ReadOnlySpan<char> modifier, long value, out string? error)
    {
        error = null;
        Span<Range> parts = stackalloc Range[4];
        int n = modifier.Split(parts, ',');
        if (n < 1 || n > 3)
        {
            error = $"bad $GENERATE modifier '${{{modifier}}}': expected ${{offset[,width[,base]]}}";
            return false;
        }
        if (!int.TryParse(modifier[parts[0]], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int offset))
        {
            error = $"bad $GENERATE offset in '${{{modifier}}}': expected a number";
            return false;
        }
        int width = 0;
        if (n >= 2 && (!int.TryParse(modifier[parts[1]], NumberStyles.None, CultureInfo.InvariantCulture, out width) || width > MaxWidth))
        {
            error = $"bad $GENERATE width in '${{{modifier}}}': expected a number from 0 to {MaxWidth}";
            return false;
        }
        char radix = 'd';
        if (n == 3)
        {
            var b = modifier[parts[2]];
            if (b.Length != 1 || "doxXnN".IndexOf(b[0]) < 0)
            {
                error = $"bad $GENERATE base in '${{{modifier}}}': expected d, o, x, X, n or N";
                return false;
            }
            radix = b[0];
        }
        long v = value + offset;
        if (v < 0)
        {
            error = $"$GENERATE modifier '${{{modifier}}}' makes a negative value";
            return false;
        }
        switch (radix)
        {
            case 'd': sb.Append(v.ToString(CultureInfo.InvariantCulture).PadLeft(width, '0')); break;
            case 'o': sb.Append(Convert.ToString(v, 8).PadLeft(width, '0')); break;
            case 'x': sb.Append(v.ToString("x", CultureInfo.InvariantCulture).PadLeft(width, '0')); break;
            case 'X': sb.Append(v.ToString("X", CultureInfo.InvariantCulture).PadLeft(width, '0')); break;
            default: AppendNibbles(sb, v, width, radix == 'N'); break;
        }
        return true;
    }

    /// <summary>
    /// Nibbles from the least significant, each followed by a dot ("a.f" for 0xfa); the width counts
    /// characters, dots included, and is filled with further zero nibbles ("a.f.0." for width 6).
    /// </summary>
    private static void AppendNibbles(StringBuilder sb, long v, int width, bool upper)
    {
        string digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
        int written = 0;
        do
        {
            if (written > 0) { sb.Append('.'); written++; }
            sb.Append(digits[(int)(v & 0xF)]);
            written++;
            v >>= 4;
        } while (v != 0);
        while (written < width)
        {
            // Alternate dot and zero nibble, stopping exactly at the width.
            sb.Append('.');
            if (++written == width) break;
            sb.Append('0');
            written++;
        }
    }
}
