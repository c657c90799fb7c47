using System.CommandLine;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Portcullis.Server.Configuration;
using Portcullis.Server.Hosting;

namespace Portcullis.Cli;

/// <summary>
/// `portcullis serve [--config FILE] [--listen ADDR:PORT]... [--zone ORIGIN=FILE]...`: runs the
/// authoritative server until SIGTERM or SIGINT; SIGHUP (or `portcullis reload`) reloads the
/// configuration and changed zones. With neither zones nor listen addresses it serves the embedded
/// example zone on 127.0.0.1 and ::1, port 53. Exit codes: 0 after a clean stop, 1 when a socket
/// cannot be bound, 2 for a bad configuration or zone (the message names file, line and problem).
/// </summary>
public static class ServeCommand
{
    public static readonly string[] DefaultListen = ["127.0.0.1:53", "[::1]:53"];
    public const string DefaultZoneName = "example.test";
    public const string DefaultZoneFile = DnsServer.EmbeddedPrefix + "example.test.zone";

    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var config = new Option<string?>("--config", "-c") { Description = "YAML configuration file (see docs/configuration.md)." };
        var listen = new Option<string[]>("--listen", "-l") { Description = "Address and port to serve on, UDP and TCP (repeatable): 127.0.0.1:53, [::1]:53.", AllowMultipleArgumentsPerToken = false };
        var zone = new Option<string[]>("--zone", "-z") { Description = "A zone to serve, ORIGIN=FILE (repeatable)." };
        var pidFile = new Option<string?>("--pid-file") { Description = "Write the process id here (for `portcullis reload`)." };
        var logLevel = new Option<string?>("--log-level") { Description = "trace, debug, information, warning or error." };
        var udpWorkers = new Option<int?>("--udp-workers") { Description = "UDP sockets and threads per listen address (default: one per core)." };
        var command = new Command("serve", "Run the DNS server.") { config, listen, zone, pidFile, logLevel, udpWorkers };
        command.SetAction(result => Run(result.GetValue(config), result.GetValue(listen) ?? [], result.GetValue(zone) ?? [],
            result.GetValue(pidFile), result.GetValue(logLevel), stderr, CancellationToken.None, result.GetValue(udpWorkers)));
        return command;
    }

    /// <summary>Builds the effective configuration: the file (if any), then the flags, then the embedded defaults.</summary>
    public static ServerConfig Resolve(string? configFile, string[] listen, string[] zones, string? pidFile, string? logLevel, int? udpWorkers = null)
    {
        var config = configFile is null ? new ServerConfig() : ConfigLoader.Load(configFile);
        if (listen.Length > 0) config.Listen = [.. listen];
        foreach (var z in zones)
        {
            int eq = z.IndexOf('=');
            if (eq <= 0 || eq == z.Length - 1) throw new ConfigException($"--zone '{z}': expected ORIGIN=FILE");
            string name = z[..eq], file = Path.GetFullPath(z[(eq + 1)..]);
            var existing = config.Zones.FindIndex(c => string.Equals(c.Name.TrimEnd('.'), name.TrimEnd('.'), StringComparison.OrdinalIgnoreCase));
            var entry = new ZoneConfig { Name = name, File = file };
            if (existing >= 0) config.Zones[existing] = entry; else config.Zones.Add(entry);
        }
        if (pidFile is not null) config.PidFile = pidFile;
        if (logLevel is not null) config.Logging.Level = logLevel;
        if (udpWorkers is not null) config.UdpWorkers = udpWorkers.Value;
        if (config.Listen.Count == 0) config.Listen = [.. DefaultListen];
        if (config.Zones.Count == 0) config.Zones.Add(new ZoneConfig { Name = DefaultZoneName, File = DefaultZoneFile });
        ConfigLoader.Validate(config, configFile is null ? null : configFile);
        return config;
    }

    public static int Run(string? configFile, string[] listen, string[] zones, string? pidFile, string? logLevel, TextWriter stderr,
        CancellationToken stop, int? udpWorkers = null)
    {
        ServerConfig config;
        try
        {
            config = Resolve(configFile, listen, zones, pidFile, logLevel, udpWorkers);
        }
        catch (ConfigException e)
        {
            stderr.WriteLine($"portcullis: {e.Message}");
            return CommandLine.UsageError;
        }
        if (!TryParseLevel(config.Logging.Level, out var level))
        {
            stderr.WriteLine($"portcullis: {config.SourceFile ?? "command line"}: logging: level '{config.Logging.Level}' is not one of trace, debug, information, warning, error");
            return CommandLine.UsageError;
        }
        using var loggerFactory = LoggerFactory.Create(b => b
            .SetMinimumLevel(level)
            .AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ "; o.UseUtcTimestamp = true; })
            .AddFilter(l => l >= level));
        var logger = loggerFactory.CreateLogger("Portcullis");

        using var server = new DnsServer(config, loggerFactory,
            () => Resolve(configFile, listen, zones, pidFile, logLevel, udpWorkers));
        try
        {
            server.Start();
        }
        catch (ZoneLoadException e)
        {
            stderr.WriteLine($"portcullis: {e.Message}");
            return CommandLine.UsageError;
        }
        catch (Portcullis.Server.Telemetry.MetricsEndpointException e)
        {
            stderr.WriteLine($"portcullis: {e.Message}");
            return CommandLine.Problems;
        }
        catch (SocketException e)
        {
            stderr.WriteLine($"portcullis: cannot listen: {e.Message} ({e.SocketErrorCode}); port 53 needs root or CAP_NET_BIND_SERVICE");
            return CommandLine.Problems;
        }

        using var stopped = CancellationTokenSource.CreateLinkedTokenSource(stop);
        void Stop(PosixSignalContext ctx) { ctx.Cancel = true; stopped.Cancel(); }
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
        using var hangup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, ctx =>
        {
            ctx.Cancel = true;
            logger.LogInformation("SIGHUP: reloading configuration and zones");
            ThreadPool.QueueUserWorkItem(_ => server.Reload());
        });
        if (config.PidFile is not null) File.WriteAllText(config.PidFile, Environment.ProcessId + "\n");
        logger.LogInformation("ready");
        try
        {
            stopped.Token.WaitHandle.WaitOne();
        }
        finally
        {
            logger.LogInformation("stopping");
            if (config.PidFile is not null) { try { File.Delete(config.PidFile); } catch (IOException) { } }
        }
        return CommandLine.Success;
    }

    private static bool TryParseLevel(string text, out LogLevel level)
    {
        level = text.ToLowerInvariant() switch
        {
            "trace" => LogLevel.Trace,
            "debug" => LogLevel.Debug,
            "information" or "info" => LogLevel.Information,
            "warning" or "warn" => LogLevel.Warning,
            "error" => LogLevel.Error,
            _ => LogLevel.None,
        };
        return level != LogLevel.None;
    }
}
