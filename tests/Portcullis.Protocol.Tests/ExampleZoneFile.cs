using System.Runtime.CompilerServices;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.ZoneText;

namespace Portcullis.Protocol.Tests;

/// <summary>The repository's zones/example.test.zone (the server's built-in default), found above the test sources.</summary>
internal static class ExampleZoneFile
{
    public static string Path([CallerFilePath] string here = "")
    {
        for (var dir = System.IO.Path.GetDirectoryName(here); dir is not null; dir = System.IO.Path.GetDirectoryName(dir))
        {
            var candidate = System.IO.Path.Combine(dir, "zones", "example.test.zone");
            if (File.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException("zones/example.test.zone not found above " + here);
    }

    /// <summary>Its records, read with <paramref name="origin"/> (example.test.).</summary>
    public static List<ResourceRecord> Records(DnsName origin)
    {
        using var reader = ZoneReader.Open(Path(), origin);
        return reader.ReadRecords().ToList();
    }
}
