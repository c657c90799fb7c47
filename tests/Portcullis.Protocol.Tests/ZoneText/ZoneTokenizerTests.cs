using Portcullis.Protocol.ZoneText;

namespace Portcullis.Protocol.Tests.ZoneText;

public class ZoneTokenizerTests
{
    private static List<(bool OwnerOmitted, List<ZoneToken> Tokens, ZoneFormatException? Error)> Entries(string text)
    {
        var tokenizer = new ZoneTokenizer(new StringReader(text), "t.zone");
        var entry = new ZoneEntry();
        var result = new List<(bool, List<ZoneToken>, ZoneFormatException?)>();
        while (tokenizer.ReadEntry(entry)) result.Add((entry.OwnerOmitted, entry.Tokens.ToList(), entry.Error));
        return result;
    }

    private static string[] Texts(string text) =>
        Assert.Single(Entries(text)).Tokens.Select(t => t.Quoted ? $"\"{t.Text}\"" : t.Text).ToArray();

    [Fact]
    public void Blanks_separate_tokens_and_lines_end_entries()
    {
        var entries = Entries("www  IN\tA 192.0.2.1\nmail A 192.0.2.2\n");
        Assert.Equal(2, entries.Count);
        Assert.Equal(["www", "IN", "A", "192.0.2.1"], entries[0].Tokens.Select(t => t.Text));
        Assert.Equal(["mail", "A", "192.0.2.2"], entries[1].Tokens.Select(t => t.Text));
    }

    [Fact]
    public void Tokens_know_their_line_and_column()
    {
        var entries = Entries("\n\nwww  IN A 192.0.2.1\n\tA 192.0.2.2");
        var www = entries[0].Tokens;
        Assert.Equal((3, 1), (www[0].Line, www[0].Column));
        Assert.Equal((3, 6), (www[1].Line, www[1].Column));
        Assert.Equal((3, 11), (www[3].Line, www[3].Column));
        Assert.Equal((4, 2), (entries[1].Tokens[0].Line, entries[1].Tokens[0].Column));
    }

    [Fact]
    public void Parentheses_join_lines_and_comments_inside_them_are_skipped()
    {
        const string soa = """
            @ IN SOA ns1 hostmaster ( ; the SOA
                    2024010101 ; serial
                    7200       ; refresh (2 hours)
                    3600 1209600
                    300 )      ; minimum
            www A 192.0.2.1
            """;
        var entries = Entries(soa);
        Assert.Equal(2, entries.Count);
        Assert.Equal(["@", "IN", "SOA", "ns1", "hostmaster", "2024010101", "7200", "3600", "1209600", "300"],
            entries[0].Tokens.Select(t => t.Text));
        Assert.Equal((5, 9), (entries[0].Tokens[^1].Line, entries[0].Tokens[^1].Column));
        Assert.Equal("www", entries[1].Tokens[0].Text);
    }

    [Fact]
    public void Nested_parentheses_are_accepted_as_BIND_does() =>
        Assert.Equal(["a", "b", "c"], Texts("a ( ( b ) c )"));

    [Fact]
    public void Comment_lines_and_blank_lines_make_no_entry()
    {
        var entries = Entries("; a comment\n\n   \n\t; indented comment\nwww A 192.0.2.1 ; trailing\n");
        var entry = Assert.Single(entries);
        Assert.False(entry.OwnerOmitted);
        Assert.Equal(3, entry.Tokens.Count);
    }

    [Fact]
    public void Quoted_strings_keep_blanks_semicolons_and_parentheses()
    {
        var tokens = Assert.Single(Entries("@ TXT \"v=spf1 mx; -all (x)\" plain\n")).Tokens;
        Assert.Equal("v=spf1 mx; -all (x)", tokens[2].Text);
        Assert.True(tokens[2].Quoted);
        Assert.Equal(7, tokens[2].Column);
        Assert.False(tokens[3].Quoted);
    }

    [Fact]
    public void Escapes_stay_in_the_token_text_for_the_field_parsers()
    {
        Assert.Equal(["a\\ b\\;c\\(", "\"say \\\"hi\\\"\"", "\\065"], Texts("a\\ b\\;c\\( \"say \\\"hi\\\"\" \\065"));
    }

    [Fact]
    public void A_quote_inside_a_bare_token_starts_a_new_token_as_in_BIND() =>
        Assert.Equal(["t", "TXT", "abc", "\"def\""], Texts("t TXT abc\"def\""));

    [Fact]
    public void A_line_starting_with_a_blank_has_no_owner()
    {
        var entries = Entries("www A 192.0.2.1\n   AAAA 2001:db8::1\n\tTXT x\n");
        Assert.Equal([false, true, true], entries.Select(e => e.OwnerOmitted));
    }

    [Fact]
    public void Continuation_lines_in_parentheses_do_not_count_as_blank_owners()
    {
        var entries = Entries("a TXT ( x\n  y )\nb TXT z\n");
        Assert.Equal([false, false], entries.Select(e => e.OwnerOmitted));
    }

    [Fact]
    public void Crlf_line_ends_are_accepted()
    {
        var entries = Entries("a A 192.0.2.1\r\n b\r\n");
        Assert.Equal(["a", "A", "192.0.2.1"], entries[0].Tokens.Select(t => t.Text));
        Assert.True(entries[1].OwnerOmitted);
        Assert.Equal("b", entries[1].Tokens[0].Text);
    }

    [Fact]
    public void An_unterminated_quote_is_an_error_where_the_quote_opened_and_the_next_line_still_reads()
    {
        var entries = Entries("t TXT \"no end\nnext A 192.0.2.1\n");
        Assert.Equal(2, entries.Count);
        var error = entries[0].Error!;
        Assert.Equal((1, 7), (error.Line, error.Column));
        Assert.Contains("unterminated quoted string", error.Message);
        Assert.Equal("t.zone:1:7: unterminated quoted string: expected '\"' before the end of the line", error.Message);
        Assert.Null(entries[1].Error);
        Assert.Equal("next", entries[1].Tokens[0].Text);
    }

    [Fact]
    public void An_unclosed_parenthesis_is_an_error_where_it_opened()
    {
        var entry = Assert.Single(Entries("ok A 192.0.2.1\n@ SOA a b (\n 1 2 3\n 4 5\n"), e => e.Error is not null);
        Assert.Equal((2, 11), (entry.Error!.Line, entry.Error.Column));
        Assert.Contains("unclosed parenthesis", entry.Error.Problem);
    }

    [Fact]
    public void An_unmatched_closing_parenthesis_is_an_error()
    {
        var entry = Assert.Single(Entries("a A 192.0.2.1 )\n"));
        Assert.Equal((1, 15), (entry.Error!.Line, entry.Error.Column));
        Assert.Contains("unmatched ')'", entry.Error.Problem);
    }

    [Fact]
    public void A_backslash_at_the_end_of_a_line_is_an_error()
    {
        var entry = Assert.Single(Entries("a TXT abc\\\n"));
        Assert.Equal((1, 10), (entry.Error!.Line, entry.Error.Column));
    }

    [Fact]
    public void Reads_from_a_reader_in_small_pieces()
    {
        // Text that crosses the tokenizer's 8 KB buffer many times over.
        var text = string.Concat(Enumerable.Range(0, 2000).Select(i => $"host{i} IN A 192.0.2.{i % 256} ; c\n"));
        var entries = Entries(text);
        Assert.Equal(2000, entries.Count);
        Assert.Equal("host1999", entries[^1].Tokens[0].Text);
        Assert.Equal(2000, entries[^1].Tokens[0].Line);
    }
}
