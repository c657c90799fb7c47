using System.Net;
using System.Net.Sockets;

namespace Portcullis.Testing;

/// <summary>
/// Test hierarchies each take a 127.X.N.0/24 of their own (X = 53 for DnsHierarchy, 55 for
/// SignedHierarchy): the next N whose .1:53 is free, so that hierarchies in parallel, and in other
/// processes, never collide.
/// </summary>
public static class LoopbackSubnets
{
    public static int Claim(byte second, ref int last)
    {
        for (int attempt = 0; attempt < 254; attempt++)
        {
            int n = (Interlocked.Increment(ref last) - 1) % 254 + 1;
            using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            try
            {
                probe.Bind(new IPEndPoint(new IPAddress([127, second, (byte)n, 1]), 53));
                return n;
            }
            catch (SocketException)
            {
                // In use by another hierarchy: next /24.
            }
        }
        throw new InvalidOperationException($"no 127.{second}.N.0/24 has port 53 free");
    }
}

/// <summary>Waiting for a resolver process to answer: one RD=0 probe for ". NS" (answered from the hints or REFUSED, never resolved, so caches stay cold).</summary>
public static class ResolverProbe
{
    public static void WaitUntilAnswering(IPEndPoint endPoint, ushort id, Func<bool> exited, Func<string> log, string name = "unbound")
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.ReceiveTimeout = 250;
        socket.Connect(endPoint);
        byte[] query = [(byte)(id >> 8), (byte)id, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1];
        var buffer = new byte[4096];
        for (int i = 0; i < 80; i++)
        {
            if (exited()) break;
            try
            {
                socket.Send(query);
                int n = socket.Receive(buffer);
                if (n >= 12 && buffer[0] == query[0] && buffer[1] == query[1] && (buffer[2] & 0x80) != 0) return;
            }
            catch (SocketException)
            {
                // Not answering yet: ask again (each try waits at most 250 ms).
            }
        }
        throw new TimeoutException($"{name} did not answer on {endPoint}.\nLog:\n{log()}");
    }
}
