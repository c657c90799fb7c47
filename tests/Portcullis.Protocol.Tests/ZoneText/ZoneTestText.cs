using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.ZoneText;

namespace Portcullis.Protocol.Tests.ZoneText;

/// <summary>Zone text in, records out as "owner ttl class type rdata" lines.</summary>
internal static class ZoneTestText
{
    public static readonly DnsName Origin = DnsName.Parse("example.test.");

    public static List<ResourceRecord> ReadAll(string zone, ZoneReaderOptions? options = null, string? file = "test.zone")
    {
        using var reader = new ZoneReader(new StringReader(zone), Origin, file, options);
        return reader.ReadRecords().ToList();
    }

    public static string[] Lines(string zone, ZoneReaderOptions? options = null) =>
        ReadAll(zone, options).Select(Line).ToArray();

    public static string Line(ResourceRecord r) => ZoneWriter.ToLine(r).Replace('\t', ' ');

    public static ZoneFormatException Error(string zone, ZoneReaderOptions? options = null)
    {
        using var reader = new ZoneReader(new StringReader(zone), Origin, "test.zone", options);
        return Assert.Throws<ZoneFormatException>(() => reader.ReadRecords().ToList());
    }

    /// <summary>A directory under the temp folder, deleted on dispose.</summary>
    public sealed class TempDirectory : IDisposable
    {
        public TempDirectory()
        {
            Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "portcullis-" + Guid.NewGuid().ToString("N"));
            Directory.CreateDirectory(Path);
        }

        public string Path { get; }

        public string Write(string relative, string text)
        {
            var full = System.IO.Path.Combine(Path, relative);
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
            File.WriteAllText(full, text);
            return full;
        }

        public void Dispose()
        {
            try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
        }
    }
}
