using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.Tsig;
using Portcullis.Protocol.Wire;
using Portcullis.Protocol.Zones;
using Portcullis.Server.Authoritative;
using Portcullis.Server.Configuration;
using Portcullis.Server.Policy;
using Portcullis.Server.Resolution;
using Portcullis.Server.Security;
using Portcullis.Server.Telemetry;
using Portcullis.Server.Transfer;
using Portcullis.Transport;

namespace Portcullis.Server.Pipeline;

/// <summary>The processing settings that can change on reload, swapped as one object.</summary>
public sealed class QueryProcessorOptions
{
    public int UdpMaxResponse { get; init; } = 1232;
    /// <summary>The compiled access lists.</summary>
    public SecurityPolicy Security { get; init; } = SecurityPolicy.Default;
    /// <summary>Server cookies (RFC 7873, RFC 9018), or null when cookies are off.</summary>
    public CookieAuthority? Cookies { get; init; }
    /// <summary>The cookie secret was made at start (none configured).</summary>
    public bool RandomCookieSecret { get; init; }
    /// <summary>BADCOOKIE over UDP for cookie-bearing queries without a valid server cookie.</summary>
    public bool RequireCookies { get; init; }
    /// <summary>Response rate limiting, or null when every rate is 0. Its table lives as long as its settings.</summary>
    public ResponseRateLimiter? Rrl { get; init; }
    /// <summary>Per-client query limit with temporary blocks, or null when off.</summary>
    public ClientRateLimiter? ClientLimiter { get; init; }
    /// <summary>TXT answers to CHAOS queries; null entries are REFUSED.</summary>
    public byte[]? ChaosVersion { get; init; }
    public byte[]? ChaosHostname { get; init; }
    public byte[]? ChaosServerId { get; init; }
    /// <summary>Outgoing zone transfers at once (BIND's transfers-out); one more gets SERVFAIL.</summary>
    public int TransfersOut { get; init; } = ZoneTransfers.DefaultLimit;
    /// <summary>Resolutions running at once (recursion: max-in-flight); one more is answered SERVFAIL at once.</summary>
    public int MaxResolutionsInFlight { get; init; } = RecursionConfig.DefaultMaxInFlight;

    public static QueryProcessorOptions From(ServerConfig c, LocalNetworks? local = null, QueryProcessorOptions? previous = null) => new()
    {
        Rrl = RrlSettingsFrom(c.RateLimit) is { } rrl
            ? previous?.Rrl?.Settings == rrl ? previous.Rrl : new ResponseRateLimiter(rrl)
            : null,
        ClientLimiter = ClientLimitSettingsFrom(c.ClientLimit) is { } cl
            ? previous?.ClientLimiter?.Settings == cl ? previous.ClientLimiter : new ClientRateLimiter(cl)
            : null,
        UdpMaxResponse = c.Limits.UdpMaxResponse,
        TransfersOut = c.Limits.TransfersOut,
        MaxResolutionsInFlight = c.Recursion.MaxInFlight,
        Security = SecurityPolicy.From(c, local ?? LocalNetworks.FromSystem()),
        Cookies = !c.Cookies.Enabled ? null
            : c.Cookies.Secret is { } secret ? new CookieAuthority(Convert.FromHexString(secret),
                c.Cookies.PreviousSecret is { } previousSecret ? Convert.FromHexString(previousSecret) : default)
            // A random secret (none configured) lives as long as the process, across reloads.
            : previous?.Cookies is { } kept && previous.RandomCookieSecret ? kept : CookieAuthority.CreateRandom(),
        RandomCookieSecret = c.Cookies.Enabled && c.Cookies.Secret is null,
        RequireCookies = c.Cookies.Enabled && c.Cookies.Require,
        ChaosVersion = Txt(c.Chaos.Version),
        ChaosHostname = Txt(c.Chaos.Hostname),
        ChaosServerId = Txt(c.Chaos.ServerId),
    };

    /// <summary>The RRL settings of the configuration, or null when no kind of response is limited.</summary>
    public static RrlSettings? RrlSettingsFrom(RateLimitConfig r)
    {
        var settings = new RrlSettings
        {
            ResponsesPerSecond = r.ResponsesPerSecond,
            NoDataPerSecond = r.NodataPerSecond,
            NxdomainsPerSecond = r.NxdomainsPerSecond,
            ReferralsPerSecond = r.ReferralsPerSecond,
            ErrorsPerSecond = r.ErrorsPerSecond,
            AllPerSecond = r.AllPerSecond,
            Window = r.Window,
            Slip = r.Slip,
            Ipv4PrefixLength = r.Ipv4PrefixLength,
            Ipv6PrefixLength = r.Ipv6PrefixLength,
            TableSize = r.MaxTableSize,
            LogOnly = r.LogOnly,
        };
        bool any = settings.AllPerSecond > 0;
        foreach (var kind in Enum.GetValues<ResponseKind>()) any |= settings.RateFor(kind) > 0;
        return any ? settings : null;
    }

    public static ClientLimitSettings? ClientLimitSettingsFrom(ClientLimitConfig c) => c.QueriesPerSecond <= 0 ? null : new ClientLimitSettings
    {
        QueriesPerSecond = c.QueriesPerSecond,
        Window = c.Window,
        BlockSeconds = c.Block,
        Ipv4PrefixLength = c.Ipv4PrefixLength,
        Ipv6PrefixLength = c.Ipv6PrefixLength,
        TableSize = c.MaxTableSize,
    };

    private static byte[]? Txt(string? s)
    {
        if (s is null) return null;
        var bytes = Encoding.UTF8.GetBytes(s);
        if (bytes.Length > 255) bytes = bytes[..255];
        return [(byte)bytes.Length, .. bytes];
    }
}

/// <summary>What became of a NOTIFY (RFC 1996) for a zone this server serves.</summary>
public enum NotifyOutcome { NotSecondary, Accepted, Refused }

/// <summary>Where NOTIFY messages for secondary zones go; called on the query path, so it must only signal, not work.</summary>
public interface INotifyReceiver
{
    /// <param name="aclAllows">Whether the zone's allow-notify admits the sender (its primaries are admitted regardless).</param>
    NotifyOutcome Notify(Zone zone, ReadOnlySpan<byte> client, ReadOnlySpan<byte> keyName, bool aclAllows);
}

/// <summary>Applies an RFC 2136 UPDATE that the zone's allow-update admitted; returns the RCODE to answer.
/// The change must be on disk (the journal) before this returns: the answer acknowledges it.</summary>
public interface IUpdateHandler
{
    Rcode Update(Zone zone, ReadOnlySpan<byte> message, ReadOnlySpan<byte> client, ReadOnlySpan<byte> keyName);
}

/// <summary>
/// The query pipeline for authoritative service: header admission, question and EDNS parsing,
/// then the answer from the zone catalog, written into the response buffer within the size the
/// transport allows. Allocates nothing per query; reads the catalog and options snapshots once.
/// </summary>
public sealed class QueryProcessor : IQueryProcessor
{
    private const int OptRecordSize = 11;           // root owner, type, class, TTL, RDLENGTH
    private const int KeepaliveOptionSize = 6;      // RFC 7828 option with a timeout

    private volatile ZoneCatalog _catalog;
    private volatile QueryProcessorOptions _options;
    private readonly SecurityCounters _counters;
    private readonly SecurityEvents? _events;
    private readonly ZoneTransfers _transfers;

    public QueryProcessor(ZoneCatalog catalog, QueryProcessorOptions options, SecurityCounters? counters = null, SecurityEvents? events = null,
        ZoneTransfers? transfers = null)
    {
        _catalog = catalog;
        _options = options;
        _counters = counters ?? new SecurityCounters();
        _events = events;
        _transfers = transfers ?? new ZoneTransfers();
    }

    /// <summary>Outgoing zone transfers: how many run, how many ended.</summary>
    public ZoneTransfers Transfers => _transfers;

    /// <summary>Refusals, limits and drops by reason.</summary>
    public SecurityCounters Counters => _counters;

    /// <summary>Applies dynamic updates (null: UPDATE is answered NOTIMP).</summary>
    public IUpdateHandler? UpdateHandler { get; set; }

    /// <summary>Takes NOTIFY for secondary zones (null: no secondary zones).</summary>
    public INotifyReceiver? NotifyReceiver { get; set; }

    /// <summary>The zones served; setting it swaps the snapshot atomically.</summary>
    public ZoneCatalog Catalog { get => _catalog; set => _catalog = value; }

    public QueryProcessorOptions Options { get => _options; set => _options = value; }

    private volatile IRecursion? _recursion;
    private int _inFlight;

    /// <summary>
    /// The recursive side (cache and resolver) for names in no served zone, for clients that
    /// allow-recursion admits; null when recursion is off (such names are then REFUSED).
    /// </summary>
    public IRecursion? Recursion { get => _recursion; set => _recursion = value; }

    /// <summary>
    /// Response policy zones and domain lists (docs/response-policy.md), applied to recursive queries;
    /// null when none are configured. Its <see cref="ResponsePolicyZones.Current"/> snapshot is read once per query.
    /// </summary>
    public ResponsePolicyZones? PolicyZones { get => _policyZones; set => _policyZones = value; }

    private volatile ResponsePolicyZones? _policyZones;

    /// <summary>Resolutions started and not yet answered.</summary>
    public int ResolutionsInFlight => Volatile.Read(ref _inFlight);

    /// <summary>Cancels resolutions when the server stops (their clients then get nothing).</summary>
    public CancellationToken Stopping { get; set; }

    /// <summary>Where resolutions that fail with an exception are logged.</summary>
    public ILogger RecursionLogger { get; set; } = NullLogger.Instance;

    /// <summary>Where every answered query is counted (null: not counted).</summary>
    public QueryMetrics? Metrics { get; set; }

    public int Process(ReadOnlySpan<byte> query, Span<byte> response, in QueryContextInfo info)
    {
        // The timestamp is taken before any work so the latency histogram covers all of it. Only
        // responses written now are counted: a dropped query (length 0), a deferred resolution
        // (answered later through IDeferredReply) and a transfer stream are not; a deferred answer is
        // counted and logged when it is sent (ResolveAndReply).
        var metrics = Metrics;
        var events = _queryEvents;
        long start = metrics is null && events is null ? 0 : Stopwatch.GetTimestamp();
        var outcome = new Outcome();
        int length = ProcessCore(query, response, in info, ref outcome);
        if (metrics is not null && length > 0) metrics.RecordResponse(info.Transport, response[..length], start);
        // dnstap CLIENT_QUERY and CLIENT_RESPONSE once the response is final (signed, RRL applied);
        // like the metrics, a dropped query, a deferred resolution and a transfer stream log nothing.
        if (length > 0 && _dnstap is { } tap)
        {
            tap.LogClientQuery(query, info.Transport, info.Client);
            tap.LogClientResponse(response[..length], info.Transport, info.Client);
        }
        // The query log and the traffic watchers see answered and dropped queries alike (a query
        // deferred for resolution is posted when its answer goes out).
        if (events is not null && !outcome.Deferred && !outcome.Streamed)
            events.Post(query, length > 0 ? response[..length] : default, info.Transport, info.Client, start, outcome.Policy, outcome.PolicyName);
        return length;
    }

    private volatile QueryEventHub? _queryEvents;

    private volatile Detection.DetectorActions? _detectorActions;

    /// <summary>The tunnel detector's blocks and rate limits (docs/detection.md), checked per query; null: none.</summary>
    public Detection.DetectorActions? DetectorActions { get => _detectorActions; set => _detectorActions = value; }

    /// <summary>
    /// Where every query and what became of it is posted for the query log, the tunnel detector and
    /// the heavy-hitter sketches (null: none of them is on). Posting copies and never blocks.
    /// </summary>
    public QueryEventHub? Events { get => _queryEvents; set => _queryEvents = value; }

    private volatile DnstapLogger? _dnstap;

    /// <summary>dnstap output of client queries and responses (null: off). Posting copies and never blocks.</summary>
    public DnstapLogger? Dnstap { get => _dnstap; set => _dnstap = value; }

    private int ProcessCore(ReadOnlySpan<byte> query, Span<byte> response, in QueryContextInfo info, ref Outcome outcome)
    {
        var options = _options;
        bool udp = info.Transport == TransportKind.Udp;
        Span<byte> clientBytes = stackalloc byte[16];
        var client = clientBytes[..ClientAddress.Get(info.Client, clientBytes)];

        // Dynamic blocks (dnsdist's): a UDP source above its query rate is dropped for a while,
        // before any parsing. TCP sources cannot be spoofed and have connection limits instead.
        if (udp && options.ClientLimiter is { } limiter && !client.IsEmpty && !options.Security.ClientLimitExempt.Allows(client)
            && !limiter.Admit(client, Environment.TickCount64, out bool newlyBlocked))
        {
            _counters.Count(SecurityReason.ClientBlockedQuery);
            outcome.Policy = QueryPolicy.ClientBlocked;
            if (newlyBlocked)
            {
                _counters.Count(SecurityReason.ClientBlockStarted);
                _events?.Report(SecurityEventKind.ClientBlocked, client);
            }
            return 0;
        }

        int length = Answer(query, response, info, client, ref outcome);

        // A request that passed its TSIG check gets a signed answer (RFC 8945 §5.3), whatever the
        // answer is; a transfer stream signs its own messages.
        if (length > 0 && outcome.TsigKey is { } key)
        {
            Span<byte> mac = stackalloc byte[TsigAlgorithms.MaxMacSize];
            int signed = Tsig.Sign(response, length, key, outcome.RequestMac[..outcome.RequestMacLength], hasPrior: true,
                DateTimeOffset.UtcNow.ToUnixTimeSeconds(), Tsig.DefaultFudge, TsigError.NoError, default, timersOnly: false, mac, out _);
            if (signed > 0) length = signed;
            return length;   // signed by a key we hold: not rate-limited (RRL's slip would break the signature)
        }

        // Response rate limiting (BIND's RRL) over UDP only, and never for a client that proved its
        // address with a valid server cookie (RFC 7873 §5.3) or is exempt.
        if (length <= 0 || !udp || outcome.ValidCookie || options.Rrl is not { } rrl || client.IsEmpty
            || options.Security.RrlExempt.Allows(client))
            return length;
        var kind = outcome.Error ? ResponseKind.Error : outcome.Kind switch
        {
            AnswerKind.Answer => ResponseKind.Answer,
            AnswerKind.NoData => ResponseKind.NoData,
            AnswerKind.NameError => ResponseKind.NXDomain,
            AnswerKind.Referral => ResponseKind.Referral,
            _ => ResponseKind.Error,
        };
        // The identity BIND uses: the query name, the zone for NXDOMAIN (so random names under one
        // zone share one account), the delegation point for referrals.
        ReadOnlySpan<byte> identity = kind switch
        {
            // (From the cache, NXDOMAIN has no zone of ours: its account is the name's, below.)
            ResponseKind.NXDomain when outcome.Zone is not null => outcome.Zone.Origin.Wire,
            ResponseKind.Referral when outcome.Cut.Exists => outcome.Cut.Name,
            ResponseKind.Error => default,
            // Answers synthesised from one wildcard share its account, so random names under it
            // cannot dodge the limit (BIND's "*.zone" identity).
            ResponseKind.Answer or ResponseKind.NoData when outcome.Wildcard.Exists => outcome.Wildcard.Name,
            _ => response.Slice(DnsHeader.Size, outcome.QnameLength),
        };
        var decision = rrl.Check(client, kind, identity, (ushort)outcome.QType, (ushort)outcome.QClass, Environment.TickCount64, out bool newlyLimited);
        if (newlyLimited)
        {
            _counters.Count(SecurityReason.RrlLimitedEpisode);
            _events?.Report(rrl.Settings.LogOnly ? SecurityEventKind.RrlLogOnly : SecurityEventKind.RrlLimited, client);
        }
        switch (decision)
        {
            case RateDecision.Drop:
                _counters.Count(SecurityReason.RrlDropped);
                outcome.Policy = QueryPolicy.RrlDrop;
                return 0;
            case RateDecision.Slip:
                _counters.Count(SecurityReason.RrlSlipped);
                outcome.Policy = QueryPolicy.RrlSlip;
                return Slip(response, ref outcome);
            default:
                return length;
        }
    }

    /// <summary>
    /// Turns a written response into BIND's "slip": the header and question only (and an OPT record
    /// when the query had EDNS). A client that sent a cookie gets BADCOOKIE with a fresh server
    /// cookie, to retry over UDP with it and pass the limiter (RFC 7873 §5.3); any other gets TC=1,
    /// to retry over TCP. A reflection victim gets a packet hardly larger than the query.
    /// </summary>
    private int Slip(Span<byte> response, ref Outcome o)
    {
        response.Slice(6, 6).Clear();                          // ANCOUNT, NSCOUNT, ARCOUNT
        int length = DnsHeader.Size + o.QnameLength + 4;
        if (o.HasCookie)
        {
            response[2] &= 0xF9;                               // neither AA nor TC
            response[3] = (byte)((response[3] & 0xF0) | ((int)Rcode.BadCookie & 0xF));
            var reply = new EdnsReply(true, o.DnssecOk, -1) { Cookie = o.Cookie };
            return AppendOpt(response, length, reply, (int)Rcode.BadCookie >> 4);
        }
        response[2] |= 0x02;                                   // TC
        return o.Edns ? AppendOpt(response, length, new EdnsReply(true, o.DnssecOk, -1), 0) : length;
    }

    /// <summary>What the answer was, for the response rate limiter after it.</summary>
    private struct Outcome
    {
        public bool ValidCookie;
        public int QnameLength;
        public RecordType QType;
        public RecordClass QClass;
        public Zone? Zone;
        public AnswerKind Kind;
        public bool Error;
        public ZoneNode Cut;
        public ZoneNode Wildcard;
        public bool Edns, DnssecOk, HasCookie;
        /// <summary>The COOKIE the response carries (client cookie and fresh server cookie), for a slip.</summary>
        public CookieBytes Cookie;
        /// <summary>The key a request was signed with, once its TSIG checked out; the answer is signed with it.</summary>
        public TsigKey? TsigKey;
        public MacBytes RequestMac;
        public int RequestMacLength;
        /// <summary>Which policy acted (for the query log), and its name.</summary>
        public QueryPolicy Policy;
        public string? PolicyName;
        /// <summary>Answered later (a resolution) or as a message stream (a transfer): not posted now.</summary>
        public bool Deferred, Streamed;
    }

    [InlineArray(TsigAlgorithms.MaxMacSize)]
    private struct MacBytes { private byte _b; }

    [InlineArray(CookieAuthority.ClientCookieLength + CookieAuthority.ServerCookieLength)]
    private struct CookieBytes { private byte _b; }

    private int Answer(ReadOnlySpan<byte> query, Span<byte> response, in QueryContextInfo info, ReadOnlySpan<byte> client, ref Outcome outcome)
    {
        // Admission on the 12-octet header: too short, or a response, is dropped unanswered.
        if (!DnsMessageReader.TryCreate(query, out var reader)) return 0;
        var q = reader.Header;
        if (q.IsResponse) return 0;

        var options = _options;
        var policy = options.Security;
        var h = new DnsHeader { Id = q.Id, IsResponse = true, Opcode = q.Opcode, RecursionDesired = q.RecursionDesired, CheckingDisabled = q.CheckingDisabled };
        bool tcp = info.Transport == TransportKind.Tcp;

        Span<byte> qname = stackalloc byte[DnsName.MaxLength];
        int qnameLength = 0;
        RecordType qtype = default;
        RecordClass qclass = default;
        bool haveQuestion = q.QuestionCount == 1 && reader.TryReadQuestion(qname, out qnameLength, out qtype, out qclass);
        bool update = q.Opcode is Opcode.Update or Opcode.Notify;
        // IXFR carries the client's SOA in the authority section (RFC 1995 §3).
        bool ixfr = haveQuestion && qtype == RecordType.IXFR && q.Opcode == Opcode.Query;
        int small = tcp ? 65535 : 512;
        outcome.Error = true;   // until an answer from a zone says otherwise
        outcome.QnameLength = qnameLength;
        outcome.QType = qtype;
        outcome.QClass = qclass;

        if (q.Opcode != Opcode.Query && !update)
            return Respond(response, h, haveQuestion, qname[..qnameLength], qtype, qclass, Rcode.NotImp, default, small);
        if (!haveQuestion || (!update && (q.AnswerCount != 0 || (q.AuthorityCount != 0 && !ixfr))))
            return Respond(response, h, haveQuestion, qname[..qnameLength], qtype, qclass, Rcode.FormErr, default, small);
        long clientSerial = -1;
        if (ixfr && !ReadIxfrSerial(ref reader, q.AuthorityCount, out clientSerial))
            return Respond(response, h, true, qname[..qnameLength], qtype, qclass, Rcode.FormErr, default, small);
        // UPDATE carries prerequisites and updates (RFC 2136 §2), NOTIFY may carry an answer
        // (RFC 1996 §3.7): step over them to the additional section.
        if (update && !SkipRecords(ref reader, q.AnswerCount + q.AuthorityCount))
            return Respond(response, h, true, qname[..qnameLength], qtype, qclass, Rcode.FormErr, default, small);

        var edns = ReadEdns(ref reader, q.AdditionalCount);
        if (edns.Malformed)
            return Respond(response, h, true, qname[..qnameLength], qtype, qclass, Rcode.FormErr, default, small);

        int maxSize = tcp ? 65535 : edns.Present ? Math.Clamp((int)edns.PayloadSize, 512, options.UdpMaxResponse) : 512;
        maxSize = Math.Min(maxSize, response.Length);
        scoped var reply = new EdnsReply(edns.Present, edns.DnssecOk, tcp && edns.Keepalive ? info.TcpIdleTimeoutMs : -1);
        outcome.Edns = edns.Present;
        outcome.DnssecOk = edns.DnssecOk;

        // TSIG (RFC 8945 §5.2): a signed request is checked before anything else is decided; a
        // failure is answered NOTAUTH with the TSIG error, and nothing else.
        ReadOnlySpan<byte> keyName = default;
        if (edns.TsigStart >= 0)
        {
            int rejected = CheckTsig(query, edns.TsigStart, response, h, qname[..qnameLength], qtype, qclass, reply, maxSize, client, policy, ref outcome);
            if (rejected >= 0) return rejected;
            keyName = outcome.TsigKey!.NameWire;
            maxSize -= Tsig.MaxRecordSize(outcome.TsigKey);   // room for the signature
        }

        // DNS cookies (RFC 7873 §5.2): answer a client cookie with ours; a malformed one is FORMERR;
        // with cookies required, a UDP query without a valid server cookie gets BADCOOKIE and a
        // fresh cookie to retry with (§5.2.3), and no answer data to amplify.
        Span<byte> cookieOut = stackalloc byte[CookieAuthority.ClientCookieLength + CookieAuthority.ServerCookieLength];
        var cookieStatus = CookieStatus.Malformed;
        bool cookieSeen = false;
        if (edns.CookieOffset >= 0 && options.Cookies is { } cookies && !client.IsEmpty)
        {
            cookieSeen = true;
            var cookieData = query.Slice(edns.CookieOffset, edns.CookieLength);
            uint now = (uint)DateTimeOffset.UtcNow.ToUnixTimeSeconds();
            cookieStatus = cookies.Check(cookieData, client, now);
            if (cookieStatus == CookieStatus.Malformed)
            {
                _counters.Count(SecurityReason.CookieMalformed);
                return Respond(response, h, true, qname[..qnameLength], qtype, qclass, Rcode.FormErr, reply, maxSize);
            }
            cookieData[..CookieAuthority.ClientCookieLength].CopyTo(cookieOut);
            cookies.WriteServerCookie(cookieOut[CookieAuthority.ClientCookieLength..], cookieData[..CookieAuthority.ClientCookieLength], client, now);
            reply.Cookie = cookieOut;
            outcome.HasCookie = true;
            cookieOut.CopyTo(outcome.Cookie);
            if (options.RequireCookies && !tcp && cookieStatus is CookieStatus.ClientOnly or CookieStatus.BadServerCookie)
            {
                _counters.Count(SecurityReason.BadCookie);
                return Respond(response, h, true, qname[..qnameLength], qtype, qclass, Rcode.BadCookie, reply, maxSize);
            }
        }
        outcome.ValidCookie = cookieSeen && cookieStatus is CookieStatus.Valid or CookieStatus.ValidNeedsRefresh;

        // RFC 6891 §6.1.3: an EDNS version we do not implement gets BADVERS (and our version, 0).
        if (edns.Present && edns.Version != 0)
            return Respond(response, h, true, qname[..qnameLength], qtype, qclass, Rcode.BadVers, reply, maxSize);

        if (update) return AnswerUpdateOrNotify(query, response, h, qname[..qnameLength], qtype, qclass, reply, maxSize, client, keyName, policy);

        // The tunnel detector's automatic actions (docs/detection.md): a blocked domain (or client)
        // is refused with Extended DNS Error 15, Blocked (RFC 8914 §4.16), or dropped, as configured;
        // a rate-limited one likewise beyond its rate. One volatile read when detection is off.
        if (_detectorActions is { } detector)
        {
            var verdict = detector.Check(qname[..qnameLength], client, DateTime.UtcNow.Ticks);
            if (verdict != Detection.DetectorVerdict.None)
            {
                outcome.Policy = QueryPolicy.DetectorBlocked;
                outcome.PolicyName = "detector";
                if (verdict == Detection.DetectorVerdict.Drop) return 0;
                reply.Ede = EdeBlocked;
                return Respond(response, h, true, qname[..qnameLength], qtype, qclass, Rcode.Refused, reply, maxSize);
            }
        }

        // Meta-types: OPT, TSIG, TKEY cannot be asked for; MAILA/MAILB are obsolete.
        if (qtype is RecordType.OPT or RecordType.TSIG or RecordType.TKEY)
            return Respond(response, h, true, qname[..qnameLength], qtype, qclass, Rcode.FormErr, reply, maxSize);
        if (qtype is RecordType.MAILA or RecordType.MAILB)
            return Respond(response, h, true, qname[..qnameLength], qtype, qclass, Rcode.NotImp, reply, maxSize);

        if (qclass == RecordClass.CH)
            return AnswerChaos(response, h, qname[..qnameLength], qtype, reply, maxSize, options);
        if (qclass is not (RecordClass.IN or RecordClass.ANY))
            return Respond(response, h, true, qname[..qnameLength], qtype, qclass, Rcode.Refused, reply, maxSize);

        var zone = _catalog.FindZone(qname[..qnameLength], forDs: qtype == RecordType.DS);
        if (zone is null)
        {
            // Not ours: recursion, for the clients allow-recursion admits, when there is a resolver
            // (class IN; transfers are never recursed). Otherwise refused; the Extended DNS Error
            // tells a client outside allow-recursion that it is prohibited (RFC 8914 §4.19), and one
            // inside that this server is not authoritative (§4.21). The cache answers nobody else,
            // RD=0 included: what it holds says what admitted clients asked.
            bool recursionAllowed = policy.Recursion.Allows(client);
            if (recursionAllowed && _recursion is { } recursion && qclass == RecordClass.IN && qtype is not (RecordType.AXFR or RecordType.IXFR))
                return AnswerRecursively(recursion, query, response, h, qname[..qnameLength], qtype, qclass, reply, maxSize, in info, client, ref outcome);
            _counters.Count(recursionAllowed ? SecurityReason.NotAuthoritative : SecurityReason.RecursionRefused);
            if (!recursionAllowed) outcome.Policy = QueryPolicy.AclRefused;
            reply.Ede = recursionAllowed ? EdeNotAuthoritative : EdeProhibited;
            return Respond(response, h, true, qname[..qnameLength], qtype, qclass, Rcode.Refused, reply, maxSize);
        }
        var access = policy.For(zone);
        // A secondary zone that expired or has not been transferred yet: SERVFAIL (RFC 1034 §4.3.5),
        // as BIND, Knot and NSD answer, rather than stale or missing data with AA set.
        if (zone.Unavailable && access.Query.Allows(client, keyName))
            return Respond(response, h, true, qname[..qnameLength], qtype, qclass, Rcode.ServFail, reply, maxSize);
        if (qtype is RecordType.AXFR or RecordType.IXFR)
        {
            if (!access.Transfer.Allows(client, keyName))
            {
                _counters.Count(SecurityReason.TransferRefused);
                outcome.Policy = QueryPolicy.AclRefused;
                _events?.Report(SecurityEventKind.TransferRefused, client, zone);
                reply.Ede = EdeProhibited;
            }
            else return AnswerTransfer(response, h, qname[..qnameLength], qtype, qclass, reply, maxSize, zone, in info, client, clientSerial, ref outcome);
            return Respond(response, h, true, qname[..qnameLength], qtype, qclass, Rcode.Refused, reply, maxSize);
        }
        if (!access.Query.Allows(client, keyName))
        {
            _counters.Count(SecurityReason.QueryRefused);
            outcome.Policy = QueryPolicy.AclRefused;
            reply.Ede = EdeProhibited;
            return Respond(response, h, true, qname[..qnameLength], qtype, qclass, Rcode.Refused, reply, maxSize);
        }

        int optSpace = reply.Size;
        var w = new DnsMessageWriter(response[..(maxSize - optSpace)]);
        w.Header = h;
        w.TryWriteQuestion(qname[..qnameLength], qtype, qclass);
        var result = Answerer.Answer(zone, qname[..qnameLength], qtype, minimalAny: !tcp, reply.DnssecOk, ref w);
        w.Header.AuthoritativeAnswer = result.Authoritative && result.Kind != AnswerKind.Referral;
        w.Header.Truncated = result.Truncated;
        w.Header.Rcode = result.Kind switch
        {
            AnswerKind.NameError => (byte)Rcode.NXDomain,
            AnswerKind.NameTooLong => (byte)Rcode.YXDomain,
            _ => (byte)Rcode.NoError,
        };
        int length = w.Finish();
        outcome.Error = false;
        outcome.Zone = zone;
        outcome.Kind = result.Kind;
        outcome.Cut = result.Cut;
        outcome.Wildcard = result.Wildcard;
        return AppendOpt(response, length, reply, 0);
    }

    /// <summary>
    /// A name in no served zone, from a client allow-recursion admits. RD=0 gets REFUSED with RA
    /// and no look at the cache, as Unbound answers with its default access-control "allow" (only
    /// "allow_snoop" lets non-recursive queries read the cache): RFC 1034 §4.3.1 leaves recursion to
    /// the client's asking, and answering RD=0 from the cache would let anyone admitted snoop on
    /// what others asked. With RD=1 the cache answers on this thread when it can (RA set, AA clear:
    /// RFC 1035 §4.1.1; TC when a section did not fit, as for authoritative answers). A miss is deferred:
    /// the transport keeps the client, the resolution runs on the thread pool, and its result is
    /// written and sent from there (<see cref="ResolveAndReply"/>); nothing is sent now. At most
    /// <see cref="QueryProcessorOptions.MaxResolutionsInFlight"/> run at once, and a TCP connection
    /// keeps a bounded number pending: beyond either, SERVFAIL now with EDE 0 (Other).
    /// </summary>
    private int AnswerRecursively(IRecursion recursion, ReadOnlySpan<byte> query, Span<byte> response, DnsHeader h, ReadOnlySpan<byte> qname, RecordType qtype,
        RecordClass qclass, EdnsReply reply, int maxSize, in QueryContextInfo info, ReadOnlySpan<byte> client, ref Outcome outcome)
    {
        h.RecursionAvailable = true;
        if (!h.RecursionDesired)
        {
            _counters.Count(SecurityReason.RecursionNotDesired);
            return Respond(response, h, true, qname, qtype, qclass, Rcode.Refused, reply, maxSize);
        }
        // Response policy (RPZ QNAME triggers, domain lists) before the cache, on the recursive path
        // only, as BIND's default (recursive-only): a hit is answered here, dropped, or passed through.
        if (PolicyZones is { } policyZones && policyZones.Current.TryMatch(qname, out var hit))
        {
            _counters.Count(hit.Reason);
            outcome.Policy = hit.QueryPolicy;       // the query log's policy and policy_name
            outcome.PolicyName = hit.PolicyName;
            policyZones.HitLog.Report(in hit, client, qname, qtype);
            reply.Ede = hit.Ede;
            var pw = new DnsMessageWriter(response[..(maxSize - reply.Size)]);
            pw.Header = h;
            pw.TryWriteQuestion(qname, qtype, qclass);
            switch (PolicyResponseWriter.Write(in hit, ref pw, qname, qtype, info.Transport == TransportKind.Tcp))
            {
                case PolicyResponse.Drop:
                    return 0;
                case PolicyResponse.Written:
                    int written = pw.Finish();
                    outcome.Error = false;
                    outcome.Kind = pw.Header.Rcode == (byte)Rcode.NXDomain ? AnswerKind.NameError
                        : pw.Header.AnswerCount > 0 ? AnswerKind.Answer : AnswerKind.NoData;
                    return AppendOpt(response, written, reply, 0);
            }
            reply.Ede = -1;   // passed through: answered as if no policy matched
        }
        var w = new DnsMessageWriter(response[..(maxSize - reply.Size)]);
        w.Header = h;
        w.TryWriteQuestion(qname, qtype, qclass);
        // RFC 6840 §5.7: AD for secure data when the client set DO or AD.
        bool wantsAd = reply.DnssecOk || (query.Length > 3 && (query[3] & 0x20) != 0);
        if (recursion.TryAnswerFromCache(qname, qtype, qclass, reply.DnssecOk, h.CheckingDisabled, ref w, out var cached))
        {
            _counters.Count(SecurityReason.RecursionCacheHit);
            var rcode = cached.Rcode;
            w.Header.AuthoritativeAnswer = false;
            w.Header.RecursionAvailable = true;
            w.Header.Truncated = cached.Truncated;
            w.Header.AuthenticData = cached.Secure && wantsAd;
            w.Header.Rcode = (byte)((int)rcode & 0xF);
            // A bogus entry: SERVFAIL with its Extended DNS Error (RFC 8914), written above with nothing but the question.
            if (cached.Ede >= 0) reply.Ede = cached.Ede;
            int length = w.Finish();
            outcome.Error = rcode is not (Rcode.NoError or Rcode.NXDomain);
            outcome.Kind = rcode == Rcode.NXDomain ? AnswerKind.NameError
                : BinaryPrimitives.ReadUInt16BigEndian(response[6..]) > 0 ? AnswerKind.Answer : AnswerKind.NoData;
            return AppendOpt(response, length, reply, (int)rcode >> 4);
        }
        _counters.Count(SecurityReason.RecursionCacheMiss);
        if (Interlocked.Increment(ref _inFlight) > _options.MaxResolutionsInFlight)
        {
            Interlocked.Decrement(ref _inFlight);
            _counters.Count(SecurityReason.RecursionOverload);
            reply.Ede = EdeOther;
            return Respond(response, h, true, qname, qtype, qclass, Rcode.ServFail, reply, maxSize);
        }
        var deferred = info.Deferral?.Defer();
        if (deferred is null)
        {
            // The transport cannot hold another pending answer for this client (or none at all).
            Interlocked.Decrement(ref _inFlight);
            _counters.Count(SecurityReason.RecursionOverload);
            reply.Ede = EdeOther;
            return Respond(response, h, true, qname, qtype, qclass, Rcode.ServFail, reply, maxSize);
        }
        // The slow path from here: what the answer needs is copied out of the query's buffers.
        var pending = new PendingResolution
        {
            Recursion = recursion,
            Reply = deferred,
            Header = h,
            Qname = qname.ToArray(),
            QType = qtype,
            QClass = qclass,
            Edns = reply.Present,
            DnssecOk = reply.DnssecOk,
            WantsAd = wantsAd,
            KeepaliveMs = reply.KeepaliveMs,
            Cookie = reply.Cookie.IsEmpty ? null : reply.Cookie.ToArray(),
            MaxSize = maxSize,
            TsigKey = outcome.TsigKey,
            RequestMac = outcome.TsigKey is null ? null : ((ReadOnlySpan<byte>)outcome.RequestMac)[..outcome.RequestMacLength].ToArray(),
            Transport = info.Transport,
            Client = CopyAddress(info.Client),
            Query = Metrics is null && _dnstap is null && _queryEvents is null ? null : query.ToArray(),
            Start = Stopwatch.GetTimestamp(),
            Policy = outcome.Policy,
            PolicyName = outcome.PolicyName,
        };
        // Off the receive thread: a resolution may take seconds (RFC 1034 §5.3.3), and even its
        // synchronous start must not hold the queries behind it.
        outcome.Deferred = true;
        StartResolution(pending);
        return 0;
    }

    // Apart from AnswerRecursively: a lambda there would make its closure at the method's entry,
    // an allocation on every call (cache hits and policy answers included), not only on a miss.
    private void StartResolution(PendingResolution pending) => _ = Task.Run(() => ResolveAndReply(pending));

    /// <summary>What a deferred answer needs of its query (copied: the transport reuses its buffers).</summary>
    private sealed class PendingResolution
    {
        public required IRecursion Recursion;
        public required IDeferredReply Reply;
        public DnsHeader Header;
        public required byte[] Qname;
        public RecordType QType;
        public RecordClass QClass;
        public bool Edns, DnssecOk;
        /// <summary>The client set DO or AD: secure answers get AD (RFC 6840 §5.7).</summary>
        public bool WantsAd;
        public int KeepaliveMs;
        public byte[]? Cookie;
        public int MaxSize;
        public TsigKey? TsigKey;
        public byte[]? RequestMac;
        public TransportKind Transport;
        public required System.Net.SocketAddress Client;
        /// <summary>The query as received, for the metrics, dnstap and the query log when the answer goes out (null when all are off).</summary>
        public byte[]? Query;
        public long Start;
        /// <summary>A policy that acted and let the query through (RPZ PASSTHRU), for the query log.</summary>
        public QueryPolicy Policy;
        public string? PolicyName;
    }

    private static System.Net.SocketAddress CopyAddress(System.Net.SocketAddress a)
    {
        var copy = new System.Net.SocketAddress(a.Family, a.Size);
        a.Buffer.Span[..a.Size].CopyTo(copy.Buffer.Span);
        return copy;
    }

    private async Task ResolveAndReply(PendingResolution p)
    {
        ResolutionResult result;
        try
        {
            result = await p.Recursion.ResolveAsync(new ResolverQuestion(DnsName.FromWire(p.Qname), p.QType, p.QClass), Stopping).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (Stopping.IsCancellationRequested)
        {
            // The server is stopping: nothing will be sent.
            Interlocked.Decrement(ref _inFlight);
            p.Reply.Abandon();
            return;
        }
        catch (Exception e)
        {
            RecursionLogger.LogError(e, "resolution of {Name} {Type} failed", DnsName.FromWire(p.Qname), p.QType);
            result = new ResolutionResult { Rcode = Rcode.ServFail, Failure = e.Message };
        }
        _counters.Count(result.Rcode is Rcode.NoError or Rcode.NXDomain ? SecurityReason.RecursionResolved : SecurityReason.RecursionFailed);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(65535);
        try
        {
            int length;
            try { length = WriteResolved(p, result, buffer); }
            catch (Exception e)
            {
                RecursionLogger.LogError(e, "answer to {Name} {Type} could not be written", DnsName.FromWire(p.Qname), p.QType);
                Interlocked.Decrement(ref _inFlight);
                p.Reply.Abandon();
                return;
            }
            // Counted out once, whatever happens after: the answer is written.
            Interlocked.Decrement(ref _inFlight);
            p.Reply.Send(buffer.AsSpan(0, length));
            if (p.Query is { } query)
            {
                var response = buffer.AsSpan(0, length);
                Metrics?.RecordResponse(p.Transport, response, p.Start);
                if (_dnstap is { } tap)
                {
                    tap.LogClientQuery(query, p.Transport, p.Client);
                    tap.LogClientResponse(response, p.Transport, p.Client);
                }
                _queryEvents?.Post(query, response, p.Transport, p.Client, p.Start, p.Policy, p.PolicyName);
            }
        }
        catch (Exception e)
        {
            // Sending or logging failed after the answer was counted out: log it, nothing to undo.
            RecursionLogger.LogError(e, "answer to {Name} {Type} could not be sent or logged", DnsName.FromWire(p.Qname), p.QType);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// The answer from a resolution: the query's ID, RD and CD echoed, RA set, AA clear, the
    /// question as asked (case kept), the answer and authority records in order, within the size
    /// the client can take (TC when they do not fit: RFC 2181 §9), and our OPT record when the query
    /// had one (DO echoed, keepalive, cookie, the resolver's EDE: RFC 8914). Without DO, DNSSEC
    /// records are left out unless asked for (RFC 4035 §3.2.1). Signed when the query was (RFC 8945 §5.3).
    /// </summary>
    private int WriteResolved(PendingResolution p, ResolutionResult r, Span<byte> buffer)
    {
        var reply = new EdnsReply(p.Edns, p.DnssecOk, p.KeepaliveMs) { Cookie = p.Cookie, Ede = r.Ede is { } ede ? ede : -1 };
        var w = new DnsMessageWriter(buffer[..(p.MaxSize - reply.Size)]);
        w.Header = p.Header;
        w.Header.RecursionAvailable = true;
        w.Header.AuthoritativeAnswer = false;
        w.TryWriteQuestion(p.Qname, p.QType, p.QClass);
        if (r.Validation == ValidationState.Bogus && !p.Header.CheckingDisabled)
        {
            // RFC 4035 §5.5: bogus data is never given to a client that did not set CD; SERVFAIL with the reason.
            w.Header.Rcode = (byte)Rcode.ServFail;
            return SignIfAsked(p, buffer, AppendOpt(buffer, w.Finish(), reply, 0));
        }
        w.Header.AuthenticData = r.Validation == ValidationState.Secure && p.WantsAd;
        bool truncated = !WriteSection(ref w, r.Answer, DnsSection.Answer, p) || !WriteSection(ref w, r.Authority, DnsSection.Authority, p);
        w.Header.Truncated = truncated;
        w.Header.Rcode = (byte)((int)r.Rcode & 0xF);
        return SignIfAsked(p, buffer, AppendOpt(buffer, w.Finish(), reply, (int)r.Rcode >> 4));
    }

    /// <summary>Signs a deferred answer when its query was signed (RFC 8945 §5.3).</summary>
    private static int SignIfAsked(PendingResolution p, Span<byte> buffer, int length)
    {
        if (p.TsigKey is { } key)
        {
            Span<byte> mac = stackalloc byte[TsigAlgorithms.MaxMacSize];
            int signed = Tsig.Sign(buffer, length, key, p.RequestMac, hasPrior: true, DateTimeOffset.UtcNow.ToUnixTimeSeconds(), Tsig.DefaultFudge,
                TsigError.NoError, default, timersOnly: false, mac, out _);
            if (signed > 0) length = signed;
        }
        return length;
    }

    private static bool WriteSection(ref DnsMessageWriter w, IReadOnlyList<ResourceRecord> records, DnsSection section, PendingResolution p)
    {
        for (int i = 0; i < records.Count; i++)
        {
            var rr = records[i];
            if (!p.DnssecOk && rr.Type != p.QType && rr.Type is RecordType.RRSIG or RecordType.NSEC or RecordType.NSEC3) continue;
            if (!w.TryWriteRecord(rr, section)) return false;
        }
        return true;
    }

    /// <summary>
    /// UPDATE (RFC 2136) and NOTIFY (RFC 1996): the question names the zone. Only a zone we serve,
    /// by its apex, and only from clients its allow-update / allow-notify admits; those that pass
    /// get NOTIMP until replication implements them.
    /// </summary>
    private int AnswerUpdateOrNotify(ReadOnlySpan<byte> query, Span<byte> response, DnsHeader h, ReadOnlySpan<byte> qname, RecordType qtype, RecordClass qclass,
        EdnsReply reply, int maxSize, ReadOnlySpan<byte> client, ReadOnlySpan<byte> keyName, SecurityPolicy policy)
    {
        bool isUpdate = h.Opcode == Opcode.Update;
        var zone = _catalog.FindZone(qname);
        // NOTIFY for a response policy zone kept by transfer (not served, so not in the catalog).
        if (!isUpdate && PolicyZones is { } policyZones && (zone is null || !DnsName.EqualsIgnoreCase(zone.Origin.Wire, qname)))
        {
            var notified = policyZones.Notify(qname, client, keyName);
            if (notified == NotifyOutcome.Accepted)
            {
                h.AuthoritativeAnswer = true;   // as for a secondary zone's NOTIFY (RFC 1996 §4.7)
                return Respond(response, h, true, qname, qtype, qclass, Rcode.NoError, reply, maxSize);
            }
            if (notified == NotifyOutcome.Refused)
            {
                _counters.Count(SecurityReason.NotifyRefused);
                reply.Ede = EdeProhibited;
                return Respond(response, h, true, qname, qtype, qclass, Rcode.Refused, reply, maxSize);
            }
        }
        if (zone is null || !DnsName.EqualsIgnoreCase(zone.Origin.Wire, qname))
            // RFC 2136 §3.1.1: not a zone we are authoritative for.
            return Respond(response, h, true, qname, qtype, qclass, isUpdate ? Rcode.NotAuth : Rcode.Refused, reply, maxSize);
        var access = policy.For(zone);
        if (!isUpdate && NotifyReceiver is { } receiver)
        {
            // A secondary zone: NOTIFY from its primaries (or allow-notify) makes it check the
            // primary's serial now (RFC 1996 §3.7, §4.7: answered NOERROR, echoing the question).
            var notified = receiver.Notify(zone, client, keyName, access.Notify.Allows(client, keyName));
            if (notified == NotifyOutcome.Accepted)
            {
                h.AuthoritativeAnswer = true;
                return Respond(response, h, true, qname, qtype, qclass, Rcode.NoError, reply, maxSize);
            }
            if (notified == NotifyOutcome.Refused)
            {
                _counters.Count(SecurityReason.NotifyRefused);
                _events?.Report(SecurityEventKind.NotifyRefused, client, zone);
                reply.Ede = EdeProhibited;
                return Respond(response, h, true, qname, qtype, qclass, Rcode.Refused, reply, maxSize);
            }
        }
        if (!(isUpdate ? access.Update : access.Notify).Allows(client, keyName))
        {
            _counters.Count(isUpdate ? SecurityReason.UpdateRefused : SecurityReason.NotifyRefused);
            _events?.Report(isUpdate ? SecurityEventKind.UpdateRefused : SecurityEventKind.NotifyRefused, client, zone);
            reply.Ede = EdeProhibited;
            return Respond(response, h, true, qname, qtype, qclass, Rcode.Refused, reply, maxSize);
        }
        // An admitted UPDATE (RFC 2136 §3): applied, written to the zone's journal and swapped in by
        // the handler before the answer leaves; not on the query path's hot side (updates are rare).
        if (isUpdate && UpdateHandler is { } handler)
            return Respond(response, h, true, qname, qtype, qclass, handler.Update(zone, query, client, keyName), reply, maxSize);
        return Respond(response, h, true, qname, qtype, qclass, Rcode.NotImp, reply, maxSize);
    }

    /// <summary>
    /// A zone transfer the zone's allow-transfer admitted. Over TCP, AXFR (and IXFR from a serial
    /// older than ours: without a journal the whole zone, RFC 1995 §4) starts an
    /// <see cref="AxfrStream"/> that the transport pulls message by message; at most
    /// <see cref="QueryProcessorOptions.TransfersOut"/> at once, the next gets SERVFAIL as BIND's
    /// transfers-out quota answers, so a secondary retries later. IXFR from our serial or a newer
    /// one gets our SOA alone (RFC 1995 §2, §4: up to date). Over UDP no zone data leaves: AXFR
    /// gets FORMERR (BIND's "AXFR over UDP" answer; RFC 5936 §4.2 has AXFR over TCP only) and IXFR
    /// our SOA alone, the answer RFC 1995 §2 gives when the changes do not fit in a datagram,
    /// which tells the client to retry over TCP when it is behind.
    /// </summary>
    private int AnswerTransfer(Span<byte> response, DnsHeader h, ReadOnlySpan<byte> qname, RecordType qtype, RecordClass qclass,
        EdnsReply reply, int maxSize, Zone zone, in QueryContextInfo info, ReadOnlySpan<byte> client, long clientSerial, ref Outcome outcome)
    {
        // RFC 5936 §2.2.1 (and RFC 1995): the question names a zone's apex; below it, we are not
        // authoritative for a zone of that name.
        if (!DnsName.EqualsIgnoreCase(zone.Origin.Wire, qname))
            return Respond(response, h, true, qname, qtype, qclass, Rcode.NotAuth, reply, maxSize);
        bool udp = info.Transport == TransportKind.Udp;
        if (qtype == RecordType.IXFR && clientSerial < 0)
            return Respond(response, h, true, qname, qtype, qclass, Rcode.FormErr, reply, maxSize);   // RFC 1995 §3: the SOA is required
        if (qtype == RecordType.AXFR && udp)
            return Respond(response, h, true, qname, qtype, qclass, Rcode.FormErr, reply, maxSize);
        if (qtype == RecordType.IXFR && (udp || IsUpToDate((uint)clientSerial, zone.Serial)))
        {
            var w = new DnsMessageWriter(response[..(maxSize - reply.Size)]);
            w.Header = h;
            w.Header.AuthoritativeAnswer = true;
            w.TryWriteQuestion(qname, qtype, qclass);
            WriteSoa(ref w, zone);
            return AppendOpt(response, w.Finish(), reply, 0);
        }
        var options = _options;
        if (info.Streams is not { } streams)
            return Respond(response, h, true, qname, qtype, qclass, Rcode.ServFail, reply, maxSize);
        if (!_transfers.TryBegin(options.TransfersOut))
        {
            _transfers.Logger.LogWarning("zone transfer of {Zone} to {Client} refused for now: {Active} transfers running (transfers-out {Limit})",
                zone.Origin, new System.Net.IPAddress(client), _transfers.Active, options.TransfersOut);
            return Respond(response, h, true, qname, qtype, qclass, Rcode.ServFail, reply, maxSize);
        }
        // The OPT record of each message is bare: the keepalive, cookie and EDE of the first are
        // for single answers; a transfer's messages carry records only (TSIG aside).
        // A signed request: every message of the transfer is signed with its key (RFC 8945 §5.3.1).
        var signer = outcome.TsigKey is { } key
            ? new TsigStreamSigner(key, outcome.RequestMac[..outcome.RequestMacLength], static () => DateTimeOffset.UtcNow.ToUnixTimeSeconds())
            : null;
        // IXFR the journal can answer: the changes since the client's serial (RFC 1995 §4); else the
        // whole zone, AXFR-style.
        var steps = qtype == RecordType.IXFR && zone.Journal is { } journal ? journal.DiffsFrom((uint)clientSerial, zone.Serial) : null;
        outcome.Streamed = true;
        streams.Start(steps is { Count: > 0 }
            ? new IxfrStream(_transfers, zone, steps, h, qname, qclass, reply.Present, reply.DnssecOk, (ushort)options.UdpMaxResponse, signer, client)
            : new AxfrStream(_transfers, zone, h, qname, qtype, qclass, reply.Present, reply.DnssecOk, (ushort)options.UdpMaxResponse, signer, client));
        return 0;
    }

    /// <summary>
    /// Checks a signed request (RFC 8945 §5.2): the record must parse (else FORMERR), the key be one
    /// we hold with that algorithm (BADKEY), the MAC verify (BADSIG; truncated MACs BADTRUNC) and the
    /// time be within the fudge (BADTIME). Returns -1 when all is well (the key and the request's MAC
    /// are in <paramref name="outcome"/>), else the length of the error answer: NOTAUTH with the TSIG
    /// error, unsigned for BADKEY and BADSIG (§5.3.2: never signed with a key the request failed),
    /// signed for BADTIME with our clock in Other Data so the client can see the skew.
    /// </summary>
    private int CheckTsig(ReadOnlySpan<byte> query, int start, Span<byte> response, DnsHeader h, ReadOnlySpan<byte> qname, RecordType qtype,
        RecordClass qclass, EdnsReply reply, int maxSize, ReadOnlySpan<byte> client, SecurityPolicy policy, ref Outcome outcome)
    {
        Span<byte> keyName = stackalloc byte[DnsName.MaxLength];
        int keyNameLength;
        if (!Tsig.TryParseAt(query, start, out var record) || (keyNameLength = record.KeyName(query, keyName)) == 0)
            return Respond(response, h, true, qname, qtype, qclass, Rcode.FormErr, reply, maxSize);
        long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var key = policy.Keys.Find(keyName[..keyNameLength]);
        var status = key is null ? TsigStatus.BadKey : Tsig.VerifyMac(query, record, key, default, hasPrior: false);
        if (status == TsigStatus.Ok && !Tsig.TimeIsValid(record, now)) status = TsigStatus.BadTime;
        if (status == TsigStatus.Ok)
        {
            outcome.TsigKey = key;
            record.Mac(query).CopyTo(outcome.RequestMac);
            outcome.RequestMacLength = record.MacLength;
            return -1;
        }
        if (status == TsigStatus.FormErr)
            return Respond(response, h, true, qname, qtype, qclass, Rcode.FormErr, reply, maxSize);
        _counters.Count(SecurityReason.TsigRejected);
        _events?.Report(status switch
        {
            TsigStatus.BadKey => SecurityEventKind.TsigBadKey,
            TsigStatus.BadTime => SecurityEventKind.TsigBadTime,
            _ => SecurityEventKind.TsigBadSig,
        }, client);
        int length = Respond(response, h, true, qname, qtype, qclass, Rcode.NotAuth, reply, maxSize);
        var error = status switch
        {
            TsigStatus.BadKey => TsigError.BadKey,
            TsigStatus.BadSig => TsigError.BadSig,
            TsigStatus.BadTime => TsigError.BadTime,
            _ => TsigError.BadTrunc,
        };
        int withTsig;
        if (status is TsigStatus.BadKey or TsigStatus.BadSig)
            withTsig = Tsig.AppendUnsigned(response, length, keyName[..keyNameLength], record.Algorithm(query), now, record.Fudge, error);
        else
        {
            // The request's own time as Time Signed (so the client's time check passes) and ours in Other Data.
            Span<byte> other = stackalloc byte[6];
            Tsig.WriteTime(other, now);
            Span<byte> mac = stackalloc byte[TsigAlgorithms.MaxMacSize];
            withTsig = Tsig.Sign(response, length, key!, record.Mac(query), hasPrior: true, record.TimeSigned, record.Fudge, error,
                status == TsigStatus.BadTime ? other : default, timersOnly: false, mac, out _);
        }
        return withTsig > 0 ? withTsig : length;
    }

    private static void WriteSoa(ref DnsMessageWriter w, Zone zone)
    {
        var soa = zone.Soa;
        w.TryWriteRecord(soa.Owner, RecordType.SOA, zone.Class, soa.Ttl, soa.First, DnsSection.Answer);
    }

    /// <summary>
    /// The client's serial is ours or newer in RFC 1982 §3.2 serial arithmetic: equal, or ahead by
    /// less than 2^31 (at exactly 2^31 the order is undefined, and the client gets the zone).
    /// </summary>
    internal static bool IsUpToDate(uint client, uint ours) => client == ours || Replication.SerialNumber.IsNewer(client, ours);

    /// <summary>
    /// Reads the authority section of an IXFR query for the client's SOA (RFC 1995 §3): its serial
    /// is the RDATA's first fixed field, 20 octets from the end whatever the compression of the
    /// names before it; -1 when there is none (FORMERR, once allow-transfer has admitted the
    /// client). An unreadable record: false (FORMERR).
    /// </summary>
    private static bool ReadIxfrSerial(ref DnsMessageReader reader, int count, out long serial)
    {
        serial = -1;
        Span<byte> name = stackalloc byte[DnsName.MaxLength];
        for (int i = 0; i < count; i++)
        {
            if (!reader.TryReadRecordHeader(name, out _, out var type, out _, out _, out int rdOffset, out int rdLength)) return false;
            if (type == RecordType.SOA && serial < 0 && rdLength >= 22)
                serial = BinaryPrimitives.ReadUInt32BigEndian(reader.Message[(rdOffset + rdLength - 20)..]);
        }
        return true;
    }

    private static bool SkipRecords(ref DnsMessageReader reader, int count)
    {
        Span<byte> name = stackalloc byte[DnsName.MaxLength];
        for (int i = 0; i < count; i++)
            if (!reader.TryReadRecordHeader(name, out _, out _, out _, out _, out _, out _)) return false;
        return true;
    }

    private int AnswerChaos(Span<byte> response, DnsHeader h, ReadOnlySpan<byte> qname, RecordType qtype, EdnsReply reply, int maxSize, QueryProcessorOptions options)
    {
        byte[]? txt = null;
        if (qtype is RecordType.TXT or RecordType.ANY)
        {
            if (IsName(qname, "version.bind"u8) || IsName(qname, "version.server"u8)) txt = options.ChaosVersion;
            else if (IsName(qname, "hostname.bind"u8)) txt = options.ChaosHostname;
            else if (IsName(qname, "id.server"u8)) txt = options.ChaosServerId;
        }
        if (txt is null) return Respond(response, h, true, qname, qtype, RecordClass.CH, Rcode.Refused, reply, maxSize);
        var w = new DnsMessageWriter(response[..(maxSize - reply.Size)]);
        w.Header = h;
        w.Header.AuthoritativeAnswer = true;
        w.TryWriteQuestion(qname, qtype, RecordClass.CH);
        w.TryWriteRecord(qname, RecordType.TXT, RecordClass.CH, 0, txt, DnsSection.Answer);
        return AppendOpt(response, w.Finish(), reply, 0);
    }

    /// <summary>Compares a wire name with a dotted ASCII name, without regard to case.</summary>
    private static bool IsName(ReadOnlySpan<byte> wire, ReadOnlySpan<byte> dotted)
    {
        int pos = 0, i = 0;
        while (wire[pos] != 0)
        {
            int len = wire[pos];
            if (i + len > dotted.Length) return false;
            for (int j = 0; j < len; j++)
                if ((wire[pos + 1 + j] | 0x20) != (dotted[i + j] | 0x20)) return false;
            i += len;
            pos += 1 + len;
            if (wire[pos] != 0) { if (i >= dotted.Length || dotted[i] != '.') return false; i++; }
        }
        return i == dotted.Length;
    }

    /// <summary>An error or refusal: the header, the question when there is one, and OPT when the query had it.</summary>
    private int Respond(Span<byte> response, DnsHeader h, bool withQuestion, ReadOnlySpan<byte> qname, RecordType qtype,
        RecordClass qclass, Rcode rcode, EdnsReply reply, int maxSize)
    {
        var w = new DnsMessageWriter(response[..Math.Min(response.Length, Math.Max(512, maxSize))]);
        w.Header = h;
        w.Header.Rcode = (byte)((int)rcode & 0xF);
        if (withQuestion) w.TryWriteQuestion(qname, qtype, qclass);
        return AppendOpt(response, w.Finish(), reply, (int)rcode >> 4);
    }

    private const int EdeOther = 0;                // RFC 8914 §4.1
    private const int EdeBlocked = 15;             // RFC 8914 §4.16
    private const int EdeProhibited = 18;          // RFC 8914 §4.19
    private const int EdeNotAuthoritative = 20;    // RFC 8914 §4.21
    private const int EdeNotSupported = 21;        // RFC 8914 §4.22
    private const int EdeOptionSize = 6;           // code, length, INFO-CODE; no EXTRA-TEXT

    /// <summary>
    /// What our OPT record carries: present when the query had EDNS, DO echoed, keepalive, an
    /// Extended DNS Error, and the COOKIE to return (client cookie and our server cookie).
    /// </summary>
    private ref struct EdnsReply(bool present, bool dnssecOk, int keepaliveMs)
    {
        public readonly bool Present = present;
        public readonly bool DnssecOk = dnssecOk;
        public readonly int KeepaliveMs = keepaliveMs;
        /// <summary>RFC 8914 INFO-CODE, or -1 for none.</summary>
        public int Ede = -1;
        public ReadOnlySpan<byte> Cookie;

        public readonly int Size => !Present ? 0 : OptRecordSize + (KeepaliveMs >= 0 ? KeepaliveOptionSize : 0) + (Ede >= 0 ? EdeOptionSize : 0)
            + (Cookie.IsEmpty ? 0 : 4 + Cookie.Length);
    }

    /// <summary>
    /// Appends our OPT record (RFC 6891 §6.1.2) after a finished message: payload size, the upper
    /// RCODE bits, version 0, DO echoed (RFC 3225), and a keepalive timeout over TCP (RFC 7828).
    /// </summary>
    private int AppendOpt(Span<byte> response, int length, EdnsReply reply, int extendedRcode)
    {
        if (!reply.Present) return length;
        var opt = response[length..];
        opt[0] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(opt[1..], (ushort)RecordType.OPT);
        BinaryPrimitives.WriteUInt16BigEndian(opt[3..], (ushort)_options.UdpMaxResponse);
        opt[5] = (byte)extendedRcode;
        opt[6] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(opt[7..], (ushort)(reply.DnssecOk ? 0x8000 : 0));
        int rdlength = 0;
        if (reply.KeepaliveMs >= 0)
        {
            BinaryPrimitives.WriteUInt16BigEndian(opt[11..], (ushort)EdnsOptionCode.TcpKeepalive);
            BinaryPrimitives.WriteUInt16BigEndian(opt[13..], 2);
            BinaryPrimitives.WriteUInt16BigEndian(opt[15..], (ushort)Math.Min(65535, reply.KeepaliveMs / 100));
            rdlength = KeepaliveOptionSize;
        }
        if (!reply.Cookie.IsEmpty)
        {
            var cookie = opt[(11 + rdlength)..];
            BinaryPrimitives.WriteUInt16BigEndian(cookie, (ushort)EdnsOptionCode.Cookie);
            BinaryPrimitives.WriteUInt16BigEndian(cookie[2..], (ushort)reply.Cookie.Length);
            reply.Cookie.CopyTo(cookie[4..]);
            rdlength += 4 + reply.Cookie.Length;
        }
        if (reply.Ede >= 0)
        {
            var ede = opt[(11 + rdlength)..];
            BinaryPrimitives.WriteUInt16BigEndian(ede, (ushort)EdnsOptionCode.ExtendedDnsError);
            BinaryPrimitives.WriteUInt16BigEndian(ede[2..], 2);
            BinaryPrimitives.WriteUInt16BigEndian(ede[4..], (ushort)reply.Ede);
            rdlength += EdeOptionSize;
        }
        BinaryPrimitives.WriteUInt16BigEndian(opt[9..], (ushort)rdlength);
        // One more record in the additional section.
        BinaryPrimitives.WriteUInt16BigEndian(response[10..], (ushort)(BinaryPrimitives.ReadUInt16BigEndian(response[10..]) + 1));
        return length + OptRecordSize + rdlength;
    }

    private struct EdnsQuery
    {
        public bool Present, Malformed, DnssecOk, Keepalive;
        public byte Version;
        public ushort PayloadSize;
        /// <summary>Where the COOKIE option's data is in the query (RFC 7873 §4), or -1.</summary>
        public int CookieOffset, CookieLength;
        /// <summary>Where the TSIG record starts (the last additional record, RFC 8945 §5.1), or -1.</summary>
        public int TsigStart;
    }

    /// <summary>Finds the OPT record among the additional records (RFC 6891 §6.1.1): at most one, owned by the root.</summary>
    private static EdnsQuery ReadEdns(ref DnsMessageReader reader, int additional)
    {
        var e = new EdnsQuery { CookieOffset = -1, TsigStart = -1 };
        Span<byte> name = stackalloc byte[DnsName.MaxLength];
        for (int i = 0; i < additional; i++)
        {
            int start = reader.Position;
            if (!reader.TryReadRecordHeader(name, out int nameLength, out var type, out var cls, out uint ttl, out int rdOffset, out int rdLength))
            {
                e.Malformed = true;
                return e;
            }
            if (type == RecordType.TSIG)
            {
                // RFC 8945 §5.2: a TSIG anywhere but last is FORMERR.
                if (i != additional - 1) { e.Malformed = true; return e; }
                e.TsigStart = start;
                continue;
            }
            if (type != RecordType.OPT) continue;
            if (e.Present || nameLength != 1)
            {
                e.Malformed = true;
                return e;
            }
            e.Present = true;
            e.PayloadSize = (ushort)cls;
            e.Version = (byte)(ttl >> 16);
            e.DnssecOk = (ttl & 0x8000) != 0;
            var options = reader.Message.Slice(rdOffset, rdLength);
            if (!EdnsOptionWire.TryValidate(options, out _))
            {
                e.Malformed = true;
                return e;
            }
            foreach (var option in new EdnsOptionEnumerator(options))
            {
                if (option.Code == EdnsOptionCode.TcpKeepalive) e.Keepalive = true;
                else if (option.Code == EdnsOptionCode.Cookie && e.CookieOffset < 0)
                {
                    // The option's data lies inside the message; keep its place, not a copy.
                    e.CookieOffset = rdOffset + (int)Unsafe.ByteOffset(ref MemoryMarshal.GetReference(options), ref MemoryMarshal.GetReference(option.Data));
                    e.CookieLength = option.Data.Length;
                }
            }
        }
        return e;
    }
}
