using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace Portcullis.Transport;

/// <summary>Limits of DNS over TCP (RFC 7766 §6.2); the defaults follow BIND and Knot.</summary>
public sealed record TcpLimits
{
    /// <summary>A connection with no complete query for this long is closed (RFC 7766 §6.2.3).</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromSeconds(10);
    public int MaxConnections { get; init; } = 1000;
    public int MaxConnectionsPerClient { get; init; } = 32;
    /// <summary>
    /// Deferred answers (recursion) one connection may wait for at once; a query that would defer
    /// one more is answered at once (SERVFAIL), so one client cannot pin unbounded state.
    /// </summary>
    public int MaxPendingPerConnection { get; init; } = 100;
}

/// <summary>
/// DNS over TCP (RFC 7766): two-octet length framing, many queries per connection, pipelining
/// (every complete query in what arrived is answered, in order, and the answers leave in one send),
/// an idle timeout, and limits on connections in total and per client address. A slow or silent
/// client only ever holds its own connection; an idle one holds no buffer.
/// On Linux (x64, arm64) epoll loops serve the connections, one thread per usable processor, each
/// connection on one loop for its life (<see cref="TcpEventLoops"/>), as Knot and NSD do; elsewhere, or with PORTCULLIS_TCP=async, every
/// connection is a task on .NET's asynchronous sockets (<see cref="TcpAsyncListener"/>).
/// </summary>
public sealed class TcpListener : IDisposable
{
    private readonly ITcpEngine _engine;

    /// <param name="engine">Which engine serves the connections; <see cref="TcpEngineKind.Auto"/> (the server's choice):
    /// the epoll loops where they work, unless PORTCULLIS_TCP=async.</param>
    public TcpListener(IPEndPoint endPoint, IQueryProcessor processor, ILogger logger, TcpLimits? limits = null,
        TcpEngineKind engine = TcpEngineKind.Auto)
    {
        limits ??= new TcpLimits();
        bool async = engine == TcpEngineKind.Async
            || (engine == TcpEngineKind.Auto && Environment.GetEnvironmentVariable("PORTCULLIS_TCP") == "async");
        _engine = LinuxTcp.IsSupported && !async
            ? new TcpEventLoops(endPoint, processor, logger, limits, Environment.ProcessorCount)
            : new TcpAsyncListener(endPoint, processor, logger, limits);
    }

    public IPEndPoint LocalEndPoint => _engine.LocalEndPoint;

    public int OpenConnections => _engine.OpenConnections;

    public void Start() => _engine.Start();

    public void Dispose() => _engine.Dispose();
}

/// <summary>The engines of <see cref="TcpListener"/>.</summary>
public enum TcpEngineKind : byte
{
    /// <summary>Epoll loops on Linux unless PORTCULLIS_TCP=async; the asynchronous engine elsewhere.</summary>
    Auto,
    /// <summary>Epoll loops (<see cref="TcpEventLoop"/>) where supported, else the asynchronous engine.</summary>
    EventLoops,
    /// <summary>.NET's asynchronous sockets, a task per connection (<see cref="TcpAsyncListener"/>).</summary>
    Async,
}

internal interface ITcpEngine : IDisposable
{
    IPEndPoint LocalEndPoint { get; }
    int OpenConnections { get; }
    void Start();
}

/// <summary>The part of DNS over TCP both engines share: one length-prefixed query in, one length-prefixed answer out.</summary>
internal static class TcpFraming
{
    /// <summary>
    /// Answers the query into <paramref name="output"/> behind its two-octet length (RFC 1035 §4.2.2)
    /// and returns the octets written, or 0 when there is nothing to send. A processor failure is
    /// logged and sends nothing, so one bad query never takes the connection's other answers down.
    /// </summary>
    public static int AnswerFrame(IQueryProcessor processor, ReadOnlySpan<byte> query, Span<byte> output, in QueryContextInfo info,
        ILogger logger, IPEndPoint endpoint)
    {
        int n;
        try
        {
            n = processor.Process(query, output[2..], info);
        }
        catch (Exception e)
        {
            logger.LogError(e, "query processing failed on {Endpoint}", endpoint);
            return 0;
        }
        if (n <= 0) return 0;
        BinaryPrimitives.WriteUInt16BigEndian(output, (ushort)n);
        return 2 + n;
    }
}
