using Portcullis.Protocol.Records;

namespace Portcullis.Protocol.ZoneText;

/// <summary>How a <see cref="ZoneReader"/> reads a zone file.</summary>
public sealed class ZoneReaderOptions
{
    /// <summary>Keep reading after an error (skipping the bad entry) and list every error in <see cref="ZoneReader.Errors"/>.</summary>
    public bool CollectErrors;

    /// <summary>A $TTL in force from the start of the file, as if the file began with one.</summary>
    public uint? DefaultTtl;

    /// <summary>The zone's class; a record that names another class is an error.</summary>
    public RecordClass Class = RecordClass.IN;

    /// <summary>How many $INCLUDEs may be nested.</summary>
    public int MaxIncludeDepth = 8;

    /// <summary>Where relative $INCLUDE paths of a file read from a TextReader without a path start (default: the current directory).</summary>
    public string? BaseDirectory;

    /// <summary>Most records one $GENERATE may produce (BIND has no limit; a range of 2^31 is not a zone).</summary>
    public int MaxGenerateRecords = 1 << 20;

    /// <summary>With <see cref="CollectErrors"/>: stop after this many errors.</summary>
    public int MaxErrors = 1000;
}

/// <summary>A place in a zone file: file (null for unnamed text), 1-based line and column.</summary>
public readonly record struct ZonePosition(string? File, int Line, int Column)
{
    /// <summary>"file:line:column", or just the file for findings about the whole zone (line 0).</summary>
    public override string ToString() => Line > 0 ? $"{File ?? "<input>"}:{Line}:{Column}" : File ?? "<input>";
}

/// <summary>Something worth telling the operator that does not stop the zone from loading.</summary>
public sealed record ZoneWarning(ZonePosition Position, string Problem)
{
    public override string ToString() => $"{Position}: warning: {Problem}";
}
