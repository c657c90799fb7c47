using System.Net;
using System.Text;

namespace Portcullis.Testing;

/// <summary>
/// A real Debian server configured as a secondary of a primary under test: it starts with no copy
/// of its zones, pulls each by zone transfer from <see cref="Primary"/>, and its constructor returns
/// once its own log says every zone was transferred and loaded (the log line is the readiness
/// signal, as for <see cref="PeerServer"/>). It lets 127.0.0.0/8 transfer the zones from it, so a
/// test can compare its AXFR with the primary's. Dispose kills it and removes its directory.
/// </summary>
public abstract class SecondaryPeer : PeerServer
{
    protected SecondaryPeer(string name, IPEndPoint primary, IReadOnlyList<string> origins, int? port)
        : base(name, [], port)
    {
        Primary = primary;
        Origins = origins.Select(o => o.TrimEnd('.')).ToArray();
    }

    /// <summary>The server it transfers from.</summary>
    public IPEndPoint Primary { get; }

    /// <summary>The zones it is secondary for, without the final dot.</summary>
    public IReadOnlyList<string> Origins { get; }

    /// <summary>The zone file it wrote from the transfer, inside <see cref="PeerServer.Directory"/>.</summary>
    public string TransferredFile(string origin) => Path.Combine(Directory, origin.TrimEnd('.') + ".zone");
}

/// <summary>Knot DNS as a secondary (<c>master:</c> the primary; it bootstraps each zone by AXFR at start).</summary>
public sealed class KnotSecondary : SecondaryPeer
{
    /// <param name="key">Sign the transfer requests with this TSIG key (Knot's remote key).</param>
    public KnotSecondary(IPEndPoint primary, IReadOnlyList<string> origins, int? port = null, PeerKey? key = null)
        : base("knot-secondary", primary, origins, port)
    {
        _key = key;
        string config = Path.Combine(Directory, "knot.conf");
        File.WriteAllText(config, Configuration());
        // "refresh, remote A@P, zone updated" follows a complete, validated transfer.
        Start("knotd", ["-c", config],
            ["server started", .. Origins.Select(o => $"[{o}.] refresh, remote {Primary.Address}@{Primary.Port}, zone updated")]);
    }

    private readonly PeerKey? _key;

    private string Configuration()
    {
        string keySection = _key is { } k ? $"key:\n  - id: {k.Name}\n    algorithm: {k.Algorithm}\n    secret: {k.Secret}\n" : "";
        string useKey = _key is { } k2 ? $"\n    key: {k2.Name}" : "";
        // A rule without a key matches only unsigned requests, so a NOTIFY signed with the
        // primary's key needs a rule of its own (Knot 3.2 has no automatic ACL for its masters).
        string keyedNotify = _key is { } k3 ? $"  - id: keyed-notify\n    address: 127.0.0.0/8\n    key: {k3.Name}\n    action: notify\n" : "";
        string acls = _key is null ? "loopback" : "[loopback, keyed-notify]";
        var text = new StringBuilder($"""
            server:
                rundir: "{Directory}"
                listen: 127.0.0.1@{Port}
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
            {keySection}remote:
              - id: primary
                address: {Primary.Address}@{Primary.Port}{useKey}
            acl:
              - id: loopback
                address: 127.0.0.0/8
                action: [transfer, notify]
            {keyedNotify}template:
              - id: default
                storage: "{Directory}"
                file: "%s.zone"
                master: primary
                acl: {acls}
            zone:

            """);
        foreach (var origin in Origins) text.Append($"  - domain: {origin}\n");
        return text.ToString();
    }
}

/// <summary>BIND 9 as a secondary (<c>type secondary; primaries { ... };</c>), in the foreground with its state in its own directory.</summary>
public sealed class BindSecondary : SecondaryPeer
{
    /// <param name="key">Sign the transfer requests with this TSIG key (primaries { ADDR key NAME; }).</param>
    public BindSecondary(IPEndPoint primary, IReadOnlyList<string> origins, int? port = null, PeerKey? key = null)
        : base("bind-secondary", primary, origins, port)
    {
        _key = key;
        string config = Path.Combine(Directory, "named.conf");
        File.WriteAllText(config, Configuration());
        Start(File.Exists("/usr/sbin/named") ? "/usr/sbin/named" : "named", ["-g", "-c", config],
            ["running", .. Origins.Select(o => $"transfer of '{o}/IN' from {Primary.Address}#{Primary.Port}: Transfer completed")]);
    }

    private readonly PeerKey? _key;

    private string Configuration()
    {
        var text = new StringBuilder(BindPeer.Options(Directory, Port, """
                recursion no;
                dnssec-validation no;
                allow-query { any; };
                allow-transfer { 127.0.0.0/8; };
                notify no;
            """));
        if (_key is { } k) text.Append(BindPeer.KeyStatement(k));
        string keyClause = _key is null ? "" : $" key \"{_key.Name}\"";
        foreach (var origin in Origins)
            text.Append($"zone \"{origin}\" {{ type secondary; file \"{origin}.zone\"; primaries {{ {Primary.Address} port {Primary.Port}{keyClause}; }}; }};\n");
        return text.ToString();
    }
}
