using System.Text.RegularExpressions;
using Portcullis.Testing;

namespace Portcullis.Server.Tests.Cli;

/// <summary>
/// `portcullis serve` as an operator runs it: the real binary in its own process, asked by dig and
/// kdig from Debian, reloaded by `portcullis reload`, stopped by SIGTERM.
/// </summary>
public sealed class ServeCommandTests : IDisposable
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);
    private readonly string _dir = Directory.CreateTempSubdirectory("portcullis-serve-").FullName;
    private readonly List<BackgroundProcess> _processes = [];

    public void Dispose()
    {
        foreach (var p in _processes) p.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private static string Binary => Path.Combine(AppContext.BaseDirectory, "portcullis.dll");

    private BackgroundProcess Serve(params string[] args)
    {
        var p = new BackgroundProcess("dotnet", [Binary, "serve", .. args]);
        _processes.Add(p);
        return p;
    }

    private (BackgroundProcess Process, int Port, string PidFile) StartExample(string? zoneFile = null)
    {
        int port = FreePort.ForUdpAndTcp();
        string pidFile = Path.Combine(_dir, $"serve-{port}.pid");
        var args = new List<string> { "--listen", $"127.0.0.1:{port}", "--pid-file", pidFile };
        if (zoneFile is not null) args.AddRange(["--zone", $"example.test={zoneFile}"]);
        var p = Serve([.. args]);
        Assert.True(p.WaitForOutput("ready", Wait), $"server did not start:\n{p.Output}");
        return (p, port, pidFile);
    }

    private static ProcessResult Dig(int port, params string[] args) =>
        ExternalProcess.Run("dig", ["@127.0.0.1", "-p", port.ToString(), "+tries=1", "+time=5", .. args]).EnsureSuccess();

    [Fact]
    public void With_no_zones_it_serves_the_embedded_example_zone_to_dig()
    {
        var (_, port, _) = StartExample();
        var dig = Dig(port, "example.test", "SOA", "+norec");
        Assert.Contains("status: NOERROR", dig.Stdout);
        Assert.Matches(new Regex(@"flags: qr aa;"), dig.Stdout);
        Assert.Contains("hostmaster.example.test.", dig.Stdout);
        var tcp = Dig(port, "www.example.test", "AAAA", "+tcp", "+short");
        Assert.Equal("2001:db8::80", tcp.Stdout.Trim());
    }

    [Fact]
    public void A_config_file_without_zones_serves_the_embedded_example_zone()
    {
        int port = FreePort.ForUdpAndTcp();
        var config = Path.Combine(_dir, "nozones.yaml");
        File.WriteAllText(config, $"listen: [ \"127.0.0.1:{port}\" ]\nrate-limit:\n  responses-per-second: 50\n");
        var p = Serve("--config", config);
        Assert.True(p.WaitForOutput("ready", Wait), $"server did not start:\n{p.Output}");
        Assert.Equal("192.0.2.80", Dig(port, "www.example.test", "A", "+short").Stdout.Trim());
    }

    [Fact]
    public void Kdig_gets_answers_over_udp_and_tcp()
    {
        var (_, port, _) = StartExample();
        var udp = ExternalProcess.Run("kdig", ["@127.0.0.1", "-p", port.ToString(), "+short", "mail.example.test", "A"]).EnsureSuccess();
        Assert.Equal("192.0.2.25", udp.Stdout.Trim());
        var tcp = ExternalProcess.Run("kdig", ["@127.0.0.1", "-p", port.ToString(), "+tcp", "nope.x.b.ent.example.test", "A"]).EnsureSuccess();
        Assert.Contains("status: NXDOMAIN", tcp.Stdout);
    }

    [Fact]
    public void Reload_picks_up_a_changed_zone_file()
    {
        var zone = Path.Combine(_dir, "example.test.zone");
        File.Copy(Path.Combine(AppContext.BaseDirectory, "zones", "example.test.zone"), zone);
        var (p, port, pidFile) = StartExample(zone);
        Assert.Equal("192.0.2.80", Dig(port, "www.example.test", "A", "+short").Stdout.Trim());
        File.WriteAllText(zone, File.ReadAllText(zone).Replace("2024060101", "2024060102").Replace("www                 A     192.0.2.80", "www                 A     192.0.2.81"));
        var reload = ExternalProcess.Run("dotnet", [Binary, "reload", "--pid-file", pidFile]).EnsureSuccess();
        Assert.Contains("reload requested", reload.Stdout);
        Assert.True(p.WaitForOutput("zone example.test. reloaded: serial 2024060102", Wait), p.Output);
        Assert.Equal("192.0.2.81", Dig(port, "www.example.test", "A", "+short").Stdout.Trim());
    }

    [Fact]
    public void Sigterm_stops_the_server_cleanly()
    {
        var (p, _, pidFile) = StartExample();
        ExternalProcess.Run("kill", ["-TERM", p.Id.ToString()]).EnsureSuccess();
        Assert.Equal(0, p.WaitForExit(Wait));
        Assert.False(File.Exists(pidFile));
    }

    [Fact]
    public void A_bad_zone_file_stops_start_up_with_file_line_and_exit_code_2()
    {
        var zone = Path.Combine(_dir, "bad.zone");
        File.WriteAllText(zone, "$TTL 1h\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\nwww MX ten mail\n");
        var p = Serve("--listen", $"127.0.0.1:{FreePort.ForUdpAndTcp()}", "--zone", $"bad.test={zone}");
        Assert.Equal(2, p.WaitForExit(Wait));
        Assert.Contains($"{zone}:5:", p.Output);
    }

    [Fact]
    public void A_bad_config_file_stops_start_up_with_file_line_and_exit_code_2()
    {
        var config = Path.Combine(_dir, "portcullis.yaml");
        File.WriteAllText(config, "listen:\n  - 127.0.0.1:0\nlimits:\n  tcp-idle-timeout: soon\n");
        var p = Serve("--config", config);
        Assert.Equal(2, p.WaitForExit(Wait));
        Assert.Contains($"{config}:4:", p.Output);
        Assert.Contains("tcp-idle-timeout", p.Output);
    }
}
