using System.Buffers.Binary;
using System.Net;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.Tsig;
using Portcullis.Server.Configuration;
using Portcullis.Server.Tests.Cli;
using Portcullis.Server.Tests.Support;
using Portcullis.Testing;
using Xunit;
using static Portcullis.Server.Tests.Transfer.TransferClient;

namespace Portcullis.Server.Tests.Tsig;

/// <summary>
/// Portcullis checking TSIG (RFC 8945) as a primary whose allow-transfer names only a key: dig,
/// kdig, `portcullis query` and real secondaries (Knot, BIND) transfer with the key and are signed
/// back message by message; no key, another secret, an unknown key or a stale time get no zone data.
/// </summary>
public sealed class ServerTsigTests
{
    private static readonly PeerKey Key = PeerKey.TestOnly;
    private const string WrongSecret = "b3RoZXItdGVzdC1vbmx5LXNlY3JldC0zMi1vY3RldHM=";
    private const string Origin = "example.test.";

    private static void KeyOnly(ServerConfig c)
    {
        c.Keys = [new KeyConfig { Name = Key.Name, Algorithm = Key.Algorithm, Secret = Key.Secret }];
        c.AllowTransfer = [$"key {Key.Name}"];
    }

    private static TestServer Primary() => new(KeyOnly, (Origin, TestServer.ExampleZone));

    private static ProcessResult DigAxfr(IPEndPoint server, string? keySecret) => ExternalProcess.Run("dig",
        ["+tries=1", "+time=5", $"@{server.Address}", "-p", server.Port.ToString(), .. keySecret is null ? Array.Empty<string>() : ["-y", $"{Key.Algorithm}:{Key.Name}:{keySecret}"],
         "+nocmd", "+nostats", Origin, "AXFR"]);

    private static List<string> RecordLines(string digOutput) =>
        [.. digOutput.Split('\n').Where(l => l.Length > 0 && !l.StartsWith(';')).Select(l => QueryCommandTests.Whitespace().Split(l.Trim(), 5))
            .Where(p => p.Length == 5 && p[3] != "TSIG").Select(p => $"{p[0]} {p[1]} {p[2]} {p[3]} {p[4]}".ToLowerInvariant())];

    [Fact]
    public void Dig_and_kdig_transfer_with_the_key_and_accept_every_signed_message()
    {
        using var server = Primary();
        var dig = DigAxfr(server.EndPoint, Key.Secret);
        Assert.DoesNotContain("Transfer failed", dig.Stdout);
        Assert.DoesNotContain("verify", dig.Stdout + dig.Stderr, StringComparison.OrdinalIgnoreCase);
        var lines = RecordLines(dig.Stdout);
        Assert.Equal(Parse(TestServer.ExampleZone, Origin).Count + 1, lines.Count);   // SOA first and last
        Assert.Contains(dig.Stdout.Split('\n'), l => l.Contains("\tTSIG\t"));     // signed, and dig checked it

        var kdig = ExternalProcess.Run("kdig", [$"@{server.EndPoint.Address}", "-p", server.EndPoint.Port.ToString(), "-y",
            $"{Key.Algorithm}:{Key.Name}:{Key.Secret}", "+retry=0", "+time=5", Origin, "AXFR"]);
        Assert.True(kdig.ExitCode == 0, kdig.Stdout + kdig.Stderr);
        Assert.DoesNotContain("failed", kdig.Stdout + kdig.Stderr, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("www.example.test.", kdig.Stdout);

        // A plain signed query is answered signed too.
        var query = ExternalProcess.Run("dotnet", [QueryCommandTests.Binary, "query", $"@{server.EndPoint.Address}", "-p", server.EndPoint.Port.ToString(),
            Origin, "SOA", "--tsig", Key.Spec]);
        Assert.True(query.ExitCode == 0, query.Stderr);
        Assert.Contains(";; TSIG PSEUDOSECTION:", query.Stdout);
    }

    [Fact]
    public void No_key_another_secret_or_an_unknown_key_get_no_zone_data()
    {
        using var server = Primary();
        var noKey = DigAxfr(server.EndPoint, null);
        Assert.Contains("Transfer failed", noKey.Stdout);
        Assert.Empty(RecordLines(noKey.Stdout));

        string[] at = [$"@{server.EndPoint.Address}", "-p", server.EndPoint.Port.ToString()];
        var wrong = ExternalProcess.Run("dotnet", [QueryCommandTests.Binary, "query", .. at, Origin, "AXFR", "--tsig", $"{Key.Name}:{Key.Algorithm}:{WrongSecret}"]);
        Assert.Equal(1, wrong.ExitCode);
        Assert.Contains("the server refused the signature: BADSIG", wrong.Stderr);
        Assert.DoesNotContain("www.example.test", wrong.Stdout);

        var unknown = ExternalProcess.Run("dotnet", [QueryCommandTests.Binary, "query", .. at, Origin, "AXFR", "--tsig", $"other.test:{Key.Algorithm}:{Key.Secret}"]);
        Assert.Equal(1, unknown.ExitCode);
        Assert.Contains("BADKEY", unknown.Stderr);
        Assert.Equal(2, server.Server.Processor.Counters[Portcullis.Server.Security.SecurityReason.TsigRejected]);
    }

    [Fact]
    public void A_request_or_transfer_signed_an_hour_ago_gets_BADTIME_signed_with_the_servers_clock()
    {
        using var server = Primary();
        var key = new TsigKey(DnsName.Parse(Key.Name), TsigAlgorithm.HmacSha256, Convert.FromBase64String(Key.Secret));
        var wire = DnsTestClient.Query(Origin, RecordType.SOA).ToWire();
        var buffer = new byte[wire.Length + Portcullis.Protocol.Tsig.Tsig.MaxRecordSize(key)];
        wire.CopyTo(buffer, 0);
        long then = DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 3600;
        var mac = new byte[64];
        int length = Portcullis.Protocol.Tsig.Tsig.Sign(buffer, wire.Length, key, default, false, then, 300, TsigError.NoError, default, false, mac, out int macLength);
        var reply = server.Client().UdpRaw(buffer[..length]);
        Assert.Equal((int)Rcode.NotAuth, reply[3] & 0xF);
        Assert.Equal(TsigPresence.Found, Portcullis.Protocol.Tsig.Tsig.Find(reply, out var record));
        Assert.Equal((ushort)TsigError.BadTime, record.Error);
        Assert.Equal(then, record.TimeSigned);
        long serverTime = ((long)BinaryPrimitives.ReadUInt16BigEndian(record.Other(reply)) << 32) | BinaryPrimitives.ReadUInt32BigEndian(record.Other(reply)[2..]);
        Assert.InRange(serverTime - then, 3500, 3700);
        // Signed with the key over the request's MAC, so the client can trust the clock it reports.
        Assert.Equal(TsigStatus.Ok, Portcullis.Protocol.Tsig.Tsig.VerifyMac(reply, record, key, mac.AsSpan(0, macLength), hasPrior: true));

        // The same stale signature on an AXFR over TCP: NOTAUTH, BADTIME, and no zone data.
        var axfr = DnsTestClient.Query(Origin, RecordType.AXFR).ToWire();
        var signedAxfr = new byte[axfr.Length + Portcullis.Protocol.Tsig.Tsig.MaxRecordSize(key)];
        axfr.CopyTo(signedAxfr, 0);
        int axfrLength = Portcullis.Protocol.Tsig.Tsig.Sign(signedAxfr, axfr.Length, key, default, false, then, 300, TsigError.NoError, default, false, mac, out _);
        var refused = server.Client().TcpRaw(signedAxfr[..axfrLength]);
        Assert.Equal((int)Rcode.NotAuth, refused[3] & 0xF);
        Assert.Equal(0, BinaryPrimitives.ReadUInt16BigEndian(refused.AsSpan(6)));   // ANCOUNT
        Portcullis.Protocol.Tsig.Tsig.Find(refused, out var axfrRecord);
        Assert.Equal((ushort)TsigError.BadTime, axfrRecord.Error);
    }

    [Theory]
    [InlineData("knot")]
    [InlineData("bind")]
    public void A_secondary_with_the_key_pulls_the_zone_and_serves_what_Portcullis_serves(string peer)
    {
        using var server = Primary();
        var tcp = server.Server.TcpEndPoints[0];
        using SecondaryPeer secondary = peer == "knot" ? new KnotSecondary(tcp, [Origin.TrimEnd('.')], key: Key) : new BindSecondary(tcp, [Origin.TrimEnd('.')], key: Key);
        AssertSameZone(Parse(TestServer.ExampleZone, Origin), Parse(Kdig(secondary.EndPoint, Origin), Origin));
    }
}
