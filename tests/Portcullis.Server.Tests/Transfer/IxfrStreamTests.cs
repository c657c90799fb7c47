using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.Tsig;
using Portcullis.Protocol.ZoneText;
using Portcullis.Protocol.Zones;
using Portcullis.Server.Authoritative;
using Portcullis.Server.Replication;
using Portcullis.Server.Transfer;
using Portcullis.Testing;
using Xunit;
using static Portcullis.Server.Tests.Transfer.TransferClient;

namespace Portcullis.Server.Tests.Transfer;

/// <summary>
/// The incremental transfer answer from a journal (RFC 1995 §4): the newest SOA, each step as old
/// SOA, deletions, new SOA, additions, and the newest SOA again; in messages of at most 65,535
/// octets with the question in the first only; every message TSIG-signed when asked (RFC 8945
/// §5.3.1) and accepted by our verifier; read by dig and kdig from a small listener that serves it.
/// </summary>
public sealed class IxfrStreamTests
{
    private const string OriginText = "example.test.";
    private static readonly DnsName Origin = DnsName.Parse(OriginText);
    private static readonly byte[] Loopback = [127, 0, 0, 1];

    private static List<ResourceRecord> Records(string text)
    {
        using var reader = new ZoneReader(new StringReader("$ORIGIN example.test.\n$TTL 300\n" + text), Origin);
        return reader.ReadRecords().ToList();
    }

    private static ResourceRecord Soa(uint serial) => Records($"@ 3600 SOA ns1 hostmaster {serial} 3600 900 604800 300\n")[0];

    private static IxfrDiff Step(uint from, uint to, string deleted, string added) => new(Soa(from), Records(deleted), Soa(to), Records(added));

    private const string BaseZone = """
        @ 3600 SOA ns1 hostmaster 100 3600 900 604800 300
        @ NS ns1
        @ MX 10 mail
        ns1 A 192.0.2.1
        mail A 192.0.2.25
        www A 192.0.2.80
        """;

    /// <summary>Three steps: a change, a deletion with a TTL change, and additions with names in RDATA.</summary>
    private static List<IxfrDiff> Steps() =>
    [
        Step(100, 101, "www A 192.0.2.80\n", "www A 192.0.2.81\nwww AAAA 2001:db8::81\n"),
        Step(101, 102, "mail A 192.0.2.25\n@ MX 10 mail\n", "mail 60 A 192.0.2.26\n"),
        Step(102, 105, "", "@ MX 20 mx2.example.test.\nmx2 A 192.0.2.27\nalias CNAME www\nFTP CNAME www.Example.TEST.\n"),
    ];

    private static Zone ZoneOf(IEnumerable<ResourceRecord> records)
    {
        var compiler = new ZoneCompiler(Origin, RecordClass.IN, "test");
        var position = new ZonePosition("test", 0, 0);
        foreach (var r in records) compiler.Add(r, position);
        var result = compiler.Finish();
        Assert.True(result.Ok, string.Join("; ", result.Errors.Select(e => e.Problem)));
        return new Zone(result.Data!);
    }

    /// <summary>The journal's answer as RFC 1995 §4 lays it out.</summary>
    private static List<string> Expected(IReadOnlyList<IxfrDiff> steps)
    {
        var list = new List<ResourceRecord> { steps[^1].NewSoa };
        foreach (var s in steps)
        {
            list.Add(s.OldSoa);
            list.AddRange(s.Deleted);
            list.Add(s.NewSoa);
            list.AddRange(s.Added);
        }
        list.Add(steps[^1].NewSoa);
        return Lines(list);
    }

    private static DnsHeader QueryHeader(ushort id) => new() { Id = id, Opcode = Opcode.Query };

    private static List<byte[]> Drain(IxfrStream stream)
    {
        var buffer = new byte[65535];
        var messages = new List<byte[]>();
        int n;
        while ((n = stream.Next(buffer)) > 0) messages.Add(buffer[..n]);
        Assert.Equal(0, stream.Next(buffer));
        return messages;
    }

    [Fact]
    public void The_answer_is_the_newest_SOA_then_each_step_then_the_newest_SOA_with_the_question_first()
    {
        var steps = Steps();
        var zone = ZoneOf(ZoneJournal.Apply(Records(BaseZone), steps));
        var transfers = new ZoneTransfers();
        Assert.True(transfers.TryBegin(10));
        List<byte[]> wire;
        using (var stream = new IxfrStream(transfers, zone, steps, QueryHeader(0x4242), Origin.Wire, RecordClass.IN,
                   edns: false, dnssecOk: false, 1232, signer: null, Loopback))
            wire = Drain(stream);
        var message = DnsMessage.Parse(Assert.Single(wire));
        Assert.Equal(0x4242, message.Header.Id);
        Assert.True(message.Header.IsResponse);
        Assert.True(message.Header.AuthoritativeAnswer);
        Assert.Equal(Rcode.NoError, message.Rcode);
        var question = Assert.Single(message.Questions);
        Assert.Equal(RecordType.IXFR, question.Type);
        Assert.Equal(Origin, question.Name);
        Assert.Empty(message.Authority);
        Assert.Empty(message.Additional);
        Assert.Equal(Expected(steps), Lines(message.Answers));
        // Compression changes no owner's spelling (FTP.example.test stays as written, RFC 1035 §2.3.3 keeps case).
        Assert.Contains(message.Answers, r => r.Owner.ToString() == "FTP.example.test.");
        Assert.Equal(0, transfers.Active);
        Assert.Equal(1, transfers.Completed);
    }

    [Fact]
    public void A_large_step_is_split_across_messages_each_with_the_query_id_and_an_OPT_and_only_the_first_with_the_question()
    {
        var added = string.Concat(Enumerable.Range(0, 3000).Select(i => $"t{i % 40} TXT \"{i:D6}-{new string('y', 180)}\"\n"));
        var steps = new List<IxfrDiff> { Step(100, 101, "", added), Step(101, 102, added, "www A 192.0.2.99\n") };
        var zone = ZoneOf(ZoneJournal.Apply(Records(BaseZone), steps));
        var transfers = new ZoneTransfers();
        Assert.True(transfers.TryBegin(10));
        using var stream = new IxfrStream(transfers, zone, steps, QueryHeader(7), Origin.Wire, RecordClass.IN,
            edns: true, dnssecOk: true, 1232, signer: null, Loopback);
        var wire = Drain(stream);
        Assert.True(wire.Count >= 18, $"{wire.Count} messages");
        Assert.All(wire, w => Assert.True(w.Length <= 65535));
        var messages = wire.Select(w => DnsMessage.Parse(w)).ToList();
        Assert.Single(messages[0].Questions);
        Assert.All(messages.Skip(1), m => Assert.Empty(m.Questions));
        Assert.All(messages, m =>
        {
            Assert.Equal(7, m.Header.Id);
            Assert.True(m.Header.AuthoritativeAnswer);
            Assert.NotNull(m.Edns);
        });
        Assert.Equal(Expected(steps), Lines(messages.SelectMany(m => m.Answers)));
        Assert.Equal(messages.Sum(m => m.Answers.Count), stream.Records);
    }

    [Fact]
    public void A_transfer_abandoned_part_way_gives_back_its_place_and_counts_as_abandoned()
    {
        var added = string.Concat(Enumerable.Range(0, 2000).Select(i => $"t{i} TXT \"{new string('z', 100)}\"\n"));
        var steps = new List<IxfrDiff> { Step(100, 101, "", added) };
        var zone = ZoneOf(ZoneJournal.Apply(Records(BaseZone), steps));
        var transfers = new ZoneTransfers();
        Assert.True(transfers.TryBegin(1));
        var stream = new IxfrStream(transfers, zone, steps, QueryHeader(1), Origin.Wire, RecordClass.IN, false, false, 1232, null, Loopback);
        Assert.True(stream.Next(new byte[65535]) > 0);
        stream.Dispose();
        stream.Dispose();
        Assert.Equal(0, transfers.Active);
        Assert.Equal(1, transfers.Abandoned);
        Assert.Equal(0, transfers.Completed);
    }

    [Fact]
    public void Steps_that_are_empty_or_do_not_end_at_the_zones_serial_are_refused()
    {
        var steps = Steps();
        var zone = ZoneOf(ZoneJournal.Apply(Records(BaseZone), steps));
        var transfers = new ZoneTransfers();
        Assert.Throws<ArgumentException>(() =>
            new IxfrStream(transfers, zone, [], QueryHeader(1), Origin.Wire, RecordClass.IN, false, false, 1232, null, Loopback));
        Assert.Throws<ArgumentException>(() =>
            new IxfrStream(transfers, zone, steps.Take(2).ToList(), QueryHeader(1), Origin.Wire, RecordClass.IN, false, false, 1232, null, Loopback));
    }

    [Theory]
    [InlineData(TsigAlgorithm.HmacSha256, false)]
    [InlineData(TsigAlgorithm.HmacSha512, true)]
    [InlineData(TsigAlgorithm.HmacSha1, false)]
    public void Every_message_is_signed_and_our_verifier_accepts_each(TsigAlgorithm algorithm, bool edns)
    {
        var added = string.Concat(Enumerable.Range(0, 1500).Select(i => $"t{i} TXT \"{new string('s', 120)}\"\n"));
        var steps = new List<IxfrDiff> { Step(100, 101, "", added), Step(101, 102, "www A 192.0.2.80\n", "www A 192.0.2.8\n") };
        var zone = ZoneOf(ZoneJournal.Apply(Records(BaseZone), steps));
        var key = TsigKey.Generate(DnsName.Parse("transfer.test."), algorithm);
        byte[] requestMac = RandomNumberGenerator.GetBytes(32);
        long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var transfers = new ZoneTransfers();
        Assert.True(transfers.TryBegin(10));
        using var stream = new IxfrStream(transfers, zone, steps, QueryHeader(9), Origin.Wire, RecordClass.IN, edns, false, 1232,
            new TsigStreamSigner(key, requestMac, () => now), Loopback);
        var wire = Drain(stream);
        Assert.True(wire.Count >= 3, $"{wire.Count} messages");
        var verifier = new TsigResponseVerifier(key, requestMac, now);
        foreach (var w in wire)
        {
            Assert.Equal(TsigCheck.Verified, verifier.Check(w));
            Assert.Equal(RecordType.TSIG, DnsMessage.Parse(w).Additional[^1].Type);
        }
        Assert.True(verifier.EndedSigned);
        Assert.Equal(Expected(steps), Lines(wire.SelectMany(w => DnsMessage.Parse(w).Answers).Where(r => r.Type != RecordType.TSIG)));

        // The chain of MACs is checked: a message changed in transit fails.
        var tampered = (byte[])wire[1].Clone();
        tampered[40] ^= 1;
        var second = new TsigResponseVerifier(key, requestMac, now);
        Assert.Equal(TsigCheck.Verified, second.Check(wire[0]));
        Assert.NotEqual(TsigCheck.Verified, second.Check(tampered));
    }

    // ---- dig and kdig ----

    /// <summary>
    /// Serves IXFR from <paramref name="journal"/> on 127.0.0.1 to the clients that connect, one
    /// query per connection (as dig and kdig send), until <paramref name="clients"/> have been served.
    /// </summary>
    private static async Task ServeAsync(System.Net.Sockets.TcpListener listener, Zone zone, ZoneJournal journal, TsigKey? key,
        int clients, List<string> problems)
    {
        var transfers = new ZoneTransfers();
        for (int c = 0; c < clients; c++)
        {
            using var client = await listener.AcceptTcpClientAsync();
            var net = client.GetStream();
            var length = new byte[2];
            await net.ReadExactlyAsync(length);
            var query = new byte[BinaryPrimitives.ReadUInt16BigEndian(length)];
            await net.ReadExactlyAsync(query);
            var parsed = DnsMessage.Parse(query);
            var question = parsed.Questions[0];
            uint clientSerial = SerialNumber.Of(parsed.Authority.Single(r => r.Type == RecordType.SOA));
            IMessageSigner? signer = null;
            if (key is not null)
            {
                if (Portcullis.Protocol.Tsig.Tsig.Find(query, out var record) != TsigPresence.Found
                    || Portcullis.Protocol.Tsig.Tsig.VerifyMac(query, record, key, default, hasPrior: false) != TsigStatus.Ok)
                {
                    problems.Add("the query's TSIG did not verify");
                    continue;
                }
                signer = new TsigStreamSigner(key, record.Mac(query), static () => DateTimeOffset.UtcNow.ToUnixTimeSeconds());
            }
            var steps = journal.DiffsFrom(clientSerial, zone.Serial);
            if (steps is null || question.Type != RecordType.IXFR)
            {
                problems.Add($"asked {question} from serial {clientSerial}, which the journal cannot answer");
                continue;
            }
            Assert.True(transfers.TryBegin(10));
            using var stream = new IxfrStream(transfers, zone, steps, parsed.Header, question.Name.Wire, question.Class,
                parsed.Edns is not null, false, 1232, signer, Loopback);
            var buffer = new byte[65535 + 2];
            int n;
            while ((n = stream.Next(buffer.AsMemory(2).Span)) > 0)
            {
                BinaryPrimitives.WriteUInt16BigEndian(buffer, (ushort)n);
                await net.WriteAsync(buffer.AsMemory(0, n + 2));
            }
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Dig_and_kdig_read_the_incremental_answer_served_from_a_journal(bool signed)
    {
        string dir = Directory.CreateTempSubdirectory("ixfr").FullName;
        try
        {
            var added = string.Concat(Enumerable.Range(0, 800).Select(i => $"bulk{i} TXT \"{new string('b', 100)}\"\n"));
            var steps = Steps();
            steps.Add(Step(105, 106, "", added));        // 100 KB: more than one message
            var zone = ZoneOf(ZoneJournal.Apply(Records(BaseZone), steps));
            using var journal = ZoneJournal.Open(Path.Combine(dir, "example.test.jnl"), Origin, 1 << 20);
            foreach (var s in steps) journal.Append(s);

            var key = signed ? TsigKey.Generate(DnsName.Parse("transfer.test."), TsigAlgorithm.HmacSha256) : null;
            int port = FreePort.ForUdpAndTcp();
            var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, port);
            listener.Start();
            var problems = new List<string>();
            try
            {
                var serving = Task.Run(() => ServeAsync(listener, zone, journal, key, clients: 2, problems));
                string[] tsig = key is null ? [] : ["-y", $"hmac-sha256:{key.Name}:{key.SecretBase64}"];
                var dig = await Task.Run(() => ExternalProcess.Run("dig",
                    [$"@127.0.0.1", "-p", port.ToString(), "+tcp", "+nocmd", "+nostats", "+nocomments", .. tsig, OriginText, "IXFR=101"]));
                var kdig = await Task.Run(() => ExternalProcess.Run("kdig",
                    [$"@127.0.0.1", "-p", port.ToString(), "+tcp", .. tsig, OriginText, "IXFR=101"]));
                await serving.WaitAsync(TimeSpan.FromSeconds(30));
                Assert.Empty(problems);
                var expected = Expected(steps.Skip(1).ToList());
                foreach (var result in new[] { dig, kdig })
                {
                    Assert.True(result.ExitCode == 0, $"{result.CommandLine}: {result.Stdout}{result.Stderr}");
                    Assert.DoesNotContain("verify", result.Stdout + result.Stderr, StringComparison.OrdinalIgnoreCase);
                    Assert.DoesNotContain("failed", result.Stdout + result.Stderr, StringComparison.OrdinalIgnoreCase);
                    // The transfer's records in order (their TSIG records, printed too when signed, left out).
                    string records = string.Join('\n', result.Stdout.Split('\n')
                        .Where(l => !l.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries).Contains("TSIG")));
                    Assert.Equal(expected, Parse(records, OriginText));
                    if (key is not null) Assert.Contains("TSIG", result.Stdout);     // they saw the signatures (and verified them: no warning)
                }
            }
            finally
            {
                listener.Stop();
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
