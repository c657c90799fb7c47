using BenchmarkDotNet.Attributes;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.Wire;
using Portcullis.Server.Resolution;

namespace Portcullis.Benchmarks;

/// <summary>
/// A resolver cache hit as the receive thread would do it, from query bytes to response bytes:
/// header and question read, question written, <see cref="IRecursion.TryAnswerFromCache"/>, OPT
/// appended. The cache holds 100,000 RRsets (so the hash table is not a toy); compare with
/// <see cref="AnswerBenchmarks.Exact"/> (the authoritative path for the same shape of answer).
/// Every case must allocate nothing.
/// </summary>
[MemoryDiagnoser]
public class CacheBenchmarks
{
    private IterativeResolver _resolver = null!;
    private byte[] _response = [];
    private byte[] _hit = [], _cname = [], _nxdomain = [], _miss = [], _signed = [];

    [GlobalSetup]
    public void Setup()
    {
        _resolver = new IterativeResolver(new ResolverOptions { CacheBytes = 256L << 20 });
        var cache = _resolver.Cache;
        for (int i = 0; i < 100_000; i++)
        {
            var name = DnsName.Parse($"h{i}.bench.test.");
            cache.AddRRset([new ResourceRecord(name, RecordType.A, RecordClass.IN, 3600, [10, (byte)(i >> 16), (byte)(i >> 8), (byte)i])], TrustRank.AuthAnswer);
        }
        cache.AddRRset([new ResourceRecord(DnsName.Parse("alias.bench.test."), RecordType.CNAME, RecordClass.IN, 3600,
            DnsName.Parse("h4242.bench.test.").Wire.ToArray())], TrustRank.AuthAnswer);
        var soa = new ResourceRecord(DnsName.Parse("bench.test."), RecordType.SOA, RecordClass.IN, 3600,
            [.. DnsName.Parse("ns1.bench.test.").Wire, .. DnsName.Parse("hostmaster.bench.test.").Wire, 0, 0, 0, 1, 0, 0, 28, 32, 0, 0, 14, 16, 0, 18, 117, 0, 0, 0, 1, 44]);
        cache.AddNegative(DnsName.Parse("nope.bench.test."), RecordType.A, RecordClass.IN, true, soa, TrustRank.AuthAuthority);
        // A validated RRset with its RRSIG (ECDSA P-256 size), answered to a DO=1 client with AD.
        var signedName = DnsName.Parse("signed.bench.test.");
        cache.AddRRset([new ResourceRecord(signedName, RecordType.A, RecordClass.IN, 3600, [10, 9, 9, 9])], TrustRank.AuthAnswer, ValidationState.Secure,
            [new ResourceRecord(signedName, RecordType.RRSIG, RecordClass.IN, 3600, [0, 1, 13, 3, 0, 0, 14, 16, .. new byte[12], .. DnsName.Parse("bench.test.").Wire, .. new byte[64]])]);
        _response = new byte[65535];
        _hit = Query("h4242.bench.test.");
        _cname = Query("alias.bench.test.");
        _nxdomain = Query("nope.bench.test.");
        _miss = Query("absent.bench.test.");
        _signed = Query("signed.bench.test.", dnssecOk: true);
    }

    private static byte[] Query(string name, bool dnssecOk = false)
    {
        var q = DnsMessage.CreateQuery(DnsName.Parse(name), RecordType.A, id: 4242);
        q.Edns = new Edns { UdpPayloadSize = 1232, DnssecOk = dnssecOk };
        return q.ToWire();
    }

    private int Answer(byte[] query, bool dnssecOk = false)
    {
        var reader = new DnsMessageReader(query);
        Span<byte> name = stackalloc byte[DnsName.MaxLength];
        reader.TryReadQuestion(name, out int len, out var type, out var cls);
        var w = new DnsMessageWriter(_response);
        w.Limit(1232);
        w.Header.Id = reader.Header.Id;
        w.Header.IsResponse = true;
        w.Header.RecursionDesired = true;
        w.Header.RecursionAvailable = true;
        w.TryWriteQuestion(name[..len], type, cls);
        if (!_resolver.TryAnswerFromCache(name[..len], type, cls, dnssecOk, false, ref w, out var answer))
            w.Header.Rcode = (byte)Rcode.ServFail;
        else
        {
            w.Header.Rcode = (byte)answer.Rcode;
            w.Header.Truncated = answer.Truncated;
            w.Header.AuthenticData = answer.Secure && dnssecOk;
        }
        w.TryWriteOpt(1232, 0, 0, dnssecOk, []);
        return w.Finish();
    }

    [Benchmark] public int CacheHit() => Answer(_hit);
    [Benchmark] public int CacheCnameHit() => Answer(_cname);
    [Benchmark] public int CacheNxDomain() => Answer(_nxdomain);
    [Benchmark] public int CacheMiss() => Answer(_miss);
    /// <summary>A validated RRset to a DO=1 client: the RRSIG written after it, AD set.</summary>
    [Benchmark] public int CacheSecureHitWithRrsig() => Answer(_signed, dnssecOk: true);
}
