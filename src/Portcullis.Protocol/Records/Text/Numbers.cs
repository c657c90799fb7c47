using System.Globalization;

namespace Portcullis.Protocol.Records.Text;

/// <summary>Unsigned decimal numbers and time intervals as zone files write them.</summary>
internal static class Numbers
{
    /// <summary>Plain decimal digits only (no sign, no spaces), at most <paramref name="max"/>.</summary>
    public static bool TryParseUnsigned(ReadOnlySpan<char> text, ulong max, out ulong value)
    {
        value = 0;
        if (text.Length == 0) return false;
        foreach (char c in text)
        {
            if (!char.IsAsciiDigit(c)) return false;
            ulong next = value * 10 + (ulong)(c - '0');
            // Overflow cannot pass unnoticed: max is at most 2^48, so value*10 stays far below 2^64.
            if (next > max) return false;
            value = next;
        }
        return true;
    }

    /// <summary>
    /// A time interval in seconds: plain digits, or numbers with units w, d, h, m, s in any case
    /// ("1h30m", "1w2d"), as BIND and NSD accept for TTLs and SOA timers (RFC 2308 §4 style).
    /// </summary>
    public static bool TryParseInterval(ReadOnlySpan<char> text, out uint seconds)
    {
        seconds = 0;
        if (text.Length == 0) return false;
        if (TryParseUnsigned(text, uint.MaxValue, out ulong plain)) { seconds = (uint)plain; return true; }
        ulong total = 0;
        int i = 0;
        while (i < text.Length)
        {
            int start = i;
            ulong n = 0;
            while (i < text.Length && char.IsAsciiDigit(text[i]))
            {
                n = n * 10 + (ulong)(text[i] - '0');
                if (n > uint.MaxValue) return false;
                i++;
            }
            if (i == start || i == text.Length) return false;   // a unit needs a number before it, and every number a unit
            ulong unit = char.ToLowerInvariant(text[i]) switch
            {
                'w' => 604800,
                'd' => 86400,
                'h' => 3600,
                'm' => 60,
                's' => 1,
                _ => 0,
            };
            if (unit == 0) return false;
            i++;
            total += n * unit;
            if (total > uint.MaxValue) return false;
        }
        seconds = (uint)total;
        return true;
    }

    public static string ToText(ulong value) => value.ToString(CultureInfo.InvariantCulture);
}
