using Portcullis.Protocol.ZoneText;

namespace Portcullis.Protocol.Records.Text;

/// <summary>
/// A cursor over the RDATA tokens of one record, which turns every problem into a
/// <see cref="ZoneFormatException"/> at the offending token (or just past the last one when a
/// token is missing).
/// </summary>
internal sealed class RdataTokenReader
{
    private readonly IReadOnlyList<ZoneToken> _tokens;
    private int _index;

    public RdataTokenReader(IReadOnlyList<ZoneToken> tokens, string? file)
    {
        _tokens = tokens;
        File = file;
    }

    public string? File { get; }

    public bool AtEnd => _index >= _tokens.Count;

    public int Count => _tokens.Count;

    /// <summary>The next token, without consuming it.</summary>
    public ZoneToken Peek() => _tokens[_index];

    /// <summary>Consumes the next token; <paramref name="expected"/> names what was wanted if there is none.</summary>
    public ZoneToken Next(string expected)
    {
        if (AtEnd) throw Missing(expected);
        return _tokens[_index++];
    }

    /// <summary>The error for a token that ought to be there but is not.</summary>
    public ZoneFormatException Missing(string expected)
    {
        if (_tokens.Count == 0) return new ZoneFormatException(File, 0, 0, $"expected {expected}, found end of RDATA");
        var last = _tokens[^1];
        // Point just past the last token: that is where the missing one belongs.
        int width = last.Text.Length + (last.Quoted ? 2 : 0);
        return new ZoneFormatException(File, last.Line, last.Column + width, $"expected {expected}, found end of RDATA");
    }

    public ZoneFormatException Error(ZoneToken token, string problem) =>
        new(File, token.Line, token.Column, problem);

    /// <summary>"expected X, found 'Y'" at <paramref name="token"/>.</summary>
    public ZoneFormatException Expected(ZoneToken token, string expected) =>
        Error(token, $"expected {expected}, found {Show(token)}");

    /// <summary>The remaining tokens, consumed.</summary>
    public List<ZoneToken> TakeRest()
    {
        var rest = new List<ZoneToken>(Math.Max(0, _tokens.Count - _index));
        while (_index < _tokens.Count) rest.Add(_tokens[_index++]);
        return rest;
    }

    /// <summary>Fails on the first token left over.</summary>
    public void ExpectEnd()
    {
        if (!AtEnd) throw Expected(_tokens[_index], "end of RDATA");
    }

    /// <summary>The token as it was written, for messages (long tokens shortened).</summary>
    public static string Show(ZoneToken token)
    {
        string text = token.Text.Length > 60 ? token.Text[..57] + "..." : token.Text;
        return token.Quoted ? $"\"{text}\"" : $"'{text}'";
    }
}
