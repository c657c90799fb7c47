using System.Globalization;
using System.Text;

namespace Portcullis.Server.Detection;

/// <summary>
/// The Public Suffix List (publicsuffix.org; Debian's <c>publicsuffix</c> package:
/// /usr/share/publicsuffix/public_suffix_list.dat): finds the registered domain of a name in wire
/// form without allocating. Both sections are used (the PRIVATE one splits <c>github.io</c>,
/// <c>duckdns.org</c>, <c>cloudfront.net</c> into per-customer domains, which is what detection
/// wants). IDN rules are converted to A-labels at load, since DNS names arrive as <c>xn--</c>.
/// </summary>
/// <remarks>
/// Algorithm (publicsuffix.org/list): among the rules that match, an exception rule (<c>!</c>) wins,
/// then the rule with the most labels; no match means the implicit rule <c>*</c>. The registered
/// domain is the public suffix plus one label, none when the name is itself a suffix.
/// Lookup hashes each suffix of the name (right to left, case folded) and looks it up in a table
/// of rule suffixes, each verified byte for byte.
/// </remarks>
public sealed class PublicSuffixList
{
    [Flags]
    private enum RuleKind : byte { None = 0, Normal = 1, Wildcard = 2, Exception = 4 }

    private sealed class Rule(byte[] wire, RuleKind kind)
    {
        public readonly byte[] Wire = wire;   // lower-case labels, no root label
        public RuleKind Kind = kind;
    }

    private readonly Dictionary<ulong, Rule> _rules;

    public int RuleCount { get; }

    private PublicSuffixList(Dictionary<ulong, Rule> rules, int count)
    {
        _rules = rules;
        RuleCount = count;
    }

    /// <summary>The Debian package's file.</summary>
    public const string DebianPath = "/usr/share/publicsuffix/public_suffix_list.dat";

    /// <summary>Loads the list; a missing file or a bad rule throws <see cref="FormatException"/> naming file and line.</summary>
    public static PublicSuffixList Load(string path)
    {
        string[] lines;
        try { lines = File.ReadAllLines(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new FormatException($"{path}: cannot read the public suffix list: {e.Message}");
        }
        return Parse(lines, path);
    }

    /// <summary>Parses the lines of a list (comments // and blank lines skipped; only the first word of a line counts).</summary>
    public static PublicSuffixList Parse(IEnumerable<string> lines, string source = "public suffix list")
    {
        var idn = new IdnMapping { AllowUnassigned = true };
        var rules = new Dictionary<ulong, Rule>();
        int count = 0, number = 0;
        foreach (var raw in lines)
        {
            number++;
            var line = raw.Trim();
            int space = line.IndexOfAny([' ', '\t']);
            if (space >= 0) line = line[..space];
            if (line.Length == 0 || line.StartsWith("//", StringComparison.Ordinal)) continue;
            var kind = RuleKind.Normal;
            if (line[0] == '!') { kind = RuleKind.Exception; line = line[1..]; }
            else if (line.StartsWith("*.", StringComparison.Ordinal)) { kind = RuleKind.Wildcard; line = line[2..]; }
            string ascii;
            try { ascii = idn.GetAscii(line.TrimEnd('.')).ToLowerInvariant(); }
            catch (ArgumentException e) { throw new FormatException($"{source}:{number}: bad rule '{raw.Trim()}': {e.Message}"); }
            if (ascii.Length == 0 || ascii.Contains('*') || ascii.Contains("..", StringComparison.Ordinal) || ascii.StartsWith('.'))
                throw new FormatException($"{source}:{number}: bad rule '{raw.Trim()}' (wildcards only as the leftmost label)");
            var wire = ToWire(ascii);
            if (wire is null) throw new FormatException($"{source}:{number}: bad rule '{raw.Trim()}' (label or name too long)");
            ulong h = HashSuffix(wire);
            if (rules.TryGetValue(h, out var existing))
            {
                if (!existing.Wire.AsSpan().SequenceEqual(wire))
                    throw new FormatException($"{source}:{number}: hash collision on '{ascii}'");
                existing.Kind |= kind;
            }
            else rules[h] = new Rule(wire, kind);
            count++;
        }
        return new PublicSuffixList(rules, count);
    }

    private static byte[]? ToWire(string ascii)
    {
        var labels = ascii.Split('.');
        var wire = new List<byte>();
        foreach (var l in labels)
        {
            if (l.Length is 0 or > 63) return null;
            wire.Add((byte)l.Length);
            wire.AddRange(Encoding.ASCII.GetBytes(l));
        }
        return wire.Count > 254 ? null : wire.ToArray();
    }

    private static ulong HashSuffix(ReadOnlySpan<byte> wire) => NameHash.Of(wire);
    private const ulong Seed = NameHash.Seed;
    private static ulong HashLabel(ReadOnlySpan<byte> label) => NameHash.Label(label);
    private static ulong Combine(ulong h, ulong label) => NameHash.Combine(h, label);

    /// <summary>
    /// The offset in <paramref name="name"/> (wire form, uncompressed, with or without the root
    /// label) where its registered domain starts, or -1 when the name is a public suffix itself (or
    /// the root, or malformed). Allocation-free.
    /// </summary>
    public int RegisteredDomainOffset(ReadOnlySpan<byte> name) => RegisteredDomainOffset(name, out _);

    /// <summary>As <see cref="RegisteredDomainOffset(ReadOnlySpan{byte})"/>, also giving the number of labels in the name.</summary>
    public int RegisteredDomainOffset(ReadOnlySpan<byte> name, out int labelCount)
    {
        Span<int> starts = stackalloc int[128];
        int n = 0, i = 0;
        labelCount = 0;
        while (i < name.Length && name[i] != 0)
        {
            int len = name[i];
            if (len > 63 || i + 1 + len > name.Length || n == starts.Length) return -1;
            starts[n++] = i;
            i += len + 1;
        }
        labelCount = n;
        if (n == 0) return -1;
        // Walk suffixes of 1..n labels; the longest matching rule (a wildcard adds one label) wins,
        // an exception wins outright.
        int best = 1;                    // the implicit "*" rule
        ulong h = Seed;
        for (int k = 1; k <= n; k++)
        {
            int s = starts[n - k];
            h = Combine(h, HashLabel(name.Slice(s + 1, name[s])));
            if (!_rules.TryGetValue(h, out var rule) || !SameSuffix(rule.Wire, name, s, i)) continue;
            if ((rule.Kind & RuleKind.Exception) != 0) { best = k - 1; break; }
            if ((rule.Kind & RuleKind.Normal) != 0 && k > best) best = k;
            if ((rule.Kind & RuleKind.Wildcard) != 0 && k + 1 > best) best = k + 1;
        }
        if (best >= n) return -1;
        return starts[n - best - 1];
    }

    private static bool SameSuffix(byte[] rule, ReadOnlySpan<byte> name, int start, int end) => NameHash.Same(rule, name, start, end);

    /// <summary>The registered domain of a presentation-form name (lower case, no final dot), or null: for tests and tools.</summary>
    public string? RegisteredDomain(string name)
    {
        var ascii = new IdnMapping { AllowUnassigned = true }.GetAscii(name.TrimEnd('.'));
        var wire = ToWire(ascii);
        if (wire is null) return null;
        int off = RegisteredDomainOffset(wire);
        if (off < 0) return null;
        var sb = new StringBuilder();
        for (int i = off; i < wire.Length; i += wire[i] + 1)
        {
            if (sb.Length > 0) sb.Append('.');
            sb.Append(Encoding.ASCII.GetString(wire, i + 1, wire[i]).ToLowerInvariant());
        }
        return sb.ToString();
    }
}
