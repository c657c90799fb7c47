using Portcullis.Protocol;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.ZoneText;
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
        return Build(origin, reader, path);
    }

    public static LoadedZone LoadText(DnsName origin, string text, string fileName)
    {
        using var reader = new ZoneReader(new StringReader(text), origin, fileName, new ZoneReaderOptions { CollectErrors = true });
        return Build(origin, reader, fileName);
    }

    private static LoadedZone Build(DnsName origin, ZoneReader reader, string fileName)
    {
        var builder = new ZoneBuilder(origin);
        try
        {
            foreach (var record in reader.ReadRecords()) builder.Add(record);
        }
        catch (DnsFormatException e)
        {
            throw new ZoneLoadException(e.Message);
        }
        catch (IOException e)
        {
            throw new ZoneLoadException($"{fileName}: {e.Message}");
        }
        if (reader.Errors.Count > 0)
            throw new ZoneLoadException(string.Join(Environment.NewLine, reader.Errors.Select(e => e.Message)));
        var zone = builder.Build();
        if (zone is null)
            throw new ZoneLoadException(string.Join(Environment.NewLine,
                builder.Issues.Where(i => i.IsError).Select(i => $"{fileName}: zone {origin}: {i}")));
        return new LoadedZone(zone, builder.Issues.Where(i => !i.IsError).Select(i => $"{fileName}: zone {origin}: {i}").ToArray());
    }
}

/// <summary>A zone and the warnings its load gave (missing glue, TTL mismatches).</summary>
public sealed record LoadedZone(Zone Zone, IReadOnlyList<string> Warnings);
