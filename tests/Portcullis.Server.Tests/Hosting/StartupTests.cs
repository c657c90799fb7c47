using Microsoft.Extensions.Logging.Abstractions;
using Portcullis.Server.Configuration;
using Portcullis.Server.Hosting;

namespace Portcullis.Server.Tests.Hosting;

/// <summary>A bad zone or configuration stops start-up with a message naming file, line and problem.</summary>
public sealed class StartupTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("portcullis-startup-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void A_zone_error_names_the_file_and_line()
    {
        var file = Path.Combine(_dir, "bad.zone");
        File.WriteAllText(file, "$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\nwww A 999.1.2.3\n");
        var config = new ServerConfig { Listen = [$"{Portcullis.Server.Tests.Support.TestServer.NextAddress()}:0"], Zones = [new ZoneConfig { Name = "bad.test", File = file }] };
        using var server = new DnsServer(config, NullLoggerFactory.Instance);
        var e = Assert.Throws<ZoneLoadException>(server.Start);
        Assert.Contains($"{file}:5:", e.Message);
        Assert.Contains("IPv4", e.Message);
    }

    [Fact]
    public void A_zone_without_ns_is_refused_at_start()
    {
        var file = Path.Combine(_dir, "nons.zone");
        File.WriteAllText(file, "$TTL 60\n@ SOA ns h 1 2 3 4 5\nns A 192.0.2.1\n");
        var config = new ServerConfig { Listen = [$"{Portcullis.Server.Tests.Support.TestServer.NextAddress()}:0"], Zones = [new ZoneConfig { Name = "nons.test", File = file }] };
        using var server = new DnsServer(config, NullLoggerFactory.Instance);
        var e = Assert.Throws<ZoneLoadException>(server.Start);
        Assert.Contains("no NS records", e.Message);
    }

    [Fact]
    public void A_config_error_names_the_file_line_and_key()
    {
        var file = Path.Combine(_dir, "portcullis.yaml");
        File.WriteAllText(file, "listen:\n  - 127.0.0.1:5353\nlimits:\n  udp-max-respons: 1232\n");
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Load(file));
        Assert.StartsWith($"{file}:4:", e.Message);
        Assert.Contains("udp-max-respons", e.Message);
    }

    [Fact]
    public void A_bad_listen_address_is_a_config_error()
    {
        var file = Path.Combine(_dir, "portcullis.yaml");
        File.WriteAllText(file, "listen: [\"not-an-address\"]\n");
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Load(file));
        Assert.StartsWith($"{file}:1:", e.Message);
        Assert.Contains("not-an-address", e.Message);
    }

    [Fact]
    public void Zone_files_in_a_config_are_relative_to_the_config_file()
    {
        var file = Path.Combine(_dir, "portcullis.yaml");
        File.WriteAllText(file, "zones:\n  - name: example.test\n    file: example.test.zone\n");
        var config = ConfigLoader.Load(file);
        Assert.Equal(Path.Combine(_dir, "example.test.zone"), config.Zones[0].File);
    }
}

public sealed class ListenAddressTests
{
    [Theory]
    [InlineData("127.0.0.1:5353", "127.0.0.1:5353")]
    [InlineData("127.0.0.1", "127.0.0.1:53")]
    [InlineData("[::1]:5353", "[::1]:5353")]
    [InlineData("::1", "[::1]:53")]
    [InlineData("[::1]", "[::1]:53")]
    [InlineData("0.0.0.0:0", "0.0.0.0:0")]
    public void Listen_addresses_take_port_53_unless_given(string text, string expected) =>
        Assert.Equal(expected, ServerConfig.ParseEndPoint(text).ToString());
}
