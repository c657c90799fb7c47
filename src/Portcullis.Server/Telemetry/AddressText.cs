namespace Portcullis.Server.Telemetry;

/// <summary>
/// IP addresses as text without allocating (System.Net.IPAddress would be one object per call):
/// IPv4 dotted decimal, IPv6 in RFC 5952 form (lower-case hex, no leading zeros, the longest run of
/// two or more zero groups as "::", the first such run on a tie).
/// </summary>
public static class AddressText
{
    /// <summary>The longest text written: a full IPv6 address.</summary>
    public const int MaxLength = 39;

    /// <summary>Writes 4 or 16 octets as text into <paramref name="into"/> (at least <see cref="MaxLength"/> long); other lengths write nothing.</summary>
    public static int Format(ReadOnlySpan<byte> a, Span<char> into)
    {
        int n = 0;
        if (a.Length == 4)
        {
            for (int i = 0; i < 4; i++)
            {
                if (i > 0) into[n++] = '.';
                n += Decimal(a[i], into[n..]);
            }
            return n;
        }
        if (a.Length != 16) return 0;
        Span<int> groups = stackalloc int[8];
        for (int i = 0; i < 8; i++) groups[i] = a[2 * i] << 8 | a[2 * i + 1];
        int bestStart = -1, bestLength = 1;
        for (int i = 0; i < 8;)
        {
            if (groups[i] != 0) { i++; continue; }
            int j = i;
            while (j < 8 && groups[j] == 0) j++;
            if (j - i > bestLength) { bestStart = i; bestLength = j - i; }
            i = j;
        }
        for (int i = 0; i < 8;)
        {
            if (i == bestStart)
            {
                into[n++] = ':';
                into[n++] = ':';
                i += bestLength;
                continue;
            }
            if (i > 0 && i != bestStart + bestLength) into[n++] = ':';
            n += Hex(groups[i], into[n..]);
            i++;
        }
        return n;
    }

    private static int Decimal(int v, Span<char> into)
    {
        if (v >= 100) { into[0] = (char)('0' + v / 100); into[1] = (char)('0' + v / 10 % 10); into[2] = (char)('0' + v % 10); return 3; }
        if (v >= 10) { into[0] = (char)('0' + v / 10); into[1] = (char)('0' + v % 10); return 2; }
        into[0] = (char)('0' + v);
        return 1;
    }

    private static int Hex(int v, Span<char> into)
    {
        int n = 0;
        bool started = false;
        for (int shift = 12; shift >= 0; shift -= 4)
        {
            int d = v >> shift & 0xF;
            if (d == 0 && !started && shift > 0) continue;
            started = true;
            into[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
        }
        return n;
    }
}
