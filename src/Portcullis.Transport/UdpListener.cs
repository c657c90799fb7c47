using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace Portcullis.Transport;

/// <summary>
/// One UDP socket served by one dedicated thread doing blocking receives and sends: measured here,
/// this costs half what .NET's async socket engine does per packet (see docs/architecture.md). The
/// loop allocates nothing per query: buffers and the client address are reused.
/// </summary>
public sealed class UdpListener : IUdpListener
{
    private readonly Socket _socket;
    private readonly IQueryProcessor _processor;
    private readonly ILogger _logger;
    private readonly Thread _thread;
    private volatile bool _stopping;

    public UdpListener(IPEndPoint endPoint, IQueryProcessor processor, ILogger logger, int receiveBufferBytes = 4 << 20)
    {
        _processor = processor;
        _logger = logger;
        _socket = new Socket(endPoint.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        if (endPoint.AddressFamily == AddressFamily.InterNetworkV6) _socket.DualMode = false;
        try { _socket.ReceiveBufferSize = receiveBufferBytes; } catch (SocketException) { /* best effort */ }
        _socket.Bind(endPoint);
        LocalEndPoint = (IPEndPoint)_socket.LocalEndPoint!;
        _thread = new Thread(Run) { IsBackground = true, Name = $"udp {LocalEndPoint}" };
    }

    public IPEndPoint LocalEndPoint { get; }

    public void Start() => _thread.Start();

    private void Run()
    {
        var query = new byte[65535];
        var response = new byte[65535];
        var client = new SocketAddress(_socket.AddressFamily);
        var info = new QueryContextInfo(TransportKind.Udp, client, deferral: new UdpDeferralSlot(_socket, client));
        while (!_stopping)
        {
            int received;
            try
            {
                received = _socket.ReceiveFrom(query, SocketFlags.None, client);
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.MessageSize)
            {
                continue;
            }
            catch (Exception) when (_stopping)
            {
                return;
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            int length;
            try
            {
                length = _processor.Process(query.AsSpan(0, received), response, info);
            }
            catch (Exception e)
            {
                // A bug must not take the listener down; the query is dropped and the fault logged.
                _logger.LogError(e, "query processing failed on {Endpoint}", LocalEndPoint);
                continue;
            }
            if (length <= 0) continue;
            try
            {
                _socket.SendTo(response.AsSpan(0, length), SocketFlags.None, client);
            }
            catch (SocketException)
            {
                // The client may be gone; UDP has nobody to tell.
            }
            catch (ObjectDisposedException)
            {
                return;
            }
        }
    }

    public void Dispose()
    {
        _stopping = true;
        _socket.Dispose();
        if (_thread.IsAlive && Thread.CurrentThread != _thread) _thread.Join(TimeSpan.FromSeconds(5));
    }
}
