using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using Portcullis.Protocol.ZoneText;

namespace Portcullis.Protocol.Records.Text;

/// <summary>
/// LOC presentation (RFC 1876 §3):
/// <c>d1 [m1 [s1]] N|S d2 [m2 [s2]] E|W alt[m] [size[m] [hp[m] [vp[m]]]]</c>, printed as BIND does
/// (<c>52 22 23.000 N 4 53 32.000 E -2.00m 1m 10000m 10m</c>).
/// </summary>
internal static class LocText
{
    private const uint Equator = 1u << 31;           // latitude/longitude origin (RFC 1876 §2)
    private const long AltitudeBase = 10_000_000;    // altitude is in cm above 100,000 m below the WGS 84 spheroid
    private const long MaxArc = 180L * 3600 * 1000;  // thousandths of an arc second
    private const byte DefaultSize = 0x12;           // 1 m
    private const byte DefaultHorizontal = 0x16;     // 10,000 m
    private const byte DefaultVertical = 0x13;       // 10 m

    private static readonly long[] PowersOfTen = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000, 1_000_000_000];

    /// <summary>Appends the presentation; false for LOC RDATA out of range or not in the form parsing would give.</summary>
    public static bool TryAppend(StringBuilder sb, ReadOnlySpan<byte> rdata)
    {
        byte size = rdata[1], horizontal = rdata[2], vertical = rdata[3];
        uint latitude = BinaryPrimitives.ReadUInt32BigEndian(rdata[4..]);
        uint longitude = BinaryPrimitives.ReadUInt32BigEndian(rdata[8..]);
        uint altitude = BinaryPrimitives.ReadUInt32BigEndian(rdata[12..]);
        if (!IsCanonicalPrecision(size) || !IsCanonicalPrecision(horizontal) || !IsCanonicalPrecision(vertical)) return false;
        long lat = (long)latitude - Equator, lon = (long)longitude - Equator;
        if (Math.Abs(lat) > MaxArc / 2 || Math.Abs(lon) > MaxArc) return false;
        AppendArc(sb, lat, 'N', 'S');
        sb.Append(' ');
        AppendArc(sb, lon, 'E', 'W');
        sb.Append(' ');
        long alt = altitude - AltitudeBase;
        if (alt < 0) sb.Append('-');
        alt = Math.Abs(alt);
        sb.Append(alt / 100).Append('.').Append((alt % 100).ToString("00", CultureInfo.InvariantCulture)).Append("m ");
        AppendPrecision(sb, size);
        sb.Append(' ');
        AppendPrecision(sb, horizontal);
        sb.Append(' ');
        AppendPrecision(sb, vertical);
        return true;
    }

    private static void AppendArc(StringBuilder sb, long value, char positive, char negative)
    {
        char hemisphere = value >= 0 ? positive : negative;
        value = Math.Abs(value);
        long thousandths = value % 1000;
        value /= 1000;
        long seconds = value % 60;
        value /= 60;
        long minutes = value % 60;
        long degrees = value / 60;
        sb.Append(degrees).Append(' ').Append(minutes).Append(' ').Append(seconds).Append('.')
            .Append(thousandths.ToString("000", CultureInfo.InvariantCulture)).Append(' ').Append(hemisphere);
    }

    /// <summary>Sizes are mantissa (high nibble) times ten to the exponent (low nibble) in cm.</summary>
    private static bool IsCanonicalPrecision(byte b)
    {
        int mantissa = b >> 4, exponent = b & 0xF;
        if (mantissa > 9 || exponent > 9) return false;
        return EncodePrecision(mantissa * PowersOfTen[exponent]) == b;
    }

    private static void AppendPrecision(StringBuilder sb, byte b)
    {
        int exponent = b & 0xF;
        long cm = (b >> 4) * PowersOfTen[exponent];
        // BIND prints whole metres once the exponent reaches metres, and two decimals below that.
        if (exponent >= 2) sb.Append(cm / 100).Append('m');
        else sb.Append("0.").Append(cm.ToString("00", CultureInfo.InvariantCulture)).Append('m');
    }

    /// <summary>The smallest exponent that holds the value, the mantissa truncated (RFC 1876 Appendix A).</summary>
    private static byte EncodePrecision(long cm)
    {
        int exponent = 0;
        while (exponent < 9 && cm >= PowersOfTen[exponent + 1]) exponent++;
        long mantissa = cm / PowersOfTen[exponent];
        return (byte)(mantissa << 4 | (uint)exponent);
    }

    public static void Parse(RdataTokenReader reader, ByteSink sink)
    {
        uint latitude = ParseArc(reader, 90, 'N', 'S', "latitude");
        uint longitude = ParseArc(reader, 180, 'E', 'W', "longitude");

        var altToken = reader.Next("an altitude in metres");
        if (!TryParseMetres(altToken.Text, allowNegative: true, out long altCm) || altCm < -AltitudeBase || altCm > uint.MaxValue - AltitudeBase)
            throw reader.Expected(altToken, "an altitude from -100000.00m to 42849672.95m");

        byte size = DefaultSize, horizontal = DefaultHorizontal, vertical = DefaultVertical;
        if (!reader.AtEnd) size = ParsePrecision(reader, reader.Next("a size"), "a size");
        if (!reader.AtEnd) horizontal = ParsePrecision(reader, reader.Next("a horizontal precision"), "a horizontal precision");
        if (!reader.AtEnd) vertical = ParsePrecision(reader, reader.Next("a vertical precision"), "a vertical precision");

        sink.WriteU8(0);   // version 0, the only one defined
        sink.WriteU8(size);
        sink.WriteU8(horizontal);
        sink.WriteU8(vertical);
        sink.WriteU32(latitude);
        sink.WriteU32(longitude);
        sink.WriteU32((uint)(altCm + AltitudeBase));
    }

    private static uint ParseArc(RdataTokenReader reader, int maxDegrees, char positive, char negative, string what)
    {
        string hemispheres = $"{positive} or {negative}";
        var t = reader.Next($"{what} degrees");
        if (!Numbers.TryParseUnsigned(t.Text, (ulong)maxDegrees, out ulong degrees))
            throw reader.Expected(t, $"{what} degrees from 0 to {maxDegrees}");
        ulong minutes = 0, thousandths = 0;
        t = reader.Next($"{what} minutes or {hemispheres}");
        if (!IsHemisphere(t, positive, negative))
        {
            if (!Numbers.TryParseUnsigned(t.Text, 59, out minutes)) throw reader.Expected(t, $"{what} minutes from 0 to 59 or {hemispheres}");
            t = reader.Next($"{what} seconds or {hemispheres}");
            if (!IsHemisphere(t, positive, negative))
            {
                if (!TryParseFixed(t.Text, 3, out long s) || s < 0 || s >= 60_000)
                    throw reader.Expected(t, $"{what} seconds from 0 to 59.999 or {hemispheres}");
                thousandths = (ulong)s;
                t = reader.Next(hemispheres);
                if (!IsHemisphere(t, positive, negative)) throw reader.Expected(t, hemispheres);
            }
        }
        ulong arc = (degrees * 60 + minutes) * 60_000 + thousandths;
        if (arc > (ulong)maxDegrees * 3_600_000) throw reader.Error(t, $"{what} is beyond {maxDegrees} degrees");
        bool isPositive = t.Text[0] == positive;
        return isPositive ? Equator + (uint)arc : Equator - (uint)arc;
    }

    // Upper case only, as RFC 1876 §3 writes them and BIND requires.
    private static bool IsHemisphere(ZoneToken t, char positive, char negative) =>
        t.Text.Length == 1 && (t.Text[0] == positive || t.Text[0] == negative);

    private static byte ParsePrecision(RdataTokenReader reader, ZoneToken t, string what)
    {
        if (!TryParseMetres(t.Text, allowNegative: false, out long cm) || cm > 9_000_000_000)
            throw reader.Expected(t, $"{what} from 0 to 90000000.00m");
        return EncodePrecision(cm);
    }

    /// <summary>Metres with up to two decimals and an optional "m", in centimetres.</summary>
    private static bool TryParseMetres(string text, bool allowNegative, out long cm)
    {
        ReadOnlySpan<char> span = text;
        if (span.Length > 0 && (span[^1] == 'm' || span[^1] == 'M')) span = span[..^1];
        bool negative = false;
        if (allowNegative && span.Length > 0 && span[0] == '-') { negative = true; span = span[1..]; }
        if (!TryParseFixed(span, 2, out cm)) return false;
        if (negative) cm = -cm;
        return true;
    }

    /// <summary>Unsigned decimal with at most <paramref name="decimals"/> fraction digits, scaled to an integer.</summary>
    private static bool TryParseFixed(ReadOnlySpan<char> text, int decimals, out long scaled)
    {
        scaled = 0;
        int dot = text.IndexOf('.');
        var whole = dot < 0 ? text : text[..dot];
        var fraction = dot < 0 ? ReadOnlySpan<char>.Empty : text[(dot + 1)..];
        if (whole.Length == 0 || whole.Length > 10 || fraction.Length > decimals || (dot >= 0 && fraction.Length == 0)) return false;
        if (!Numbers.TryParseUnsigned(whole, 9_999_999_999, out ulong w)) return false;
        ulong f = 0;
        if (fraction.Length > 0 && !Numbers.TryParseUnsigned(fraction, 999, out f)) return false;
        for (int i = fraction.Length; i < decimals; i++) f *= 10;
        scaled = (long)(w * (ulong)PowersOfTen[decimals] + f);
        return true;
    }
}
