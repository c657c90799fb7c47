using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.ZoneText;
using Portcullis.Protocol.Zones;
using Portcullis.Server.Authoritative;

namespace Portcullis.Server.Hosting;

/// <summary>A zone that failed to load: the file and every problem, each with its position where known.</summary>
public sealed class ZoneLoadException : Exception
{
    public ZoneLoadException(string message) : base(message) { }
}

/// <summary>Reads zone files (or text) into checked <see cref="Zone"/>s.</summary>
public static class ZoneLoader
{
    public static LoadedZone Load(DnsName origin, string path)
    {
        using var reader = ZoneReader.Open(path, origin, new ZoneReaderOptions { CollectErrors = true });
        return Build(origin, reader, path, ZoneChecker.FileSize(path));
    }

    public static LoadedZone LoadText(DnsName origin, string text, string fileName)
    {
        using var reader = new ZoneReader(new StringReader(text), origin, fileName, new ZoneReaderOptions { CollectErrors = true });
        return Build(origin, reader, fileName);
    }

    /// <summary>
    /// Writes a file so that a crash leaves either the old file or the new one, whole: a temporary
    /// file beside it, flushed to disk, renamed over the old one.
    /// </summary>
    public static void WriteAtomically(string path, Action<TextWriter> write)
    {
        string temp = path + ".tmp";
        using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            using (var writer = new StreamWriter(stream, leaveOpen: true)) write(writer);
            stream.Flush(flushToDisk: true);
        }
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>The zone into its file (atomically), after a comment line saying where it came from.</summary>
    public static void Save(Zone zone, string file, string comment)
    {
        string? dir = Path.GetDirectoryName(Path.GetFullPath(file));
        if (dir is not null) Directory.CreateDirectory(dir);
        WriteAtomically(file, w =>
        {
            w.WriteLine($"; {comment}");
            ZoneWriter.Write(w, zone.Records());
        });
    }

    /// <summary>A zone from records (a transfer, a journal replay, an update), through the same checks as a zone file.</summary>
    public static Zone FromRecords(DnsName origin, IEnumerable<ResourceRecord> records, string fileName)
    {
        var compiler = new ZoneCompiler(origin, RecordClass.IN, fileName);
        var position = new ZonePosition(fileName, 0, 0);
        foreach (var r in records) compiler.Add(r, position);
        var result = compiler.Finish();
        if (!result.Ok) throw new ZoneLoadException(string.Join("; ", result.Errors.Take(5).Select(e => e.Problem)));
        return new Zone(result.Data!);
    }

    private static LoadedZone Build(DnsName origin, ZoneReader reader, string fileName, long textSize = 0)
    {
        ZoneCheckResult checkedZone;
        try
        {
            // The same checks as `portcullis zone check`, so errors carry file, line and column; the
            // check builds the served structure as it goes.
            checkedZone = ZoneChecker.Check(reader, origin, RecordClass.IN, fileName, textSize);
        }
        catch (IOException e)
        {
            throw new ZoneLoadException($"{fileName}: {e.Message}");
        }
        if (!checkedZone.Ok)
            throw new ZoneLoadException(string.Join(Environment.NewLine, checkedZone.Errors.Select(e => e.Line > 0 ? e.Message : $"{fileName}: {e.Problem}")));
        return new LoadedZone(new Zone(checkedZone.Data!), checkedZone.Warnings.Select(w => w.ToString()).ToArray());
    }
}

/// <summary>A zone and the warnings its load gave (missing glue, TTL mismatches).</summary>
public sealed record LoadedZone(Zone Zone, IReadOnlyList<string> Warnings);
