using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;

namespace Portcullis.Transport;

/// <summary>
/// The Linux engine of <see cref="TcpListener"/>: one listening socket and one <see cref="TcpEventLoop"/>
/// per processor the process may use (one when the server is pinned to one core), each with its own
/// epoll set and thread. The listening socket is in every set with EPOLLEXCLUSIVE, so a new
/// connection wakes one loop, which keeps it for its life. The limits are shared (<see cref="TcpAdmission"/>).
/// </summary>
internal sealed class TcpEventLoops : ITcpEngine
{
    private readonly Socket _listener;
    private readonly TcpAdmission _admission;
    private readonly TcpEventLoop[] _loops;

    public TcpEventLoops(IPEndPoint endPoint, IQueryProcessor processor, ILogger logger, TcpLimits limits, int loops)
    {
        _admission = new TcpAdmission(limits);
        _listener = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        _loops = new TcpEventLoop[Math.Max(1, loops)];
        try
        {
            if (endPoint.AddressFamily == AddressFamily.InterNetworkV6) _listener.DualMode = false;
            _listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            _listener.Bind(endPoint);
            _listener.Listen(512);
            _listener.Blocking = false;
            LocalEndPoint = (IPEndPoint)_listener.LocalEndPoint!;
            int fd = (int)_listener.SafeHandle.DangerousGetHandle();
            for (int i = 0; i < _loops.Length; i++)
                _loops[i] = new TcpEventLoop(fd, LocalEndPoint, processor, logger, limits, _admission, exclusive: _loops.Length > 1, name: _loops.Length > 1 ? $"tcp {LocalEndPoint} #{i}" : $"tcp {LocalEndPoint}");
        }
        catch
        {
            foreach (var loop in _loops) loop?.Dispose();
            _listener.Dispose();
            throw;
        }
    }

    public IPEndPoint LocalEndPoint { get; }

    public int OpenConnections => _admission.Open;

    public void Start()
    {
        foreach (var loop in _loops) loop.Start();
    }

    public void Dispose()
    {
        foreach (var loop in _loops) loop.Dispose();
        _listener.Dispose();
    }
}

/// <summary>The connection limits, in total and per client address, shared by the loops of one listener.</summary>
internal sealed class TcpAdmission(TcpLimits limits)
{
    private readonly Dictionary<UInt128, int> _perClient = new();
    private int _open;

    public int Open => Volatile.Read(ref _open);

    public bool TryAdmit(UInt128 client)
    {
        lock (_perClient)
        {
            _perClient.TryGetValue(client, out int fromClient);
            if (_open >= limits.MaxConnections || fromClient >= limits.MaxConnectionsPerClient) return false;
            _perClient[client] = fromClient + 1;
            _open++;
            return true;
        }
    }

    public void Release(UInt128 client)
    {
        lock (_perClient)
        {
            if (_perClient.TryGetValue(client, out int n) && n > 1) _perClient[client] = n - 1;
            else _perClient.Remove(client);
            _open--;
        }
    }
}

/// <summary>
/// DNS over TCP served by one thread from an epoll loop (Linux), the way Knot and NSD do it: the
/// thread sleeps in epoll_wait and, for each ready connection, makes one recv into its own buffer,
/// answers every complete query in what arrived, in order, into one send, and goes back to sleep.
/// A query costs its share of three system calls and no hand-off between threads (with .NET's
/// asynchronous sockets each read woke a thread-pool worker; docs/performance.md, TCP).
/// <para>
/// A connection is a slot (56 octets) found by its descriptor: its deadline, its address, its count of deferred answers pending, and a
/// <see cref="Spill"/> only while it holds a partial query or answers the kernel would not take yet.
/// An idle connection holds no buffer and no object of its own. Connections are level-triggered:
/// what one recv leaves unread is reported again by the next epoll_wait, so a busy client cannot
/// starve the others. A client that does not read its answers is not read from (it gets no more
/// answers queued) until the kernel has taken what was pending. Idle connections are closed by a
/// sweep over the slots a few times per idle timeout.
/// </para>
/// <para>
/// Deferred answers (recursion) are posted from other threads to a queue and the loop is woken
/// through its eventfd to send them on its own thread, so connection state stays the loop's alone.
/// A connection with answers pending is spared by the sweep (the client waits for us).
/// </para>
/// </summary>
internal sealed unsafe class TcpEventLoop : IDisposable
{
    private const int MaxFrame = 2 + 65535;
    private const int InitialInputSize = 4096;
    private const int ReadSize = 64 * 1024;
    private const int EventCount = 256;
    private const int AcceptsPerWakeup = 64;
    private const int AddressBytes = 28;   // sockaddr_in6, the larger of the two
    /// <summary>Messages of a stream sent per wake-up, so one transfer cannot starve the loop's other connections.</summary>
    private const int StreamMessagesPerWakeup = 4;

    [InlineArray(AddressBytes)]
    private struct RawAddress { private byte _first; }

    /// <summary>One connection's state, in the slot of its descriptor; Deadline 0 marks a free slot.</summary>
    private struct Connection
    {
        public long Deadline;
        public Spill? Spill;
        public RawAddress Address;
        /// <summary>Which connection on this descriptor (descriptors are reused): a deferred reply for an earlier one is dropped.</summary>
        public int Generation;
        /// <summary>Deferred replies promised and not yet sent or abandoned: the idle sweep spares the connection meanwhile.</summary>
        public int Pending;
        /// <summary>The client closed its side with replies pending: it is not read again, and closed once they are sent.</summary>
        public bool PeerDone;
    }


    /// <summary>What a connection keeps between wake-ups, only while it has any: a partial query, unsent answers.</summary>
    private sealed class Spill
    {
        public byte[]? Input;
        public int InputLength;
        public byte[]? Unsent;
        public int UnsentStart;
        public int UnsentEnd;
        /// <summary>The connection waits for EPOLLOUT (answers pending) instead of EPOLLIN.</summary>
        public bool Writing;
        /// <summary>A multi-message answer (zone transfer) being sent: its next message is made only when the socket can take it.</summary>
        public IMessageStream? Stream;
    }

    private readonly int _listenFd;
    private readonly uint _listenEvents;
    private readonly TcpAdmission _admission;
    private readonly int _epoll;
    private readonly int _wake;
    private readonly IQueryProcessor _processor;
    private readonly ILogger _logger;
    private readonly int _idleMs;
    /// <summary>Deferred replies a connection may have pending at once (<see cref="TcpLimits.MaxPendingPerConnection"/>).</summary>
    private readonly int _maxPending;
    private readonly int _sweepMs;
    private readonly int _addressSize;
    private readonly bool _v6;
    private readonly Thread _thread;
    private readonly byte[] _input = new byte[ReadSize];
    private readonly byte[] _output = new byte[2 * MaxFrame];
    private readonly SocketAddress _client;
    private readonly Stack<Spill> _spills = new();
    /// <summary>Where the processor hands a stream back; one per loop, since the loop answers one query at a time.</summary>
    private readonly MessageStreamSlot _streams = new();
    /// <summary>Deferred replies for the query being answered (<see cref="_current"/>), one per loop like <see cref="_streams"/>.</summary>
    private readonly LoopDeferralSlot _deferral;
    /// <summary>The descriptor whose query is being processed, for <see cref="_deferral"/>.</summary>
    private int _current = -1;
    private int _nextGeneration;
    /// <summary>Deferred replies (or abandonments) posted from other threads; drained on the loop's thread after a wake-up.</summary>
    private readonly ConcurrentQueue<(int Fd, int Generation, byte[]? Frame)> _deferred = new();
    /// <summary>The wake-up eventfd as a SafeHandle, so that a reply posted while the loop is disposed never writes to a reused descriptor.</summary>
    private readonly SafeFileHandle _wakeHandle;
    /// <summary>The slots, by descriptor, in chunks allocated as descriptors get that high and never moved.</summary>
    private Connection[]?[] _chunks = new Connection[]?[16];
    private int _mine;   // connections this loop serves
    private long _now;
    private long _nextSweep;
    private long _acceptResumeAt;
    private volatile bool _stopping;
    private int _disposed;

    public TcpEventLoop(int listenFd, IPEndPoint endPoint, IQueryProcessor processor, ILogger logger, TcpLimits limits,
        TcpAdmission admission, bool exclusive, string name)
    {
        _listenFd = listenFd;
        _listenEvents = LinuxTcp.EPOLLIN | (exclusive ? LinuxTcp.EPOLLEXCLUSIVE : 0);
        LocalEndPoint = endPoint;
        _processor = processor;
        _logger = logger;
        _admission = admission;
        _idleMs = (int)Math.Clamp(limits.IdleTimeout.TotalMilliseconds, 1, int.MaxValue);
        _maxPending = limits.MaxPendingPerConnection;
        _sweepMs = Math.Clamp(_idleMs / 8, 10, 1000);
        _v6 = endPoint.AddressFamily == AddressFamily.InterNetworkV6;
        _addressSize = _v6 ? 28 : 16;
        _client = new SocketAddress(endPoint.AddressFamily, _addressSize);
        _epoll = LinuxTcp.EpollCreate1(LinuxTcp.O_CLOEXEC);
        if (_epoll < 0) throw new SocketException(Marshal.GetLastPInvokeError());
        _wake = LinuxTcp.EventFd(0, LinuxTcp.O_CLOEXEC | LinuxTcp.O_NONBLOCK);
        if (_wake < 0 || LinuxTcp.Control(_epoll, LinuxTcp.EPOLL_CTL_ADD, _wake, LinuxTcp.EPOLLIN) < 0
            || LinuxTcp.Control(_epoll, LinuxTcp.EPOLL_CTL_ADD, _listenFd, _listenEvents) < 0)
        {
            var e = new SocketException(Marshal.GetLastPInvokeError());
            if (_wake >= 0) LinuxTcp.Close(_wake);
            LinuxTcp.Close(_epoll);
            throw e;
        }
        _wakeHandle = new SafeFileHandle(_wake, ownsHandle: true);
        _deferral = new LoopDeferralSlot(this);
        _thread = new Thread(Run) { IsBackground = true, Name = name };
    }

    public IPEndPoint LocalEndPoint { get; }

    public void Start() => _thread.Start();

    private void Run()
    {
        byte* events = (byte*)NativeMemory.Alloc((nuint)(EventCount * LinuxTcp.EventSize));
        int size = LinuxTcp.EventSize, dataOffset = LinuxTcp.EventDataOffset;
        try
        {
            _now = Environment.TickCount64;
            _nextSweep = _now + _sweepMs;
            while (!_stopping)
            {
                int timeout = -1;
                if (_mine > 0) timeout = (int)Math.Clamp(_nextSweep - _now, 0, _sweepMs);
                if (_acceptResumeAt != 0) timeout = (int)Math.Clamp(_acceptResumeAt - _now, 0, timeout < 0 ? int.MaxValue : timeout);
                int n = LinuxTcp.EpollWait(_epoll, events, EventCount, timeout);
                _now = Environment.TickCount64;
                if (n < 0)
                {
                    int error = Marshal.GetLastPInvokeError();
                    if (error == LinuxTcp.EINTR) continue;
                    _logger.LogError("TCP event loop on {Endpoint} stopped: epoll_wait failed with errno {Errno}", LocalEndPoint, error);
                    return;
                }
                for (int i = 0; i < n; i++)
                {
                    byte* ev = events + i * size;
                    int fd = (int)*(ulong*)(ev + dataOffset);
                    try
                    {
                        if (fd == _listenFd) Accept();
                        else if (fd == _wake) { ulong drain; LinuxTcp.Read(_wake, &drain, 8); DrainDeferred(); }
                        else if (Slot(fd).Spill is { Writing: true }) Writable(fd);
                        else Readable(fd);
                    }
                    catch (Exception e)
                    {
                        _logger.LogError(e, "TCP connection failed on {Endpoint}", LocalEndPoint);
                        if (fd != _listenFd && fd != _wake) Close(fd);
                    }
                }
                if (_acceptResumeAt != 0 && _now >= _acceptResumeAt)
                {
                    _acceptResumeAt = 0;
                    LinuxTcp.Control(_epoll, LinuxTcp.EPOLL_CTL_ADD, _listenFd, _listenEvents);
                }
                if (_now >= _nextSweep) Sweep();
            }
        }
        catch (Exception e)
        {
            _logger.LogCritical(e, "TCP event loop on {Endpoint} failed", LocalEndPoint);
        }
        finally
        {
            NativeMemory.Free(events);
            CloseAll(0);
        }
    }

    private const int ChunkBits = 8;
    private const int ChunkSize = 1 << ChunkBits;

    /// <summary>The slot of a descriptor this loop serves (its chunk exists).</summary>
    private ref Connection Slot(int fd) => ref _chunks[fd >> ChunkBits]![fd & (ChunkSize - 1)];

    /// <summary>Closes every connection whose deadline is at or before <paramref name="now"/> (0: all of them).</summary>
    private void CloseAll(long now)
    {
        for (int i = 0; i < _chunks.Length; i++)
        {
            var chunk = _chunks[i];
            if (chunk is null) continue;
            for (int j = 0; j < chunk.Length; j++)
            {
                long deadline = chunk[j].Deadline;
                // A connection waiting for deferred replies is not idle: the client waits for us.
                if (deadline != 0 && (now == 0 || (deadline <= now && chunk[j].Pending == 0))) Close((i << ChunkBits) + j);
            }
        }
    }

    private void Accept()
    {
        byte* address = stackalloc byte[128];   // sockaddr_storage
        for (int i = 0; i < AcceptsPerWakeup; i++)
        {
            uint length = 128;
            int fd = LinuxTcp.Accept4(_listenFd, address, &length, LinuxTcp.O_NONBLOCK | LinuxTcp.O_CLOEXEC);
            if (fd < 0)
            {
                int error = Marshal.GetLastPInvokeError();
                if (error == LinuxTcp.EAGAIN) return;
                if (error is LinuxTcp.EINTR or LinuxTcp.ECONNABORTED) continue;
                // Out of descriptors or memory: the listener stays readable, so stop asking for a moment.
                _logger.LogWarning("TCP accept failed on {Endpoint}: errno {Errno}", LocalEndPoint, error);
                if (error is LinuxTcp.EMFILE or LinuxTcp.ENFILE or LinuxTcp.ENOBUFS or LinuxTcp.ENOMEM)
                {
                    _acceptResumeAt = _now + 100;
                    // (EPOLL_CTL_MOD is refused for an EPOLLEXCLUSIVE entry: leave the set, join again later.)
                    LinuxTcp.Control(_epoll, LinuxTcp.EPOLL_CTL_DEL, _listenFd, 0);
                }
                return;
            }
            var key = ClientKey(new ReadOnlySpan<byte>(address, AddressBytes));
            if (!_admission.TryAdmit(key))
            {
                // Over a limit: close at once rather than queue (RFC 7766 §6.2.2 lets servers do so).
                LinuxTcp.Close(fd);
                continue;
            }
            int one = 1;
            LinuxTcp.SetSockOpt(fd, LinuxTcp.IPPROTO_TCP, LinuxTcp.TCP_NODELAY, &one, sizeof(int));
            int chunk = fd >> ChunkBits;
            if (chunk >= _chunks.Length) Array.Resize(ref _chunks, Math.Max(chunk + 1, 2 * _chunks.Length));
            _chunks[chunk] ??= new Connection[ChunkSize];
            if (LinuxTcp.Control(_epoll, LinuxTcp.EPOLL_CTL_ADD, fd, LinuxTcp.EPOLLIN) < 0)
            {
                LinuxTcp.Close(fd);
                _admission.Release(key);
                continue;
            }
            ref var c = ref Slot(fd);
            c.Deadline = _now + _idleMs;
            c.Spill = null;
            c.Generation = ++_nextGeneration;
            c.Pending = 0;
            c.PeerDone = false;
            new ReadOnlySpan<byte>(address, AddressBytes).CopyTo(c.Address);
            _mine++;
        }
    }

    /// <summary>The client's address as a key for the per-client limit (sockaddr_in: octets 4-7; sockaddr_in6: 8-23).</summary>
    private UInt128 ClientKey(ReadOnlySpan<byte> sockaddr) =>
        _v6 ? BinaryPrimitives.ReadUInt128LittleEndian(sockaddr.Slice(8, 16)) : BinaryPrimitives.ReadUInt32LittleEndian(sockaddr.Slice(4, 4));

    private void Readable(int fd)
    {
        ref var c = ref Slot(fd);
        if (c.Deadline == 0) return;   // an event for a descriptor closed earlier in this batch
        var spill = c.Spill;
        byte[] buffer = _input;
        int have = 0;
        if (spill is { InputLength: > 0 })
        {
            buffer = spill.Input!;
            have = spill.InputLength;
        }
        nint n;
        fixed (byte* p = buffer) n = LinuxTcp.Recv(fd, p + have, (nuint)(buffer.Length - have), LinuxTcp.MSG_DONTWAIT);
        if (n <= 0)
        {
            if (n < 0 && Marshal.GetLastPInvokeError() is LinuxTcp.EAGAIN or LinuxTcp.EINTR) return;
            if (n == 0 && c.Pending > 0)
            {
                // The client is done sending but still waits for deferred answers (RFC 7766 §6.2.4
                // leaves closing to the server once it has answered): stop reading, close when sent.
                c.PeerDone = true;
                if (spill is not { Writing: true }) LinuxTcp.Control(_epoll, LinuxTcp.EPOLL_CTL_MOD, fd, 0);
                return;
            }
            Close(fd);
            return;
        }
        c.Deadline = _now + _idleMs;
        Answer(fd, ref c, buffer, have + (int)n);
    }

    /// <summary>
    /// Answers every complete query in <paramref name="buffer"/>[0, <paramref name="have"/>), in
    /// order, gathering the answers so that pipelined queries cost one send, then keeps what is left.
    /// </summary>
    private void Answer(int fd, ref Connection c, byte[] buffer, int have)
    {
        c.Address[.._addressSize].CopyTo(_client.Buffer.Span);
        _current = fd;
        var info = new QueryContextInfo(TransportKind.Tcp, _client, _idleMs, _streams, _deferral);
        byte[] output = _output;
        int start = 0, written = 0;
        while (have - start >= 2)
        {
            int length = BinaryPrimitives.ReadUInt16BigEndian(buffer.AsSpan(start));
            if (length == 0)
            {
                Close(fd);
                return;
            }
            if (have - start - 2 < length) break;
            if (output.Length - written < MaxFrame)
            {
                if (!Send(fd, ref c, written))
                {
                    if (c.Deadline != 0) Keep(ref c, buffer, start, have);
                    return;
                }
                written = 0;
            }
            written += TcpFraming.AnswerFrame(_processor, buffer.AsSpan(start + 2, length), output.AsSpan(written, MaxFrame), info, _logger, LocalEndPoint);
            start += 2 + length;
            if (_streams.Take() is { } stream)
            {
                // The stream's messages go before the answers to the queries behind it (RFC 7766
                // §6.2.1.1 allows answers in order): those stay unread in the spill until it ends,
                // and the connection waits for EPOLLOUT to pull each next message.
                var streaming = c.Spill ??= _spills.Count > 0 ? _spills.Pop() : new Spill();
                streaming.Stream = stream;
                if (written > 0 && !Send(fd, ref c, written))
                {
                    if (c.Deadline != 0) Keep(ref c, buffer, start, have);
                    return;
                }
                Keep(ref c, buffer, start, have);
                if (!streaming.Writing)
                {
                    streaming.Writing = true;
                    LinuxTcp.Control(_epoll, LinuxTcp.EPOLL_CTL_MOD, fd, LinuxTcp.EPOLLOUT);
                }
                return;
            }
        }
        if (written > 0 && !Send(fd, ref c, written))
        {
            if (c.Deadline != 0) Keep(ref c, buffer, start, have);
            return;
        }
        Keep(ref c, buffer, start, have);
    }

    /// <summary>Keeps <paramref name="buffer"/>[start, have) (a partial query, or queries not answered yet) in the connection's spill.</summary>
    private void Keep(ref Connection c, byte[] buffer, int start, int have)
    {
        int left = have - start;
        var spill = c.Spill;
        if (left == 0)
        {
            if (spill?.Input is { } old)
            {
                ArrayPool<byte>.Shared.Return(old);
                spill.Input = null;
                spill.InputLength = 0;
                ReleaseSpillIfEmpty(ref c);
            }
            return;
        }
        // Room for the whole of a frame that has only begun to arrive (what is kept must leave room to read into).
        int need = left >= 2 ? 2 + BinaryPrimitives.ReadUInt16BigEndian(buffer.AsSpan(start)) : 0;
        int size = Math.Min(Math.Max(Math.Max(need, left), InitialInputSize), Math.Max(MaxFrame, left));
        spill ??= c.Spill = _spills.Count > 0 ? _spills.Pop() : new Spill();
        if (spill.Input == buffer && buffer.Length >= size)
        {
            if (start > 0) Buffer.BlockCopy(buffer, start, buffer, 0, left);
        }
        else
        {
            var target = ArrayPool<byte>.Shared.Rent(size);
            Buffer.BlockCopy(buffer, start, target, 0, left);
            if (spill.Input is { } old) ArrayPool<byte>.Shared.Return(old);
            spill.Input = target;
        }
        spill.InputLength = left;
    }

    /// <summary>
    /// Sends <see cref="_output"/>[0, count); false when the connection was closed, or when the kernel
    /// took only part of it: then the rest is kept and the connection waits to be writable.
    /// </summary>
    private bool Send(int fd, ref Connection c, int count)
    {
        nint sent;
        fixed (byte* p = _output) sent = LinuxTcp.Send(fd, p, (nuint)count, LinuxTcp.MSG_DONTWAIT | LinuxTcp.MSG_NOSIGNAL);
        if (sent == count) return true;
        if (sent < 0)
        {
            if (Marshal.GetLastPInvokeError() is not (LinuxTcp.EAGAIN or LinuxTcp.EINTR))
            {
                Close(fd);
                return false;
            }
            sent = 0;
        }
        var spill = c.Spill ??= _spills.Count > 0 ? _spills.Pop() : new Spill();
        int left = count - (int)sent;
        spill.Unsent = ArrayPool<byte>.Shared.Rent(left);
        Buffer.BlockCopy(_output, (int)sent, spill.Unsent, 0, left);
        spill.UnsentStart = 0;
        spill.UnsentEnd = left;
        if (!spill.Writing)
        {
            spill.Writing = true;
            LinuxTcp.Control(_epoll, LinuxTcp.EPOLL_CTL_MOD, fd, LinuxTcp.EPOLLOUT);
        }
        return false;
    }

    private void Writable(int fd)
    {
        ref var c = ref Slot(fd);
        var spill = c.Spill;
        if (c.Deadline == 0 || spill is null) return;
        if (spill.Unsent is { } unsent)
        {
            nint sent;
            fixed (byte* p = unsent) sent = LinuxTcp.Send(fd, p + spill.UnsentStart, (nuint)(spill.UnsentEnd - spill.UnsentStart), LinuxTcp.MSG_DONTWAIT | LinuxTcp.MSG_NOSIGNAL);
            if (sent < 0)
            {
                if (Marshal.GetLastPInvokeError() is LinuxTcp.EAGAIN or LinuxTcp.EINTR) return;
                Close(fd);
                return;
            }
            // Progress, not activity, keeps a connection: a client that stops reading mid-transfer
            // makes none and is closed by the idle sweep.
            c.Deadline = _now + _idleMs;
            spill.UnsentStart += (int)sent;
            if (spill.UnsentStart < spill.UnsentEnd) return;
            ArrayPool<byte>.Shared.Return(unsent);
            spill.Unsent = null;
        }
        if (spill.Stream is not null && !Pump(fd, ref c, spill)) return;
        // Everything went: answer what arrived meanwhile (it may stall again), then read again.
        if (spill.InputLength > 0) Answer(fd, ref c, spill.Input!, spill.InputLength);
        if (c.Deadline == 0 || spill.Unsent is not null || spill.Stream is not null) return;
        spill.Writing = false;
        if (c.PeerDone && c.Pending == 0)
        {
            Close(fd);
            return;
        }
        LinuxTcp.Control(_epoll, LinuxTcp.EPOLL_CTL_MOD, fd, c.PeerDone ? 0u : LinuxTcp.EPOLLIN);
        ReleaseSpillIfEmpty(ref c);
    }

    /// <summary>
    /// Sends the next few messages of the connection's stream, each made only once the one before
    /// went whole to the kernel, so a transfer holds at most one message of its own (the rest of
    /// one the kernel took in part). True when the stream has ended (and is disposed); false while
    /// it goes on (EPOLLOUT comes back) or when the connection was closed.
    /// </summary>
    private bool Pump(int fd, ref Connection c, Spill spill)
    {
        var stream = spill.Stream!;
        for (int i = 0; i < StreamMessagesPerWakeup; i++)
        {
            int n;
            try
            {
                n = stream.Next(_output.AsSpan(2, MaxFrame - 2));
            }
            catch (Exception e)
            {
                _logger.LogError(e, "response stream failed on {Endpoint}", LocalEndPoint);
                Close(fd);
                return false;
            }
            if (n <= 0)
            {
                spill.Stream = null;
                DisposeStream(stream);
                return true;
            }
            BinaryPrimitives.WriteUInt16BigEndian(_output, (ushort)n);
            if (!Send(fd, ref c, 2 + n)) return false;
            c.Deadline = _now + _idleMs;
        }
        return false;
    }

    private void DisposeStream(IMessageStream stream)
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

    private void ReleaseSpillIfEmpty(ref Connection c)
    {
        var spill = c.Spill;
        if (spill is null || spill.Input is not null || spill.Unsent is not null || spill.Writing || spill.Stream is not null) return;
        c.Spill = null;
        spill.InputLength = 0;
        if (_spills.Count < 1024) _spills.Push(spill);
    }

    private void Sweep()
    {
        long now = _now;
        CloseAll(now);
        _nextSweep = now + _sweepMs;
    }

    private void Close(int fd)
    {
        ref var c = ref Slot(fd);
        if (c.Deadline == 0) return;
        LinuxTcp.Close(fd);   // also leaves the epoll set
        if (c.Spill is { } spill)
        {
            if (spill.Input is not null) ArrayPool<byte>.Shared.Return(spill.Input);
            if (spill.Unsent is not null) ArrayPool<byte>.Shared.Return(spill.Unsent);
            spill.Input = spill.Unsent = null;
            spill.InputLength = 0;
            spill.Writing = false;
            if (spill.Stream is { } stream)
            {
                // Abandoned (client gone, idle, server stopping): the stream ends here, and with
                // it the transfer's hold on its slot and zone snapshot.
                spill.Stream = null;
                DisposeStream(stream);
            }
            if (_spills.Count < 1024) _spills.Push(spill);
        }
        _admission.Release(ClientKey(c.Address));
        c = default;
        _mine--;
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _stopping = true;
        if (_thread.IsAlive)
        {
            ulong one = 1;
            LinuxTcp.Write(_wake, &one, 8);
            if (!_thread.Join(TimeSpan.FromSeconds(5)))
                _logger.LogWarning("TCP event loop on {Endpoint} did not stop within 5 s", LocalEndPoint);
        }
        else
        {
            CloseAll(0);
        }
        LinuxTcp.Close(_epoll);
        _wakeHandle.Dispose();   // closes the eventfd once no poster holds it
    }

    /// <summary>
    /// Takes a deferred reply (a framed response, or null for an abandoned one) from any thread and
    /// wakes the loop, which sends it on its own thread: the connection's state is the loop's alone.
    /// </summary>
    private void Post(int fd, int generation, byte[]? frame)
    {
        _deferred.Enqueue((fd, generation, frame));
        bool held = false;
        try
        {
            _wakeHandle.DangerousAddRef(ref held);
            ulong one = 1;
            LinuxTcp.Write((int)_wakeHandle.DangerousGetHandle(), &one, 8);
        }
        catch (ObjectDisposedException)
        {
            // The loop is gone, and the connection with it: nothing to send to.
        }
        finally
        {
            if (held) _wakeHandle.DangerousRelease();
        }
    }

    /// <summary>Sends the deferred replies posted since the last wake-up, each on its connection if that is still the one it was for.</summary>
    private void DrainDeferred()
    {
        while (_deferred.TryDequeue(out var item))
        {
            int fd = item.Fd;
            if (fd >> ChunkBits >= _chunks.Length || _chunks[fd >> ChunkBits] is null) continue;
            ref var c = ref Slot(fd);
            if (c.Deadline == 0 || c.Generation != item.Generation) continue;   // closed meanwhile: a no-op
            c.Pending--;
            // The client gets a full idle timeout after its last answer.
            c.Deadline = _now + _idleMs;
            if (item.Frame is { } frame)
            {
                if (c.Spill?.Unsent is { } unsent)
                {
                    // Answers already wait for the socket: this one goes behind them, whole.
                    var spill = c.Spill;
                    int have = spill.UnsentEnd - spill.UnsentStart;
                    var bigger = ArrayPool<byte>.Shared.Rent(have + frame.Length);
                    Buffer.BlockCopy(unsent, spill.UnsentStart, bigger, 0, have);
                    Buffer.BlockCopy(frame, 0, bigger, have, frame.Length);
                    ArrayPool<byte>.Shared.Return(unsent);
                    spill.Unsent = bigger;
                    spill.UnsentStart = 0;
                    spill.UnsentEnd = have + frame.Length;
                    continue;
                }
                // Between whole messages, even of a stream: framing stays intact (RFC 7766 §7).
                frame.CopyTo(_output, 0);
                if (!Send(fd, ref c, frame.Length)) continue;   // closed, or the rest waits for EPOLLOUT
            }
            if (c.Pending == 0 && c.PeerDone && c.Spill is not { Writing: true }) Close(fd);
        }
    }

    /// <summary>Deferral for the query the loop is answering: the handle names the connection by descriptor and generation.</summary>
    private sealed class LoopDeferralSlot(TcpEventLoop loop) : DeferralSlot
    {
        public override IDeferredReply? Defer()
        {
            int fd = loop._current;
            if (fd < 0) return null;
            ref var c = ref loop.Slot(fd);
            if (c.Deadline == 0 || c.Pending >= loop._maxPending) return null;
            c.Pending++;
            return new LoopDeferredReply(loop, fd, c.Generation);
        }
    }

    private sealed class LoopDeferredReply(TcpEventLoop loop, int fd, int generation) : IDeferredReply
    {
        private int _done;

        public TransportKind Transport => TransportKind.Tcp;

        public void Send(ReadOnlySpan<byte> response)
        {
            if (response.Length > 65535 || Interlocked.Exchange(ref _done, 1) != 0)
            {
                Abandon();
                return;
            }
            var frame = new byte[2 + response.Length];
            BinaryPrimitives.WriteUInt16BigEndian(frame, (ushort)response.Length);
            response.CopyTo(frame.AsSpan(2));
            loop.Post(fd, generation, frame);
        }

        public void Abandon()
        {
            if (Interlocked.Exchange(ref _done, 1) != 0) return;
            loop.Post(fd, generation, null);
        }
    }
}
