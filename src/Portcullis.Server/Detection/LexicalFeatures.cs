namespace Portcullis.Server.Detection;

/// <summary>
/// Stateless features of one query name's subdomain (the labels left of the registered domain):
/// lengths, Shannon entropy, character mix, and the score <see cref="Suspicion"/> in [0, 1] that the
/// detector averages per domain. Computed in one pass without allocating.
/// </summary>
public struct LexicalFeatures
{
    /// <summary>Characters in the subdomain's labels (dots and length octets not counted).</summary>
    public int SubLength;
    public int SubLabels;
    public int LongestLabel;
    /// <summary>Shannon entropy of the subdomain's characters, case folded (bits per character).</summary>
    public double Entropy;
    /// <summary>Entropy over its ceiling for that length and alphabet (0..1).</summary>
    public double NormalizedEntropy;
    /// <summary>A byte outside letters, digits and hyphen (a leading underscore allowed).</summary>
    public bool NonLdh;
    public bool HexOnly;
    /// <summary>Share of digits among the characters.</summary>
    public double DigitShare;
    /// <summary>Bits of information a character can carry in the detected alphabet (4 hex, 5 base32, 6 base64, 7+ binary).</summary>
    public double BitsPerChar;
    /// <summary>How much the name looks like encoded data, 0..1 (docs/detection.md).</summary>
    public double Suspicion;

    /// <summary>Estimated octets of payload the subdomain carries (its length times bits per character).</summary>
    public readonly double PayloadBytes => SubLength * BitsPerChar / 8;

    /// <summary>Features of name[0..subEnd) (wire form, labels only).</summary>
    public static LexicalFeatures Of(ReadOnlySpan<byte> name, int subEnd)
    {
        var f = new LexicalFeatures();
        if (subEnd <= 0) return f;
        Span<byte> counts = stackalloc byte[256];      // per character, saturating (a name has at most 253)
        counts.Clear();
        Span<byte> seen = stackalloc byte[256];
        int digits = 0, chars = 0, distinct = 0;
        bool b64 = false;
        int nonHex = 0, nonBase32 = 0;
        int i = 0;
        while (i < subEnd)
        {
            int len = name[i];
            if (len == 0 || len > 63 || i + 1 + len > subEnd) break;
            f.SubLabels++;
            if (len > f.LongestLabel) f.LongestLabel = len;
            for (int j = i + 1; j <= i + len; j++)
            {
                byte c = name[j];
                if (c is >= (byte)'A' and <= (byte)'Z') c |= 0x20;
                bool letter = c is >= (byte)'a' and <= (byte)'z';
                bool digit = c is >= (byte)'0' and <= (byte)'9';
                if (digit) digits++;
                if (!(digit || letter || c == '-' || (c == '_' && j == i + 1)))
                {
                    f.NonLdh = true;
                    if (c is (byte)'+' or (byte)'/' or (byte)'=' or (byte)'_') b64 = true;
                }
                if (!(digit || c is >= (byte)'a' and <= (byte)'f')) nonHex++;
                if (!(letter || c is >= (byte)'2' and <= (byte)'7' || c == '=')) nonBase32++;
                if (counts[c]++ == 0) seen[distinct++] = c;
                chars++;
            }
            i += len + 1;
        }
        f.SubLength = chars;
        if (chars == 0) return f;
        double h = 0;
        // H = log2(N) - (1/N) Σ n log2 n over the distinct characters only.
        double sum = 0;
        for (int k = 0; k < distinct; k++)
        {
            int n = counts[seen[k]];
            if (n > 1) sum += n * Math.Log2(n);
        }
        h = Math.Log2(chars) - sum / chars;
        if (h < 0) h = 0;
        f.Entropy = h;
        // The alphabet is the one nearly all characters (90 %) fit: a sequence number or a session
        // label beside a hex chunk does not make it "alphanumeric".
        bool hex = nonHex * 10 <= chars, base32 = nonBase32 * 10 <= chars;
        f.HexOnly = nonHex == 0;
        f.DigitShare = (double)digits / chars;
        // Case is folded (resolvers randomise it, 0x20): base64 is recognised by + / = _ only.
        int alphabet = f.NonLdh && !b64 ? 128 : b64 ? 64 : hex ? 16 : base32 ? 32 : 37;
        f.BitsPerChar = f.NonLdh && !b64 ? 7 : b64 ? 6 : hex ? 4 : base32 ? 5 : Math.Max(Math.Min(h, 5.2), 1);
        // The ceiling of entropy for this many characters from this alphabet.
        double ceiling = Math.Log2(Math.Min(chars, alphabet));
        f.NormalizedEntropy = ceiling <= 0 ? 0 : Math.Min(1, h / ceiling);
        f.Suspicion = Score(f);
        return f;
    }

    /// <summary>
    /// The per-name score: 1 for binary (non-LDH) bytes; otherwise long labels times high entropy,
    /// saturating at a 40-character label with near-maximal entropy; very long names score by
    /// length alone. Short labels (the benign p95 longest label is 9) score 0.
    /// </summary>
    private static double Score(in LexicalFeatures f)
    {
        if (f.NonLdh) return 1;
        double length = Math.Clamp((f.LongestLabel - 14) / 26.0, 0, 1);
        double total = Math.Clamp((f.SubLength - 60) / 60.0, 0, 1);
        double randomness = Math.Clamp((f.NormalizedEntropy - 0.6) / 0.3, 0, 1);
        double s = Math.Max(length, total) * randomness;
        return s;
    }
}
