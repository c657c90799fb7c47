using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Portcullis.Protocol.Names;

namespace Portcullis.Server.Configuration;

/// <summary>
/// A root hints file in the format IANA publishes (named.root: zone-file lines, "OWNER [TTL] [IN]
/// TYPE RDATA", ';' comments): the NS records of the root and the A/AAAA records of those names.
/// Other records are ignored, as BIND and Unbound do; an NS name without an address is useless
/// for priming (RFC 8109 §3) and skipped.
/// </summary>
public static class RootHints
{
    /// <summary>Reads the file; a problem is a <see cref="ConfigException"/> with the file and line.</summary>
    public static IReadOnlyList<(DnsName Name, IPAddress Address)> Load(string path)
    {
        string[] lines;
        try { lines = File.ReadAllLines(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException($"{path}: cannot read the root hints: {e.Message}");
        }
        return Parse(lines, path);
    }

    public static IReadOnlyList<(DnsName Name, IPAddress Address)> Parse(IReadOnlyList<string> lines, string path)
    {
        var servers = new List<DnsName>();
        var addresses = new List<(DnsName Name, IPAddress Address)>();
        for (int i = 0; i < lines.Count; i++)
        {
            string line = lines[i];
            int comment = line.IndexOf(';');
            if (comment >= 0) line = line[..comment];
            var words = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (words.Length == 0) continue;
            string where = $"{path}:{i + 1}";
            if (words[0].StartsWith('$')) continue;   // $TTL and the like: nothing for hints
            if (char.IsWhiteSpace(lines[i][0]))
                throw new ConfigException($"{where}: every root hints line needs its owner name");
            int at = 1;
            if (at < words.Length && uint.TryParse(words[at], NumberStyles.None, CultureInfo.InvariantCulture, out _)) at++;
            if (at < words.Length && words[at].Equals("IN", StringComparison.OrdinalIgnoreCase)) at++;
            if (at + 2 != words.Length)
                throw new ConfigException($"{where}: expected OWNER [TTL] [IN] TYPE DATA");
            DnsName owner;
            try { owner = DnsName.Parse(Absolute(words[0])); }
            catch (FormatException e) { throw new ConfigException($"{where}: '{words[0]}': {e.Message}"); }
            string type = words[at].ToUpperInvariant(), data = words[at + 1];
            switch (type)
            {
                case "NS":
                    if (owner != DnsName.Root) throw new ConfigException($"{where}: NS records in root hints belong to the root (\".\"), not {owner}");
                    try { servers.Add(DnsName.Parse(Absolute(data))); }
                    catch (FormatException e) { throw new ConfigException($"{where}: '{data}': {e.Message}"); }
                    break;
                case "A" or "AAAA":
                    if (!IPAddress.TryParse(data, out var address)
                        || address.AddressFamily != (type == "A" ? AddressFamily.InterNetwork : AddressFamily.InterNetworkV6))
                        throw new ConfigException($"{where}: '{data}' is not an {(type == "A" ? "IPv4" : "IPv6")} address");
                    addresses.Add((owner, address));
                    break;
            }
        }
        if (servers.Count == 0) throw new ConfigException($"{path}: no NS records for the root: not a root hints file");
        var hints = addresses.Where(a => servers.Contains(a.Name)).ToList();
        if (hints.Count == 0) throw new ConfigException($"{path}: no address for any root server named by the NS records");
        return hints;
    }

    private static string Absolute(string name) => name.EndsWith('.') ? name : name + ".";
}
