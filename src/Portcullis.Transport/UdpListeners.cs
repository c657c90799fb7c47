using System.Net;
using Microsoft.Extensions.Logging;

namespace Portcullis.Transport;

/// <summary>A UDP socket with its own receive thread.</summary>
public interface IUdpListener : IDisposable
{
    IPEndPoint LocalEndPoint { get; }
    void Start();
}

public static class UdpListeners
{
    /// <summary>
    /// The fastest listener this platform has: batched recvmmsg/sendmmsg on Linux, else blocking
    /// ReceiveFrom/SendTo (one datagram per call). Set PORTCULLIS_UDP=simple to force the latter.
    /// </summary>
    public static IUdpListener Create(IPEndPoint endPoint, IQueryProcessor processor, ILogger logger, int maxResponseSize, bool reusePort)
    {
        bool simple = Environment.GetEnvironmentVariable("PORTCULLIS_UDP") == "simple";
        return LinuxUdp.IsSupported && !simple
            ? new UdpBatchListener(endPoint, processor, logger, reusePort, maxResponseSize)
            : new UdpListener(endPoint, processor, logger);
    }
}
