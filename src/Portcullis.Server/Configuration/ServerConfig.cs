using System.Globalization;
using System.Net;

namespace Portcullis.Server.Configuration;

/// <summary>
/// The server's configuration, as read from YAML (keys in kebab-case) and overridden by flags.
/// See docs/configuration.md for every key with its default.
/// </summary>
public sealed class ServerConfig
{
    /// <summary>Addresses to listen on, UDP and TCP each: "127.0.0.1:53", "[::1]:53", "::1" (port 53).</summary>
    public List<string> Listen { get; set; } = [];
    public List<ZoneConfig> Zones { get; set; } = [];
    public LimitsConfig Limits { get; set; } = new();
    public ChaosConfig Chaos { get; set; } = new();
    public LoggingConfig Logging { get; set; } = new();
    /// <summary>
    /// UDP sockets (each with its own thread) per listen address, sharing the port through
    /// SO_REUSEPORT; 0 means one per core.
    /// </summary>
    public int UdpWorkers { get; set; }
    /// <summary>Where `serve` writes its process id, for `portcullis reload` (SIGHUP).</summary>
    public string? PidFile { get; set; }

    /// <summary>The file this came from, for messages (null when built from flags only).</summary>
    [YamlDotNet.Serialization.YamlIgnore]
    public string? SourceFile { get; set; }

    public static IPEndPoint ParseEndPoint(string text)
    {
        text = text.Trim();
        // "[v6]:port" or "v4:port" carry a port; a bare address (v4, or v6 without brackets) means port 53.
        bool hasPort = text.StartsWith('[') ? text.Contains("]:", StringComparison.Ordinal) : text.Count(c => c == ':') == 1;
        if (hasPort && IPEndPoint.TryParse(text, out var ep)) return ep;
        if (!hasPort && IPAddress.TryParse(text.Trim('[', ']'), out var bare)) return new IPEndPoint(bare, 53);
        throw new FormatException($"'{text}' is not an address or address:port (use [v6]:port for IPv6)");
    }

    public static TimeSpan ParseDuration(string text)
    {
        text = text.Trim();
        if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int seconds)) return TimeSpan.FromSeconds(seconds);
        foreach (var (suffix, unit) in new[] { ("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0) })
            if (text.EndsWith(suffix, StringComparison.OrdinalIgnoreCase)
                && double.TryParse(text[..^suffix.Length], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double v) && v >= 0)
                return TimeSpan.FromSeconds(v * unit);
        throw new FormatException($"'{text}' is not a duration (e.g. 10s, 500ms, 2m)");
    }
}

public sealed class ZoneConfig
{
    public string Name { get; set; } = "";
    public string File { get; set; } = "";
}

public sealed class LimitsConfig
{
    /// <summary>Largest UDP response with EDNS (RFC 9715 / DNS Flag Day 2020 suggest 1232).</summary>
    public int UdpMaxResponse { get; set; } = 1232;
    public string TcpIdleTimeout { get; set; } = "10s";
    public int TcpMaxConnections { get; set; } = 1000;
    public int TcpMaxConnectionsPerClient { get; set; } = 32;
}

/// <summary>
/// Answers to CHAOS-class identity queries. All null by default: version.bind, hostname.bind,
/// id.server and version.server are REFUSED so the server does not disclose itself.
/// </summary>
public sealed class ChaosConfig
{
    public string? Version { get; set; }
    public string? Hostname { get; set; }
    public string? ServerId { get; set; }
}

public sealed class LoggingConfig
{
    /// <summary>trace, debug, information, warning, error.</summary>
    public string Level { get; set; } = "information";
}
