namespace Portcullis.Server.Detection;

/// <summary>
/// Hashes of DNS names in wire form, label by label from the right and case folded, so that every
/// suffix of a name is hashed in one pass (the registered-domain lookup, allow-lists and block
/// lists all match suffixes). Collisions are harmless: every hit is verified byte for byte.
/// </summary>
public static class NameHash
{
    internal const ulong Seed = 0x9E3779B97F4A7C15;

    internal static ulong Label(ReadOnlySpan<byte> label)
    {
        ulong h = 0xCBF29CE484222325 ^ (ulong)label.Length;
        foreach (byte b in label)
        {
            byte c = b is >= (byte)'A' and <= (byte)'Z' ? (byte)(b | 0x20) : b;
            h = (h ^ c) * 0x100000001B3;
        }
        return h;
    }

    internal static ulong Combine(ulong h, ulong label)
    {
        h ^= label + 0x9E3779B97F4A7C15 + (h << 6) + (h >> 2);
        h *= 0xBF58476D1CE4E5B9;
        return h ^ (h >> 31);
    }

    /// <summary>Label start offsets of a wire name (stops at the root label or the end); -1 when malformed.</summary>
    internal static int Labels(ReadOnlySpan<byte> name, Span<int> starts, out int end)
    {
        int n = 0, i = 0;
        end = 0;
        while (i < name.Length && name[i] != 0)
        {
            int len = name[i];
            if (len > 63 || i + 1 + len > name.Length || n == starts.Length) return -1;
            starts[n++] = i;
            i += len + 1;
        }
        end = i;
        return n;
    }

    /// <summary>The hash of the whole name (without its root label).</summary>
    public static ulong Of(ReadOnlySpan<byte> name)
    {
        Span<int> starts = stackalloc int[128];
        int n = Labels(name, starts, out _);
        ulong h = Seed;
        for (int k = n - 1; k >= 0; k--) h = Combine(h, Label(name.Slice(starts[k] + 1, name[starts[k]])));
        return h;
    }

    /// <summary>Case-insensitive equality of name[start..end) and a lower-case wire name without the root label.</summary>
    internal static bool Same(ReadOnlySpan<byte> lowerWire, ReadOnlySpan<byte> name, int start, int end)
    {
        if (end - start != lowerWire.Length) return false;
        for (int j = 0; j < lowerWire.Length; j++)
        {
            byte c = name[start + j];
            if (c is >= (byte)'A' and <= (byte)'Z') c |= 0x20;
            if (c != lowerWire[j]) return false;
        }
        return true;
    }

    /// <summary>A lower-case copy of a wire name without the root label.</summary>
    internal static byte[] LowerWithoutRoot(ReadOnlySpan<byte> name)
    {
        Labels(name, stackalloc int[128], out int end);
        var copy = name[..end].ToArray();
        for (int i = 0; i < copy.Length; i++) if (copy[i] is >= (byte)'A' and <= (byte)'Z') copy[i] |= 0x20;
        return copy;
    }

    /// <summary>Wire form (no root label) of a presentation name such as "example.com" (no escapes); null when invalid.</summary>
    public static byte[]? FromText(string name)
    {
        name = name.Trim().TrimEnd('.').ToLowerInvariant();
        if (name.Length == 0) return [];
        var wire = new List<byte>();
        foreach (var label in name.Split('.'))
        {
            if (label.Length is 0 or > 63) return null;
            wire.Add((byte)label.Length);
            foreach (char c in label)
            {
                if (c > 126 || c < 33) return null;
                wire.Add((byte)c);
            }
        }
        return wire.Count > 254 ? null : wire.ToArray();
    }

    /// <summary>Presentation form of a wire name (lower case, with the final dot; \DDD escapes), for alerts and logs.</summary>
    public static string ToText(ReadOnlySpan<byte> name)
    {
        var sb = new System.Text.StringBuilder();
        int i = 0;
        while (i < name.Length && name[i] != 0 && name[i] <= 63 && i + 1 + name[i] <= name.Length)
        {
            int len = name[i];
            for (int j = i + 1; j <= i + len; j++)
            {
                byte c = name[j];
                if (c is >= (byte)'A' and <= (byte)'Z') c |= 0x20;
                if (c is (byte)'.' or (byte)'\\' or (byte)'"' or (byte)'(' or (byte)')' or (byte)';' or (byte)'@' or (byte)'$') sb.Append('\\').Append((char)c);
                else if (c < 33 || c > 126) sb.Append('\\').Append(((int)c).ToString("D3"));
                else sb.Append((char)c);
            }
            sb.Append('.');
            i += len + 1;
        }
        return sb.Length == 0 ? "." : sb.ToString();
    }
}

/// <summary>
/// A set of domain names matched by suffix (a name matches when it or any of its ancestors is in the
/// set): allow-lists. Immutable after construction; lookups allocate nothing and are thread-safe.
/// </summary>
public sealed class NameSuffixSet
{
    private readonly Dictionary<ulong, byte[][]> _names = new();

    public NameSuffixSet(IEnumerable<byte[]> lowerWireNames)
    {
        foreach (var w in lowerWireNames)
        {
            ulong h = NameHash.Of(w);
            if (_names.TryGetValue(h, out var list))
            {
                if (Array.Exists(list, x => x.AsSpan().SequenceEqual(w))) continue;
                _names[h] = [.. list, w];
            }
            else _names[h] = [w];
            Count++;
        }
    }

    /// <summary>From presentation names ("in-addr.arpa", "zen.spamhaus.org."); invalid ones are reported through <paramref name="invalid"/>.</summary>
    public static NameSuffixSet FromText(IEnumerable<string> names, Action<string>? invalid = null)
    {
        var wires = new List<byte[]>();
        foreach (var n in names)
        {
            if (NameHash.FromText(n) is { } w) wires.Add(w);
            else invalid?.Invoke(n);
        }
        return new NameSuffixSet(wires);
    }

    public int Count { get; }

    /// <summary>Whether the name (wire form, any case) or one of its ancestors is in the set.</summary>
    public bool Matches(ReadOnlySpan<byte> name)
    {
        if (Count == 0) return false;
        Span<int> starts = stackalloc int[128];
        int n = NameHash.Labels(name, starts, out int end);
        if (n <= 0) return _names.ContainsKey(NameHash.Seed) && n == 0;
        ulong h = NameHash.Seed;
        for (int k = n - 1; k >= 0; k--)
        {
            int s = starts[k];
            h = NameHash.Combine(h, NameHash.Label(name.Slice(s + 1, name[s])));
            if (_names.TryGetValue(h, out var list))
                foreach (var w in list)
                    if (NameHash.Same(w, name, s, end)) return true;
        }
        return false;
    }
}
