using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Server.Configuration;
using Portcullis.Server.Hosting;
using Portcullis.Server.Resolution;

namespace Portcullis.Server.Tests.Resolution;

/// <summary>
/// A small DNS tree on Portcullis authoritative servers at 127.54.0.x port 53 (outside the shared
/// hierarchy's 127.53/16): the root (.1), test. (.2), example.test. (.3), other. and oob.test. (.4),
/// a malicious server for evil.test. written here (.5), a delegation to an address where nothing
/// listens (dead.test. → .9) and one to a server that never answers (silent.test. → .10).
/// </summary>
public sealed class ResolverHierarchy : IDisposable
{
    public const string Root = "127.54.0.1", Tld = "127.54.0.2", Sld = "127.54.0.3", Other = "127.54.0.4", Evil = "127.54.0.5";
    public const string Dead = "127.54.0.9", Silent = "127.54.0.10";

    private readonly List<DnsServer> _servers = [];
    private readonly string _directory;
    private readonly Socket _evil, _silent;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _evilLoop;
    public int EvilQueries;

    public ResolverHierarchy()
    {
        _directory = Directory.CreateTempSubdirectory("portcullis-resolver-").FullName;
        Serve(Root, (".", """
            $TTL 3600
            @ SOA a.root-servers.test. hostmaster.test. 1 7200 3600 1209600 300
            @ NS a.root-servers.test.
            a.root-servers.test. A 127.54.0.1
            test. NS ns1.test.
            ns1.test. A 127.54.0.2
            other. NS ns.other.
            ns.other. A 127.54.0.4
            """));
        Serve(Tld, ("test.", """
            $TTL 3600
            @ SOA ns1 hostmaster 1 7200 3600 1209600 300
            @ NS ns1
            ns1 A 127.54.0.2
            example NS ns1.example
            ns1.example A 127.54.0.3
            oob NS ns.other.
            evil NS ns.evil
            ns.evil A 127.54.0.5
            dead NS ns.dead
            ns.dead A 127.54.0.9
            silent NS ns.silent
            ns.silent A 127.54.0.10
            nxns NS a.nowhere.other.
            nxns NS b.nowhere.other.
            nxns NS c.nowhere.other.
            nxns NS d.nowhere.other.
            nxns NS e.nowhere.other.
            nxns NS f.nowhere.other.
            nxns NS g.nowhere.other.
            nxns NS h.nowhere.other.
            """));
        Serve(Sld, ("example.test.", """
            $TTL 3600
            @ SOA ns1 hostmaster 1 7200 3600 1209600 60
            @ NS ns1
            ns1 A 127.54.0.3
            www A 192.0.2.1
            alias CNAME www.other.
            deep.ent.path A 192.0.2.3
            """));
        Serve(Other, ("other.", """
            $TTL 3600
            @ SOA ns hostmaster 1 7200 3600 1209600 300
            @ NS ns
            ns A 127.54.0.4
            www A 192.0.2.4
            """), ("oob.test.", """
            $TTL 3600
            @ SOA ns.other. hostmaster.other. 1 7200 3600 1209600 300
            @ NS ns.other.
            host A 192.0.2.5
            """));
        _evil = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        _evil.Bind(new IPEndPoint(IPAddress.Parse(Evil), 53));
        _silent = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        _silent.Bind(new IPEndPoint(IPAddress.Parse(Silent), 53));
        _evilLoop = Task.Run(EvilLoopAsync);
    }

    public ResolverOptions Options(Func<ResolverOptions, ResolverOptions>? tweak = null)
    {
        var o = new ResolverOptions
        {
            RootHints = [(DnsName.Parse("a.root-servers.test."), IPAddress.Parse(Root))],
            ResolutionTimeout = TimeSpan.FromSeconds(5),
            // Random source ports on this test's own address, never on 127.0.0.1 where other tests bind.
            OutgoingAddresses = [IPAddress.Parse(Root)],
        };
        return tweak is null ? o : tweak(o);
    }

    private void Serve(string address, params (string Origin, string Text)[] zones)
    {
        var config = new ServerConfig { Listen = [$"{address}:53"] };
        foreach (var (origin, text) in zones)
        {
            var file = Path.Combine(_directory, (origin == "." ? "root" : origin.TrimEnd('.')) + ".zone");
            File.WriteAllText(file, "$ORIGIN " + origin + "\n" + text + "\n");
            config.Zones.Add(new ZoneConfig { Name = origin, File = file });
        }
        var server = new DnsServer(config, NullLoggerFactory.Instance);
        server.Start();
        _servers.Add(server);
    }

    /// <summary>
    /// The evil.test. server: answers every question authoritatively and adds records for names
    /// it has no authority over (www.example.test., a sibling's NS, glue for them), in every section.
    /// </summary>
    private async Task EvilLoopAsync()
    {
        var buffer = new byte[4096];
        EndPoint any = new IPEndPoint(IPAddress.Any, 0);
        while (!_stop.IsCancellationRequested)
        {
            SocketReceiveFromResult got;
            try { got = await _evil.ReceiveFromAsync(buffer, SocketFlags.None, any, _stop.Token); }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { return; }
            Interlocked.Increment(ref EvilQueries);
            if (!DnsMessage.TryParse(buffer.AsSpan(0, got.ReceivedBytes), out var q)) continue;
            var question = q.Questions[0];
            var r = new DnsMessage { Header = q.Header };
            r.Header.IsResponse = true;
            r.Header.AuthoritativeAnswer = true;
            r.Questions.Add(question);
            var victim = DnsName.Parse("www.example.test.");
            if (question.Type == RecordType.A)
                r.Answers.Add(new ResourceRecord(question.Name, RecordType.A, RecordClass.IN, 300, [192, 0, 2, 66]));
            r.Answers.Add(new ResourceRecord(victim, RecordType.A, RecordClass.IN, 86400, [6, 6, 6, 6]));
            r.Authority.Add(new ResourceRecord(DnsName.Parse("example.test."), RecordType.NS, RecordClass.IN, 86400, DnsName.Parse("ns.evil.test.").Wire.ToArray()));
            r.Additional.Add(new ResourceRecord(victim, RecordType.A, RecordClass.IN, 86400, [6, 6, 6, 7]));
            r.Additional.Add(new ResourceRecord(DnsName.Parse("ns1.example.test."), RecordType.A, RecordClass.IN, 86400, [6, 6, 6, 8]));
            try { await _evil.SendToAsync(r.ToWire(), SocketFlags.None, got.RemoteEndPoint); }
            catch (SocketException) { }
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _evil.Dispose();
        _silent.Dispose();
        try { _evilLoop.Wait(TimeSpan.FromSeconds(5)); } catch (AggregateException) { }
        foreach (var s in _servers) s.Dispose();
        try { Directory.Delete(_directory, recursive: true); } catch (IOException) { }
    }
}
