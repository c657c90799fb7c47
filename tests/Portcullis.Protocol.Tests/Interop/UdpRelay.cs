using System.Net;
using System.Net.Sockets;

namespace Portcullis.Protocol.Tests.Interop;

/// <summary>
/// A UDP relay on 127.0.0.1 between a client (dig, kdig) and a server (knotd) that keeps the exact
/// bytes of every query and response it passes on, so the tests can decode what real tools sent.
/// </summary>
public sealed class UdpRelay : IDisposable
{
    /// <summary>One query as the client sent it and the server's response (null if none came).</summary>
    public sealed record Exchange(byte[] Query, byte[]? Response);

    private static readonly TimeSpan UpstreamTimeout = TimeSpan.FromSeconds(5);

    private readonly Socket _listener;
    private readonly IPEndPoint _upstream;
    private readonly Thread _thread;
    private readonly List<Exchange> _exchanges = [];
    private volatile bool _stopping;

    public UdpRelay(IPEndPoint upstream)
    {
        _upstream = upstream;
        _listener = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        // A bounded receive so the loop notices Dispose even where closing does not wake it.
        _listener.ReceiveTimeout = 500;
        Port = ((IPEndPoint)_listener.LocalEndPoint!).Port;
        _thread = new Thread(Run) { IsBackground = true, Name = "udp-relay" };
        _thread.Start();
    }

    public int Port { get; }

    /// <summary>The exchanges relayed since the last call, oldest first.</summary>
    public IReadOnlyList<Exchange> TakeExchanges()
    {
        lock (_exchanges)
        {
            var copy = _exchanges.ToArray();
            _exchanges.Clear();
            return copy;
        }
    }

    private void Run()
    {
        var buffer = new byte[65535];
        while (!_stopping)
        {
            EndPoint client = new IPEndPoint(IPAddress.Any, 0);
            int length;
            try
            {
                length = _listener.ReceiveFrom(buffer, ref client);
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.TimedOut || e.SocketErrorCode == SocketError.WouldBlock)
            {
                continue;
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                return; // Disposed.
            }
            byte[] query = buffer.AsSpan(0, length).ToArray();
            byte[]? response = AskUpstream(query);
            // Recorded before it is passed on, so the client cannot finish before the test can see it.
            lock (_exchanges) _exchanges.Add(new Exchange(query, response));
            if (response is null) continue;
            try
            {
                _listener.SendTo(response, client);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                return;
            }
        }
    }

    private byte[]? AskUpstream(byte[] query)
    {
        // A fresh socket per query: a late answer to an earlier query can never be taken for this one.
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.ReceiveTimeout = (int)UpstreamTimeout.TotalMilliseconds;
        socket.Connect(_upstream);
        socket.Send(query);
        var buffer = new byte[65535];
        try
        {
            int n = socket.Receive(buffer);
            return buffer.AsSpan(0, n).ToArray();
        }
        catch (SocketException)
        {
            return null;
        }
    }

    public void Dispose()
    {
        _stopping = true;
        _listener.Dispose();
        _thread.Join(TimeSpan.FromSeconds(5));
    }
}
