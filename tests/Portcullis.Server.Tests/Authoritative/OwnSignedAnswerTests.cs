using Portcullis.Server.Tests.Cli;
using Portcullis.Server.Tests.Support;
using Portcullis.Testing;
using Xunit;

namespace Portcullis.Server.Tests.Authoritative;

/// <summary>
/// The whole chain with our own tools: keys from `portcullis dnssec keygen` (ECDSAP256SHA256 and
/// ED25519, KSK + ZSK), the zone signed by `portcullis dnssec sign` (NSEC), served by Portcullis,
/// and every answer validated by `delv` holding the KSK as trust anchor.
/// </summary>
public sealed class OwnSignedAnswerTests
{
    private const string Origin = "example.test";

    private static ProcessResult Portcullis(string dir, params string[] args) =>
        ExternalProcess.Run("dotnet", [QueryCommandTests.Binary, .. args], workingDirectory: dir).EnsureSuccess();

    [Theory]
    [InlineData("ecdsap256sha256")]
    [InlineData("ed25519")]
    public void A_zone_signed_by_portcullis_and_served_by_it_validates_in_delv(string algorithm)
    {
        string dir = Directory.CreateTempSubdirectory("portcullis-own-signed-").FullName;
        try
        {
            string zone = Path.Combine(dir, "example.test.zone");
            File.WriteAllText(zone, TestServer.ExampleZone);
            string ksk = Portcullis(dir, "dnssec", "keygen", Origin, "-a", algorithm, "--ksk", "-K", dir).Stdout.Trim().Split('\n')[^1].Trim();
            Portcullis(dir, "dnssec", "keygen", Origin, "-a", algorithm, "-K", dir);
            Portcullis(dir, "dnssec", "sign", zone, "-o", Origin, "-K", dir, "-f", zone + ".signed");

            var keyLine = File.ReadAllLines(Path.Combine(dir, Path.GetFileName(ksk) + ".key")).First(l => !l.StartsWith(';'));
            var fields = keyLine.Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            int at = Array.IndexOf(fields, "DNSKEY");
            string anchors = Path.Combine(dir, "anchors.conf");
            File.WriteAllText(anchors, $"trust-anchors {{ {Origin}. static-key {fields[at + 1]} {fields[at + 2]} {fields[at + 3]} \"{string.Concat(fields[(at + 4)..])}\"; }};\n");

            using var server = new TestServer((Origin, File.ReadAllText(zone + ".signed")));
            foreach (var (name, type) in new[] { ("www.example.test", "A"), ("anything.example.test", "TXT"), ("nope.www.example.test", "A"), ("www.example.test", "MX"), ("example.test", "DNSKEY") })
            {
                var r = ExternalProcess.Run("delv", [$"@{server.EndPoint.Address}", "-p", server.EndPoint.Port.ToString(), "-a", anchors, $"+root={Origin}", name, type]);
                string output = r.Stdout + r.Stderr;
                Assert.True(output.Contains("fully validated") && !output.Contains("validation failed"), $"{name} {type}:\n{output}");
            }
        }
        finally { Directory.Delete(dir, true); }
    }
}
