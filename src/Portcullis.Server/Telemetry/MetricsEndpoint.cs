using System.Net;
using System.Net.Sockets;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;

namespace Portcullis.Server.Telemetry;

/// <summary>
/// Serves the instruments of one System.Diagnostics.Metrics meter (the server's, "Portcullis") at
/// http://address:port/metrics in the Prometheus text format, through OpenTelemetry's stand-alone
/// HttpListener exporter (no ASP.NET). It names metrics the way Prometheus expects
/// (portcullis.queries → portcullis_queries_total, a counter; histograms get their unit:
/// portcullis_response_size_bytes, portcullis_query_duration_seconds). prometheus-net's
/// MeterAdapter was tried first and not kept: it exports .NET counters as gauges and prefixes
/// every name with the meter's (portcullis_portcullis_security_events). The meter provider is
/// this endpoint's own and reads only the chosen meter, so two endpoints in one process (tests)
/// do not mix. Recording stays on the SDK's lock-free, allocation-free path for up to eight tags.
/// </summary>
public sealed class MetricsEndpoint : IDisposable
{
    private readonly MeterProvider _provider;

    private MetricsEndpoint(IPEndPoint endPoint, MeterProvider provider)
    {
        EndPoint = endPoint;
        _provider = provider;
    }

    /// <summary>Where the endpoint listens.</summary>
    public IPEndPoint EndPoint { get; }

    /// <summary>The scrape URL, http://address:port/metrics.</summary>
    public Uri Url => new($"http://{EndPoint}/metrics");

    /// <summary>
    /// Starts serving the meter named <paramref name="meterName"/> on <paramref name="endPoint"/>.
    /// Throws <see cref="MetricsEndpointException"/> with a one-line message when the address
    /// cannot be bound (in use, not local).
    /// </summary>
    public static MetricsEndpoint Start(IPEndPoint endPoint, string meterName = "Portcullis")
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        // HttpListener takes "http://host:port/" prefixes; an IPv6 address goes in brackets.
        string host = endPoint.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{endPoint.Address}]" : endPoint.Address.ToString();
        try
        {
            var provider = Sdk.CreateMeterProviderBuilder()
                .AddMeter(meterName)
                .AddView(QueryMetrics.ResponseSizeName, new ExplicitBucketHistogramConfiguration { Boundaries = QueryMetrics.SizeBuckets })
                .AddView(QueryMetrics.LatencyName, new ExplicitBucketHistogramConfiguration { Boundaries = QueryMetrics.LatencyBuckets })
                .AddPrometheusHttpListener(o =>
                {
                    o.Host = host;
                    o.Port = endPoint.Port;
                    o.ScrapeEndpointPath = "/metrics";
                    // Every scrape reads the counters afresh (the default caches an answer for 300 ms).
                    o.ScrapeResponseCacheDurationMilliseconds = 0;
                    // No target_info series: the scrape job's labels name the server.
                    o.TargetInfoEnabled = false;
                    // Nor an otel_scope_name label on every series: there is one meter.
                    o.ScopeInfoEnabled = false;
                })
                .Build();
            return new MetricsEndpoint(endPoint, provider);
        }
        catch (Exception e) when (e is HttpListenerException or SocketException or InvalidOperationException)
        {
            throw new MetricsEndpointException($"metrics: cannot listen on {endPoint}: {e.Message}", e);
        }
    }

    /// <summary>
    /// Starts the endpoint <paramref name="config"/> asks for, or returns null when metrics are off;
    /// <see cref="MetricsEndpointException"/> when its listen value is not an address or cannot be bound.
    /// </summary>
    public static MetricsEndpoint? Start(MetricsConfig config, string meterName = "Portcullis")
    {
        ArgumentNullException.ThrowIfNull(config);
        if (!config.TryGetEndPoint(out var endPoint, out var error)) throw new MetricsEndpointException(error!);
        return endPoint is null ? null : Start(endPoint, meterName);
    }

    public void Dispose() => _provider.Dispose();
}

/// <summary>The metrics endpoint could not start; the message is one line, for "portcullis: MESSAGE".</summary>
public sealed class MetricsEndpointException(string message, Exception? inner = null) : Exception(message, inner);
