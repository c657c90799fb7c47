namespace Portcullis.Server.Telemetry;

/// <summary>
/// dnstap: output (BIND's dnstap / dnstap-output): one of <see cref="File"/> or <see cref="Socket"/>
/// (a Frame Streams collector such as fstrm_capture or dnstap-receiver); off when neither is set.
/// </summary>
public sealed class DnstapConfig
{
    /// <summary>A dnstap file, truncated at start (read it with `dnstap-read`).</summary>
    public string? File { get; set; }
    /// <summary>The Unix socket of a Frame Streams collector.</summary>
    public string? Socket { get; set; }
    /// <summary>The identity field of every message (default: the host name).</summary>
    public string? Identity { get; set; }
    /// <summary>The version field of every message (default: "portcullis").</summary>
    public string? Version { get; set; }
    public bool LogClientQueries { get; set; } = true;
    public bool LogClientResponses { get; set; } = true;
    /// <summary>Queries the resolver sends upstream (RESOLVER_QUERY) and the responses it accepts (RESOLVER_RESPONSE).</summary>
    public bool LogResolverQueries { get; set; } = true;
    public bool LogResolverResponses { get; set; } = true;
    /// <summary>Messages waiting for the writer; beyond it new ones are dropped and counted.</summary>
    public int QueueSize { get; set; } = DnstapLogger.DefaultCapacity;

    public bool Enabled => File is not null || Socket is not null;

    /// <summary>One line naming what is wrong, or null.</summary>
    public string? Validate() =>
        File is not null && Socket is not null ? "dnstap: give file or socket, not both"
        : QueueSize is < 1 or > 1 << 22 ? "dnstap: queue-size must be between 1 and 4194304"
        : null;
}
