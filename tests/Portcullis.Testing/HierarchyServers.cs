using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Portcullis.Testing;

/// <summary>One query an authoritative server of the hierarchy received: its name (lower case, absolute), type and transport.</summary>
public sealed record HierarchyQuery(string Name, ushort Type, bool Tcp);

/// <summary>
/// A name server of the test hierarchy written in C#, listening on UDP and TCP port 53 of one
/// 127.53.N.x address. It logs every query it receives (<see cref="Queries"/>: the query counting
/// the NXDOMAIN/NODATA caching scenarios need) and answers through a handler: forward to an NSD
/// behind it, truncate, inject records, or say nothing. Counting here rather than in the daemons'
/// logs is deliberate: NSD 4.6 has no query log and Knot's needs dnstap; a counter in front sees
/// exactly the datagrams and TCP messages that arrived, and is read without parsing log text.
/// </summary>
public sealed class HierarchyServer : IDisposable
{
    /// <summary>How long a forwarded query waits for the NSD behind (loopback: it answers in well under a millisecond).</summary>
    private static readonly TimeSpan BackendWait = TimeSpan.FromSeconds(3);

    private readonly Socket _udp;
    private readonly Socket _tcp;
    private readonly Func<byte[], bool, CancellationToken, Task<byte[]?>> _answer;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentQueue<HierarchyQuery> _queries = new();
    private readonly ConcurrentDictionary<Socket, byte> _connections = new();
    private readonly Task _udpLoop, _tcpLoop;

    /// <param name="answer">Given the query and whether it came over TCP, the response, or null to send nothing.</param>
    public HierarchyServer(string name, IPEndPoint endPoint, Func<byte[], bool, CancellationToken, Task<byte[]?>> answer)
    {
        Name = name;
        EndPoint = endPoint;
        _answer = answer;
        _udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        _tcp = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            _udp.Bind(endPoint);
            _tcp.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            _tcp.Bind(endPoint);
            _tcp.Listen(64);
        }
        catch
        {
            _udp.Dispose();
            _tcp.Dispose();
            throw;
        }
        _udpLoop = Task.Run(UdpLoop);
        _tcpLoop = Task.Run(TcpLoop);
    }

    public string Name { get; }
    public IPEndPoint EndPoint { get; }

    /// <summary>Every query received so far, in arrival order.</summary>
    public IReadOnlyList<HierarchyQuery> Queries => _queries.ToArray();

    /// <summary>How many queries for <paramref name="name"/> (any type, any case) arrived so far.</summary>
    public int QueriesFor(string name)
    {
        string n = HierarchyWire.Normalize(name);
        return _queries.Count(q => q.Name == n);
    }

    // ---- Handlers ----

    /// <summary>Forwards each query, over the transport it came on, to the server at <paramref name="backend"/> and relays its answer.</summary>
    public static Func<byte[], bool, CancellationToken, Task<byte[]?>> Forward(IPEndPoint backend) =>
        (query, tcp, stop) => tcp ? ForwardTcp(backend, query, stop) : ForwardUdp(backend, query, stop);

    /// <summary>
    /// The "TCP only" server: every UDP query gets TC=1 with the question and empty sections (the
    /// RFC 1035 §4.2.1 signal to retry over TCP, RFC 7766 §5); TCP queries go to <paramref name="backend"/> over TCP.
    /// </summary>
    public static Func<byte[], bool, CancellationToken, Task<byte[]?>> TruncateUdp(IPEndPoint backend) =>
        (query, tcp, stop) => tcp ? ForwardTcp(backend, query, stop) : Task.FromResult(HierarchyWire.Truncated(query));

    /// <summary>A server that receives and never answers (UDP dropped, TCP connections held open silently): a timeout.</summary>
    public static Func<byte[], bool, CancellationToken, Task<byte[]?>> Silent() => (_, _, _) => Task.FromResult<byte[]?>(null);

    private static async Task<byte[]?> ForwardUdp(IPEndPoint backend, byte[] query, CancellationToken stop)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(stop);
        wait.CancelAfter(BackendWait);
        await socket.ConnectAsync(backend, wait.Token);
        await socket.SendAsync(query, wait.Token);
        var buffer = new byte[65535];
        int n = await socket.ReceiveAsync(buffer, wait.Token);
        return buffer[..n];
    }

    private static async Task<byte[]?> ForwardTcp(IPEndPoint backend, byte[] query, CancellationToken stop)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(stop);
        wait.CancelAfter(BackendWait);
        await socket.ConnectAsync(backend, wait.Token);
        await WriteFrame(socket, query, wait.Token);
        return await ReadFrame(socket, wait.Token);
    }

    // ---- Sockets ----

    private async Task UdpLoop()
    {
        var buffer = new byte[65535];
        EndPoint any = new IPEndPoint(IPAddress.Any, 0);
        while (!_stop.IsCancellationRequested)
        {
            SocketReceiveFromResult received;
            try
            {
                received = await _udp.ReceiveFromAsync(buffer, SocketFlags.None, any, _stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException)
            {
                continue;   // e.g. an ICMP error for an earlier answer: not fatal for a UDP server
            }
            var query = buffer[..received.ReceivedBytes];
            var client = received.RemoteEndPoint;
            if (!Record(query, tcp: false)) continue;
            _ = Task.Run(async () =>
            {
                try
                {
                    if (await _answer(query, false, _stop.Token) is { } response)
                        await _udp.SendToAsync(response, SocketFlags.None, client, _stop.Token);
                }
                catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
                {
                    // The backend did not answer in time, or we are stopping: the client sees a timeout.
                }
            });
        }
    }

    private async Task TcpLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket connection;
            try
            {
                connection = await _tcp.AcceptAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }
            _connections[connection] = 0;
            _ = Task.Run(() => Serve(connection));
        }
    }

    private async Task Serve(Socket connection)
    {
        try
        {
            // RFC 7766 §6.2.1: a connection may carry several queries; answer each in turn.
            while (await ReadFrame(connection, _stop.Token) is { } query)
            {
                if (!Record(query, tcp: true)) return;
                if (await _answer(query, true, _stop.Token) is { } response)
                    await WriteFrame(connection, response, _stop.Token);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException or IOException)
        {
            // Client went away, backend failed, or we are stopping.
        }
        finally
        {
            _connections.TryRemove(connection, out _);
            connection.Dispose();
        }
    }

    private bool Record(byte[] query, bool tcp)
    {
        if (!HierarchyWire.TryReadQuestion(query, out string name, out ushort type, out _)) return false;
        _queries.Enqueue(new HierarchyQuery(name, type, tcp));
        return true;
    }

    private static async Task<byte[]?> ReadFrame(Socket socket, CancellationToken stop)
    {
        var length = new byte[2];
        if (!await ReadExactly(socket, length, stop)) return null;
        var message = new byte[BinaryPrimitives.ReadUInt16BigEndian(length)];
        return await ReadExactly(socket, message, stop) ? message : null;
    }

    private static async Task<bool> ReadExactly(Socket socket, byte[] into, CancellationToken stop)
    {
        for (int got = 0; got < into.Length;)
        {
            int n = await socket.ReceiveAsync(into.AsMemory(got), SocketFlags.None, stop);
            if (n == 0) return false;
            got += n;
        }
        return true;
    }

    private static async Task WriteFrame(Socket socket, byte[] message, CancellationToken stop)
    {
        var frame = new byte[message.Length + 2];
        BinaryPrimitives.WriteUInt16BigEndian(frame, (ushort)message.Length);
        message.CopyTo(frame, 2);
        await socket.SendAsync(frame, SocketFlags.None, stop);
    }

    public void Dispose()
    {
        _stop.Cancel();
        _udp.Dispose();
        _tcp.Dispose();
        foreach (var c in _connections.Keys) c.Dispose();
        Task.WaitAll([_udpLoop, _tcpLoop], TimeSpan.FromSeconds(5));
        _stop.Dispose();
    }
}

/// <summary>
/// The malicious authoritative server for "evil.test.": its answer to www.evil.test A carries
/// records it has no authority for (RFC 2181 §5.4.1): www.sld.test and victim.sld.test A 6.6.6.6 in
/// the answer and additional sections and "sld.test. NS ns.evil.test." in the authority section,
/// with glue pointing back at itself. Asked anything outside evil.test (as it would be if a resolver
/// believed that NS), it claims authority and answers A 6.6.6.6. A resolver must neither serve nor
/// cache any of it.
/// </summary>
public static class EvilZone
{
    public const string PoisonAddress = "6.6.6.6";
    public const string WwwAddress = "192.0.2.66";

    public static Func<byte[], bool, CancellationToken, Task<byte[]?>> Handler(IPAddress self) =>
        (query, _, _) => Task.FromResult(Answer(query, self));

    private static byte[]? Answer(byte[] query, IPAddress self)
    {
        if (!HierarchyWire.TryReadQuestion(query, out string name, out ushort type, out int end)) return null;
        var poison = IPAddress.Parse(PoisonAddress).GetAddressBytes();
        var soa = new HierarchyWire.Rr("evil.test.", 6, 300, HierarchyWire.Soa("ns.evil.test.", "hostmaster.evil.test.", 1, 300));
        var ns = new HierarchyWire.Rr("evil.test.", 2, 300, HierarchyWire.Name("ns.evil.test."));
        var glue = new HierarchyWire.Rr("ns.evil.test.", 1, 300, self.GetAddressBytes());
        bool inZone = name == "evil.test." || name.EndsWith(".evil.test.", StringComparison.Ordinal);
        if (!inZone)
        {
            // The hijack: authoritative "answers" for names it does not serve.
            return type == 1
                ? HierarchyWire.Response(query, end, 0, [new(name, 1, 300, poison)], [], [])
                : HierarchyWire.Response(query, end, 0, [], [], []);
        }
        switch (name, type)
        {
            case ("www.evil.test.", 1):
                HierarchyWire.Rr[] injected = [new("www.sld.test.", 1, 300, poison), new("victim.sld.test.", 1, 300, poison)];
                return HierarchyWire.Response(query, end, 0,
                    [new(name, 1, 300, IPAddress.Parse(WwwAddress).GetAddressBytes()), .. injected],
                    [new("sld.test.", 2, 300, HierarchyWire.Name("ns.evil.test."))],
                    [.. injected, glue]);
            case ("www.evil.test.", _):
                return HierarchyWire.Response(query, end, 0, [], [soa], []);
            case ("evil.test.", 6):
                return HierarchyWire.Response(query, end, 0, [soa], [ns], [glue]);
            case ("evil.test.", 2):
                return HierarchyWire.Response(query, end, 0, [ns], [], [glue]);
            case ("evil.test.", _):
                return HierarchyWire.Response(query, end, 0, [], [soa], []);
            case ("ns.evil.test.", 1):
                return HierarchyWire.Response(query, end, 0, [glue], [], []);
            case ("ns.evil.test.", _):
                return HierarchyWire.Response(query, end, 0, [], [soa], []);
            default:
                return HierarchyWire.Response(query, end, 3, [], [soa], []);
        }
    }
}

/// <summary>
/// Just enough DNS wire format for the C# servers of the hierarchy (this project does not reference
/// the protocol library): read a query's question, write uncompressed responses (RFC 1035 §4.1).
/// </summary>
public static class HierarchyWire
{
    public sealed record Rr(string Owner, ushort Type, uint Ttl, byte[] Rdata);

    /// <summary>Lower case, with the final dot: how names are compared and logged here.</summary>
    public static string Normalize(string name)
    {
        string n = name.ToLowerInvariant();
        return n.EndsWith('.') ? n : n + ".";
    }

    /// <summary>The question of a query (QR=0, QDCOUNT=1, an uncompressed name); false for anything else.</summary>
    public static bool TryReadQuestion(ReadOnlySpan<byte> message, out string name, out ushort type, out int end)
    {
        name = "";
        type = 0;
        end = 0;
        if (message.Length < 12 || (message[2] & 0x80) != 0 || BinaryPrimitives.ReadUInt16BigEndian(message[4..]) != 1) return false;
        var text = new StringBuilder();
        int at = 12;
        while (true)
        {
            if (at >= message.Length) return false;
            int length = message[at++];
            if (length == 0) break;
            if (length > 63 || at + length > message.Length) return false;
            foreach (byte b in message.Slice(at, length))
                text.Append(b is (byte)'.' or (byte)'\\' or <= 32 or >= 127 ? $"\\{b:D3}" : ((char)b).ToString());
            text.Append('.');
            at += length;
        }
        if (at + 4 > message.Length) return false;
        name = text.Length == 0 ? "." : text.ToString().ToLowerInvariant();
        type = BinaryPrimitives.ReadUInt16BigEndian(message[at..]);
        end = at + 4;
        return true;
    }

    /// <summary>Header and question of the query, QR and TC set, no records: "ask me over TCP".</summary>
    public static byte[]? Truncated(byte[] query)
    {
        if (!TryReadQuestion(query, out _, out _, out int end)) return null;
        var response = query[..end];
        response[2] = (byte)(0x80 | (query[2] & 0x79) | 0x02);  // QR, opcode and RD kept, TC; AA clear
        response[3] = 0;                                         // RA=0, RCODE NOERROR
        response.AsSpan(6, 6).Clear();                           // ANCOUNT, NSCOUNT, ARCOUNT = 0
        return response;
    }

    /// <summary>An authoritative response (AA, RD copied) with the query's question and the given sections, uncompressed.</summary>
    public static byte[] Response(byte[] query, int questionEnd, int rcode, Rr[] answer, Rr[] authority, Rr[] additional)
    {
        var bytes = new List<byte>(512);
        bytes.AddRange(query.AsSpan(0, questionEnd).ToArray());
        bytes[2] = (byte)(0x80 | (query[2] & 0x79) | 0x04);
        bytes[3] = (byte)rcode;
        void Count(int at, int n) { bytes[at] = (byte)(n >> 8); bytes[at + 1] = (byte)n; }
        Count(6, answer.Length);
        Count(8, authority.Length);
        Count(10, additional.Length);
        foreach (var rr in answer.Concat(authority).Concat(additional))
        {
            bytes.AddRange(Name(rr.Owner));
            bytes.AddRange([(byte)(rr.Type >> 8), (byte)rr.Type, 0, 1,
                (byte)(rr.Ttl >> 24), (byte)(rr.Ttl >> 16), (byte)(rr.Ttl >> 8), (byte)rr.Ttl,
                (byte)(rr.Rdata.Length >> 8), (byte)rr.Rdata.Length]);
            bytes.AddRange(rr.Rdata);
        }
        return bytes.ToArray();
    }

    /// <summary>A name in wire form (plain ASCII labels only: the hierarchy's own names).</summary>
    public static byte[] Name(string name)
    {
        var bytes = new List<byte>();
        foreach (var label in name.TrimEnd('.').Split('.', StringSplitOptions.RemoveEmptyEntries))
        {
            bytes.Add((byte)label.Length);
            bytes.AddRange(Encoding.ASCII.GetBytes(label));
        }
        bytes.Add(0);
        return bytes.ToArray();
    }

    public static byte[] Soa(string mname, string rname, uint serial, uint minimum)
    {
        var bytes = new List<byte>(Name(mname));
        bytes.AddRange(Name(rname));
        foreach (uint v in new[] { serial, 3600u, 600u, 86400u, minimum })
            bytes.AddRange([(byte)(v >> 24), (byte)(v >> 16), (byte)(v >> 8), (byte)v]);
        return bytes.ToArray();
    }
}

/// <summary>
/// NSD (<c>nsd -d</c>) serving zone texts on one 127.53.N.x address, port 53, behind a
/// <see cref="HierarchyServer"/> that counts the queries. Its files are in a directory of its own;
/// the constructor returns once every zone's SOA is answered with AA; Dispose kills it.
/// </summary>
public sealed class HierarchyNsd : IDisposable
{
    private const int ProbeTries = 80;
    private readonly BackgroundProcess? _process;

    public HierarchyNsd(string name, IPAddress address, IReadOnlyList<(string Origin, string Text)> zones)
    {
        Name = name;
        EndPoint = new IPEndPoint(address, 53);
        Directory = System.IO.Directory.CreateTempSubdirectory($"portcullis-hierarchy-{name}-").FullName;
        try
        {
            var config = NsdConfig.Server($"{address}@53", Directory);
            foreach (var (origin, text) in zones)
            {
                string file = origin == "." ? "root.zone" : origin.TrimEnd('.') + ".zone";
                File.WriteAllText(Path.Combine(Directory, file), text);
                config.Append($"zone:\n    name: \"{origin}\"\n    zonefile: \"{file}\"\n");
            }
            File.WriteAllText(Path.Combine(Directory, "nsd.conf"), config.ToString());
            _process = new BackgroundProcess("nsd", ["-d", "-c", Path.Combine(Directory, "nsd.conf")], Directory);
            if (!_process.WaitForOutput("nsd started", ExternalProcess.DefaultTimeout))
                throw new InvalidOperationException($"nsd ({name}) did not start.\n`{_process.CommandLine}` printed:\n{_process.Output}");
            foreach (var (origin, _) in zones) WaitForSoa(origin);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public string Name { get; }
    public IPEndPoint EndPoint { get; }
    public string Directory { get; }
    public string Log => _process?.Output ?? "";

    private void WaitForSoa(string origin)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.ReceiveTimeout = 250;
        socket.Connect(EndPoint);
        var query = new List<byte> { 0x51, 0x00, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0 };
        query.AddRange(HierarchyWire.Name(origin));
        query.AddRange([0, 6, 0, 1]);
        var buffer = new byte[4096];
        for (int i = 0; i < ProbeTries; i++)
        {
            if (_process!.HasExited) break;
            try
            {
                socket.Send(query.ToArray());
                int n = socket.Receive(buffer);
                // QR and AA set, NOERROR, one answer: the zone is loaded and served.
                if (n >= 12 && (buffer[2] & 0x84) == 0x84 && (buffer[3] & 0xF) == 0 && buffer[7] >= 1) return;
            }
            catch (SocketException)
            {
                // Not answering yet: ask again (each try waits at most 250 ms).
            }
        }
        throw new TimeoutException($"nsd ({Name}) did not answer SOA {origin} authoritatively.\nLog:\n{Log}");
    }

    public void Dispose()
    {
        _process?.Dispose();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // Left in the temp directory; harmless.
        }
    }
}
