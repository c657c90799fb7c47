using System.Text;

namespace Portcullis.Protocol.Records.Text;

/// <summary>Hex, base64 and base32hex (RFC 4648 §§4, 7, 8) as RDATA presentation uses them.</summary>
internal static class BinaryText
{
    private const string Base32HexAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUV";

    public static bool TryDecodeHex(ReadOnlySpan<char> text, ByteSink sink)
    {
        if (text.Length % 2 != 0) return false;
        for (int i = 0; i < text.Length; i += 2)
        {
            int hi = HexDigit(text[i]), lo = HexDigit(text[i + 1]);
            if (hi < 0 || lo < 0) return false;
            sink.WriteU8((byte)(hi << 4 | lo));
        }
        return true;
    }

    private static int HexDigit(char c) => c switch
    {
        >= '0' and <= '9' => c - '0',
        >= 'a' and <= 'f' => c - 'a' + 10,
        >= 'A' and <= 'F' => c - 'A' + 10,
        _ => -1,
    };

    /// <summary>Uppercase hex, as BIND prints it.</summary>
    public static void AppendHex(StringBuilder sb, ReadOnlySpan<byte> bytes) => sb.Append(Convert.ToHexString(bytes));

    public static bool TryDecodeBase64(ReadOnlySpan<char> text, ByteSink sink)
    {
        // Whitespace cannot appear (tokens have none); Convert would skip it silently anyway.
        if (text.Length % 4 != 0) return false;
        var buffer = new byte[text.Length / 4 * 3];
        if (!Convert.TryFromBase64Chars(text, buffer, out int written)) return false;
        sink.Write(buffer.AsSpan(0, written));
        return true;
    }

    public static void AppendBase64(StringBuilder sb, ReadOnlySpan<byte> bytes) => sb.Append(Convert.ToBase64String(bytes));

    /// <summary>Base32hex without padding (RFC 5155 §3.3 NSEC3 next hashed owner), uppercase as BIND prints it.</summary>
    public static void AppendBase32Hex(StringBuilder sb, ReadOnlySpan<byte> bytes)
    {
        int buffer = 0, bits = 0;
        foreach (byte b in bytes)
        {
            buffer = (buffer << 8) | b;
            bits += 8;
            while (bits >= 5)
            {
                bits -= 5;
                sb.Append(Base32HexAlphabet[(buffer >> bits) & 31]);
            }
            buffer &= (1 << bits) - 1;
        }
        if (bits > 0) sb.Append(Base32HexAlphabet[(buffer << (5 - bits)) & 31]);
    }

    /// <summary>
    /// Decodes base32hex in either case, with or without '=' padding. Leftover bits must be zero and
    /// fewer than a whole octet, so every accepted text has exactly one encoding.
    /// </summary>
    public static bool TryDecodeBase32Hex(ReadOnlySpan<char> text, ByteSink sink)
    {
        int end = text.Length;
        while (end > 0 && text[end - 1] == '=') end--;
        if (end < text.Length && text.Length % 8 != 0) return false;
        int buffer = 0, bits = 0;
        for (int i = 0; i < end; i++)
        {
            char c = text[i];
            int v = c switch
            {
                >= '0' and <= '9' => c - '0',
                >= 'A' and <= 'V' => c - 'A' + 10,
                >= 'a' and <= 'v' => c - 'a' + 10,
                _ => -1,
            };
            if (v < 0) return false;
            buffer = (buffer << 5) | v;
            bits += 5;
            if (bits >= 8)
            {
                bits -= 8;
                sink.WriteU8((byte)(buffer >> bits));
                buffer &= (1 << bits) - 1;
            }
        }
        return bits < 5 && buffer == 0;
    }
}
