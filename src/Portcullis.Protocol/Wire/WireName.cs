using Portcullis.Protocol.Names;

namespace Portcullis.Protocol.Wire;

/// <summary>
/// Reading possibly compressed names out of a message (RFC 1035 §4.1.4), safely: every pointer must
/// point strictly before the start of the label run that led to it, so the walk always moves
/// backwards and cannot loop; hops are capped; the expanded name must fit 255 octets; the
/// extended label types (0x40, 0x80) are rejected.
/// </summary>
public static class WireName
{
    public const int MaxPointerHops = 127;

    /// <summary>
    /// Expands the name at <paramref name="offset"/> into <paramref name="destination"/> (which needs
    /// 255 bytes) and moves <paramref name="offset"/> past the name as it stands in the message.
    /// </summary>
    public static bool TryRead(ReadOnlySpan<byte> message, ref int offset, Span<byte> destination, out int length, out int labels)
    {
        length = 0;
        labels = 0;
        int pos = offset;
        int segmentStart = offset;
        int end = -1;          // where the name ends in the message (after the first pointer)
        int hops = 0;
        int written = 0;
        while (true)
        {
            if ((uint)pos >= (uint)message.Length) return false;
            byte b = message[pos];
            if (b == 0)
            {
                if (written + 1 > DnsName.MaxLength || written >= destination.Length) return false;
                destination[written++] = 0;
                if (end < 0) end = pos + 1;
                break;
            }
            switch (b & 0xC0)
            {
                case 0x00:
                    if (pos + 1 + b > message.Length) return false;
                    if (written + 1 + b + 1 > DnsName.MaxLength || written + 1 + b > destination.Length) return false;
                    message.Slice(pos, 1 + b).CopyTo(destination[written..]);
                    written += 1 + b;
                    labels++;
                    pos += 1 + b;
                    break;
                case 0xC0:
                    if (pos + 1 >= message.Length) return false;
                    int target = ((b & 0x3F) << 8) | message[pos + 1];
                    if (target >= segmentStart) return false;      // only backwards: no loops
                    if (++hops > MaxPointerHops) return false;
                    if (end < 0) end = pos + 2;
                    pos = target;
                    segmentStart = target;
                    break;
                default:
                    return false;                                  // 0x40 / 0x80: obsolete or unknown label types
            }
        }
        length = written;
        offset = end;
        return true;
    }

    /// <summary>Moves past a name without expanding it (still checks that it is well formed).</summary>
    public static bool TrySkip(ReadOnlySpan<byte> message, ref int offset)
    {
        Span<byte> scratch = stackalloc byte[DnsName.MaxLength];
        return TryRead(message, ref offset, scratch, out _, out _);
    }

    /// <summary>Reads a name into a new <see cref="DnsName"/>.</summary>
    public static bool TryRead(ReadOnlySpan<byte> message, ref int offset, out DnsName? name)
    {
        Span<byte> scratch = stackalloc byte[DnsName.MaxLength];
        if (!TryRead(message, ref offset, scratch, out int length, out int labels)) { name = null; return false; }
        name = DnsName.FromValidatedWire(scratch[..length].ToArray(), labels);
        return true;
    }
}
