using System.Globalization;
using Portcullis.Protocol.Dnssec;
using Portcullis.Protocol.Names;

namespace Portcullis.Server.Dnssec;

/// <summary>What the keys do now (<see cref="SigningKeySet"/>), when to ask again, and what changed (lines for the log).</summary>
public sealed record KeyPlan(SigningKeySet Keys, DateTimeOffset NextEvent, IReadOnlyList<string> Events);

/// <summary>
/// The keys of one zone and their states, kept in a key directory (BIND's K-files plus one .state
/// file per key), and the state machine that rolls them without an operator, as Knot's automatic
/// key management does:
/// <list type="bullet">
/// <item>ZSK: pre-publication (RFC 6781 §4.1.1.1).</item>
/// <item>KSK: double-DS (RFC 6781 §4.1.2), the DS asked for through CDS/CDNSKEY (RFC 7344, RFC 8078)
/// and confirmed by <see cref="DsSeen"/> / <see cref="DsWithdrawn"/>.</item>
/// <item>CSK: double-DS with the new key pre-published (see <see cref="StartCsk"/>).</item>
/// <item>Algorithm: the conservative order of RFC 6781 §4.1.4.</item>
/// </list>
/// Every wait is one of RFC 7583's intervals built from the policy (see <see cref="KeyWait"/>).
/// Not on the query path: it allocates, locks and uses LINQ freely.
/// </summary>
public sealed class ZoneKeys : IDisposable
{
    private readonly DnsName _zone;
    private readonly string _zoneText;
    private readonly string _directory;
    private DnssecPolicy _policy;
    private readonly TimeProvider _time;
    private readonly List<ManagedKey> _keys = [];
    private readonly HashSet<ManagedKey> _needFiles = [];
    private readonly Lock _gate = new();
    private uint _zoneMaxTtl;
    private bool _shapeWarned;

    private ZoneKeys(DnsName zone, string directory, DnssecPolicy policy, TimeProvider time)
    {
        _zone = zone;
        _zoneText = zone.ToString();
        _directory = directory;
        _policy = policy;
        _time = time;
    }

    /// <summary>
    /// Reads every key pair of <paramref name="zone"/> in <paramref name="keyDirectory"/> and its
    /// .state file. A pair without a .state (dnssec-keygen, ldns-keygen, `portcullis dnssec keygen`)
    /// is adopted: active and published from now, KSK (SEP flag) or ZSK — CSK when its algorithm
    /// has keys of one kind only — and a KSK's DS taken as seen at the parent (the operator put it
    /// there); the adoption is written to its .state at once. A missing directory means no keys yet.
    /// Throws <see cref="FormatException"/> naming the file for an unreadable key or state file.
    /// </summary>
    public static ZoneKeys Open(DnsName zone, string keyDirectory, DnssecPolicy policy, TimeProvider time)
    {
        var keys = new ZoneKeys(zone, keyDirectory, policy, time);
        if (!Directory.Exists(keyDirectory)) return keys;
        var adopted = new List<ManagedKey>();
        try
        {
            foreach (string basePath in DnssecKeyFile.Find(keyDirectory, zone))
            {
                var key = DnssecKeyFile.Read(basePath);
                var managed = new ManagedKey { BasePath = basePath, Key = key };
                keys._keys.Add(managed);
                if (File.Exists(managed.StatePath)) managed.Reload();
                else adopted.Add(managed);
            }
            var now = keys.Now();
            foreach (var k in adopted)
            {
                // Roles as `portcullis dnssec sign` gives them: SEP keys sign DNSKEY, the others the
                // rest, and an algorithm with one kind of key only has combined keys.
                bool otherKind = keys._keys.Exists(o => o != k && o.IsLive && o.Algorithm == k.Algorithm && o.Key.IsKsk != k.Key.IsKsk);
                k.Role = !otherKind ? KeyRole.Csk : k.Key.IsKsk ? KeyRole.Ksk : KeyRole.Zsk;
                k.State = KeyState.Active;
                k.StateSince = k.Created = now;
                k.Published = k.Activated = now;
                k.Ds = k.HasDs ? DsState.Seen : DsState.None;
                k.DsSince = k.HasDs ? now : null;
                k.Adopted = true;
                k.Save(keys._zoneText);
            }
        }
        catch
        {
            keys.Dispose();
            throw;
        }
        foreach (var k in keys._keys) keys._zoneMaxTtl = Math.Max(keys._zoneMaxTtl, k.ZoneMaxTtl);
        return keys;
    }

    /// <summary>
    /// For tools (`portcullis dnssec keys`, `ds-seen`) that do not read the server's configuration:
    /// the zone's keys under the timings the server last wrote into their .state files (the
    /// defaults when none did), so that the next steps they show are the server's. Tools never Plan.
    /// </summary>
    public static ZoneKeys OpenForTools(DnsName zone, string keyDirectory, TimeProvider time)
    {
        var keys = Open(zone, keyDirectory, new DnssecPolicy(), time);
        var recorded = keys._keys.Where(k => k.IsLive && k.Timings.Length > 0).OrderByDescending(k => k.StateSince).FirstOrDefault()
            ?? keys._keys.Where(k => k.Timings.Length > 0).OrderByDescending(k => k.StateSince).FirstOrDefault();
        if (recorded is not null && ManagedKey.ApplyTimings(keys._policy, recorded.Timings) is { } policy) keys._policy = policy;
        return keys;
    }

    /// <summary>
    /// Brings the keys up to now: makes the first keys when there are none (KSK + ZSK, or a CSK;
    /// the KSK's DS "submitted", so CDS/CDNSKEY ask the parent for it while the zone is served
    /// signed at once), starts the rollovers whose time has come (lifetimes, a new algorithm in the
    /// policy), and takes every step whose wait has elapsed. <paramref name="zoneMaxTtl"/> is the
    /// largest TTL in the zone (how long a signature may live in a cache). Every changed state is
    /// on disk before this returns.
    /// </summary>
    public KeyPlan Plan(TimeSpan zoneMaxTtl)
    {
        lock (_gate)
        {
            Sync();
            var now = Now();
            var events = new List<string>();
            uint ttl = (uint)Math.Clamp(zoneMaxTtl.TotalSeconds, 0, uint.MaxValue);
            // A TTL lowered in the zone lives on in caches: during a rollover the largest one counts.
            _zoneMaxTtl = AnyRollover() ? Math.Max(_zoneMaxTtl, ttl) : ttl;
            if (!_keys.Exists(k => k.IsLive)) CreateInitial(now, events);
            for (int round = 0; round < 32; round++)
            {
                bool changed = Advance(now, events);
                changed |= StartDueRollovers(now, events);
                if (!changed) break;
            }
            string timings = ManagedKey.PolicyTimings(_policy);
            foreach (var k in _keys)
            {
                if (k.IsLive && (k.ZoneMaxTtl != _zoneMaxTtl || k.Timings != timings))
                {
                    k.ZoneMaxTtl = _zoneMaxTtl;
                    k.Timings = timings;
                    k.Dirty = true;
                }
            }
            SaveDirty();
            return new KeyPlan(BuildSet(), NextEvent(now), events);
        }
    }

    /// <summary>
    /// The parent now publishes the DS of key <paramref name="keyTag"/> (the operator saw it, or a
    /// check of the parent did): a new KSK waiting for it moves on. Written at once.
    /// </summary>
    public void DsSeen(ushort keyTag)
    {
        lock (_gate)
        {
            Sync();
            var now = Now();
            foreach (var k in WithDs(keyTag))
            {
                switch (k.State, k.Ds)
                {
                    case (KeyState.DsPending, _):
                        k.SetDs(DsState.Seen, now);
                        k.Enter(KeyState.DsPropagating, now);
                        break;
                    case (_, DsState.Submitted):
                    case (KeyState.Active, DsState.Withdrawn):
                        k.SetDs(DsState.Seen, now);
                        break;
                    default:
                        // Already seen, or a DS being withdrawn that the parent still holds: nothing changes.
                        break;
                }
            }
            SaveDirty();
        }
    }

    /// <summary>
    /// The parent no longer publishes the DS of key <paramref name="keyTag"/>: an old KSK waiting
    /// for that is removed. For a key whose DS is still needed, the DS is asked for again.
    /// </summary>
    public void DsWithdrawn(ushort keyTag)
    {
        lock (_gate)
        {
            Sync();
            var now = Now();
            foreach (var k in WithDs(keyTag))
            {
                switch (k.State)
                {
                    case KeyState.DsWithdrawing:
                        k.SetDs(DsState.Withdrawn, now);
                        k.Enter(KeyState.Removed, now);
                        break;
                    case KeyState.Removed or KeyState.Unpublished or KeyState.Retired or KeyState.UnpublishedSigning:
                    case KeyState.Active when k.Ds == DsState.WithdrawnSubmitted:
                        // An old key whose DS CDS no longer asks for (or one already out of the zone).
                        if (k.Ds != DsState.Withdrawn) k.SetDs(DsState.Withdrawn, now);
                        break;
                    case KeyState.DsPropagating:
                        k.SetDs(DsState.Submitted, now);
                        k.Enter(KeyState.DsPending, now);
                        break;
                    default:
                        // The key's DS is still wanted (CDS lists it): it is asked for again.
                        if (k.Ds == DsState.Seen) k.SetDs(DsState.Submitted, now);
                        break;
                }
            }
            SaveDirty();
        }
    }

    /// <summary>
    /// Starts a rollover now, whatever the lifetimes say (knotc zone-key-rollover): a ZSK rollover
    /// (<paramref name="ksk"/> false) or a KSK one; a zone with a combined key rolls its CSK either way.
    /// InvalidOperationException when one of that kind (or an algorithm rollover) is under way.
    /// </summary>
    public void RollNow(bool ksk)
    {
        lock (_gate)
        {
            Sync();
            var now = Now();
            var events = new List<string>();
            if (AlgorithmRollover()) throw new InvalidOperationException($"{_zoneText}: an algorithm rollover is under way");
            var csk = _keys.Find(k => k.State == KeyState.Active && k.Role == KeyRole.Csk && k.Successor is null);
            if (csk is not null || ksk)
            {
                if (KskRollover()) throw new InvalidOperationException($"{_zoneText}: a KSK rollover is under way");
                var old = csk ?? _keys.Find(k => k.State == KeyState.Active && k.Role == KeyRole.Ksk && k.Successor is null)
                    ?? throw new InvalidOperationException($"{_zoneText}: no active KSK to roll");
                if (old.Role == KeyRole.Csk) StartCsk(old, now, events); else StartKsk(old, now, events);
            }
            else
            {
                if (ZskRollover()) throw new InvalidOperationException($"{_zoneText}: a ZSK rollover is under way");
                var old = _keys.Find(k => k.State == KeyState.Active && k.Role == KeyRole.Zsk && k.Successor is null)
                    ?? throw new InvalidOperationException($"{_zoneText}: no active ZSK to roll");
                StartZsk(old, now, events);
            }
            SaveDirty();
        }
    }

    /// <summary>Every key, live ones first, with what it does and when it next moves (for `portcullis dnssec keys`).</summary>
    public IReadOnlyList<KeyStatus> Status
    {
        get
        {
            lock (_gate)
            {
                Sync();
                var result = new List<KeyStatus>();
                foreach (var k in _keys.OrderBy(k => k.IsLive ? 0 : 1).ThenBy(k => k.Role).ThenBy(k => k.Created).ThenBy(k => k.Tag))
                    result.Add(new KeyStatus(k.Tag, k.Role, k.Algorithm, k.State, k.Ds, k.IsLive && KeyStates.IsPublished(k.State),
                        k.SignsKeys, k.SignsZone, InCds(k), Due(k) ?? LifetimeEnd(k), Waiting(k)));
                return result;
            }
        }
    }

    public void Dispose()
    {
        foreach (var k in _keys) k.Key.Dispose();
        _keys.Clear();
    }

    // ---- the waits (RFC 7583 §3) ----

    /// <summary>
    /// The intervals of RFC 7583 with Dsgn = 0 (the whole zone is re-signed at once):
    /// DNSKEY: a DNSKEY change is in every cache after TTLkey + Dprp (Ipub, §3.2.1);
    /// Zone: signatures made before a change are out of every cache after max(zone TTL, TTLkey) + Dprp (Iret, §3.2.1);
    /// Ds: a DS change at the parent is in every cache after TTLds + DprpP (IpubP, §3.3.1), counted
    /// from when the operator saw it at the parent (Dreg is the operator's).
    /// </summary>
    private TimeSpan KeyWait => TimeSpan.FromSeconds(_policy.DnskeyTtl) + _policy.PropagationDelay;
    private TimeSpan ZoneWait => TimeSpan.FromSeconds(Math.Max(_zoneMaxTtl, _policy.DnskeyTtl)) + _policy.PropagationDelay;
    private TimeSpan DsWait => _policy.ParentDsTtl + _policy.ParentPropagationDelay;

    /// <summary>When the key's next timed step is due; null when it waits for nothing timed (steady, or for the parent).</summary>
    private DateTimeOffset? Due(ManagedKey k)
    {
        switch (k.State)
        {
            case KeyState.Prepublished when k.Role == KeyRole.Csk:
                // The new CSK signs once it is in every cached DNSKEY RRset and its DS in every cached DS RRset.
                return k.Ds == DsState.Seen && k.DsSince is { } seen ? Max(k.StateSince + KeyWait, seen + DsWait) : null;
            case KeyState.Prepublished:
            case KeyState.PublishedNew:
            case KeyState.Unpublished:
            case KeyState.UnpublishedSigning:
                return k.StateSince + KeyWait;
            case KeyState.DsPropagating:
                return (k.DsSince ?? k.StateSince) + DsWait;
            case KeyState.SigningHidden:
            case KeyState.Retired:
                return k.StateSince + ZoneWait;
            case KeyState.Active when k.Rollover == RolloverKind.Algorithm && k.Successor is not null:
                // An old key of an algorithm rollover leaves the DNSKEY RRset once the new DS is in every cache.
                var lead = AlgorithmLead();
                return lead is { State: KeyState.Active, Ds: DsState.Seen, DsSince: { } since } ? since + DsWait : null;
            default:
                return null;
        }
    }

    /// <summary>When an active key's lifetime ends and its rollover starts (null: no lifetime, or already rolling).</summary>
    private DateTimeOffset? LifetimeEnd(ManagedKey k)
    {
        if (k.State != KeyState.Active || k.Successor is not null || k.Activated is not { } activated) return null;
        var life = k.Role == KeyRole.Zsk ? _policy.ZskLifetime : _policy.KskLifetime;
        return life is { } l ? activated + l : null;
    }

    private static DateTimeOffset Max(DateTimeOffset a, DateTimeOffset b) => a > b ? a : b;

    /// <summary>Takes every step whose time has come; true when something changed.</summary>
    private bool Advance(DateTimeOffset now, List<string> events)
    {
        bool changed = false;
        foreach (var k in _keys.ToList())
        {
            if (!k.IsLive || Due(k) is not { } due || due > now) continue;
            changed = true;
            string role = KeyStates.ToText(k.Role);
            var pred = Find(k.Predecessor);
            switch (k.State)
            {
                case KeyState.Prepublished:
                    // RFC 6781 §4.1.1.1 "new RRSIGs": the new key signs; the old one stays published
                    // until the signatures it made have expired from caches.
                    k.Enter(KeyState.Active, now);
                    if (pred is { State: KeyState.Active }) pred.Enter(KeyState.Retired, now);
                    events.Add($"{role} {k.Tag} active{(pred is null ? "" : $", {role} {pred.Tag} retired (published until its signatures leave the caches)")}");
                    break;
                case KeyState.DsPropagating:
                    // RFC 6781 §4.1.2 "new DNSKEY": every cache now holds both DS, so the DNSKEY RRset swaps KSKs.
                    k.Enter(KeyState.Active, now);
                    if (pred is { State: KeyState.Active }) pred.Enter(KeyState.Unpublished, now);
                    events.Add($"KSK {k.Tag} published and active{(pred is null ? "" : $", KSK {pred.Tag} removed from the DNSKEY RRset")}");
                    break;
                case KeyState.SigningHidden:
                    // RFC 6781 §4.1.4 "new DNSKEY": the new algorithm's signatures are in every cache.
                    k.Enter(KeyState.PublishedNew, now);
                    events.Add($"{role} {k.Tag} ({DnssecAlgorithms.ToText(k.Algorithm)}) published");
                    break;
                case KeyState.PublishedNew:
                    // RFC 6781 §4.1.4 "new DS": the new keys are in every cached DNSKEY RRset; CDS/CDNSKEY
                    // now ask the parent to replace the old DS by the new one.
                    k.Enter(KeyState.Active, now);
                    if (k.HasDs)
                    {
                        k.SetDs(DsState.Submitted, now);
                        foreach (var old in _keys)
                            if (old.IsLive && old.Rollover == RolloverKind.Algorithm && old.Successor is not null && old.HasDs
                                && old.Ds is DsState.Submitted or DsState.Seen)
                                old.SetDs(DsState.WithdrawnSubmitted, now);
                        events.Add($"{role} {k.Tag}: waiting for its DS at the parent, replacing the old algorithm's (run: portcullis dnssec ds-seen {_zoneText} {k.Tag})");
                    }
                    break;
                case KeyState.Active:
                    // RFC 6781 §4.1.4 "DNSKEY removal": old keys leave the DNSKEY RRset but keep signing.
                    k.Enter(KeyState.UnpublishedSigning, now);
                    events.Add($"{role} {k.Tag} ({DnssecAlgorithms.ToText(k.Algorithm)}) removed from the DNSKEY RRset, still signing");
                    break;
                case KeyState.UnpublishedSigning:
                    // RFC 6781 §4.1.4 "RRSIGs removal".
                    k.Enter(KeyState.Removed, now);
                    events.Add($"{role} {k.Tag} ({DnssecAlgorithms.ToText(k.Algorithm)}) no longer signs: removed");
                    break;
                case KeyState.Retired when k.Role == KeyRole.Zsk:
                    k.Enter(KeyState.Removed, now);
                    events.Add($"ZSK {k.Tag} removed from the DNSKEY RRset");
                    break;
                case KeyState.Retired:
                case KeyState.Unpublished:
                    // No cache holds a DNSKEY RRset that needs the old DS any more: CDS/CDNSKEY drop it.
                    if (k.Ds == DsState.Withdrawn)
                    {
                        k.Enter(KeyState.Removed, now);
                        events.Add($"{role} {k.Tag} removed");
                    }
                    else
                    {
                        k.Enter(KeyState.DsWithdrawing, now);
                        k.SetDs(DsState.WithdrawnSubmitted, now);
                        events.Add($"{role} {k.Tag} removed from the zone; waiting for its DS to leave the parent (run: portcullis dnssec ds-withdrawn {_zoneText} {k.Tag})");
                    }
                    break;
            }
        }
        return changed;
    }

    // ---- starting rollovers ----

    private bool AlgorithmRollover() => _keys.Exists(k => k.IsLive && k.Rollover == RolloverKind.Algorithm
        && (k.State != KeyState.Active || k.Successor is not null));
    private bool ZskRollover() => _keys.Exists(k => k.IsLive && k.Role == KeyRole.Zsk && (k.State != KeyState.Active || k.Successor is not null));
    private bool KskRollover() => _keys.Exists(k => k.IsLive && k.Role != KeyRole.Zsk && (k.State != KeyState.Active || k.Successor is not null));
    private bool AnyRollover() => _keys.Exists(k => k.IsLive && (k.State != KeyState.Active || k.Successor is not null));

    /// <summary>The new KSK (or CSK) of the algorithm rollover under way.</summary>
    private ManagedKey? AlgorithmLead() => _keys.Find(k => k.IsLive && k.Rollover == RolloverKind.Algorithm && k.Role != KeyRole.Zsk
        && k.Predecessor is not null && k.Successor is null);

    private bool StartDueRollovers(DateTimeOffset now, List<string> events)
    {
        if (AlgorithmRollover()) return false;
        var active = _keys.Where(k => k.State == KeyState.Active).ToList();
        if (active.Count == 0) return false;
        if (active.Exists(k => k.Algorithm != _policy.Algorithm))
        {
            if (AnyRollover()) return false;   // the algorithm rollover starts once the running one ends
            StartAlgorithm(active, now, events);
            return true;
        }
        bool combined = active.Exists(k => k.Role == KeyRole.Csk);
        if (combined != _policy.CombinedKey && !_shapeWarned)
        {
            _shapeWarned = true;
            events.Add(combined
                ? $"the policy asks for a KSK and a ZSK but {_zoneText} has a combined key: not changed automatically"
                : $"the policy asks for a combined key but {_zoneText} has a KSK and a ZSK: not changed automatically");
        }
        bool started = false;
        if (_policy.ZskLifetime is { } zskLife && !ZskRollover()
            && active.Find(k => k.Role == KeyRole.Zsk && k.Successor is null && k.Activated + zskLife <= now) is { } zsk)
        {
            StartZsk(zsk, now, events);
            started = true;
        }
        if (_policy.KskLifetime is { } kskLife && !KskRollover()
            && active.Find(k => k.Role != KeyRole.Zsk && k.Successor is null && k.Activated + kskLife <= now) is { } ksk)
        {
            if (ksk.Role == KeyRole.Csk) StartCsk(ksk, now, events); else StartKsk(ksk, now, events);
            started = true;
        }
        return started;
    }

    /// <summary>RFC 6781 §4.1.1.1 "new DNSKEY": the new ZSK is published, not signing.</summary>
    private void StartZsk(ManagedKey old, DateTimeOffset now, List<string> events)
    {
        var key = NewKey(KeyRole.Zsk, KeyState.Prepublished, now);
        Link(old, key, RolloverKind.Zsk);
        events.Add($"ZSK {key.Tag} pre-published (rollover of {old.Tag})");
    }

    /// <summary>
    /// RFC 6781 §4.1.2 double-DS: the new KSK's DS goes to the parent first (CDS/CDNSKEY list the
    /// old and the new key); the DNSKEY RRset changes only once every cache holds both DS.
    /// </summary>
    private void StartKsk(ManagedKey old, DateTimeOffset now, List<string> events)
    {
        var key = NewKey(KeyRole.Ksk, KeyState.DsPending, now);
        key.SetDs(DsState.Submitted, now);
        Link(old, key, RolloverKind.Ksk);
        events.Add($"KSK {key.Tag} created (rollover of {old.Tag}); CDS/CDNSKEY list both");
        events.Add($"KSK {key.Tag}: waiting for its DS at the parent (run: portcullis dnssec ds-seen {_zoneText} {key.Tag})");
    }

    /// <summary>
    /// A combined key rolls by double-DS with the new key pre-published (RFC 7583 §3.3.5's double-DS
    /// with the ZSK part of §3.2.1): the new CSK goes into the DNSKEY RRset and its DS is asked for
    /// at once; it signs once it is in every cached DNSKEY RRset and its DS in every cached DS RRset;
    /// the old CSK stays published until its signatures have left the caches, then leaves the
    /// DNSKEY and CDS RRsets together (no cache holds a DNSKEY RRset signed by it alone any more).
    /// </summary>
    private void StartCsk(ManagedKey old, DateTimeOffset now, List<string> events)
    {
        var key = NewKey(KeyRole.Csk, KeyState.Prepublished, now);
        key.SetDs(DsState.Submitted, now);
        Link(old, key, RolloverKind.Csk);
        events.Add($"CSK {key.Tag} pre-published (rollover of {old.Tag}); CDS/CDNSKEY list both");
        events.Add($"CSK {key.Tag}: waiting for its DS at the parent (run: portcullis dnssec ds-seen {_zoneText} {key.Tag})");
    }

    /// <summary>
    /// RFC 6781 §4.1.4 (conservative): the new algorithm's keys sign everything before they are
    /// published, because a validator may insist that every algorithm in the DNSKEY RRset signs
    /// every RRset (RFC 4035 §2.2).
    /// </summary>
    private void StartAlgorithm(List<ManagedKey> olds, DateTimeOffset now, List<string> events)
    {
        var news = new List<ManagedKey>();
        foreach (var role in _policy.CombinedKey ? [KeyRole.Csk] : (KeyRole[])[KeyRole.Ksk, KeyRole.Zsk])
            news.Add(NewKey(role, KeyState.SigningHidden, now));
        var oldLead = olds.Find(k => k.Role != KeyRole.Zsk) ?? olds[0];
        foreach (var n in news)
        {
            n.Rollover = RolloverKind.Algorithm;
            n.Predecessor = (olds.Find(o => o.Role == n.Role) ?? oldLead).Tag;
        }
        var newLead = news[0];
        foreach (var o in olds)
        {
            o.Rollover = RolloverKind.Algorithm;
            o.Successor = (news.Find(n => n.Role == o.Role) ?? newLead).Tag;
            o.Dirty = true;
        }
        events.Add($"algorithm rollover {DnssecAlgorithms.ToText(olds[0].Algorithm)} to {DnssecAlgorithms.ToText(_policy.Algorithm)}: "
            + string.Join(", ", news.Select(n => $"{KeyStates.ToText(n.Role)} {n.Tag}")) + " signing, not yet published");
    }

    private static void Link(ManagedKey old, ManagedKey key, RolloverKind kind)
    {
        old.Successor = key.Tag;
        key.Predecessor = old.Tag;
        old.Rollover = key.Rollover = kind;
        old.Dirty = key.Dirty = true;
    }

    private void CreateInitial(DateTimeOffset now, List<string> events)
    {
        foreach (var role in _policy.CombinedKey ? [KeyRole.Csk] : (KeyRole[])[KeyRole.Ksk, KeyRole.Zsk])
        {
            var key = NewKey(role, KeyState.Active, now);
            if (key.HasDs)
            {
                key.SetDs(DsState.Submitted, now);
                events.Add($"{KeyStates.ToText(role)} {key.Tag} created and active; its DS for the parent: {DnssecSigner.DsText(_zone, key.Key.DnskeyRdata)}");
                events.Add($"{KeyStates.ToText(role)} {key.Tag}: once the parent publishes it, run: portcullis dnssec ds-seen {_zoneText} {key.Tag}");
            }
            else
            {
                events.Add($"{KeyStates.ToText(role)} {key.Tag} created and active");
            }
        }
    }

    private ManagedKey NewKey(KeyRole role, KeyState state, DateTimeOffset now)
    {
        Directory.CreateDirectory(_directory);
        DnssecPrivateKey key;
        while (true)
        {
            key = DnssecPrivateKey.Generate(_zone, _policy.Algorithm, role != KeyRole.Zsk);
            // Tags must tell this zone's keys apart (RFC 4034 Appendix B: they may collide).
            if (!_keys.Exists(k => k.Tag == key.KeyTag)
                && !File.Exists(Path.Combine(_directory, DnssecKeyFile.BaseName(_zone, key.Algorithm, key.KeyTag) + ".key"))) break;
            key.Dispose();
        }
        var managed = new ManagedKey
        {
            BasePath = Path.Combine(_directory, DnssecKeyFile.BaseName(_zone, key.Algorithm, key.KeyTag)),
            Key = key,
            Role = role,
            State = KeyState.Removed,   // nothing yet: Enter stamps what the first state does
            Created = now,
            ZoneMaxTtl = _zoneMaxTtl,
        };
        managed.Enter(state, now);
        _keys.Add(managed);
        _needFiles.Add(managed);
        return managed;
    }

    /// <summary>
    /// The .state goes first: a crash before the key files leaves a state without keys, which is
    /// ignored, rather than keys without a state, which would be adopted as active.
    /// </summary>
    private void SaveDirty()
    {
        foreach (var k in _keys)
        {
            if (k.Dirty) k.Save(_zoneText);
            if (_needFiles.Remove(k)) DnssecKeyFile.Write(_directory, k.Key, k.Created);
        }
    }

    // ---- what the signer gets ----

    private bool InCds(ManagedKey k) => _policy.PublishCds && k.IsLive && k.HasDs && k.Ds is DsState.Submitted or DsState.Seen;

    private SigningKeySet BuildSet()
    {
        var live = _keys.Where(k => k.IsLive).OrderBy(k => k.Tag).ToList();
        return new SigningKeySet(
            live.Where(k => KeyStates.IsPublished(k.State)).Select(k => k.Key).ToList(),
            live.Where(k => k.SignsKeys).Select(k => k.Key).ToList(),
            live.Where(k => k.SignsZone).Select(k => k.Key).ToList())
        {
            Cds = live.Where(InCds).Select(k => k.Key).ToList(),
        };
    }

    private DateTimeOffset NextEvent(DateTimeOffset now)
    {
        var next = DateTimeOffset.MaxValue;
        foreach (var k in _keys)
            if (k.IsLive && Due(k) is { } due && due < next) next = due;
        // Lifetimes end only where a rollover of that kind can start (one at a time, none during an algorithm rollover).
        if (!AlgorithmRollover() && !_keys.Exists(k => k.State == KeyState.Active && k.Algorithm != _policy.Algorithm))
        {
            foreach (var k in _keys)
            {
                if (k.State != KeyState.Active || k.Successor is not null || k.Activated is not { } activated) continue;
                var life = k.Role == KeyRole.Zsk ? _policy.ZskLifetime : _policy.KskLifetime;
                bool blocked = k.Role == KeyRole.Zsk ? ZskRollover() : KskRollover();
                if (life is { } l && !blocked && activated + l < next) next = activated + l;
            }
        }
        return next < now ? now : next;
    }

    private string Waiting(ManagedKey k)
    {
        string tag = k.Tag.ToString(CultureInfo.InvariantCulture);
        if (k.State == KeyState.DsWithdrawing) return $"DS removal at the parent: portcullis dnssec ds-withdrawn {_zoneText} {tag}";
        if (k.IsLive && k.HasDs && k.Ds == DsState.Submitted) return $"DS at the parent: portcullis dnssec ds-seen {_zoneText} {tag}";
        if (k.State == KeyState.Active && k.Rollover == RolloverKind.Algorithm && k.Successor is not null
            && AlgorithmLead() is { } lead && Due(k) is null)
            return $"the DS of {KeyStates.ToText(lead.Role)} {lead.Tag}";
        return "";
    }

    private IEnumerable<ManagedKey> WithDs(ushort keyTag)
    {
        var found = _keys.Where(k => k.Tag == keyTag).ToList();
        if (found.Count == 0)
            throw new ArgumentException($"{_zoneText} has no key with tag {keyTag} in {_directory}"
                + (_keys.Count == 0 ? "" : $" (its keys: {string.Join(", ", _keys.Select(k => $"{KeyStates.ToText(k.Role)} {k.Tag}"))})"));
        var withDs = found.Where(k => k.HasDs).ToList();
        if (withDs.Count == 0) throw new ArgumentException($"key {keyTag} of {_zoneText} is a ZSK: the parent holds no DS for it");
        return withDs;
    }

    /// <summary>
    /// Takes in what another process wrote (`portcullis dnssec ds-seen` while the server runs):
    /// a .state file whose modification time is not the one last read or written here is read again,
    /// so the running server never overwrites the operator's step with its stale copy.
    /// </summary>
    private void Sync()
    {
        foreach (var k in _keys)
            if (!k.Dirty && File.Exists(k.StatePath) && File.GetLastWriteTimeUtc(k.StatePath) != k.FileStamp) k.Reload();
    }

    private ManagedKey? Find(ushort? tag) => tag is { } t ? _keys.Find(k => k.Tag == t) : null;

    /// <summary>Whole seconds: the state files hold seconds, and a reopened zone must plan the same.</summary>
    private DateTimeOffset Now()
    {
        var now = _time.GetUtcNow();
        return new DateTimeOffset(now.Ticks - now.Ticks % TimeSpan.TicksPerSecond, TimeSpan.Zero);
    }
}
