using System.Net;
using System.Net.Sockets;

namespace Portcullis.Transport;

/// <summary>
/// Deferral for the UDP listeners: the handle keeps the listening socket and a copy of the client's
/// address, and sends with sendto on that socket (one datagram per call: safe from any thread,
/// next to the listener's own receives and sends), so the reply leaves from the address and port
/// the client asked (RFC 5452 §4.3: resolvers match replies by address and port).
/// </summary>
internal sealed class UdpDeferralSlot(Socket socket, SocketAddress current) : DeferralSlot
{
    public override IDeferredReply? Defer()
    {
        // The listener reuses its SocketAddress for the next datagram: the handle needs its own.
        var copy = new SocketAddress(current.Family, current.Size);
        current.Buffer.Span[..current.Size].CopyTo(copy.Buffer.Span);
        return new UdpDeferredReply(socket, copy);
    }
}

internal sealed class UdpDeferredReply(Socket socket, SocketAddress client) : IDeferredReply
{
    private int _done;

    public TransportKind Transport => TransportKind.Udp;

    public void Send(ReadOnlySpan<byte> response)
    {
        if (Interlocked.Exchange(ref _done, 1) != 0) return;
        try
        {
            socket.SendTo(response, SocketFlags.None, client);
        }
        catch (SocketException)
        {
            // The client may be gone; UDP has nobody to tell.
        }
        catch (ObjectDisposedException)
        {
            // The listener stopped meanwhile.
        }
    }

    public void Abandon() => Interlocked.Exchange(ref _done, 1);
}
