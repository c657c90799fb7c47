using System.Buffers.Binary;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Records;
using Portcullis.Transport;

namespace Portcullis.Server.Telemetry;

/// <summary>
/// Instruments for every query answered, on the server's meter: a counter by transport, query
/// type and response code (CoreDNS's and Unbound's breakdown), and histograms of response size and
/// answer latency. <see cref="Record"/> runs on the query path: every tag value is a string literal
/// chosen by a switch and the tags travel in a <see cref="TagList"/> (inline up to eight), so
/// recording allocates nothing and takes no lock.
/// </summary>
public sealed class QueryMetrics
{
    /// <summary>Instrument names (exported as portcullis_queries_total, portcullis_response_size_bytes, portcullis_query_duration_seconds).</summary>
    public const string QueriesName = "portcullis.queries";
    public const string ResponseSizeName = "portcullis.response.size";
    public const string LatencyName = "portcullis.query.duration";

    /// <summary>Response-size buckets: the sizes that matter for UDP (512 of RFC 1035, 1232 of DNS Flag Day 2020, the Ethernet MTU).</summary>
    public static readonly double[] SizeBuckets = [64, 128, 256, 512, 1232, 1500, 4096, 16384, 65535];

    /// <summary>Latency buckets in seconds, from 10 µs (an authoritative answer) to 5 s (a slow resolution).</summary>
    public static readonly double[] LatencyBuckets = [0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

    private readonly Counter<long> _queries;
    private readonly Histogram<int> _size;
    private readonly Histogram<double> _latency;

    public QueryMetrics(Meter meter)
    {
        ArgumentNullException.ThrowIfNull(meter);
        _queries = meter.CreateCounter<long>(QueriesName, description: "Queries answered, by transport, query type and response code.");
        _size = meter.CreateHistogram<int>(ResponseSizeName, unit: "bytes", description: "Size of the responses sent.");
        _latency = meter.CreateHistogram<double>(LatencyName, unit: "s", description: "Time from receiving a query to its response being ready.");
    }

    /// <summary>
    /// Counts one answered query. <paramref name="startTimestamp"/> is <see cref="Stopwatch.GetTimestamp"/>
    /// taken when the query arrived at the processor.
    /// </summary>
    public void Record(TransportKind transport, RecordType qtype, Rcode rcode, int responseBytes, long startTimestamp)
    {
        var tags = new TagList
        {
            { "transport", transport == TransportKind.Tcp ? "tcp" : "udp" },
            { "qtype", TypeTag(qtype) },
            { "rcode", RcodeTag(rcode) },
        };
        _queries.Add(1, in tags);
        // Size and latency by transport only: one series per bucket per tag value, so fewer tags keep
        // the scrape small (the qtype/rcode split is on the counter).
        var transportOnly = new TagList { { "transport", transport == TransportKind.Tcp ? "tcp" : "udp" } };
        _size.Record(responseBytes, in transportOnly);
        _latency.Record(Stopwatch.GetElapsedTime(startTimestamp).TotalSeconds, in transportOnly);
    }

    /// <summary>
    /// Counts a response already written to <paramref name="response"/>: the query type from its
    /// question (RFC 1035 §4.1.2: the name is written uncompressed, first in the message) and the
    /// RCODE's low four bits from its header (RFC 1035 §4.1.1; the upper bits of an extended RCODE
    /// live in the OPT record, RFC 6891 §6.1.3, and are not looked for here). A response without a
    /// question counts under qtype "other". Does nothing for a length of zero (no response).
    /// </summary>
    public void RecordResponse(TransportKind transport, ReadOnlySpan<byte> response, long startTimestamp)
    {
        if (response.Length < DnsHeader.Size) return;
        var rcode = (Rcode)(response[3] & 0xF);
        var qtype = (RecordType)0;
        if (BinaryPrimitives.ReadUInt16BigEndian(response[4..]) > 0)
        {
            int at = DnsHeader.Size;
            while (at < response.Length)
            {
                int label = response[at];
                if (label == 0) { at++; break; }
                if (label > 63) { at = response.Length; break; }   // a pointer or reserved form: not ours to write
                at += label + 1;
            }
            if (at + 2 <= response.Length) qtype = (RecordType)BinaryPrimitives.ReadUInt16BigEndian(response[at..]);
        }
        Record(transport, qtype, rcode, response.Length, startTimestamp);
    }

    /// <summary>The types operators look for by name (RFC 6895's registry, the common ones); the rest are "other", which bounds the series a client can create.</summary>
    public static string TypeTag(RecordType type) => type switch
    {
        RecordType.A => "A",
        RecordType.NS => "NS",
        RecordType.CNAME => "CNAME",
        RecordType.SOA => "SOA",
        RecordType.NULL => "NULL",
        RecordType.PTR => "PTR",
        RecordType.HINFO => "HINFO",
        RecordType.MX => "MX",
        RecordType.TXT => "TXT",
        RecordType.AAAA => "AAAA",
        RecordType.SRV => "SRV",
        RecordType.NAPTR => "NAPTR",
        RecordType.DNAME => "DNAME",
        RecordType.DS => "DS",
        RecordType.RRSIG => "RRSIG",
        RecordType.NSEC => "NSEC",
        RecordType.DNSKEY => "DNSKEY",
        RecordType.NSEC3 => "NSEC3",
        RecordType.NSEC3PARAM => "NSEC3PARAM",
        RecordType.TLSA => "TLSA",
        RecordType.CDS => "CDS",
        RecordType.CDNSKEY => "CDNSKEY",
        RecordType.SVCB => "SVCB",
        RecordType.HTTPS => "HTTPS",
        RecordType.CAA => "CAA",
        RecordType.IXFR => "IXFR",
        RecordType.AXFR => "AXFR",
        RecordType.ANY => "ANY",
        _ => "other",
    };

    /// <summary>RCODE mnemonics (RFC 6895 §2.3); unassigned values are "other".</summary>
    public static string RcodeTag(Rcode rcode) => (int)rcode switch
    {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        16 => "BADVERS",
        23 => "BADCOOKIE",
        _ => "other",
    };
}
