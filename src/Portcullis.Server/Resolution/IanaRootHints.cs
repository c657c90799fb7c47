using System.Net;
using Portcullis.Protocol.Names;

namespace Portcullis.Server.Resolution;

/// <summary>
/// The IANA root hints (named.root, as published by IANA): the 13 root server names and their
/// IPv4 and IPv6 addresses. Only the start of priming (RFC 8109 §3): the root's own NS answer
/// replaces them in the cache. (Configuration.RootHints reads a hints file instead.)
/// </summary>
public static class IanaRootHints
{
    private static readonly (string Name, string V4, string V6)[] Servers =
    [
        ("a.root-servers.net.", "198.41.0.4", "2001:503:ba3e::2:30"),
        ("b.root-servers.net.", "170.247.170.2", "2801:1b8:10::b"),
        ("c.root-servers.net.", "192.33.4.12", "2001:500:2::c"),
        ("d.root-servers.net.", "199.7.91.13", "2001:500:2d::d"),
        ("e.root-servers.net.", "192.203.230.10", "2001:500:a8::e"),
        ("f.root-servers.net.", "192.5.5.241", "2001:500:2f::f"),
        ("g.root-servers.net.", "192.112.36.4", "2001:500:12::d0d"),
        ("h.root-servers.net.", "198.97.190.53", "2001:500:1::53"),
        ("i.root-servers.net.", "192.36.148.17", "2001:7fe::53"),
        ("j.root-servers.net.", "192.58.128.30", "2001:503:c27::2:30"),
        ("k.root-servers.net.", "193.0.14.129", "2001:7fd::1"),
        ("l.root-servers.net.", "199.7.83.42", "2001:500:9f::42"),
        ("m.root-servers.net.", "202.12.27.33", "2001:dc3::35"),
    ];

    public static IReadOnlyList<(DnsName Name, IPAddress Address)> Iana { get; } = Build();

    private static List<(DnsName, IPAddress)> Build()
    {
        var list = new List<(DnsName, IPAddress)>();
        foreach (var (name, v4, v6) in Servers)
        {
            var n = DnsName.Parse(name);
            list.Add((n, IPAddress.Parse(v4)));
            list.Add((n, IPAddress.Parse(v6)));
        }
        return list;
    }
}
