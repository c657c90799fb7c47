using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.Wire;

namespace Portcullis.Server.Resolution;

/// <summary>
/// The recursive resolver: iterative from the root (RFC 1034 §5.3.3) or forwarding, over one
/// shared <see cref="RecordCache"/>. Every upstream response is scrubbed before anything is cached
/// (RFC 2181 §5.4.1 bailiwick and ranking, RFC 5452 §6): only records at or below the zone the
/// answering server was asked as are kept, only the answer chain of the question is taken from the
/// answer section, NS only for a child of that zone, glue only for names inside the delegated zone.
/// Work per client question is bounded (queries, glueless NS lookups, CNAME steps, depth, time).
/// </summary>
public sealed partial class IterativeResolver : IRecursion, IDisposable
{
    /// <summary>Depth of nested resolutions (NS names of NS names...): BIND's max-recursion-depth.</summary>
    public const int MaxDepth = 7;
    /// <summary>NS names of one delegation considered (BIND max-delegation-servers).</summary>
    public const int MaxNsPerDelegation = 13;
    /// <summary>RFC 9156 §2.3: Unbound's MAX_MINIMISE_COUNT.</summary>
    public const int MaxMinimiseSteps = 10;
    private static readonly RecordType[] AddressTypes = [RecordType.A, RecordType.AAAA];

    private readonly ResolverOptions _options;
    private readonly IReadOnlyList<(DnsName Name, IPAddress Address)> _hints;
    private readonly List<(DnsName Zone, IReadOnlyList<IPEndPoint> Servers)> _forwarders;
    private readonly ConcurrentDictionary<(DnsName, RecordType, RecordClass), Task<ResolutionResult>> _inflight = new();
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private long _resolutions, _coalesced, _prefetches;

    public IterativeResolver(ResolverOptions options, TimeProvider? time = null) : this(options, time, null) { }

    /// <summary>The hosting's factory signature (RecursionFactory): options, clock, logger.</summary>
    public IterativeResolver(ResolverOptions options, TimeProvider? time, ILogger? logger)
    {
        _options = options;
        _logger = logger ?? NullLogger.Instance;
        _time = time ?? TimeProvider.System;
        Cache = new RecordCache(options, _time);
        Upstream = new UpstreamClient(options, _time);
        _hints = options.RootHints.Count > 0 ? options.RootHints : IanaRootHints.Iana;
        _forwarders = [];
        foreach (var (zone, servers) in options.Forwarders) _forwarders.Add((zone.ToLowerInvariant(), servers));
        // Longest match first (Unbound's forward-zone: the most specific zone wins).
        _forwarders.Sort((a, b) => b.Zone.LabelCount.CompareTo(a.Zone.LabelCount));
        Anchors = options.TrustAnchors;
        if (options.Prefetch)
            _prefetchTimer = _time.CreateTimer(_ => _ = RunPrefetchesAsync(CancellationToken.None), null, PrefetchPeriod, PrefetchPeriod);
    }

    /// <summary>How often the RRsets queued by hits near their expiry are refreshed.</summary>
    public static readonly TimeSpan PrefetchPeriod = TimeSpan.FromSeconds(1);
    private readonly ITimer? _prefetchTimer;

    public void Dispose() => _prefetchTimer?.Dispose();

    public RecordCache Cache { get; }
    public UpstreamClient Upstream { get; }
    /// <summary>Resolutions run, and client questions that joined one already running.</summary>
    public long Resolutions => Interlocked.Read(ref _resolutions);
    public long Coalesced => Interlocked.Read(ref _coalesced);

    public bool TryAnswerFromCache(scoped ReadOnlySpan<byte> qname, RecordType qtype, RecordClass qclass, bool dnssecOk, bool checkingDisabled,
        ref DnsMessageWriter w, out CacheAnswer answer) =>
        CacheAnswerer.TryAnswer(Cache, _options.MaxCnameChain, qname, qtype, qclass, dnssecOk, checkingDisabled, ref w, out answer);

    /// <summary>
    /// Identical questions running at once share one resolution (RFC 5452 §5: duplicates give a
    /// spoofer a birthday advantage); the resolution runs under its own timeout, so one client
    /// giving up does not fail the others.
    /// </summary>
    public async Task<ResolutionResult> ResolveAsync(ResolverQuestion question, CancellationToken token)
    {
        var key = (question.Name.ToLowerInvariant(), question.Type, question.Class);
        var tcs = new TaskCompletionSource<ResolutionResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        var running = _inflight.GetOrAdd(key, tcs.Task);
        if (running != tcs.Task)
        {
            Interlocked.Increment(ref _coalesced);
            return await running.WaitAsync(token).ConfigureAwait(false);
        }
        Interlocked.Increment(ref _resolutions);
        _ = RunAsync(question, key, tcs);
        return await tcs.Task.WaitAsync(token).ConfigureAwait(false);
    }

    private async Task RunAsync(ResolverQuestion q, (DnsName, RecordType, RecordClass) key, TaskCompletionSource<ResolutionResult> tcs,
        bool refresh = false)
    {
        ResolutionResult result;
        using var cts = new CancellationTokenSource(_options.ResolutionTimeout);
        var ctx = new Context(cts.Token);
        try
        {
            result = await ResolveChainAsync(q.Name, q.Type, q.Class, ctx, refresh).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            result = Fail("resolution timed out", 22);
        }
        catch (Exception e)
        {
            // Whatever went wrong, the clients waiting on this resolution get their SERVFAIL.
            result = Fail("resolution failed: " + e.Message, 23);
        }
        if (result.Rcode == Rcode.ServFail && _options.ServeStale)
        {
            // RFC 8767 §4: every upstream failed; expired data within the stale window is better
            // than nothing, with a short TTL and EDE 3 (Stale Answer).
            var stale = FollowCacheChain(q.Name, q.Type, q.Class, allowStale: true);
            if (stale is not null) result = stale;
        }
        if (result.Rcode == Rcode.ServFail && _logger.IsEnabled(LogLevel.Debug))
            _logger.LogDebug("resolving {Name} {Type}: {Failure}", q.Name, q.Type, result.Failure);
        _inflight.TryRemove(new KeyValuePair<(DnsName, RecordType, RecordClass), Task<ResolutionResult>>(key, tcs.Task));
        tcs.TrySetResult(result);
    }

    /// <summary>
    /// Refreshes the RRsets that cache hits queued in the last tenth of their TTL (Unbound's
    /// prefetch), asking upstream even though the cache still holds them. The hosting calls it
    /// periodically (tests call it directly); returns how many were refreshed.
    /// </summary>
    public async Task<int> RunPrefetchesAsync(CancellationToken token)
    {
        var due = Cache.TakePrefetches();
        var runs = new List<Task<ResolutionResult>>();
        foreach (var e in due)
        {
            var q = new ResolverQuestion(DnsName.FromWire(e.Owner), e.Type, e.Class);
            var key = (q.Name.ToLowerInvariant(), q.Type, q.Class);
            var tcs = new TaskCompletionSource<ResolutionResult>(TaskCreationOptions.RunContinuationsAsynchronously);
            if (!_inflight.TryAdd(key, tcs.Task)) continue;
            Interlocked.Increment(ref _prefetches);
            _ = RunAsync(q, key, tcs, refresh: true);
            runs.Add(tcs.Task);
        }
        await Task.WhenAll(runs).WaitAsync(token).ConfigureAwait(false);
        return runs.Count;
    }

    public long Prefetches => Interlocked.Read(ref _prefetches);

    private static ResolutionResult Fail(string why, ushort ede) => new() { Rcode = Rcode.ServFail, Failure = why, Ede = ede };

    private sealed class Context(CancellationToken token)
    {
        public CancellationToken Token { get; } = token;
        public int Queries;
        public int Depth;
        public readonly HashSet<(DnsName, RecordType)> InProgress = [];
        /// <summary>Zone cuts whose keys this resolution is establishing (a chain of trust that needs itself is bogus).</summary>
        public readonly HashSet<DnsName> CutsInProgress = [];
        /// <summary>Signature verifications this question has caused (bounded: MaxVerificationsPerQuestion).</summary>
        public int Verifications;
        /// <summary>While the chain of trust fetches a zone's DNSKEY RRset: the zone and the check the key set must pass.</summary>
        public (DnsName Zone, Func<DnsMessage, bool> Accept)? KeyCheck;
    }

    private enum Kind { Answer, Cname, NxDomain, NoData, Referral, Lame, Fail }

    /// <summary>
    /// One step's result. <see cref="Records"/> of an answer carry the RRSIGs after the RRsets they
    /// cover; <see cref="Proof"/> is a negative answer's denial (SOA RRSIGs, NSEC/NSEC3 and theirs);
    /// <see cref="Validation"/> and <see cref="Reason"/> the validator's verdict.
    /// </summary>
    private sealed record Outcome(Kind Kind, List<ResourceRecord> Records, ResourceRecord? Soa = null, DnsName? Target = null,
        DnsName? Zone = null, string? Failure = null)
    {
        public ValidationState Validation { get; init; }
        public int Reason { get; init; } = -1;
        public List<ResourceRecord> Proof { get; init; } = [];
    }

    /// <summary>Resolves a name, following CNAMEs across zones up to MaxCnameChain (RFC 1034 §3.6.2).</summary>
    private async Task<ResolutionResult> ResolveChainAsync(DnsName name, RecordType type, RecordClass @class, Context ctx, bool refresh = false)
    {
        var answer = new List<ResourceRecord>();
        var seen = new HashSet<DnsName> { name };
        var current = name;
        // The chain is as secure as its weakest step; the first bogus step gives the reason.
        var validation = ValidationState.Secure;
        int reason = -1;
        for (int step = 0; step <= _options.MaxCnameChain; step++)
        {
            var o = await ResolveOneAsync(current, type, @class, ctx, refresh && step == 0).ConfigureAwait(false);
            if (o.Kind is Kind.Answer or Kind.NxDomain or Kind.NoData or Kind.Cname)
            {
                if (Weaker(o.Validation, validation)) { validation = o.Validation; reason = o.Reason; }
            }
            switch (o.Kind)
            {
                case Kind.Answer:
                    answer.AddRange(o.Records);
                    return Resolved(Rcode.NoError, answer, [], validation, reason);
                case Kind.NxDomain:
                case Kind.NoData:
                    answer.AddRange(o.Records);
                    var authority = new List<ResourceRecord>();
                    if (o.Soa is not null) { authority.Add(o.Soa); authority.AddRange(o.Proof); }
                    return Resolved(o.Kind == Kind.NxDomain ? Rcode.NXDomain : Rcode.NoError, answer, authority, validation, reason);
                case Kind.Cname:
                    answer.AddRange(o.Records);
                    current = o.Target!;
                    // A loop ends the chain as a failure (RFC 1034 §3.6.2 forbids it).
                    if (!seen.Add(current)) return Fail("CNAME loop", 22);
                    continue;
                default:
                    return Fail(o.Failure ?? "no server answered", 22);
            }
        }
        return Fail("CNAME chain too long", 22);
    }

    /// <summary>One name's data, from the cache or upstream; <paramref name="validate"/> false only for the chain of trust's own DNSKEY fetches.</summary>
    private async Task<Outcome> ResolveOneAsync(DnsName name, RecordType type, RecordClass @class, Context ctx, bool refresh, bool validate = true)
    {
        var cached = refresh ? null : FromCache(name, type, @class, allowStale: false);
        if (cached is not null) return cached;
        if (validate && !refresh && FromNsecRanges(name, type, @class) is { } synthesised) return synthesised;
        foreach (var (zone, servers) in _forwarders)
            if (name.IsSubdomainOf(zone)) return await ForwardAsync(name, type, @class, servers, ctx, validate).ConfigureAwait(false);
        return await IterateAsync(name, type, @class, ctx, validate).ConfigureAwait(false);
    }

    /// <summary>One step from the cache: the RRset, a negative entry or a CNAME (client-visible ranks only).</summary>
    private Outcome? FromCache(DnsName name, RecordType type, RecordClass @class, bool allowStale)
    {
        long now = Cache.NowMs;
        uint Ttl(CacheEntry e) => allowStale ? (uint)_options.StaleAnswerTtl.TotalSeconds : RecordCache.RemainingTtl(e, now);
        if (Cache.TryGet(name.Wire, type, @class, now, allowStale, out var e) && e.Rank >= TrustRank.NonAuthAnswer)
        {
            if (e.Kind == CacheEntryKind.Positive)
                return new Outcome(Kind.Answer, e.ToRecords(Ttl(e), withSignatures: true)) { Validation = e.Validation, Reason = e.Reason };
            if (e.Kind == CacheEntryKind.NoData)
                return new Outcome(Kind.NoData, [], e.SoaRecord(Ttl(e))) { Validation = e.Validation, Reason = e.Reason, Proof = e.ProofToRecords(Ttl(e)) };
        }
        if (Cache.TryGetNxDomain(name.Wire, @class, now, allowStale, out var nx) && nx.Rank >= TrustRank.NonAuthAnswer)
            return new Outcome(Kind.NxDomain, [], nx.SoaRecord(Ttl(nx))) { Validation = nx.Validation, Reason = nx.Reason, Proof = nx.ProofToRecords(Ttl(nx)) };
        if (type != RecordType.CNAME && Cache.TryGet(name.Wire, RecordType.CNAME, @class, now, allowStale, out var c)
            && c.Kind == CacheEntryKind.Positive && c.Rank >= TrustRank.NonAuthAnswer)
        {
            var records = c.ToRecords(Ttl(c), withSignatures: true);
            var target = DnsName.FromWire(records[0].Data);
            if (c.Dname is { } dname) records.InsertRange(0, dname.ToRecords(Ttl(c), withSignatures: true));
            return new Outcome(Kind.Cname, records, Target: target) { Validation = c.Validation, Reason = c.Reason };
        }
        return null;
    }

    /// <summary>A whole answer from the cache (for serve-stale): the chain and the final step, or null.</summary>
    private ResolutionResult? FollowCacheChain(DnsName name, RecordType type, RecordClass @class, bool allowStale)
    {
        var answer = new List<ResourceRecord>();
        var current = name;
        var validation = ValidationState.Secure;
        for (int step = 0; step <= _options.MaxCnameChain; step++)
        {
            var o = FromCache(current, type, @class, allowStale);
            if (o is null) return null;
            // Stale bogus data is no better than fresh bogus data: never served stale.
            if (o.Validation == ValidationState.Bogus) return null;
            if (Weaker(o.Validation, validation)) validation = o.Validation;
            answer.AddRange(o.Records);
            if (o.Kind == Kind.Cname) { current = o.Target!; continue; }
            var authority = new List<ResourceRecord>();
            if (o.Soa is not null) { authority.Add(o.Soa); authority.AddRange(o.Proof); }
            return new ResolutionResult
            {
                Rcode = o.Kind == Kind.NxDomain ? Rcode.NXDomain : Rcode.NoError,
                Answer = answer,
                Authority = authority,
                Ede = allowStale ? (ushort)3 : null,
                Validation = validation,
            };
        }
        return null;
    }

    // ---------------------------------------------------------------- forwarding

    /// <summary>
    /// Asks the forwarders in RTT order. A forwarder resolves for us and may take its time (it
    /// recurses, or holds queries as a long-polling server does), so one that times out is asked
    /// again with its backed-off timeout, up to <see cref="ForwardAttempts"/> rounds in all (as
    /// Unbound's outbound-msg-retry), within the resolution's own deadline.
    /// </summary>
    private async Task<Outcome> ForwardAsync(DnsName name, RecordType type, RecordClass @class, IReadOnlyList<IPEndPoint> servers, Context ctx,
        bool validate)
    {
        IReadOnlyList<IPEndPoint> round = servers;
        var askedBogus = new HashSet<IPEndPoint>();
        (DnsMessage Message, Verdict Verdict)? bogus = null;
        for (int attempt = 0; attempt < ForwardAttempts && round.Count > 0; attempt++)
        {
            var timedOut = new List<IPEndPoint>();
            foreach (var server in OrderServers(round))
            {
                if (askedBogus.Contains(server)) continue;
                if (!Spend(ctx)) return new Outcome(Kind.Fail, [], Failure: "query budget exhausted");
                var r = await Upstream.QueryAsync(server, name, type, @class, recursionDesired: true, ctx.Token).ConfigureAwait(false);
                if (r.Message is null)
                {
                    if (r.Status == UpstreamStatus.Timeout) timedOut.Add(server);
                    continue;
                }
                // A forwarder is trusted for what it answers (it resolved it): zone = the root, ranks
                // of a non-authoritative answer (RFC 2181 §5.4.1). Not for its DNSSEC: we validate.
                var verdict = validate ? await ValidateAsync(r.Message, DnsName.Root, name, type, @class, forwarded: true, ctx).ConfigureAwait(false)
                    : KeysRejected(ctx, r.Message, name, type, answer: true) ? RawVerdict with { State = ValidationState.Bogus } : RawVerdict;
                // The chain of trust could not be built now (a server unreachable, a budget spent): not cached, not judged.
                if (verdict.Transient) return new Outcome(Kind.Fail, [], Failure: "DNSSEC chain of trust unavailable");
                // A bogus answer from one forwarder: the others are asked before it is believed.
                if (verdict.State == ValidationState.Bogus && askedBogus.Count < MaxBogusRetries && askedBogus.Add(server))
                {
                    bogus ??= (r.Message, verdict);
                    continue;
                }
                var o = Classify(r.Message, DnsName.Root, name, type, @class, forwarded: true, verdict);
                if (o.Kind is Kind.Answer or Kind.Cname or Kind.NxDomain or Kind.NoData) return o;
            }
            round = timedOut;
        }
        if (bogus is { } b) return Classify(b.Message, DnsName.Root, name, type, @class, forwarded: true, b.Verdict);
        return new Outcome(Kind.Fail, [], Failure: "no forwarder answered");
    }

    /// <summary>Other servers of a zone asked after a bogus answer, before it is accepted as the zone's.</summary>
    internal const int MaxBogusRetries = 2;

    /// <summary>Rounds of queries to forwarders that time out (Unbound's outbound-msg-retry is 5).</summary>
    internal const int ForwardAttempts = 5;

    // ---------------------------------------------------------------- iteration

    private async Task<Outcome> IterateAsync(DnsName name, RecordType type, RecordClass @class, Context ctx, bool validate)
    {
        var (zone, ns) = await ClosestDelegationAsync(name, type, @class, ctx).ConfigureAwait(false);
        bool minimise = _options.QnameMinimisation && type != RecordType.DS;
        int known = zone.LabelCount;
        int minimiseSteps = 0;
        for (int referrals = 0; referrals < 32; referrals++)
        {
            ctx.Token.ThrowIfCancellationRequested();
            // RFC 9156 §3: ask the next label down with type NS until the full name is reached.
            DnsName askName = name;
            RecordType askType = type;
            if (minimise && known < name.LabelCount && minimiseSteps < MaxMinimiseSteps)
            {
                askName = name.Parent(name.LabelCount - (known + 1));
                if (askName.LabelCount < name.LabelCount) askType = RecordType.NS;
                else askName = name;
            }
            bool minimised = askName.LabelCount < name.LabelCount;
            var o = await QueryZoneAsync(zone, ns, askName, askType, @class, ctx, validate).ConfigureAwait(false);
            if (minimised)
            {
                minimiseSteps++;
                switch (o.Kind)
                {
                    case Kind.Referral:
                        zone = o.Zone!; ns = o.Records; known = zone.LabelCount;
                        continue;
                    case Kind.Answer when o.Records.Count > 0 && o.Records[0].Type == RecordType.NS:
                        // Same servers for parent and child: an authoritative NS answer is the cut. The
                        // child's NS names may have no known address (no referral brought glue): then the
                        // servers that just answered for the child go on serving it.
                        zone = askName; known = zone.LabelCount;
                        if (o.Records.Exists(r => r.Type == RecordType.NS && CachedAddresses(DnsName.FromWire(r.Data), @class).Count > 0))
                            ns = o.Records;
                        continue;
                    case Kind.NoData:
                    case Kind.Answer:
                        // An empty non-terminal or a name without a cut: one label further down.
                        known = askName.LabelCount;
                        continue;
                    default:
                        // RFC 9156 §2.3 relaxed: NXDOMAIN for an intermediate name (broken ENT
                        // handling), a CNAME or an error: ask the full name instead.
                        minimise = false;
                        continue;
                }
            }
            switch (o.Kind)
            {
                case Kind.Referral:
                    zone = o.Zone!; ns = o.Records; known = zone.LabelCount;
                    continue;
                case Kind.Lame:
                    return new Outcome(Kind.Fail, [], Failure: o.Failure ?? $"no server for {zone} answered");
                default:
                    return o;
            }
        }
        return new Outcome(Kind.Fail, [], Failure: "too many referrals");
    }

    /// <summary>The deepest zone whose NS RRset is cached (any rank: referral data is enough to follow), else the primed root.</summary>
    private async Task<(DnsName Zone, List<ResourceRecord> Ns)> ClosestDelegationAsync(DnsName name, RecordType type, RecordClass @class, Context ctx)
    {
        long now = Cache.NowMs;
        // DS lives in the parent (RFC 4035 §3.1.4.1): start above the name for it.
        var start = type == RecordType.DS && !name.IsRoot ? name.Parent() : name;
        for (var n = start; !n.IsRoot; n = n.Parent())
        {
            if (Cache.TryGet(n.Wire, RecordType.NS, @class, now, false, out var e) && e.Kind == CacheEntryKind.Positive)
                return (DnsName.FromWire(e.Owner), e.ToRecords(RecordCache.RemainingTtl(e, now)));
        }
        return (DnsName.Root, await PrimeAsync(@class, ctx).ConfigureAwait(false));
    }

    /// <summary>
    /// RFC 8109: the root NS RRset and its addresses come from a root server, asked ". NS" at one of
    /// the hints; until that works, the hints themselves are used.
    /// </summary>
    private async Task<List<ResourceRecord>> PrimeAsync(RecordClass @class, Context ctx)
    {
        long now = Cache.NowMs;
        if (Cache.TryGet(DnsName.Root.Wire, RecordType.NS, @class, now, false, out var e) && e.Kind == CacheEntryKind.Positive)
            return e.ToRecords(RecordCache.RemainingTtl(e, now));
        var hintNs = new List<ResourceRecord>();
        var seen = new HashSet<DnsName>();
        foreach (var (n, _) in _hints)
            if (seen.Add(n)) hintNs.Add(new ResourceRecord(n, RecordType.NS, @class, 0, n.Wire.ToArray()));
        var endpoints = new List<IPEndPoint>();
        foreach (var (_, a) in _hints) endpoints.Add(new IPEndPoint(a, _options.UpstreamPort));
        foreach (var server in OrderServers(endpoints))
        {
            if (!Spend(ctx)) break;
            var r = await Upstream.QueryAsync(server, DnsName.Root, RecordType.NS, @class, false, ctx.Token).ConfigureAwait(false);
            if (r.Message is null || r.Message.Rcode != Rcode.NoError || !r.Message.Header.AuthoritativeAnswer) continue;
            var rootNs = r.Message.Answers.FindAll(x => x.Type == RecordType.NS && x.Owner.IsRoot);
            if (rootNs.Count == 0) continue;
            // Without validation, served as any authoritative answer; with it, first kept for the
            // resolver's own use only (rank Additional) and made visible to clients with its verdict.
            Cache.AddRRset(rootNs, Anchors is null ? TrustRank.AuthAnswer : TrustRank.Additional);
            // Every name is inside the root's bailiwick; keep the addresses of the root servers only.
            foreach (var set in GroupRRsets(r.Message.Additional))
                if (set[0].Type is RecordType.A or RecordType.AAAA && rootNs.Exists(x => DnsName.FromWire(x.Data) == set[0].Owner))
                    Cache.AddRRset(set, TrustRank.Additional);
            // Validated once cached (the root's keys are fetched through these servers), then kept
            // with its verdict for clients asking ". NS".
            if (Anchors is not null)
            {
                var verdict = await ValidateAsync(r.Message, DnsName.Root, DnsName.Root, RecordType.NS, @class, forwarded: false, ctx).ConfigureAwait(false);
                if (!verdict.Transient)
                    Cache.AddRRset(rootNs, TrustRank.AuthAnswer, verdict.State, Signatures(r.Message.Answers, rootNs[0]), verdict.Reason, verdict.MaxTtl);
            }
            return rootNs;
        }
        // Priming failed: work from the hints (their addresses are used directly below).
        return hintNs;
    }

    /// <summary>
    /// Sends the question to the servers of <paramref name="zone"/>, best RTT first, dead servers
    /// last; a lame answer (REFUSED, SERVFAIL, not authoritative, referral upwards) moves on to
    /// the next server. Glueless NS names are resolved as needed, at most
    /// MaxNsNamesResolvedPerDelegation of them (NXNSAttack).
    /// </summary>
    private async Task<Outcome> QueryZoneAsync(DnsName zone, List<ResourceRecord> ns, DnsName askName, RecordType askType,
        RecordClass @class, Context ctx, bool validate)
    {
        var names = new List<DnsName>();
        foreach (var r in ns)
            if (r.Type == RecordType.NS && names.Count < MaxNsPerDelegation) names.Add(DnsName.FromWire(r.Data));
        var tried = new HashSet<IPEndPoint>();
        string? failure = null;
        // First the servers with known addresses, then glueless names one at a time.
        var addresses = new List<IPEndPoint>();
        var glueless = new List<DnsName>();
        foreach (var n in names)
        {
            var a = CachedAddresses(n, @class);
            if (a.Count > 0) addresses.AddRange(a); else glueless.Add(n);
        }
        if (zone.IsRoot && addresses.Count == 0)
            foreach (var (_, address) in _hints) addresses.Add(new IPEndPoint(address, _options.UpstreamPort));
        int resolvedNames = 0, retries = 0, bogusTried = 0;
        (DnsMessage Message, Verdict Verdict)? bogus = null;
        while (true)
        {
            var timedOut = new List<IPEndPoint>();
            foreach (var server in OrderServers(addresses))
            {
                if (!tried.Add(server)) continue;
                if (!Spend(ctx)) return new Outcome(Kind.Fail, [], Failure: "query budget exhausted");
                var r = await Upstream.QueryAsync(server, askName, askType, @class, recursionDesired: false, ctx.Token).ConfigureAwait(false);
                if (r.Message is null)
                {
                    failure = $"{server}: {r.Status}";
                    if (r.Status == UpstreamStatus.Timeout) timedOut.Add(server);
                    continue;
                }
                var verdict = validate ? await ValidateAsync(r.Message, zone, askName, askType, @class, forwarded: false, ctx).ConfigureAwait(false)
                    : KeysRejected(ctx, r.Message, askName, askType, answer: r.Message.Header.AuthoritativeAnswer) ? RawVerdict with { State = ValidationState.Bogus } : RawVerdict;
                if (verdict.Transient) return new Outcome(Kind.Fail, [], Failure: "DNSSEC chain of trust unavailable");
                // A bogus answer may be one broken server's (or a spoofer's): the zone's other servers
                // are asked too, up to MaxBogusRetries, before the bogus one is taken (as Unbound does).
                if (verdict.State == ValidationState.Bogus && bogusTried++ < MaxBogusRetries)
                {
                    bogus ??= (r.Message, verdict);
                    failure = $"{server}: bogus answer";
                    continue;
                }
                var o = Classify(r.Message, zone, askName, askType, @class, forwarded: false, verdict);
                if (o.Kind != Kind.Lame) return o;
                failure = $"{server}: lame for {zone} ({r.Message.Rcode})";
            }
            // Servers that timed out get one more try each, with their doubled RTO (lost packets).
            if (timedOut.Count > 0 && retries++ < 1)
            {
                foreach (var s in timedOut) tried.Remove(s);
                addresses = timedOut;
                continue;
            }
            // Every known address failed: resolve the next glueless NS name, if the limits allow.
            if (glueless.Count == 0 || resolvedNames >= _options.MaxNsNamesResolvedPerDelegation || ctx.Depth >= MaxDepth || bogus is not null)
            {
                // No server had better than the bogus answer: that is the answer (cached as bogus).
                if (bogus is { } b) return Classify(b.Message, zone, askName, askType, @class, forwarded: false, b.Verdict);
                return new Outcome(Kind.Lame, [], Failure: failure ?? $"no address for the servers of {zone}");
            }
            var target = glueless[0];
            glueless.RemoveAt(0);
            resolvedNames++;
            addresses = await ResolveAddressesAsync(target, @class, ctx).ConfigureAwait(false);
        }
    }

    private async Task<List<IPEndPoint>> ResolveAddressesAsync(DnsName name, RecordClass @class, Context ctx)
    {
        var result = new List<IPEndPoint>();
        foreach (var t in AddressTypes)
        {
            var key = (name.ToLowerInvariant(), t);
            // A name whose own resolution needs itself (NS inside its zone, no glue) ends here.
            if (!ctx.InProgress.Add(key)) continue;
            ctx.Depth++;
            try
            {
                var r = await ResolveChainAsync(name, t, @class, ctx).ConfigureAwait(false);
                foreach (var rr in r.Answer)
                    if (rr.Type == t) result.Add(new IPEndPoint(new IPAddress(rr.Data), _options.UpstreamPort));
                // The name does not exist (NXNSAttack's usual fodder): no point asking for AAAA.
                if (r.Rcode == Rcode.NXDomain) break;
            }
            finally
            {
                ctx.Depth--;
                ctx.InProgress.Remove(key);
            }
            if (result.Count > 0) break;
        }
        return result;
    }

    private List<IPEndPoint> CachedAddresses(DnsName name, RecordClass @class)
    {
        var list = new List<IPEndPoint>();
        long now = Cache.NowMs;
        foreach (var t in (ReadOnlySpan<RecordType>)[RecordType.A, RecordType.AAAA])
            if (Cache.TryGet(name.Wire, t, @class, now, false, out var e) && e.Kind == CacheEntryKind.Positive)
                foreach (var rdata in e.Rdatas)
                    if (rdata.Length is 4 or 16) list.Add(new IPEndPoint(new IPAddress(rdata), _options.UpstreamPort));
        return list;
    }

    /// <summary>Live servers by RTO (ties in random order), dead ones (Unbound's infra cache) after them.</summary>
    private List<IPEndPoint> OrderServers(IReadOnlyList<IPEndPoint> servers)
    {
        long now = Upstream.NowMs;
        var list = new List<(IPEndPoint Ep, int Rank)>();
        foreach (var s in servers)
        {
            var st = Upstream.State(s.Address);
            list.Add((s, (st.IsDead(now) ? 1_000_000 : 0) + st.RtoMs + Random.Shared.Next(20)));
        }
        list.Sort((a, b) => a.Rank.CompareTo(b.Rank));
        return list.ConvertAll(x => x.Ep);
    }

    private bool Spend(Context ctx) => Interlocked.Increment(ref ctx.Queries) <= _options.MaxQueriesPerResolution;

    // ---------------------------------------------------------------- scrubbing

    /// <summary>
    /// Classifies a response from a server asked as authoritative for <paramref name="zone"/> and
    /// caches what survives the scrub (RFC 2181 §5.4.1, RFC 5452 §6):
    /// answer section — only the chain from the question's name (CNAMEs, a DNAME whose CNAME we
    /// synthesise ourselves), at or below the zone; authority — an SOA of the zone for a negative
    /// answer, or NS of a child zone that contains the name (a referral); additional — A/AAAA of
    /// the referral's NS names inside the delegated zone, nothing else.
    /// </summary>
    private Outcome Classify(DnsMessage m, DnsName zone, DnsName qname, RecordType qtype, RecordClass @class, bool forwarded, Verdict verdict)
    {
        var outcome = ClassifyAndCache(m, zone, qname, qtype, @class, forwarded, verdict);
        // A response the validator let pass as a referral that turned out to be an answer: never unjudged.
        if (verdict.Skipped && outcome.Kind is Kind.Answer or Kind.Cname or Kind.NxDomain or Kind.NoData)
            return new Outcome(Kind.Fail, [], Failure: "unvalidated answer") { Validation = ValidationState.Bogus };
        return outcome;
    }

    private Outcome ClassifyAndCache(DnsMessage m, DnsName zone, DnsName qname, RecordType qtype, RecordClass @class, bool forwarded, Verdict verdict)
    {
        // The chain of trust's own DNSKEY fetches (and an unjudged skip) store nothing: what they
        // get is judged by the caller, which caches the DNSKEY RRset with its verdict.
        var cache = verdict.Raw || verdict.Skipped ? RecordCache.Discarding : Cache;
        // A bogus response is remembered (60 s) for the question only: the rest of its chain may be
        // an attacker's, and must not deny other names that were never asked.
        RecordCache Step(DnsName owner) => verdict.State == ValidationState.Bogus && owner != qname ? RecordCache.Discarding : cache;
        var rcode = m.Rcode;
        if (rcode is not (Rcode.NoError or Rcode.NXDomain)) return new Outcome(Kind.Lame, [], Failure: rcode.ToString());
        bool aa = m.Header.AuthoritativeAnswer || forwarded;
        var answerRank = m.Header.AuthoritativeAnswer && !forwarded ? TrustRank.AuthAnswer : TrustRank.NonAuthAnswer;
        var sets = GroupRRsets(m.Answers);
        var chain = new List<ResourceRecord>();
        var current = qname;
        for (int step = 0; step <= _options.MaxCnameChain; step++)
        {
            if (!current.IsSubdomainOf(zone)) break;
            var final = sets.Find(s => s[0].Owner == current && s[0].Class == @class && (s[0].Type == qtype || qtype == RecordType.ANY));
            if (final is not null)
            {
                if (!aa) break;
                var sigs = Signatures(m.Answers, final[0]);
                Step(current).AddRRset(final, answerRank, verdict.State, sigs, verdict.Reason, verdict.MaxTtl);
                chain.AddRange(final);
                chain.AddRange(sigs);
                return new Outcome(Kind.Answer, chain) { Validation = verdict.State, Reason = verdict.Reason };
            }
            var dname = sets.Find(s => s[0].Type == RecordType.DNAME && s[0].Class == @class && current.IsSubdomainOf(s[0].Owner)
                && current != s[0].Owner && s[0].Owner.IsSubdomainOf(zone));
            if (dname is not null && aa)
            {
                // RFC 6672 §2.2: the CNAME is synthesised here from the DNAME, never taken from the wire
                // (a DNAME above the name comes first: a wire CNAME beside it is the server's synthesis,
                // unsigned, and the validator follows the DNAME too).
                var d = dname[0];
                if (!current.TrySubstitute(d.Owner, DnsName.FromWire(d.Data), out var substituted))
                    return new Outcome(Kind.Fail, chain, Failure: "DNAME substitution too long (YXDOMAIN)");
                var wire = substituted.Wire.ToArray();
                var synthesised = new ResourceRecord(current, RecordType.CNAME, @class, d.Ttl, wire);
                var sigs = Signatures(m.Answers, d);
                var dnameEntry = Step(current).Put([d], answerRank, verdict.State, sigs, verdict.Reason, verdict.MaxTtl);
                // The synthesised CNAME carries no signature of its own: it is cached with the DNAME
                // entry it came from, which goes out before it (signed) on every cache hit. Without
                // that entry (not stored) it is never answered as secure.
                Step(current).AddRRset([synthesised], answerRank,
                    dnameEntry is null && verdict.State == ValidationState.Secure ? ValidationState.Insecure : verdict.State,
                    null, verdict.Reason, verdict.MaxTtl, dnameEntry);
                chain.Add(d);
                chain.AddRange(sigs);
                chain.Add(synthesised);
                current = DnsName.FromWire(wire);
                continue;
            }
            var cname = sets.Find(s => s[0].Owner == current && s[0].Type == RecordType.CNAME && s[0].Class == @class);
            if (cname is not null && aa)
            {
                var sigs = Signatures(m.Answers, cname[0]);
                Step(current).AddRRset(cname.GetRange(0, 1), answerRank, verdict.State, sigs, verdict.Reason, verdict.MaxTtl);
                chain.Add(cname[0]);
                chain.AddRange(sigs);
                current = DnsName.FromWire(cname[0].Data);
                continue;
            }
            break;
        }
        if (chain.Count > 0)
        {
            // The chain leaves the data this server may vouch for (or the target's data is not
            // here): resolve the target on its own.
            return new Outcome(Kind.Cname, chain, Target: current) { Validation = verdict.State, Reason = verdict.Reason };
        }
        ResourceRecord? soa = m.Authority.Find(r => r.Type == RecordType.SOA && r.Class == @class
            && r.Owner.IsSubdomainOf(zone) && qname.IsSubdomainOf(r.Owner));
        if (rcode == Rcode.NXDomain)
        {
            if (!aa) return new Outcome(Kind.Lame, [], Failure: "NXDOMAIN without AA");
            var proof = DenialProof(m, soa, verdict);
            // RFC 2308 §5: without the SOA a negative answer is not cached.
            if (soa is not null)
            {
                cache.AddNegative(qname, qtype, @class, nxDomain: true, soa, forwarded ? TrustRank.NonAuthAnswer : TrustRank.AuthAuthority,
                    verdict.State, proof, verdict.Reason, verdict.MaxTtl);
                KeepNsecRanges(soa, proof, verdict);
            }
            return new Outcome(Kind.NxDomain, [], NegativeSoa(soa)) { Validation = verdict.State, Reason = verdict.Reason, Proof = proof };
        }
        var nsSets = GroupRRsets(m.Authority).FindAll(s => s[0].Type == RecordType.NS && s[0].Class == @class);
        if (!forwarded && m.Answers.Count == 0 && soa is null && nsSets.Count > 0)
        {
            var ns = nsSets[0];
            var child = ns[0].Owner;
            // A referral must go down: to a child of the zone asked that contains the name.
            // Sideways or upwards it is a lame server (RFC 1034 §5.3.3 step 4; RFC 2181 §5.4.1).
            if (child.LabelCount <= zone.LabelCount || !child.IsSubdomainOf(zone) || !qname.IsSubdomainOf(child))
                return new Outcome(Kind.Lame, [], Failure: "referral not down the tree");
            if (ns.Count > 20) ns = ns.GetRange(0, 20);
            Cache.AddRRset(ns, TrustRank.Additional);   // referral data: followed, never served, never judged
            // Glue only for NS names inside the delegated zone (RFC 5452 §6, Unbound harden-glue).
            foreach (var set in GroupRRsets(m.Additional))
            {
                var owner = set[0].Owner;
                if (set[0].Type is not (RecordType.A or RecordType.AAAA) || set[0].Class != @class) continue;
                if (!owner.IsSubdomainOf(child)) continue;
                if (!ns.Exists(r => DnsName.FromWire(r.Data) == owner)) continue;
                Cache.AddRRset(set, TrustRank.Additional);
            }
            return new Outcome(Kind.Referral, ns, Zone: child);
        }
        if (aa)
        {
            var proof = DenialProof(m, soa, verdict);
            if (soa is not null)
            {
                cache.AddNegative(qname, qtype, @class, nxDomain: false, soa, forwarded ? TrustRank.NonAuthAnswer : TrustRank.AuthAuthority,
                    verdict.State, proof, verdict.Reason, verdict.MaxTtl);
                KeepNsecRanges(soa, proof, verdict);
            }
            return new Outcome(Kind.NoData, [], NegativeSoa(soa)) { Validation = verdict.State, Reason = verdict.Reason, Proof = proof };
        }
        return new Outcome(Kind.Lame, [], Failure: "not authoritative");
    }

    /// <summary>RFC 2308 §3: the SOA goes to the client with TTL min(SOA TTL, MINIMUM).</summary>
    private static ResourceRecord? NegativeSoa(ResourceRecord? soa)
    {
        if (soa is null || soa.Data.Length < 20) return soa;
        uint min = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(soa.Data.AsSpan(soa.Data.Length - 4));
        return soa.WithTtl(Math.Min(soa.Ttl, min));
    }

    /// <summary>Records grouped into RRsets by owner (without case), type and class, in the order first seen.</summary>
    private static List<List<ResourceRecord>> GroupRRsets(List<ResourceRecord> records)
    {
        var sets = new List<List<ResourceRecord>>();
        foreach (var r in records)
        {
            var set = sets.Find(s => s[0].Type == r.Type && s[0].Class == r.Class && s[0].Owner == r.Owner);
            if (set is null) sets.Add([r]);
            else if (!set.Exists(x => x.Data.AsSpan().SequenceEqual(r.Data))) set.Add(r);
        }
        return sets;
    }
}
