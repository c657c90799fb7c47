using System.Net;
using System.Net.Sockets;

namespace Portcullis.Transport;

public enum TransportKind : byte { Udp, Tcp }

/// <summary>Where a query came from and what the transport allows back.</summary>
public readonly struct QueryContextInfo
{
    public QueryContextInfo(TransportKind transport, SocketAddress client, int tcpIdleTimeoutMs = 0, MessageStreamSlot? streams = null,
        DeferralSlot? deferral = null)
    {
        Transport = transport;
        Client = client;
        TcpIdleTimeoutMs = tcpIdleTimeoutMs;
        Streams = streams;
        Deferral = deferral;
    }

    public TransportKind Transport { get; }
    /// <summary>The client's address in socket form (no allocation per query).</summary>
    public SocketAddress Client { get; }
    /// <summary>For TCP, the idle timeout to advertise in an edns-tcp-keepalive option (RFC 7828).</summary>
    public int TcpIdleTimeoutMs { get; }
    /// <summary>
    /// Over TCP, where a query may start a multi-message response (<see cref="MessageStreamSlot.Start"/>);
    /// null over UDP, where a response is one datagram.
    /// </summary>
    public MessageStreamSlot? Streams { get; }
    /// <summary>
    /// Where a query that cannot be answered now (recursion that must ask upstream) gets a handle to
    /// answer it later from any thread (<see cref="DeferralSlot.Defer"/>); null when the transport
    /// cannot defer.
    /// </summary>
    public DeferralSlot? Deferral { get; }
}

/// <summary>
/// A response promised to one query and sent later, from any thread: over UDP a datagram to the
/// client's address from the socket the query came in on; over TCP a frame on the query's
/// connection, possibly after the answers to queries that came later (RFC 7766 §7: pipelined
/// answers need not be in order; the ID pairs them). Exactly one of <see cref="Send"/> or
/// <see cref="Abandon"/> counts; later calls do nothing. A client gone meanwhile (connection
/// closed, listener stopped) makes <see cref="Send"/> a no-op.
/// </summary>
public interface IDeferredReply
{
    TransportKind Transport { get; }
    /// <summary>Sends the response (a whole DNS message, without a TCP length); the bytes are copied.</summary>
    void Send(ReadOnlySpan<byte> response);
    /// <summary>Sends nothing, and releases what the transport holds for the reply (a TCP connection's pending count).</summary>
    void Abandon();
}

/// <summary>
/// Hands out <see cref="IDeferredReply"/> handles for the query being processed. The slow path:
/// a handle is an allocation; answering from memory never touches the slot.
/// </summary>
public abstract class DeferralSlot
{
    /// <summary>
    /// A handle that answers the query now being processed later; null when the transport will not
    /// take another pending reply for this client (a TCP connection at its bound): answer now instead.
    /// Call only from inside <see cref="IQueryProcessor.Process"/>.
    /// </summary>
    public abstract IDeferredReply? Defer();
}

/// <summary>
/// A response of many messages (a zone transfer, RFC 5936 §2.2), produced one message at a time
/// as the connection can take it, so that a transfer holds one message in memory and never the
/// whole zone. The transport calls <see cref="Next"/> on the connection's thread only, and calls
/// <see cref="IDisposable.Dispose"/> exactly once: when <see cref="Next"/> returned 0, or when
/// the stream is abandoned (client gone, idle timeout, server stopping, an exception from Next).
/// </summary>
public interface IMessageStream : IDisposable
{
    /// <summary>
    /// Writes the next message (without the TCP length) into <paramref name="buffer"/>, which holds
    /// at least 65,535 octets, and returns its length; 0 when the stream has ended.
    /// </summary>
    int Next(Span<byte> buffer);
}

/// <summary>
/// Where <see cref="IQueryProcessor.Process"/> hands a transport a stream to send after the
/// response it returned (if any). One slot per event loop (a loop is one thread and answers one
/// query at a time) or per connection: an ordinary query allocates nothing and never touches it.
/// </summary>
public sealed class MessageStreamSlot
{
    private IMessageStream? _stream;

    /// <summary>
    /// Starts <paramref name="stream"/> as the rest of the answer to the query being processed: the
    /// transport sends its messages, in order, before the answers to later queries on the
    /// connection (RFC 7766 §6.2.1.1 lets a server keep them in order).
    /// </summary>
    public void Start(IMessageStream stream)
    {
        // One stream per query: a second one would be a processor bug; end the first cleanly.
        _stream?.Dispose();
        _stream = stream;
    }

    /// <summary>The stream started by the last query, if any, and the slot emptied.</summary>
    internal IMessageStream? Take()
    {
        var s = _stream;
        _stream = null;
        return s;
    }
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
