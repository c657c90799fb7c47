using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Portcullis.Client;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;

namespace Portcullis.Check;

/// <summary>How bad a finding is. The order matters: the report's exit code is the worst one.</summary>
public enum Severity { Ok, Info, Warning, Critical }

/// <summary>One line of the report: what was checked, what was found, and how to fix it (empty when nothing to fix).</summary>
public sealed record Finding(Severity Severity, string Check, string Text, string Fix);

/// <summary>What the operator asked for: one address, its port, the zone (or null to discover it), the burst size (0: none).</summary>
public sealed record AuditOptions(IPEndPoint Target, DnsName? Zone, int Burst, TimeSpan Timeout, IReadOnlyList<ResourceRecord>? TrustAnchor = null);

/// <summary>
/// `portcullis check`: audits one server with a fixed, bounded set of queries (docs/check.md).
/// A tool, not the query path: it may allocate, but every wait is bounded by the timeout and the
/// only load beyond single queries is the rate-limiting burst, printed to stderr before it is sent.
/// </summary>
public sealed class ServerAudit(AuditOptions options, TextWriter progress)
{
    /// <summary>An option code from the RFC 6891 §9 "Reserved for Local/Experimental Use" range (65001-65534).</summary>
    public const ushort UnknownOptionCode = 65001;
    /// <summary>An unassigned bit of the OPT record's Z field (RFC 6891 §6.1.4: must be zero, ignored, not echoed).</summary>
    public const ushort UnknownFlag = 0x0040;

    /// <summary>The most queries the search for the zone's largest answer sends (besides ANY and DNSKEY).</summary>
    public const int MaxLargestAnswerProbes = 28;
    /// <summary>The apex types probed for a large answer when the zone could not be transferred.
    /// DNSKEY is not among them: it is asked anyway, with ANY.</summary>
    private static readonly RecordType[] ApexTypes =
        [RecordType.TXT, RecordType.MX, RecordType.NS, RecordType.SOA, RecordType.CAA, RecordType.HTTPS];
    /// <summary>Names (relative to the zone) and types that are often large, probed besides the apex.</summary>
    private static readonly (string Label, RecordType Type)[] CommonNames =
        [("www", RecordType.A), ("www", RecordType.AAAA), ("www", RecordType.TXT), ("mail", RecordType.A), ("mail", RecordType.AAAA), ("mail", RecordType.TXT)];

    private readonly List<Finding> _findings = [];
    /// <summary>The zone's records when AXFR was allowed, for the amplification search.</summary>
    private List<ResourceRecord>? _transferred;
    public IReadOnlyList<Finding> Findings => _findings;
    /// <summary>The zone audited (given or discovered), null when none.</summary>
    public DnsName? Zone { get; private set; }
    /// <summary>False when neither UDP nor TCP answered: the rest was not tried.</summary>
    public bool Reachable { get; private set; }

    private IPEndPoint Target => options.Target;

    private void Add(Severity severity, string check, string text, string fix = "") => _findings.Add(new Finding(severity, check, text, fix));

    public void Run()
    {
        Zone = options.Zone;
        var probe = Zone ?? DnsName.Root;
        var udp = Udp(Query(probe, RecordType.SOA, rd: false, edns: Edns0()));
        var tcp = Tcp(Query(probe, RecordType.SOA, rd: false, edns: Edns0()));
        if (udp.Replies.Count > 0) Add(Severity.Ok, "udp", $"UDP port {Target.Port} answers ({Describe(udp.Replies[0])})");
        else Add(Severity.Critical, "udp", $"UDP: {udp.Error}", "open UDP port 53 in the firewall and check the server listens on this address");
        if (tcp.Replies.Count > 0) Add(Severity.Ok, "tcp", $"TCP port {Target.Port} answers ({Describe(tcp.Replies[0])})");
        else Add(udp.Replies.Count > 0 ? Severity.Warning : Severity.Critical, "tcp", $"TCP: {tcp.Error}",
            "open TCP port 53: truncated answers (large, DNSSEC) are retried over TCP (RFC 7766)");
        Reachable = udp.Replies.Count > 0 || tcp.Replies.Count > 0;
        if (!Reachable) return;
        bool overUdp = udp.Replies.Count > 0;

        FindZone(overUdp ? udp.Replies[0] : tcp.Replies[0]);
        OpenResolver();
        Transfer();
        if (overUdp)
        {
            EdnsChecks();
            Amplification();
            Cookies();
            Disclosure("version.bind");
            Disclosure("hostname.bind");
            RateLimit();
        }
        else Add(Severity.Info, "udp", "UDP checks (EDNS, amplification, cookies, version.bind, rate limiting) skipped: no UDP answer");
        if (Zone is null) Add(Severity.Info, "dnssec", "skipped: no zone");
        else _findings.AddRange(DnssecAudit.Run(Target, Zone, options.Timeout, options.TrustAnchor, DateTimeOffset.UtcNow));
    }

    // ---- zone ----

    private void FindZone(DnsMessage soaReply)
    {
        if (Zone is not null)
        {
            bool authoritative = soaReply.Rcode == Rcode.NoError && soaReply.Header.AuthoritativeAnswer
                && soaReply.Answers.Exists(r => r.Type == RecordType.SOA && r.Owner == Zone);
            if (authoritative) Add(Severity.Ok, "zone", $"authoritative for {Zone}");
            else Add(Severity.Warning, "zone", $"not authoritative for {Zone} ({Describe(soaReply)})", "load the zone on this server, or check the --zone given");
            return;
        }
        // Without --zone: the zone of a SOA answer for "." (a root server, or the authority SOA of
        // a server that answers for the root). Anything else: zone checks are skipped.
        var soa = soaReply.Rcode == Rcode.NoError ? soaReply.Answers.Find(r => r.Type == RecordType.SOA) ?? soaReply.Authority.Find(r => r.Type == RecordType.SOA) : null;
        if (soa is not null && soaReply.Header.AuthoritativeAnswer)
        {
            Zone = soa.Owner;
            Add(Severity.Info, "zone", $"zone {Zone} found from the SOA answer for \".\"");
        }
        else Add(Severity.Info, "zone", "no zone found (\". SOA\" gave no authoritative SOA): zone checks skipped", "give the zone with --zone");
    }

    // ---- open resolver ----

    private void OpenResolver()
    {
        // A name outside the zone (RFC 5358: recursion only for the server's own clients).
        var outside = DnsName.Parse(Zone is not null && (Zone == DnsName.Parse("example.com.") || DnsName.Parse("www.example.com.").IsSubdomainOf(Zone)) ? "www.example.net." : "www.example.com.");
        // One try: a resolver with no way out (or a slow upstream) is still resolving when the
        // timeout ends; retrying would only repeat the wait.
        var q = Query(outside, RecordType.A, rd: true, edns: Edns0());
        var r = DnsExchange.Udp(Target, q.ToWire(), q.Questions[0], options.Timeout, retries: 0);
        if (r.Replies.Count == 0)
        {
            // No reply in time: an authoritative-only server refuses at once, a resolver goes on
            // resolving. RA in a reply to this client (RFC 1035 §4.1.1: "recursion available")
            // to an in-zone RD=1 query tells them apart.
            var inside = Udp(Query(Zone ?? DnsName.Root, RecordType.SOA, rd: true, edns: Edns0()));
            if (inside.Replies.Count > 0 && inside.Replies[0].Header.RecursionAvailable)
                Add(Severity.Critical, "open-resolver", $"recursion offered to this client: RA set, and {outside} A with RD=1 was still being resolved after {options.Timeout.TotalSeconds:0.#} s",
                    "restrict recursion to your own clients (BIND allow-recursion, Unbound access-control) or turn it off on an authoritative server");
            else Add(Severity.Info, "open-resolver", $"{outside} A with RD=1: no reply ({r.Error}), RA not set");
            return;
        }
        var reply = r.Replies[0];
        // RA set without REFUSED: the server offers recursion, even if it fails upstream (SERVFAIL).
        if (reply.Header.RecursionAvailable && reply.Rcode != Rcode.Refused)
            Add(Severity.Critical, "open-resolver", $"recursion offered to this client: {outside} A with RD=1 gave {Describe(reply)} with RA",
                "restrict recursion to your own clients (BIND allow-recursion, Unbound access-control) or turn it off on an authoritative server");
        else if (reply.Answers.Count > 0 && !reply.Header.AuthoritativeAnswer)
            Add(Severity.Critical, "open-resolver", $"{outside} A with RD=1 answered without authority ({Describe(reply)})",
                "restrict recursion and cache access to your own clients");
        else if (reply.Header.RecursionAvailable && RecursiveAnswerInside() is { } inside)
            // Names outside refused, but RA set: a resolver that limits what it resolves (Unbound's
            // local-zone refuse with stub zones) still resolves for this client.
            Add(Severity.Critical, "open-resolver", $"recursion offered to this client: {outside} A was refused, but {inside}",
                "restrict recursion to your own clients (BIND allow-recursion, Unbound access-control) or turn it off on an authoritative server");
        else Add(Severity.Ok, "open-resolver", $"{outside} A with RD=1: {Describe(reply)}{(reply.Header.RecursionAvailable ? " (RA set)" : "")}");
    }

    /// <summary>The zone's SOA (or the root's NS) asked with RD=1: a NOERROR answer with RA and without
    /// AA is a recursive answer. Returns what was seen, or null when the answer is not recursive.</summary>
    private string? RecursiveAnswerInside()
    {
        var name = Zone ?? DnsName.Root;
        var type = Zone is null ? RecordType.NS : RecordType.SOA;
        var r = Udp(Query(name, type, rd: true, edns: Edns0()));
        if (r.Replies.Count == 0) return null;
        var m = r.Replies[0];
        return m.Rcode == Rcode.NoError && m.Header.RecursionAvailable && !m.Header.AuthoritativeAnswer && m.Answers.Count > 0
            ? $"{name} {type} with RD=1 was answered recursively ({Describe(m)}, RA set, not authoritative)" : null;
    }

    // ---- zone transfer ----

    private void Transfer()
    {
        if (Zone is null) { Add(Severity.Info, "axfr", "skipped: no zone"); return; }
        var r = Tcp(Query(Zone, RecordType.AXFR, rd: false, edns: null));
        int records = r.Replies.Sum(m => m.Answers.Count);
        if (r.Replies.Count > 0 && r.Replies[0].Rcode == Rcode.NoError && records > 0 && r.Status == ExchangeStatus.Answered)
            _transferred = [.. r.Replies.SelectMany(m => m.Answers)];
        if (r.Replies.Count > 0 && r.Replies[0].Rcode == Rcode.NoError && records > 0)
            Add(Severity.Critical, "axfr", $"AXFR of {Zone} allowed without a key: {records} records",
                "allow transfers only to secondaries, with a TSIG key (RFC 5936 §6)");
        else if (r.Replies.Count > 0) Add(Severity.Ok, "axfr", $"AXFR of {Zone} refused ({Describe(r.Replies[0])})");
        else Add(Severity.Ok, "axfr", $"AXFR of {Zone}: no transfer ({r.Error})");
    }

    // ---- EDNS, in the manner of ISC's EDNS compliance tests ----

    private void EdnsChecks()
    {
        var name = Zone ?? DnsName.Root;
        var plain = Udp(Query(name, RecordType.SOA, rd: false, edns: null));
        Rcode expected = Zone is not null ? Rcode.NoError : plain.Replies.Count > 0 ? plain.Replies[0].Rcode : Rcode.NoError;
        const string check = "edns";
        if (Zone is not null && plain.Replies.Count > 0 && plain.Replies[0].Rcode == Rcode.Refused)
        {
            // A resolver (or a server not serving the zone) refusing RD=0 queries: EDNS is judged on
            // its REFUSED answers, which must still carry OPT (RFC 6891 §7).
            expected = Rcode.Refused;
            Add(Severity.Info, check, $"{name} SOA with RD=0 is REFUSED: EDNS is judged on the REFUSED answers");
        }
        if (plain.Replies.Count == 0) Add(Severity.Warning, check, $"plain query (no EDNS): {plain.Error}", "answer queries without EDNS (RFC 6891 §7)");
        else if (plain.Replies[0].Rcode != expected || plain.Replies[0].Edns is not null)
            Add(Severity.Warning, check, $"plain query: expected {expected} without OPT, got {Describe(plain.Replies[0])}", "answer plain queries without an OPT record (RFC 6891 §7)");
        else Add(Severity.Ok, check, $"plain query: {expected}, no OPT");

        Expect("EDNS0", Edns0(), expected, "answer EDNS0 queries with an OPT record (RFC 6891 §7)", null);

        var v1 = Edns0(); v1.Version = 1;
        Expect("EDNS version 1", v1, Rcode.BadVers, "answer unknown EDNS versions with BADVERS and OPT version 0 (RFC 6891 §6.1.3)",
            m => m.Edns is { Version: 0 } ? null : "OPT version not 0");

        var option = Edns0(); option.Options.Add(new UnknownEdnsOption((EdnsOptionCode)UnknownOptionCode, [1, 2, 3, 4]));
        Expect($"unknown option {UnknownOptionCode}", option, expected, "ignore unknown EDNS options and do not echo them (RFC 6891 §6.1.2)",
            m => m.Edns!.Options.Exists(o => (ushort)o.Code == UnknownOptionCode) ? "the option was echoed" : null);

        var flag = Edns0(); flag.Flags = UnknownFlag;
        Expect($"unknown flag 0x{UnknownFlag:x4}", flag, expected, "ignore unknown EDNS flags and clear them in replies (RFC 6891 §6.1.4)",
            m => (m.Edns!.Flags & UnknownFlag) != 0 ? "the flag was echoed" : null);

        var dnssec = Edns0(); dnssec.Flags = Edns.DnssecOkFlag;
        Expect("DO=1", dnssec, expected, "accept the DO bit (RFC 3225)", null);

        Truncation();

        void Expect(string what, Edns edns, Rcode rcode, string fix, Func<DnsMessage, string?>? extra)
        {
            var r = Udp(Query(name, RecordType.SOA, rd: false, edns: edns));
            if (r.Replies.Count == 0) { Add(Severity.Warning, check, $"{what}: {r.Error}", fix); return; }
            var m = r.Replies[0];
            string? problem = m.Edns is null ? "no OPT in the reply" : m.Rcode != rcode ? $"expected {rcode}" : extra?.Invoke(m);
            if (problem is null) Add(Severity.Ok, check, $"{what}: {m.Rcode} with OPT");
            else Add(Severity.Warning, check, $"{what}: {problem}, got {Describe(m)}", fix);
        }
    }

    /// <summary>
    /// ISC's "truncation and TCP retry": an apex answer larger than 512 octets (found over TCP) asked
    /// over UDP with an EDNS buffer of 512 must come back with TC=1 and no more than 512 octets, and
    /// the client's retry over TCP must get it whole.
    /// </summary>
    private void Truncation()
    {
        const string check = "truncation";
        if (Zone is null) { Add(Severity.Info, check, "skipped: no zone"); return; }
        foreach (var type in (ReadOnlySpan<RecordType>)[RecordType.DNSKEY, RecordType.TXT, RecordType.NS, RecordType.MX, RecordType.ANY])
        {
            var full = Tcp(Query(Zone, type, rd: false, edns: Edns0()));
            if (full.Replies.Count == 0 || full.Size <= 512 || full.Replies[0].Rcode != Rcode.NoError) continue;
            var small = Edns0(); small.UdpPayloadSize = 512;
            var r = Udp(Query(Zone, type, rd: false, edns: small));
            string what = $"{Zone} {RecordTypes.ToText(type)} ({full.Size} octets over TCP) over UDP with a 512-octet buffer";
            if (r.Replies.Count == 0) Add(Severity.Warning, check, $"{what}: {r.Error}", "answer truncated queries with TC=1 instead of dropping them");
            else if (r.Size > 512) Add(Severity.Warning, check, $"{what}: {r.Size} octets, more than the client's buffer",
                "never send more than the client's EDNS buffer over UDP (RFC 6891 §7); set TC=1 instead");
            else if (r.Replies[0].Header.Truncated) Add(Severity.Ok, check, $"{what}: TC=1 in {r.Size} octets; the retry over TCP got it whole");
            else Add(Severity.Ok, check, $"{what}: fitted in {r.Size} octets (minimised)");
            return;
        }
        Add(Severity.Info, check, "not exercised: no apex answer larger than 512 octets (DNSKEY, TXT, NS, MX, ANY over TCP)");
    }

    // ---- amplification ----

    /// <summary>
    /// The response/query size ratio over UDP with a 4096-octet EDNS buffer (what an attacker
    /// spoofing the victim's address asks for) of ANY and DNSKEY at the apex, and of the largest
    /// answers the zone has that can be found: every RRset of the transfer when AXFR was allowed
    /// (the largest <see cref="MaxLargestAnswerProbes"/> by their wire size), else the apex types
    /// and a few common names. The count is printed before the queries are sent.
    /// </summary>
    private void Amplification()
    {
        if (Zone is null) { Add(Severity.Info, "amplification", "skipped: no zone"); return; }
        var candidates = LargestAnswerCandidates(Zone);
        progress.WriteLine($"portcullis: sending {candidates.Count + 2} queries (ANY, DNSKEY and {candidates.Count} of the zone's largest answers{(_transferred is null ? ", guessed" : ", from the transfer")}) to {DnsExchange.Format(Target)}");
        double largest = 0;
        string largestWhat = "";
        int answered = 0;
        foreach (var (name, type) in (IEnumerable<(DnsName, RecordType)>)[(Zone, RecordType.ANY), (Zone, RecordType.DNSKEY), .. candidates])
        {
            var edns = Edns0(); edns.UdpPayloadSize = 4096;
            var query = Query(name, type, rd: false, edns: edns);
            int querySize = query.ToWire().Length;
            // One try: a lost datagram only makes the estimate lower, and the load stays as printed.
            var r = DnsExchange.Udp(Target, query.ToWire(), query.Questions[0], options.Timeout, retries: 0);
            if (r.Replies.Count == 0) continue;
            answered++;
            double ratio = (double)r.Size / querySize;
            if (ratio > largest) (largest, largestWhat) = (ratio, $"{name} {RecordTypes.ToText(type)}: {r.Size} octets for a {querySize}-octet query");
            if (type == RecordType.ANY)
            {
                var m = r.Replies[0];
                int rrsets = m.Answers.Select(a => (a.Owner, a.Type)).Where(k => k.Type != RecordType.RRSIG).Distinct().Count();
                // RFC 8482 §4: one RRset (or HINFO, or a refusal) is a minimised ANY answer.
                if (rrsets <= 1 || m.Rcode != Rcode.NoError)
                    Add(Severity.Ok, "any", $"ANY minimised ({rrsets} RRset(s), {Describe(m)})");
                else Add(Severity.Warning, "any", $"ANY not minimised: {rrsets} RRsets over UDP", "answer ANY with one RRset (RFC 8482)");
            }
        }
        string tried = $"{answered} of {candidates.Count + 2} queries answered over UDP";
        if (largest == 0) Add(Severity.Info, "amplification", $"no UDP answer to ANY, DNSKEY or the zone's largest answers ({tried})");
        else if (largest > 10) Add(Severity.Warning, "amplification", $"largest ratio {largest.ToString("0.0", CultureInfo.InvariantCulture)}x ({largestWhat}; {tried})",
            "minimise ANY, enable response rate limiting, keep large RRsets (DNSKEY, TXT) small");
        else Add(Severity.Info, "amplification", $"largest ratio {largest.ToString("0.0", CultureInfo.InvariantCulture)}x ({largestWhat}; {tried})");
    }

    /// <summary>
    /// The queries that may draw the zone's largest answers. From a transfer: the RRsets grouped by
    /// owner and type (RRSIGs travel with their RRset, the SOA is small and comes twice, and the apex DNSKEY is asked
    /// anyway), ordered by their uncompressed wire size, largest first. Without one: the apex
    /// types and the common names, in that order.
    /// </summary>
    private List<(DnsName Name, RecordType Type)> LargestAnswerCandidates(DnsName zone)
    {
        if (_transferred is { } records)
            return records
                .Where(r => r.Type is not (RecordType.RRSIG or RecordType.SOA) && !(r.Type == RecordType.DNSKEY && r.Owner == zone))
                .GroupBy(r => (r.Owner, r.Type))
                .Select(g => (g.Key, Size: g.Sum(r => r.Owner.WireLength + 10 + r.Data.Length)))
                .OrderByDescending(g => g.Size).ThenBy(g => g.Key.Owner.ToString(), StringComparer.Ordinal)
                .Take(MaxLargestAnswerProbes)
                .Select(g => g.Key).ToList();
        var guessed = new List<(DnsName, RecordType)>();
        foreach (var type in ApexTypes) guessed.Add((zone, type));
        foreach (var (label, type) in CommonNames)
            if (DnsName.TryParse(label, zone, out var name, out _)) guessed.Add((name!, type));
        return guessed;
    }

    // ---- cookies ----

    private void Cookies()
    {
        var edns = Edns0();
        edns.Options.Add(new CookieOption(RandomNumberGenerator.GetBytes(8)));
        var r = Udp(Query(Zone ?? DnsName.Root, RecordType.SOA, rd: false, edns: edns));
        var cookie = r.Replies.Count > 0 ? r.Replies[0].Edns?.Find<CookieOption>() : null;
        if (cookie is not null && cookie.ServerCookie.Length >= 8) Add(Severity.Ok, "cookies", $"server cookie returned ({cookie.ServerCookie.Length} octets)");
        else Add(Severity.Info, "cookies", "no server cookie returned", "enable DNS cookies (RFC 7873, RFC 9018)");
    }

    // ---- version.bind / hostname.bind ----

    private void Disclosure(string what)
    {
        var r = Udp(Query(DnsName.Parse(what + "."), RecordType.TXT, rd: false, edns: Edns0(), RecordClass.CH));
        var m = r.Replies.Count > 0 ? r.Replies[0] : null;
        if (m is not null && m.Rcode == Rcode.NoError && m.Answers.Exists(a => a.Type == RecordType.TXT))
        {
            var txt = m.Answers.Find(a => a.Type == RecordType.TXT)!.Data;
            string text = txt.Length > 1 ? System.Text.Encoding.ASCII.GetString(txt, 1, Math.Min(txt[0], txt.Length - 1)) : "";
            Add(Severity.Warning, what, $"{what} CH TXT disclosed: \"{text}\"", what == "version.bind"
                ? "hide the version (BIND version none; Knot version; NSD hide-version: yes)"
                : "hide the host name (BIND hostname none; NSD hide-identity: yes)");
        }
        else Add(Severity.Ok, what, m is null ? $"{what}: no reply" : $"{what}: {Describe(m)}");
    }

    // ---- rate limiting ----

    private void RateLimit()
    {
        if (options.Burst <= 0) { Add(Severity.Info, "rrl", "burst skipped (--no-burst)"); return; }
        var name = Zone ?? DnsName.Root;
        int n = options.Burst;
        progress.WriteLine($"portcullis: sending {n} identical queries ({name} SOA) to {DnsExchange.Format(Target)}");
        int full = 0, slipped = 0;
        using var socket = new Socket(Target.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        var seen = new bool[n];
        ushort baseId = BinaryPrimitives.ReadUInt16BigEndian(RandomNumberGenerator.GetBytes(2));
        try
        {
            socket.Connect(Target);
            socket.ReceiveBufferSize = 1 << 20;
            var buffer = new byte[65535];
            for (int i = 0; i < n; i++)
            {
                var query = Query(name, RecordType.SOA, rd: false, edns: Edns0());
                query.Header.Id = (ushort)(baseId + i);
                socket.Send(query.ToWire());
                Drain(0);
            }
            // Bounded wait: at most the timeout after the last query, ended early once all are in.
            var clock = Stopwatch.StartNew();
            while (full + slipped < n && clock.Elapsed < options.Timeout)
                if (!Drain((int)Math.Max(1, (options.Timeout - clock.Elapsed).TotalMilliseconds))) break;

            bool Drain(int waitMs)
            {
                bool any = false;
                while (socket.Poll(any ? 0 : waitMs * 1000, SelectMode.SelectRead))
                {
                    int got;
                    try { got = socket.Receive(buffer); }
                    catch (SocketException) { return any; }   // ICMP unreachable
                    any = true;
                    if (got < 12) continue;
                    int index = (ushort)(BinaryPrimitives.ReadUInt16BigEndian(buffer) - baseId);
                    if (index >= n || seen[index] || (buffer[2] & 0x80) == 0) continue;
                    seen[index] = true;
                    if ((buffer[2] & 0x02) != 0) slipped++; else full++;
                }
                return any;
            }
        }
        catch (SocketException e)
        {
            Add(Severity.Info, "rrl", $"burst failed: {e.Message}");
            return;
        }
        int none = n - full - slipped;
        string counts = $"{n} queries: {full} full answers, {slipped} truncated (slip), {none} no reply";
        if (full == n) Add(Severity.Warning, "rrl", $"no response rate limiting: {counts}",
            "enable response rate limiting (BIND rate-limit, Knot rrl module, NSD rrl-ratelimit)");
        else Add(Severity.Ok, "rrl", $"responses limited: {counts}");
    }

    // ---- helpers ----

    private static Edns Edns0() => new() { UdpPayloadSize = Edns.DefaultUdpPayloadSize };

    private static DnsMessage Query(DnsName name, RecordType type, bool rd, Edns? edns, RecordClass @class = RecordClass.IN)
    {
        ushort id = BinaryPrimitives.ReadUInt16BigEndian(RandomNumberGenerator.GetBytes(2));
        var query = DnsMessage.CreateQuery(name, type, @class, id, rd);
        query.Edns = edns;
        return query;
    }

    private ExchangeResult Udp(DnsMessage query) => DnsExchange.Udp(Target, query.ToWire(), query.Questions[0], options.Timeout, retries: 1);

    private ExchangeResult Tcp(DnsMessage query) => DnsExchange.Tcp(Target, query.ToWire(), query.Questions[0], options.Timeout);

    /// <summary>"NOERROR aa, 1 answer": what came back, briefly.</summary>
    private static string Describe(DnsMessage m) =>
        $"{m.Rcode.ToString().ToUpperInvariant()}{(m.Header.AuthoritativeAnswer ? " aa" : "")}{(m.Header.RecursionAvailable ? " ra" : "")}{(m.Header.Truncated ? " tc" : "")}, {m.Answers.Count} answer(s)"
        + (m.Edns is { } e ? $", OPT v{e.Version}" : "");
}
