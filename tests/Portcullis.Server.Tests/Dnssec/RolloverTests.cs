using Microsoft.Extensions.Time.Testing;
using Portcullis.Protocol.Dnssec;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.ZoneText;
using Portcullis.Server.Dnssec;

namespace Portcullis.Server.Tests.Dnssec;

/// <summary>
/// Whole rollovers driven by a fake clock: at every step the zone is signed with what
/// <see cref="ZoneKeys.Plan"/> says, and a model of the world's caches (the parent's DS RRset, the
/// zone's DNSKEY RRset, a signed answer, each cached for its TTL after it was last served, plus the
/// propagation delays) must validate in every combination a real resolver could hold.
/// </summary>
public sealed class RolloverTests : IDisposable
{
    private static readonly DnsName Zone = DnsName.Parse("example.test.");
    private static readonly DnsName Www = DnsName.Parse("www.example.test.");
    private static readonly DateTimeOffset Start = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    /// <summary>The largest TTL in the test zone (www's A): longer than DNSKEY's, so the two waits differ.</summary>
    private static readonly TimeSpan MaxTtl = TimeSpan.FromSeconds(7200);
    /// <summary>How long the parent takes to act on CDS, and the operator to notice (run ds-seen / ds-withdrawn).</summary>
    private static readonly TimeSpan ParentDelay = TimeSpan.FromHours(6), OperatorDelay = TimeSpan.FromHours(2);

    private readonly string _dir = Directory.CreateTempSubdirectory("portcullis-rollover-").FullName;
    private readonly FakeTimeProvider _time = new(Start);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static readonly DnssecPolicy BasePolicy = new()
    {
        DnskeyTtl = 3600,
        PropagationDelay = TimeSpan.FromHours(1),
        ParentDsTtl = TimeSpan.FromDays(1),
        ParentPropagationDelay = TimeSpan.FromHours(1),
        ZskLifetime = null,
        KskLifetime = null,
    };

    private static List<ResourceRecord> Unsigned()
    {
        const string text = """
            $ORIGIN example.test.
            @ 3600 SOA ns1 hostmaster 1 7200 3600 1209600 300
            @ 3600 NS ns1
            ns1 3600 A 192.0.2.1
            www 7200 A 192.0.2.3

            """;
        using var reader = new ZoneReader(new StringReader(text), Zone);
        return reader.ReadRecords().ToList();
    }

    // ---- the world: the zone as served over time, the parent's DS over time, caches ----

    private sealed record Served(DateTimeOffset From, List<ResourceRecord> Records)
    {
        public DateTimeOffset? Until { get; set; }
        public List<ResourceRecord> Set(DnsName owner, RecordType type) =>
            Records.Where(r => r.Owner.Equals(owner) && r.Type == type).ToList();
        public List<ResourceRecord> Sigs(DnsName owner, RecordType type) =>
            Records.Where(r => r.Owner.Equals(owner) && r.Type == RecordType.RRSIG
                && Rrsig.TryRead(r.Data, out var s) && s.TypeCovered == type).ToList();
    }

    private sealed record ParentDs(DateTimeOffset From, List<byte[]> Ds)
    {
        public DateTimeOffset? Until { get; set; }
    }

    private sealed class World(DnssecPolicy policy)
    {
        public readonly List<Served> Zone = [];
        public readonly List<ParentDs> Parent = [];
        public readonly List<string> Failures = [];

        public void Serve(DateTimeOffset now, List<ResourceRecord> records)
        {
            if (Zone.Count > 0) Zone[^1].Until = now;
            Zone.Add(new Served(now, records));
        }

        public void SetParent(DateTimeOffset now, List<byte[]> ds)
        {
            if (Parent.Count > 0) Parent[^1].Until = now;
            Parent.Add(new ParentDs(now, ds));
        }

        /// <summary>
        /// What a cache may hold now: the current version, and every earlier one served until
        /// `Until` by a secondary lagging by up to the propagation delay, then kept for its TTL.
        /// </summary>
        private static bool Cached(DateTimeOffset? until, DateTimeOffset now, TimeSpan delay, TimeSpan ttl) =>
            until is null || now < until.Value + delay + ttl;

        public void Check(DateTimeOffset now, string step)
        {
            var fresh = Zone[^1];
            var dnskeys = Zone.Where(z => Cached(z.Until, now, policy.PropagationDelay, Ttl(z, RecordType.DNSKEY))).ToList();
            var answers = Zone.Where(z => Cached(z.Until, now, policy.PropagationDelay, Ttl(z, RecordType.A, Www))).ToList();
            var dsSets = Parent.Where(p => Cached(p.Until, now, policy.ParentPropagationDelay, policy.ParentDsTtl)).ToList();
            // Cached or fresh DS -> cached or fresh DNSKEY RRset (a chain of trust from the parent).
            foreach (var ds in dsSets)
                foreach (var z in dnskeys)
                    if (!DnskeyValidates(ds.Ds, z, now))
                        Failures.Add($"{step}: the DS RRset of {ds.From:u} does not validate the DNSKEY RRset served from {z.From:u}");
            // Cached or fresh DNSKEY RRset -> cached or fresh signed answer; and, as a strict validator
            // reading RFC 4035 §2.2 would, a valid signature for every algorithm of the DNSKEY RRset.
            foreach (var z in dnskeys)
            {
                var keys = z.Set(Www.Parent(), RecordType.DNSKEY);
                foreach (var a in answers)
                {
                    var valid = a.Sigs(Www, RecordType.A).Where(s => DnssecVerifier.Verify(s, a.Set(Www, RecordType.A), keys, now).Status == SignatureStatus.Valid).ToList();
                    if (valid.Count == 0)
                        Failures.Add($"{step}: the DNSKEY RRset served from {z.From:u} does not validate the answer served from {a.From:u}");
                    foreach (var alg in keys.Select(k => DnsKey.Algorithm(k.Data)).Distinct())
                        if (!valid.Exists(s => Rrsig.TryRead(s.Data, out var r) && r.Algorithm == alg))
                            Failures.Add($"{step}: strict: no valid {DnssecAlgorithms.ToText(alg)} signature in the answer served from {a.From:u} for the DNSKEY RRset served from {z.From:u}");
                }
            }
            // RFC 4035 §2.2: every algorithm of the DNSKEY RRset signs every RRset (the zone as served now).
            var published = fresh.Set(Www.Parent(), RecordType.DNSKEY);
            foreach (var alg in published.Select(k => DnsKey.Algorithm(k.Data)).Distinct())
                foreach (var (owner, type) in (ReadOnlySpan<(DnsName, RecordType)>)[(Www.Parent(), RecordType.DNSKEY), (Www, RecordType.A), (Www.Parent(), RecordType.SOA)])
                    if (!fresh.Sigs(owner, type).Exists(s => Rrsig.TryRead(s.Data, out var r) && r.Algorithm == alg))
                        Failures.Add($"{step}: no {DnssecAlgorithms.ToText(alg)} signature over {owner} {type} although the DNSKEY RRset has that algorithm");
            // RFC 7344 §4.1: CDS/CDNSKEY signed by a key that the parent's current DS designates.
            var cds = fresh.Set(Www.Parent(), RecordType.CDS);
            if (cds.Count > 0)
            {
                var cdsSigs = fresh.Sigs(Www.Parent(), RecordType.CDS);
                bool ok = published.Exists(k => Parent[^1].Ds.Exists(d => DsDigest.Compare(d, k.Owner, k.Data) == DsMatch.Match)
                    && cdsSigs.Exists(s => DnssecVerifier.Verify(s, cds, k, now).Status == SignatureStatus.Valid));
                if (!ok) Failures.Add($"{step}: the CDS RRset is not signed by a key the parent's DS designates");
                if (fresh.Set(Www.Parent(), RecordType.CDNSKEY).Count != cds.Count) Failures.Add($"{step}: CDS and CDNSKEY disagree");
            }
        }

        private static TimeSpan Ttl(Served z, RecordType type, DnsName? owner = null)
        {
            var set = z.Set(owner ?? z.Records[0].Owner, type);
            return set.Count == 0 ? TimeSpan.Zero : TimeSpan.FromSeconds(set[0].Ttl);
        }

        /// <summary>
        /// A secure entry into the DNSKEY RRset for every algorithm of the DS RRset (as Unbound's
        /// harden-algo-downgrade asks): a key the DS designates, whose signature over the RRset verifies.
        /// </summary>
        private static bool DnskeyValidates(List<byte[]> ds, Served z, DateTimeOffset now)
        {
            var apex = z.Records.First(r => r.Type == RecordType.SOA).Owner;
            var keys = z.Set(apex, RecordType.DNSKEY);
            var sigs = z.Sigs(apex, RecordType.DNSKEY);
            return ds.Select(d => d[2]).Distinct().All(alg => keys.Exists(k => ds.Exists(d => d[2] == alg && DsDigest.Compare(d, apex, k.Data) == DsMatch.Match)
                && sigs.Exists(s => DnssecVerifier.Verify(s, keys, k, now).Status == SignatureStatus.Valid)));
        }
    }

    /// <summary>
    /// Runs the zone from <see cref="Start"/> to <paramref name="until"/>: at each step Plan, sign,
    /// serve, check; the parent follows CDS/CDNSKEY <see cref="ParentDelay"/> after a change and
    /// the operator tells Portcullis <see cref="OperatorDelay"/> later. Every step the ZoneKeys is
    /// reopened from disk and must plan the same; the reopened one carries on.
    /// </summary>
    private sealed class Driver : IDisposable
    {
        private readonly RolloverTests _t;
        public DnssecPolicy Policy;
        public ZoneKeys Keys;
        public readonly World World;
        public readonly List<(DateTimeOffset At, string Line)> Log = [];
        private DateTimeOffset? _parentActs, _operatorActs;
        private List<byte[]> _parentDs = [];
        public int Steps;

        public Driver(RolloverTests t, DnssecPolicy policy)
        {
            _t = t;
            Policy = policy;
            World = new World(policy);
            Keys = ZoneKeys.Open(Zone, t._dir, policy, t._time);
        }

        public DateTimeOffset Now => _t._time.GetUtcNow();

        public void ChangePolicy(DnssecPolicy policy)
        {
            Keys.Dispose();
            Policy = policy;
            Keys = ZoneKeys.Open(Zone, _t._dir, policy, _t._time);
        }

        /// <summary>The first step: keys made, the parent given their DS at once (a zone already secure).</summary>
        public void Bootstrap()
        {
            var plan = Step("bootstrap");
            var cds = CdsOf(World.Zone[^1]);
            World.SetParent(Now, cds);
            foreach (var s in Keys.Status.Where(s => s.Ds == DsState.Submitted)) Keys.DsSeen(s.KeyTag);
            Assert.NotEmpty(cds);
            _ = plan;
        }

        public KeyPlan Step(string label)
        {
            var plan = Keys.Plan(MaxTtl);
            foreach (var e in plan.Events) Log.Add((Now, e));
            Assert.True(plan.NextEvent > Now, $"{label}: NextEvent {plan.NextEvent:u} is not after now {Now:u}");

            // Persistence: a ZoneKeys read back from the directory plans the same and carries on.
            var again = ZoneKeys.Open(Zone, _t._dir, Policy, _t._time);
            var replan = again.Plan(MaxTtl);
            Assert.Empty(replan.Events);
            Assert.Equal(plan.NextEvent, replan.NextEvent);
            Assert.Equal(Tags(plan.Keys.Published), Tags(replan.Keys.Published));
            Assert.Equal(Tags(plan.Keys.KeySigners), Tags(replan.Keys.KeySigners));
            Assert.Equal(Tags(plan.Keys.ZoneSigners), Tags(replan.Keys.ZoneSigners));
            Assert.Equal(Tags(plan.Keys.Cds), Tags(replan.Keys.Cds));
            Assert.Equal(Keys.Status, again.Status);
            Keys.Dispose();
            Keys = again;

            var signed = ZoneSigner.Sign(Zone, Unsigned(), replan.Keys, Now);
            World.Serve(Now, signed);
            if (World.Parent.Count > 0) World.Check(Now, $"{label} at {Now:u}");
            Steps++;
            return replan;
        }

        private static List<ushort> Tags(IReadOnlyList<DnssecPrivateKey> keys) => keys.Select(k => k.KeyTag).Order().ToList();

        private static List<byte[]> CdsOf(Served z) => z.Set(Zone, RecordType.CDS).Select(r => r.Data).ToList();

        /// <summary>Runs steps until <paramref name="until"/> holds (or the time limit), visiting every NextEvent, every parent and operator action, and every <paramref name="stride"/>.</summary>
        public void RunUntil(Func<bool> until, TimeSpan limit, TimeSpan stride, string label)
        {
            var deadline = Now + limit;
            while (true)
            {
                var plan = Step(label);
                Act();
                if (until()) return;
                Assert.True(Now < deadline, $"{label}: not done by {deadline:u}; keys: {string.Join("; ", Keys.Status)}");
                var next = plan.NextEvent;
                if (_parentActs is { } p && p < next) next = p;
                if (_operatorActs is { } o && o < next) next = o;
                if (Now + stride < next) next = Now + stride;
                _t._time.SetUtcNow(next);
            }
        }

        /// <summary>The parent follows the zone's CDS; the operator, later, reports what the parent did.</summary>
        private void Act()
        {
            var status = Keys.Status;
            bool asks = status.Any(s => s.Ds is DsState.Submitted or DsState.WithdrawnSubmitted && s.State != KeyState.Removed)
                || status.Any(s => s.State == KeyState.DsWithdrawing);
            if (asks && _parentActs is null && _operatorActs is null) _parentActs = Now + ParentDelay;
            if (_parentActs is { } p && p <= Now)
            {
                _parentDs = CdsOf(World.Zone[^1]);
                World.SetParent(Now, _parentDs);
                Log.Add((Now, "parent: DS set follows CDS (" + string.Join(", ", _parentDs.Select(d => (d[0] << 8) | d[1])) + ")"));
                _parentActs = null;
                _operatorActs = Now + OperatorDelay;
            }
            if (_operatorActs is { } o && o <= Now)
            {
                var atParent = _parentDs.Select(d => (ushort)((d[0] << 8) | d[1])).ToHashSet();
                foreach (var s in Keys.Status)
                {
                    if (s.Ds == DsState.Submitted && atParent.Contains(s.KeyTag))
                    {
                        Keys.DsSeen(s.KeyTag);
                        Log.Add((Now, $"operator: ds-seen {s.KeyTag}"));
                    }
                    else if ((s.Ds == DsState.WithdrawnSubmitted || s.State == KeyState.DsWithdrawing) && !atParent.Contains(s.KeyTag))
                    {
                        Keys.DsWithdrawn(s.KeyTag);
                        Log.Add((Now, $"operator: ds-withdrawn {s.KeyTag}"));
                    }
                }
                _operatorActs = null;
            }
        }

        public string Trace() => string.Join("\n", Log.Select(l => $"{l.At:u} {l.Line}")) + "\n" + string.Join("\n", World.Failures);

        public void Dispose() => Keys.Dispose();
    }

    private static readonly TimeSpan Stride = TimeSpan.FromHours(5);

    [Fact]
    public void A_whole_ZSK_rollover_by_pre_publication_keeps_every_cache_validating()
    {
        var policy = BasePolicy with { ZskLifetime = TimeSpan.FromDays(3) };
        using var d = new Driver(this, policy);
        d.Bootstrap();
        var first = d.Keys.Status;
        ushort ksk = first.Single(s => s.Role == KeyRole.Ksk).KeyTag, oldZsk = first.Single(s => s.Role == KeyRole.Zsk).KeyTag;

        d.RunUntil(() => d.Keys.Status.Any(s => s.Role == KeyRole.Zsk && s.KeyTag != oldZsk), TimeSpan.FromDays(4), Stride, "before");
        var began = d.Now;
        Assert.Equal(Start + TimeSpan.FromDays(3), began);   // the lifetime counts from activation
        ushort newZsk = d.Keys.Status.Single(s => s.Role == KeyRole.Zsk && s.KeyTag != oldZsk).KeyTag;
        Assert.Equal(KeyState.Prepublished, d.Keys.Status.Single(s => s.KeyTag == newZsk).State);

        d.RunUntil(() => d.Keys.Status.Single(s => s.KeyTag == oldZsk).State == KeyState.Removed, TimeSpan.FromDays(2), Stride, "ZSK rollover");
        Assert.True(d.World.Failures.Count == 0, d.Trace());
        // Ipub = TTLkey + Dprp = 2 h, then Iret = max TTL + Dprp = 3 h (RFC 7583 §3.2.1).
        Assert.Equal(began + TimeSpan.FromHours(2) + TimeSpan.FromHours(3), d.Now);
        var live = d.Keys.Status.Where(s => s.State != KeyState.Removed).ToList();
        Assert.Equal(new[] { ksk, newZsk }.Order(), live.Select(s => s.KeyTag).Order());
        Assert.All(live, s => Assert.Equal(KeyState.Active, s.State));
        // A few more days: the next rollover is timed from the new ZSK's activation, and still valid throughout.
        d.RunUntil(() => d.Now >= began + TimeSpan.FromDays(4), TimeSpan.FromDays(5), Stride, "after");
        Assert.True(d.World.Failures.Count == 0, d.Trace());
        Assert.True(d.Steps > 20);
    }

    [Fact]
    public void A_whole_KSK_double_DS_rollover_with_CDS_keeps_every_cache_validating()
    {
        var policy = BasePolicy with { KskLifetime = TimeSpan.FromDays(2) };
        using var d = new Driver(this, policy);
        d.Bootstrap();
        var first = d.Keys.Status;
        ushort oldKsk = first.Single(s => s.Role == KeyRole.Ksk).KeyTag, zsk = first.Single(s => s.Role == KeyRole.Zsk).KeyTag;

        d.RunUntil(() => d.Keys.Status.Any(s => s.Role == KeyRole.Ksk && s.KeyTag != oldKsk), TimeSpan.FromDays(3), Stride, "before");
        var began = d.Now;
        Assert.Equal(Start + TimeSpan.FromDays(2), began);
        ushort newKsk = d.Keys.Status.Single(s => s.Role == KeyRole.Ksk && s.KeyTag != oldKsk).KeyTag;
        var pending = d.Keys.Status.Single(s => s.KeyTag == newKsk);
        // Double-DS: the new DS goes to the parent first; the DNSKEY RRset does not change yet.
        Assert.Equal(KeyState.DsPending, pending.State);
        Assert.False(pending.Published);
        Assert.True(pending.InCds);
        Assert.Contains($"ds-seen example.test. {newKsk}", pending.Waiting);
        Assert.Contains(d.Log, l => l.Line.Contains($"KSK {newKsk}: waiting for its DS at the parent (run: portcullis dnssec ds-seen example.test. {newKsk})"));

        d.RunUntil(() => d.Keys.Status.Single(s => s.KeyTag == oldKsk).State == KeyState.Removed, TimeSpan.FromDays(4), Stride, "KSK rollover");
        Assert.True(d.World.Failures.Count == 0, d.Trace());
        // Parent 6 h + operator 2 h, then TTLds + DprpP = 25 h, the swap, TTLkey + Dprp = 2 h, CDS
        // drops the old key: parent 6 h + operator 2 h.
        Assert.Equal(began + TimeSpan.FromHours(8 + 25 + 2 + 8), d.Now);
        var live = d.Keys.Status.Where(s => s.State != KeyState.Removed).ToList();
        Assert.Equal(new ushort[] { newKsk, zsk }.Order(), live.Select(s => s.KeyTag).Order());
        Assert.All(live, s => Assert.Equal(KeyState.Active, s.State));
        Assert.Equal(DsState.Seen, live.Single(s => s.KeyTag == newKsk).Ds);
        Assert.Equal(DsState.Withdrawn, d.Keys.Status.Single(s => s.KeyTag == oldKsk).Ds);
        // The removed key's files stay, marked removed.
        string basePath = Path.Combine(_dir, DnssecKeyFile.BaseName(Zone, DnssecAlgorithm.EcdsaP256Sha256, oldKsk));
        Assert.True(File.Exists(basePath + ".private"));
        Assert.Contains("state: removed", File.ReadAllText(basePath + ".state"));
        d.RunUntil(() => d.Now >= began + TimeSpan.FromDays(3), TimeSpan.FromDays(2), Stride, "after");
        Assert.True(d.World.Failures.Count == 0, d.Trace());
    }

    [Fact]
    public void A_CSK_rollover_keeps_every_cache_validating()
    {
        var policy = BasePolicy with { CombinedKey = true, KskLifetime = TimeSpan.FromDays(2) };
        using var d = new Driver(this, policy);
        d.Bootstrap();
        ushort old = d.Keys.Status.Single().KeyTag;
        Assert.Equal(KeyRole.Csk, d.Keys.Status.Single().Role);
        d.RunUntil(() => d.Keys.Status.Count > 1, TimeSpan.FromDays(3), Stride, "before");
        var began = d.Now;
        d.RunUntil(() => d.Keys.Status.Single(s => s.KeyTag == old).State == KeyState.Removed, TimeSpan.FromDays(4), Stride, "CSK rollover");
        Assert.True(d.World.Failures.Count == 0, d.Trace());
        // Parent + operator 8 h, TTLds + DprpP 25 h, then max(TTL) + Dprp 3 h, then the old DS withdrawn: 8 h.
        Assert.Equal(began + TimeSpan.FromHours(8 + 25 + 3 + 8), d.Now);
        Assert.Single(d.Keys.Status, s => s.State != KeyState.Removed);
    }

    [Fact]
    public void An_algorithm_rollover_13_to_15_follows_RFC_6781_and_keeps_every_cache_validating()
    {
        using var d = new Driver(this, BasePolicy);
        d.Bootstrap();
        var olds = d.Keys.Status.Select(s => s.KeyTag).ToList();
        d.RunUntil(() => d.Now >= Start + TimeSpan.FromDays(1), TimeSpan.FromDays(2), Stride, "before");

        d.ChangePolicy(BasePolicy with { Algorithm = DnssecAlgorithm.Ed25519 });
        var began = d.Now;
        var seen = new List<string>();
        d.RunUntil(() =>
        {
            // The order of RFC 6781 §4.1.4: each phase appears, in turn.
            var news = d.Keys.Status.Where(s => s.Algorithm == DnssecAlgorithm.Ed25519).ToList();
            string phase = news.Count == 0 ? "none" : KeyStates.ToText(news.First(s => s.Role == KeyRole.Ksk).State)
                + "/" + string.Join(",", d.Keys.Status.Where(s => olds.Contains(s.KeyTag)).Select(s => KeyStates.ToText(s.State)).Distinct());
            if (seen.Count == 0 || seen[^1] != phase) seen.Add(phase);
            return olds.All(t => d.Keys.Status.Single(s => s.KeyTag == t).State == KeyState.Removed);
        }, TimeSpan.FromDays(4), Stride, "algorithm rollover");
        Assert.True(d.World.Failures.Count == 0, d.Trace());
        Assert.Equal(new[] { "signing-hidden/active", "published-new/active", "active/active", "active/unpublished-signing", "active/removed" }, seen);
        // Iret 3 h, Ipub 2 h, parent + operator 8 h, TTLds + DprpP 25 h, TTLkey + Dprp 2 h.
        Assert.Equal(began + TimeSpan.FromHours(3 + 2 + 8 + 25 + 2), d.Now);
        var live = d.Keys.Status.Where(s => s.State != KeyState.Removed).ToList();
        Assert.Equal(2, live.Count);
        Assert.All(live, s => Assert.Equal(DnssecAlgorithm.Ed25519, s.Algorithm));
        Assert.All(live, s => Assert.Equal(KeyState.Active, s.State));
        d.RunUntil(() => d.Now >= began + TimeSpan.FromDays(3), TimeSpan.FromDays(2), Stride, "after");
        Assert.True(d.World.Failures.Count == 0, d.Trace());
    }

    [Fact]
    public void The_cache_model_catches_a_rollover_with_waits_too_short()
    {
        // The policy claims a 60 s DNSKEY TTL and no propagation delay, but the zone serves DNSKEY
        // with 3600: the new ZSK signs while caches still hold a DNSKEY RRset without it.
        var policy = BasePolicy with { ZskLifetime = TimeSpan.FromDays(1), DnskeyTtl = 60, PropagationDelay = TimeSpan.Zero };
        using var d = new Driver(this, policy);
        d.Bootstrap();
        d.RunUntil(() => d.Now >= Start + TimeSpan.FromDays(2), TimeSpan.FromDays(3), Stride, "too short");
        Assert.Contains(d.World.Failures, f => f.Contains("does not validate the answer", StringComparison.Ordinal));
    }

    [Fact]
    public void RollNow_starts_a_rollover_at_once_and_refuses_a_second_one()
    {
        using var d = new Driver(this, BasePolicy);
        d.Bootstrap();
        d.Keys.RollNow(ksk: false);
        Assert.Equal(3, d.Keys.Status.Count);
        Assert.Single(d.Keys.Status, s => s.State == KeyState.Prepublished);
        Assert.Throws<InvalidOperationException>(() => d.Keys.RollNow(ksk: false));
        d.Keys.RollNow(ksk: true);
        Assert.Single(d.Keys.Status, s => s.State == KeyState.DsPending);
        var plan = d.Step("rolled");
        Assert.Equal(d.Now + TimeSpan.FromHours(2), plan.NextEvent);   // the ZSK's Ipub; the KSK waits for its DS
        Assert.True(d.World.Failures.Count == 0, d.Trace());
    }

    [Fact]
    public void DsSeen_with_an_unknown_tag_or_a_ZSK_says_so()
    {
        using var d = new Driver(this, BasePolicy);
        d.Bootstrap();
        ushort zsk = d.Keys.Status.Single(s => s.Role == KeyRole.Zsk).KeyTag;
        ushort unknown = (ushort)Enumerable.Range(1, 65535).First(t => d.Keys.Status.All(s => s.KeyTag != t));
        var e = Assert.Throws<ArgumentException>(() => d.Keys.DsSeen(unknown));
        Assert.Contains($"no key with tag {unknown}", e.Message);
        Assert.Contains("is a ZSK", Assert.Throws<ArgumentException>(() => d.Keys.DsWithdrawn(zsk)).Message);
    }

    [Fact]
    public void Keys_made_by_dnssec_keygen_without_state_are_adopted_and_written_down()
    {
        foreach (string[] args in (string[][])[["-a", "ECDSAP256SHA256", "-f", "KSK"], ["-a", "ECDSAP256SHA256"]])
        {
            var psi = new System.Diagnostics.ProcessStartInfo("dnssec-keygen") { WorkingDirectory = _dir, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (string a in args) psi.ArgumentList.Add(a);
            psi.ArgumentList.Add("-K");
            psi.ArgumentList.Add(_dir);
            psi.ArgumentList.Add("example.test");
            using var p = System.Diagnostics.Process.Start(psi)!;
            string err = p.StandardError.ReadToEnd();
            p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            Assert.True(p.ExitCode == 0, err);
        }
        Assert.Empty(Directory.GetFiles(_dir, "*.state"));
        using var d = new Driver(this, BasePolicy);
        var status = d.Keys.Status;
        Assert.Equal(2, status.Count);
        Assert.All(status, s => Assert.Equal(KeyState.Active, s.State));
        var ksk = status.Single(s => s.Role == KeyRole.Ksk);
        Assert.Equal(DsState.Seen, ksk.Ds);
        Assert.Equal(DsState.None, status.Single(s => s.Role == KeyRole.Zsk).Ds);
        Assert.Equal(2, Directory.GetFiles(_dir, "*.state").Length);
        Assert.Contains("adopted: yes", File.ReadAllText(Directory.GetFiles(_dir, "*.state")[0]));
        // No new keys: the adopted ones sign (KSK the DNSKEY RRset, ZSK the rest) and CDS lists the KSK.
        var plan = d.Keys.Plan(MaxTtl);
        Assert.Equal(new[] { ksk.KeyTag }, plan.Keys.KeySigners.Select(k => k.KeyTag));
        Assert.Equal(2, plan.Keys.Published.Count);
        Assert.Equal(new[] { ksk.KeyTag }, plan.Keys.Cds.Select(k => k.KeyTag));
        Assert.Equal(DateTimeOffset.MaxValue, plan.NextEvent);   // BasePolicy has no lifetimes

        // A single key of an algorithm is a combined key.
        foreach (var f in Directory.GetFiles(_dir)) File.Delete(f);
        var lone = DnssecPrivateKey.Generate(Zone, DnssecAlgorithm.EcdsaP256Sha256, ksk: false);
        DnssecKeyFile.Write(_dir, lone, Start);
        using var single = ZoneKeys.Open(Zone, _dir, BasePolicy, _time);
        Assert.Equal(KeyRole.Csk, single.Status.Single().Role);
    }

    [Fact]
    public void A_damaged_state_file_is_an_error_naming_the_file()
    {
        using (var d = new Driver(this, BasePolicy)) d.Bootstrap();
        string state = Directory.GetFiles(_dir, "*.state")[0];
        File.WriteAllText(state, File.ReadAllText(state).Replace("state: active", "state: dancing", StringComparison.Ordinal));
        var e = Assert.Throws<FormatException>(() => ZoneKeys.Open(Zone, _dir, BasePolicy, _time));
        Assert.StartsWith(state + ":", e.Message, StringComparison.Ordinal);
        File.WriteAllText(state, "; BIND key state\nKSK: yes\n");
        Assert.Contains("not a Portcullis key state file", Assert.Throws<FormatException>(() => ZoneKeys.Open(Zone, _dir, BasePolicy, _time)).Message);
    }
}
