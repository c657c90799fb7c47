using System.Text;
using Portcullis.Protocol.ZoneText;

namespace Portcullis.Protocol.Tests.Rdata;

/// <summary>
/// Splits one line of RDATA into zone tokens the way a zone-file lexer does: whitespace separates,
/// a token that starts with '"' is quoted (returned without its quotes), a quote inside a token
/// (alpn="h2 h3") runs to its closing quote, escapes are kept raw. Columns are 1-based.
/// </summary>
internal static class RdataTokens
{
    public static List<ZoneToken> Split(string text, int line = 1)
    {
        var tokens = new List<ZoneToken>();
        int i = 0;
        while (i < text.Length)
        {
            if (char.IsWhiteSpace(text[i])) { i++; continue; }
            int start = i;
            var sb = new StringBuilder();
            if (text[i] == '"')
            {
                i++;
                while (i < text.Length && text[i] != '"')
                {
                    if (text[i] == '\\' && i + 1 < text.Length) sb.Append(text[i++]);
                    sb.Append(text[i++]);
                }
                if (i >= text.Length) throw new ArgumentException("unterminated quote in test input");
                i++;
                tokens.Add(new ZoneToken(sb.ToString(), true, line, start + 1));
                continue;
            }
            bool inQuotes = false;
            while (i < text.Length && (inQuotes || !char.IsWhiteSpace(text[i])))
            {
                if (text[i] == '\\' && i + 1 < text.Length) { sb.Append(text[i++]); sb.Append(text[i++]); continue; }
                if (text[i] == '"') inQuotes = !inQuotes;
                sb.Append(text[i++]);
            }
            tokens.Add(new ZoneToken(sb.ToString(), false, line, start + 1));
        }
        return tokens;
    }
}
