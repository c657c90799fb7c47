using System.Net;

namespace Portcullis.Testing;

/// <summary>
/// Unbound from Debian (<c>unbound -d</c>) as a validating iterative resolver over a
/// <see cref="SignedHierarchy"/>: <c>module-config: "validator iterator"</c>, root hints and
/// <c>trust-anchor-file</c> from the hierarchy (its root DS: no other anchor, no RFC 5011 updates),
/// <c>ede: yes</c> and <c>val-log-level: 2</c> (the reason of each failure in the answer's EDE text and
/// in <see cref="Log"/>), listening on and sending from the hierarchy's <see cref="SignedHierarchy.ResolverAddress"/>
/// port 53. Everything else keeps Unbound's defaults (an operator's baseline), except
/// <c>local-zone: "test." nodefault</c>: Unbound answers the RFC 6761 name "test." itself otherwise.
/// The constructor returns once Unbound answers; Dispose kills it and removes its directory.
/// </summary>
public sealed class SignedHierarchyUnbound(SignedHierarchy hierarchy) : UnboundProcess(
    new IPEndPoint(hierarchy.ResolverAddress, 53), "portcullis-validating-unbound-", 0x5302, directory =>
        UnboundConfig.Finish(UnboundConfig.Server($"{hierarchy.ResolverAddress}@53", directory, "127.0.0.0/8 allow", "validator iterator",
            $"outgoing-interface: {hierarchy.ResolverAddress}", $"root-hints: \"{hierarchy.RootHintsFile}\"",
            $"trust-anchor-file: \"{hierarchy.TrustAnchorFile}\"", "local-zone: \"test.\" nodefault", "ede: yes", "val-log-level: 2"), []));
