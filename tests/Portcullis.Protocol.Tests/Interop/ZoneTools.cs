using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.ZoneText;

using Portcullis.Testing;

namespace Portcullis.Protocol.Tests.Interop;

/// <summary>A zone-file line a tool cannot read, matched by <see cref="Pattern"/>, and why.</summary>
public sealed record UnsupportedLine(string Pattern, string Why)
{
    public bool Matches(string line) => Regex.IsMatch(line, Pattern);
}

/// <summary>
/// A copy of an Interop/Data zone file (and the files it includes) in a temporary directory, with
/// the lines a given tool cannot read removed, so that the tool and Portcullis read the same text.
/// </summary>
public sealed class PreparedZone : IDisposable
{
    public PreparedZone(string fileName, string origin, IReadOnlyList<UnsupportedLine> unsupported)
    {
        Origin = origin;
        Directory = System.IO.Directory.CreateTempSubdirectory("portcullis-zone-").FullName;
        foreach (var source in System.IO.Directory.GetFiles(InteropData.Directory, "*.zone"))
        {
            var kept = File.ReadAllLines(source).Where(l => !unsupported.Any(u => u.Matches(l)));
            File.WriteAllLines(System.IO.Path.Combine(Directory, System.IO.Path.GetFileName(source)), kept);
        }
        FileName = fileName;
        Path = System.IO.Path.Combine(Directory, fileName);
    }

    public string Directory { get; }
    public string FileName { get; }
    public string Path { get; }
    public string Origin { get; }

    /// <summary>The records as Portcullis reads them (errors throw, naming file, line and column).</summary>
    public List<ResourceRecord> ReadWithPortcullis()
    {
        using var reader = ZoneReader.Open(Path, DnsName.Parse(Origin));
        return reader.ReadRecords().ToList();
    }

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // Left in the temp directory; harmless.
        }
    }
}

/// <summary>One record line a tool printed, and the record Portcullis reads from that line.</summary>
public sealed record PrintedRecord(string Line, ResourceRecord Record);

/// <summary>The Debian zone tools, run on a <see cref="PreparedZone"/>, and their output read back.</summary>
public static class ZoneTools
{
    /// <summary>
    /// <c>named-compilezone -s full -i none -k ignore -o - ORIGIN FILE</c>: the zone as BIND loads
    /// it, one record per line with absolute names. <c>-i none</c> skips BIND's post-load checks
    /// (MX/SRV targets and glue that exist), <c>-k ignore</c> its host-name character checks: the test
    /// zones exercise syntax, not a working delegation. Run in the zone's directory, where BIND
    /// resolves $INCLUDE.
    /// </summary>
    public static ProcessResult NamedCompilezone(PreparedZone zone) =>
        ExternalProcess.Run("named-compilezone",
            ["-s", "full", "-i", "none", "-k", "ignore", "-o", "-", zone.Origin, zone.FileName],
            workingDirectory: zone.Directory).EnsureSuccess();

    /// <summary><c>ldns-read-zone FILE</c> (its origin comes from the file's $ORIGIN).</summary>
    public static ProcessResult LdnsReadZone(PreparedZone zone, bool unknownFormat = false) =>
        ExternalProcess.Run("ldns-read-zone",
            unknownFormat ? ["-U", "NULL", zone.FileName] : [zone.FileName],
            workingDirectory: zone.Directory).EnsureSuccess();

    /// <summary>
    /// BIND's own wire form of one record's RDATA: <c>named-rrchecker -u</c> reads "CLASS TYPE
    /// RDATA" and prints it in RFC 3597 form (<c>CLASS1 TYPE15 \# 21 000A...</c>).
    /// </summary>
    public static byte[] NamedRrcheckerWire(RecordClass @class, RecordType type, string rdataText)
    {
        string input = $"{RecordClasses.ToText(@class)} {RecordTypes.ToText(type)} {rdataText}\n";
        var result = ExternalProcess.Run("named-rrchecker", ["-u"], standardInput: input).EnsureSuccess();
        var fields = result.Stdout.Split((char[])[' ', '\t', '\n'], StringSplitOptions.RemoveEmptyEntries);
        int marker = Array.IndexOf(fields, "\\#");
        if (marker < 0 || marker + 1 >= fields.Length)
            throw new InvalidOperationException($"named-rrchecker printed no RFC 3597 form for `{input.Trim()}`: {result.Stdout}");
        int length = int.Parse(fields[marker + 1], CultureInfo.InvariantCulture);
        byte[] data = Convert.FromHexString(string.Concat(fields.Skip(marker + 2)));
        if (data.Length != length) throw new InvalidOperationException($"named-rrchecker: length {length} but {data.Length} octets: {result.Stdout}");
        return data;
    }

    /// <summary>Record lines of a tool's zone output (comments and blank lines dropped).</summary>
    public static IEnumerable<string> RecordLines(string output) =>
        output.Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.Trim().Length > 0 && !l.TrimStart().StartsWith(';'));

    /// <summary>Each line of a tool's output read with Portcullis' zone reader, one line at a time.</summary>
    public static List<PrintedRecord> ReadPrinted(string output, string tool)
    {
        var records = new List<PrintedRecord>();
        foreach (var line in RecordLines(output))
        {
            using var reader = new ZoneReader(new StringReader(line), DnsName.Root, tool);
            var read = reader.ReadRecords().ToList();
            if (read.Count != 1) throw new InvalidOperationException($"{tool} line read as {read.Count} records: {line}");
            records.Add(new PrintedRecord(line, read[0]));
        }
        return records;
    }

    /// <summary>
    /// Lines of <c>ldns-read-zone -U NULL</c> (every record in RFC 3597 form, so ldns' own RDATA
    /// bytes), read without Portcullis' RDATA parser: owner, TTL, CLASSn, TYPEn, <c>\#</c>, length, hex.
    /// </summary>
    public static List<ResourceRecord> ReadUnknownFormat(string output)
    {
        var records = new List<ResourceRecord>();
        foreach (var line in RecordLines(output))
        {
            var f = line.Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (f.Length < 6 || f[4] != "\\#") throw new InvalidOperationException($"not in RFC 3597 form: {line}");
            if (!RecordClasses.TryParse(f[2], out var cls) || !RecordTypes.TryParse(f[3], out var type))
                throw new InvalidOperationException($"unknown class or type: {line}");
            byte[] data = Convert.FromHexString(string.Concat(f.Skip(6)));
            if (data.Length != int.Parse(f[5], CultureInfo.InvariantCulture)) throw new InvalidOperationException($"length mismatch: {line}");
            records.Add(new ResourceRecord(DnsName.Parse(f[0]), type, cls, uint.Parse(f[1], CultureInfo.InvariantCulture), data));
        }
        return records;
    }

    /// <summary>
    /// A record in canonical wire form (RFC 4034 §6.2: owner lower-cased, names in RDATA lower-cased
    /// for the listed types) with its TTL, as one comparable string; <see cref="Describe"/> says it
    /// in words for failure messages.
    /// </summary>
    public static string CanonicalKey(ResourceRecord r)
    {
        var sb = new StringBuilder();
        sb.Append(Convert.ToHexString(r.Owner.ToLowerInvariant().Wire)).Append(' ')
          .Append((ushort)r.Type).Append(' ').Append((ushort)r.Class).Append(' ').Append(r.Ttl).Append(' ')
          .Append(Convert.ToHexString(RdataWire.ToCanonical(r.Type, r.Data)));
        return sb.ToString();
    }

    public static string Describe(ResourceRecord r) =>
        $"{r.Owner} {r.Ttl} {RecordClasses.ToText(r.Class)} {RecordTypes.ToText(r.Type)} \\# {r.Data.Length} {Convert.ToHexString(r.Data)}";

    /// <summary>Fails with both sides' extra records listed when the two sets differ.</summary>
    public static void AssertSameRecordSets(IEnumerable<ResourceRecord> portcullis, IEnumerable<ResourceRecord> tool, string toolName, string zone)
    {
        var ours = portcullis.GroupBy(CanonicalKey).ToDictionary(g => g.Key, g => g.First());
        var theirs = tool.GroupBy(CanonicalKey).ToDictionary(g => g.Key, g => g.First());
        var onlyOurs = ours.Keys.Except(theirs.Keys).Select(k => "  Portcullis only: " + Describe(ours[k])).ToList();
        var onlyTheirs = theirs.Keys.Except(ours.Keys).Select(k => $"  {toolName} only: " + Describe(theirs[k])).ToList();
        if (onlyOurs.Count + onlyTheirs.Count > 0)
            Assert.Fail($"{zone}: Portcullis and {toolName} read different records ({ours.Count} vs {theirs.Count}):\n"
                + string.Join('\n', onlyOurs.Concat(onlyTheirs)));
    }

    /// <summary>Whitespace runs to one space, ends trimmed: the tools align columns differently.</summary>
    public static string NormaliseSpace(string line) => Regex.Replace(line.Trim(), @"\s+", " ");
}
