using System.Net;
using System.Text;

namespace Portcullis.Testing;

/// <summary>The unbound.conf that every test Unbound shares: in the foreground-friendly form peers.md describes.</summary>
internal static class UnboundConfig
{
    /// <summary>
    /// The server: block's common lines (IPv4 only, UDP and TCP, no chroot, no user switch, no
    /// syslog, one thread, loopback servers may be asked), then <paramref name="extra"/> lines.
    /// </summary>
    public static StringBuilder Server(string @interface, string directory, string accessControl, string moduleConfig, params string[] extra)
    {
        var text = new StringBuilder($"""
            server:
                interface: {@interface}
                do-ip4: yes
                do-ip6: no
                do-udp: yes
                do-tcp: yes
                access-control: {accessControl}
                chroot: ""
                username: ""
                directory: "{directory}"
                pidfile: "{directory}/unbound.pid"
                use-syslog: no
                logfile: ""
                verbosity: 1
                num-threads: 1
                module-config: "{moduleConfig}"
                do-not-query-localhost: no

            """);
        foreach (var line in extra) text.Append("    ").Append(line).Append('\n');
        return text;
    }

    /// <summary>Ends the server: block with the stub zones made transparent, then remote control off and the stub-zone: blocks.</summary>
    public static string Finish(StringBuilder text, IReadOnlyList<(string Zone, IPEndPoint Server)> stubs)
    {
        foreach (var (zone, _) in stubs)
            text.Append($"    local-zone: \"{zone.TrimEnd('.')}.\" transparent\n");
        text.Append("remote-control:\n    control-enable: no\n");
        foreach (var (zone, server) in stubs)
            text.Append($"stub-zone:\n    name: \"{zone.TrimEnd('.')}.\"\n    stub-addr: {server.Address}@{server.Port}\n");
        return text.ToString();
    }
}
