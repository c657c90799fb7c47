namespace Portcullis.Protocol.ZoneText;

/// <summary>
/// One token of a zone file's RDATA as written: the raw text with escapes still in it (a quoted
/// token without its quotes), whether it was quoted, and where it stands (1-based line and column).
/// </summary>
public readonly record struct ZoneToken(string Text, bool Quoted, int Line, int Column)
{
    public static ZoneToken Bare(string text) => new(text, false, 0, 0);
    public static ZoneToken QuotedText(string text) => new(text, true, 0, 0);
}

/// <summary>A zone-file error with its position: file, line, column and what was expected.</summary>
public sealed class ZoneFormatException : DnsFormatException
{
    public ZoneFormatException(string? file, int line, int column, string problem)
        : base($"{file ?? "<input>"}:{line}:{column}: {problem}")
    {
        File = file;
        Line = line;
        Column = column;
        Problem = problem;
    }

    public string? File { get; }
    public int Line { get; }
    public int Column { get; }
    public string Problem { get; }
}
