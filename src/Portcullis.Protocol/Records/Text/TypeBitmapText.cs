using System.Text;

namespace Portcullis.Protocol.Records.Text;

/// <summary>
/// NSEC/NSEC3/CSYNC type bitmaps (RFC 4034 §4.1.2) as lists of type mnemonics, in ascending order.
/// </summary>
internal static class TypeBitmapText
{
    /// <summary>
    /// Appends the types present. False when the bitmap is not in the minimal form parsing would
    /// give back (an empty window, or a window ending in a zero octet), so the caller can fall back
    /// to the RFC 3597 form and keep text and wire in one-to-one correspondence.
    /// </summary>
    public static bool TryAppend(StringBuilder sb, ReadOnlySpan<byte> bitmap)
    {
        int pos = 0;
        bool first = true;
        while (pos < bitmap.Length)
        {
            int window = bitmap[pos], length = bitmap[pos + 1];
            var bits = bitmap.Slice(pos + 2, length);
            if (bits[^1] == 0) return false;
            for (int i = 0; i < bits.Length; i++)
            {
                for (int bit = 0; bit < 8; bit++)
                {
                    if ((bits[i] & (0x80 >> bit)) == 0) continue;
                    if (!first) sb.Append(' ');
                    first = false;
                    sb.Append(RecordTypes.ToText((RecordType)(window * 256 + i * 8 + bit)));
                }
            }
            pos += 2 + length;
        }
        return true;
    }

    /// <summary>Builds the windows for a set of types (duplicates allowed, any order).</summary>
    public static void Write(ByteSink sink, IEnumerable<ushort> types)
    {
        // 8 KiB covers all 65536 types; small and bounded, and keeps this linear.
        var present = new byte[8192];
        foreach (ushort t in types) present[t >> 3] |= (byte)(0x80 >> (t & 7));
        for (int window = 0; window < 256; window++)
        {
            var bits = present.AsSpan(window * 32, 32);
            int length = 32;
            while (length > 0 && bits[length - 1] == 0) length--;
            if (length == 0) continue;
            sink.WriteU8((byte)window);
            sink.WriteU8((byte)length);
            sink.Write(bits[..length]);
        }
    }
}
