using System.Globalization;

namespace Portcullis.Protocol.Records.Text;

/// <summary>RRSIG/SIG signature times (RFC 4034 §3.2): YYYYMMDDHHmmSS in UTC, or plain seconds.</summary>
internal static class TimeText
{
    /// <summary>The 32-bit time as a UTC date; 32 bits from 1970 reach 2106, so every value has one.</summary>
    public static string ToText(uint seconds) =>
        DateTime.UnixEpoch.AddSeconds(seconds).ToString("yyyyMMddHHmmss", CultureInfo.InvariantCulture);

    /// <summary>
    /// Fourteen digits are a date, taken modulo 2^32 (serial number arithmetic, RFC 1982) as RFC 4034
    /// §3.1.5 says; anything else must be a decimal number of seconds that fits 32 bits.
    /// </summary>
    public static bool TryParse(string text, out uint seconds)
    {
        seconds = 0;
        if (text.Length == 14 && Numbers.TryParseUnsigned(text, 99_999_999_999_999, out _))
        {
            if (!DateTime.TryParseExact(text, "yyyyMMddHHmmss", CultureInfo.InvariantCulture,
                    DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var date)) return false;
            long unix = (long)(date - DateTime.UnixEpoch).TotalSeconds;
            if (unix < 0) return false;
            seconds = (uint)(unix & 0xFFFFFFFF);
            return true;
        }
        if (!Numbers.TryParseUnsigned(text, uint.MaxValue, out ulong n)) return false;
        seconds = (uint)n;
        return true;
    }
}
