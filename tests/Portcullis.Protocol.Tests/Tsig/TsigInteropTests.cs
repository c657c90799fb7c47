using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Tsig;
using Portcullis.Testing;
using Xunit;

namespace Portcullis.Protocol.Tests.Tsig;

/// <summary>
/// Our TSIG against BIND's (dig) and Knot's (kdig): each tool signs a query that a socket of the
/// test receives; our code must verify it, and the tool must accept our signed answer — and
/// refuse it when we sign with another secret. For zone transfers, dig must accept a stream of
/// messages signed by <see cref="TsigStreamSigner"/>.
/// </summary>
public class TsigInteropTests
{
    private static string KeySpec(TsigKey key) => $"{TsigAlgorithms.Name(key.Algorithm)}:{key.Name.ToString().TrimEnd('.')}:{key.SecretBase64}";

    public static TheoryData<string, TsigAlgorithm> ToolsAndAlgorithms()
    {
        var data = new TheoryData<string, TsigAlgorithm>();
        foreach (var tool in new[] { "dig", "kdig" })
            foreach (var algorithm in new[] { TsigAlgorithm.HmacSha1, TsigAlgorithm.HmacSha256, TsigAlgorithm.HmacSha384, TsigAlgorithm.HmacSha512 })
                data.Add(tool, algorithm);
        return data;
    }

    [Theory]
    [MemberData(nameof(ToolsAndAlgorithms))]
    public async Task The_tools_signed_query_verifies_and_our_signed_answer_satisfies_the_tool(string tool, TsigAlgorithm algorithm)
    {
        var key = TsigTests.Key(algorithm);
        var (result, verified) = await ExchangeOverUdp(tool, key, answerKey: key);
        Assert.Equal(TsigStatus.Ok, verified);
        Assert.True(result.ExitCode == 0, $"{tool} refused our signed answer:\n{result.Stdout}\n{result.Stderr}");
        Assert.Contains("NOERROR", result.Stdout);
        Assert.DoesNotContain("Couldn't verify signature", result.Stdout + result.Stderr);
        Assert.DoesNotContain("failed to verify TSIG", result.Stdout + result.Stderr);
        Assert.Contains("TSIG PSEUDOSECTION", result.Stdout);
    }

    [Theory]
    [InlineData("dig")]
    [InlineData("kdig")]
    public async Task An_answer_signed_with_another_secret_is_refused_by_the_tool(string tool)
    {
        var key = TsigTests.Key();
        var impostor = new TsigKey(key.Name, key.Algorithm, new byte[32]);
        var (result, verified) = await ExchangeOverUdp(tool, key, answerKey: impostor);
        Assert.Equal(TsigStatus.Ok, verified);
        string output = result.Stdout + result.Stderr;
        // The tools print the answer but flag it: dig "Couldn't verify signature: tsig verify failure",
        // kdig "WARNING: reply verification ... (failed to verify TSIG)".
        Assert.Contains(tool == "dig" ? "Couldn't verify signature" : "failed to verify TSIG", output);
    }

    [Fact]
    public async Task A_tool_signing_with_a_key_we_hold_under_another_secret_fails_our_check()
    {
        var key = TsigTests.Key();
        var ours = new TsigKey(key.Name, key.Algorithm, new byte[32]);
        var (_, verified) = await ExchangeOverUdp("dig", key, answerKey: key, verifyWith: ours);
        Assert.Equal(TsigStatus.BadSig, verified);
    }

    [Theory]
    [InlineData("dig")]
    [InlineData("kdig")]
    public async Task A_transfer_signed_message_by_message_is_accepted_by_the_tool(string tool)
    {
        var key = TsigTests.Key(TsigAlgorithm.HmacSha256);
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        int port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        var run = Task.Run(() => ExternalProcess.Run(tool,
            [$"@127.0.0.1", "-p", port.ToString(), "-y", KeySpec(key), "example.", "AXFR", tool == "dig" ? "+tries=1" : "+retry=0", "+time=5"]));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        using var connection = await listener.AcceptAsync(cts.Token);
        byte[] lengthBytes = new byte[2];
        await ReadExactly(connection, lengthBytes, cts.Token);
        byte[] query = new byte[BinaryPrimitives.ReadUInt16BigEndian(lengthBytes)];
        await ReadExactly(connection, query, cts.Token);
        Assert.Equal(TsigPresence.Found, Portcullis.Protocol.Tsig.Tsig.Find(query, out var record));
        Assert.Equal(TsigStatus.Ok, Portcullis.Protocol.Tsig.Tsig.VerifyMac(query, record, key, default, hasPrior: false));

        var signer = new TsigStreamSigner(key, record.Mac(query), () => DateTimeOffset.UtcNow.ToUnixTimeSeconds());
        string[][] messages =
        [
            ["example. 3600 IN SOA ns.example. admin.example. 7 3600 900 604800 300", "example. 3600 IN NS ns.example."],
            ["ns.example. 3600 IN A 192.0.2.1", "www.example. 3600 IN A 192.0.2.2"],
            ["mail.example. 3600 IN A 192.0.2.3"],
            ["example. 3600 IN SOA ns.example. admin.example. 7 3600 900 604800 300"],
        ];
        foreach (var records in messages)
        {
            var response = AnswerTo(query[..record.Start], records);
            byte[] buffer = new byte[response.Length + signer.Reserve + 2];
            response.CopyTo(buffer, 2);
            int length = signer.Sign(buffer.AsSpan(2), response.Length);
            BinaryPrimitives.WriteUInt16BigEndian(buffer, (ushort)length);
            await connection.SendAsync(buffer.AsMemory(0, length + 2), cts.Token);
        }
        var result = await run;
        string output = result.Stdout + result.Stderr;
        Assert.True(result.ExitCode == 0, output);
        Assert.Contains("mail.example.", result.Stdout);
        Assert.DoesNotContain("failed", output, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("failure", output, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>A response to <paramref name="unsignedQuery"/> (the query without its TSIG record) with these answers.</summary>
    private static byte[] AnswerTo(byte[] unsignedQuery, string[] answers)
    {
        var query = Portcullis.Protocol.Messages.DnsMessage.Parse(FixArcount(unsignedQuery));
        var response = new Portcullis.Protocol.Messages.DnsMessage
        {
            Header = new Portcullis.Protocol.Messages.DnsHeader { Id = query.Header.Id, IsResponse = true, AuthoritativeAnswer = true },
        };
        response.Questions.AddRange(query.Questions);
        using var reader = new Portcullis.Protocol.ZoneText.ZoneReader(new StringReader(string.Join("\n", answers) + "\n"), DnsName.Root);
        response.Answers.AddRange(reader.ReadRecords());
        return response.ToWire();
    }

    private static byte[] FixArcount(byte[] query)
    {
        var copy = (byte[])query.Clone();
        BinaryPrimitives.WriteUInt16BigEndian(copy.AsSpan(10), (ushort)(BinaryPrimitives.ReadUInt16BigEndian(copy.AsSpan(10)) - 1));
        return copy;
    }

    private static async Task ReadExactly(Socket socket, byte[] buffer, CancellationToken token)
    {
        int read = 0;
        while (read < buffer.Length)
        {
            int n = await socket.ReceiveAsync(buffer.AsMemory(read), token);
            if (n == 0) throw new IOException("the tool closed the connection");
            read += n;
        }
    }

    /// <summary>
    /// Runs the tool against a UDP socket of the test: verifies its query with <paramref name="verifyWith"/>
    /// (default: the same key) and answers NOERROR, signed with <paramref name="answerKey"/>.
    /// </summary>
    private static async Task<(ProcessResult Result, TsigStatus Verified)> ExchangeOverUdp(string tool, TsigKey key, TsigKey answerKey, TsigKey? verifyWith = null)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        int port = ((IPEndPoint)socket.LocalEndPoint!).Port;
        string[] args = tool == "dig"
            ? ["@127.0.0.1", "-p", port.ToString(), "-y", KeySpec(key), "+noedns", "+tries=1", "+time=5", "example.", "SOA"]
            : ["@127.0.0.1", "-p", port.ToString(), "-y", KeySpec(key), "+retry=0", "+time=5", "example.", "SOA"];
        var run = Task.Run(() => ExternalProcess.Run(tool, args));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        byte[] buffer = new byte[4096];
        var received = await socket.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), cts.Token);
        var query = buffer[..received.ReceivedBytes];
        Assert.Equal(TsigPresence.Found, Portcullis.Protocol.Tsig.Tsig.Find(query, out var record));
        Span<byte> name = stackalloc byte[255];
        Assert.True(DnsName.EqualsIgnoreCase(name[..record.KeyName(query, name)], key.NameWire));
        var verified = Portcullis.Protocol.Tsig.Tsig.VerifyMac(query, record, verifyWith ?? key, default, hasPrior: false);
        Assert.True(Portcullis.Protocol.Tsig.Tsig.TimeIsValid(record, DateTimeOffset.UtcNow.ToUnixTimeSeconds()));

        var response = AnswerTo(query[..record.Start], ["example. 3600 IN SOA ns.example. admin.example. 7 3600 900 604800 300"]);
        byte[] reply = new byte[response.Length + Portcullis.Protocol.Tsig.Tsig.MaxRecordSize(answerKey)];
        response.CopyTo(reply, 0);
        byte[] mac = new byte[TsigAlgorithms.MaxMacSize];
        int length = Portcullis.Protocol.Tsig.Tsig.Sign(reply, response.Length, answerKey, record.Mac(query), hasPrior: true,
            DateTimeOffset.UtcNow.ToUnixTimeSeconds(), Portcullis.Protocol.Tsig.Tsig.DefaultFudge, TsigError.NoError, default, false, mac, out _);
        await socket.SendToAsync(reply.AsMemory(0, length), SocketFlags.None, received.RemoteEndPoint, cts.Token);
        return (await run, verified);
    }
}
