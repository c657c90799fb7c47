using System.Text;
using Portcullis.Protocol.ZoneText;
using static Portcullis.Protocol.Tests.ZoneText.ZoneTestText;

namespace Portcullis.Protocol.Tests.ZoneText;

/// <summary>Malformed and hostile zone text ends in positioned errors, never a crash, hang or unbounded memory.</summary>
public class ZoneHostileInputTests
{
    private static (List<string> Owners, IReadOnlyList<ZoneFormatException> Errors) Collect(TextReader text)
    {
        using var reader = new ZoneReader(text, Origin, "test.zone", new ZoneReaderOptions { CollectErrors = true, DefaultTtl = 60 });
        var owners = reader.ReadRecords().Select(r => r.Owner.ToString(Origin)).ToList();
        return (owners, reader.Errors);
    }

    [Fact]
    public void An_unterminated_quote_at_the_end_of_the_file_is_an_error_where_it_opened()
    {
        var e = Error("$TTL 60\nt TXT \"abc");
        Assert.Equal((2, 7), (e.Line, e.Column));
        Assert.Contains("unterminated quoted string", e.Problem);
    }

    [Fact]
    public void An_unclosed_parenthesis_at_the_end_of_the_file_is_an_error_where_it_opened()
    {
        var e = Error("$TTL 60\n@ SOA ns1 host (\n 1 2 3 4 5\n\n; comment\n");
        Assert.Equal("test.zone:2:16: unclosed parenthesis: expected ')' before the end of the file", e.Message);
    }

    [Fact]
    public void A_one_megabyte_token_is_refused_and_the_next_line_still_reads()
    {
        var text = "big TXT " + new string('x', 1 << 20) + "\nok A 192.0.2.1\n";
        var (owners, errors) = Collect(new StringReader(text));
        Assert.Equal(["ok"], owners);
        var e = Assert.Single(errors);
        Assert.Equal((1, 9), (e.Line, e.Column));
        Assert.Contains("token longer than", e.Problem);
    }

    [Fact]
    public void A_one_megabyte_quoted_string_is_refused()
    {
        var text = "big TXT \"" + new string('x', 1 << 20) + "\"\nok A 192.0.2.1\n";
        var (owners, errors) = Collect(new StringReader(text));
        Assert.Equal(["ok"], owners);
        Assert.Contains("token longer than", Assert.Single(errors).Problem);
    }

    [Fact]
    public void A_ten_megabyte_comment_line_is_skipped_without_being_held()
    {
        var text = new RepeatingReader("a A 192.0.2.1\n;", 'c', 10 << 20, "\nb A 192.0.2.2\n");
        long before = GC.GetAllocatedBytesForCurrentThread();
        var (owners, errors) = Collect(text);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(["a", "b"], owners);
        Assert.Empty(errors);
        Assert.True(allocated < 2 << 20, $"allocated {allocated} bytes for a 10 MB comment");
    }

    [Fact]
    public void A_ten_megabyte_line_of_tokens_is_refused_with_bounded_memory()
    {
        var text = new RepeatingReader("x TXT", ' ', 0, "", repeatText: " ab", repeatCount: 3_500_000, suffixAfterRepeat: "\nok A 192.0.2.1\n");
        long before = GC.GetAllocatedBytesForCurrentThread();
        var (owners, errors) = Collect(text);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(["ok"], owners);
        Assert.Contains("entry longer than", Assert.Single(errors).Problem);
        // The tokens of the refused entry are dropped once the bound is reached; nothing near 10 MB x tokens is kept.
        Assert.True(allocated < 64 << 20, $"allocated {allocated} bytes");
    }

    [Fact]
    public void A_missing_closing_parenthesis_in_a_big_file_points_at_the_opening_one()
    {
        var sb = new StringBuilder("$TTL 60\n@ SOA ns1 host ( 1 2 3 4 5\n");
        for (int i = 0; i < 100_000; i++) sb.Append("host").Append(i).Append(" A 192.0.2.1\n");
        var (owners, errors) = Collect(new StringReader(sb.ToString()));
        Assert.Empty(owners);
        var e = Assert.Single(errors);
        Assert.Equal((2, 16), (e.Line, e.Column));
        Assert.Contains("expected ')'", e.Problem);
    }

    [Fact]
    public void Deeply_nested_parentheses_are_bounded()
    {
        var e = Error("a TXT " + new string('(', 5000) + "x" + new string(')', 5000) + "\n");
        Assert.Contains("nested too deeply", e.Problem);
    }

    [Fact]
    public void Names_longer_than_255_octets_are_errors()
    {
        var label = new string('a', 63);
        var e = Error($"{label}.{label}.{label}.{label} 60 A 192.0.2.1\n");
        Assert.Equal((1, 1), (e.Line, e.Column));
        Assert.Contains("255", e.Problem);
    }

    [Fact]
    public void Labels_longer_than_63_octets_are_errors() =>
        Assert.Contains("63", Error(new string('a', 64) + " 60 A 192.0.2.1\n").Problem);

    [Fact]
    public void Random_zone_like_text_ends_only_in_format_errors()
    {
        // Seeded: the same texts on every run.
        var random = new Random(20240601);
        string[] pieces = ["$TTL", "$ORIGIN", "$GENERATE", "$INCLUDE", "@", "(", ")", "\"", "\\", ";", " ", "\t", "\n", "IN", "CH",
            "A", "NS", "SOA", "MX", "TXT", "TYPE65280", "\\#", "1h", "60", "192.0.2.1", "a.b", "x.", "..", "$", "${1,2,n}", "1-3",
            "\\065", "\\999", "CNAME", "AAAA", "::1", "0", "4294967296", "*", "\u00e9", "\0"];
        for (int round = 0; round < 500; round++)
        {
            var sb = new StringBuilder();
            int n = random.Next(1, 60);
            for (int i = 0; i < n; i++) sb.Append(pieces[random.Next(pieces.Length)]);
            var text = sb.ToString();
            try
            {
                Collect(new StringReader(text));
                using var strict = new ZoneReader(new StringReader(text), Origin, "test.zone", new ZoneReaderOptions { DefaultTtl = 60 });
                foreach (var _ in strict.ReadRecords()) { }
            }
            catch (ZoneFormatException)
            {
            }
            catch (Exception e)
            {
                Assert.Fail($"{e.GetType().Name} for zone text {System.Text.Json.JsonSerializer.Serialize(text)}: {e}");
            }
        }
    }

    /// <summary>Text made on the fly: a prefix, one character or text repeated, a suffix, so huge inputs need no huge string.</summary>
    private sealed class RepeatingReader(string prefix, char fill, int fillCount, string suffix,
        string repeatText = "", int repeatCount = 0, string suffixAfterRepeat = "") : TextReader
    {
        private int _part;
        private int _offset;
        private int _repeats;

        public override int Read(char[] buffer, int index, int count)
        {
            int written = 0;
            while (written < count)
            {
                switch (_part)
                {
                    case 0: written += CopyFrom(prefix, buffer, index + written, count - written); break;
                    case 1:
                        int n = Math.Min(count - written, fillCount - _offset);
                        buffer.AsSpan(index + written, n).Fill(fill);
                        written += n;
                        _offset += n;
                        if (_offset == fillCount) { _part++; _offset = 0; }
                        break;
                    case 2: written += CopyFrom(suffix, buffer, index + written, count - written); break;
                    case 3:
                        if (_repeats == repeatCount) { _part++; _offset = 0; break; }
                        int c = CopyFrom(repeatText, buffer, index + written, count - written, advance: false);
                        written += c;
                        if (_offset == repeatText.Length) { _offset = 0; _repeats++; }
                        break;
                    case 4: written += CopyFrom(suffixAfterRepeat, buffer, index + written, count - written); break;
                    default: return written;
                }
            }
            return written;
        }

        private int CopyFrom(string s, char[] buffer, int index, int count, bool advance = true)
        {
            int n = Math.Min(count, s.Length - _offset);
            s.CopyTo(_offset, buffer, index, n);
            _offset += n;
            if (_offset == s.Length && advance) { _part++; _offset = 0; }
            return n;
        }

        public override int Peek() => throw new NotSupportedException();
    }
}
