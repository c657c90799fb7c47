using System.Globalization;
using System.Net;

namespace Portcullis.Server.Telemetry;

/// <summary>
/// The Prometheus metrics endpoint (<c>metrics: { listen: "127.0.0.1:9153" }</c>): off unless
/// <see cref="Listen"/> is set. The port defaults to 9153 (CoreDNS's), the address must be given, so
/// an operator who wants it beyond the loopback writes so; 127.0.0.1 is what the docs show.
/// </summary>
public sealed class MetricsConfig
{
    /// <summary>The default port when <see cref="Listen"/> names an address only.</summary>
    public const int DefaultPort = 9153;

    /// <summary>"address:port", "[v6]:port" or an address alone (port 9153); null: no endpoint unless <see cref="Enabled"/>.</summary>
    public string? Listen { get; set; }

    /// <summary>On without a listen address: the endpoint binds to the loopback, 127.0.0.1:9153.</summary>
    public bool Enabled { get; set; }

    /// <summary>Where the endpoint binds when enabled without a listen address: the loopback only.</summary>
    public const string DefaultListen = "127.0.0.1:9153";

    /// <summary>The sliding window of the top clients and top names gauges (at least 2s).</summary>
    public string TopWindow { get; set; } = "60s";
    /// <summary>How many top clients and top names are exported (0: none; at most 100).</summary>
    public int TopCount { get; set; } = TopTalkers.DefaultReported;

    /// <summary>
    /// The endpoint to bind, or null when metrics are off; false with a one-line
    /// <paramref name="error"/> when <see cref="Listen"/> is not an IP address with an optional port.
    /// </summary>
    public bool TryGetEndPoint(out IPEndPoint? endPoint, out string? error)
    {
        endPoint = null;
        error = null;
        if (Listen is null && !Enabled) return true;
        var text = (Listen ?? DefaultListen).Trim();
        if (IPAddress.TryParse(text.Trim('[', ']'), out var bare))
        {
            endPoint = new IPEndPoint(bare, DefaultPort);
            return true;
        }
        if (IPEndPoint.TryParse(text, out var parsed) && parsed.Port > 0)
        {
            endPoint = parsed;
            return true;
        }
        error = string.Create(CultureInfo.InvariantCulture, $"metrics listen \"{Listen}\" is not an IP address with an optional port (e.g. 127.0.0.1:9153)");
        return false;
    }
}
