using System.Net;
using System.Net.Sockets;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.Wire;

using Portcullis.Testing;

namespace Portcullis.Protocol.Tests.Interop;

/// <summary>
/// A real Knot DNS (knotd) on 127.0.0.1 with its own configuration, run directory and storage in a
/// temporary directory, serving the zones in Interop/Data/knot. Started once per test class; killed
/// and cleaned up in Dispose.
/// </summary>
public sealed class KnotServer : IDisposable
{
    public const string Nsid = "portcullis-interop";

    /// <summary>Zones served; cookie.test has mod-cookies (server cookies, BADCOOKIE).</summary>
    public static readonly string[] Zones = ["example.test", "cookie.test"];

    private readonly BackgroundProcess? _process;

    public KnotServer()
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("portcullis-knot-").FullName;
        try
        {
            foreach (var zone in Zones)
                File.Copy(Path.Combine(InteropData.Directory, "knot", zone + ".zone"), Path.Combine(Directory, zone + ".zone"));
            Port = FreePort.ForUdpAndTcp();
            EndPoint = new IPEndPoint(IPAddress.Loopback, Port);
            string config = Path.Combine(Directory, "knot.conf");
            File.WriteAllText(config, Configuration());
            _process = new BackgroundProcess("knotd", ["-c", config], Directory);
            WaitUntilAnswering();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public string Directory { get; }
    public int Port { get; }
    public IPEndPoint EndPoint { get; } = new(IPAddress.Loopback, 0);

    public string Log => _process?.Output ?? "";

    private string Configuration() => $"""
        server:
            rundir: "{Directory}"
            listen: 127.0.0.1@{Port}
            nsid: "{Nsid}"
            udp-workers: 1
            tcp-workers: 1
            background-workers: 1
        database:
            storage: "{Directory}"
        log:
          - target: stderr
            any: info
        mod-cookies:
          - id: default
        template:
          - id: default
            storage: "{Directory}"
            file: "%s.zone"
        zone:
          - domain: example.test
          - domain: cookie.test
            module: mod-cookies/default

        """;

    /// <summary>
    /// Waits for knotd to say it has started (its log, not a sleep), then queries each zone's SOA
    /// until it is answered authoritatively: each try waits at most 250 ms for an answer, and 80
    /// tries bound the polling at 20 s.
    /// </summary>
    private void WaitUntilAnswering()
    {
        if (!_process!.WaitForOutput("server started", ExternalProcess.DefaultTimeout))
            throw new InvalidOperationException(
                $"knotd did not report `server started` within {ExternalProcess.DefaultTimeout.TotalSeconds:0} s"
                + $"{(_process.HasExited ? " (it exited)" : "")}.\n`{_process.CommandLine}` printed:\n{Log}");
        const int tries = 80;
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.ReceiveTimeout = 250;
        socket.Connect(EndPoint);
        var pending = new Queue<string>(Zones);
        var buffer = new byte[4096];
        ushort id = 1;
        for (int i = 0; i < tries && pending.Count > 0; i++)
        {
            if (_process!.HasExited)
                throw new InvalidOperationException($"knotd exited before it answered.\n`{_process.CommandLine}` printed:\n{Log}");
            var query = BuildQuery(++id, DnsName.Parse(pending.Peek() + "."), RecordType.SOA);
            try
            {
                socket.Send(query);
                int n = socket.Receive(buffer);
                if (IsAuthoritativeAnswer(buffer.AsSpan(0, n), id)) pending.Dequeue();
            }
            catch (SocketException)
            {
                // Not listening yet (refused) or no answer in time: try again.
            }
        }
        if (pending.Count > 0)
            throw new TimeoutException($"knotd did not answer for {pending.Peek()} after {tries} queries.\nLog:\n{Log}");
    }

    public static byte[] BuildQuery(ushort id, DnsName name, RecordType type)
    {
        var buffer = new byte[512];
        var writer = new DnsMessageWriter(buffer);
        writer.Header.Id = id;
        if (!writer.TryWriteQuestion(name.Wire, type, RecordClass.IN)) throw new InvalidOperationException("question does not fit");
        return buffer[..writer.Finish()];
    }

    private static bool IsAuthoritativeAnswer(ReadOnlySpan<byte> response, ushort id) =>
        DnsMessageReader.TryCreate(response, out var reader)
        && reader.Header.Id == id && reader.Header.IsResponse && reader.Header.AuthoritativeAnswer
        && reader.Header.Rcode == 0 && reader.Header.AnswerCount == 1;

    public void Dispose()
    {
        _process?.Dispose();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // Left behind in the temp directory; harmless.
        }
    }
}
