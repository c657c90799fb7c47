using System.Net;
using System.Net.Sockets;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Server.Resolution;
using Xunit.Abstractions;

namespace Portcullis.Server.Tests.Resolution;

/// <summary>
/// The upstream client against responders written here on 127.54.1.x:53: spoofed answers (wrong
/// source address or port, wrong ID, wrong question) sent before the real one are ignored; a
/// server that does not preserve case; one that rejects EDNS; one that truncates; randomness.
/// </summary>
public sealed class UpstreamClientTests(ITestOutputHelper output)
{
    private static readonly DnsName Www = DnsName.Parse("www.example.test.");

    /// <summary>A UDP responder: <paramref name="respond"/> sends whatever it likes for each query.</summary>
    private sealed class Responder : IDisposable
    {
        public readonly Socket Socket;
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _loop;
        public int Queries;

        public Responder(string address, Func<Responder, DnsMessage, EndPoint, Task> respond, bool tcp = false)
        {
            EndPoint = new IPEndPoint(IPAddress.Parse(address), 53);
            Socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            Socket.Bind(EndPoint);
            if (tcp)
            {
                Tcp = new TcpListener(EndPoint);
                Tcp.Start();
            }
            _loop = Task.Run(async () =>
            {
                var buffer = new byte[4096];
                while (!_stop.IsCancellationRequested)
                {
                    try
                    {
                        var got = await Socket.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), _stop.Token);
                        Interlocked.Increment(ref Queries);
                        await respond(this, DnsMessage.Parse(buffer.AsSpan(0, got.ReceivedBytes)), got.RemoteEndPoint);
                    }
                    catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { return; }
                }
            });
        }

        public IPEndPoint EndPoint { get; }
        public TcpListener? Tcp { get; }

        public Task Send(DnsMessage m, EndPoint to) => Socket.SendToAsync(m.ToWire(), SocketFlags.None, to);

        public void Dispose()
        {
            _stop.Cancel();
            Socket.Dispose();
            Tcp?.Stop();
            try { _loop.Wait(TimeSpan.FromSeconds(5)); } catch (AggregateException) { }
        }
    }

    private static DnsMessage Reply(DnsMessage q, byte last, DnsName? name = null)
    {
        var r = new DnsMessage { Header = q.Header };
        r.Header.IsResponse = true;
        r.Header.AuthoritativeAnswer = true;
        var question = q.Questions[0];
        r.Questions.Add(name is null ? question : question with { Name = name });
        r.Answers.Add(new ResourceRecord(question.Name, RecordType.A, RecordClass.IN, 300, [192, 0, 2, last]));
        return r;
    }

    // Random source ports on an address of its own, never on 127.0.0.1 where other tests bind.
    private static UpstreamClient Client() => new(new ResolverOptions { OutgoingAddresses = [IPAddress.Parse("127.54.9.1")] });

    [Fact]
    public async Task Answers_from_the_wrong_address_port_id_or_question_are_ignored()
    {
        using var otherPort = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        otherPort.Bind(new IPEndPoint(IPAddress.Parse("127.54.1.1"), 0));
        using var otherAddress = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        otherAddress.Bind(new IPEndPoint(IPAddress.Parse("127.54.1.2"), 53));
        using var server = new Responder("127.54.1.1", async (s, q, from) =>
        {
            await otherPort.SendToAsync(Reply(q, 1).ToWire(), SocketFlags.None, from);
            await otherAddress.SendToAsync(Reply(q, 2).ToWire(), SocketFlags.None, from);
            var wrongId = Reply(q, 3);
            wrongId.Header.Id ^= 0x5555;
            await s.Send(wrongId, from);
            await s.Send(Reply(q, 4, DnsName.Parse("www.victim.test.")), from);
            var wrongType = Reply(q, 5);
            wrongType.Questions[0] = wrongType.Questions[0] with { Type = RecordType.AAAA };
            await s.Send(wrongType, from);
            await s.Send(Reply(q, 42), from);
        });
        var client = Client();
        var r = await client.QueryAsync(server.EndPoint, Www, RecordType.A, RecordClass.IN, false, CancellationToken.None);
        Assert.Equal(UpstreamStatus.Answered, r.Status);
        Assert.Equal(42, Assert.Single(r.Message!.Answers).Data[3]);
        Assert.Equal(5, client.UnwantedReplies);
    }

    [Fact]
    public async Task Case_is_randomised_and_a_server_that_does_not_echo_it_is_asked_without()
    {
        var seen = new List<string>();
        using var server = new Responder("127.54.1.3", async (s, q, from) =>
        {
            lock (seen) seen.Add(q.Questions[0].Name.ToString());
            await s.Send(Reply(q, 9, q.Questions[0].Name.ToLowerInvariant()), from);
        });
        var client = Client();
        var name = DnsName.Parse("abcdefghijklmnop.example.test.");
        var r = await client.QueryAsync(server.EndPoint, name, RecordType.A, RecordClass.IN, false, CancellationToken.None);
        Assert.Equal(UpstreamStatus.Answered, r.Status);
        Assert.True(client.State(server.EndPoint.Address).NoCaseRandomisation);
        Assert.Equal(2, seen.Count);
        Assert.NotEqual(name.ToString(), seen[0]); // 2^-26 chance of all-lower by accident
        Assert.Equal(name.ToString(), seen[1]);
    }

    [Fact]
    public async Task A_server_answering_formerr_to_edns_is_asked_without_it()
    {
        bool sawEdnsThenPlain = false;
        using var server = new Responder("127.54.1.4", async (s, q, from) =>
        {
            if (q.Edns is not null)
            {
                var f = new DnsMessage { Header = q.Header };
                f.Header.IsResponse = true;
                f.Header.Rcode = (byte)Rcode.FormErr;
                f.Questions.Add(q.Questions[0]);
                await s.Send(f, from);
                return;
            }
            sawEdnsThenPlain = true;
            await s.Send(Reply(q, 7), from);
        });
        var client = Client();
        var r = await client.QueryAsync(server.EndPoint, Www, RecordType.A, RecordClass.IN, false, CancellationToken.None);
        Assert.Equal(UpstreamStatus.Answered, r.Status);
        Assert.True(sawEdnsThenPlain);
        Assert.True(client.State(server.EndPoint.Address).NoEdns);
    }

    [Fact]
    public async Task A_truncated_answer_is_asked_again_over_tcp()
    {
        using var server = new Responder("127.54.1.5", async (s, q, from) =>
        {
            var tc = new DnsMessage { Header = q.Header };
            tc.Header.IsResponse = true;
            tc.Header.Truncated = true;
            tc.Questions.Add(q.Questions[0]);
            await s.Send(tc, from);
        }, tcp: true);
        var tcpSide = Task.Run(async () =>
        {
            using var conn = await server.Tcp!.AcceptSocketAsync();
            var len = new byte[2];
            await conn.ReceiveAsync(len);
            var body = new byte[len[0] << 8 | len[1]];
            int read = 0;
            while (read < body.Length) read += await conn.ReceiveAsync(body.AsMemory(read));
            var wire = Reply(DnsMessage.Parse(body), 77).ToWire();
            await conn.SendAsync(new byte[] { (byte)(wire.Length >> 8), (byte)wire.Length }.Concat(wire).ToArray());
        });
        var client = Client();
        var r = await client.QueryAsync(server.EndPoint, Www, RecordType.A, RecordClass.IN, false, CancellationToken.None);
        await tcpSide;
        Assert.True(r.OverTcp);
        Assert.Equal(77, Assert.Single(r.Message!.Answers).Data[3]);
    }

    [Fact]
    public async Task A_server_that_never_answers_times_out_and_its_rto_doubles_until_it_is_dead()
    {
        using var silent = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        silent.Bind(new IPEndPoint(IPAddress.Parse("127.54.1.6"), 53));
        var client = Client();
        var ep = new IPEndPoint(IPAddress.Parse("127.54.1.6"), 53);
        var state = client.State(ep.Address);
        var rtos = new List<int>();
        for (int i = 0; i < ServerState.TimeoutsBeforeDead; i++)
        {
            rtos.Add(state.RtoMs);
            var r = await client.QueryAsync(ep, Www, RecordType.A, RecordClass.IN, false, CancellationToken.None);
            Assert.Equal(UpstreamStatus.Timeout, r.Status);
        }
        Assert.Equal([400, 800, 1600], rtos);
        Assert.True(state.IsDead(client.NowMs));
    }

    [Fact]
    public async Task Ids_and_source_ports_are_random_over_hundreds_of_queries()
    {
        using var server = new Responder("127.54.1.7", (s, q, from) => s.Send(Reply(q, 1), from));
        var client = Client();
        var ids = new List<ushort>();
        var ports = new List<int>();
        client.QueryObserver = (_, id, port, _, _) => { lock (ids) { ids.Add(id); ports.Add(port); } };
        const int n = 300;
        int answered = 0;
        for (int i = 0; i < n; i++)
        {
            var r = await client.QueryAsync(server.EndPoint, Www, RecordType.A, RecordClass.IN, false, CancellationToken.None);
            // On a loaded machine an exchange may outlive the RTO floor: that is a timeout, not a mismatch.
            Assert.NotEqual(UpstreamStatus.Malformed, r.Status);
            if (r.Status == UpstreamStatus.Answered) answered++;
        }
        Assert.True(answered >= n - 10, $"{answered} of {n} answered");
        int distinctIds = ids.Distinct().Count(), distinctPorts = ports.Distinct().Count();
        output.WriteLine($"{n} queries: {distinctIds} distinct IDs, {distinctPorts} distinct source ports");
        // Birthday bound over 65536 IDs: about 0.7 expected collisions in 300; over ~64k ports likewise.
        Assert.True(distinctIds >= n - 5, $"{distinctIds} distinct IDs");
        Assert.True(distinctPorts >= n - 5, $"{distinctPorts} distinct ports");
        Assert.True(server.Queries >= answered);
    }

    [Fact]
    public async Task A_forwarder_that_holds_queries_is_asked_again_until_it_answers()
    {
        // A long-polling forwarder (iodined in lazy mode) answers only the third query it gets.
        using var server = new Responder("127.54.1.20", async (s, q, from) =>
        {
            if (s.Queries >= 3) await s.Send(Reply(q, 77), from);
        });
        using var resolver = new IterativeResolver(new ResolverOptions
        {
            Forwarders = new Dictionary<DnsName, IReadOnlyList<IPEndPoint>> { [DnsName.Root] = [server.EndPoint] },
            OutgoingAddresses = [IPAddress.Parse("127.54.9.1")],
            ResolutionTimeout = TimeSpan.FromSeconds(10),
        });
        var result = await resolver.ResolveAsync(new ResolverQuestion(DnsName.Parse("held.example."), RecordType.A, RecordClass.IN), CancellationToken.None);
        Assert.Equal(Rcode.NoError, result.Rcode);
        Assert.Equal([192, 0, 2, 77], Assert.Single(result.Answer).Data);
        Assert.Equal(3, server.Queries);
    }
}
