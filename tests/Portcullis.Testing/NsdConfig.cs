using System.Text;

namespace Portcullis.Testing;

/// <summary>The nsd.conf every test NSD shares: one server process, no chroot or user switch, files in its own directory, RRL off.</summary>
internal static class NsdConfig
{
    /// <summary>The server: and remote-control: clauses; the caller appends its zone: clauses.</summary>
    public static StringBuilder Server(string ipAddress, string directory) => new($"""
        server:
            ip-address: {ipAddress}
            do-ip6: no
            server-count: 1
            username: ""
            chroot: ""
            zonesdir: "{directory}"
            pidfile: "{directory}/nsd.pid"
            xfrdfile: "{directory}/xfrd.state"
            zonelistfile: "{directory}/zone.list"
            xfrdir: "{directory}"
            database: ""
            hide-version: yes
            rrl-ratelimit: 0
            rrl-whitelist-ratelimit: 0
            verbosity: 2
        remote-control:
            control-enable: no

        """);
}
