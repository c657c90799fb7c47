using System.Buffers;
using System.Text;

namespace Portcullis.Protocol.Names;

/// <summary>
/// An immutable domain name held as uncompressed wire labels (length-prefixed, ending in the root
/// label). The case it was given is kept; equality, hashing and ordering ignore ASCII case
/// (RFC 4343). Ordering is the canonical DNSSEC order of RFC 4034 §6.1.
/// </summary>
public sealed class DnsName : IEquatable<DnsName>, IComparable<DnsName>
{
    public const int MaxLength = 255;
    public const int MaxLabelLength = 63;

    private readonly byte[] _wire;
    private readonly int _labelCount;
    private int _hash;

    public static readonly DnsName Root = new([0], 0);

    private DnsName(byte[] wire, int labelCount)
    {
        _wire = wire;
        _labelCount = labelCount;
    }

    /// <summary>Uncompressed wire form, including the terminating root label.</summary>
    public ReadOnlySpan<byte> Wire => _wire;

    /// <summary>Length of the uncompressed wire form (1 for the root).</summary>
    public int WireLength => _wire.Length;

    /// <summary>Number of labels, not counting the root label.</summary>
    public int LabelCount => _labelCount;

    public bool IsRoot => _labelCount == 0;

    public bool IsWildcard => _labelCount > 0 && _wire[0] == 1 && _wire[1] == (byte)'*';

    /// <summary>Builds a name from uncompressed wire bytes, validating label and name lengths.</summary>
    public static DnsName FromWire(ReadOnlySpan<byte> wire)
    {
        if (!TryMeasureWire(wire, out int length, out int labels))
            throw new DnsFormatException("malformed uncompressed domain name");
        if (length == 1) return Root;
        return new DnsName(wire[..length].ToArray(), labels);
    }

    /// <summary>Validates an uncompressed name at the start of <paramref name="wire"/>.</summary>
    public static bool TryMeasureWire(ReadOnlySpan<byte> wire, out int length, out int labels)
    {
        int pos = 0;
        labels = 0;
        length = 0;
        while (true)
        {
            if (pos >= wire.Length) return false;
            int len = wire[pos];
            if (len == 0) { length = pos + 1; return length <= MaxLength; }
            if (len > MaxLabelLength) return false;
            pos += 1 + len;
            labels++;
            if (pos >= MaxLength) return false;
        }
    }

    internal static DnsName FromValidatedWire(byte[] wire, int labelCount) =>
        wire.Length == 1 ? Root : new DnsName(wire, labelCount);

    /// <summary>
    /// Parses presentation format (RFC 1035 §5.1) with <c>\.</c>, <c>\\</c> and <c>\DDD</c> escapes.
    /// A name without a trailing dot is relative to <paramref name="origin"/> (absolute when no origin
    /// is given). "@" is not special here: the zone-file reader handles it.
    /// </summary>
    public static DnsName Parse(ReadOnlySpan<char> text, DnsName? origin = null)
    {
        if (!TryParse(text, origin, out var name, out var error))
            throw new DnsFormatException(error!);
        return name!;
    }

    public static DnsName Parse(string text, DnsName? origin = null) => Parse(text.AsSpan(), origin);

    public static bool TryParse(ReadOnlySpan<char> text, DnsName? origin, out DnsName? name, out string? error)
    {
        name = null;
        error = null;
        if (text.Length == 0) { error = "empty domain name"; return false; }
        if (text.Length == 1 && text[0] == '.') { name = Root; return true; }

        Span<byte> buf = stackalloc byte[MaxLength + 1];
        int pos = 0;          // write position in buf
        int labelStart = 0;   // position of the current label's length byte
        int labels = 0;
        bool absolute = false;
        buf[pos++] = 0;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            int b;
            if (c == '.')
            {
                int labelLen = pos - labelStart - 1;
                if (labelLen == 0) { error = $"empty label in domain name '{text}'"; return false; }
                buf[labelStart] = (byte)labelLen;
                labels++;
                if (i == text.Length - 1) { absolute = true; break; }
                labelStart = pos;
                if (pos >= MaxLength) { error = $"domain name '{text}' is longer than 255 octets"; return false; }
                buf[pos++] = 0;
                continue;
            }
            if (c == '\\')
            {
                if (i + 1 >= text.Length) { error = $"dangling backslash in domain name '{text}'"; return false; }
                char n = text[i + 1];
                if (char.IsAsciiDigit(n))
                {
                    if (i + 3 >= text.Length || !char.IsAsciiDigit(text[i + 2]) || !char.IsAsciiDigit(text[i + 3]))
                    {
                        error = $"bad \\DDD escape in domain name '{text}'"; return false;
                    }
                    b = (n - '0') * 100 + (text[i + 2] - '0') * 10 + (text[i + 3] - '0');
                    if (b > 255) { error = $"\\DDD escape above 255 in domain name '{text}'"; return false; }
                    i += 3;
                }
                else
                {
                    if (n > 0x7F) { error = $"non-ASCII character in domain name '{text}'"; return false; }
                    b = n;
                    i += 1;
                }
            }
            else
            {
                if (c > 0x7F) { error = $"non-ASCII character in domain name '{text}'"; return false; }
                b = c;
            }
            if (pos - labelStart - 1 >= MaxLabelLength) { error = $"label longer than 63 octets in domain name '{text}'"; return false; }
            if (pos >= MaxLength) { error = $"domain name '{text}' is longer than 255 octets"; return false; }
            buf[pos++] = (byte)b;
        }
        if (!absolute)
        {
            int labelLen = pos - labelStart - 1;
            if (labelLen == 0) { error = $"empty label in domain name '{text}'"; return false; }
            buf[labelStart] = (byte)labelLen;
            labels++;
        }
        // buf[0..pos] holds the labels without the root label.
        ReadOnlySpan<byte> suffix = absolute || origin is null ? [0] : origin._wire;
        int total = pos + suffix.Length;
        if (total > MaxLength) { error = $"domain name '{text}' is longer than 255 octets"; return false; }
        var wire = new byte[total];
        buf[..pos].CopyTo(wire);
        suffix.CopyTo(wire.AsSpan(pos));
        name = new DnsName(wire, labels + (absolute || origin is null ? 0 : origin._labelCount));
        return true;
    }

    /// <summary>The label at <paramref name="index"/> (0 is the leftmost), without its length byte.</summary>
    public ReadOnlySpan<byte> GetLabel(int index)
    {
        if ((uint)index >= (uint)_labelCount) throw new ArgumentOutOfRangeException(nameof(index));
        int pos = 0;
        for (int i = 0; i < index; i++) pos += 1 + _wire[pos];
        return _wire.AsSpan(pos + 1, _wire[pos]);
    }

    /// <summary>The name with the leftmost <paramref name="count"/> labels removed.</summary>
    public DnsName Parent(int count = 1)
    {
        if (count == 0) return this;
        if ((uint)count > (uint)_labelCount) throw new ArgumentOutOfRangeException(nameof(count));
        int pos = 0;
        for (int i = 0; i < count; i++) pos += 1 + _wire[pos];
        return FromValidatedWire(_wire[pos..], _labelCount - count);
    }

    /// <summary>This name with one label put in front (e.g. "*" for a wildcard).</summary>
    public DnsName Prepend(ReadOnlySpan<byte> label)
    {
        if (label.Length == 0 || label.Length > MaxLabelLength) throw new DnsFormatException("label must be 1 to 63 octets");
        if (_wire.Length + 1 + label.Length > MaxLength) throw new DnsFormatException("domain name longer than 255 octets");
        var wire = new byte[_wire.Length + 1 + label.Length];
        wire[0] = (byte)label.Length;
        label.CopyTo(wire.AsSpan(1));
        _wire.CopyTo(wire, 1 + label.Length);
        return new DnsName(wire, _labelCount + 1);
    }

    /// <summary>
    /// DNAME substitution (RFC 6672 §2.2): this name, below <paramref name="owner"/>, with that suffix
    /// replaced by <paramref name="target"/>; false when the result would exceed 255 octets (YXDOMAIN)
    /// or the name is not strictly below the owner.
    /// </summary>
    public bool TrySubstitute(DnsName owner, DnsName target, out DnsName result)
    {
        result = null!;
        if (!IsSubdomainOf(owner) || Equals(owner)) return false;
        int prefix = _wire.Length - owner.WireLength;
        if (prefix + target.WireLength > MaxLength) return false;
        var wire = new byte[prefix + target.WireLength];
        _wire.AsSpan(0, prefix).CopyTo(wire);
        target.Wire.CopyTo(wire.AsSpan(prefix));
        result = FromWire(wire);
        return true;
    }

    /// <summary>Concatenates a relative name (this) with <paramref name="suffix"/>.</summary>
    public DnsName Append(DnsName suffix)
    {
        if (suffix.IsRoot) return this;
        int total = _wire.Length - 1 + suffix._wire.Length;
        if (total > MaxLength) throw new DnsFormatException("domain name longer than 255 octets");
        var wire = new byte[total];
        _wire.AsSpan(0, _wire.Length - 1).CopyTo(wire);
        suffix._wire.CopyTo(wire, _wire.Length - 1);
        return new DnsName(wire, _labelCount + suffix._labelCount);
    }

    /// <summary>True when this name equals <paramref name="ancestor"/> or is below it.</summary>
    public bool IsSubdomainOf(DnsName ancestor)
    {
        int skip = _labelCount - ancestor._labelCount;
        if (skip < 0) return false;
        int pos = 0;
        for (int i = 0; i < skip; i++) pos += 1 + _wire[pos];
        return EqualsIgnoreCase(_wire.AsSpan(pos), ancestor._wire);
    }

    /// <summary>The same name with ASCII letters lowered (the canonical form of RFC 4034 §6.2).</summary>
    public DnsName ToLowerInvariant()
    {
        bool any = false;
        foreach (byte b in _wire) if (b - (uint)'A' <= 'Z' - 'A') { any = true; break; }
        if (!any) return this;
        var wire = (byte[])_wire.Clone();
        LowerLabels(wire);
        return new DnsName(wire, _labelCount);
    }

    /// <summary>Lowers ASCII letters in uncompressed wire labels in place, leaving length bytes alone.</summary>
    public static void LowerLabels(Span<byte> wire)
    {
        int pos = 0;
        while (pos < wire.Length && wire[pos] != 0)
        {
            int len = wire[pos];
            for (int i = pos + 1; i <= pos + len && i < wire.Length; i++)
                wire[i] = ToLower(wire[i]);
            pos += 1 + len;
        }
    }

    public void CopyTo(Span<byte> destination) => _wire.CopyTo(destination);

    internal static byte ToLower(byte b) => (uint)(b - 'A') <= 'Z' - 'A' ? (byte)(b | 0x20) : b;

    /// <summary>Case-insensitive comparison of two uncompressed wire names (or label sequences).</summary>
    public static bool EqualsIgnoreCase(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        if (a.Length != b.Length) return false;
        // Length bytes are at most 63, below 'A', so lowering every byte is safe.
        for (int i = 0; i < a.Length; i++)
            if (a[i] != b[i] && ToLower(a[i]) != ToLower(b[i])) return false;
        return true;
    }

    public bool Equals(DnsName? other) =>
        other is not null && (ReferenceEquals(this, other) || (_labelCount == other._labelCount && EqualsIgnoreCase(_wire, other._wire)));

    public override bool Equals(object? obj) => obj is DnsName n && Equals(n);

    public override int GetHashCode()
    {
        int h = _hash;
        if (h != 0) return h;
        h = HashWire(_wire);
        _hash = h;
        return h;
    }

    /// <summary>Case-insensitive hash of uncompressed wire bytes (FNV-1a); equal names hash equal.</summary>
    public static int HashWire(ReadOnlySpan<byte> wire)
    {
        uint h = 2166136261;
        foreach (byte b in wire) h = (h ^ ToLower(b)) * 16777619;
        return (int)(h | 1);
    }

    public static bool operator ==(DnsName? a, DnsName? b) => a is null ? b is null : a.Equals(b);
    public static bool operator !=(DnsName? a, DnsName? b) => !(a == b);

    /// <summary>Canonical DNS name order (RFC 4034 §6.1): by labels from the right, each as lowered octets.</summary>
    public int CompareTo(DnsName? other)
    {
        if (other is null) return 1;
        if (ReferenceEquals(this, other)) return 0;
        return CompareCanonical(_wire, other._wire);
    }

    /// <summary>Canonical order (RFC 4034 §6.1) of two uncompressed wire names.</summary>
    public static int CompareCanonical(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y)
    {
        Span<int> a = stackalloc int[128];
        Span<int> b = stackalloc int[128];
        int na = LabelOffsets(x, a);
        int nb = LabelOffsets(y, b);
        int common = Math.Min(na, nb);
        for (int i = 1; i <= common; i++)
        {
            int oa = a[na - i], ob = b[nb - i];
            int c = CompareLabel(x.Slice(oa + 1, x[oa]), y.Slice(ob + 1, y[ob]));
            if (c != 0) return c;
        }
        return na.CompareTo(nb);
    }

    private static int LabelOffsets(ReadOnlySpan<byte> wire, Span<int> offsets)
    {
        int n = 0, pos = 0;
        while (wire[pos] != 0) { offsets[n++] = pos; pos += 1 + wire[pos]; }
        return n;
    }

    private static int CompareLabel(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        int n = Math.Min(a.Length, b.Length);
        for (int i = 0; i < n; i++)
        {
            int c = ToLower(a[i]) - ToLower(b[i]);
            if (c != 0) return c;
        }
        return a.Length - b.Length;
    }

    public static bool operator <(DnsName a, DnsName b) => a.CompareTo(b) < 0;
    public static bool operator >(DnsName a, DnsName b) => a.CompareTo(b) > 0;
    public static bool operator <=(DnsName a, DnsName b) => a.CompareTo(b) <= 0;
    public static bool operator >=(DnsName a, DnsName b) => a.CompareTo(b) >= 0;

    /// <summary>Presentation format with a trailing dot, escaping as BIND and RFC 4343 do.</summary>
    public override string ToString()
    {
        if (_labelCount == 0) return ".";
        var sb = new StringBuilder(_wire.Length + 8);
        AppendPresentation(sb, _wire);
        return sb.ToString();
    }

    /// <summary>Presentation relative to <paramref name="origin"/> ("@" for the origin itself).</summary>
    public string ToString(DnsName origin)
    {
        if (Equals(origin)) return "@";
        if (!origin.IsRoot && IsSubdomainOf(origin))
        {
            var sb = new StringBuilder();
            AppendPresentation(sb, _wire.AsSpan(0, _wire.Length - origin._wire.Length), trailingDot: false);
            return sb.ToString();
        }
        return ToString();
    }

    /// <summary>Appends the presentation of uncompressed wire labels; stops at the root label or span end.</summary>
    public static void AppendPresentation(StringBuilder sb, ReadOnlySpan<byte> wire, bool trailingDot = true)
    {
        int pos = 0;
        bool first = true;
        while (pos < wire.Length && wire[pos] != 0)
        {
            int len = wire[pos];
            if (!first) sb.Append('.');
            first = false;
            foreach (byte b in wire.Slice(pos + 1, Math.Min(len, wire.Length - pos - 1)))
                AppendLabelByte(sb, b);
            pos += 1 + len;
        }
        if (first) { sb.Append('.'); return; }
        if (trailingDot) sb.Append('.');
    }

    private static void AppendLabelByte(StringBuilder sb, byte b)
    {
        switch (b)
        {
            case (byte)'.': case (byte)'\\': case (byte)'"': case (byte)'(': case (byte)')':
            case (byte)';': case (byte)'@': case (byte)'$':
                sb.Append('\\').Append((char)b);
                break;
            default:
                if (b <= 0x20 || b >= 0x7F) sb.Append('\\').Append((b / 100).ToString()).Append((b / 10 % 10).ToString()).Append((b % 10).ToString());
                else sb.Append((char)b);
                break;
        }
    }
}
