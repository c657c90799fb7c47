using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;

namespace Portcullis.Server.Tests.Support;

/// <summary>
/// A small stub client over real sockets, with a bounded wait for every answer. With a
/// <paramref name="source"/> address (127.0.0.x) its sockets bind to it, so one test can play several clients.
/// </summary>
public sealed class DnsTestClient(IPEndPoint server, IPAddress? source = null)
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);
    private static int _id = 1;

    public static DnsMessage Query(string name, RecordType type, bool edns = false, ushort payload = 1232, RecordClass @class = RecordClass.IN)
    {
        var q = DnsMessage.CreateQuery(DnsName.Parse(name), type, @class, (ushort)Interlocked.Increment(ref _id), recursionDesired: false);
        if (edns) q.Edns = new Edns { UdpPayloadSize = payload };
        return q;
    }

    public DnsMessage Udp(string name, RecordType type, bool edns = false, ushort payload = 1232) =>
        DnsMessage.Parse(UdpRaw(Query(name, type, edns, payload).ToWire()));

    public DnsMessage Tcp(string name, RecordType type, bool edns = false) =>
        DnsMessage.Parse(TcpRaw(Query(name, type, edns).ToWire()));

    public byte[] UdpRaw(byte[] query)
    {
        using var socket = new Socket(server.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        socket.ReceiveTimeout = (int)Timeout.TotalMilliseconds;
        Bind(socket);
        socket.Connect(server);
        socket.Send(query);
        var buffer = new byte[65535];
        int n = socket.Receive(buffer);
        return buffer[..n];
    }

    /// <summary>True when the server sent nothing back within a short bound (for queries it must drop).</summary>
    public bool UdpGetsNoAnswer(byte[] query, TimeSpan wait)
    {
        using var socket = new Socket(server.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        Bind(socket);
        socket.Connect(server);
        socket.Send(query);
        return !socket.Poll(wait, SelectMode.SelectRead);
    }

    public byte[] TcpRaw(byte[] query)
    {
        using var socket = Connect();
        Send(socket, query);
        return ReceiveMessage(socket) ?? throw new IOException("connection closed before an answer");
    }

    public Socket Connect()
    {
        var socket = new Socket(server.AddressFamily, SocketType.Stream, ProtocolType.Tcp)
        {
            ReceiveTimeout = (int)Timeout.TotalMilliseconds,
            SendTimeout = (int)Timeout.TotalMilliseconds,
        };
        Bind(socket);
        socket.Connect(server);
        return socket;
    }

    /// <summary>A UDP socket bound to the source address (if any), connected to the server, for floods.</summary>
    public Socket UdpSocket()
    {
        var socket = new Socket(server.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        Bind(socket);
        socket.Connect(server);
        return socket;
    }

    private void Bind(Socket socket)
    {
        if (source is not null) socket.Bind(new IPEndPoint(source, 0));
    }

    public static void Send(Socket socket, byte[] message)
    {
        var framed = new byte[message.Length + 2];
        BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)message.Length);
        message.CopyTo(framed, 2);
        socket.Send(framed);
    }

    /// <summary>One length-prefixed message, or null when the server closed the connection.</summary>
    public static byte[]? ReceiveMessage(Socket socket)
    {
        var len = new byte[2];
        if (!ReceiveExactly(socket, len)) return null;
        var message = new byte[BinaryPrimitives.ReadUInt16BigEndian(len)];
        return ReceiveExactly(socket, message) ? message : null;
    }

    private static bool ReceiveExactly(Socket socket, byte[] buffer)
    {
        int read = 0;
        while (read < buffer.Length)
        {
            int n = socket.Receive(buffer, read, buffer.Length - read, SocketFlags.None);
            if (n == 0) return false;
            read += n;
        }
        return true;
    }
}
