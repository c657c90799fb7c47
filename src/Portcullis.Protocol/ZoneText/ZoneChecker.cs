using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;

namespace Portcullis.Protocol.ZoneText;

/// <summary>What <see cref="ZoneChecker"/> found: the zone's records in canonical order, or its errors.</summary>
public sealed class ZoneCheckResult
{
    internal ZoneCheckResult(DnsName origin, RecordClass @class)
    {
        Origin = origin;
        Class = @class;
    }

    public DnsName Origin { get; }
    public RecordClass Class { get; }

    /// <summary>The zone as built (even when there are errors; serve it only when <see cref="Ok"/>).</summary>
    public Zones.ZoneData? Data { get; internal set; }

    private IReadOnlyList<ResourceRecord>? _records;

    /// <summary>Records in <see cref="ZoneWriter.CanonicalOrder"/>, duplicates dropped, each RRset with one TTL (made on first use).</summary>
    public IReadOnlyList<ResourceRecord> Records => _records ??= Data is null ? [] : Data.CanonicalRecords().ToList();

    /// <summary>Every error: syntax errors in file order, then content errors.</summary>
    public List<ZoneFormatException> Errors { get; } = new();

    public List<ZoneWarning> Warnings { get; } = new();

    /// <summary>The SOA serial, when there is exactly one SOA at the apex.</summary>
    public uint? Serial { get; internal set; }

    /// <summary>Distinct owner names.</summary>
    public int NameCount { get; internal set; }

    public bool Ok => Errors.Count == 0;

    /// <summary>"example.test/IN", as named-checkzone names a zone.</summary>
    public string ZoneLabel
    {
        get
        {
            string name = Origin.ToString();
            if (name.Length > 1) name = name[..^1];
            return $"{name}/{RecordClasses.ToText(Class)}";
        }
    }
}

/// <summary>
/// The operator's check of a whole zone (as named-checkzone and kzonecheck do): the file must read
/// without errors, and the content pass the checks of <see cref="Zones.ZoneCompiler"/> (one SOA at the
/// apex, NS at the apex, nothing outside the zone, CNAME and DNAME rules, addresses of in-zone
/// targets, one TTL per RRset).
/// </summary>
public static class ZoneChecker
{
    /// <summary>Reads and checks the zone file at <paramref name="path"/>.</summary>
    public static ZoneCheckResult Check(string path, DnsName origin, ZoneReaderOptions? options = null)
    {
        options = new ZoneReaderOptions
        {
            CollectErrors = true,
            DefaultTtl = options?.DefaultTtl,
            Class = options?.Class ?? RecordClass.IN,
            MaxIncludeDepth = options?.MaxIncludeDepth ?? 8,
            BaseDirectory = options?.BaseDirectory,
            MaxGenerateRecords = options?.MaxGenerateRecords ?? 1 << 20,
            MaxErrors = options?.MaxErrors ?? 1000,
        };
        ZoneReader reader;
        try
        {
            reader = ZoneReader.Open(path, origin, options);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            var failed = new ZoneCheckResult(origin, options.Class);
            failed.Errors.Add(new ZoneFormatException(path, 0, 0, $"cannot open the zone file: {e.Message}"));
            return failed;
        }
        using (reader) return Check(reader, origin, options.Class, path, FileSize(path));
    }

    /// <summary>Checks the zone read by <paramref name="reader"/> (which should collect errors); <paramref name="textSize"/> is a size hint.</summary>
    public static ZoneCheckResult Check(ZoneReader reader, DnsName origin, RecordClass @class = RecordClass.IN, string? file = null,
        long textSize = 0) =>
        Zones.ZoneCompiler.Compile(reader, origin, @class, file, textSize);

    /// <summary>The size of a file, or 0 when it cannot be read.</summary>
    public static long FileSize(string path)
    {
        try { return new FileInfo(path).Length; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException) { return 0; }
    }
}
