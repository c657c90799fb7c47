using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;

namespace Portcullis.Testing;

/// <summary>
/// A real IP-over-DNS tunnel made with Debian's iodine 0.7, for a resolver under test to carry.
/// Each instance takes a slot N of its own (1–250, the first whose network namespace name is free,
/// so parallel tests and other processes never share one) and builds:
/// <list type="bullet">
/// <item>iodined in the root namespace, authoritative for <see cref="Domain"/>, listening on
///   <see cref="IodinedEndPoint"/> (127.56.N.1 port 5300), its tun device at 172.31.N.1/27;</item>
/// <item>a network namespace with a veth pair: <see cref="ResolverAddress"/> (10.199.N.1/24) on the
///   host side, where the resolver under test must listen on port 53 (iodine's client has no port
///   option), and <see cref="ClientAddress"/> (10.199.N.2/24) inside;</item>
/// <item>on <see cref="Connect"/>, the iodine client inside the namespace with -r (no raw mode: every
///   packet goes as DNS through the resolver), its tun device at 172.31.N.2 or later.</item>
/// </list>
/// The resolver forwards <see cref="Domain"/> to <see cref="ForwarderSpec"/>, leaving from
/// <see cref="OutgoingAddress"/> (127.56.N.2), and admits <see cref="ClientNetwork"/>.
/// Dispose kills both iodine processes and deletes the namespace (and with it the veth pair); the
/// tun devices go with their processes. Needs root, /dev/net/tun, ip(8), bash and Debian's iodine.
/// </summary>
public sealed class IodineTunnel : IDisposable
{
    /// <summary>The tunnel's domain: iodined is authoritative for it.</summary>
    public const string Domain = "t.tunnel.test.";
    /// <summary>A test-only password (iodine uses at most 32 characters).</summary>
    public const string Password = "portcullis-iodine-test";
    public const int IodinedPort = 5300;
    public const string InstallHint = "the iodine tests need root and Debian's iodine package (see .ci/run)";

    private static int _nextSlot;
    private readonly List<BackgroundProcess> _clients = [];
    private BackgroundProcess? _iodined;
    private bool _namespaceMade;

    public IodineTunnel(TimeSpan? startTimeout = null)
    {
        var timeout = startTimeout ?? TimeSpan.FromSeconds(20);
        try
        {
            Slot = TakeSlot();
            Namespace = NamespaceName(Slot);
            ResolverAddress = IPAddress.Parse($"10.199.{Slot}.1");
            ClientAddress = IPAddress.Parse($"10.199.{Slot}.2");
            IodinedEndPoint = new IPEndPoint(IPAddress.Parse($"127.56.{Slot}.1"), IodinedPort);
            OutgoingAddress = IPAddress.Parse($"127.56.{Slot}.2");
            ServerTunnelAddress = IPAddress.Parse($"172.31.{Slot}.1");
            string host = HostLink, inside = $"pcio{Slot}c";
            // A veth of an earlier owner of this slot can outlive its namespace's name: a TCP socket
            // left in the namespace keeps it alive for a while. Ours by name: remove it.
            ExternalProcess.Run("ip", ["link", "del", host]);
            Ip("netns", "exec", Namespace, "ip", "link", "set", "lo", "up");
            Ip("link", "add", host, "type", "veth", "peer", "name", inside);
            Ip("link", "set", inside, "netns", Namespace);
            Ip("addr", "add", $"{ResolverAddress}/24", "dev", host);
            Ip("link", "set", host, "up");
            Ip("netns", "exec", Namespace, "ip", "addr", "add", $"{ClientAddress}/24", "dev", inside);
            Ip("netns", "exec", Namespace, "ip", "link", "set", inside, "up");

            // -c: the resolver asks from a new random port (and 0x20 case) every time, so iodined must
            // not insist on one client address and port per user.
            _iodined = new BackgroundProcess("iodined",
                ["-f", "-c", "-l", IodinedEndPoint.Address.ToString(), "-p", IodinedPort.ToString(),
                 "-d", $"pcio{Slot}s", "-P", Password, $"{ServerTunnelAddress}/27", Domain.TrimEnd('.')]);
            if (!_iodined.WaitForOutput("Listening to dns for domain", timeout))
                throw new InvalidOperationException($"iodined did not start within {timeout.TotalSeconds:0} s:\n{_iodined.Output}");
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>N: the third octet of every address this tunnel uses.</summary>
    public int Slot { get; }
    public string Namespace { get; }
    /// <summary>Where the resolver under test listens (port 53): the host side of the veth pair.</summary>
    public IPAddress ResolverAddress { get; }
    /// <summary>The iodine client's source address as the resolver sees it.</summary>
    public IPAddress ClientAddress { get; }
    /// <summary>The client network for allow-recursion: 10.199.N.0/24.</summary>
    public string ClientNetwork => $"10.199.{Slot}.0/24";
    public IPEndPoint IodinedEndPoint { get; }
    /// <summary>The forwarder for <see cref="Domain"/> as Portcullis's forward-zones want it: "127.56.N.1@5300".</summary>
    public string ForwarderSpec => $"{IodinedEndPoint.Address}@{IodinedEndPoint.Port}";
    /// <summary>A local address of this tunnel's own for the resolver's upstream queries (outgoing-interface).</summary>
    public IPAddress OutgoingAddress { get; }
    /// <summary>iodined's end of the tunnel (in the root namespace).</summary>
    public IPAddress ServerTunnelAddress { get; }
    /// <summary>What iodined printed so far.</summary>
    public string ServerOutput => _iodined?.Output ?? "";

    /// <summary>
    /// Starts the iodine client in the namespace with <paramref name="options"/> (e.g. "-T", "TXT",
    /// "-O", "Base64") and waits for its "Connection setup complete" line. The client runs until the
    /// returned handle (or the tunnel) is disposed. Fails with iodine's output if it gave up or the
    /// timeout passed.
    /// </summary>
    public IodineClient Connect(IEnumerable<string> options, TimeSpan? timeout = null)
    {
        var limit = timeout ?? TimeSpan.FromSeconds(60);
        // One client at a time: each would take the same tun device name.
        foreach (var old in _clients) old.Dispose();
        _clients.Clear();
        var client = new BackgroundProcess("ip",
            ["netns", "exec", Namespace, "iodine", "-f", "-r", "-P", Password, "-d", $"pcio{Slot}t",
             .. options, ResolverAddress.ToString(), Domain.TrimEnd('.')]);
        _clients.Add(client);
        if (!client.WaitForOutput("Connection setup complete, transmitting data.", limit))
        {
            string output = client.Output;
            client.Dispose();
            _clients.Remove(client);
            throw new InvalidOperationException(
                $"`{client.CommandLine}` did not bring the tunnel up within {limit.TotalSeconds:0} s:\n{output}\niodined:\n{ServerOutput}");
        }
        return new IodineClient(client);
    }

    /// <summary>
    /// One TCP connection across the tunnel: from inside the namespace (bash's /dev/tcp) to a listener
    /// here on <see cref="ServerTunnelAddress"/>; the client sends <paramref name="upload"/> random
    /// octets, then the listener sends <paramref name="download"/> random octets back. Random, because
    /// iodine compresses. Returns the SHA-256 of each direction as sent and as received.
    /// </summary>
    public TunnelTransfer Transfer(int upload, int download, TimeSpan? timeout = null)
    {
        var limit = timeout ?? TimeSpan.FromSeconds(60);
        using var listener = new TcpListener(ServerTunnelAddress, 0);
        listener.Start(1);
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        using var cancel = new CancellationTokenSource(limit);
        var served = Serve(listener, upload, download, cancel.Token);

        var file = Path.Combine(Path.GetTempPath(), $"portcullis-iodine-{Guid.NewGuid():N}.bin");
        try
        {
            string script =
                $"set -e; head -c {upload} /dev/urandom > '{file}'; sha256sum < '{file}' | cut -c1-64; " +
                $"exec 3<>/dev/tcp/{ServerTunnelAddress}/{port}; cat '{file}' >&3; head -c {download} <&3 | sha256sum | cut -c1-64";
            var result = ExternalProcess.Run("ip", ["netns", "exec", Namespace, "bash", "-c", script], timeout: limit).EnsureSuccess();
            var hashes = result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            if (hashes.Length != 2)
                throw new InvalidOperationException($"the tunnel transfer printed {hashes.Length} hashes:\n{result.Stdout}\n{result.Stderr}");
            if (!served.Wait(limit))
                throw new TimeoutException($"the listener on {ServerTunnelAddress}:{port} did not finish within {limit.TotalSeconds:0} s");
            var (receivedByServer, sentByServer) = served.Result;
            return new TunnelTransfer(hashes[0], receivedByServer, sentByServer, hashes[1]);
        }
        finally
        {
            cancel.Cancel();
            File.Delete(file);
        }
    }

    private static async Task<(string Received, string Sent)> Serve(TcpListener listener, int upload, int download, CancellationToken cancel)
    {
        using var socket = await listener.AcceptSocketAsync(cancel);
        var buffer = new byte[16384];
        using var received = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        for (int total = 0; total < upload;)
        {
            int n = await socket.ReceiveAsync(buffer.AsMemory(0, Math.Min(buffer.Length, upload - total)), cancel);
            if (n == 0) break;
            received.AppendData(buffer, 0, n);
            total += n;
        }
        var data = RandomNumberGenerator.GetBytes(download);
        for (int sent = 0; sent < data.Length;)
            sent += await socket.SendAsync(data.AsMemory(sent), cancel);
        socket.Shutdown(SocketShutdown.Send);
        // Wait for the client's end of the connection, so it closes while the tunnel is still up.
        while (await socket.ReceiveAsync(buffer, cancel) > 0) { }
        return (Convert.ToHexStringLower(received.GetHashAndReset()), Convert.ToHexStringLower(SHA256.HashData(data)));
    }

    public void Dispose()
    {
        foreach (var client in _clients) client.Dispose();
        _clients.Clear();
        _iodined?.Dispose();
        _iodined = null;
        if (_namespaceMade)
        {
            // Deleting the host end deletes the pair at once, even if a socket left in the namespace
            // (a connection still closing over the dead tunnel) keeps the namespace itself alive a while.
            try
            {
                ExternalProcess.Run("ip", ["link", "del", HostLink]);
                ExternalProcess.Run("ip", ["netns", "del", Namespace]);
            }
            catch (Exception e) when (e is InvalidOperationException or TimeoutException) { }
            _namespaceMade = false;
        }
    }

    private static string NamespaceName(int slot) => $"portcullis-iodine-{slot}";

    private string HostLink => $"pcio{Slot}h";

    /// <summary>The first slot whose namespace this process could create: `ip netns add` fails when it exists.</summary>
    private int TakeSlot()
    {
        for (int attempt = 0; attempt < 250; attempt++)
        {
            int slot = Interlocked.Increment(ref _nextSlot) % 250 + 1;
            var result = ExternalProcess.Run("ip", ["netns", "add", NamespaceName(slot)]);
            if (result.ExitCode == 0)
            {
                _namespaceMade = true;
                return slot;
            }
            if (!result.Stderr.Contains("exists", StringComparison.OrdinalIgnoreCase))
                throw new InvalidOperationException($"`{result.CommandLine}` failed ({InstallHint}):\n{result.Stderr}");
        }
        throw new InvalidOperationException("no free slot for an iodine tunnel: 250 namespaces portcullis-iodine-N exist");
    }

    private static void Ip(params string[] arguments) => ExternalProcess.Run("ip", arguments).EnsureSuccess();
}

/// <summary>A running iodine client; Dispose stops it (its tun device goes with it).</summary>
public sealed class IodineClient : IDisposable
{
    private readonly BackgroundProcess _process;

    internal IodineClient(BackgroundProcess process) => _process = process;

    /// <summary>What iodine printed so far (the codec and fragment size it chose, SERVFAILs it saw).</summary>
    public string Output => _process.Output;
    public bool HasExited => _process.HasExited;

    public void Dispose() => _process.Dispose();
}

/// <summary>SHA-256 (hex) of each direction of a transfer, as sent and as received.</summary>
public sealed record TunnelTransfer(string ClientSent, string ServerReceived, string ServerSent, string ClientReceived)
{
    public bool UploadIntact => ClientSent == ServerReceived;
    public bool DownloadIntact => ServerSent == ClientReceived;
}
