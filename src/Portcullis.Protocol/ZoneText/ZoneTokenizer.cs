using System.Buffers;

namespace Portcullis.Protocol.ZoneText;

/// <summary>
/// One entry of a zone file (RFC 1035 §5.1): the tokens of one line, or of several lines joined by
/// parentheses. Reused from entry to entry so that reading a large zone allocates only the tokens.
/// </summary>
public sealed class ZoneEntry
{
    internal readonly List<ZoneToken> TokenList = new();

    public IReadOnlyList<ZoneToken> Tokens => TokenList;

    /// <summary>The entry's first line began with a blank: the owner is the previous one (RFC 1035 §5.1).</summary>
    public bool OwnerOmitted { get; internal set; }

    /// <summary>Where the entry ends (just after its last character), for "found the end of the line".</summary>
    public int EndLine { get; internal set; }
    public int EndColumn { get; internal set; }

    /// <summary>The first lexical error in the entry; the tokenizer still consumed the whole entry.</summary>
    public ZoneFormatException? Error { get; internal set; }

    internal void Reset()
    {
        TokenList.Clear();
        OwnerOmitted = false;
        Error = null;
        EndLine = EndColumn = 0;
    }
}

/// <summary>
/// Splits master-file text into entries and tokens (RFC 1035 §5.1), streaming from a
/// <see cref="TextReader"/> through a small buffer: blanks separate tokens, <c>;</c> starts a comment,
/// parentheses join lines, quotes make one token of text with blanks, and a backslash escapes the
/// next character (escapes are kept in the token text for the field parsers). Quoted strings end at
/// the end of the line, as in BIND. Columns count characters from 1 (a tab is one column).
/// Memory is bounded: a token, and an entry's tokens together, have maximum sizes; past them the
/// entry is reported as an error and skipped without being held.
/// </summary>
public sealed class ZoneTokenizer
{
    /// <summary>Largest token: 65,535 octets of RDATA written as one hex string is 131,070 characters.</summary>
    public const int MaxTokenLength = 1 << 17;

    /// <summary>Largest entry, all tokens together (a 65,535-octet TXT written as \DDD is 262,140).</summary>
    public const int MaxEntryLength = 1 << 19;

    /// <summary>Most tokens in one entry (one per octet of a maximal RDATA, and some).</summary>
    public const int MaxEntryTokens = 70_000;

    private const int MaxParenDepth = 1000;

    private static readonly SearchValues<char> BareStops = SearchValues.Create("\n \t\r\f\v;()\"\\");
    private static readonly SearchValues<char> QuotedStops = SearchValues.Create("\n\"\\");

    /// <summary>Short tokens repeat ("IN", "A", "3600"); one string each saves most token allocations.</summary>
    private readonly string?[] _shortTokens = new string?[1024];

    private readonly TextReader _reader;
    private readonly string? _file;
    private readonly char[] _buf = new char[8192];
    private int _pos;
    private int _len;
    private bool _eof;
    private char[] _token = new char[256];
    private int _tokenLength;
    private bool _tokenOverflow;
    private int _line = 1;
    private int _column = 1;
    private int _depth;
    private int _parenLine;
    private int _parenColumn;
    private int _entryChars;

    public ZoneTokenizer(TextReader reader, string? file = null)
    {
        _reader = reader;
        _file = file;
    }

    public string? File => _file;

    /// <summary>Line and column of the next character to be read.</summary>
    public int Line => _line;
    public int Column => _column;

    private int Peek()
    {
        if (_pos < _len) return _buf[_pos];
        if (_eof) return -1;
        _len = _reader.Read(_buf, 0, _buf.Length);
        _pos = 0;
        if (_len <= 0) { _len = 0; _eof = true; return -1; }
        return _buf[0];
    }

    private void Advance()
    {
        char c = _buf[_pos++];
        if (c == '\n') { _line++; _column = 1; }
        else _column++;
    }

    /// <summary>
    /// Reads the next entry into <paramref name="entry"/>. Returns false at the end of the input when
    /// no entry (and no error) is left. Blank and comment-only lines are skipped.
    /// </summary>
    public bool ReadEntry(ZoneEntry entry)
    {
        entry.Reset();
        _depth = 0;
        _entryChars = 0;
        bool lineStart = true;
        while (true)
        {
            int c = Peek();
            if (lineStart)
            {
                lineStart = false;
                // RFC 1035 §5.1: a line that starts with a blank continues the previous owner.
                if (_depth == 0 && entry.TokenList.Count == 0 && entry.Error is null)
                    entry.OwnerOmitted = c == ' ' || c == '\t';
            }
            if (c < 0)
            {
                if (_depth > 0)
                    SetError(entry, _parenLine, _parenColumn, "unclosed parenthesis: expected ')' before the end of the file");
                Finish(entry);
                return entry.TokenList.Count > 0 || entry.Error is not null;
            }
            switch (c)
            {
                case '\n':
                    if (_depth == 0 && (entry.TokenList.Count > 0 || entry.Error is not null))
                    {
                        Finish(entry);
                        Advance();
                        return true;
                    }
                    Advance();
                    lineStart = true;
                    continue;
                case ' ': case '\t': case '\r': case '\f': case '\v':
                    Advance();
                    continue;
                case ';':
                    // A comment runs to the end of the line, inside parentheses too; it is skipped, never held.
                    SkipComment();
                    continue;
                case '(':
                    if (_depth == 0) { _parenLine = _line; _parenColumn = _column; }
                    if (_depth == MaxParenDepth) SetError(entry, _line, _column, "parentheses nested too deeply");
                    else _depth++;
                    Advance();
                    continue;
                case ')':
                    if (_depth == 0) SetError(entry, _line, _column, "unmatched ')': no '(' is open");
                    else _depth--;
                    Advance();
                    continue;
                default:
                {
                    int line = _line, column = _column;
                    bool quoted = c == '"';
                    if (quoted) ReadQuoted(entry, line, column);
                    else ReadBare(entry);
                    AddToken(entry, quoted, line, column);
                    continue;
                }
            }
        }
    }

    private void Finish(ZoneEntry entry)
    {
        if (entry.TokenList.Count == 0)
        {
            entry.EndLine = _line;
            entry.EndColumn = _column;
        }
    }

    private void SetError(ZoneEntry entry, int line, int column, string problem)
    {
        entry.Error ??= new ZoneFormatException(_file, line, column, problem);
        entry.TokenList.Clear();
    }

    private void AddToken(ZoneEntry entry, bool quoted, int line, int column)
    {
        if (_tokenOverflow)
        {
            SetError(entry, line, column, $"token longer than {MaxTokenLength} characters");
            return;
        }
        if (entry.Error is not null) return;
        _entryChars += _tokenLength;
        if (_entryChars > MaxEntryLength || entry.TokenList.Count >= MaxEntryTokens)
        {
            // Most likely a missing ')': point at the '(' that swallowed the lines.
            if (_depth > 0)
                SetError(entry, _parenLine, _parenColumn, $"parenthesis not closed within {MaxEntryLength} characters or {MaxEntryTokens} tokens: expected ')'");
            else
                SetError(entry, line, column, $"entry longer than {MaxEntryLength} characters or {MaxEntryTokens} tokens");
            return;
        }
        entry.TokenList.Add(new ZoneToken(MakeString(), quoted, line, column));
        // "Found the end of the line" points just after the last token, not after a trailing comment.
        entry.EndLine = _line;
        entry.EndColumn = _column;
    }

    private string MakeString()
    {
        var span = _token.AsSpan(0, _tokenLength);
        if (span.Length > 6) return new string(span);
        int slot = string.GetHashCode(span) & (_shortTokens.Length - 1);
        var s = _shortTokens[slot];
        if (s is not null && span.SequenceEqual(s)) return s;
        s = new string(span);
        _shortTokens[slot] = s;
        return s;
    }

    private void Append(ReadOnlySpan<char> chars)
    {
        if (_tokenOverflow) return;
        int needed = _tokenLength + chars.Length;
        if (needed > _token.Length)
        {
            if (needed > MaxTokenLength) { _tokenOverflow = true; return; }
            Array.Resize(ref _token, Math.Min(Math.Max(_token.Length * 2, needed), MaxTokenLength));
        }
        chars.CopyTo(_token.AsSpan(_tokenLength));
        _tokenLength = needed;
    }

    /// <summary>Consumes up to the next of <paramref name="stops"/> within the buffer, appending it to the token.</summary>
    private void AppendUntil(SearchValues<char> stops)
    {
        while (true)
        {
            if (_pos >= _len && Peek() < 0) return;
            var span = _buf.AsSpan(_pos, _len - _pos);
            int n = span.IndexOfAny(stops);
            if (n < 0) n = span.Length;
            Append(span[..n]);
            _pos += n;
            _column += n; // stops include '\n', so no line ends are skipped here
            if (_pos < _len) return;
        }
    }

    private void Append(char c)
    {
        if (_tokenOverflow) return;
        if (_tokenLength == _token.Length)
        {
            if (_tokenLength >= MaxTokenLength) { _tokenOverflow = true; return; }
            Array.Resize(ref _token, Math.Min(_token.Length * 2, MaxTokenLength));
        }
        _token[_tokenLength++] = c;
    }

    private void StartToken()
    {
        _tokenLength = 0;
        _tokenOverflow = false;
        // Give back a buffer grown by one huge token so that it is not kept for the rest of the file.
        if (_token.Length > 4096) _token = new char[256];
    }

    private void SkipComment()
    {
        while (Peek() >= 0)
        {
            var span = _buf.AsSpan(_pos, _len - _pos);
            int n = span.IndexOf('\n');
            if (n >= 0) { _pos += n; _column += n; return; }
            _pos = _len;
            _column += span.Length;
        }
    }

    private void ReadQuoted(ZoneEntry entry, int line, int column)
    {
        StartToken();
        Advance(); // the opening quote
        while (true)
        {
            AppendUntil(QuotedStops);
            int c = Peek();
            if (c < 0 || c == '\n')
            {
                SetError(entry, line, column, "unterminated quoted string: expected '\"' before the end of the line");
                return;
            }
            Advance();
            if (c == '"') return;
            Append((char)c);
            if (c == '\\')
            {
                c = Peek();
                if (c < 0 || c == '\n') continue; // reported as unterminated on the next turn
                Advance();
                Append((char)c);
            }
        }
    }

    private void ReadBare(ZoneEntry entry)
    {
        StartToken();
        while (true)
        {
            AppendUntil(BareStops);
            int c = Peek();
            switch (c)
            {
                case -1: case '\n': case ' ': case '\t': case '\r': case '\f': case '\v':
                case ';': case '(': case ')': case '"':
                    return;
            }
            if (c == '\\')
            {
                int line = _line, column = _column;
                Advance();
                c = Peek();
                if (c < 0 || c == '\n')
                {
                    SetError(entry, line, column, "backslash at the end of a line: expected an escaped character");
                    return;
                }
                Append('\\');
            }
            Advance();
            Append((char)c);
        }
    }
}
