using System.Net;
using Microsoft.Extensions.Logging;
using Portcullis.Protocol.Names;
using Portcullis.Server.Configuration;
using Portcullis.Server.Resolution;
using Portcullis.Server.Validation;

namespace Portcullis.Server.Hosting;

/// <summary>Builds the resolver from the configuration's recursion: section (options, clock, logger).</summary>
public delegate IRecursion RecursionFactory(ResolverOptions options, TimeProvider time, ILogger logger);

/// <summary>Recursion hosting: the resolver built from recursion:, handed to the query pipeline, rebuilt when reload changes it.</summary>
public sealed partial class DnsServer
{
    /// <summary>The resolver a server gets when its constructor is given none: the iterative resolver.</summary>
    public static RecursionFactory? DefaultRecursionFactory { get; } = (options, time, logger) => new IterativeResolver(options, time, logger);

    private RecursionFactory? _recursionFactory;
    private IRecursion? _recursion;
    /// <summary>The recursion: section the running resolver was built from (its options, compared on reload).</summary>
    private string? _recursionKey;

    /// <summary>The resolver serving recursion now, or null when recursion is off.</summary>
    public IRecursion? Recursion => _recursion;

    private void InitRecursion(RecursionFactory? factory)
    {
        _recursionFactory = factory ?? DefaultRecursionFactory;
        Processor.Stopping = _stopping.Token;
        Processor.RecursionLogger = _loggerFactory.CreateLogger("Portcullis.Recursion");
    }

    /// <summary>
    /// Builds (or keeps, when its section is unchanged) the resolver for <paramref name="config"/>
    /// and hands it to the pipeline; the one it replaces is disposed once swapped out (resolutions
    /// it is running finish on their own).
    /// </summary>
    private void ConfigureRecursion(ServerConfig config)
    {
        var r = config.Recursion;
        string? key = r.Enabled && _recursionFactory is not null ? Describe(r) : null;
        if (key == _recursionKey) return;
        IRecursion? fresh = null;
        if (key is not null)
        {
            fresh = _recursionFactory!(ResolverOptionsFrom(r, _time), _time, _loggerFactory.CreateLogger("Portcullis.Resolver"));
            if (fresh is IterativeResolver iterative) iterative.Upstream.Dnstap = Processor.Dnstap;
            _logger.LogInformation("recursion on for allow-recursion ({Acl}): {Mode}", Processor.Options.Security.Recursion.Description,
                r.Forwarders.Count > 0 ? $"forwarding to {string.Join(", ", r.Forwarders)}"
                    : r.RootHints is null ? "from the built-in root hints" : $"from the root hints in {r.RootHints}");
            _logger.LogInformation("DNSSEC validation: {Validation}", r.DnssecValidation
                ? $"on, trust anchors from {(fresh as IterativeResolver)?.Anchors?.Source ?? "the configuration"}" : "off (dnssec-validation: false)");
        }
        else if (r.Enabled && _recursionFactory is null)
            _logger.LogInformation("recursion is enabled but this build has no resolver: names outside the zones are refused");
        var old = _recursion;
        _recursion = fresh;
        _recursionKey = key;
        Processor.Recursion = fresh;
        StopAnchorUpdates();
        if (fresh is IterativeResolver resolver && r.DnssecValidation && r.AutoTrustAnchorFile is not null)
            StartAnchorUpdates(resolver, LoadTrustAnchors(r, _time).Auto!);
        (old as IDisposable)?.Dispose();
    }

    /// <summary>
    /// The trust anchors of the section: the files of trust-anchor-files (Debian's root.key, else the
    /// built-in root DS, when none is given and there is no auto-trust-anchor-file), the RFC 5011
    /// file's current keys, and the negative anchors. A problem names the file and line.
    /// </summary>
    public static (TrustAnchors Anchors, AutoTrustAnchor? Auto) LoadTrustAnchors(RecursionConfig r, TimeProvider time)
    {
        if (r.AutoTrustAnchorFile is not { } file) return (TrustAnchors.Load(r.TrustAnchorFiles, r.NegativeTrustAnchors), null);
        var others = r.TrustAnchorFiles.Count > 0
            ? TrustAnchors.Load(r.TrustAnchorFiles, r.NegativeTrustAnchors)
            : TrustAnchors.From([], r.NegativeTrustAnchors.Select(ServerConfig.AbsoluteName), "no other anchors");
        var auto = AutoTrustAnchor.Load(file, time, others);
        return (auto.Anchors, auto);
    }

    private CancellationTokenSource? _anchorUpdates;

    /// <summary>
    /// RFC 5011 §2.3: the anchored zone's DNSKEY RRset is fetched through the resolver when the
    /// refresh timer says, the state machine run and the file rewritten; the resolver validates with
    /// the new anchors from then on.
    /// </summary>
    private void StartAnchorUpdates(IterativeResolver resolver, AutoTrustAnchor auto)
    {
        var cts = new CancellationTokenSource();
        _anchorUpdates = cts;
        resolver.Anchors = auto.Anchors;
        _anchorLoop = Task.Run(async () =>
        {
            while (!cts.IsCancellationRequested)
            {
                TimeSpan next;
                try
                {
                    next = await auto.RefreshAsync(resolver.FetchDnskeysAsync, cts.Token).ConfigureAwait(false);
                    resolver.Anchors = auto.Anchors;
                    if (auto.LastChanges.Count > 0)
                        _logger.LogWarning("trust anchor {Zone} ({File}): {Changes}", auto.Zone, auto.File, string.Join("; ", auto.LastChanges));
                    if (auto.LastProblem is { } problem)
                        _logger.LogWarning("trust anchor {Zone} refresh: {Problem}", auto.Zone, problem);
                }
                catch (OperationCanceledException) { return; }
                catch (Exception e)
                {
                    _logger.LogError(e, "trust anchor {Zone} ({File}) could not be refreshed", auto.Zone, auto.File);
                    next = TimeSpan.FromHours(1);
                }
                try { await Task.Delay(next, _time, cts.Token).ConfigureAwait(false); }
                catch (OperationCanceledException) { return; }
            }
        });
    }

    private Task? _anchorLoop;

    /// <summary>
    /// Stops the refresh loop and waits for it to end (a refresh in flight is cancelled), so that
    /// the file is never written by an old loop once a new one (after a reload) owns it.
    /// </summary>
    private void StopAnchorUpdates()
    {
        if (_anchorUpdates is not { } cts) return;
        cts.Cancel();
        try { _anchorLoop?.Wait(TimeSpan.FromSeconds(10)); }
        catch (AggregateException) { }
        if (_anchorLoop is null || _anchorLoop.IsCompleted) cts.Dispose();
        _anchorUpdates = null;
        _anchorLoop = null;
    }

    private void DisposeRecursion()
    {
        StopAnchorUpdates();
        Processor.Recursion = null;
        (_recursion as IDisposable)?.Dispose();
        _recursion = null;
    }

    /// <summary>The recursion: section as the resolver's options (the configuration was validated: values parse).</summary>
    public static ResolverOptions ResolverOptionsFrom(RecursionConfig r, TimeProvider? time = null)
    {
        var forwarders = new Dictionary<DnsName, IReadOnlyList<IPEndPoint>>();
        foreach (var (zone, servers) in r.ForwardZones)
            forwarders[ServerConfig.AbsoluteName(zone)] = servers.Select(s => ConfigLoader.ParseForwarder(s, "forward-zones")).ToArray();
        if (r.Forwarders.Count > 0)
            forwarders[DnsName.Root] = r.Forwarders.Select(s => ConfigLoader.ParseForwarder(s, "forwarders")).ToArray();
        return new ResolverOptions
        {
            RootHints = r.RootHints is { } file ? RootHints.Load(file) : [],
            Forwarders = forwarders,
            CacheBytes = (long)r.CacheSize << 20,
            MinTtl = ServerConfig.ParseDuration(r.CacheMinTtl),
            MaxTtl = ServerConfig.ParseDuration(r.CacheMaxTtl),
            MaxNegativeTtl = ServerConfig.ParseDuration(r.CacheMaxNegativeTtl),
            QnameMinimisation = r.QnameMinimisation,
            OutgoingAddresses = r.OutgoingInterface.Select(System.Net.IPAddress.Parse).ToArray(),
            ServeStale = r.ServeStale,
            Prefetch = r.Prefetch,
            TrustAnchors = r.DnssecValidation ? LoadTrustAnchors(r, time ?? TimeProvider.System).Anchors : null,
            AllowSha1 = r.DnssecSha1,
            AggressiveNsec = r.AggressiveNsec,
        };
    }

    /// <summary>Everything in the section that the resolver is built from, as text (the root hints file by content).</summary>
    private static string Describe(RecursionConfig r) => string.Join("\n",
        r.RootHints ?? "", r.RootHints is { } f && File.Exists(f) ? File.ReadAllText(f) : "",
        string.Join(",", r.Forwarders),
        string.Join(";", r.ForwardZones.OrderBy(z => z.Key, StringComparer.OrdinalIgnoreCase).Select(z => z.Key + "=" + string.Join(",", z.Value))),
        r.CacheSize, r.CacheMinTtl, r.CacheMaxTtl, r.CacheMaxNegativeTtl, r.QnameMinimisation, r.ServeStale, r.Prefetch, string.Join(",", r.OutgoingInterface),
        r.DnssecValidation, r.AutoTrustAnchorFile, string.Join(",", r.TrustAnchorFiles), string.Join(",", r.TrustAnchorFiles.Select(f => File.Exists(f) ? File.ReadAllText(f) : "")),
        string.Join(",", r.NegativeTrustAnchors), r.DnssecSha1, r.AggressiveNsec);
}
