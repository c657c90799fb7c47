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

/// <summary>
/// What the test hierarchies share: a 127.X.N.0/24 of their own (<see cref="LoopbackSubnets"/>), a
/// temporary directory, the processes and sockets they started (<see cref="Owned"/>, disposed in
/// reverse order) and the resolver's address .200.
/// </summary>
public abstract class LoopbackHierarchy : IDisposable
{
    private readonly byte _second;

    /// <summary>What Dispose stops, last started first.</summary>
    protected List<IDisposable> Owned { get; } = [];

    protected LoopbackHierarchy(byte second, ref int lastSubnet, string directoryPrefix)
    {
        _second = second;
        Subnet = LoopbackSubnets.Claim(second, ref lastSubnet);
        Directory = System.IO.Directory.CreateTempSubdirectory(directoryPrefix).FullName;
    }

    /// <summary>N in 127.X.N.0/24.</summary>
    public int Subnet { get; }

    /// <summary>Root hints, zone files, keys: whatever the hierarchy writes.</summary>
    public string Directory { get; }

    public IPAddress Address(int host) => new([127, _second, (byte)Subnet, (byte)host]);

    /// <summary>Where the resolver under test listens (port 53) and sends from: .200.</summary>
    public IPAddress ResolverAddress => Address(200);

    public string RootHintsFile => Path.Combine(Directory, "root.hints");

    /// <summary>Runs the start-up; on failure, stops what was started and rethrows.</summary>
    protected void Start(Action start)
    {
        try
        {
            start();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>True keeps the directory after Dispose (to look at it).</summary>
    protected virtual bool KeepDirectory => false;

    public void Dispose()
    {
        foreach (var d in Enumerable.Reverse(Owned)) d.Dispose();
        Owned.Clear();
        if (KeepDirectory) return;
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // Left in the temp directory; harmless.
        }
        GC.SuppressFinalize(this);
    }
}
