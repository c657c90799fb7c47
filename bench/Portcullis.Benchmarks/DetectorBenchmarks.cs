using BenchmarkDotNet.Attributes;
using Portcullis.Protocol.Records;
using Portcullis.Server.Detection;

namespace Portcullis.Benchmarks;

/// <summary>
/// The tunnel detector (docs/detection.md): <c>Observe</c> per query on the event hub's thread, over
/// 4,096 names under 2,048 registered domains (tables warm, so it measures the steady state:
/// PSL lookup, allow-list, lexical features, three keyed hashes, two table updates with HLL), and
/// the query path's <c>DetectorActions.Check</c> with nothing blocked and with 1,000 blocked
/// domains. Both must allocate nothing.
/// </summary>
[MemoryDiagnoser]
public class DetectorBenchmarks
{
    private TunnelDetector _detector = null!;
    private byte[][] _names = [];
    private readonly byte[] _client = [10, 0, 0, 7];
    private long _ticks;
    private int _next;
    private DetectorActions _none = null!, _thousand = null!;
    private byte[] _query = [];

    [GlobalSetup]
    public void Setup()
    {
        var psl = PublicSuffixList.Load(PublicSuffixList.DebianPath);
        _detector = new TunnelDetector(new DetectorOptions(), psl, hashSeed: 1);
        var r = new Random(1);
        _names = Enumerable.Range(0, 4096).Select(i => i % 4 == 0
            ? QueryLogFormat.NameToWire($"{Convert.ToHexString(Enumerable.Range(0, 24).Select(_ => (byte)r.Next(256)).ToArray()).ToLowerInvariant()}.x{i % 2048}.example.co.uk.")
            : QueryLogFormat.NameToWire($"www.site{i % 2048}.com.")).ToArray();
        _ticks = new DateTime(2026, 11, 30, 0, 0, 0, DateTimeKind.Utc).Ticks;
        foreach (var n in _names) _detector.Observe(_ticks += 1000, _client, n, RecordType.A, 40, 60);
        _none = new DetectorActions();
        _thousand = new DetectorActions();
        for (int i = 0; i < 1000; i++)
            _thousand.AddDomain(QueryLogFormat.NameToWire($"blocked{i}.com."), DetectorAction.Block, _ticks, long.MaxValue);
        _query = QueryLogFormat.NameToWire("www.site17.com.");
    }

    [Benchmark]
    public void Observe()
    {
        var n = _names[_next++ & 4095];
        _detector.Observe(_ticks += 1000, _client, n, RecordType.A, 40, 60);
    }

    [Benchmark]
    public bool CheckNothingBlocked() => _none.IsBlocked(_query, _client, _ticks);

    [Benchmark]
    public bool CheckThousandBlocked() => _thousand.IsBlocked(_query, _client, _ticks);
}
