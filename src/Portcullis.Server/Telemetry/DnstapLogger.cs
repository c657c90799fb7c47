using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Portcullis.Transport;

namespace Portcullis.Server.Telemetry;

/// <summary>
/// dnstap logging off the query path. The query path copies the message and the addresses into a
/// slot of a preallocated ring (<see cref="SlotRing{TMeta}"/>: one compare-and-swap, no lock, no
/// allocation; a message longer than a slot, a large TCP response, goes in a pooled buffer). When
/// the ring is full the message is dropped and counted (<see cref="Dropped"/>) rather than waiting,
/// so a slow disk or collector never slows answers. One background task encodes
/// (<see cref="DnstapEncoder"/>) and writes (<see cref="DnstapFrameWriter"/>), flushing whenever the
/// ring runs dry, and polls an empty ring after a pause growing from 1 to 50 ms.
/// </summary>
public sealed class DnstapLogger : IAsyncDisposable, IDisposable
{
    public const int DefaultCapacity = 8192;
    const int AddressSlot = 16;
    const int MessageOffset = 2 * AddressSlot;   // query address, response address, message
    /// <summary>Messages up to this size (a full EDNS UDP response of 1232 octets) live in the slot itself.</summary>
    const int InlineMessage = 1232;
    const int MaxPause = 50;
    /// <summary>Under steady load, the output is flushed at least this often (ms).</summary>
    const int FlushInterval = 100;

    struct Meta
    {
        public int AddressLength, ResponseAddressLength, MessageLength, Port, ResponsePort;
        public DnstapMessageType Type;
        public DnstapSocketProtocol Protocol;
        public long Ticks;
        /// <summary>A message too long for the slot, in a pooled buffer.</summary>
        public byte[]? Large;
    }

    readonly SlotRing<Meta> _ring;
    readonly DnstapFrameWriter _writer;
    readonly byte[] _identity, _version;
    readonly CancellationTokenSource _stop = new();
    readonly Task _task;
    long _dropped, _written, _failed;

    public DnstapLogger(DnstapFrameWriter writer, string? identity = null, string? version = null, int capacity = DefaultCapacity,
        bool logClientQueries = true, bool logClientResponses = true, bool logResolverQueries = true, bool logResolverResponses = true)
    {
        LogResolverQueries = logResolverQueries;
        LogResolverResponses = logResolverResponses;
        _writer = writer;
        _identity = Encoding.UTF8.GetBytes(identity ?? "");
        _version = Encoding.UTF8.GetBytes(version ?? "");
        _ring = new SlotRing<Meta>(capacity, MessageOffset + InlineMessage);
        LogClientQueries = logClientQueries;
        LogClientResponses = logClientResponses;
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
    /// <summary>Messages dropped because the ring was full (or the output failed).</summary>
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
        if (!Reserve(message.Length, out int index, out long position)) return;
        var slot = _ring.Slot(index);
        ref var m = ref _ring.Meta(index);
        m.AddressLength = Address(local.Address, slot);
        m.Port = local.Port;
        m.ResponseAddressLength = Address(server.Address, slot[AddressSlot..]);
        m.ResponsePort = server.Port;
        Fill(ref m, slot, type, tcp ? DnstapSocketProtocol.Tcp : DnstapSocketProtocol.Udp, message);
        _ring.Publish(index, position);
    }

    void Post(DnstapMessageType type, ReadOnlySpan<byte> message, TransportKind transport, SocketAddress client)
    {
        if (!Reserve(message.Length, out int index, out long position)) return;
        var slot = _ring.Slot(index);
        ref var m = ref _ring.Meta(index);
        m.AddressLength = Address(client, slot, out int port);
        m.Port = port;
        m.ResponseAddressLength = 0;
        m.ResponsePort = 0;
        Fill(ref m, slot, type, transport == TransportKind.Tcp ? DnstapSocketProtocol.Tcp : DnstapSocketProtocol.Udp, message);
        _ring.Publish(index, position);
    }

    /// <summary>
    /// A slot, and for a long message its octets against <see cref="MaxLargeBytes"/> (given back
    /// when written); either lacking, the message is dropped and counted.
    /// </summary>
    bool Reserve(int length, out int index, out long position)
    {
        bool large = length > InlineMessage;
        if (large && Interlocked.Add(ref _largeBytes, length) > MaxLargeBytes)
        {
            Interlocked.Add(ref _largeBytes, -length);
            Interlocked.Increment(ref _dropped);
            index = 0;
            position = 0;
            return false;
        }
        if (Claim(out index, out position)) return true;
        if (large) Interlocked.Add(ref _largeBytes, -length);
        return false;
    }

    bool Claim(out int index, out long position)
    {
        if (Interlocked.Read(ref _failed) == 0 && _ring.TryClaim(out index, out position)) return true;
        Interlocked.Increment(ref _dropped);
        index = 0;
        position = 0;
        return false;
    }

    static void Fill(ref Meta m, Span<byte> slot, DnstapMessageType type, DnstapSocketProtocol protocol, ReadOnlySpan<byte> message)
    {
        m.Type = type;
        m.Protocol = protocol;
        m.MessageLength = message.Length;
        m.Ticks = DateTime.UtcNow.Ticks;
        if (message.Length <= InlineMessage)
        {
            m.Large = null;
            message.CopyTo(slot[MessageOffset..]);
        }
        else
        {
            m.Large = ArrayPool<byte>.Shared.Rent(message.Length);
            message.CopyTo(m.Large);
        }
    }

    /// <summary>Octets of long messages waiting in pooled buffers at most (a stalled collector must not hold 64 KiB per slot).</summary>
    public const long MaxLargeBytes = 16 << 20;
    long _largeBytes;

    static int Address(IPAddress address, Span<byte> destination)
    {
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        return address.TryWriteBytes(destination, out int written) ? written : 0;
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
        byte[] encoded = new byte[4096];
        byte[] copy = new byte[MessageOffset + InlineMessage];
        int pause = 1;
        bool stopping = false, dirty = false;
        long lastFlush = Environment.TickCount64;
        while (true)
        {
            int batch = 0;
            while (_ring.TryPeek(out int index))
            {
                batch++;
                ref var m = ref _ring.Meta(index);
                byte[]? large = m.Large;
                m.Large = null;
                try
                {
                    if (Interlocked.Read(ref _failed) != 0)
                    {
                        Interlocked.Increment(ref _dropped);
                        continue;
                    }
                    // The slot is copied out so the encoder can take memory (ReadOnlyMemory) of it.
                    _ring.Slot(index)[..(MessageOffset + (large is null ? m.MessageLength : 0))].CopyTo(copy);
                    var message = large is null ? copy.AsMemory(MessageOffset, m.MessageLength) : large.AsMemory(0, m.MessageLength);
                    var time = new DateTime(m.Ticks, DateTimeKind.Utc);
                    bool query = m.Type is DnstapMessageType.ClientQuery or DnstapMessageType.AuthQuery or DnstapMessageType.ResolverQuery;
                    var e = new DnstapEntry
                    {
                        Type = m.Type,
                        Protocol = m.Protocol,
                        QueryAddress = copy.AsMemory(0, m.AddressLength),
                        QueryPort = m.Port,
                        ResponseAddress = copy.AsMemory(AddressSlot, m.ResponseAddressLength),
                        ResponsePort = m.ResponsePort,
                        QueryTime = query ? time : default,
                        QueryMessage = query ? message : default,
                        ResponseTime = query ? default : time,
                        ResponseMessage = query ? default : message,
                    };
                    int max = DnstapEncoder.MaxSize(_identity.Length, _version.Length, e);
                    if (encoded.Length < max) encoded = new byte[Math.Max(max, encoded.Length * 2)];
                    int length = DnstapEncoder.Encode(encoded, _identity, _version, e);
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
                    if (large is not null)
                    {
                        Interlocked.Add(ref _largeBytes, -m.MessageLength);
                        ArrayPool<byte>.Shared.Return(large);
                    }
                    _ring.Free(index);
                }
            }
            if (batch > 0) { dirty = true; pause = 1; }
            // Flush when the ring ran dry or every FlushInterval ms under load, not after each small batch.
            long now = Environment.TickCount64;
            if (dirty && (batch == 0 || stopping || now - lastFlush >= FlushInterval))
            {
                try
                {
                    if (Interlocked.Read(ref _failed) == 0) _writer.Flush();
                }
                catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
                {
                    Interlocked.Exchange(ref _failed, 1);
                }
                dirty = false;
                lastFlush = now;
            }
            if (stopping) return;
            if (batch >= Math.Max(_ring.Capacity / 4, 1)) continue;
            try { await Task.Delay(batch > 0 ? 1 : pause, _stop.Token).ConfigureAwait(false); }
            catch (OperationCanceledException) { stopping = true; }   // one more round: what was posted before the stop
            if (batch == 0) pause = Math.Min(pause * 2, MaxPause);
        }
    }

    /// <summary>Writes what is queued, then STOP (and waits for FINISH on a socket).</summary>
    public async ValueTask DisposeAsync()
    {
        if (!_stop.IsCancellationRequested) _stop.Cancel();
        await _task.ConfigureAwait(false);
        _writer.Dispose();
    }

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();
}
