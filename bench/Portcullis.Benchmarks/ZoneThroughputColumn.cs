using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace Portcullis.Benchmarks;

/// <summary>
/// MB/s or records/s of one pass over the generated zone, from the mean time of the benchmark;
/// computed in the host process from the file the benchmark process read.
/// </summary>
public sealed class ZoneThroughputColumn(bool records) : IColumn
{
    public string Id => nameof(ZoneThroughputColumn) + (records ? ".Records" : ".MB");
    public string ColumnName => records ? "Records/s" : "MB/s";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => records ? 1 : 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => records
        ? "Records parsed per second (generated zone, one pass per operation)"
        : "Megabytes (10^6 octets) of zone text parsed per second";

    public bool IsAvailable(Summary summary) => true;
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) =>
        GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var stats = summary[benchmarkCase]?.ResultStatistics;
        if (stats is null) return "NA";
        int count = GeneratedZone.RecordCount;
        string path = GeneratedZone.PathFor(count);
        if (!File.Exists(path)) return "NA";
        double seconds = stats.Mean / 1e9;
        return records
            ? (count / seconds).ToString("N0", System.Globalization.CultureInfo.InvariantCulture)
            : (new FileInfo(path).Length / 1e6 / seconds).ToString("N1", System.Globalization.CultureInfo.InvariantCulture);
    }
}
