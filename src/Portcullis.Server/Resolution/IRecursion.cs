using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.Wire;

namespace Portcullis.Server.Resolution;

/// <summary>A question for the resolver (the client's name, type and class).</summary>
public readonly record struct ResolverQuestion(DnsName Name, RecordType Type, RecordClass Class);

/// <summary>
/// What a resolution produced for the client: the sections to send (TTLs already what the client
/// should see), or a failure. <see cref="Ede"/> is an Extended DNS Error code (RFC 8914) to
/// attach when useful: 22 No Reachable Authority, 3 Stale Answer, 23 Network Error, ...
/// </summary>
public sealed class ResolutionResult
{
    public Rcode Rcode { get; init; } = Rcode.ServFail;
    /// <summary>CNAME/DNAME chain and the final RRset, in order.</summary>
    public IReadOnlyList<ResourceRecord> Answer { get; init; } = [];
    /// <summary>The SOA of a negative answer (RFC 2308 §3).</summary>
    public IReadOnlyList<ResourceRecord> Authority { get; init; } = [];
    public ushort? Ede { get; init; }
    /// <summary>
    /// The DNSSEC verdict on the data (the weakest of the responses it came from): Secure sets AD
    /// for clients that asked (DO or AD); Bogus is answered SERVFAIL with <see cref="Ede"/>, except
    /// to a CD=1 client, which gets the data (RFC 4035 §3.2.2). Unchecked when validation is off.
    /// </summary>
    public ValidationState Validation { get; init; }
    /// <summary>Why it failed, for the log and the EDE text.</summary>
    public string? Failure { get; init; }
}

/// <summary>
/// The recursive side of the server, as the query pipeline sees it: a cache that answers on the
/// receive thread without allocating, and a resolution that runs off it. Implemented by the
/// resolver (iterative from the root, or forwarding); the pipeline admits only clients that
/// allow-recursion lets in and never asks it about names in the zones served.
/// </summary>
public interface IRecursion
{
    /// <summary>
    /// Answers from the cache alone: writes the answer and authority sections after the question
    /// already in <paramref name="w"/> (CNAME chains followed within the cache, negative answers
    /// with their SOA; RRSIGs and denial proofs for <paramref name="dnssecOk"/>; bogus data as
    /// SERVFAIL unless <paramref name="checkingDisabled"/>) and returns true; false on a miss, with
    /// <paramref name="w"/> untouched. No allocation, no lock on a hit.
    /// </summary>
    bool TryAnswerFromCache(scoped ReadOnlySpan<byte> qname, RecordType qtype, RecordClass qclass, bool dnssecOk, bool checkingDisabled,
        ref DnsMessageWriter w, out CacheAnswer answer);

    /// <summary>Resolves (from the cache where it can, else upstream), filling the cache on the way.</summary>
    Task<ResolutionResult> ResolveAsync(ResolverQuestion question, CancellationToken token);
}
