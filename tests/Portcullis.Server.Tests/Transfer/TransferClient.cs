using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.ZoneText;
using Portcullis.Server.Configuration;
using Portcullis.Server.Tests.Support;
using Portcullis.Testing;
using Portcullis.Transport;

namespace Portcullis.Server.Tests.Transfer;

/// <summary>What a transfer brought: the messages and the records in the order they came.</summary>
public sealed record TransferResult(IReadOnlyList<DnsMessage> Messages, IReadOnlyList<ResourceRecord> Records)
{
    public Rcode Rcode => Messages[0].Rcode;
}

/// <summary>Zone transfers read by the test itself, by dig and by kdig, and the zones to compare them with.</summary>
public static class TransferClient
{
    /// <summary>Allows transfers to loopback (all test clients).</summary>
    public static void AllowLoopback(ServerConfig c) => c.AllowTransfer = ["127.0.0.0/8"];

    /// <summary>AXFR (or IXFR with <paramref name="ixfrSerial"/> in the authority section) over TCP, read until the closing SOA or an error.</summary>
    public static TransferResult Pull(IPEndPoint server, string origin, RecordType type = RecordType.AXFR, uint? ixfrSerial = null)
    {
        using var socket = new Socket(server.AddressFamily, SocketType.Stream, ProtocolType.Tcp)
        {
            ReceiveTimeout = (int)DnsTestClient.Timeout.TotalMilliseconds,
        };
        socket.Connect(server);
        DnsTestClient.Send(socket, Query(origin, type, ixfrSerial).ToWire());
        var messages = new List<DnsMessage>();
        var records = new List<ResourceRecord>();
        int soas = 0;
        while (true)
        {
            var wire = DnsTestClient.ReceiveMessage(socket) ?? throw new IOException($"connection closed after {messages.Count} messages");
            var m = DnsMessage.Parse(wire);
            messages.Add(m);
            records.AddRange(m.Answers);
            soas += m.Answers.Count(r => r.Type == RecordType.SOA);
            // The end: an error, the closing SOA, or a lone SOA (IXFR: up to date).
            if (m.Rcode != Rcode.NoError || soas >= 2 || (messages.Count == 1 && m.Answers.Count == 1 && soas == 1)) break;
        }
        return new TransferResult(messages, records);
    }

    public static DnsMessage Query(string origin, RecordType type, uint? ixfrSerial = null)
    {
        var q = DnsTestClient.Query(origin, type);
        if (ixfrSerial is uint serial)
        {
            // RFC 1995 §3: the client's SOA in the authority section; only the serial matters.
            var rdata = new List<byte>();
            rdata.AddRange(DnsName.Parse("ns1." + origin).Wire.ToArray());
            rdata.AddRange(DnsName.Parse("hostmaster." + origin).Wire.ToArray());
            var fixedPart = new byte[20];
            BinaryPrimitives.WriteUInt32BigEndian(fixedPart, serial);
            rdata.AddRange(fixedPart);
            q.Authority.Add(new ResourceRecord(DnsName.Parse(origin), RecordType.SOA, RecordClass.IN, 0, rdata.ToArray()));
        }
        return q;
    }

    /// <summary>The records of zone text (a zone file, or dig/kdig output), as canonical lines.</summary>
    public static List<string> Parse(string text, string origin)
    {
        using var reader = new ZoneReader(new StringReader(text), DnsName.Parse(origin));
        return reader.ReadRecords().Select(Line).ToList();
    }

    public static string Line(ResourceRecord r) => r.ToString().ToLowerInvariant();

    public static List<string> Lines(IEnumerable<ResourceRecord> records) => records.Select(Line).ToList();

    /// <summary>
    /// A transfer equals a zone (or another transfer): the SOA first and last, and in between every other record of the
    /// zone once (compared as sets: RFC 5936 leaves the order free).
    /// </summary>
    public static void AssertSameZone(IReadOnlyList<string> expected, IReadOnlyList<string> transferred)
    {
        // The expectation is a zone (one SOA) or another transfer (the same SOA first and last).
        string soa = Assert.Single(expected.Where(l => l.Contains(" soa ")).Distinct());
        Assert.True(transferred.Count >= 2, $"{transferred.Count} records");
        Assert.Equal(soa, transferred[0]);
        Assert.Equal(soa, transferred[^1]);
        var body = transferred.Skip(1).SkipLast(1).ToList();
        Assert.Equal(body.Count, body.Distinct().Count());
        var want = expected.Where(l => l != soa).ToHashSet();
        var got = body.ToHashSet();
        var missing = want.Except(got).Take(5).ToList();
        var extra = got.Except(want).Take(5).ToList();
        Assert.True(missing.Count == 0 && extra.Count == 0,
            $"missing: {string.Join(" | ", missing)}; unexpected: {string.Join(" | ", extra)}");
    }

    /// <summary>dig's AXFR (over TCP, as dig always does AXFR), without comments.</summary>
    public static string Dig(IPEndPoint server, string origin) =>
        ExternalProcess.Run("dig", [$"@{server.Address}", "-p", server.Port.ToString(), "+tcp", "+nocmd", "+nostats", "+nocomments", origin, "AXFR"])
            .EnsureSuccess().Stdout;

    public static string Kdig(IPEndPoint server, string origin, string type = "AXFR") =>
        ExternalProcess.Run("kdig", [$"@{server.Address}", "-p", server.Port.ToString(), "+tcp", origin, type]).EnsureSuccess().Stdout;

    /// <summary>
    /// A zone of about <paramref name="hosts"/> × 2 records: an SOA, NS with glue, a delegation,
    /// hosts with A and MX, and one TXT RRset of <paramref name="bigSetRecords"/> records, larger
    /// than one message when big enough.
    /// </summary>
    public static string GenerateZone(string origin, int hosts, int bigSetRecords = 0, uint serial = 2024010101)
    {
        var text = new StringBuilder($"""
            $ORIGIN {origin}
            $TTL 300
            @ 3600 SOA ns1 hostmaster {serial} 7200 1800 1209600 300
            @ NS ns1
            @ NS ns2.example.net.
            ns1 A 192.0.2.1
            child NS ns.child
            child DS 12345 13 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
            ns.child A 192.0.2.2

            """);
        for (int i = 0; i < hosts; i++)
        {
            text.Append("h").Append(i).Append(" A 10.").Append((i >> 16) & 255).Append('.').Append((i >> 8) & 255).Append('.').Append(i & 255).Append('\n');
            text.Append("h").Append(i).Append(" MX 10 mx").Append(i % 7).Append('\n');
        }
        for (int i = 0; i < bigSetRecords; i++)
            text.Append("big TXT \"record ").Append(i).Append(" of one RRset too large for a single DNS message\"\n");
        return text.ToString();
    }

    /// <summary>
    /// A second TCP listener on the same processor with the engine asked for, on the server's
    /// address and a free port: the transports under test, with the server's zones and policy.
    /// </summary>
    public static global::Portcullis.Transport.TcpListener Listener(TestServer server, TcpEngineKind engine, TimeSpan? idle = null)
    {
        var listener = new global::Portcullis.Transport.TcpListener(new IPEndPoint(server.Address, 0), server.Server.Processor, NullLogger.Instance,
            new TcpLimits { IdleTimeout = idle ?? TimeSpan.FromSeconds(10) }, engine);
        listener.Start();
        return listener;
    }
}
