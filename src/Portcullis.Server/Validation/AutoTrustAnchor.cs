using System.Globalization;
using System.Text;
using Portcullis.Protocol.Dnssec;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.ZoneText;
using Portcullis.Server.Configuration;

namespace Portcullis.Server.Validation;

/// <summary>The RFC 5011 §4 state of one key of a trust point. Start (a key never seen) has no entry.</summary>
public enum AnchorKeyState : byte
{
    /// <summary>Seen in a validly signed DNSKEY RRset; not trusted until the add hold-down has passed.</summary>
    AddPend,
    /// <summary>A trust anchor.</summary>
    Valid,
    /// <summary>Trusted, but absent from the last validated DNSKEY RRset (RFC 5011 §4: still a trust anchor).</summary>
    Missing,
    /// <summary>Revoked by a self-signed DNSKEY RRset with the REVOKE bit (RFC 5011 §2.1); never trusted again.</summary>
    Revoked,
    /// <summary>Revoked for longer than the remove hold-down; kept so that the key is never added again.</summary>
    Removed,
}

/// <summary>One key of the trust point as the state machine tracks it.</summary>
/// <param name="Rdata">The DNSKEY RDATA as last seen (with the REVOKE bit once revoked: its key tag differs).</param>
/// <param name="Since">When the key entered <paramref name="State"/> (for AddPend: when it was first seen).</param>
public readonly record struct TrackedKey(byte[] Rdata, AnchorKeyState State, DateTimeOffset Since)
{
    public ushort KeyTag => DnsKey.KeyTag(Rdata);
    public override string ToString() => $"{KeyTag} {State} since {Since:yyyy-MM-ddTHH:mm:ssZ}";
}

/// <summary>
/// RFC 5011 automated updates of one trust point's keys (in practice the root's), kept in an
/// auto-trust-anchor file as Unbound keeps its auto-trust-anchor-file: zone-file DNSKEY lines that
/// <see cref="TrustAnchors"/> can read, each with its state in a comment after it. A plain anchor file
/// (DS or DNSKEY lines, Debian's /usr/share/dns/root.key) is a valid first content: DNSKEY lines are
/// VALID, DS lines are seeds that the first validated DNSKEY RRset turns into VALID keys.
/// </summary>
/// <remarks>
/// <para>A refresh asks for the zone's DNSKEY RRset with its RRSIGs and runs the state machine of
/// RFC 5011 §4: a new SEP key (NewKey) seen in an RRset validly signed by a key already trusted is
/// AddPend; still seen at every refresh for the add hold-down (30 days, or the RRset's TTL if longer,
/// §2.4.1) it becomes VALID (AddTime); gone before that, it is forgotten (KeyRem → Start). A VALID
/// key absent from the RRset is MISSING, still trusted (§4), and VALID again when it comes back. A
/// key published with the REVOKE bit (0x0080) and signing the RRset itself is REVOKED (§2.1) and
/// never trusted again; after the remove hold-down (30 days, §2.4.2) it is REMOVED, kept in the file
/// so that it cannot be added again. Only revocation can take the last trusted key away; if it takes
/// them all, the trust point is deleted (§5) and the zone has no anchor.</para>
/// <para>The next refresh is due after the active refresh time of §2.3, max(1 h, min(15 days, TTL/2,
/// signature validity left/2)), or after a failure the retry time max(1 h, min(1 day, TTL/10,
/// validity left/10)). The file is rewritten (temporary file, fsync, rename) whenever a state changes.</para>
/// <para>Not on the query path: <see cref="Anchors"/> is an immutable snapshot swapped atomically.</para>
/// </remarks>
public sealed class AutoTrustAnchor
{
    /// <summary>RFC 5011 §2.4.1.</summary>
    public static readonly TimeSpan AddHoldDown = TimeSpan.FromDays(30);
    /// <summary>RFC 5011 §2.4.2.</summary>
    public static readonly TimeSpan RemoveHoldDown = TimeSpan.FromDays(30);
    /// <summary>At most this many keys are tracked (a DNSKEY RRset bigger than that is the zone's own problem).</summary>
    public const int MaxTrackedKeys = 64;

    private static readonly TimeSpan MinRefresh = TimeSpan.FromHours(1);
    private static readonly TimeSpan MaxRefresh = TimeSpan.FromDays(15);
    private static readonly TimeSpan MaxRetry = TimeSpan.FromDays(1);
    private const string TimeFormat = "yyyy-MM-ddTHH:mm:ssZ";

    private readonly TimeProvider _time;
    private readonly TrustAnchors _others;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly List<Entry> _keys;
    private readonly List<ResourceRecord> _seeds;
    private uint _ttl;
    private DateTimeOffset? _lastSuccess, _expires;
    private bool _dirty;
    private volatile TrustAnchors _anchors;
    private volatile TrackedKey[] _snapshot = [];

    private sealed class Entry(byte[] rdata, AnchorKeyState state, DateTimeOffset since, uint ttl)
    {
        public byte[] Rdata = rdata;
        public AnchorKeyState State = state;
        public DateTimeOffset Since = since;
        public uint Ttl = ttl;
        public bool Trusted => State is AnchorKeyState.Valid or AnchorKeyState.Missing;
    }

    private AutoTrustAnchor(string file, TimeProvider time, TrustAnchors others, DnsName zone, List<Entry> keys, List<ResourceRecord> seeds)
    {
        File = file;
        _time = time;
        _others = others;
        Zone = zone;
        _keys = keys;
        _seeds = seeds;
        _anchors = others;
        Publish();
    }

    /// <summary>The auto-trust-anchor file.</summary>
    public string File { get; }

    /// <summary>The trust point (the owner of the file's records).</summary>
    public DnsName Zone { get; }

    /// <summary>
    /// The current anchors: the trusted (VALID and MISSING) keys of <see cref="Zone"/>, or its DS seeds
    /// before the first successful refresh, with the other anchors and negative anchors given to
    /// <see cref="Load"/>. Immutable; replaced atomically after a refresh that changed something.
    /// </summary>
    public TrustAnchors Anchors => _anchors;

    /// <summary>Every tracked key with its state (REVOKED and REMOVED included), a snapshot.</summary>
    public IReadOnlyList<TrackedKey> Keys => _snapshot;

    /// <summary>When a refresh last validated the DNSKEY RRset (null: not yet, as far as the file says).</summary>
    public DateTimeOffset? LastSuccess { get; private set; }

    /// <summary>What went wrong at the last refresh (null when it succeeded): for the log.</summary>
    public string? LastProblem { get; private set; }

    /// <summary>What the last refresh changed, one line per key (empty when nothing): for the log.</summary>
    public IReadOnlyList<string> LastChanges { get; private set; } = [];

    /// <summary>
    /// Reads an auto-trust-anchor file (or a plain DS/DNSKEY anchor file to start from). The file must
    /// hold the records of one zone. <paramref name="others"/>: the other anchors and negative anchors
    /// the validator uses (none when null); an anchor of the same zone in it is replaced. A problem
    /// names the file and line. A plain file is rewritten with its states at once, which also proves
    /// that the server can write it.
    /// </summary>
    public static AutoTrustAnchor Load(string file, TimeProvider time, TrustAnchors? others = null)
    {
        string[] lines;
        try { lines = System.IO.File.ReadAllLines(file); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException($"{file}: cannot read the auto-trust-anchor file: {e.Message}");
        }
        var now = Truncate(time.GetUtcNow());
        DnsName? zone = null;
        var keys = new List<Entry>();
        var seeds = new List<ResourceRecord>();
        bool plain = false;
        uint headerTtl = 0;
        DateTimeOffset? lastSuccess = null, expires = null;
        for (int i = 0; i < lines.Length; i++)
        {
            int n = i + 1;
            string line = lines[i].Trim();
            if (line.Length == 0) continue;
            if (line.StartsWith(";;", StringComparison.Ordinal))
            {
                foreach (var (k, v) in Fields(line.AsSpan(2)))
                {
                    if (k == "last-success") lastSuccess = ParseTime(file, n, k, v);
                    else if (k == "expires") expires = ParseTime(file, n, k, v);
                    else if (k == "ttl" && !uint.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out headerTtl))
                        throw new ConfigException($"{file}:{n}: ttl={v}: not a number of seconds");
                }
                continue;
            }
            if (line[0] == ';') continue;
            if (line[0] == '$')
                throw new ConfigException($"{file}:{n}: directives ($ORIGIN, $TTL, $INCLUDE) do not belong in an auto-trust-anchor file: write each record with its absolute owner");
            int semi = line.IndexOf(';');
            string recordText = semi < 0 ? line : line[..semi];
            string comment = semi < 0 ? "" : line[(semi + 1)..];
            var record = ParseRecord(file, n, recordText);
            var owner = record.Owner.ToLowerInvariant();
            if (zone is null) zone = owner;
            else if (!zone.Equals(owner))
                throw new ConfigException($"{file}:{n}: owner {owner} differs from {zone} above: an auto-trust-anchor file holds the keys of one zone");
            string? stateText = null, sinceText = null, lastChange = null;
            foreach (var (k, v) in Fields(comment))
            {
                if (k == "state") stateText = v;
                else if (k == "since") sinceText = v;
                else if (k == "lastchange") lastChange = v;   // Unbound's ;;lastchange=UNIX-SECONDS
            }
            if (record.Type == RecordType.DS)
            {
                if (stateText is not null) throw new ConfigException($"{file}:{n}: a DS record has no RFC 5011 state (only DNSKEY records are tracked)");
                if (record.Data.Length < 5) throw new ConfigException($"{file}:{n}: the DS record is too short");
                seeds.Add(record);
                plain = true;
                continue;
            }
            if (!DnsKey.IsWellFormed(record.Data) || !DnsKey.IsZoneKey(record.Data) || DnsKey.ProtocolField(record.Data) != DnsKey.Protocol)
                throw new ConfigException($"{file}:{n}: the DNSKEY is not a zone key with protocol 3: it cannot be a trust anchor");
            AnchorKeyState state;
            DateTimeOffset since;
            if (stateText is null)
            {
                // A plain anchor line: the operator trusts it (or, revoked, distrusts it for good).
                plain = true;
                state = DnsKey.IsRevoked(record.Data) ? AnchorKeyState.Revoked : AnchorKeyState.Valid;
                since = now;
            }
            else
            {
                if (int.TryParse(stateText, NumberStyles.None, CultureInfo.InvariantCulture, out int number))
                {
                    // Unbound's file: ;;state=N with 0 START (not a key yet), 1 ADDPEND … 5 REMOVED.
                    if (number == 0) continue;
                    if (number > 5) throw new ConfigException($"{file}:{n}: state={stateText}: Unbound's states are 0 to 5");
                    state = (AnchorKeyState)(number - 1);
                }
                else if (!Enum.TryParse(stateText, ignoreCase: true, out state) || !Enum.IsDefined(state))
                    throw new ConfigException($"{file}:{n}: state={stateText}: not one of ADDPEND, VALID, MISSING, REVOKED, REMOVED");
                if (sinceText is not null) since = ParseTime(file, n, "since", sinceText);
                else if (lastChange is not null && long.TryParse(lastChange, NumberStyles.None, CultureInfo.InvariantCulture, out long seconds)
                    && seconds < 1L << 40)
                    since = DateTimeOffset.FromUnixTimeSeconds(seconds);
                else throw new ConfigException($"{file}:{n}: state={stateText} without since=TIME");
                plain |= sinceText is null;   // an Unbound file: rewritten in this format at once
                bool revoked = DnsKey.IsRevoked(record.Data);
                if (revoked != (state is AnchorKeyState.Revoked or AnchorKeyState.Removed))
                    throw new ConfigException($"{file}:{n}: state={stateText} but the key's REVOKE bit is {(revoked ? "set" : "clear")}");
            }
            foreach (var e in keys)
                if (SameKey(e.Rdata, record.Data))
                    throw new ConfigException($"{file}:{n}: the key (tag {DnsKey.KeyTag(record.Data)}) is listed twice");
            if (keys.Count == MaxTrackedKeys) throw new ConfigException($"{file}:{n}: more than {MaxTrackedKeys} keys");
            keys.Add(new Entry(record.Data, state, since, record.Ttl));
        }
        if (zone is null) throw new ConfigException($"{file}: no DS or DNSKEY records: not a trust anchor file");
        var anchor = new AutoTrustAnchor(file, time, others ?? TrustAnchors.None, zone, keys, seeds)
        {
            _ttl = headerTtl, _lastSuccess = lastSuccess, _expires = expires, LastSuccess = lastSuccess,
        };
        if (plain)
        {
            try { anchor.Save(now); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new ConfigException($"{file}: cannot write the auto-trust-anchor file: {e.Message}");
            }
        }
        return anchor;
    }

    /// <summary>
    /// One refresh (RFC 5011 §2.3): <paramref name="fetchDnskey"/> asks for the zone's DNSKEY RRset
    /// with its RRSIGs (null when the query failed); the state machine runs on it, the file is
    /// rewritten when a state changed, <see cref="Anchors"/> is replaced, and the time until the next
    /// refresh is returned (the active refresh time, or the retry time after a failure).
    /// </summary>
    public async Task<TimeSpan> RefreshAsync(
        Func<DnsName, CancellationToken, Task<(IReadOnlyList<ResourceRecord> Keys, IReadOnlyList<ResourceRecord> Sigs)?>> fetchDnskey,
        CancellationToken token)
    {
        await _gate.WaitAsync(token).ConfigureAwait(false);
        try
        {
            LastProblem = null;
            (IReadOnlyList<ResourceRecord> Keys, IReadOnlyList<ResourceRecord> Sigs)? answer;
            try { answer = await fetchDnskey(Zone, token).ConfigureAwait(false); }
            catch (Exception e) when (e is not OperationCanceledException || !token.IsCancellationRequested)
            {
                answer = null;
                LastProblem = $"{Zone} DNSKEY: the query failed: {e.Message}";
            }
            var now = Truncate(_time.GetUtcNow());
            if (answer is null)
            {
                LastProblem ??= $"{Zone} DNSKEY: no answer";
                LastChanges = [];
                return Retry(now);
            }
            return Process(answer.Value.Keys, answer.Value.Sigs, now);
        }
        finally
        {
            _gate.Release();
        }
    }

    private TimeSpan Process(IReadOnlyList<ResourceRecord> answerKeys, IReadOnlyList<ResourceRecord> answerSigs, DateTimeOffset now)
    {
        var changes = new List<string>();
        LastProblem = null;
        // The zone's DNSKEY RRset and the RRSIGs over it, nothing else.
        var rrset = new List<ResourceRecord>();
        foreach (var k in answerKeys)
            if (k.Type == RecordType.DNSKEY && k.Owner.Equals(Zone) && DnsKey.IsWellFormed(k.Data)) rrset.Add(k);
        var sigs = new List<ResourceRecord>();
        foreach (var s in answerSigs)
            if (s.Type == RecordType.RRSIG && s.Owner.Equals(Zone) && Rrsig.TryRead(s.Data, out var r) && r.TypeCovered == RecordType.DNSKEY
                && DnsName.EqualsIgnoreCase(r.SignerName, Zone.Wire))
                sigs.Add(s);
        if (rrset.Count == 0)
        {
            LastProblem = $"{Zone} DNSKEY: the answer holds no DNSKEY RRset";
            LastChanges = [];
            return Retry(now);
        }

        // Revocation first (§2.1): it needs only the revoked key's own signature, so a zone can revoke
        // its last trusted key.
        foreach (var k in rrset)
        {
            if (!DnsKey.IsRevoked(k.Data)) continue;
            var e = Find(k.Data);
            if (e is null || e.State is AnchorKeyState.Revoked or AnchorKeyState.Removed) continue;
            if (!SelfSigned(k, rrset, sigs, now)) continue;
            changes.Add($"key {DnsKey.KeyTag(e.Rdata)} revoked (now tag {DnsKey.KeyTag(k.Data)}): never trusted again");
            e.Rdata = k.Data;
            e.State = AnchorKeyState.Revoked;
            e.Since = now;
        }

        // The RRset must be validly signed by a key already trusted (or designated by a DS seed).
        var trusted = new List<ResourceRecord>();
        foreach (var e in _keys)
            if (e.Trusted) trusted.Add(new ResourceRecord(Zone, RecordType.DNSKEY, RecordClass.IN, e.Ttl, e.Rdata));
        ValidationResult verdict;
        if (trusted.Count == 0 && _seeds.Count == 0)
            verdict = ValidationResult.BogusFor(ExtendedDnsErrorCode.DnskeyMissing);
        else
        {
            var budget = new ValidationBudget();
            verdict = RrsetValidator.ValidateKeys(rrset, sigs, Zone, _seeds, trusted, now, ref budget);
        }
        if (verdict.Security != DnssecSecurity.Secure)
        {
            LastProblem = trusted.Count == 0 && _seeds.Count == 0
                ? $"{Zone}: every trusted key is revoked: the trust point is deleted (RFC 5011 §5)"
                : $"{Zone} DNSKEY: not validly signed by a trusted key ({verdict.Security}, EDE {(int?)verdict.Reason}): keys unchanged";
            Commit(changes, now, success: false);
            return Retry(now);
        }

        // The RRset's TTL and the signatures' validity, for the timers.
        uint ttl = rrset[0].Ttl;
        DateTimeOffset? expires = null;
        foreach (var s in sigs)
        {
            Rrsig.TryRead(s.Data, out var r);
            ttl = Math.Min(ttl, r.OriginalTtl);
            var x = Rrsig.ToInstant(r.Expiration, now);
            if (x > now && (expires is null || x < expires)) expires = x;
        }
        _ttl = ttl;
        _expires = expires;
        _lastSuccess = now;
        LastSuccess = now;

        // DS seeds: the keys they designate are trusted at once (the RRset verified through them).
        if (_seeds.Count > 0)
        {
            foreach (var k in rrset)
            {
                if (DnsKey.IsRevoked(k.Data) || Find(k.Data) is not null) continue;
                foreach (var d in _seeds)
                    if (DsDigest.Compare(d.Data, Zone, k.Data) == DsMatch.Match)
                    {
                        if (_keys.Count < MaxTrackedKeys) _keys.Add(new Entry(k.Data, AnchorKeyState.Valid, now, k.Ttl));
                        changes.Add($"key {DnsKey.KeyTag(k.Data)} VALID: designated by the DS seed");
                        break;
                    }
            }
            _seeds.Clear();
            changes.Add("DS seeds replaced by the DNSKEYs they designate");
        }

        // Keys present: NewKey, AddTime, KeyPres.
        var holdDown = TimeSpan.FromSeconds(Math.Max(AddHoldDown.TotalSeconds, ttl));
        foreach (var k in rrset)
        {
            if (DnsKey.IsRevoked(k.Data) || !DnsKey.IsZoneKey(k.Data)) continue;
            var e = Find(k.Data);
            if (e is null)
            {
                // Only secure entry points with an algorithm implemented here become trust anchors, as
                // Unbound tracks them (ZSKs roll often; a key we cannot verify with anchors nothing).
                if (!DnsKey.IsSecureEntryPoint(k.Data) || !DnssecAlgorithms.IsSupported(DnsKey.Algorithm(k.Data))
                    || _keys.Count >= MaxTrackedKeys) continue;
                _keys.Add(new Entry(k.Data, AnchorKeyState.AddPend, now, k.Ttl));
                changes.Add($"key {DnsKey.KeyTag(k.Data)} ADDPEND: new, trusted after the hold-down ({holdDown.TotalDays:0.#} days) if seen at every refresh");
                continue;
            }
            e.Ttl = k.Ttl;
            switch (e.State)
            {
                case AnchorKeyState.AddPend when now - e.Since >= holdDown:
                    e.State = AnchorKeyState.Valid;
                    e.Since = now;
                    changes.Add($"key {DnsKey.KeyTag(k.Data)} VALID: the add hold-down has passed");
                    break;
                case AnchorKeyState.Missing:
                    e.State = AnchorKeyState.Valid;
                    e.Since = now;
                    changes.Add($"key {DnsKey.KeyTag(k.Data)} VALID: present again");
                    break;
            }
        }

        // Keys absent: KeyRem; and the remove hold-down of revoked keys.
        for (int i = _keys.Count - 1; i >= 0; i--)
        {
            var e = _keys[i];
            bool present = false;
            foreach (var k in rrset)
                if (k.Data.AsSpan().SequenceEqual(e.Rdata)) { present = true; break; }
            switch (e.State)
            {
                case AnchorKeyState.AddPend when !present:
                    _keys.RemoveAt(i);
                    changes.Add($"key {DnsKey.KeyTag(e.Rdata)} forgotten: gone before the end of its hold-down");
                    break;
                case AnchorKeyState.Valid when !present:
                    e.State = AnchorKeyState.Missing;
                    e.Since = now;
                    changes.Add($"key {DnsKey.KeyTag(e.Rdata)} MISSING: absent from the DNSKEY RRset, still trusted");
                    break;
                case AnchorKeyState.Revoked when now - e.Since >= RemoveHoldDown:
                    e.State = AnchorKeyState.Removed;
                    e.Since = now;
                    changes.Add($"key {DnsKey.KeyTag(e.Rdata)} REMOVED: revoked for the remove hold-down");
                    break;
            }
        }
        Commit(changes, now, success: true);
        return Refresh(now);
    }

    /// <summary>
    /// Publishes the new anchors when something changed, and rewrites the file then, after each
    /// successful refresh (its last-success, TTL and expiry lines, as Unbound does), or when a write failed before.
    /// </summary>
    private void Commit(List<string> changes, DateTimeOffset now, bool success)
    {
        LastChanges = changes;
        if (changes.Count > 0) Publish();
        if (changes.Count == 0 && !success && !_dirty) return;
        try
        {
            Save(now);
            _dirty = false;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _dirty = true;
            LastProblem = $"{File}: cannot write the auto-trust-anchor file: {e.Message} (the states are kept in memory, written at the next refresh)";
        }
    }

    private void Publish()
    {
        var records = new List<ResourceRecord>();
        var snapshot = new TrackedKey[_keys.Count];
        for (int i = 0; i < _keys.Count; i++)
        {
            var e = _keys[i];
            snapshot[i] = new TrackedKey(e.Rdata, e.State, e.Since);
            if (e.Trusted) records.Add(new ResourceRecord(Zone, RecordType.DNSKEY, RecordClass.IN, e.Ttl, e.Rdata));
        }
        records.AddRange(_seeds);
        var source = _others == TrustAnchors.None ? $"{File} (RFC 5011)" : $"{File} (RFC 5011), {_others.Source}";
        _anchors = _others.With(Zone, records, source);
        _snapshot = snapshot;
    }

    /// <summary>§2.3 active refresh: max(1 h, min(15 days, TTL/2, signature validity left/2)).</summary>
    private TimeSpan Refresh(DateTimeOffset now) => Timer(now, MaxRefresh, 2);

    /// <summary>§2.3 retry after a failure: max(1 h, min(1 day, TTL/10, validity left/10)); 1 h before any success.</summary>
    private TimeSpan Retry(DateTimeOffset now) => _lastSuccess is null && _ttl == 0 ? MinRefresh : Timer(now, MaxRetry, 10);

    private TimeSpan Timer(DateTimeOffset now, TimeSpan max, int divisor)
    {
        var t = max;
        if (_ttl > 0) t = Min(t, TimeSpan.FromSeconds((double)_ttl / divisor));
        if (_expires is { } x) t = Min(t, (x - now) / divisor);
        return t < MinRefresh ? MinRefresh : t;

        static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;
    }

    /// <summary>Whether the revoked key <paramref name="key"/> signs the DNSKEY RRset itself (§2.1). At most 4 RRSIGs tried.</summary>
    private static bool SelfSigned(ResourceRecord key, List<ResourceRecord> rrset, List<ResourceRecord> sigs, DateTimeOffset now)
    {
        ushort tag = DnsKey.KeyTag(key.Data);
        int tried = 0;
        foreach (var s in sigs)
        {
            Rrsig.TryRead(s.Data, out var r);
            if (r.KeyTag != tag || r.Algorithm != DnsKey.Algorithm(key.Data)) continue;
            if (++tried > ValidationBudget.MaxSignaturesPerRrset) return false;
            if (DnssecVerifier.Verify(s.Data, s.Owner, RecordType.DNSKEY, rrset, key.Owner, key.Data, now).Status == SignatureStatus.Valid)
                return true;
        }
        return false;
    }

    /// <summary>The tracked entry of a key, revoked or not (the REVOKE bit changes its tag, not its identity).</summary>
    private Entry? Find(byte[] rdata)
    {
        foreach (var e in _keys)
            if (SameKey(e.Rdata, rdata)) return e;
        return null;
    }

    /// <summary>Same key whatever its REVOKE bit: flags (but that bit), protocol, algorithm and public key.</summary>
    private static bool SameKey(byte[] a, byte[] b) =>
        a.Length == b.Length && a.Length >= 4 && (DnsKey.Flags(a) | DnsKey.RevokeFlag) == (DnsKey.Flags(b) | DnsKey.RevokeFlag)
        && a.AsSpan(2).SequenceEqual(b.AsSpan(2));

    /// <summary>Writes the file: a temporary file beside it, flushed to disk, renamed over it.</summary>
    private void Save(DateTimeOffset now)
    {
        var text = new StringBuilder();
        text.Append("; Portcullis auto-trust-anchor file (RFC 5011) of zone ").Append(Zone).Append('\n');
        text.Append("; Rewritten by the server whenever a key changes state: edit it only while the server is stopped.\n");
        text.Append("; Each DNSKEY line ends with its RFC 5011 state: ADDPEND, VALID, MISSING (still trusted), REVOKED, REMOVED.\n");
        text.Append(";;written=").Append(Format(now));
        if (_lastSuccess is { } ls) text.Append(" last-success=").Append(Format(ls));
        if (_ttl > 0) text.Append(" ttl=").Append(_ttl.ToString(CultureInfo.InvariantCulture));
        if (_expires is { } x) text.Append(" expires=").Append(Format(x));
        text.Append('\n');
        foreach (var d in _seeds)
            text.Append(d.ToString()).Append(" ; seed: replaced by the DNSKEYs it designates at the first successful refresh\n");
        foreach (var e in _keys)
        {
            var r = new ResourceRecord(Zone, RecordType.DNSKEY, RecordClass.IN, e.Ttl, e.Rdata);
            text.Append(r.ToString()).Append(" ; state=").Append(e.State.ToString().ToUpperInvariant())
                .Append(" since=").Append(Format(e.Since))
                .Append(" tag=").Append(DnsKey.KeyTag(e.Rdata).ToString(CultureInfo.InvariantCulture))
                .Append(" role=").Append(DnsKey.Role(e.Rdata).Replace(", ", "+", StringComparison.Ordinal)).Append('\n');
        }
        string full = Path.GetFullPath(File);
        string temp = Path.Combine(Path.GetDirectoryName(full)!, "." + Path.GetFileName(full) + ".tmp-" + Environment.ProcessId);
        try
        {
            using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                var bytes = Encoding.UTF8.GetBytes(text.ToString());
                stream.Write(bytes);
                stream.Flush(flushToDisk: true);
            }
            System.IO.File.Move(temp, full, overwrite: true);
        }
        catch
        {
            try { System.IO.File.Delete(temp); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
            throw;
        }
    }

    private static ResourceRecord ParseRecord(string file, int line, string text)
    {
        List<ResourceRecord> records;
        try
        {
            using var reader = new ZoneReader(new StringReader(text), DnsName.Root, file, new ZoneReaderOptions { DefaultTtl = 3600 });
            records = [.. reader.ReadRecords()];
        }
        catch (ZoneFormatException e)
        {
            throw new ConfigException($"{file}:{line}:{e.Column}: {e.Problem}");
        }
        if (records.Count != 1) throw new ConfigException($"{file}:{line}: expected one DS or DNSKEY record on the line");
        var r = records[0];
        if (r.Type is not (RecordType.DS or RecordType.DNSKEY))
            throw new ConfigException($"{file}:{line}: a {RecordTypes.ToText(r.Type)} record: an auto-trust-anchor file holds DS and DNSKEY records only");
        return r;
    }

    /// <summary>The key=value words of a comment (other words ignored).</summary>
    private static List<(string Key, string Value)> Fields(ReadOnlySpan<char> comment)
    {
        var fields = new List<(string, string)>();
        foreach (var word in comment.ToString().Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries))
        {
            var w = word.TrimStart(';');
            int eq = w.IndexOf('=');
            if (eq > 0) fields.Add((w[..eq].ToLowerInvariant(), w[(eq + 1)..]));
        }
        return fields;
    }

    private static DateTimeOffset ParseTime(string file, int line, string key, string value) =>
        DateTimeOffset.TryParseExact(value, TimeFormat, CultureInfo.InvariantCulture,
            DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t)
            ? t
            : throw new ConfigException($"{file}:{line}: {key}={value}: not a UTC time such as 2026-11-30T00:00:00Z");

    private static string Format(DateTimeOffset t) => t.UtcDateTime.ToString(TimeFormat, CultureInfo.InvariantCulture);

    private static DateTimeOffset Truncate(DateTimeOffset t) => DateTimeOffset.FromUnixTimeSeconds(t.ToUnixTimeSeconds());
}
