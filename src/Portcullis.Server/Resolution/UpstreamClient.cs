using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;

namespace Portcullis.Server.Resolution;

/// <summary>What one upstream exchange gave.</summary>
public enum UpstreamStatus : byte { Answered, Timeout, NetworkError, Malformed }

public sealed record UpstreamResponse(UpstreamStatus Status, DnsMessage? Message, IPEndPoint Server, TimeSpan Rtt, bool OverTcp);

/// <summary>
/// What the resolver remembers of an upstream server (Unbound's infra cache): smoothed RTT and
/// its variance (RFC 6298 arithmetic), the retransmission timeout, consecutive timeouts and the
/// time until which a dead server is skipped, and what it cannot do (EDNS, 0x20).
/// </summary>
public sealed class ServerState
{
    /// <summary>
    /// RTO bounds. The floor is twice Unbound's 50 ms: with sub-millisecond RTTs (a LAN, loopback)
    /// the computed RTO sits on the floor, where a scheduling hiccup would otherwise be a timeout.
    /// </summary>
    public const int InitialRtoMs = 400, MinRtoMs = 100, MaxRtoMs = 4000;
    public const int TimeoutsBeforeDead = 3;
    private readonly Lock _lock = new();
    public double SrttMs { get; private set; } = -1;
    public double RttVarMs { get; private set; }
    public int RtoMs { get; private set; } = InitialRtoMs;
    public int ConsecutiveTimeouts { get; private set; }
    public long DeadUntilMs { get; private set; }
    public bool NoEdns { get; set; }
    public bool NoCaseRandomisation { get; set; }

    internal void Success(double rttMs)
    {
        lock (_lock)
        {
            if (SrttMs < 0) { SrttMs = rttMs; RttVarMs = rttMs / 2; }
            else
            {
                RttVarMs = 0.75 * RttVarMs + 0.25 * Math.Abs(SrttMs - rttMs);
                SrttMs = 0.875 * SrttMs + 0.125 * rttMs;
            }
            RtoMs = (int)Math.Clamp(SrttMs + 4 * RttVarMs, MinRtoMs, MaxRtoMs);
            ConsecutiveTimeouts = 0;
            DeadUntilMs = 0;
        }
    }

    /// <summary>A timeout doubles the RTO (RFC 6298 §5.5); a run of them marks the server dead for a while.</summary>
    internal void Timeout(long nowMs, TimeSpan deadFor)
    {
        lock (_lock)
        {
            RtoMs = Math.Min(RtoMs * 2, MaxRtoMs);
            if (++ConsecutiveTimeouts >= TimeoutsBeforeDead) DeadUntilMs = nowMs + (long)deadFor.TotalMilliseconds;
        }
    }

    public bool IsDead(long nowMs) => DeadUntilMs > nowMs;
}

/// <summary>
/// Sends one question to one upstream server and returns the matching response, hardened as RFC
/// 5452 asks: a new UDP socket on a random port for every query (§9.2), an ID from the CSPRNG
/// (§9.1), the question name in random case (0x20, where the server echoes case), and strict
/// matching (§4.1-4.4: source address and port, ID, QR, question name/type/class; anything else
/// is counted and ignored while the wait goes on). EDNS with the configured buffer, dropped for a
/// server answering FORMERR/NOTIMP to it (RFC 6891 §7); TC=1 goes to TCP (RFC 7766 §5).
/// </summary>
public sealed class UpstreamClient
{
    private readonly ConcurrentDictionary<IPAddress, ServerState> _servers = new();
    private readonly TimeProvider _time;
    private readonly ushort _ednsSize;
    /// <summary>
    /// Validating: CD=1 to forwarders, so we see bogus data and judge it ourselves (RFC 4035 §3.2.2,
    /// RFC 6840 §5.9). DO=1 is always set (§3.2.1, §4.1: a security-aware resolver fetches the
    /// DNSSEC records, so DO=1 clients get them even when validation is off).
    /// </summary>
    private readonly bool _dnssec;
    private readonly TimeSpan _deadFor;
    private long _queriesSent, _unwanted;

    private readonly IReadOnlyList<IPAddress> _outgoing;

    public UpstreamClient(ResolverOptions options, TimeProvider? time = null, TimeSpan? deadFor = null)
    {
        _outgoing = options.OutgoingAddresses;
        _time = time ?? TimeProvider.System;
        _ednsSize = Math.Max(options.EdnsBufferSize, (ushort)512);
        _dnssec = options.TrustAnchors is not null;
        _deadFor = deadFor ?? TimeSpan.FromSeconds(60);
    }

    /// <summary>Queries put on the wire (UDP and TCP), for tests and statistics.</summary>
    public long QueriesSent => Interlocked.Read(ref _queriesSent);
    /// <summary>Datagrams that did not match an outstanding query (RFC 5452 §10: a sign of spoofing).</summary>
    public long UnwantedReplies => Interlocked.Read(ref _unwanted);

    /// <summary>Called for every query sent: (server, ID, local port, name as sent, type). Tests count randomness and fan-out with it.</summary>
    public Action<IPEndPoint, ushort, int, DnsName, RecordType>? QueryObserver { get; set; }

    /// <summary>dnstap output of the queries sent upstream and the responses accepted (null: off).</summary>
    public Telemetry.DnstapLogger? Dnstap { get; set; }

    public ServerState State(IPAddress address) => _servers.GetOrAdd(address, _ => new ServerState());

    public long NowMs => _time.GetUtcNow().ToUnixTimeMilliseconds();

    public async Task<UpstreamResponse> QueryAsync(IPEndPoint server, DnsName name, RecordType type, RecordClass @class,
        bool recursionDesired, CancellationToken token)
    {
        var state = State(server.Address);
        var started = _time.GetTimestamp();
        // At most: one fallback (no 0x20 or no EDNS) per exchange, then give the result up.
        for (int attempt = 0; attempt < 3; attempt++)
        {
            bool edns = !state.NoEdns;
            bool caps = !state.NoCaseRandomisation;
            var qname = caps ? RandomiseCase(name) : name.ToLowerInvariant();
            var query = BuildQuery(qname, type, @class, recursionDesired, edns, out ushort id);
            var timeout = TimeSpan.FromMilliseconds(state.RtoMs);
            var (status, wire, caseMismatch) = await UdpExchangeAsync(server, query, id, qname, type, @class, timeout, token).ConfigureAwait(false);
            if (status == UpstreamStatus.Timeout)
            {
                state.Timeout(NowMs, _deadFor);
                return new UpstreamResponse(UpstreamStatus.Timeout, null, server, _time.GetElapsedTime(started), false);
            }
            if (caseMismatch)
            {
                // The server answered our ID from the right address but lower-cased (or otherwise
                // changed) the name: it does not preserve case, so ask it without 0x20 from now on.
                state.NoCaseRandomisation = true;
                continue;
            }
            if (status != UpstreamStatus.Answered || wire is null)
                return new UpstreamResponse(status, null, server, _time.GetElapsedTime(started), false);
            var rtt = _time.GetElapsedTime(started);
            state.Success(rtt.TotalMilliseconds);
            if (!DnsMessage.TryParse(wire, out var message))
            {
                // A header-only FORMERR to an EDNS query is still an EDNS failure.
                if (edns && wire.Length >= 12 && (wire[3] & 0xF) is 1 or 4) { state.NoEdns = true; continue; }
                return new UpstreamResponse(UpstreamStatus.Malformed, null, server, rtt, false);
            }
            if (edns && message.Edns is null && message.Rcode is Rcode.FormErr or Rcode.NotImp)
            {
                state.NoEdns = true;
                continue;
            }
            if (caps) RestoreCase(message, qname, name);
            if (message.Header.Truncated)
            {
                var tcp = await TcpExchangeAsync(server, name.ToLowerInvariant(), type, @class, recursionDesired, edns, timeout, token).ConfigureAwait(false);
                return tcp;
            }
            return new UpstreamResponse(UpstreamStatus.Answered, message, server, rtt, false);
        }
        return new UpstreamResponse(UpstreamStatus.Malformed, null, server, _time.GetElapsedTime(started), false);
    }

    /// <summary>
    /// Owners that are the randomised name or one of its suffixes (compression pointers into the
    /// question carry our random case back) get the case of the name asked, so nothing cached or
    /// served shows the 0x20 pattern.
    /// </summary>
    private static void RestoreCase(DnsMessage message, DnsName sent, DnsName original)
    {
        foreach (var list in (List<ResourceRecord>[])[message.Answers, message.Authority, message.Additional])
        {
            for (int i = 0; i < list.Count; i++)
            {
                var r = list[i];
                int drop = sent.LabelCount - r.Owner.LabelCount;
                if (drop < 0 || r.Owner.WireLength > sent.WireLength || !sent.Wire[(sent.WireLength - r.Owner.WireLength)..].SequenceEqual(r.Owner.Wire)) continue;
                var owner = original.Parent(drop);
                if (owner == r.Owner && !owner.Wire.SequenceEqual(r.Owner.Wire)) list[i] = new ResourceRecord(owner, r.Type, r.Class, r.Ttl, r.Data);
            }
        }
    }

    /// <summary>0x20 (draft-vixie-dnsext-dns0x20): each ASCII letter's case from one CSPRNG bit.</summary>
    public static DnsName RandomiseCase(DnsName name)
    {
        var wire = name.Wire.ToArray();
        Span<byte> bits = stackalloc byte[32];
        RandomNumberGenerator.Fill(bits);
        int pos = 0, bit = 0;
        while (pos < wire.Length && wire[pos] != 0)
        {
            int len = wire[pos];
            for (int i = pos + 1; i <= pos + len; i++)
            {
                byte c = wire[i];
                if ((c | 0x20) is >= (byte)'a' and <= (byte)'z')
                {
                    bool upper = (bits[(bit >> 3) & 31] >> (bit & 7) & 1) != 0;
                    wire[i] = upper ? (byte)(c & ~0x20) : (byte)(c | 0x20);
                    bit++;
                }
            }
            pos += len + 1;
        }
        return DnsName.FromWire(wire);
    }

    private byte[] BuildQuery(DnsName qname, RecordType type, RecordClass @class, bool rd, bool edns, out ushort id)
    {
        id = (ushort)RandomNumberGenerator.GetInt32(0, 65536);
        var q = DnsMessage.CreateQuery(qname, type, @class, id, rd);
        if (edns) q.Edns = new Edns { UdpPayloadSize = _ednsSize, DnssecOk = true };
        if (_dnssec && rd) q.Header.CheckingDisabled = true;
        return q.ToWire();
    }

    private async Task<(UpstreamStatus, byte[]?, bool)> UdpExchangeAsync(IPEndPoint server, byte[] query, ushort id, DnsName qname,
        RecordType type, RecordClass @class, TimeSpan timeout, CancellationToken token)
    {
        using var socket = new Socket(server.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        int port = BindRandomPort(socket, server.AddressFamily, _outgoing);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(token);
        cts.CancelAfter(timeout);
        try
        {
            Interlocked.Increment(ref _queriesSent);
            QueryObserver?.Invoke(server, id, port, qname, type);
            await socket.SendToAsync(query, SocketFlags.None, server, cts.Token).ConfigureAwait(false);
            var tap = Dnstap;
            var local = tap is null ? null : (IPEndPoint)socket.LocalEndPoint!;
            if (tap is not null) tap.LogResolverQuery(query, tcp: false, local!, server);
            var buffer = new byte[65535];
            EndPoint any = new IPEndPoint(server.AddressFamily == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Any : IPAddress.Any, 0);
            while (true)
            {
                var got = await socket.ReceiveFromAsync(buffer, SocketFlags.None, any, cts.Token).ConfigureAwait(false);
                var from = (IPEndPoint)got.RemoteEndPoint;
                var reply = buffer.AsSpan(0, got.ReceivedBytes);
                var match = Match(reply, from, server, id, qname, type, @class);
                if (match == MatchResult.Yes)
                {
                    tap?.LogResolverResponse(reply, tcp: false, local!, server);
                    return (UpstreamStatus.Answered, reply.ToArray(), false);
                }
                if (match == MatchResult.CaseDiffers) return (UpstreamStatus.Answered, null, true);
                // RFC 5452 §9.1: a non-matching reply is dropped and the wait continues, so a
                // spoofed datagram cannot end the exchange either.
                Interlocked.Increment(ref _unwanted);
            }
        }
        catch (OperationCanceledException) when (!token.IsCancellationRequested)
        {
            return (UpstreamStatus.Timeout, null, false);
        }
        catch (SocketException)
        {
            // ICMP port unreachable surfaces as ConnectionReset: no server there.
            return (UpstreamStatus.NetworkError, null, false);
        }
    }

    private enum MatchResult { No, Yes, CaseDiffers }

    private static MatchResult Match(ReadOnlySpan<byte> reply, IPEndPoint from, IPEndPoint server, ushort id, DnsName qname, RecordType type, RecordClass @class)
    {
        if (!from.Address.Equals(server.Address) || from.Port != server.Port) return MatchResult.No;
        if (reply.Length < 12 + qname.WireLength + 4) return MatchResult.No;
        if (BinaryPrimitives.ReadUInt16BigEndian(reply) != id) return MatchResult.No;
        if ((reply[2] & 0x80) == 0) return MatchResult.No;
        if (BinaryPrimitives.ReadUInt16BigEndian(reply[4..]) != 1) return MatchResult.No;
        // The question is the first name in the message: never compressed, so compare bytes.
        var echoed = reply.Slice(12, qname.WireLength);
        int after = 12 + qname.WireLength;
        if ((RecordType)BinaryPrimitives.ReadUInt16BigEndian(reply[after..]) != type
            || (RecordClass)BinaryPrimitives.ReadUInt16BigEndian(reply[(after + 2)..]) != @class)
            return MatchResult.No;
        if (echoed.SequenceEqual(qname.Wire)) return MatchResult.Yes;
        return DnsName.EqualsIgnoreCase(echoed, qname.Wire) ? MatchResult.CaseDiffers : MatchResult.No;
    }

    /// <summary>
    /// RFC 5452 §9.2: a source port drawn from 1024-65535 by the CSPRNG (more ports than the
    /// kernel's ephemeral range); a port already taken is redrawn, and after a few tries the
    /// kernel chooses (it randomises too).
    /// </summary>
    private static int BindRandomPort(Socket socket, AddressFamily family, IReadOnlyList<IPAddress> outgoing)
    {
        var any = family == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Any : IPAddress.Any;
        foreach (var address in outgoing)
            if (address.AddressFamily == family) { any = address; break; }
        for (int i = 0; i < 8; i++)
        {
            int port = RandomNumberGenerator.GetInt32(1024, 65536);
            try
            {
                socket.Bind(new IPEndPoint(any, port));
                return port;
            }
            catch (SocketException) { }
        }
        socket.Bind(new IPEndPoint(any, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    private async Task<UpstreamResponse> TcpExchangeAsync(IPEndPoint server, DnsName qname, RecordType type, RecordClass @class,
        bool rd, bool edns, TimeSpan udpTimeout, CancellationToken token)
    {
        var started = _time.GetTimestamp();
        var query = BuildQuery(qname, type, @class, rd, edns, out ushort id);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(token);
        // TCP needs a handshake and a round trip more than UDP.
        cts.CancelAfter(udpTimeout * 3);
        try
        {
            using var socket = new Socket(server.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            foreach (var address in _outgoing)
                if (address.AddressFamily == server.AddressFamily) { socket.Bind(new IPEndPoint(address, 0)); break; }
            await socket.ConnectAsync(server, cts.Token).ConfigureAwait(false);
            Interlocked.Increment(ref _queriesSent);
            QueryObserver?.Invoke(server, id, ((IPEndPoint)socket.LocalEndPoint!).Port, qname, type);
            var framed = new byte[query.Length + 2];
            BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)query.Length);
            query.CopyTo(framed, 2);
            await socket.SendAsync(framed, SocketFlags.None, cts.Token).ConfigureAwait(false);
            var tap = Dnstap;
            var local = (IPEndPoint)socket.LocalEndPoint!;
            tap?.LogResolverQuery(query, tcp: true, local, server);
            var lenBuf = new byte[2];
            await ReadExactlyAsync(socket, lenBuf, cts.Token).ConfigureAwait(false);
            var reply = new byte[BinaryPrimitives.ReadUInt16BigEndian(lenBuf)];
            await ReadExactlyAsync(socket, reply, cts.Token).ConfigureAwait(false);
            var rtt = _time.GetElapsedTime(started);
            if (Match(reply, server, server, id, qname, type, @class) != MatchResult.Yes || !DnsMessage.TryParse(reply, out var message))
            {
                Interlocked.Increment(ref _unwanted);
                return new UpstreamResponse(UpstreamStatus.Malformed, null, server, rtt, true);
            }
            tap?.LogResolverResponse(reply, tcp: true, local, server);
            return new UpstreamResponse(UpstreamStatus.Answered, message, server, rtt, true);
        }
        catch (OperationCanceledException) when (!token.IsCancellationRequested)
        {
            return new UpstreamResponse(UpstreamStatus.Timeout, null, server, _time.GetElapsedTime(started), true);
        }
        catch (SocketException)
        {
            return new UpstreamResponse(UpstreamStatus.NetworkError, null, server, _time.GetElapsedTime(started), true);
        }
    }

    private static async Task ReadExactlyAsync(Socket socket, byte[] buffer, CancellationToken token)
    {
        int read = 0;
        while (read < buffer.Length)
        {
            int n = await socket.ReceiveAsync(buffer.AsMemory(read), SocketFlags.None, token).ConfigureAwait(false);
            if (n == 0) throw new SocketException((int)SocketError.ConnectionReset);
            read += n;
        }
    }
}
