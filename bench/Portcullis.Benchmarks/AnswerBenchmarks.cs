using System.Net;
using System.Text;
using BenchmarkDotNet.Attributes;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Server.Authoritative;
using Portcullis.Server.Hosting;
using Portcullis.Server.Pipeline;
using Portcullis.Transport;

namespace Portcullis.Benchmarks;

/// <summary>
/// The whole authoritative query path without sockets: <see cref="QueryProcessor.Process"/> on a
/// 10,000-name zone, from query bytes to response bytes (header checks, question, EDNS, zone
/// lookup, answer with compression). Every case must allocate nothing.
/// </summary>
[MemoryDiagnoser]
public class AnswerBenchmarks
{
    private QueryProcessor _processor = null!;
    private byte[] _response = [];
    private byte[] _exact = [], _nxdomain = [], _wildcard = [], _referral = [], _mx = [];
    private QueryContextInfo _info;
    private QueryProcessor _secured = null!;
    private QueryContextInfo _remote;
    private QueryProcessor _nsec3 = null!;
    private byte[] _nsec3NxDomain = [], _nsec3Exact = [];

    [GlobalSetup]
    public void Setup()
    {
        var text = new StringBuilder("$ORIGIN bench.test.\n$TTL 3600\n@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\n@ NS ns2\nns1 A 192.0.2.1\nns2 A 192.0.2.2\n*.wild A 192.0.2.9\n");
        for (int i = 0; i < 10_000; i++)
        {
            text.Append($"h{i} A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}\n");
            if (i % 5 == 0) text.Append($"h{i} MX 10 h{i + 1}\n");
            if (i % 100 == 0) text.Append($"d{i} NS ns.d{i}\nns.d{i} A 192.0.2.{i % 250 + 1}\n");
        }
        var zone = ZoneLoader.LoadText(DnsName.Parse("bench.test."), text.ToString(), "bench.test.zone").Zone;
        _processor = new QueryProcessor(new ZoneCatalog([zone]), new QueryProcessorOptions());
        _response = new byte[65535];
        _info = new QueryContextInfo(TransportKind.Udp, new IPEndPoint(IPAddress.Loopback, 5353).Serialize());
        // The same zone behind the default security settings (ACLs, RRL at its highest rate, no
        // client block), asked from an address RRL does not exempt: the cost of the checks per query.
        var secured = new Portcullis.Server.Configuration.ServerConfig();
        secured.RateLimit.ResponsesPerSecond = 1000;
        secured.ClientLimit.QueriesPerSecond = 0;
        _secured = new QueryProcessor(new ZoneCatalog([zone]), QueryProcessorOptions.From(secured));
        _remote = new QueryContextInfo(TransportKind.Udp, new IPEndPoint(IPAddress.Parse("192.0.2.77"), 5353).Serialize());
        _exact = Query("h4242.bench.test.", RecordType.A);
        _nxdomain = Query("nope.h4242.bench.test.", RecordType.A);
        _wildcard = Query("x.wild.bench.test.", RecordType.A);
        _referral = Query("www.d4200.bench.test.", RecordType.A);
        _mx = Query("h4240.bench.test.", RecordType.MX);
        // The same zone signed with NSEC3 (RFC 9276 parameters), asked with DO: the proofs of RFC
        // 5155 §7.2 hash two or three names per NXDOMAIN.
        var apex = DnsName.Parse("bench.test.");
        using var key = Portcullis.Protocol.Dnssec.DnssecPrivateKey.Generate(apex, Portcullis.Protocol.Dnssec.DnssecAlgorithm.Ed25519, ksk: true);
        var signed = Portcullis.Protocol.Dnssec.ZoneSigner.Sign(apex, zone.Data.CanonicalRecords(), [key], DateTimeOffset.UtcNow,
            new Portcullis.Protocol.Dnssec.ZoneSigningOptions { Nsec3 = true });
        using var signedText = new StringWriter();
        Portcullis.Protocol.ZoneText.ZoneWriter.Write(signedText, signed);
        var nsec3Zone = ZoneLoader.LoadText(apex, signedText.ToString(), "bench.test.signed").Zone;
        _nsec3 = new QueryProcessor(new ZoneCatalog([nsec3Zone]), new QueryProcessorOptions());
        _nsec3NxDomain = Query("nope.h4242.bench.test.", RecordType.A, dnssecOk: true);
        _nsec3Exact = Query("h4242.bench.test.", RecordType.A, dnssecOk: true);
    }

    private static byte[] Query(string name, RecordType type, bool dnssecOk = false)
    {
        var q = DnsMessage.CreateQuery(DnsName.Parse(name), type, id: 4242);
        q.Edns = new Edns { UdpPayloadSize = 1232, DnssecOk = dnssecOk };
        return q.ToWire();
    }

    [Benchmark] public int Exact() => _processor.Process(_exact, _response, _info);
    [Benchmark] public int NxDomain() => _processor.Process(_nxdomain, _response, _info);
    [Benchmark] public int Wildcard() => _processor.Process(_wildcard, _response, _info);
    [Benchmark] public int Referral() => _processor.Process(_referral, _response, _info);
    /// <summary>NXDOMAIN with DO from the NSEC3-signed zone: SOA, three NSEC3 and their RRSIGs.</summary>
    [Benchmark] public int Nsec3NxDomain() => _nsec3.Process(_nsec3NxDomain, _response, _info);
    /// <summary>An answer with DO from the NSEC3-signed zone: A and its RRSIG, no proof.</summary>
    [Benchmark] public int Nsec3Exact() => _nsec3.Process(_nsec3Exact, _response, _info);
    [Benchmark] public int MxWithAdditional() => _processor.Process(_mx, _response, _info);
    /// <summary>Exact, through access lists and response rate limiting (the account is soon limited: drop or slip).</summary>
    [Benchmark] public int ExactThroughRrl() => _secured.Process(_exact, _response, _remote);
}
