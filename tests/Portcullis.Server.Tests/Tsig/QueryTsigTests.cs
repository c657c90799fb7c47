using System.Text.Json;
using Portcullis.Server.Tests.Cli;
using Portcullis.Server.Tests.Support;
using Portcullis.Testing;
using Xunit;

namespace Portcullis.Server.Tests.Tsig;

/// <summary>
/// `portcullis query --tsig` against BIND and Knot that allow transfers only with a key: the signed
/// AXFR gives what dig -y gets, a wrong secret or no key gets nothing, and each failure is one line
/// on stderr with exit 1 (a script can tell a refused signature from a good answer).
/// </summary>
public sealed class QueryTsigTests
{
    private static readonly PeerKey Key = PeerKey.TestOnly;
    private static readonly PeerKey WrongSecret = Key with { Secret = "b3RoZXItdGVzdC1vbmx5LXNlY3JldC0zMi1vY3RldHM=" };

    private static ProcessResult Query(params string[] args) => ExternalProcess.Run("dotnet", [QueryCommandTests.Binary, "query", .. args]);

    private static List<string> Records(JsonElement json) =>
        [.. json.GetProperty("answer").EnumerateArray().Select(r => QueryCommandTests.Normalize(r.GetProperty("name").GetString()!,
            r.GetProperty("ttl").GetUInt32().ToString(), r.GetProperty("class").GetString()!, r.GetProperty("type").GetString()!, r.GetProperty("data").GetString()!))];

    /// <summary>dig's transfer output without comments and without its TSIG lines.</summary>
    private static List<string> Records(string digOutput) =>
        [.. digOutput.Split('\n').Where(l => l.Length > 0 && !l.StartsWith(';')).Select(l => QueryCommandTests.Whitespace().Split(l.Trim(), 5))
            .Where(p => p[3] != "TSIG").Select(p => QueryCommandTests.Normalize(p[0], p[1], p[2], p[3], p[4]))];

    private static PeerServer Start(string peer, string zoneFile) => peer == "knot"
        ? new KnotPeer([new PeerZone("example.test", zoneFile)], transferKey: Key)
        : new BindPeer([new PeerZone("example.test", zoneFile)], transferKey: Key);

    [Theory]
    [InlineData("knot")]
    [InlineData("bind")]
    public void A_signed_transfer_gives_what_dig_gets_and_unsigned_or_wrongly_signed_ones_get_nothing(string peer)
    {
        string dir = Directory.CreateTempSubdirectory("query-tsig").FullName;
        try
        {
            string file = Path.Combine(dir, "example.test.zone");
            File.WriteAllText(file, TestServer.ExampleZone);
            using var server = Start(peer, file);
            string[] at = ["@127.0.0.1", "-p", server.Port.ToString()];

            var signed = Query([.. at, "example.test", "AXFR", "--tsig", Key.Spec, "--json"]);
            Assert.True(signed.ExitCode == 0, $"exit {signed.ExitCode}: {signed.Stderr}");
            var json = JsonDocument.Parse(signed.Stdout).RootElement;
            QueryCommandTests.AssertSchema(json);
            var ours = Records(json);
            var dig = ExternalProcess.Run("dig", ["+tries=1", "+time=5", .. at, "-y", $"{Key.Algorithm}:{Key.Name}:{Key.Secret}", "+nocmd", "+nostats", "example.test", "AXFR"]).EnsureSuccess();
            Assert.Equal(Records(dig.Stdout), ours);
            Assert.True(ours.Count > 5);

            // The text output shows the TSIG record apart, as dig does, for a plain signed query.
            var text = Query([.. at, "example.test", "SOA", "--tsig", Key.Spec]);
            Assert.Equal(0, text.ExitCode);
            Assert.True(text.Stdout.Contains(";; TSIG PSEUDOSECTION:"), text.Stdout);
            Assert.Contains("transfer.test.\t0\tANY\tTSIG\thmac-sha256.", text.Stdout);

            // No key: the transfer is refused, nothing of the zone comes.
            var unsigned = Query([.. at, "example.test", "AXFR", "--json"]);
            Assert.Equal(0, JsonDocument.Parse(unsigned.Stdout).RootElement.GetProperty("answer").GetArrayLength());

            // Another secret under the same name: the server answers NOTAUTH with BADSIG, unsigned.
            var wrong = Query([.. at, "example.test", "AXFR", "--tsig", WrongSecret.Spec]);
            Assert.Equal(1, wrong.ExitCode);
            Assert.Contains("portcullis: TSIG: the server refused the signature: BADSIG", wrong.Stderr);
            Assert.Single(wrong.Stderr.Trim().Split('\n'));
            Assert.DoesNotContain("www.example.test", wrong.Stdout);

            // An unknown key name: BADKEY.
            var unknown = Query([.. at, "example.test", "SOA", "--tsig", $"nobody.test:{Key.Algorithm}:{Key.Secret}"]);
            Assert.Equal(1, unknown.ExitCode);
            Assert.Contains("BADKEY", unknown.Stderr);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void A_bad_key_spec_is_a_usage_error()
    {
        var result = Query("@127.0.0.1", "example.test", "--tsig", "transfer.test:hmac-md5:" + Key.Secret);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("--tsig algorithm 'hmac-md5'", result.Stderr);
    }
}
