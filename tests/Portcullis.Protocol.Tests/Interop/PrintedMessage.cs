using System.Globalization;

namespace Portcullis.Protocol.Tests.Interop;

/// <summary>
/// A DNS message as dig or kdig printed it: header fields, EDNS, and each section's lines in
/// presentation format. The tests decode the captured bytes with Portcullis and compare.
/// </summary>
public sealed class PrintedMessage
{
    public bool IsResponse { get; set; }
    public string Opcode { get; set; } = "";
    public string Status { get; set; } = "";
    public ushort Id { get; set; }
    public List<string> Flags { get; } = [];
    public int QuestionCount { get; set; }
    public int AnswerCount { get; set; }
    public int AuthorityCount { get; set; }
    public int AdditionalCount { get; set; }
    public PrintedEdns? Edns { get; set; }
    public List<string> Question { get; } = [];
    public List<string> Answer { get; } = [];
    public List<string> Authority { get; } = [];
    public List<string> Additional { get; } = [];

    public List<string>? Section(string name) => name switch
    {
        "QUESTION" => Question,
        "ANSWER" => Answer,
        "AUTHORITY" => Authority,
        "ADDITIONAL" => Additional,
        _ => null,
    };
}

/// <summary>The OPT pseudo-section as printed: options by the tool's own names, values as printed.</summary>
public sealed class PrintedEdns
{
    public int Version { get; set; }
    public List<string> Flags { get; } = [];
    public int UdpSize { get; set; }
    public string? ExtendedRcode { get; set; }
    public List<KeyValuePair<string, string>> Options { get; } = [];

    public string? Option(string name) =>
        Options.FirstOrDefault(o => o.Key == name) is { Key: not null } o ? o.Value : null;
}

/// <summary>Reads dig 9.18's <c>+yaml</c> output (with <c>+qr</c>, queries too).</summary>
public static class DigYaml
{
    public static List<PrintedMessage> Parse(string yaml)
    {
        var messages = new List<PrintedMessage>();
        PrintedMessage? current = null;
        List<string>? section = null;
        bool inEdns = false;
        foreach (var raw in yaml.Split('\n'))
        {
            string line = raw.TrimEnd('\r');
            string trimmed = line.Trim();
            if (trimmed.Length == 0) continue;
            if (trimmed is "query_message_data:" or "response_message_data:")
            {
                current = new PrintedMessage { IsResponse = trimmed.StartsWith("response", StringComparison.Ordinal) };
                messages.Add(current);
                section = null;
                inEdns = false;
                continue;
            }
            if (current is null) continue;
            if (trimmed.StartsWith("- ", StringComparison.Ordinal))
            {
                if (trimmed == "- type: MESSAGE") { current = null; continue; }
                section?.Add(Unquote(trimmed[2..]));
                continue;
            }
            int colon = trimmed.IndexOf(':');
            if (colon < 0) continue;
            string key = trimmed[..colon];
            string value = trimmed[(colon + 1)..].Trim();
            if (key.EndsWith("_SECTION", StringComparison.Ordinal))
            {
                section = current.Section(key[..^"_SECTION".Length]);
                inEdns = false;
                continue;
            }
            section = null;
            if (key == "OPT_PSEUDOSECTION") continue;
            if (key == "EDNS") { current.Edns = new PrintedEdns(); inEdns = true; continue; }
            if (inEdns && current.Edns is { } edns)
            {
                switch (key)
                {
                    case "version": edns.Version = int.Parse(value, CultureInfo.InvariantCulture); break;
                    case "flags": edns.Flags.AddRange(value.Split(' ', StringSplitOptions.RemoveEmptyEntries)); break;
                    case "udp": edns.UdpSize = int.Parse(value, CultureInfo.InvariantCulture); break;
                    default: edns.Options.Add(new(key, value)); break;
                }
                continue;
            }
            switch (key)
            {
                case "opcode": current.Opcode = value; break;
                case "status": current.Status = value; break;
                case "id": current.Id = ushort.Parse(value, CultureInfo.InvariantCulture); break;
                case "flags": current.Flags.AddRange(value.Split(' ', StringSplitOptions.RemoveEmptyEntries)); break;
                case "QUESTION": current.QuestionCount = int.Parse(value, CultureInfo.InvariantCulture); break;
                case "ANSWER": current.AnswerCount = int.Parse(value, CultureInfo.InvariantCulture); break;
                case "AUTHORITY": current.AuthorityCount = int.Parse(value, CultureInfo.InvariantCulture); break;
                case "ADDITIONAL": current.AdditionalCount = int.Parse(value, CultureInfo.InvariantCulture); break;
            }
        }
        return messages;
    }

    /// <summary>A YAML single-quoted scalar: the quotes removed, '' back to '.</summary>
    private static string Unquote(string item) =>
        item.Length >= 2 && item[0] == '\'' && item[^1] == '\'' ? item[1..^1].Replace("''", "'") : item;
}

/// <summary>Reads kdig 3.2's default text output (with <c>+qr</c>, the query first).</summary>
public static class KdigText
{
    public static List<PrintedMessage> Parse(string text)
    {
        var messages = new List<PrintedMessage>();
        PrintedMessage? current = null;
        List<string>? section = null;
        foreach (var raw in text.Split('\n'))
        {
            string line = raw.TrimEnd('\r');
            if (line.StartsWith(";; ->>HEADER<<- ", StringComparison.Ordinal))
            {
                current = new PrintedMessage();
                messages.Add(current);
                section = null;
                foreach (var (key, value) in Pairs(line[";; ->>HEADER<<- ".Length..]))
                {
                    if (key == "opcode") current.Opcode = value;
                    else if (key == "status") current.Status = value;
                    else if (key == "id") current.Id = ushort.Parse(value, CultureInfo.InvariantCulture);
                }
                continue;
            }
            if (current is null) continue;
            if (line.Length == 0) { section = null; continue; }
            if (line.StartsWith(";; Flags:", StringComparison.Ordinal))
            {
                foreach (var (key, value) in Pairs(line[3..]))
                {
                    switch (key)
                    {
                        case "Flags": current.Flags.AddRange(value.Split(' ', StringSplitOptions.RemoveEmptyEntries)); break;
                        case "QUERY": current.QuestionCount = int.Parse(value, CultureInfo.InvariantCulture); break;
                        case "ANSWER": current.AnswerCount = int.Parse(value, CultureInfo.InvariantCulture); break;
                        case "AUTHORITY": current.AuthorityCount = int.Parse(value, CultureInfo.InvariantCulture); break;
                        case "ADDITIONAL": current.AdditionalCount = int.Parse(value, CultureInfo.InvariantCulture); break;
                    }
                }
                current.IsResponse = current.Flags.Contains("qr");
                continue;
            }
            if (line == ";; EDNS PSEUDOSECTION:") { current.Edns = new PrintedEdns(); section = null; continue; }
            if (line.StartsWith(";; Version:", StringComparison.Ordinal) && current.Edns is { } edns)
            {
                foreach (var (key, value) in Pairs(line[3..]))
                {
                    switch (key)
                    {
                        case "Version": edns.Version = int.Parse(value, CultureInfo.InvariantCulture); break;
                        case "flags": edns.Flags.AddRange(value.Split(' ', StringSplitOptions.RemoveEmptyEntries)); break;
                        case "UDP size": edns.UdpSize = int.Parse(value.Split(' ')[0], CultureInfo.InvariantCulture); break;
                        case "ext-rcode": edns.ExtendedRcode = value; break;
                    }
                }
                continue;
            }
            if (line.EndsWith(" SECTION:", StringComparison.Ordinal) && line.StartsWith(";; ", StringComparison.Ordinal))
            {
                section = current.Section(line[3..^" SECTION:".Length]);
                continue;
            }
            if (section is not null)
            {
                // The question is printed as a comment: ";; name  IN  TYPE".
                section.Add(section == current.Question ? line.TrimStart(';', ' ') : line);
                continue;
            }
            if (line.StartsWith(";; ", StringComparison.Ordinal) && current.Edns is { } e && !line.StartsWith(";; Received", StringComparison.Ordinal)
                && !line.StartsWith(";; Sent", StringComparison.Ordinal) && !line.StartsWith(";; Time", StringComparison.Ordinal)
                && !line.StartsWith(";; From", StringComparison.Ordinal) && !line.StartsWith(";; To", StringComparison.Ordinal))
            {
                int colon = line.IndexOf(':');
                if (colon > 3) e.Options.Add(new(line[3..colon], line[(colon + 1)..].Trim()));
            }
        }
        return messages;
    }

    /// <summary>"a: 1; b: 2" → (a, 1), (b, 2).</summary>
    private static IEnumerable<(string Key, string Value)> Pairs(string text)
    {
        foreach (var part in text.Split(';'))
        {
            int colon = part.IndexOf(':');
            if (colon < 0) continue;
            yield return (part[..colon].Trim(), part[(colon + 1)..].Trim());
        }
    }
}
