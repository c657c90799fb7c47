using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading.Channels;
using Portcullis.Transport;

namespace Portcullis.Server.Telemetry;

/// <summary>
/// dnstap logging off the query path. The query path copies the message and the client's address
/// into a pooled buffer and posts it to a bounded channel; when the channel is full the message
/// is dropped and counted (<see cref="Dropped"/>) rather than waiting, so a slow disk or collector
/// never slows answers. One background task encodes (<see cref="DnstapEncoder"/>) and writes
/// (<see cref="DnstapFrameWriter"/>), flushing whenever the channel runs dry.
/// </summary>
public sealed class DnstapLogger : IAsyncDisposable, IDisposable
{
    public const int DefaultCapacity = 16384;
    const int AddressSlot = 16;
    const int MessageOffset = 2 * AddressSlot;   // query address, response address, message

    readonly record struct Entry(byte[] Buffer, int AddressLength, int MessageLength, DnstapMessageType Type,
        DnstapSocketProtocol Protocol, int Port, long Ticks, int ResponseAddressLength = 0, int ResponsePort = 0);

    readonly Channel<Entry> _channel;
    readonly DnstapFrameWriter _writer;
    readonly byte[] _identity, _version;
    readonly int _capacity;
    readonly Task _task;
    long _dropped, _written, _failed;

    public DnstapLogger(DnstapFrameWriter writer, string? identity = null, string? version = null, int capacity = DefaultCapacity,
        bool logClientQueries = true, bool logClientResponses = true, bool logResolverQueries = true, bool logResolverResponses = true)
    {
        LogResolverQueries = logResolverQueries;
        LogResolverResponses = logResolverResponses;
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _writer = writer;
        _identity = Encoding.UTF8.GetBytes(identity ?? "");
        _version = Encoding.UTF8.GetBytes(version ?? "");
        _capacity = capacity;
        LogClientQueries = logClientQueries;
        LogClientResponses = logClientResponses;
        // DropWrite: a write to a full channel succeeds and the item goes to itemDropped.
        _channel = Channel.CreateBounded<Entry>(
            new BoundedChannelOptions(capacity) { FullMode = BoundedChannelFullMode.DropWrite, SingleReader = true },
            OnDropped);
        _task = Task.Run(WriteLoop);
    }

    /// <summary>Opens the file or socket the configuration names (the config must be enabled).</summary>
    public static DnstapLogger Open(DnstapConfig config)
    {
        var writer = config.Socket is { } socket
            ? DnstapFrameWriter.ConnectUnix(socket, TimeSpan.FromSeconds(5))
            : DnstapFrameWriter.CreateFile(config.File ?? throw new ArgumentException("dnstap: no file or socket"));
        return new DnstapLogger(writer, config.Identity ?? Dns.GetHostName(), config.Version ?? "portcullis",
            config.QueueSize, config.LogClientQueries, config.LogClientResponses, config.LogResolverQueries, config.LogResolverResponses);
    }

    public bool LogClientQueries { get; }
    public bool LogClientResponses { get; }
    public bool LogResolverQueries { get; }
    public bool LogResolverResponses { get; }
    /// <summary>Messages dropped because the channel was full (or the output failed).</summary>
    public long Dropped => Interlocked.Read(ref _dropped);
    /// <summary>Messages written out.</summary>
    public long Written => Interlocked.Read(ref _written);
    /// <summary>The output failed (a collector went away); later messages are dropped and counted.</summary>
    public bool Failed => Interlocked.Read(ref _failed) != 0;

    /// <summary>A query as received from a client (CLIENT_QUERY). Never blocks.</summary>
    public void LogClientQuery(ReadOnlySpan<byte> query, TransportKind transport, SocketAddress client)
    {
        if (LogClientQueries) Post(DnstapMessageType.ClientQuery, query, transport, client);
    }

    /// <summary>A response as sent to a client (CLIENT_RESPONSE). Never blocks.</summary>
    public void LogClientResponse(ReadOnlySpan<byte> response, TransportKind transport, SocketAddress client)
    {
        if (LogClientResponses) Post(DnstapMessageType.ClientResponse, response, transport, client);
    }

    /// <summary>
    /// A query this resolver sent upstream (RESOLVER_QUERY): query_address is ours (the socket's
    /// local end), response_address the server asked. Never blocks.
    /// </summary>
    public void LogResolverQuery(ReadOnlySpan<byte> query, bool tcp, IPEndPoint local, IPEndPoint server)
    {
        if (LogResolverQueries) PostResolver(DnstapMessageType.ResolverQuery, query, tcp, local, server);
    }

    /// <summary>A response received from an upstream server (RESOLVER_RESPONSE), after it matched the query. Never blocks.</summary>
    public void LogResolverResponse(ReadOnlySpan<byte> response, bool tcp, IPEndPoint local, IPEndPoint server)
    {
        if (LogResolverResponses) PostResolver(DnstapMessageType.ResolverResponse, response, tcp, local, server);
    }

    void PostResolver(DnstapMessageType type, ReadOnlySpan<byte> message, bool tcp, IPEndPoint local, IPEndPoint server)
    {
        if (_channel.Reader.Count >= _capacity || Interlocked.Read(ref _failed) != 0)
        {
            Interlocked.Increment(ref _dropped);
            return;
        }
        var buffer = ArrayPool<byte>.Shared.Rent(MessageOffset + message.Length);
        int localLength = Address(local.Address, buffer);
        int serverLength = Address(server.Address, buffer.AsSpan(AddressSlot));
        message.CopyTo(buffer.AsSpan(MessageOffset));
        var entry = new Entry(buffer, localLength, message.Length, type, tcp ? DnstapSocketProtocol.Tcp : DnstapSocketProtocol.Udp,
            local.Port, DateTime.UtcNow.Ticks, serverLength, server.Port);
        if (!_channel.Writer.TryWrite(entry)) OnDropped(entry);
    }

    static int Address(IPAddress address, Span<byte> destination)
    {
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        return address.TryWriteBytes(destination, out int written) ? written : 0;
    }

    void Post(DnstapMessageType type, ReadOnlySpan<byte> message, TransportKind transport, SocketAddress client)
    {
        // Full already: count it without renting a buffer.
        if (_channel.Reader.Count >= _capacity || Interlocked.Read(ref _failed) != 0)
        {
            Interlocked.Increment(ref _dropped);
            return;
        }
        var buffer = ArrayPool<byte>.Shared.Rent(MessageOffset + message.Length);
        int addressLength = Address(client, buffer, out int port);
        message.CopyTo(buffer.AsSpan(MessageOffset));
        var entry = new Entry(buffer, addressLength, message.Length, type,
            transport == TransportKind.Tcp ? DnstapSocketProtocol.Tcp : DnstapSocketProtocol.Udp, port, DateTime.UtcNow.Ticks);
        if (!_channel.Writer.TryWrite(entry))   // completed (disposing)
            OnDropped(entry);
    }

    void OnDropped(Entry entry)
    {
        Interlocked.Increment(ref _dropped);
        ArrayPool<byte>.Shared.Return(entry.Buffer);
    }

    /// <summary>The address (4 or 16 octets, IPv4-mapped IPv6 as IPv4) and port of a socket address.</summary>
    static int Address(SocketAddress address, Span<byte> destination, out int port)
    {
        var b = address.Buffer.Span;
        port = address.Size >= 4 && address.Family is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6
            ? b[2] << 8 | b[3] : 0;   // sockaddr_in(6): sin_port in network order after the family
        return Security.ClientAddress.Get(address, destination);
    }

    async Task WriteLoop()
    {
        var reader = _channel.Reader;
        byte[] encoded = new byte[4096];
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            while (reader.TryRead(out var e))
            {
                try
                {
                    if (Interlocked.Read(ref _failed) != 0)
                    {
                        Interlocked.Increment(ref _dropped);
                        continue;
                    }
                    var memory = e.Buffer.AsMemory(MessageOffset, e.MessageLength);
                    var time = new DateTime(e.Ticks, DateTimeKind.Utc);
                    bool query = e.Type is DnstapMessageType.ClientQuery or DnstapMessageType.AuthQuery or DnstapMessageType.ResolverQuery;
                    var m = new DnstapEntry
                    {
                        Type = e.Type,
                        Protocol = e.Protocol,
                        QueryAddress = e.Buffer.AsMemory(0, e.AddressLength),
                        QueryPort = e.Port,
                        ResponseAddress = e.Buffer.AsMemory(AddressSlot, e.ResponseAddressLength),
                        ResponsePort = e.ResponsePort,
                        QueryTime = query ? time : default,
                        QueryMessage = query ? memory : default,
                        ResponseTime = query ? default : time,
                        ResponseMessage = query ? default : memory,
                    };
                    int max = DnstapEncoder.MaxSize(_identity.Length, _version.Length, m);
                    if (encoded.Length < max) encoded = new byte[Math.Max(max, encoded.Length * 2)];
                    int length = DnstapEncoder.Encode(encoded, _identity, _version, m);
                    _writer.WriteFrame(encoded.AsSpan(0, length));
                    Interlocked.Increment(ref _written);
                }
                catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
                {
                    // The collector went away or the disk failed: stop writing, keep counting.
                    Interlocked.Exchange(ref _failed, 1);
                    Interlocked.Increment(ref _dropped);
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(e.Buffer);
                }
            }
            try
            {
                if (Interlocked.Read(ref _failed) == 0) _writer.Flush();
            }
            catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
            {
                Interlocked.Exchange(ref _failed, 1);
            }
        }
    }

    /// <summary>Writes what is queued, then STOP (and waits for FINISH on a socket).</summary>
    public async ValueTask DisposeAsync()
    {
        _channel.Writer.TryComplete();
        await _task.ConfigureAwait(false);
        _writer.Dispose();
    }

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();
}
