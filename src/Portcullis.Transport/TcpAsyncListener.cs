using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace Portcullis.Transport;

/// <summary>
/// The portable engine of <see cref="TcpListener"/>: every connection is its own task on .NET's
/// asynchronous sockets, so a slow or silent client only ever holds its own connection; an idle one
/// holds no buffer (it waits with a zero-byte read). Used where <see cref="TcpEventLoop"/> is not
/// (not Linux, or PORTCULLIS_TCP=async).
/// </summary>
internal sealed class TcpAsyncListener : ITcpEngine
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

    public TcpAsyncListener(IPEndPoint endPoint, IQueryProcessor processor, ILogger logger, TcpLimits limits)
    {
        _processor = processor;
        _logger = logger;
        _limits = limits;
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
        // A connection's queries are answered one after another by this task: slots of its own.
        var connection = new AsyncConnection(client, _limits.IdleTimeout, _limits.MaxPendingPerConnection, _stop.Token);
        var info = new QueryContextInfo(TransportKind.Tcp, client.RemoteEndPoint!.Serialize(), (int)_limits.IdleTimeout.TotalMilliseconds,
            new MessageStreamSlot(), connection);
        var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        byte[]? input = null;
        int filled = 0;
        try
        {
            while (true)
            {
                if (!timeout.TryReset()) break;
                timeout.CancelAfter(_limits.IdleTimeout);
                int n;
                try
                {
                    // An idle connection holds no buffer: wait for data with a zero-byte read first.
                    if (filled == 0) await client.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None, timeout.Token).ConfigureAwait(false);
                    input ??= ArrayPool<byte>.Shared.Rent(InitialInputSize);
                    if (filled == input.Length) input = Grow(input, filled, input.Length * 2);
                    n = await client.ReceiveAsync(input.AsMemory(filled), SocketFlags.None, timeout.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!_stop.IsCancellationRequested && connection.Pending > 0)
                {
                    // Idle, but deferred answers are still to come: the client waits for us, so the
                    // connection stays (a fresh timer: the old one has fired).
                    timeout.Dispose();
                    timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                    continue;
                }
                if (n == 0)
                {
                    // The client is done sending; answers it still waits for go out before we close.
                    await connection.Drained.WaitAsync(_stop.Token).ConfigureAwait(false);
                    break;
                }
                filled += n;
                int consumed = await AnswerFrames(connection, input, filled, info, timeout).ConfigureAwait(false);
                if (consumed < 0) break;
                filled -= consumed;
                if (filled == 0)
                {
                    ArrayPool<byte>.Shared.Return(input);
                    input = null;
                }
                else
                {
                    Buffer.BlockCopy(input, consumed, input, 0, filled);
                    // Make room for the whole of a frame that has only begun to arrive.
                    if (filled >= 2)
                    {
                        int need = 2 + BinaryPrimitives.ReadUInt16BigEndian(input);
                        if (need > input.Length) input = Grow(input, filled, need);
                    }
                }
            }
        }
        catch (OperationCanceledException) { }
        catch (SocketException) { }
        catch (ObjectDisposedException) { }
        finally
        {
            timeout.Dispose();
            connection.Close();
            if (input is not null) ArrayPool<byte>.Shared.Return(input);
            try { client.Shutdown(SocketShutdown.Both); } catch (SocketException) { } catch (ObjectDisposedException) { }
            client.Dispose();
            _open.TryRemove(client, out _);
            Release(address);
        }
    }

    private const int InitialInputSize = 4096;
    private const int MaxFrame = 2 + 65535;
    private const int StreamSendSlice = 8 * 1024;

    private static byte[] Grow(byte[] buffer, int filled, int size)
    {
        var bigger = ArrayPool<byte>.Shared.Rent(Math.Min(Math.Max(size, InitialInputSize), MaxFrame));
        Buffer.BlockCopy(buffer, 0, bigger, 0, filled);
        ArrayPool<byte>.Shared.Return(buffer);
        return bigger;
    }

    /// <summary>
    /// Answers every complete frame in <paramref name="input"/>, in order, gathering the responses
    /// so that pipelined queries cost one send; returns the octets consumed, or -1 to close.
    /// </summary>
    private async ValueTask<int> AnswerFrames(AsyncConnection client, byte[] input, int filled, QueryContextInfo info, CancellationTokenSource timeout)
    {
        int start = 0;
        byte[]? output = null;
        int written = 0;
        try
        {
            while (filled - start >= 2)
            {
                int length = BinaryPrimitives.ReadUInt16BigEndian(input.AsSpan(start));
                if (length == 0) return -1;
                if (filled - start - 2 < length) break;
                output ??= ArrayPool<byte>.Shared.Rent(2 * MaxFrame);
                if (output.Length - written < MaxFrame)
                {
                    await SendAll(client, output.AsMemory(0, written), timeout).ConfigureAwait(false);
                    written = 0;
                }
                written += TcpFraming.AnswerFrame(_processor, input.AsSpan(start + 2, length), output.AsSpan(written, MaxFrame), info, _logger, LocalEndPoint);
                start += 2 + length;
                if (info.Streams!.Take() is { } stream)
                {
                    // Answers stay in order (RFC 7766 §6.2.1.1): what came before goes first, the
                    // stream next, and the queries behind it wait in the input until it ends.
                    if (written > 0) await SendAll(client, output.AsMemory(0, written), timeout).ConfigureAwait(false);
                    written = 0;
                    await SendStream(client, stream, output, timeout).ConfigureAwait(false);
                }
            }
            if (written > 0) await SendAll(client, output.AsMemory(0, written), timeout).ConfigureAwait(false);
            return start;
        }
        finally
        {
            if (output is not null) ArrayPool<byte>.Shared.Return(output);
        }
    }

    /// <summary>
    /// Sends a stream's messages one at a time, each made only once the one before was sent, so a
    /// transfer holds one message; each send gets the idle timeout anew, so a transfer that makes
    /// progress is never cut and one whose client stopped reading is. The stream is disposed
    /// whatever happens (ended, client gone, timeout, server stopping).
    /// </summary>
    private async ValueTask SendStream(AsyncConnection client, IMessageStream stream, byte[] output, CancellationTokenSource timeout)
    {
        try
        {
            while (true)
            {
                int n;
                try
                {
                    n = stream.Next(output.AsSpan(2, MaxFrame - 2));
                }
                catch (Exception e)
                {
                    _logger.LogError(e, "response stream failed on {Endpoint}", LocalEndPoint);
                    throw new OperationCanceledException("response stream failed", e);
                }
                if (n <= 0) return;
                BinaryPrimitives.WriteUInt16BigEndian(output, (ushort)n);
                // In slices, each with the idle timeout anew: progress is measured by the slice, so a
                // client reading steadily but slowly is not taken for one that stopped. One message
                // holds the send lock throughout, so a deferred answer never lands inside it.
                await client.SendLock.WaitAsync(_stop.Token).ConfigureAwait(false);
                try
                {
                    for (int at = 0; at < 2 + n; at += StreamSendSlice)
                        await SendUnlocked(client.Socket, output.AsMemory(at, Math.Min(StreamSendSlice, 2 + n - at)), timeout).ConfigureAwait(false);
                }
                finally
                {
                    client.SendLock.Release();
                }
            }
        }
        finally
        {
            try
            {
                stream.Dispose();
            }
            catch (Exception e)
            {
                _logger.LogError(e, "response stream failed to end on {Endpoint}", LocalEndPoint);
            }
        }
    }

    /// <summary>Sends everything, whole, between the connection's deferred answers; a client that does not read its answers within the idle timeout is dropped.</summary>
    private async ValueTask SendAll(AsyncConnection client, ReadOnlyMemory<byte> data, CancellationTokenSource timeout)
    {
        await client.SendLock.WaitAsync(_stop.Token).ConfigureAwait(false);
        try
        {
            await SendUnlocked(client.Socket, data, timeout).ConfigureAwait(false);
        }
        finally
        {
            client.SendLock.Release();
        }
    }

    private async ValueTask SendUnlocked(Socket client, ReadOnlyMemory<byte> data, CancellationTokenSource timeout)
    {
        if (!timeout.TryReset()) throw new OperationCanceledException();
        timeout.CancelAfter(_limits.IdleTimeout);
        while (!data.IsEmpty)
        {
            int sent = await client.SendAsync(data, SocketFlags.None, timeout.Token).ConfigureAwait(false);
            data = data[sent..];
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Dispose();
        foreach (var s in _open.Keys) { try { s.Dispose(); } catch (ObjectDisposedException) { } }
        try { _acceptLoop?.Wait(TimeSpan.FromSeconds(5)); } catch (AggregateException) { }
        _stop.Dispose();
    }

    /// <summary>
    /// A connection of the asynchronous engine as its deferral slot: the serving task and deferred
    /// replies share the socket through a send lock, each message whole (RFC 7766 §7: answers may
    /// go out in any order, but never interleaved). The lock is uncontended (no allocation) unless
    /// a deferred reply sends at the same moment.
    /// </summary>
    private sealed class AsyncConnection(Socket socket, TimeSpan idle, int maxPending, CancellationToken stop) : DeferralSlot
    {
        private readonly Lock _gate = new();
        private int _pending;
        private bool _closed;
        private TaskCompletionSource? _drained;

        public Socket Socket { get; } = socket;
        public SemaphoreSlim SendLock { get; } = new(1, 1);
        public int Pending => Volatile.Read(ref _pending);

        /// <summary>Completes when no deferred reply is pending.</summary>
        public Task Drained
        {
            get
            {
                lock (_gate) return _pending == 0 || _drained is null ? Task.CompletedTask : _drained.Task;
            }
        }

        public override IDeferredReply? Defer()
        {
            lock (_gate)
            {
                if (_closed || _pending >= maxPending) return null;
                if (_pending++ == 0) _drained = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }
            return new Reply(this);
        }

        public void Close()
        {
            TaskCompletionSource? drained;
            lock (_gate)
            {
                _closed = true;
                drained = _drained;
            }
            drained?.TrySetResult();
        }

        private void Done()
        {
            TaskCompletionSource? drained = null;
            lock (_gate)
                if (--_pending == 0) drained = _drained;
            drained?.TrySetResult();
        }

        private async Task SendAsync(byte[] frame)
        {
            try
            {
                await SendLock.WaitAsync(stop).ConfigureAwait(false);
                try
                {
                    bool closed;
                    lock (_gate) closed = _closed;
                    if (closed) return;   // the client is gone: a no-op
                    using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stop);
                    timeout.CancelAfter(idle);
                    var data = frame.AsMemory();
                    while (!data.IsEmpty)
                        data = data[await Socket.SendAsync(data, SocketFlags.None, timeout.Token).ConfigureAwait(false)..];
                }
                finally
                {
                    SendLock.Release();
                }
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                // Client gone, too slow to read, or the server stopping: nobody to answer.
            }
            finally
            {
                Done();
            }
        }

        private sealed class Reply(AsyncConnection connection) : IDeferredReply
        {
            private int _done;

            public TransportKind Transport => TransportKind.Tcp;

            public void Send(ReadOnlySpan<byte> response)
            {
                if (Interlocked.Exchange(ref _done, 1) != 0) return;
                if (response.Length > 65535)
                {
                    connection.Done();
                    return;
                }
                var frame = new byte[2 + response.Length];
                BinaryPrimitives.WriteUInt16BigEndian(frame, (ushort)response.Length);
                response.CopyTo(frame.AsSpan(2));
                _ = connection.SendAsync(frame);
            }

            public void Abandon()
            {
                if (Interlocked.Exchange(ref _done, 1) == 0) connection.Done();
            }
        }
    }
}
