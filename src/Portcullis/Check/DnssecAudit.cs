using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using Portcullis.Client;
using Portcullis.Protocol;
using Portcullis.Protocol.Dnssec;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.ZoneText;

namespace Portcullis.Check;

/// <summary>
/// The DNSSEC part of `portcullis check` (docs/check.md): asks the server for the zone's DNSKEY,
/// SOA and NS RRsets with DO=1 (RFC 3225; TCP when truncated), verifies their RRSIGs with the
/// zone's keys (RFC 4035 §5.3), follows the chain from a trust anchor (a DS or DNSKEY the operator
/// gives, RFC 4035 §5.2) to the DNSKEY RRset, and warns of signatures close to expiry. Three
/// queries (four with a truncated answer); every finding has the check name "dnssec".
/// </summary>
public static class DnssecAudit
{
    public const string Check = "dnssec";
    /// <summary>Signatures expiring sooner than this are a warning: a week leaves time to notice a stuck signer.</summary>
    public static readonly TimeSpan ExpiryWarning = TimeSpan.FromDays(7);

    private const string SignFix = "sign the zone (dnssec-signzone, Knot's or BIND's automatic signing) and publish its DS in the parent";
    private const string ResignFix = "re-sign the zone / check the signer (its schedule, its clock, its keys)";

    /// <summary>Runs the checks; <paramref name="now"/> is the time signatures are judged at.</summary>
    public static IReadOnlyList<Finding> Run(IPEndPoint target, DnsName zone, TimeSpan timeout, IReadOnlyList<ResourceRecord>? trustAnchor, DateTimeOffset now)
    {
        var findings = new List<Finding>();
        void Add(Severity severity, string text, string fix = "") => findings.Add(new Finding(severity, Check, text, fix));
        bool anchored = trustAnchor is { Count: > 0 };

        var dnskey = Fetch(target, zone, RecordType.DNSKEY, timeout);
        if (dnskey.Error is not null)
        {
            Add(Severity.Warning, $"{zone} DNSKEY: {dnskey.Error}: DNSSEC not checked", "answer DNSKEY queries with DO=1 over UDP and TCP");
            return findings;
        }
        var keys = dnskey.RRset;
        if (keys.Count == 0)
        {
            if (anchored) Add(Severity.Critical, $"zone is not signed (no DNSKEY at {zone}) but a trust anchor was given: validation fails", SignFix);
            else Add(Severity.Info, $"zone is not signed (no DNSKEY at {zone})", SignFix);
            return findings;
        }
        Add(Severity.Ok, $"DNSKEY: {keys.Count} key(s): {string.Join(", ", keys.Select(DescribeKey))}");

        // Each RRset: a signature that validates with a key of the zone (RFC 4035 §5.3).
        DateTimeOffset? soonest = null;
        string soonestWhat = "";
        foreach (var type in (ReadOnlySpan<RecordType>)[RecordType.DNSKEY, RecordType.SOA, RecordType.NS])
        {
            var fetched = type == RecordType.DNSKEY ? dnskey : Fetch(target, zone, type, timeout);
            string what = $"{zone} {RecordTypes.ToText(type)}";
            if (fetched.Error is not null) { Add(Severity.Warning, $"{what}: {fetched.Error}", "answer queries for the zone's apex with DO=1"); continue; }
            if (fetched.RRset.Count == 0) { Add(Severity.Warning, $"{what}: no records in the answer", "serve the zone's apex SOA and NS"); continue; }
            if (fetched.Signatures.Count == 0)
            {
                Add(Severity.Critical, $"{what}: no RRSIG in the answer to a DO=1 query", "sign the zone, and serve RRSIGs to queries with DO=1 (RFC 4035 §3.1.1)");
                continue;
            }
            var checks = fetched.Signatures.Select(s => DnssecVerifier.Verify(s, fetched.RRset, keys, now)).ToList();
            var valid = checks.Where(c => c.IsValid).OrderByDescending(c => c.Expiration).ToList();
            if (valid.Count > 0)
            {
                var best = valid[0];
                Add(Severity.Ok, $"{what}: signature by key {best.KeyTag} ({DnssecAlgorithms.ToText(best.Algorithm)}) validates, valid until {Date(best.Expiration)}");
                // The RRset stays valid as long as its longest-lived good signature.
                if (soonest is null || best.Expiration < soonest) (soonest, soonestWhat) = (best.Expiration, what);
                continue;
            }
            if (checks.All(c => c.Status == SignatureStatus.UnsupportedAlgorithm))
            {
                Add(Severity.Info, $"{what}: signed with {string.Join(", ", checks.Select(c => DnssecAlgorithms.ToText(c.Algorithm)).Distinct())}, which this tool cannot verify",
                    "also sign with ECDSAP256SHA256 or ED25519 (RFC 8624 §3.1)");
                continue;
            }
            var worst = checks.OrderBy(c => FailureRank(c.Status)).First();
            switch (worst.Status)
            {
                case SignatureStatus.Expired:
                    Add(Severity.Critical, $"{what}: signature by key {worst.KeyTag} expired {Ago(now - worst.Expiration)} ago ({Date(worst.Expiration)}): validating resolvers answer SERVFAIL", ResignFix);
                    break;
                case SignatureStatus.NotYetValid:
                    Add(Severity.Critical, $"{what}: signature by key {worst.KeyTag} not valid before {Date(worst.Inception)}: validating resolvers answer SERVFAIL",
                        "check the signer's clock; sign with an inception in the past");
                    break;
                default:
                    Add(Severity.Critical, $"{what}: no signature validates ({string.Join(", ", checks.Select(c => $"key {c.KeyTag}: {Describe(c.Status)}"))})",
                        "re-sign the zone with keys published in its DNSKEY RRset");
                    break;
            }
        }

        if (soonest is { } expiry)
        {
            var left = expiry - now;
            if (left < ExpiryWarning)
                Add(Severity.Warning, $"signatures expire in {Ago(left)} ({soonestWhat} on {Date(expiry)})", ResignFix);
            else Add(Severity.Ok, $"signatures valid for {Ago(left)} at least ({soonestWhat} until {Date(expiry)})");
        }

        TrustChain(zone, keys, dnskey.Signatures, trustAnchor, now, Add);
        return findings;
    }

    /// <summary>
    /// RFC 4035 §5.2: a DS (or a DNSKEY taken as trust anchor, RFC 4035 §4.4) designates a key of
    /// the zone, and that key's signature over the DNSKEY RRset validates: then every key of the
    /// set is authenticated.
    /// </summary>
    private static void TrustChain(DnsName zone, List<ResourceRecord> keys, List<ResourceRecord> dnskeySignatures,
        IReadOnlyList<ResourceRecord>? trustAnchor, DateTimeOffset now, Action<Severity, string, string> add)
    {
        if (trustAnchor is not { Count: > 0 })
        {
            add(Severity.Info, "no trust anchor given (--ds or --trust-anchor): chain not checked", "give the zone's DS (as the parent publishes it) with --ds");
            return;
        }
        var anchors = trustAnchor.Where(a => a.Owner == zone && a.Type is RecordType.DS or RecordType.DNSKEY).ToList();
        if (anchors.Count == 0)
        {
            add(Severity.Critical, $"the trust anchor is for {string.Join(", ", trustAnchor.Select(a => a.Owner.ToString()).Distinct())}, not {zone}: chain not validated",
                $"give a DS or DNSKEY record owned by {zone}");
            return;
        }
        const string chainFix = "publish in the parent the DS of the KSK that signs the DNSKEY RRset (dnssec-dsfromkey), or sign the DNSKEY RRset with the key the DS designates";
        var problems = new List<string>();
        bool anyCheckable = false, anyDesignated = false;
        foreach (var anchor in anchors)
        {
            if (anchor.Type == RecordType.DS && !DsDigest.IsSupported((DsDigestType)anchor.Data[3]))
            {
                problems.Add($"DS {DsTag(anchor)}: digest type {anchor.Data[3]} not supported");
                continue;
            }
            anyCheckable = true;
            foreach (var key in keys)
            {
                bool designated = anchor.Type == RecordType.DS
                    ? DsDigest.Compare(anchor.Data, zone, key.Data) == DsMatch.Match
                    : anchor.Data.AsSpan().SequenceEqual(key.Data);
                if (!designated) continue;
                anyDesignated = true;
                string link = (anchor.Type == RecordType.DS ? $"DS {DsTag(anchor)} ({DnssecAlgorithms.ToText((DsDigestType)anchor.Data[3])})" : "the trust-anchor DNSKEY")
                    + $" matches DNSKEY {DescribeKey(key)}";
                var checks = dnskeySignatures.Select(s => DnssecVerifier.Verify(s, keys, key, now)).Where(c => c.Status != SignatureStatus.KeyMismatch).ToList();
                if (checks.Any(c => c.IsValid))
                {
                    add(Severity.Ok, $"chain from the trust anchor validates: {link}, which signs the DNSKEY RRset", "");
                    return;
                }
                if (checks.Count > 0 && checks.All(c => c.Status == SignatureStatus.UnsupportedAlgorithm))
                {
                    add(Severity.Info, $"{link}; its algorithm {DnssecAlgorithms.ToText(DnsKey.Algorithm(key.Data))} cannot be verified by this tool", "");
                    return;
                }
                problems.Add(checks.Count == 0 ? $"{link} but that key does not sign the DNSKEY RRset"
                    : $"{link} but its signature of the DNSKEY RRset is {Describe(checks.OrderBy(c => FailureRank(c.Status)).First().Status)}");
            }
        }
        if (!anyCheckable)
        {
            add(Severity.Info, $"chain not checked: {string.Join("; ", problems)}", "publish a DS with digest type 2 (SHA-256)");
            return;
        }
        if (!anyDesignated)
            problems.Add($"no DNSKEY matches the trust anchor ({string.Join(", ", anchors.Select(a => a.Type == RecordType.DS ? $"DS {DsTag(a)}" : $"DNSKEY {DnsKey.KeyTag(a.Data)}"))}; "
                + $"the zone's keys: {string.Join(", ", keys.Select(k => DnsKey.KeyTag(k.Data).ToString(CultureInfo.InvariantCulture)))})");
        add(Severity.Critical, $"chain from the trust anchor does not validate: {string.Join("; ", problems)}", chainFix);
    }

    /// <summary>
    /// The trust anchor of `--ds` / `--trust-anchor`: a path to a file in zone-file format holding
    /// DS and/or DNSKEY records (other records are ignored; /usr/share/dns/root.key is one), or the
    /// text of one such record ("example.com. DS 12345 13 2 ABCD..."). Owners are absolute (relative
    /// to the root); the TTL and class may be left out. Null and a one-line error when nothing usable is found.
    /// </summary>
    public static IReadOnlyList<ResourceRecord>? ParseTrustAnchor(string textOrPath, out string? error)
    {
        error = null;
        bool isFile = File.Exists(textOrPath);
        string source = isFile ? textOrPath : "trust anchor";
        if (!isFile && !textOrPath.Trim().Contains(' ') && !textOrPath.Contains('\t'))
        {
            error = $"{textOrPath}: no such file, and not a DS or DNSKEY record";
            return null;
        }
        var records = new List<ResourceRecord>();
        try
        {
            var options = new ZoneReaderOptions { DefaultTtl = 0, CollectErrors = true };
            using var reader = isFile ? ZoneReader.Open(textOrPath, DnsName.Root, options) : new ZoneReader(new StringReader(textOrPath), DnsName.Root, source, options);
            foreach (var record in reader.ReadRecords())
                if (record.Type is RecordType.DS or RecordType.DNSKEY) records.Add(record);
            if (reader.Errors.Count > 0)
            {
                error = reader.Errors[0].Message;
                return null;
            }
        }
        catch (Exception e) when (e is DnsFormatException or IOException or UnauthorizedAccessException)
        {
            error = isFile ? $"{textOrPath}: {e.Message}" : e.Message;
            return null;
        }
        var malformed = records.Find(r => r.Type == RecordType.DS ? r.Data.Length < 5 : !DnsKey.IsWellFormed(r.Data));
        if (malformed is not null) { error = $"{source}: malformed record: {malformed}"; return null; }
        if (records.Count == 0) { error = $"{source}: no DS or DNSKEY record"; return null; }
        return records;
    }

    // ---- queries ----

    private sealed record Fetched(List<ResourceRecord> RRset, List<ResourceRecord> Signatures, string? Error);

    /// <summary>One apex query with EDNS and DO=1 (RFC 3225 §3: RRSIGs only come to DO=1), retried over TCP when truncated.</summary>
    private static Fetched Fetch(IPEndPoint target, DnsName zone, RecordType type, TimeSpan timeout)
    {
        var query = DnsMessage.CreateQuery(zone, type, RecordClass.IN, BinaryPrimitives.ReadUInt16BigEndian(RandomNumberGenerator.GetBytes(2)), recursionDesired: false);
        query.Edns = new Edns { UdpPayloadSize = Edns.DefaultUdpPayloadSize, DnssecOk = true };
        byte[] wire = query.ToWire();
        var result = DnsExchange.Udp(target, wire, query.Questions[0], timeout, retries: 1);
        if (result.Replies.Count == 0 || result.Replies[0].Header.Truncated)
        {
            var tcp = DnsExchange.Tcp(target, wire, query.Questions[0], timeout);
            if (tcp.Replies.Count == 0)
                return new Fetched([], [], result.Replies.Count == 0 ? result.Error ?? "no reply" : $"truncated over UDP and {tcp.Error}");
            result = tcp;
        }
        var reply = result.Replies[0];
        if (reply.Rcode != Rcode.NoError) return new Fetched([], [], $"answered {reply.Rcode.ToString().ToUpperInvariant()}");
        var rrset = reply.Answers.Where(r => r.Type == type && r.Owner == zone && r.Class == RecordClass.IN).ToList();
        var signatures = reply.Answers.Where(r => r.Type == RecordType.RRSIG && r.Owner == zone && r.Class == RecordClass.IN
            && Rrsig.TryRead(r.Data, out var sig) && sig.TypeCovered == type).ToList();
        return new Fetched(rrset, signatures, null);
    }

    // ---- text ----

    private static string DescribeKey(ResourceRecord key) =>
        DnsKey.IsWellFormed(key.Data)
            ? $"{DnsKey.KeyTag(key.Data)} {DnssecAlgorithms.ToText(DnsKey.Algorithm(key.Data))} {DnsKey.Role(key.Data)}"
            : "malformed key";

    private static string DsTag(ResourceRecord ds) => $"{BinaryPrimitives.ReadUInt16BigEndian(ds.Data)} {DnssecAlgorithms.ToText((DnssecAlgorithm)ds.Data[2])}";

    /// <summary>Which failure to report when no signature validates: a time problem first, then the rest.</summary>
    private static int FailureRank(SignatureStatus s) => s switch
    {
        SignatureStatus.Expired => 0,
        SignatureStatus.NotYetValid => 1,
        SignatureStatus.BadSignature => 2,
        SignatureStatus.RrsetMismatch => 3,
        SignatureStatus.Malformed => 4,
        SignatureStatus.KeyMismatch => 5,
        _ => 6,
    };

    private static string Describe(SignatureStatus s) => s switch
    {
        SignatureStatus.Valid => "valid",
        SignatureStatus.BadSignature => "a bad signature",
        SignatureStatus.Expired => "expired",
        SignatureStatus.NotYetValid => "not yet valid",
        SignatureStatus.UnsupportedAlgorithm => "an unsupported algorithm",
        SignatureStatus.KeyMismatch => "no such key in the DNSKEY RRset",
        SignatureStatus.RrsetMismatch => "not covering this RRset",
        _ => "malformed",
    };

    private static string Date(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);

    /// <summary>"3 days", "5 hours", "12 minutes": rounded up, as an operator counts what is left.</summary>
    private static string Ago(TimeSpan span)
    {
        if (span < TimeSpan.Zero) span = span.Negate();
        if (span.TotalDays >= 1) return Plural((int)Math.Ceiling(span.TotalDays - 1e-9), "day");
        if (span.TotalHours >= 1) return Plural((int)Math.Ceiling(span.TotalHours - 1e-9), "hour");
        return Plural(Math.Max(1, (int)Math.Ceiling(span.TotalMinutes)), "minute");

        static string Plural(int n, string unit) => n == 1 ? $"1 {unit}" : $"{n} {unit}s";
    }
}
