using Microsoft.Extensions.Time.Testing;
using Portcullis.Protocol.Dnssec;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Server.Configuration;
using Portcullis.Server.Tests.Support;
using Portcullis.Server.Validation;

namespace Portcullis.Server.Tests.Resolution;

/// <summary>
/// RFC 5011 automated updates of the root's trust anchor, driven by a fake clock over months: a
/// root zone operator (real keys, real signatures) publishes, rolls and revokes KSKs, and the
/// resolver's <see cref="AutoTrustAnchor"/> refreshes as its timers say. What a user notices: which
/// keys the validator trusts (a DNSKEY RRset signed only by a key validates or not) and the file.
/// </summary>
public sealed class AutoTrustAnchorTests : IDisposable
{
    private static readonly DateTimeOffset Start = new(2026, 11, 30, 0, 0, 0, TimeSpan.Zero);
    private const uint DnskeyTtl = 172800;   // the root's: 2 days

    private readonly string _dir = Directory.CreateTempSubdirectory("portcullis-5011-").FullName;
    private readonly FakeTimeProvider _time = new(Start);
    private readonly RootOperator _root = new();

    public void Dispose()
    {
        _root.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    /// <summary>The root zone's operator: the keys in the DNSKEY RRset, and those signing it (14-day signatures, as the root's).</summary>
    private sealed class RootOperator : IDisposable
    {
        private readonly List<DnssecPrivateKey> _owned = [];
        public List<DnssecPrivateKey> Published { get; } = [];
        public List<DnssecPrivateKey> Signers { get; } = [];
        public DnssecPrivateKey Zsk { get; }

        public RootOperator()
        {
            Zsk = Key(ksk: false);
            Published.Add(Zsk);
        }

        public DnssecPrivateKey Key(bool ksk = true)
        {
            var k = DnssecPrivateKey.Generate(DnsName.Root, DnssecAlgorithm.EcdsaP256Sha256, ksk);
            _owned.Add(k);
            return k;
        }

        /// <summary>The same key with the REVOKE bit (RFC 5011 §2.1): a new tag, signing as itself.</summary>
        public DnssecPrivateKey Revoked(DnssecPrivateKey k)
        {
            var r = DnssecPrivateKey.FromEcdsa(k.Zone, k.Algorithm, (ushort)(k.Flags | DnsKey.RevokeFlag), k.ExportPrivateFields()[0].Value);
            _owned.Add(r);
            return r;
        }

        public (IReadOnlyList<ResourceRecord> Keys, IReadOnlyList<ResourceRecord> Sigs) Answer(DateTimeOffset now)
        {
            var rrset = Published.Select(k => DnssecSigner.DnskeyRecord(k, DnskeyTtl)).ToList();
            var sigs = Signers.Select(k => DnssecSigner.SignRrset(rrset, k, now - TimeSpan.FromHours(1), now + TimeSpan.FromDays(14))).ToList();
            return (rrset, sigs);
        }

        public void Dispose()
        {
            foreach (var k in _owned) k.Dispose();
        }
    }

    private Task<(IReadOnlyList<ResourceRecord> Keys, IReadOnlyList<ResourceRecord> Sigs)?> Fetch(DnsName zone, CancellationToken token)
    {
        Assert.True(zone.IsRoot);
        return Task.FromResult<(IReadOnlyList<ResourceRecord>, IReadOnlyList<ResourceRecord>)?>(_root.Answer(_time.GetUtcNow()));
    }

    private static Task<(IReadOnlyList<ResourceRecord> Keys, IReadOnlyList<ResourceRecord> Sigs)?> Unreachable(DnsName zone, CancellationToken token) =>
        Task.FromResult<(IReadOnlyList<ResourceRecord>, IReadOnlyList<ResourceRecord>)?>(null);

    private string AnchorFile(params DnssecPrivateKey[] keys)
    {
        var path = Path.Combine(_dir, "root.autokey");
        File.WriteAllLines(path, keys.Select(k => DnssecSigner.DnskeyRecord(k, DnskeyTtl).ToString()));
        return path;
    }

    /// <summary>What a validator holding the anchors makes of a root DNSKEY RRset signed by <paramref name="signer"/> only.</summary>
    private DnssecSecurity Validates(AutoTrustAnchor anchor, DnssecPrivateKey signer)
    {
        var (keys, _) = _root.Answer(_time.GetUtcNow());
        var sig = DnssecSigner.SignRrset(keys, signer, _time.GetUtcNow() - TimeSpan.FromHours(1), _time.GetUtcNow() + TimeSpan.FromDays(14));
        var (ds, anchorKeys) = anchor.Anchors.For(DnsName.Root);
        if (anchor.Anchors.ClosestAnchor(DnsName.Root) is null) return DnssecSecurity.Insecure;
        var budget = new ValidationBudget();
        return RrsetValidator.ValidateKeys(keys, [sig], DnsName.Root, ds, anchorKeys, _time.GetUtcNow(), ref budget).Security;
    }

    private static AnchorKeyState? StateOf(AutoTrustAnchor anchor, DnssecPrivateKey key)
    {
        foreach (var k in anchor.Keys)
            if (k.Rdata.AsSpan(2).SequenceEqual(key.DnskeyRdata.AsSpan(2))) return k.State;
        return null;
    }

    /// <summary>Refreshes once a day (the root's timer, checked) from now for <paramref name="days"/> days.</summary>
    private async Task Days(AutoTrustAnchor anchor, int days)
    {
        for (int d = 0; d < days; d++)
        {
            _time.Advance(TimeSpan.FromDays(1));
            var next = await anchor.RefreshAsync(Fetch, CancellationToken.None);
            Assert.Null(anchor.LastProblem);
            Assert.Equal(TimeSpan.FromDays(1), next);
        }
    }

    [Fact]
    public async Task A_new_ksk_signed_by_the_trusted_ksk_is_trusted_after_30_days_seen_at_every_refresh_not_before()
    {
        var ksk1 = _root.Key();
        _root.Published.Add(ksk1);
        _root.Signers.Add(ksk1);
        var anchor = AutoTrustAnchor.Load(AnchorFile(ksk1), _time);
        Assert.Equal(AnchorKeyState.Valid, StateOf(anchor, ksk1));

        // Active refresh (§2.3): min(15 days, TTL/2 = 1 day, 14-day signatures/2) = 1 day.
        Assert.Equal(TimeSpan.FromDays(1), await anchor.RefreshAsync(Fetch, CancellationToken.None));

        var ksk2 = _root.Key();
        _root.Published.Add(ksk2);
        _root.Signers.Add(ksk2);
        await anchor.RefreshAsync(Fetch, CancellationToken.None);
        Assert.Equal(AnchorKeyState.AddPend, StateOf(anchor, ksk2));
        Assert.Contains(anchor.LastChanges, c => c.Contains("ADDPEND"));

        await Days(anchor, 29);
        Assert.Equal(AnchorKeyState.AddPend, StateOf(anchor, ksk2));
        Assert.Equal(DnssecSecurity.Bogus, Validates(anchor, ksk2));
        Assert.Single(anchor.Anchors.For(DnsName.Root).Keys);

        await Days(anchor, 1);
        Assert.Equal(AnchorKeyState.Valid, StateOf(anchor, ksk2));
        Assert.Equal(DnssecSecurity.Secure, Validates(anchor, ksk2));
        Assert.Equal(DnssecSecurity.Secure, Validates(anchor, ksk1));
        Assert.Equal(2, anchor.Anchors.For(DnsName.Root).Keys.Count);
        // The ZSK is never an anchor.
        Assert.Null(StateOf(anchor, _root.Zsk));
    }

    [Fact]
    public async Task A_key_that_disappears_before_the_hold_down_never_becomes_trusted()
    {
        var ksk1 = _root.Key();
        _root.Published.Add(ksk1);
        _root.Signers.Add(ksk1);
        var anchor = AutoTrustAnchor.Load(AnchorFile(ksk1), _time);

        var ksk2 = _root.Key();
        _root.Published.Add(ksk2);
        await anchor.RefreshAsync(Fetch, CancellationToken.None);
        await Days(anchor, 10);
        Assert.Equal(AnchorKeyState.AddPend, StateOf(anchor, ksk2));

        _root.Published.Remove(ksk2);
        await Days(anchor, 10);
        Assert.Null(StateOf(anchor, ksk2));   // back to Start

        // Published again, first seen on day 21: the hold-down starts over, so day 50 is still too early.
        _root.Published.Add(ksk2);
        await Days(anchor, 30);
        Assert.Equal(AnchorKeyState.AddPend, StateOf(anchor, ksk2));
        Assert.Equal(DnssecSecurity.Bogus, Validates(anchor, ksk2));
        await Days(anchor, 1);
        Assert.Equal(AnchorKeyState.Valid, StateOf(anchor, ksk2));
    }

    [Fact]
    public async Task A_revoked_key_is_removed_and_never_used_again()
    {
        var ksk1 = _root.Key();
        var ksk2 = _root.Key();
        _root.Published.AddRange([ksk1, ksk2]);
        _root.Signers.AddRange([ksk1, ksk2]);
        var anchor = AutoTrustAnchor.Load(AnchorFile(ksk1, ksk2), _time);
        await anchor.RefreshAsync(Fetch, CancellationToken.None);

        // KSK1 revoked: published with the REVOKE bit and signing the RRset itself.
        var revoked = _root.Revoked(ksk1);
        Assert.NotEqual(ksk1.KeyTag, revoked.KeyTag);
        _root.Published[_root.Published.IndexOf(ksk1)] = revoked;
        _root.Signers[_root.Signers.IndexOf(ksk1)] = revoked;
        _time.Advance(TimeSpan.FromDays(1));
        await anchor.RefreshAsync(Fetch, CancellationToken.None);
        Assert.Equal(AnchorKeyState.Revoked, StateOf(anchor, ksk1));
        Assert.Equal(DnssecSecurity.Bogus, Validates(anchor, ksk1));
        Assert.Equal(DnssecSecurity.Secure, Validates(anchor, ksk2));
        Assert.Contains($"tag={revoked.KeyTag}", File.ReadAllText(anchor.File));

        // Published again without the bit and signing: still not trusted, not even pending.
        _root.Published[_root.Published.IndexOf(revoked)] = ksk1;
        _root.Signers[_root.Signers.IndexOf(revoked)] = ksk1;
        await Days(anchor, 31);
        Assert.Equal(AnchorKeyState.Removed, StateOf(anchor, ksk1));
        Assert.Equal(DnssecSecurity.Bogus, Validates(anchor, ksk1));
        Assert.Single(anchor.Anchors.For(DnsName.Root).Keys);
        // And after a restart.
        var again = AutoTrustAnchor.Load(anchor.File, _time);
        Assert.Equal(AnchorKeyState.Removed, StateOf(again, ksk1));
        Assert.Equal(DnssecSecurity.Bogus, Validates(again, ksk1));
    }

    [Fact]
    public async Task Keys_in_an_rrset_not_signed_by_a_trusted_key_are_ignored_and_so_is_a_forged_revocation()
    {
        var ksk1 = _root.Key();
        _root.Published.Add(ksk1);
        _root.Signers.Add(ksk1);
        var anchor = AutoTrustAnchor.Load(AnchorFile(ksk1), _time);
        await anchor.RefreshAsync(Fetch, CancellationToken.None);
        var before = File.ReadAllText(anchor.File);

        // An attacker's key, in an RRset signed by itself only, for 40 days.
        var evil = _root.Key();
        _root.Published.Add(evil);
        _root.Signers.Clear();
        _root.Signers.Add(evil);
        for (int d = 0; d < 40; d++)
        {
            _time.Advance(TimeSpan.FromDays(1));
            var next = await anchor.RefreshAsync(Fetch, CancellationToken.None);
            // Retry (§2.3): max(1 h, min(1 day, TTL/10 = 4.8 h, validity left/10)) with the last validated
            // RRset's TTL and signatures; once those signatures have expired, every hour.
            if (d == 0) Assert.Equal(TimeSpan.FromHours(4.8), next);
            if (d == 39) Assert.Equal(TimeSpan.FromHours(1), next);
            Assert.Contains("not validly signed by a trusted key", anchor.LastProblem);
        }
        Assert.Null(StateOf(anchor, evil));
        Assert.Equal(AnchorKeyState.Valid, StateOf(anchor, ksk1));
        Assert.Equal(DnssecSecurity.Bogus, Validates(anchor, evil));

        // KSK1 with the REVOKE bit, but signed by the attacker's key, not by itself: no effect.
        _root.Published.Remove(ksk1);
        _root.Published.Add(_root.Revoked(ksk1));
        _time.Advance(TimeSpan.FromDays(1));
        await anchor.RefreshAsync(Fetch, CancellationToken.None);
        Assert.Equal(AnchorKeyState.Valid, StateOf(anchor, ksk1));
        _root.Published.Add(ksk1);
        Assert.Equal(DnssecSecurity.Secure, Validates(anchor, ksk1));
        Assert.Equal(before, File.ReadAllText(anchor.File));   // nothing changed, nothing written
    }

    [Fact]
    public async Task The_states_survive_a_restart_and_the_hold_down_goes_on()
    {
        var ksk1 = _root.Key();
        var ksk2 = _root.Key();
        _root.Published.AddRange([ksk1, ksk2]);
        _root.Signers.Add(ksk1);
        var file = AnchorFile(ksk1);
        var anchor = AutoTrustAnchor.Load(file, _time);
        await anchor.RefreshAsync(Fetch, CancellationToken.None);
        await Days(anchor, 15);
        Assert.Equal(AnchorKeyState.AddPend, StateOf(anchor, ksk2));
        Assert.Contains("state=ADDPEND since=2026-11-30T00:00:00Z", File.ReadAllText(file));

        // Restart: the same keys, states and times, and the file still reads as a plain anchor file.
        var restarted = AutoTrustAnchor.Load(file, _time);
        Assert.Equal(anchor.Keys.Select(k => k.ToString()), restarted.Keys.Select(k => k.ToString()));
        Assert.Equal(anchor.LastSuccess, restarted.LastSuccess);
        var plain = TrustAnchors.Load([file]);
        Assert.Equal(new[] { ksk1.KeyTag, ksk2.KeyTag }.Order(), plain.For(DnsName.Root).Keys.Select(k => DnsKey.KeyTag(k.Data)).Order());

        // A failed refresh after the restart retries after TTL/10 (the file remembers the TTL).
        Assert.Equal(TimeSpan.FromHours(4.8), await restarted.RefreshAsync(Unreachable, CancellationToken.None));
        await Days(restarted, 14);
        Assert.Equal(AnchorKeyState.AddPend, StateOf(restarted, ksk2));
        await Days(restarted, 1);
        Assert.Equal(AnchorKeyState.Valid, StateOf(restarted, ksk2));
        Assert.Equal(DnssecSecurity.Secure, Validates(restarted, ksk2));
    }

    [Fact]
    public async Task Debians_ds_line_seeds_the_file_and_the_designated_key_becomes_valid_at_the_first_refresh()
    {
        var ksk1 = _root.Key();
        var ksk2 = _root.Key();
        _root.Published.AddRange([ksk1, ksk2]);
        _root.Signers.Add(ksk1);
        var file = Path.Combine(_dir, "root.key");
        File.WriteAllText(file, "; root.key as dns-root-data ships it\n" + DnssecSigner.DsText(DnsName.Root, ksk1.DnskeyRdata) + "\n");
        var anchor = AutoTrustAnchor.Load(file, _time);
        Assert.Single(anchor.Anchors.For(DnsName.Root).Ds);
        Assert.Equal(TimeSpan.FromHours(1), await anchor.RefreshAsync(Unreachable, CancellationToken.None));

        await anchor.RefreshAsync(Fetch, CancellationToken.None);
        Assert.Equal(AnchorKeyState.Valid, StateOf(anchor, ksk1));
        Assert.Equal(AnchorKeyState.AddPend, StateOf(anchor, ksk2));   // not designated: the hold-down applies
        Assert.Empty(anchor.Anchors.For(DnsName.Root).Ds);
        Assert.DoesNotContain(" DS ", File.ReadAllText(file));
        Assert.Equal(DnssecSecurity.Secure, Validates(anchor, ksk1));
    }

    [Theory]
    [InlineData(". 172800 IN DNSKEY 257 3 13 !!notbase64!!", 3, "")]
    [InlineData(". 172800 IN DNSKEY 257 3 13 {KEY} ; state=TRUSTED since=2026-11-30T00:00:00Z", 3, "state=TRUSTED")]
    [InlineData(". 172800 IN DNSKEY 257 3 13 {KEY} ; state=VALID", 3, "without since")]
    [InlineData(". 172800 IN DNSKEY 257 3 13 {KEY} ; state=VALID since=yesterday", 3, "since=yesterday")]
    [InlineData("test. 172800 IN DNSKEY 257 3 13 {KEY}", 3, "one zone")]
    [InlineData(". 172800 IN A 192.0.2.1", 3, "DS and DNSKEY records only")]
    [InlineData("$ORIGIN example.", 3, "directives")]
    public void A_malformed_file_names_the_file_and_the_line(string line, int lineNumber, string problem)
    {
        var ksk1 = _root.Key();
        var ksk2 = _root.Key();
        var file = Path.Combine(_dir, "root.autokey");
        File.WriteAllText(file, "; comment\n" + DnssecSigner.DnskeyRecord(ksk1, DnskeyTtl) + " ; state=VALID since=2026-11-01T00:00:00Z\n"
            + line.Replace("{KEY}", Convert.ToBase64String(DnsKey.PublicKey(ksk2.DnskeyRdata))) + "\n");
        var e = Assert.Throws<ConfigException>(() => AutoTrustAnchor.Load(file, _time));
        Assert.StartsWith($"{file}:{lineNumber}:", e.Message);
        Assert.Contains(problem, e.Message);
        Assert.Contains("cannot read", Assert.Throws<ConfigException>(() => AutoTrustAnchor.Load(Path.Combine(_dir, "absent"), _time)).Message);
    }

    [Fact]
    public async Task An_unbound_auto_trust_anchor_file_is_taken_over_with_its_states()
    {
        var ksk1 = _root.Key();
        var ksk2 = _root.Key();
        _root.Published.AddRange([ksk1, ksk2]);
        _root.Signers.Add(ksk1);
        // The shape of Unbound's auto-trust-anchor-file (/var/lib/unbound/root.key on Debian): KSK2 pending for 20 days.
        long day0 = Start.ToUnixTimeSeconds(), pendingSince = (Start - TimeSpan.FromDays(20)).ToUnixTimeSeconds();
        var file = Path.Combine(_dir, "unbound-root.key");
        File.WriteAllText(file, $$"""
            ; autotrust trust anchor file
            ;;id: . 1
            ;;last_queried: {{day0}} ;;Mon Nov 30 00:00:00 2026
            ;;last_success: {{day0}} ;;Mon Nov 30 00:00:00 2026
            ;;next_probe_time: {{day0 + 43200}} ;;Mon Nov 30 12:00:00 2026
            ;;query_failed: 0
            ;;query_interval: 43200
            ;;retry_time: 8640
            {{DnssecSigner.DnskeyRecord(ksk1, DnskeyTtl)}} ;{id = {{ksk1.KeyTag}} (ksk), size = 256b} ;;state=2 [  VALID  ] ;;count=0 ;;lastchange=1700000000 ;;Tue Nov 14 22:13:20 2023
            {{DnssecSigner.DnskeyRecord(ksk2, DnskeyTtl)}} ;{id = {{ksk2.KeyTag}} (ksk), size = 256b} ;;state=1 [ ADDPEND ] ;;count=20 ;;lastchange={{pendingSince}} ;;Tue Nov 10 00:00:00 2026

            """);
        var anchor = AutoTrustAnchor.Load(file, _time);
        Assert.Equal(AnchorKeyState.Valid, StateOf(anchor, ksk1));
        Assert.Equal(AnchorKeyState.AddPend, StateOf(anchor, ksk2));
        Assert.Contains("state=ADDPEND since=2026-11-10T00:00:00Z", File.ReadAllText(file));   // rewritten in our format
        await Days(anchor, 9);
        Assert.Equal(AnchorKeyState.AddPend, StateOf(anchor, ksk2));
        await Days(anchor, 1);
        Assert.Equal(AnchorKeyState.Valid, StateOf(anchor, ksk2));
    }

    [Fact]
    public async Task A_full_ksk_rollover_leaves_only_the_new_key()
    {
        var old = _root.Key();
        _root.Published.Add(old);
        _root.Signers.Add(old);
        var others = TrustAnchors.Load([], ["lab.example"], defaultFile: Path.Combine(_dir, "absent"));
        var anchor = AutoTrustAnchor.Load(AnchorFile(old), _time, others);
        await anchor.RefreshAsync(Fetch, CancellationToken.None);

        // The new KSK is published (signing too, as the root did in 2017 and 2024 only later: either works).
        var next = _root.Key();
        _root.Published.Add(next);
        await anchor.RefreshAsync(Fetch, CancellationToken.None);
        await Days(anchor, 30);
        Assert.Equal(AnchorKeyState.Valid, StateOf(anchor, next));

        // The switch: the new key signs, the old one is revoked and signs itself.
        _root.Signers.Clear();
        _root.Signers.Add(next);
        var revoked = _root.Revoked(old);
        _root.Published[_root.Published.IndexOf(old)] = revoked;
        _root.Signers.Add(revoked);
        await Days(anchor, 1);
        Assert.Equal(AnchorKeyState.Revoked, StateOf(anchor, old));
        Assert.Equal(DnssecSecurity.Bogus, Validates(anchor, old));

        // The revoked key is withdrawn; after the remove hold-down it is REMOVED.
        _root.Published.Remove(revoked);
        _root.Signers.Remove(revoked);
        await Days(anchor, 30);
        Assert.Equal(AnchorKeyState.Removed, StateOf(anchor, old));
        var keys = anchor.Anchors.For(DnsName.Root).Keys;
        Assert.Equal([next.KeyTag], keys.Select(k => DnsKey.KeyTag(k.Data)));
        Assert.Equal(DnssecSecurity.Secure, Validates(anchor, next));
        Assert.Equal(DnssecSecurity.Bogus, Validates(anchor, old));
        // The other anchors and negative anchors given are kept.
        Assert.True(anchor.Anchors.IsNegative(DnsName.Parse("host.lab.example.")));
        // The file as an operator reads it.
        var text = File.ReadAllText(anchor.File);
        Assert.Contains($"state=VALID since=2026-12-30T00:00:00Z tag={next.KeyTag}", text);
        Assert.Contains($"state=REMOVED since=2027-01-30T00:00:00Z tag={revoked.KeyTag}", text);
    }

    [Fact]
    public async Task A_trusted_key_is_never_dropped_except_by_its_own_revocation()
    {
        var ksk1 = _root.Key();
        var ksk3 = _root.Key();
        _root.Published.AddRange([ksk1, ksk3]);
        _root.Signers.Add(ksk1);
        var anchor = AutoTrustAnchor.Load(AnchorFile(ksk1, ksk3), _time);
        await anchor.RefreshAsync(Fetch, CancellationToken.None);

        // KSK3 unpublished: MISSING, still an anchor; published again: VALID.
        _root.Published.Remove(ksk3);
        await Days(anchor, 1);
        Assert.Equal(AnchorKeyState.Missing, StateOf(anchor, ksk3));
        Assert.Contains(anchor.Anchors.For(DnsName.Root).Keys, k => k.Data.AsSpan().SequenceEqual(ksk3.DnskeyRdata));
        _root.Published.Add(ksk3);
        await Days(anchor, 1);
        Assert.Equal(AnchorKeyState.Valid, StateOf(anchor, ksk3));

        // Both vanish, replaced by a key neither signed: for 60 days nothing changes, the new key is ignored.
        var ksk2 = _root.Key();
        _root.Published.RemoveAll(k => k != _root.Zsk);
        _root.Published.Add(ksk2);
        _root.Signers.Clear();
        _root.Signers.Add(ksk2);
        for (int d = 0; d < 60; d++)
        {
            _time.Advance(TimeSpan.FromDays(1));
            await anchor.RefreshAsync(Fetch, CancellationToken.None);
        }
        Assert.Equal(AnchorKeyState.Valid, StateOf(anchor, ksk1));
        Assert.Equal(AnchorKeyState.Valid, StateOf(anchor, ksk3));
        Assert.Null(StateOf(anchor, ksk2));
        Assert.Equal(2, anchor.Anchors.For(DnsName.Root).Keys.Count);

        // Each revoked by itself: they go, and with them the trust point (RFC 5011 §5): the root has no anchor.
        var revoked1 = _root.Revoked(ksk1);
        _root.Published.Add(revoked1);
        _root.Signers.Add(revoked1);
        _time.Advance(TimeSpan.FromDays(1));
        await anchor.RefreshAsync(Fetch, CancellationToken.None);
        Assert.Equal(AnchorKeyState.Revoked, StateOf(anchor, ksk1));
        Assert.Single(anchor.Anchors.For(DnsName.Root).Keys);
        var revoked3 = _root.Revoked(ksk3);
        _root.Published.Add(revoked3);
        _root.Signers.Add(revoked3);
        _time.Advance(TimeSpan.FromDays(1));
        await anchor.RefreshAsync(Fetch, CancellationToken.None);
        Assert.Equal(AnchorKeyState.Revoked, StateOf(anchor, ksk3));
        Assert.Null(anchor.Anchors.ClosestAnchor(DnsName.Root));
        Assert.Contains("trust point is deleted", anchor.LastProblem);
        Assert.Null(AutoTrustAnchor.Load(anchor.File, _time).Anchors.ClosestAnchor(DnsName.Root));
    }

    private const string RootZone = """
        . 86400 IN SOA a.root-servers.test. hostmaster.root-servers.test. 1 1800 900 604800 86400
        . 518400 IN NS a.root-servers.test.
        a.root-servers.test. 518400 IN A 192.0.2.1
        """;

    /// <summary>The DNSKEY RRset and its RRSIGs as a running server gives them: a UDP query with DO=1.</summary>
    private static Func<DnsName, CancellationToken, Task<(IReadOnlyList<ResourceRecord> Keys, IReadOnlyList<ResourceRecord> Sigs)?>> Over(TestServer server) =>
        (zone, token) =>
        {
            var q = DnsTestClient.Query(zone.ToString(), RecordType.DNSKEY, edns: true);
            q.Edns!.DnssecOk = true;
            var response = DnsMessage.Parse(server.Client().UdpRaw(q.ToWire()));
            if (response.Rcode != Rcode.NoError) return Task.FromResult<(IReadOnlyList<ResourceRecord>, IReadOnlyList<ResourceRecord>)?>(null);
            IReadOnlyList<ResourceRecord> keys = response.Answers.Where(r => r.Type == RecordType.DNSKEY).ToList();
            IReadOnlyList<ResourceRecord> sigs = response.Answers.Where(r => r.Type == RecordType.RRSIG).ToList();
            return Task.FromResult<(IReadOnlyList<ResourceRecord>, IReadOnlyList<ResourceRecord>)?>((keys, sigs));
        };

    [Fact]
    public async Task A_ds_seed_is_confirmed_over_udp_against_a_running_server_signing_the_root()
    {
        using var server = new TestServer(c => c.Zones[0].DnssecSigning = true, (".", RootZone));
        var kskFile = Directory.GetFiles(Path.Combine(server.Directory, "keys"), "*.key")
            .Single(f => DnsKey.IsSecureEntryPoint(DnssecKeyFile.ReadPublic(f).Rdata));
        var ksk = DnssecKeyFile.ReadPublic(kskFile).Rdata;
        var file = Path.Combine(_dir, "root.key");
        File.WriteAllText(file, DnssecSigner.DsText(DnsName.Root, ksk) + "\n");
        var anchor = AutoTrustAnchor.Load(file, TimeProvider.System);

        var next = await anchor.RefreshAsync(Over(server), CancellationToken.None);
        Assert.Null(anchor.LastProblem);
        var key = Assert.Single(anchor.Keys);
        Assert.Equal(AnchorKeyState.Valid, key.State);
        Assert.Equal(ksk, key.Rdata);
        Assert.Equal([ksk], anchor.Anchors.For(DnsName.Root).Keys.Select(k => k.Data));
        Assert.InRange(next, TimeSpan.FromHours(1), TimeSpan.FromDays(15));
        Assert.Contains("state=VALID", File.ReadAllText(file));

        // An anchor of another key: the server's RRset is not signed by it, nothing is learnt.
        using var stranger = DnssecPrivateKey.Generate(DnsName.Root, DnssecAlgorithm.EcdsaP256Sha256, ksk: true);
        var other = AutoTrustAnchor.Load(AnchorFile(stranger), TimeProvider.System);
        Assert.Equal(TimeSpan.FromHours(1), await other.RefreshAsync(Over(server), CancellationToken.None));
        Assert.Contains("not validly signed by a trusted key", other.LastProblem);
        Assert.Equal([stranger.KeyTag], other.Keys.Select(k => k.KeyTag));
    }
}
