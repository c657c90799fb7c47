namespace Portcullis.Protocol.ZoneText;

/// <summary>
/// TTLs as operators write them: seconds ("3600") or BIND's units ("1h30m", "1W", "2d"), letters in
/// any case, every number followed by its unit once units are used (BIND rejects "1h30" too).
/// </summary>
public static class ZoneTtl
{
    /// <summary>RFC 2181 §8: TTLs are at most 2^31 - 1; larger values are treated as zero.</summary>
    public const uint MaxTtl = int.MaxValue;

    /// <summary>Parses a TTL; false (with the reason) when the text is not one or exceeds 32 bits.</summary>
    public static bool TryParse(ReadOnlySpan<char> text, out uint ttl, out string? error)
    {
        ttl = 0;
        error = null;
        if (text.IsEmpty || !char.IsAsciiDigit(text[0]))
        {
            error = "expected a number of seconds or a number with a unit (s, m, h, d, w)";
            return false;
        }
        ulong total = 0;
        int i = 0;
        bool units = false;
        while (i < text.Length)
        {
            ulong value = 0;
            int start = i;
            while (i < text.Length && char.IsAsciiDigit(text[i]))
            {
                value = value * 10 + (uint)(text[i] - '0');
                if (value > uint.MaxValue) { error = "TTL does not fit in 32 bits"; return false; }
                i++;
            }
            if (i == start) { error = "expected a number before each unit"; return false; }
            if (i == text.Length)
            {
                if (units) { error = "expected a unit (s, m, h, d, w) after the last number"; return false; }
                total = value;
                break;
            }
            ulong multiplier = char.ToLowerInvariant(text[i]) switch
            {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86400,
                'w' => 604800,
                _ => 0,
            };
            if (multiplier == 0) { error = $"unknown TTL unit '{text[i]}': expected s, m, h, d or w"; return false; }
            units = true;
            i++;
            total += value * multiplier;
            if (total > uint.MaxValue) { error = "TTL does not fit in 32 bits"; return false; }
        }
        ttl = (uint)total;
        return true;
    }
}
