using System.Net;

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
/// <param name="serverFailForDeadZones">Tune Unbound so that a zone whose servers never answer ends in
/// SERVFAIL (see above); false keeps Unbound's defaults entirely (the client then gets no answer).</param>
public sealed class ResolverUnbound(DnsHierarchy hierarchy, bool serverFailForDeadZones = true) : UnboundProcess(
    new IPEndPoint(hierarchy.ResolverAddress, 53), "portcullis-resolver-unbound-", 0x5201, directory =>
    {
        var text = UnboundConfig.Server($"{hierarchy.ResolverAddress}@53", directory, "127.0.0.0/8 allow", "iterator",
            $"outgoing-interface: {hierarchy.ResolverAddress}", "qname-minimisation: yes", $"root-hints: \"{hierarchy.RootHintsFile}\"",
            "local-zone: \"test.\" nodefault");
        if (serverFailForDeadZones) text.Append("    discard-timeout: 0\n    infra-cache-max-rtt: 2000\n");
        return UnboundConfig.Finish(text, []);
    });
