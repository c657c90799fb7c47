using System.Net;
using Portcullis.Server.Tests.Support;
using Portcullis.Testing;
using static Portcullis.Server.Tests.Transfer.TransferClient;

namespace Portcullis.Server.Tests.Transfer;

/// <summary>
/// Knot (knotd) and BIND (named) from Debian as secondaries of Portcullis: each pulls the zones by
/// AXFR when it starts, and its own AXFR of them then equals Portcullis's. One zone is the
/// example, the other takes many messages. (An RRset larger than one message, which Portcullis
/// splits, is left out here: BIND 9.18 keeps at most 100 records per RRset by default
/// (max-records-per-type) and Knot cannot send such an RRset on; kdig reads it in ZoneTransferTests.)
/// </summary>
public sealed class SecondaryInteropTests
{
    private const string Small = "example.test.";
    private const string Large = "large.test.";
    private static readonly Lazy<string> LargeZone = new(() => GenerateZone(Large, hosts: 20_000, bigSetRecords: 90));

    private static TestServer Primary() => new(AllowLoopback, (Small, TestServer.ExampleZone), (Large, LargeZone.Value));

    /// <summary>Portcullis's TCP endpoint: the secondaries use the server's own listener (epoll on Linux).</summary>
    private static IPEndPoint Tcp(TestServer server) => server.Server.TcpEndPoints[0];

    private static void AssertSecondaryEqualsPrimary(TestServer primary, SecondaryPeer secondary)
    {
        foreach (var origin in new[] { Small, Large })
        {
            var ours = Lines(Pull(Tcp(primary), origin).Records);
            AssertSameZone(Parse(origin == Small ? TestServer.ExampleZone : LargeZone.Value, origin), ours);
            AssertSameZone(ours, Parse(Kdig(secondary.EndPoint, origin), origin));
        }
        // The secondary's two transfers and the test's two, all complete.
        Assert.Equal(4, primary.Server.Processor.Transfers.Completed);
        Assert.Equal(0, primary.Server.Processor.Transfers.Abandoned);
    }

    [Fact]
    public void Knot_as_a_secondary_pulls_the_zones_and_serves_what_Portcullis_serves()
    {
        using var primary = Primary();
        using var knot = new KnotSecondary(Tcp(primary), [Small, Large]);
        AssertSecondaryEqualsPrimary(primary, knot);
    }

    [Fact]
    public void Bind_as_a_secondary_pulls_the_zones_and_serves_what_Portcullis_serves()
    {
        using var primary = Primary();
        using var bind = new BindSecondary(Tcp(primary), [Small, Large]);
        AssertSecondaryEqualsPrimary(primary, bind);
    }
}
