using BenchmarkDotNet.Attributes;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.Wire;

namespace Portcullis.Benchmarks;

/// <summary>
/// The per-query hot path: reading a query and writing a response must allocate nothing, since a
/// UDP receive loop does this for every packet (see DESIGN.md, "How a UDP query flows").
/// </summary>
[MemoryDiagnoser]
public class MessageBenchmarks
{
    private byte[] _query = [];
    private byte[] _responseBuffer = [];
    private DnsQuestion _question = null!;
    private ResourceRecord[] _answers = [];
    private ResourceRecord[] _authority = [];
    private ResourceRecord[] _glue = [];

    [GlobalSetup]
    public void Setup()
    {
        _query = BuildTypicalQuery();
        _responseBuffer = new byte[1232];

        var zone = DnsName.Parse("example.com.");
        var www = DnsName.Parse("www", zone);
        var ns1 = DnsName.Parse("ns1", zone);
        var ns2 = DnsName.Parse("ns2", zone);
        _question = new DnsQuestion(www, RecordType.A);
        _answers =
        [
            new ResourceRecord(www, RecordType.A, RecordClass.IN, 300, [192, 0, 2, 1]),
            new ResourceRecord(www, RecordType.A, RecordClass.IN, 300, [192, 0, 2, 2]),
        ];
        _authority =
        [
            new ResourceRecord(zone, RecordType.NS, RecordClass.IN, 86400, ns1.Wire.ToArray()),
            new ResourceRecord(zone, RecordType.NS, RecordClass.IN, 86400, ns2.Wire.ToArray()),
        ];
        _glue =
        [
            new ResourceRecord(ns1, RecordType.A, RecordClass.IN, 86400, [198, 51, 100, 1]),
            new ResourceRecord(ns2, RecordType.A, RecordClass.IN, 86400, [198, 51, 100, 2]),
        ];
        if (QueryParse() != 1 + 10 + 8) throw new InvalidOperationException("query parse benchmark does not parse its query");
        if (ResponseWrite() <= DnsHeader.Size) throw new InvalidOperationException("response write benchmark wrote nothing");
    }

    /// <summary>
    /// www.example.com. IN A with RD, and an OPT record (payload 1232, DO clear) carrying an 8-octet
    /// client cookie, as dig 9.18 sends it: 56 octets.
    /// </summary>
    public static byte[] BuildTypicalQuery()
    {
        var buffer = new byte[512];
        var writer = new DnsMessageWriter(buffer);
        writer.Header.Id = 0x5a17;
        writer.Header.RecursionDesired = true;
        if (!writer.TryWriteQuestion(DnsName.Parse("www.example.com.").Wire, RecordType.A, RecordClass.IN))
            throw new InvalidOperationException("question does not fit");
        Span<byte> options = stackalloc byte[12];
        ReadOnlySpan<byte> clientCookie = [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef];
        if (!EdnsOptionWire.TryWriteCookie(options, clientCookie, [], out int optionsLength))
            throw new InvalidOperationException("cookie does not fit");
        if (!writer.TryWriteOpt(1232, 0, 0, dnssecOk: false, options[..optionsLength]))
            throw new InvalidOperationException("OPT does not fit");
        int length = writer.Finish();
        return buffer[..length];
    }

    /// <summary>
    /// What a server does before it can answer: header, question into a stack buffer, then the OPT
    /// record (checked, with every option) and the cookie in it. Returns a checksum of what was
    /// found so that the work cannot be optimised away.
    /// </summary>
    [Benchmark]
    public int QueryParse()
    {
        if (!DnsMessageReader.TryCreate(_query, out var reader)) return -1;
        if (reader.Header.QuestionCount != 1 || reader.Header.IsResponse) return -1;
        Span<byte> qname = stackalloc byte[DnsName.MaxLength];
        if (!reader.TryReadQuestion(qname, out int qnameLength, out var qtype, out var qclass)) return -1;
        if (reader.Header.AnswerCount != 0 || reader.Header.AuthorityCount != 0 || reader.Header.AdditionalCount != 1) return -1;

        // RFC 6891 §6.1.2: the OPT record (payload size in CLASS, DO in TTL) and its options, read
        // in place over the message.
        if (!OptRecord.TryReadFrom(ref reader, out var opt) || !opt.IsPresent) return -1;
        if (!opt.TryGetCookie(out var clientCookie, out var serverCookie)) return -1;
        return (qtype == RecordType.A && qclass == RecordClass.IN && opt.UdpPayloadSize == 1232 && !opt.DnssecOk ? 1 : 0)
            + (qnameLength == 17 ? 10 : 0) + clientCookie.Length + serverCookie.Length;
    }

    /// <summary>
    /// A typical positive answer: question, two A records, two NS in authority, their glue and an
    /// OPT record, with name compression, into a buffer the server reuses.
    /// </summary>
    [Benchmark]
    public int ResponseWrite()
    {
        var writer = new DnsMessageWriter(_responseBuffer);
        writer.Limit(1232);
        writer.Header.Id = 0x5a17;
        writer.Header.IsResponse = true;
        writer.Header.AuthoritativeAnswer = true;
        writer.Header.RecursionDesired = true;
        if (!writer.TryWriteQuestion(_question.Name.Wire, _question.Type, _question.Class)) return -1;
        foreach (var rr in _answers) if (!writer.TryWriteRecord(rr, DnsSection.Answer)) return -1;
        foreach (var rr in _authority) if (!writer.TryWriteRecord(rr, DnsSection.Authority)) return -1;
        foreach (var rr in _glue) if (!writer.TryWriteRecord(rr, DnsSection.Additional)) return -1;
        if (!writer.TryWriteOpt(1232, 0, 0, dnssecOk: false, [])) return -1;
        return writer.Finish();
    }
}
