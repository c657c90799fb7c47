using System.Net;
using System.Net.Sockets;

namespace Portcullis.Testing;

/// <summary>Ports for servers the tests start: ask the kernel for one rather than guess.</summary>
public static class FreePort
{
    /// <summary>
    /// A port on 127.0.0.1 that is free for both UDP and TCP right now (DNS servers listen on both).
    /// Another process could take it before the server binds; the server then fails to start and
    /// says so in its log, which the caller reports.
    /// </summary>
    public static int ForUdpAndTcp()
    {
        for (int attempt = 0; attempt < 20; attempt++)
        {
            using var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            udp.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            int port = ((IPEndPoint)udp.LocalEndPoint!).Port;
            using var tcp = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                tcp.Bind(new IPEndPoint(IPAddress.Loopback, port));
                return port;
            }
            catch (SocketException)
            {
                // Taken for TCP: ask for another.
            }
        }
        throw new InvalidOperationException("no port on 127.0.0.1 was free for both UDP and TCP after 20 tries");
    }
}
