using System.Net;
using System.Net.Sockets;
using Portcullis.Protocol.Messages;
using Portcullis.Server.Tests.Support;

namespace Portcullis.Server.Tests.Differential;

/// <summary>What one server answered to one query: the parsed message, or why there is none.</summary>
public sealed record Observation(DnsMessage? Message, string? Error)
{
    public static Observation Of(byte[] wire)
    {
        try
        {
            return new Observation(DnsMessage.Parse(wire), null);
        }
        catch (Protocol.DnsFormatException e)
        {
            return new Observation(null, $"unparseable answer ({e.Message}): {Convert.ToHexString(wire)}");
        }
    }
}

/// <summary>
/// Sends the differential queries to one server, one at a time: UDP over one connected socket
/// (answers matched by ID, each wait bounded), TCP over a connection per query.
/// </summary>
public sealed class DifferentialClient(IPEndPoint server) : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);
    private readonly Socket _udp = Connect(server);
    private readonly byte[] _buffer = new byte[65535];
    private ushort _id = 0x1000;

    private static Socket Connect(IPEndPoint server)
    {
        var socket = new Socket(server.AddressFamily, SocketType.Dgram, ProtocolType.Udp) { ReceiveTimeout = (int)Timeout.TotalMilliseconds };
        socket.Connect(server);
        return socket;
    }

    public Observation Ask(DifferentialQuery query)
    {
        ushort id = ++_id;
        var wire = query.ToWire(id);
        try
        {
            return query.Tcp ? Observation.Of(new DnsTestClient(server).TcpRaw(wire)) : Udp(wire, id);
        }
        catch (Exception e) when (e is SocketException or IOException)
        {
            return new Observation(null, $"no answer over {(query.Tcp ? "TCP" : "UDP")}: {e.Message}");
        }
    }

    private Observation Udp(byte[] wire, ushort id)
    {
        _udp.Send(wire);
        var deadline = DateTime.UtcNow + Timeout;
        while (true)
        {
            // A late answer to an earlier query (one that timed out) is skipped, not taken for this one.
            int n = _udp.Receive(_buffer);
            if (n >= 2 && (_buffer[0] << 8 | _buffer[1]) == id) return Observation.Of(_buffer[..n]);
            if (DateTime.UtcNow > deadline) throw new SocketException((int)SocketError.TimedOut);
        }
    }

    public void Dispose() => _udp.Dispose();
}
