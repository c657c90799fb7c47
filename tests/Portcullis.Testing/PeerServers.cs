using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Portcullis.Testing;

/// <summary>A zone a peer server serves: its origin ("example.test") and the zone file to load.</summary>
public sealed record PeerZone(string Origin, string File);

/// <summary>A TSIG key a peer shares with Portcullis (test-only secrets).</summary>
public sealed record PeerKey(string Name, string Algorithm, string Secret)
{
    /// <summary>The tests' shared TSIG key. TEST-ONLY secret: never use it outside the tests.</summary>
    public static readonly PeerKey TestOnly = new("transfer.test", "hmac-sha256", "dGVzdC1vbmx5LXRzaWctc2VjcmV0LTMyLW9jdGV0cyE=");

    /// <summary>As `portcullis query --tsig` and dig -y take it: name:algorithm:secret.</summary>
    public string Spec => $"{Name}:{Algorithm}:{Secret}";
}

/// <summary>
/// A real authoritative server from Debian (knotd, nsd or named) serving the given zone files on
/// 127.0.0.1 and a free port, with its configuration, run directory and state in a temporary
/// directory of its own. The constructor returns once every zone's SOA is answered
/// authoritatively; Dispose kills the server and removes the directory.
/// </summary>
public abstract class PeerServer : IDisposable
{
    /// <summary>How many SOA probes readiness may take; each waits at most <see cref="ProbeWait"/> for its answer.</summary>
    private const int ProbeTries = 80;
    private static readonly TimeSpan ProbeWait = TimeSpan.FromMilliseconds(250);

    private BackgroundProcess? _process;

    protected PeerServer(string name, IReadOnlyList<PeerZone> zones, int? port)
    {
        Name = name;
        Zones = zones;
        Directory = System.IO.Directory.CreateTempSubdirectory($"portcullis-{name}-").FullName;
        Port = port ?? FreePort.ForUdpAndTcp();
        EndPoint = new IPEndPoint(IPAddress.Loopback, Port);
    }

    /// <summary>"knot", "nsd" or "bind".</summary>
    public string Name { get; }
    public IReadOnlyList<PeerZone> Zones { get; }
    public string Directory { get; }
    public int Port { get; }
    public IPEndPoint EndPoint { get; }

    /// <summary>Everything the server printed so far (its log goes to stderr).</summary>
    public string Log => _process?.Output ?? "";

    /// <summary>The daemon's process ID (for signals), or 0 before it started.</summary>
    public int ProcessId => _process?.Id ?? 0;

    /// <summary>The zone file name inside <see cref="Directory"/> (origins are plain host names here).</summary>
    protected static string LocalFile(PeerZone zone) => zone.Origin.TrimEnd('.') + ".zone";

    /// <summary>Writes the configuration, starts the daemon and waits for it; the subclass constructor calls this last.</summary>
    protected void Start(string fileName, IEnumerable<string> arguments, IEnumerable<string> readyLines)
    {
        try
        {
            foreach (var zone in Zones)
                File.Copy(zone.File, Path.Combine(Directory, LocalFile(zone)));
            _process = new BackgroundProcess(fileName, arguments, Directory);
            // The daemon's own log says when it has bound its sockets and loaded each zone; waiting
            // for those lines is woken by the output itself, not by sleeping.
            foreach (var line in readyLines)
                if (!_process.WaitForOutput(line, ExternalProcess.DefaultTimeout))
                    throw new InvalidOperationException(
                        $"{Name} did not log `{line}` within {ExternalProcess.DefaultTimeout.TotalSeconds:0} s"
                        + $"{(_process.HasExited ? " (it exited)" : "")}.\n`{_process.CommandLine}` printed:\n{Log}");
            WaitUntilAnswering();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Waits (bounded) until the server's log contains <paramref name="text"/>, e.g. a reload's "loaded" line.</summary>
    public bool WaitForLog(string text, TimeSpan? timeout = null) =>
        _process is { } p && p.WaitForOutput(text, timeout ?? ExternalProcess.DefaultTimeout);

    /// <summary>The names whose SOA must be answered before the server counts as ready: its zones.</summary>
    protected virtual IEnumerable<string> ReadinessNames => Zones.Select(z => z.Origin);

    /// <summary>A ready answer to a readiness probe: authoritative, NOERROR, with an answer.</summary>
    protected virtual bool IsReady(ReadOnlySpan<byte> response, ushort id) => IsAuthoritativeAnswer(response, id);

    /// <summary>Queries each readiness name's SOA until it is answered as <see cref="IsReady"/> wants, with bounded tries.</summary>
    private void WaitUntilAnswering()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.ReceiveTimeout = (int)ProbeWait.TotalMilliseconds;
        socket.Connect(EndPoint);
        var pending = new Queue<string>(ReadinessNames);
        var buffer = new byte[4096];
        ushort id = 0x5000;
        for (int i = 0; i < ProbeTries && pending.Count > 0; i++)
        {
            if (_process!.HasExited)
                throw new InvalidOperationException($"{Name} exited before it answered.\n`{_process.CommandLine}` printed:\n{Log}");
            id++;
            try
            {
                socket.Send(SoaQuery(id, pending.Peek()));
                int n = socket.Receive(buffer);
                if (IsReady(buffer.AsSpan(0, n), id)) pending.Dequeue();
            }
            catch (SocketException)
            {
                // Not listening yet (port unreachable) or no answer in time: try again.
            }
        }
        if (pending.Count > 0)
            throw new TimeoutException($"{Name} did not answer SOA for {pending.Peek()} after {ProbeTries} queries.\nLog:\n{Log}");
    }

    /// <summary>A bare SOA query built by hand: this project is shared by tests that do not reference the protocol library.</summary>
    private static byte[] SoaQuery(ushort id, string origin)
    {
        var bytes = new List<byte>(64);
        bytes.AddRange([(byte)(id >> 8), (byte)id, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        foreach (var label in origin.TrimEnd('.').Split('.', StringSplitOptions.RemoveEmptyEntries))
        {
            bytes.Add((byte)label.Length);
            bytes.AddRange(Encoding.ASCII.GetBytes(label));
        }
        bytes.AddRange([0, 0, 6, 0, 1]);   // root, TYPE SOA, CLASS IN
        return bytes.ToArray();
    }

    /// <summary>Any reply to the probe (QR set, our ID), whatever its RCODE: a resolver that refuses us is still up.</summary>
    protected static bool IsAnyReply(ReadOnlySpan<byte> response, ushort id) =>
        response.Length >= 12 && BinaryPrimitives.ReadUInt16BigEndian(response) == id && (response[2] & 0x80) != 0;

    private static bool IsAuthoritativeAnswer(ReadOnlySpan<byte> response, ushort id)
    {
        if (response.Length < 12 || BinaryPrimitives.ReadUInt16BigEndian(response) != id) return false;
        ushort flags = BinaryPrimitives.ReadUInt16BigEndian(response[2..]);
        bool qr = (flags & 0x8000) != 0, aa = (flags & 0x0400) != 0;
        return qr && aa && (flags & 0xF) == 0 && BinaryPrimitives.ReadUInt16BigEndian(response[6..]) >= 1;
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
            // Left behind in the temp directory; harmless.
        }
        GC.SuppressFinalize(this);
    }
}

/// <summary>Knot DNS (knotd) with a configuration of its own; one worker of each kind keeps it small.</summary>
public sealed class KnotPeer : PeerServer
{
    /// <param name="allowTransfer">Let 127.0.0.0/8 transfer the zones (AXFR/IXFR) without a key; off by default, as Knot's own default.</param>
    /// <param name="rrlRate">Responses per second of Knot's RRL module (slip 2), or 0 for none, as Knot's own default.</param>
    /// <param name="nsid">The NSID Knot returns when asked (RFC 5001), or none.</param>
    /// <param name="cookieZones">Zones served with Knot's cookies module (server cookies, BADCOOKIE).</param>
    /// <param name="journalDifferences">On <see cref="ReloadZone"/>, compare the edited zone file with the zone served and
    /// keep the difference in the journal (<c>zonefile-load: difference</c>), so that IXFR has a diff to send.</param>
    public KnotPeer(IReadOnlyList<PeerZone> zones, int? port = null, bool allowTransfer = false, int rrlRate = 0, string? nsid = null,
        IReadOnlyCollection<string>? cookieZones = null, bool journalDifferences = false, PeerKey? transferKey = null,
        IPEndPoint? notifyTo = null) : base("knot", zones, port)
    {
        _notifyTo = notifyTo;
        _transferKey = transferKey;
        _journalDifferences = journalDifferences;
        _allowTransfer = allowTransfer;
        _rrlRate = rrlRate;
        _nsid = nsid;
        _cookieZones = cookieZones ?? [];
        string config = Path.Combine(Directory, "knot.conf");
        File.WriteAllText(config, Configuration());
        Start("knotd", ["-c", config],
            ["server started", .. zones.Select(z => $"[{z.Origin.TrimEnd('.')}.] loaded")]);
    }

    private readonly bool _journalDifferences;
    private readonly PeerKey? _transferKey;
    private readonly IPEndPoint? _notifyTo;
    private readonly bool _allowTransfer;
    private readonly int _rrlRate;
    private readonly string? _nsid;
    private readonly IReadOnlyCollection<string> _cookieZones;

    private string Configuration()
    {
        // Knot wants an ACL defined before the template that refers to it.
        string acl = _allowTransfer ? "acl:\n  - id: loopback-transfer\n    address: 127.0.0.0/8\n    action: transfer\n" : "";
        string useAcl = _allowTransfer ? "\n    acl: loopback-transfer" : "";
        if (_transferKey is { } k)
        {
            // Transfers only with the key (and NOTIFY accepted with it, for replication tests).
            acl = $"key:\n  - id: {k.Name}\n    algorithm: {k.Algorithm}\n    secret: {k.Secret}\n"
                + $"acl:\n  - id: key-transfer\n    key: {k.Name}\n    action: [transfer, notify]\n";
            useAcl = "\n    acl: key-transfer";
        }
        if (_notifyTo is { } n)
        {
            // NOTIFY the secondary (signed with the transfer key, when there is one) on every change.
            acl += $"remote:\n  - id: notified\n    address: {n.Address}@{n.Port}{(_transferKey is { } nk ? $"\n    key: {nk.Name}" : "")}\n";
            useAcl += "\n    notify: notified";
        }
        string rrl = _rrlRate > 0 ? $"mod-rrl:\n  - id: rrl\n    rate-limit: {_rrlRate}\n    slip: 2\n" : "";
        string useRrl = _rrlRate > 0 ? "\n    global-module: mod-rrl/rrl" : "";
        string nsid = _nsid is null ? "" : $"\n    nsid: \"{_nsid}\"";
        string cookies = _cookieZones.Count > 0 ? "mod-cookies:\n  - id: default\n" : "";
        string journal = _journalDifferences ? "\n    zonefile-load: difference\n    journal-content: changes" : "";
        var text = new StringBuilder($"""
            server:
                rundir: "{Directory}"
                listen: 127.0.0.1@{Port}{nsid}
                udp-workers: 1
                tcp-workers: 1
                # Knot gives a TCP message 500 ms by default (outgoing transfers too): a loaded
                # test machine can be slower than that, and the transfer is cut mid-stream.
                tcp-io-timeout: 10000
                background-workers: 1
            database:
                storage: "{Directory}"
            log:
              - target: stderr
                any: info
            {acl}{rrl}{cookies}template:
              - id: default
                storage: "{Directory}"
                file: "%s.zone"{useAcl}{useRrl}{journal}
            zone:

            """);
        foreach (var zone in Zones)
        {
            string origin = zone.Origin.TrimEnd('.');
            text.Append($"  - domain: {origin}\n");
            if (_cookieZones.Contains(origin)) text.Append("    module: mod-cookies/default\n");
        }
        return text.ToString();
    }

    /// <summary>The zone file Knot reads for <paramref name="origin"/>: edit it, then <see cref="ReloadZone"/>.</summary>
    public string ZoneFile(string origin) => Path.Combine(Directory, LocalFile(new PeerZone(origin, "")));

    /// <summary>
    /// Reloads one zone through Knot's control socket (its default, knot.sock in the run directory)
    /// and waits for the log line of the new serial, so the caller's next query sees it.
    /// </summary>
    public void ReloadZone(string origin, uint newSerial)
    {
        string zone = origin.TrimEnd('.');
        ExternalProcess.Run("knotc", ["-s", Path.Combine(Directory, "knot.sock"), "zone-reload", zone]).EnsureSuccess();
        if (!WaitForLog($"-> {newSerial}"))
            throw new TimeoutException($"knot did not log serial {newSerial} for {zone} after zone-reload.\nLog:\n{Log}");
    }
}

/// <summary>
/// Unbound (<c>unbound -d</c>: foreground, log to stderr) as a recursive resolver that needs no
/// Internet: every name is refused (<c>local-zone: "." refuse</c>) except the stub zones, which it
/// resolves by asking the given authoritative servers on loopback (<c>do-not-query-localhost: no</c>,
/// as Unbound would otherwise never query 127.0.0.0/8), and the local data. No root hints are
/// used, no trust anchor is configured (the iterator module alone: no validation) and remote
/// control is off; the pid file and working directory are in <see cref="PeerServer.Directory"/>.
/// </summary>
public sealed class UnboundPeer : PeerServer
{
    /// <param name="access">What <c>access-control</c> does for 127.0.0.0/8: <c>allow</c> (recursion
    /// offered to every loopback client: an open resolver for the audit's tests), <c>refuse</c>
    /// (REFUSED to all), <c>deny</c> (silence) ...</param>
    /// <param name="stubs">Zones to resolve by asking an authoritative server (<c>stub-zone</c>).</param>
    /// <param name="localData">Records Unbound answers itself (<c>local-data</c>, zone-file syntax).</param>
    public UnboundPeer(string access = "allow", IReadOnlyList<(string Zone, IPEndPoint Server)>? stubs = null,
        IReadOnlyList<string>? localData = null, int? port = null) : base("unbound", [], port)
    {
        Access = access;
        _stubs = stubs ?? [];
        _localData = localData ?? [];
        string config = Path.Combine(Directory, "unbound.conf");
        File.WriteAllText(config, Configuration());
        Start("unbound", ["-d", "-c", config], ["start of service"]);
    }

    public string Access { get; }
    private readonly IReadOnlyList<(string Zone, IPEndPoint Server)> _stubs;
    private readonly IReadOnlyList<string> _localData;

    /// <summary>". SOA" is refused (or, with access deny, never answered: then only the log line counts).</summary>
    protected override IEnumerable<string> ReadinessNames => Access == "deny" ? [] : ["."];

    protected override bool IsReady(ReadOnlySpan<byte> response, ushort id) => IsAnyReply(response, id);

    private string Configuration()
    {
        var text = UnboundConfig.Server("127.0.0.1", Directory, $"127.0.0.0/8 {Access}", "iterator", $"port: {Port}", "local-zone: \".\" refuse");
        foreach (var record in _localData)
            text.Append($"    local-data: \"{record}\"\n");
        return UnboundConfig.Finish(text, _stubs);
    }
}

/// <summary>
/// NSD run in the foreground (<c>nsd -d</c>) with its pid file, zone list, transfer state and
/// zones in its own directory and no database file. Debian's NSD has response rate limiting on
/// by default, which would drop or truncate the test's bursts of identical answers: it is off here.
/// </summary>
public sealed class NsdPeer : PeerServer
{
    public NsdPeer(IReadOnlyList<PeerZone> zones, int? port = null) : base("nsd", zones, port)
    {
        string config = Path.Combine(Directory, "nsd.conf");
        File.WriteAllText(config, Configuration());
        Start("nsd", ["-d", "-c", config],
            [.. zones.Select(z => $"zone {z.Origin.TrimEnd('.')} read with success"), "nsd started"]);
    }

    private string Configuration()
    {
        var text = NsdConfig.Server($"127.0.0.1@{Port}", Directory);
        foreach (var zone in Zones)
            text.Append($"zone:\n    name: {zone.Origin.TrimEnd('.')}\n    zonefile: \"{LocalFile(zone)}\"\n");
        return text.ToString();
    }
}

/// <summary>
/// BIND 9 (<c>named -g</c>: foreground, log to stderr) as a primary for the given zones, with its
/// configuration, pid file, session key and managed-keys files in its own directory. The caller
/// may add text to the <c>options</c> block, e.g. a <c>rate-limit { ... };</c> statement or
/// <c>require-server-cookie yes;</c>.
/// </summary>
/// <remarks>
/// named listens only on addresses configured on an interface, so it is always 127.0.0.1 with a
/// port of its own; clients may still use any 127.0.0.x source. The rndc command channel is off
/// (<c>controls { };</c>): by default every instance would try to bind 127.0.0.1#953. Debian's
/// named 9.18 starts and serves as root without <c>-u</c> (checked here), and as any other user it
/// needs no privilege on a high port, so no user switch is passed; everything it writes is in
/// <see cref="PeerServer.Directory"/>, which its user owns.
/// </remarks>
public sealed class BindPeer : PeerServer
{
    /// <param name="recursion">Offer recursion to anyone (an open resolver, for the audit's tests);
    /// off by default, an authoritative-only server.</param>
    /// <param name="transferKey">Transfers allowed only with this TSIG key (allow-transfer { key NAME; }).</param>
    public BindPeer(IReadOnlyList<PeerZone> zones, string? extraOptions = null, int? port = null, bool recursion = false, PeerKey? transferKey = null)
        : base(Installed("bind"), zones, port)
    {
        TransferKey = transferKey;
        ExtraOptions = extraOptions ?? "";
        Recursion = recursion;
        string config = Path.Combine(Directory, "named.conf");
        File.WriteAllText(config, Configuration());
        // "running" alone also matches the start-up line "running on Linux ...": wait for the
        // zones and for "all zones loaded", then for answers (the base class).
        Start(Executable, ["-g", "-c", config],
            [.. zones.Select(z => $"zone {z.Origin.TrimEnd('.')}/IN: loaded serial"), "all zones loaded"]);
    }

    /// <summary>The text added to the options block.</summary>
    public string ExtraOptions { get; }

    public bool Recursion { get; }

    public PeerKey? TransferKey { get; }

    /// <summary>
    /// Re-reads the zone files (SIGHUP, named's reload) after the caller edited one, and waits for
    /// the log line of the zone's new serial.
    /// </summary>
    public void ReloadZone(string origin, uint newSerial)
    {
        ExternalProcess.Run("kill", ["-HUP", ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture)]).EnsureSuccess();
        if (!WaitForLog($"zone {origin.TrimEnd('.')}/IN: loaded serial {newSerial}"))
            throw new TimeoutException($"named did not log serial {newSerial} for {origin} after SIGHUP.\nLog:\n{Log}");
    }

    /// <summary>The zone file named reads for <paramref name="origin"/>: edit it, then <see cref="ReloadZone"/>.</summary>
    public string ZoneFile(string origin) => Path.Combine(Directory, LocalFile(new PeerZone(origin, "")));

    /// <summary>
    /// named.conf's options block for a test instance: its files in <paramref name="directory"/>, IPv4
    /// loopback on <paramref name="port"/> only, no control channel; <paramref name="body"/> adds the
    /// statements that make the instance what it is.
    /// </summary>
    public static string Options(string directory, int port, string body) => $$"""
        options {
            directory "{{directory}}";
            listen-on port {{port}} { 127.0.0.1; };
            listen-on-v6 { none; };
            pid-file "{{directory}}/named.pid";
            session-keyfile "{{directory}}/session.key";
            managed-keys-directory "{{directory}}";
        {{body}}
        };
        controls { };

        """;

    /// <summary>A key statement for named.conf.</summary>
    public static string KeyStatement(PeerKey key) => $"key \"{key.Name}\" {{ algorithm {key.Algorithm}; secret \"{key.Secret}\"; }};\n";

    /// <summary>Debian installs named in /usr/sbin, which is not on every user's PATH.</summary>
    private static string Executable => File.Exists("/usr/sbin/named") ? "/usr/sbin/named" : "named";

    /// <summary>Fails before the base class makes a directory when named is missing: the daemon is
    /// in Debian's bind9 package, not in bind9-utils or bind9-dnsutils.</summary>
    private static string Installed(string name)
    {
        bool onPath = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Any(dir => File.Exists(Path.Combine(dir, "named")));
        if (!File.Exists("/usr/sbin/named") && !onPath)
            throw new InvalidOperationException("named is not installed: the BIND comparison tests need Debian's bind9 package (apt-get install bind9, with policy-rc.d preventing it from starting).");
        return name;
    }

    private string Configuration()
    {
        var text = new StringBuilder(Options(Directory, Port, $$"""
                {{(Recursion ? "recursion yes; allow-recursion { any; }; resolver-query-timeout 1;" : "recursion no;")}}
                allow-query { any; };
                dnssec-validation no;
                {{(TransferKey is null ? "" : $"allow-transfer {{ key \"{TransferKey.Name}\"; }};")}}
                {{ExtraOptions}}
            """));
        if (TransferKey is { } k) text.Append(KeyStatement(k));
        foreach (var zone in Zones)
            text.Append($"zone \"{zone.Origin.TrimEnd('.')}\" {{ type primary; file \"{LocalFile(zone)}\"; }};\n");
        return text.ToString();
    }
}
