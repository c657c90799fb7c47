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
    /// <summary>How many queries one connection may have in progress at once (pipelining).</summary>
    public int MaxInFlightPerConnection { get; init; } = 32;
}

/// <summary>
/// DNS over TCP (RFC 7766): two-octet length framing, many queries per connection, pipelining
/// (queries are read while earlier ones are answered; each response goes out when it is ready),
/// an idle timeout, and limits on connections in total and per client address. Every connection
/// is its own task, so a slow or silent client only ever holds its own connection.
/// </summary>
public sealed class TcpListener : IDisposable
{
    private readonly Socket _listener;
    private readonly IQueryProcessor _processor;
    private readonly ILogger _logger;
    private readonly TcpLimits _limits;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<IPAddress, int> _perClient = new();
    private readonly ConcurrentDictionary<Socket, byte> _open = new();
    private int _connections;
    private Task? _acceptLoop;

    public TcpListener(IPEndPoint endPoint, IQueryProcessor processor, ILogger logger, TcpLimits? limits = null)
    {
        _processor = processor;
        _logger = logger;
        _limits = limits ?? new TcpLimits();
        _listener = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        if (endPoint.AddressFamily == AddressFamily.InterNetworkV6) _listener.DualMode = false;
        _listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        _listener.Bind(endPoint);
        _listener.Listen(512);
        LocalEndPoint = (IPEndPoint)_listener.LocalEndPoint!;
    }

    public IPEndPoint LocalEndPoint { get; }

    public int OpenConnections => Volatile.Read(ref _connections);

    public void Start() => _acceptLoop = Task.Run(AcceptLoop);

    private async Task AcceptLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) { return; }
            catch (ObjectDisposedException) { return; }
            catch (SocketException e)
            {
                _logger.LogWarning("TCP accept failed on {Endpoint}: {Error}", LocalEndPoint, e.SocketErrorCode);
                continue;
            }
            var address = ((IPEndPoint)client.RemoteEndPoint!).Address;
            if (Interlocked.Increment(ref _connections) > _limits.MaxConnections
                || _perClient.AddOrUpdate(address, 1, (_, n) => n + 1) > _limits.MaxConnectionsPerClient)
            {
                // Over a limit: close at once rather than queue (RFC 7766 §6.2.2 lets servers do so).
                if (_perClient.ContainsKey(address)) Release(address);
                else Interlocked.Decrement(ref _connections);
                client.Dispose();
                continue;
            }
            _ = Task.Run(() => Serve(client, address));
        }
    }

    private void Release(IPAddress address)
    {
        Interlocked.Decrement(ref _connections);
        _perClient.AddOrUpdate(address, 0, (_, n) => n - 1);
        if (_perClient.TryGetValue(address, out int left) && left <= 0) _perClient.TryRemove(new KeyValuePair<IPAddress, int>(address, left));
    }

    private async Task Serve(Socket client, IPAddress address)
    {
        _open.TryAdd(client, 0);
        client.NoDelay = true;
        var socketAddress = client.RemoteEndPoint!.Serialize();
        var info = new QueryContextInfo(TransportKind.Tcp, socketAddress, (int)_limits.IdleTimeout.TotalMilliseconds);
        using var writeLock = new SemaphoreSlim(1, 1);
        using var inFlight = new SemaphoreSlim(_limits.MaxInFlightPerConnection, _limits.MaxInFlightPerConnection);
        using var connectionStop = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        var lengthBuffer = new byte[2];
        try
        {
            while (true)
            {
                using var idle = CancellationTokenSource.CreateLinkedTokenSource(connectionStop.Token);
                idle.CancelAfter(_limits.IdleTimeout);
                if (!await ReadExactly(client, lengthBuffer, idle.Token).ConfigureAwait(false)) break;
                int length = BinaryPrimitives.ReadUInt16BigEndian(lengthBuffer);
                if (length == 0) break;
                var query = ArrayPool<byte>.Shared.Rent(length);
                if (!await ReadExactly(client, query.AsMemory(0, length), idle.Token).ConfigureAwait(false))
                {
                    ArrayPool<byte>.Shared.Return(query);
                    break;
                }
                await inFlight.WaitAsync(connectionStop.Token).ConfigureAwait(false);
                // Each query is answered on its own; responses go out in the order they are ready.
                _ = Answer(client, query, length, info, writeLock, inFlight, connectionStop);
            }
        }
        catch (OperationCanceledException) { }
        catch (SocketException) { }
        catch (ObjectDisposedException) { }
        finally
        {
            // Let answers already in progress finish writing before the socket closes.
            for (int i = 0; i < _limits.MaxInFlightPerConnection; i++)
            {
                try { if (!await inFlight.WaitAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false)) break; }
                catch (ObjectDisposedException) { break; }
            }
            try { client.Shutdown(SocketShutdown.Both); } catch (SocketException) { } catch (ObjectDisposedException) { }
            client.Dispose();
            _open.TryRemove(client, out _);
            Release(address);
        }
    }

    private async Task Answer(Socket client, byte[] query, int length, QueryContextInfo info,
        SemaphoreSlim writeLock, SemaphoreSlim inFlight, CancellationTokenSource connectionStop)
    {
        var response = ArrayPool<byte>.Shared.Rent(65535 + 2);
        try
        {
            int n;
            try
            {
                n = _processor.Process(query.AsSpan(0, length), response.AsSpan(2, 65535), info);
            }
            catch (Exception e)
            {
                _logger.LogError(e, "query processing failed on {Endpoint}", LocalEndPoint);
                n = 0;
            }
            if (n <= 0) return;
            BinaryPrimitives.WriteUInt16BigEndian(response, (ushort)n);
            await writeLock.WaitAsync(connectionStop.Token).ConfigureAwait(false);
            try
            {
                using var writeTimeout = CancellationTokenSource.CreateLinkedTokenSource(connectionStop.Token);
                writeTimeout.CancelAfter(_limits.IdleTimeout);
                int sent = 0;
                while (sent < n + 2)
                    sent += await client.SendAsync(response.AsMemory(sent, n + 2 - sent), SocketFlags.None, writeTimeout.Token).ConfigureAwait(false);
            }
            finally
            {
                writeLock.Release();
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // A client that does not read its answers loses its connection.
            try { connectionStop.Cancel(); } catch (ObjectDisposedException) { }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(query);
            ArrayPool<byte>.Shared.Return(response);
            try { inFlight.Release(); } catch (ObjectDisposedException) { }
        }
    }

    private static async ValueTask<bool> ReadExactly(Socket socket, Memory<byte> buffer, CancellationToken token)
    {
        int read = 0;
        while (read < buffer.Length)
        {
            int n = await socket.ReceiveAsync(buffer[read..], SocketFlags.None, token).ConfigureAwait(false);
            if (n == 0) return false;
            read += n;
        }
        return true;
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Dispose();
        foreach (var s in _open.Keys) { try { s.Dispose(); } catch (ObjectDisposedException) { } }
        try { _acceptLoop?.Wait(TimeSpan.FromSeconds(5)); } catch (AggregateException) { }
        _stop.Dispose();
    }
}
