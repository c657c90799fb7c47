using Portcullis.Protocol.Names;
using Portcullis.Server.Configuration;
using Portcullis.Server.Security;
using Portcullis.Testing;
using Xunit;

namespace Portcullis.Server.Tests.Tsig;

/// <summary>`portcullis tsig-keygen` and the `keys:` configuration: a key made by the tool loads
/// into Portcullis and into the peers that will share it (BIND's and Knot's own config checkers).</summary>
public class TsigKeygenTests
{
    private static string Binary => Path.Combine(AppContext.BaseDirectory, "portcullis.dll");

    private static ProcessResult Keygen(params string[] args) => ExternalProcess.Run("dotnet", [Binary, "tsig-keygen", .. args]);

    [Fact]
    public void A_generated_key_loads_as_configuration_and_is_usable_in_an_access_list()
    {
        var result = Keygen("transfer.example.com");
        Assert.Equal(0, result.ExitCode);
        var config = ConfigLoader.Parse(result.Stdout + "allow-transfer: [ \"key transfer.example.com\" ]\n", "k.yaml");
        var policy = SecurityPolicy.From(config, new LocalNetworks([]));
        var key = Assert.Single(policy.Keys.Keys);
        Assert.Equal("transfer.example.com.", key.Name.ToString());
        Assert.Equal(32, key.Secret.Length);
        Assert.True(policy.Defaults.Transfer.Allows(System.Net.IPAddress.Parse("192.0.2.1"), DnsName.Parse("Transfer.Example.Com.").Wire));
        Assert.False(policy.Defaults.Transfer.Allows(System.Net.IPAddress.Parse("192.0.2.1")));
        // Two runs never give the same secret.
        Assert.NotEqual(result.Stdout, Keygen("transfer.example.com").Stdout);
    }

    [Fact]
    public void The_bind_format_passes_named_checkconf_and_the_knot_format_knotc_conf_check()
    {
        string dir = Directory.CreateTempSubdirectory("portcullis-keygen-").FullName;
        try
        {
            var bind = Keygen("transfer.example.com", "-a", "hmac-sha512", "--format", "bind");
            Assert.Equal(0, bind.ExitCode);
            File.WriteAllText(Path.Combine(dir, "named.conf"), bind.Stdout);
            var checkBind = ExternalProcess.Run("named-checkconf", [Path.Combine(dir, "named.conf")]);
            Assert.True(checkBind.ExitCode == 0, checkBind.Stdout + checkBind.Stderr);

            var knot = Keygen("transfer.example.com", "--format", "knot");
            File.WriteAllText(Path.Combine(dir, "knot.conf"), knot.Stdout);
            var checkKnot = ExternalProcess.Run("knotc", ["-c", Path.Combine(dir, "knot.conf"), "conf-check"]);
            Assert.True(checkKnot.ExitCode == 0, checkKnot.Stdout + checkKnot.Stderr);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Theory]
    [InlineData("bad..name", "not a key name")]
    [InlineData("k.example -a hmac-md5", "--algorithm hmac-md5")]
    [InlineData("k.example --format xml", "--format xml")]
    public void Bad_arguments_are_usage_errors(string args, string expected)
    {
        var result = Keygen(args.Split(' '));
        Assert.Equal(2, result.ExitCode);
        Assert.Contains(expected, result.Stderr);
        Assert.DoesNotContain("   at ", result.Stderr);
    }

    [Theory]
    [InlineData("keys:\n  - name: k.example\n    secret: c2hvcnQ=\n", "k.yaml:3:13", "fewer than 16")]
    [InlineData("keys:\n  - name: k.example\n    algorithm: hmac-md5\n    secret: dGVzdC1vbmx5LXRzaWctc2VjcmV0LTMyLW9jdGV0cyE=\n", "k.yaml:3:16", "algorithm 'hmac-md5'")]
    [InlineData("keys:\n  - name: k.example\n    secret: dGVzdC1vbmx5LXRzaWctc2VjcmV0LTMyLW9jdGV0cyE=\n  - name: K.Example.\n    secret: dGVzdC1vbmx5LXRzaWctc2VjcmV0LTMyLW9jdGV0cyE=\n", "k.yaml:4:11", "defined twice")]
    [InlineData("allow-transfer: [ \"key missing.example\" ]\n", "k.yaml:1:19", "no key named missing.example.")]
    public void Key_errors_name_the_file_line_and_problem(string yaml, string where, string problem)
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(yaml, "k.yaml"));
        Assert.StartsWith(where, e.Message);
        Assert.Contains(problem, e.Message);
    }
}
