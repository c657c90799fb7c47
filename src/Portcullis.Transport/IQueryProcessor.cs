using System.Net;
using System.Net.Sockets;

namespace Portcullis.Transport;

public enum TransportKind : byte { Udp, Tcp }

/// <summary>Where a query came from and what the transport allows back.</summary>
public readonly struct QueryContextInfo
{
    public QueryContextInfo(TransportKind transport, SocketAddress client, int tcpIdleTimeoutMs = 0)
    {
        Transport = transport;
        Client = client;
        TcpIdleTimeoutMs = tcpIdleTimeoutMs;
    }

    public TransportKind Transport { get; }
    /// <summary>The client's address in socket form (no allocation per query).</summary>
    public SocketAddress Client { get; }
    /// <summary>For TCP, the idle timeout to advertise in an edns-tcp-keepalive option (RFC 7828).</summary>
    public int TcpIdleTimeoutMs { get; }
}

/// <summary>
/// What the transports hand each query to. The transports know nothing of zones: they frame, read
/// and write bytes, and enforce connection limits.
/// </summary>
public interface IQueryProcessor
{
    /// <summary>
    /// Answers <paramref name="query"/> into <paramref name="response"/> and returns the length
    /// written, or 0 to send nothing (a response, garbage, a policy drop).
    /// </summary>
    int Process(ReadOnlySpan<byte> query, Span<byte> response, in QueryContextInfo info);
}
