using Portcullis.Cli;
using Portcullis.Protocol.Dnssec;

namespace Portcullis.Server.Tests.Cli;

/// <summary>
/// `portcullis dnssec keygen|sign|ds` as an operator meets it: file names, flags, the DS printed,
/// and one-line errors with exit 2 for usage and 1 for failures.
/// </summary>
public sealed class DnssecCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("portcullis-dnssec-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static (int Code, string Stdout, string Stderr) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = CommandLine.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    private string WriteZone()
    {
        string path = Path.Combine(_dir, "z.zone");
        File.WriteAllText(path, """
            $ORIGIN example.test.
            $TTL 3600
            @ SOA ns1 hostmaster 1 7200 3600 1209600 300
            @ NS ns1
            ns1 A 192.0.2.1
            www A 192.0.2.3

            """);
        return path;
    }

    [Fact]
    public void Keygen_writes_the_BIND_pair_and_prints_its_base_name()
    {
        var (code, stdout, stderr) = Run("dnssec", "keygen", "example.test", "-K", _dir);
        Assert.True(code == 0, stderr);
        string name = stdout.Trim();
        Assert.Matches(@"^Kexample\.test\.\+013\+\d{5}$", name);
        Assert.True(File.Exists(Path.Combine(_dir, name + ".key")));
        Assert.StartsWith("Private-key-format: v1.3\nAlgorithm: 13 (ECDSAP256SHA256)\nPrivateKey: ",
            File.ReadAllText(Path.Combine(_dir, name + ".private")), StringComparison.Ordinal);
        var (_, rdata) = DnssecKeyFile.ReadPublic(Path.Combine(_dir, name));
        Assert.Equal(256, DnsKey.Flags(rdata));

        var ksk = Run("dnssec", "keygen", "example.test.", "-a", "ed25519", "--ksk", "-K", _dir);
        Assert.Equal(0, ksk.Code);
        Assert.Matches(@"^Kexample\.test\.\+015\+\d{5}$", ksk.Stdout.Trim());
        Assert.Equal(257, DnsKey.Flags(DnssecKeyFile.ReadPublic(Path.Combine(_dir, ksk.Stdout.Trim())).Rdata));
    }

    [Fact]
    public void Sign_writes_ZONEFILE_signed_by_default_and_prints_the_DS_of_each_KSK_only()
    {
        string zone = WriteZone();
        string ksk = Run("dnssec", "keygen", "example.test", "--ksk", "-K", _dir).Stdout.Trim();
        Run("dnssec", "keygen", "example.test", "-K", _dir);
        var (code, stdout, stderr) = Run("dnssec", "sign", zone, "-o", "example.test", "-K", _dir);
        Assert.True(code == 0, stderr);
        Assert.True(File.Exists(zone + ".signed"));
        var ds = Run("dnssec", "ds", Path.Combine(_dir, ksk + ".key"));
        Assert.Equal(0, ds.Code);
        Assert.Equal(ds.Stdout, stdout);
        Assert.Matches(@"^example\.test\. IN DS \d+ 13 2 [0-9A-F]{64}\n$", stdout);
    }

    [Fact]
    public void Sign_with_zonemd_adds_a_digest_that_ldns_verify_zone_checks()
    {
        string zone = WriteZone();
        Run("dnssec", "keygen", "example.test", "--ksk", "-K", _dir);
        Run("dnssec", "keygen", "example.test", "-K", _dir);
        var (code, _, stderr) = Run("dnssec", "sign", zone, "-o", "example.test", "-K", _dir, "--zonemd");
        Assert.True(code == 0, stderr);
        Assert.Contains("\tZONEMD\t", File.ReadAllText(zone + ".signed"));
        var ldns = Portcullis.Testing.ExternalProcess.Run("ldns-verify-zone", ["-ZZ", zone + ".signed"]);
        Assert.True(ldns.ExitCode == 0, ldns.Stdout + ldns.Stderr);
        // A changed record (its signature left as it was would fail anyway; the digest fails first or too).
        File.WriteAllText(zone + ".tampered", File.ReadAllText(zone + ".signed").Replace("192.0.2.3", "192.0.2.4"));
        Assert.NotEqual(0, Portcullis.Testing.ExternalProcess.Run("ldns-verify-zone", ["-ZZ", zone + ".tampered"]).ExitCode);
    }

    [Theory]
    [InlineData(2, "dnssec", "keygen", "example.test", "-a", "dsa")]
    [InlineData(2, "dnssec", "keygen", "exa..mple")]
    [InlineData(2, "dnssec", "sign", "z.zone")]
    [InlineData(2, "dnssec", "sign", "z.zone", "-o", "example.test", "-e", "0")]
    [InlineData(1, "dnssec", "ds", "/nonexistent/Kexample.test.+013+00001.key")]
    public void Errors_are_one_line_with_exit_2_for_usage_and_1_for_failure(int expected, params string[] args)
    {
        var (code, stdout, stderr) = Run(args);
        Assert.Equal(expected, code);
        Assert.Equal("", stdout);
        Assert.StartsWith("portcullis: ", stderr, StringComparison.Ordinal);
        if (expected == 1) Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void Sign_without_keys_for_the_zone_fails_in_one_line()
    {
        string zone = WriteZone();
        Run("dnssec", "keygen", "other.test", "-K", _dir);
        var (code, stdout, stderr) = Run("dnssec", "sign", zone, "-o", "example.test", "-K", _dir);
        Assert.Equal(1, code);
        Assert.Equal("", stdout);
        Assert.Equal($"portcullis: no keys for example.test. in {_dir}\n", stderr.ReplaceLineEndings("\n"));
        Assert.False(File.Exists(zone + ".signed"));
    }
}
