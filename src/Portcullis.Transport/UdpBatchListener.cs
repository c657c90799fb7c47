using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;

namespace Portcullis.Transport;

/// <summary>
/// A UDP socket served by one dedicated thread that receives and sends in batches with
/// recvmmsg/sendmmsg (Linux). Every buffer is native memory allocated once; nothing is allocated
/// per datagram. Several of these may share one address and port through SO_REUSEPORT, one per
/// core, so the kernel spreads clients over them.
/// </summary>
public sealed unsafe class UdpBatchListener : IUdpListener
{
    public const int BatchSize = 64;
    /// <summary>Queries longer than this are cut by the kernel (MSG_TRUNC) and dropped: no real query comes near it.</summary>
    public const int MaxQuerySize = 4096;
    private const int AddressSize = 128;   // sockaddr_storage

    private readonly Socket _socket;
    private readonly IQueryProcessor _processor;
    private readonly ILogger _logger;
    private readonly Thread _thread;
    private readonly int _responseSize;
    private volatile bool _stopping;

    private readonly byte* _memory;
    private readonly LinuxUdp.MMsgHdr* _rx;
    private readonly LinuxUdp.MMsgHdr* _tx;
    private readonly LinuxUdp.IoVec* _rxIov;
    private readonly LinuxUdp.IoVec* _txIov;
    private readonly byte* _addresses;
    private readonly byte* _queries;
    private readonly byte* _responses;

    public UdpBatchListener(IPEndPoint endPoint, IQueryProcessor processor, ILogger logger, bool reusePort,
        int maxResponseSize = 65535, int receiveBufferBytes = 4 << 20)
    {
        if (!LinuxUdp.IsSupported) throw new PlatformNotSupportedException("recvmmsg/sendmmsg need Linux on x64 or arm64");
        _processor = processor;
        _logger = logger;
        _responseSize = Math.Clamp(maxResponseSize, 512, 65535);
        _socket = new Socket(endPoint.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        if (endPoint.AddressFamily == AddressFamily.InterNetworkV6) _socket.DualMode = false;
        if (reusePort) _socket.SetRawSocketOption(LinuxUdp.SOL_SOCKET, LinuxUdp.SO_REUSEPORT, BitConverter.GetBytes(1));
        try { _socket.ReceiveBufferSize = receiveBufferBytes; } catch (SocketException) { /* best effort */ }
        // Wake up twice a second even when idle, so that a stop request is seen.
        _socket.ReceiveTimeout = 500;
        _socket.Blocking = true;
        _socket.Bind(endPoint);
        LocalEndPoint = (IPEndPoint)_socket.LocalEndPoint!;

        nuint size = (nuint)(2 * BatchSize * (sizeof(LinuxUdp.MMsgHdr) + sizeof(LinuxUdp.IoVec))
            + BatchSize * (AddressSize + MaxQuerySize) + (long)BatchSize * _responseSize);
        _memory = (byte*)NativeMemory.AllocZeroed(size);
        byte* p = _memory;
        _rx = (LinuxUdp.MMsgHdr*)p; p += BatchSize * sizeof(LinuxUdp.MMsgHdr);
        _tx = (LinuxUdp.MMsgHdr*)p; p += BatchSize * sizeof(LinuxUdp.MMsgHdr);
        _rxIov = (LinuxUdp.IoVec*)p; p += BatchSize * sizeof(LinuxUdp.IoVec);
        _txIov = (LinuxUdp.IoVec*)p; p += BatchSize * sizeof(LinuxUdp.IoVec);
        _addresses = p; p += BatchSize * AddressSize;
        _queries = p; p += BatchSize * MaxQuerySize;
        _responses = p;
        for (int i = 0; i < BatchSize; i++)
        {
            _rxIov[i].Base = _queries + i * MaxQuerySize;
            _rxIov[i].Length = MaxQuerySize;
            _txIov[i].Base = _responses + (long)i * _responseSize;
        }
        _thread = new Thread(Run) { IsBackground = true, Name = $"udp {LocalEndPoint}" };
    }

    public IPEndPoint LocalEndPoint { get; }

    public void Start() => _thread.Start();

    private void ResetReceiveHeaders()
    {
        for (int i = 0; i < BatchSize; i++)
        {
            ref var h = ref _rx[i].Header;
            h.Name = _addresses + i * AddressSize;
            h.NameLength = AddressSize;
            h.Iov = &_rxIov[i];
            h.IovLength = 1;
            h.Control = null;
            h.ControlLength = 0;
            h.Flags = 0;
            _rx[i].Length = 0;
        }
    }

    private void Run()
    {
        nint fd = _socket.SafeHandle.DangerousGetHandle();
        var client = new SocketAddress(_socket.AddressFamily);
        // A deferred reply (recursion) goes out later with its own sendto on this socket.
        var info = new QueryContextInfo(TransportKind.Udp, client, deferral: new UdpDeferralSlot(_socket, client));
        while (!_stopping)
        {
            ResetReceiveHeaders();
            int received = LinuxUdp.RecvMmsg(fd, _rx, BatchSize, LinuxUdp.MSG_WAITFORONE, null);
            if (received <= 0)
            {
                if (_stopping) return;
                int errno = Marshal.GetLastPInvokeError();
                if (received < 0 && errno is not (LinuxUdp.EINTR or LinuxUdp.EAGAIN))
                    _logger.LogWarning("recvmmsg on {Endpoint} failed: errno {Errno}", LocalEndPoint, errno);
                continue;
            }
            int toSend = 0;
            for (int i = 0; i < received; i++)
            {
                ref var m = ref _rx[i];
                if ((m.Header.Flags & LinuxUdp.MSG_TRUNC) != 0) continue;   // longer than any real query
                int addressLength = (int)m.Header.NameLength;
                if (addressLength > client.Buffer.Length) continue;
                new ReadOnlySpan<byte>(m.Header.Name, addressLength).CopyTo(client.Buffer.Span);
                client.Size = addressLength;
                var query = new ReadOnlySpan<byte>(_rxIov[i].Base, (int)m.Length);
                var response = new Span<byte>(_responses + (long)toSend * _responseSize, _responseSize);
                int length;
                try
                {
                    length = _processor.Process(query, response, info);
                }
                catch (Exception e)
                {
                    _logger.LogError(e, "query processing failed on {Endpoint}", LocalEndPoint);
                    continue;
                }
                if (length <= 0) continue;
                ref var t = ref _tx[toSend];
                _txIov[toSend].Length = (nuint)length;
                t.Header.Name = m.Header.Name;            // reply to the sender's address
                t.Header.NameLength = (uint)addressLength;
                t.Header.Iov = &_txIov[toSend];
                t.Header.IovLength = 1;
                t.Header.Control = null;
                t.Header.ControlLength = 0;
                t.Header.Flags = 0;
                toSend++;
            }
            Send(fd, toSend);
        }
    }

    private void Send(nint fd, int count)
    {
        int done = 0;
        while (done < count)
        {
            int sent = LinuxUdp.SendMmsg(fd, _tx + done, (uint)(count - done), 0);
            if (sent > 0) { done += sent; continue; }
            int errno = Marshal.GetLastPInvokeError();
            if (sent < 0 && errno == LinuxUdp.EINTR) continue;
            // The first datagram of what is left failed (e.g. an unreachable address): skip it.
            done++;
        }
    }

    public void Dispose()
    {
        _stopping = true;
        // On Linux shutdown() wakes a blocked receive even on an unconnected UDP socket (it then
        // reports ENOTCONN, which is expected here).
        try { _socket.Shutdown(SocketShutdown.Both); } catch (SocketException) { }
        // The thread wakes at least twice a second (SO_RCVTIMEO); its buffers are freed only once it is gone.
        bool gone = !_thread.IsAlive || _thread.Join(TimeSpan.FromSeconds(10));
        _socket.Dispose();
        if (gone) NativeMemory.Free(_memory);
    }
}
