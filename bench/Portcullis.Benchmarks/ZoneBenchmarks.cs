using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.ZoneText;

namespace Portcullis.Benchmarks;

/// <summary>
/// Zone-file reading throughput on a generated zone (1,000,000 records unless
/// PORTCULLIS_BENCH_ZONE_RECORDS says otherwise), streamed from disk as a server loads it; the
/// MB/s and Records/s columns are computed from the mean time of one pass.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(ThroughputConfig))]
public class ZoneBenchmarks
{
    private sealed class ThroughputConfig : ManualConfig
    {
        public ThroughputConfig()
        {
            AddColumn(new ZoneThroughputColumn(records: false), new ZoneThroughputColumn(records: true));
        }
    }

    private string _path = "";
    private int _records;
    private DnsName _origin = DnsName.Root;

    [GlobalSetup]
    public void Setup()
    {
        _records = GeneratedZone.RecordCount;
        _path = GeneratedZone.Ensure(_records);
        _origin = DnsName.Parse(GeneratedZone.Origin);
        int read = ZoneParse();
        if (read != _records) throw new InvalidOperationException($"the generated zone read as {read} records, not {_records}");
        Console.WriteLine($"// ZoneParse input: {_path}, {new FileInfo(_path).Length:N0} octets, {_records:N0} records");
    }

    [Benchmark]
    public int ZoneParse()
    {
        using var reader = ZoneReader.Open(_path, _origin);
        int count = 0;
        foreach (var _ in reader.ReadRecords()) count++;
        return count;
    }
}
