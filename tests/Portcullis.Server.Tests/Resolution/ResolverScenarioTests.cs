using System.Net;
using System.Net.Sockets;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Wire;
using Portcullis.Server.Resolution;
using Portcullis.Testing;
using Xunit.Abstractions;

namespace Portcullis.Server.Tests.Resolution;

/// <summary>
/// The shared scenario table (<see cref="DnsHierarchy"/>: NSD behind counting front ends, lame,
/// dead, TCP-only and malicious servers) against <see cref="IterativeResolver"/>, asked with dig
/// through <see cref="UdpFront"/>: a minimal UDP front end written for this test (cache first, as
/// the pipeline does, then a resolution), standing in for the query pipeline.
/// </summary>
public sealed class ResolverScenarioTests(ITestOutputHelper output)
{
    /// <summary>Answers dig over UDP at 127.53.N.200:53 from the resolver (test code: allocates freely).</summary>
    private sealed class UdpFront : IDisposable
    {
        private readonly Socket _socket;
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _loop;

        public UdpFront(IPAddress address, IterativeResolver resolver)
        {
            EndPoint = new IPEndPoint(address, 53);
            _socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            _socket.Bind(EndPoint);
            _loop = Task.Run(async () =>
            {
                var buffer = new byte[4096];
                while (!_stop.IsCancellationRequested)
                {
                    SocketReceiveFromResult got;
                    try { got = await _socket.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), _stop.Token); }
                    catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { return; }
                    var query = buffer.AsSpan(0, got.ReceivedBytes).ToArray();
                    _ = Task.Run(() => AnswerAsync(resolver, query, got.RemoteEndPoint));
                }
            });
        }

        public IPEndPoint EndPoint { get; }
        public int CacheHits;

        private async Task AnswerAsync(IterativeResolver resolver, byte[] query, EndPoint client)
        {
            var q = DnsMessage.Parse(query);
            var question = q.Questions[0];
            var response = new byte[1232];
            int length = CacheFirst(resolver, q, response);
            if (length > 0) Interlocked.Increment(ref CacheHits);
            else
            {
                var result = await resolver.ResolveAsync(new ResolverQuestion(question.Name, question.Type, question.Class), CancellationToken.None);
                var r = new DnsMessage { Header = q.Header };
                r.Header.IsResponse = true;
                r.Header.RecursionAvailable = true;
                r.Questions.Add(question);
                r.Answers.AddRange(result.Answer);
                r.Authority.AddRange(result.Authority);
                r.Rcode = result.Rcode;
                length = r.Write(response);
            }
            try { await _socket.SendToAsync(response.AsMemory(0, length), SocketFlags.None, client); }
            catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
        }

        private static int CacheFirst(IterativeResolver resolver, DnsMessage q, byte[] response)
        {
            var question = q.Questions[0];
            var w = new DnsMessageWriter(response);
            w.Header.Id = q.Header.Id;
            w.Header.IsResponse = true;
            w.Header.RecursionDesired = q.Header.RecursionDesired;
            w.Header.RecursionAvailable = true;
            w.TryWriteQuestion(question.Name.Wire, question.Type, question.Class);
            if (!resolver.TryAnswerFromCache(question.Name.Wire, question.Type, question.Class, false, false, ref w, out var answer)) return 0;
            w.Header.Rcode = (byte)answer.Rcode;
            w.Header.Truncated = answer.Truncated;
            return w.Finish();
        }

        public void Dispose()
        {
            _stop.Cancel();
            _socket.Dispose();
            try { _loop.Wait(TimeSpan.FromSeconds(5)); } catch (AggregateException) { }
        }
    }

    private static ResolverOptions Options(DnsHierarchy h) => new()
    {
        RootHints = [.. h.RootHints.Select(x => (DnsName.Parse(x.Name), x.Address))],
        ResolutionTimeout = TimeSpan.FromSeconds(8),
        // Random source ports on the hierarchy's resolver address, never on 127.0.0.1 where other tests bind.
        OutgoingAddresses = [h.ResolverAddress],
    };

    [Fact]
    public void Every_scenario_of_the_hierarchy_is_answered_as_expected()
    {
        using var hierarchy = new DnsHierarchy();
        using var resolver = new IterativeResolver(Options(hierarchy));
        using var front = new UdpFront(hierarchy.ResolverAddress, resolver);
        var results = hierarchy.RunAll(front.EndPoint);
        output.WriteLine(DnsHierarchy.FormatTable(results));
        output.WriteLine($"upstream queries {resolver.Upstream.QueriesSent}, unwanted replies {resolver.Upstream.UnwantedReplies}, cache hits {front.CacheHits}");
        var failures = DnsHierarchy.Scenarios.Zip(results, DnsHierarchy.Check).OfType<string>().ToList();
        Assert.True(failures.Count == 0, string.Join("\n", failures) + "\n\n" + DnsHierarchy.FormatTable(results));
        // The poison was offered and refused, and the injected NS was never asked for sld.test names.
        Assert.True(hierarchy.Servers["evil"].QueriesFor("www.evil.test.") >= 1);
        Assert.Equal(0, hierarchy.Servers["evil"].QueriesFor("victim.sld.test.") + hierarchy.Servers["evil"].QueriesFor("mail.sld.test."));
        // The TCP-only server was asked over UDP, then over TCP.
        var tcpOnly = hierarchy.Servers["tcponly"].Queries.Where(q => q.Name.Equals("www.tcponly.test.", StringComparison.OrdinalIgnoreCase)).ToList();
        Assert.Contains(tcpOnly, q => q.Tcp);
    }

    [Fact]
    public void The_results_agree_with_unbound_row_by_row()
    {
        List<ScenarioResult> ours, theirs;
        using (var hierarchy = new DnsHierarchy())
        {
            using var resolver = new IterativeResolver(Options(hierarchy));
            using var front = new UdpFront(hierarchy.ResolverAddress, resolver);
            ours = [.. hierarchy.RunAll(front.EndPoint)];
        }
        using (var hierarchy = new DnsHierarchy())
        {
            using var unbound = new ResolverUnbound(hierarchy);
            theirs = [.. hierarchy.RunAll(unbound.EndPoint)];
        }
        output.WriteLine("portcullis:\n" + DnsHierarchy.FormatTable(ours));
        output.WriteLine("unbound:\n" + DnsHierarchy.FormatTable(theirs));
        var differences = DnsHierarchy.Scenarios.Select((s, i) => DnsHierarchy.Compare(s, theirs[i], ours[i])).OfType<string>().ToList();
        Assert.True(differences.Count == 0, string.Join("\n", differences));
    }

    /// <summary>
    /// The same table through the real server: a DnsServer with recursion: on (root hints file of
    /// the hierarchy) and this resolver plugged in through the hosting's factory, asked with dig.
    /// </summary>
    [Fact]
    public void The_server_with_this_resolver_answers_every_scenario()
    {
        using var hierarchy = new DnsHierarchy();
        var config = new Portcullis.Server.Configuration.ServerConfig
        {
            Listen = [$"{hierarchy.ResolverAddress}:53"],
            AllowRecursion = ["127.0.0.0/8"],
        };
        config.Recursion.RootHints = hierarchy.RootHintsFile;
        // The test hierarchy is unsigned: against the real root's anchor it would all be bogus (as in Unbound).
        config.Recursion.DnssecValidation = false;
        config.Recursion.OutgoingInterface = [hierarchy.ResolverAddress.ToString()];
        IterativeResolver? built = null;
        using var server = new Portcullis.Server.Hosting.DnsServer(config, Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance,
            recursion: (o, t, l) => built = new IterativeResolver(o with { ResolutionTimeout = TimeSpan.FromSeconds(8) }, t, l));
        server.Start();
        Assert.NotNull(built);
        var results = hierarchy.RunAll(new IPEndPoint(hierarchy.ResolverAddress, 53));
        output.WriteLine(DnsHierarchy.FormatTable(results));
        var failures = DnsHierarchy.Scenarios.Zip(results, DnsHierarchy.Check).OfType<string>().ToList();
        Assert.True(failures.Count == 0, string.Join("\n", failures) + "\n\n" + DnsHierarchy.FormatTable(results));
    }
}
