using System.Net;
using System.Net.Sockets;

namespace Portcullis.Testing;

/// <summary>
/// Unbound from Debian (<c>unbound -d</c>) as a full iterative resolver over a <see cref="DnsHierarchy"/>:
/// root-hints from the hierarchy, <c>do-not-query-localhost: no</c> (or it never asks 127/8), the
/// iterator module alone (no validation), QNAME minimisation on (its default, said explicitly),
/// listening on port 53 of the hierarchy's <see cref="DnsHierarchy.ResolverAddress"/>. Everything else
/// keeps Unbound's defaults, timeouts included: this is the baseline an operator knows. One exception:
/// Unbound answers "test." itself (NXDOMAIN, a default local zone for the RFC 6761 special-use names),
/// so <c>local-zone: "test." nodefault</c> hands it to the hierarchy. And for dead servers (issue 9:
/// "timeouts end in SERVFAIL within a bound") Unbound's defaults never answer the client: it drops a
/// waiting query after 1.9 s (<c>discard-timeout</c>) and, with <c>discard-timeout: 0</c> alone, was still
/// silent after 60 s here (a server is given up only when its backed-off timeout reaches
/// <c>infra-cache-max-rtt</c>, 120 s). With <paramref name="serverFailForDeadZones"/> (the default) the
/// baseline sets <c>discard-timeout: 0</c> and <c>infra-cache-max-rtt: 2000</c>: SERVFAIL after about 10 s,
/// like BIND's resolver-query-timeout.
/// The constructor returns once Unbound answers; Dispose kills it and removes its directory.
/// </summary>
public sealed class ResolverUnbound : IDisposable
{
    private readonly BackgroundProcess? _process;

    /// <param name="serverFailForDeadZones">Tune Unbound so that a zone whose servers never answer ends in
    /// SERVFAIL (see above); false keeps Unbound's defaults entirely (the client then gets no answer).</param>
    public ResolverUnbound(DnsHierarchy hierarchy, bool serverFailForDeadZones = true)
    {
        EndPoint = new IPEndPoint(hierarchy.ResolverAddress, 53);
        Directory = System.IO.Directory.CreateTempSubdirectory("portcullis-resolver-unbound-").FullName;
        try
        {
            string config = Path.Combine(Directory, "unbound.conf");
            var text = UnboundConfig.Server($"{EndPoint.Address}@53", Directory, "127.0.0.0/8 allow", "iterator",
                $"outgoing-interface: {EndPoint.Address}", "qname-minimisation: yes", $"root-hints: \"{hierarchy.RootHintsFile}\"",
                "local-zone: \"test.\" nodefault");
            if (serverFailForDeadZones) text.Append("    discard-timeout: 0\n    infra-cache-max-rtt: 2000\n");
            File.WriteAllText(config, UnboundConfig.Finish(text, []));
            _process = new BackgroundProcess("unbound", ["-d", "-c", config], Directory);
            if (!_process.WaitForOutput("start of service", ExternalProcess.DefaultTimeout))
                throw new InvalidOperationException($"unbound did not start.\n`{_process.CommandLine}` printed:\n{_process.Output}");
            WaitUntilAnswering();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public IPEndPoint EndPoint { get; }
    public string Directory { get; }
    public string Log => _process?.Output ?? "";

    /// <summary>
    /// "start of service" is logged once the sockets are open; one probe with RD=0 for "." NS (answered
    /// from the hints or REFUSED, never resolved, so the cache stays cold for the scenarios) confirms it.
    /// </summary>
    private void WaitUntilAnswering()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.ReceiveTimeout = 250;
        socket.Connect(EndPoint);
        byte[] query = [0x52, 0x01, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1];
        var buffer = new byte[4096];
        for (int i = 0; i < 80; i++)
        {
            if (_process!.HasExited) break;
            try
            {
                socket.Send(query);
                int n = socket.Receive(buffer);
                if (n >= 12 && buffer[0] == 0x52 && buffer[1] == 0x01 && (buffer[2] & 0x80) != 0) return;
            }
            catch (SocketException)
            {
                // Not answering yet: ask again (each try waits at most 250 ms).
            }
        }
        throw new TimeoutException($"unbound did not answer on {EndPoint}.\nLog:\n{Log}");
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
