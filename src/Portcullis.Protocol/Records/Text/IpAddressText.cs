using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace Portcullis.Protocol.Records.Text;

/// <summary>
/// IPv4 dotted quads and IPv6 text (RFC 4291 §2.2) parsed strictly, as inet_pton does, and IPv6
/// printed as inet_ntop does (RFC 5952: lowercase, longest zero run as "::", IPv4 tail for
/// IPv4-compatible and IPv4-mapped addresses), so output matches BIND's.
/// </summary>
internal static class IpAddressText
{
    /// <summary>Exactly four decimal parts 0..255, no leading zeros.</summary>
    public static bool TryParseIPv4(ReadOnlySpan<char> text, Span<byte> destination)
    {
        int part = 0, value = 0, digits = 0;
        foreach (char c in text)
        {
            if (c == '.')
            {
                if (digits == 0 || part == 3) return false;
                destination[part++] = (byte)value;
                value = 0;
                digits = 0;
                continue;
            }
            if (!char.IsAsciiDigit(c)) return false;
            if (digits > 0 && value == 0) return false;   // leading zero: inet_pton refuses it
            value = value * 10 + (c - '0');
            if (value > 255) return false;
            digits++;
        }
        if (digits == 0 || part != 3) return false;
        destination[3] = (byte)value;
        return true;
    }

    public static void AppendIPv4(StringBuilder sb, ReadOnlySpan<byte> address) =>
        sb.Append(address[0]).Append('.').Append(address[1]).Append('.').Append(address[2]).Append('.').Append(address[3]);

    public static bool TryParseIPv6(ReadOnlySpan<char> text, Span<byte> destination)
    {
        Span<ushort> words = stackalloc ushort[8];
        Span<byte> v4 = stackalloc byte[4];
        int count = 0;
        int gap = -1;
        int i = 0;
        if (text.Length >= 2 && text[0] == ':' && text[1] == ':')
        {
            gap = 0;
            i = 2;
        }
        else if (text.Length > 0 && text[0] == ':') return false;

        while (i < text.Length)
        {
            int j = i;
            int value = 0;
            while (j < text.Length && j - i < 5 && char.IsAsciiHexDigit(text[j]))
            {
                value = value * 16 + HexValue(text[j]);
                j++;
            }
            if (j < text.Length && text[j] == '.')
            {
                // An IPv4 tail fills the last two words.
                if (count > 6) return false;
                if (!TryParseIPv4(text[i..], v4)) return false;
                words[count++] = (ushort)(v4[0] << 8 | v4[1]);
                words[count++] = (ushort)(v4[2] << 8 | v4[3]);
                i = text.Length;
                break;
            }
            if (j == i || j - i > 4 || count == 8) return false;
            words[count++] = (ushort)value;
            if (j == text.Length) { i = j; break; }
            if (text[j] != ':') return false;
            j++;
            if (j < text.Length && text[j] == ':')
            {
                if (gap >= 0) return false;               // "::" may appear once
                gap = count;
                j++;
            }
            else if (j == text.Length) return false;     // a single trailing colon
            i = j;
        }
        if (gap < 0 ? count != 8 : count > 7) return false;
        destination[..16].Clear();
        int tail = gap < 0 ? 0 : count - gap;
        for (int w = 0; w < count; w++)
        {
            int slot = gap >= 0 && w >= gap ? 8 - tail + (w - gap) : w;
            BinaryPrimitives.WriteUInt16BigEndian(destination[(slot * 2)..], words[w]);
        }
        return true;
    }

    private static int HexValue(char c) => c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;

    public static void AppendIPv6(StringBuilder sb, ReadOnlySpan<byte> address)
    {
        Span<ushort> words = stackalloc ushort[8];
        for (int w = 0; w < 8; w++) words[w] = BinaryPrimitives.ReadUInt16BigEndian(address[(w * 2)..]);
        // The longest run of two or more zero words becomes "::"; the first one wins a tie.
        int bestStart = -1, bestLength = 0;
        for (int w = 0; w < 8;)
        {
            if (words[w] != 0) { w++; continue; }
            int start = w;
            while (w < 8 && words[w] == 0) w++;
            if (w - start > bestLength) { bestStart = start; bestLength = w - start; }
        }
        if (bestLength < 2) bestStart = -1;
        for (int w = 0; w < 8; w++)
        {
            if (w == bestStart)
            {
                sb.Append(':');
                w += bestLength - 1;
                if (w == 7) sb.Append(':');
                continue;
            }
            if (w > 0) sb.Append(':');
            // IPv4-compatible (::a.b.c.d) and IPv4-mapped (::ffff:a.b.c.d) addresses end in a dotted quad.
            if (w == 6 && bestStart == 0 && (bestLength == 6 || (bestLength == 5 && words[5] == 0xFFFF)))
            {
                AppendIPv4(sb, address[12..]);
                return;
            }
            sb.Append(words[w].ToString("x", CultureInfo.InvariantCulture));
        }
    }
}
