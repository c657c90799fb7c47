using System.Net;
using Portcullis.Testing;

namespace Portcullis.Protocol.Tests.Interop;

/// <summary>
/// The xunit fixture of the message-decoding tests: a real Knot DNS (<see cref="KnotPeer"/>) on
/// 127.0.0.1 serving the zones in Interop/Data/knot, with an NSID and, for cookie.test, Knot's
/// cookies module. Started once per test class; stopped and cleaned up in Dispose.
/// </summary>
public sealed class KnotServer : IDisposable
{
    public const string Nsid = "portcullis-interop";

    /// <summary>Zones served; cookie.test has mod-cookies (server cookies, BADCOOKIE).</summary>
    public static readonly string[] Zones = ["example.test", "cookie.test"];

    private readonly KnotPeer _peer = new(
        [.. Zones.Select(z => new PeerZone(z, Path.Combine(InteropData.Directory, "knot", z + ".zone")))],
        nsid: Nsid, cookieZones: ["cookie.test"]);

    public IPEndPoint EndPoint => _peer.EndPoint;
    public int Port => _peer.Port;
    public string Log => _peer.Log;

    public void Dispose() => _peer.Dispose();
}
