using System.Runtime.CompilerServices;
using Portcullis.Protocol.Dnssec;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.ZoneText;

namespace Portcullis.Protocol.Tests.Dnssec;

/// <summary>
/// Re-signing with the previous signed zone at hand (<see cref="ZoneSigningOptions.Previous"/>):
/// only changed RRsets, the chain links around them and signatures due for refresh are signed;
/// key roles from a <see cref="SigningKeySet"/> (published, key-signing, zone-signing, CDS).
/// </summary>
public sealed class IncrementalSigningTests : IDisposable
{
    private static readonly DnsName Zone = DnsName.Parse("example.test.");
    private static readonly DateTimeOffset Now = new(2030, 6, 1, 0, 0, 0, TimeSpan.Zero);
    private readonly DnssecPrivateKey _ksk = DnssecPrivateKey.Generate(Zone, DnssecAlgorithm.EcdsaP256Sha256, ksk: true);
    private readonly DnssecPrivateKey _zsk = DnssecPrivateKey.Generate(Zone, DnssecAlgorithm.EcdsaP256Sha256, ksk: false);

    public void Dispose()
    {
        _ksk.Dispose();
        _zsk.Dispose();
    }

    private static ResourceRecord R(string text)
    {
        using var reader = new ZoneReader(new StringReader(text), Zone);
        return reader.ReadRecords().Single();
    }

    private static List<ResourceRecord> Unsigned() => ExampleZoneFile.Records(Zone);

    private SigningKeySet Keys => new([_ksk, _zsk], [_ksk], [_zsk]);

    private static (List<ResourceRecord> Signed, SigningCounters Counters) Sign(IEnumerable<ResourceRecord> records, SigningKeySet keys,
        DateTimeOffset now, IReadOnlyList<ResourceRecord>? previous, bool nsec3 = false)
    {
        var counters = new SigningCounters();
        var signed = ZoneSigner.Sign(Zone, records, keys, now, new ZoneSigningOptions
        {
            Previous = previous, Refresh = TimeSpan.FromDays(5), Counters = counters, Nsec3 = nsec3,
        });
        return (signed, counters);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Signing_again_keeps_every_signature_and_a_change_signs_only_its_RRset_and_chain_links(bool nsec3)
    {
        var (first, c1) = Sign(Unsigned(), Keys, Now, null, nsec3);
        Assert.Equal(0, c1.Kept);
        int total = c1.Made;

        // Nothing changed, an hour later: every signature kept, byte for byte.
        var (same, c2) = Sign(Unsigned(), Keys, Now.AddHours(1), first, nsec3);
        Assert.Equal(0, c2.Made);
        Assert.Equal(total, c2.Kept);
        Assert.Equal(first.Select(ZoneWriter.ToLine), same.Select(ZoneWriter.ToLine));

        // New RDATA for one existing RRset: its RRSIG only (the chain does not move).
        var changed = Unsigned().Where(r => !(r.Owner.Equals(DnsName.Parse("www.example.test.")) && r.Type == RecordType.A)).ToList();
        changed.Add(R("www 3600 IN A 192.0.2.99"));
        var (afterChange, c3) = Sign(changed, Keys, Now.AddHours(2), same, nsec3);
        Assert.Equal(1, c3.Made);
        SignedZoneAssert.EveryRrsigVerifies(afterChange, Now.AddHours(2));

        // A new name: its RRset, its own chain record, and the chain record before it (which now points to it).
        changed.Add(R("new-name 3600 IN TXT \"added\""));
        var (afterAdd, c4) = Sign(changed, Keys, Now.AddHours(3), afterChange, nsec3);
        Assert.Equal(3, c4.Made);
        SignedZoneAssert.EveryRrsigVerifies(afterAdd, Now.AddHours(3));
        Assert.Equal(total + 2, c4.Made + c4.Kept);
    }

    [Fact]
    public void Signatures_within_the_refresh_period_are_made_anew_and_the_earliest_expiration_is_reported()
    {
        var (first, c1) = Sign(Unsigned(), Keys, Now, null);
        Assert.Equal(Now + TimeSpan.FromDays(14), c1.EarliestExpiration);
        // 10 days on, every signature expires within the 5-day refresh: all made anew, expiring 14 days from then.
        var later = Now + TimeSpan.FromDays(10);
        var (second, c2) = Sign(Unsigned(), Keys, later, first);
        Assert.Equal(0, c2.Kept);
        Assert.Equal(c1.Made, c2.Made);
        Assert.Equal(later + TimeSpan.FromDays(14), c2.EarliestExpiration);
        SignedZoneAssert.EveryRrsigVerifies(second, later);
    }

    [Fact]
    public void A_jittered_validity_spreads_expirations_below_the_validity()
    {
        var signed = ZoneSigner.Sign(Zone, Unsigned(), Keys, Now, new ZoneSigningOptions { Jitter = TimeSpan.FromHours(12) });
        var expirations = signed.Where(r => r.Type == RecordType.RRSIG)
            .Select(r => { Rrsig.TryRead(r.Data, out var s); return Rrsig.ToInstant(s.Expiration, Now); }).ToList();
        Assert.All(expirations, e => Assert.InRange(e, Now + TimeSpan.FromDays(14) - TimeSpan.FromHours(12), Now + TimeSpan.FromDays(14)));
        Assert.True(expirations.Distinct().Count() > 5, "expirations are spread");
    }

    [Fact]
    public void A_changed_signing_key_replaces_the_signatures_of_the_old_one()
    {
        var (first, _) = Sign(Unsigned(), Keys, Now, null);
        using var zsk2 = DnssecPrivateKey.Generate(Zone, DnssecAlgorithm.EcdsaP256Sha256, ksk: false);
        // Pre-publication's second step: both ZSKs published, only the new one signs.
        var (second, c2) = Sign(Unsigned(), new SigningKeySet([_ksk, _zsk, zsk2], [_ksk], [zsk2]), Now.AddHours(1), first);
        Assert.DoesNotContain(second, r => r.Type == RecordType.RRSIG && Tag(r) == _zsk.KeyTag);
        Assert.Equal(3, second.Count(r => r.Type == RecordType.DNSKEY));
        // The DNSKEY RRset changed, so the KSK signed it anew; everything else is zsk2's new work.
        Assert.True(c2.Made > 10);
        SignedZoneAssert.EveryRrsigVerifies(second, Now.AddHours(1));
    }

    [Fact]
    public void CDS_and_CDNSKEY_are_published_for_the_given_keys_and_signed_by_the_key_signers()
    {
        var keys = new SigningKeySet([_ksk, _zsk], [_ksk], [_zsk]) { Cds = [_ksk] };
        var signed = ZoneSigner.Sign(Zone, Unsigned(), keys, Now);
        var cds = Assert.Single(signed, r => r.Type == RecordType.CDS);
        Assert.Equal(DsDigest.CreateDsRdata(Zone, _ksk.DnskeyRdata, DsDigestType.Sha256), cds.Data);
        var cdnskey = Assert.Single(signed, r => r.Type == RecordType.CDNSKEY);
        Assert.Equal(_ksk.DnskeyRdata, cdnskey.Data);
        foreach (var type in (RecordType[])[RecordType.CDS, RecordType.CDNSKEY, RecordType.DNSKEY])
        {
            var sig = Assert.Single(signed, r => r.Type == RecordType.RRSIG && Covered(r) == type);
            Assert.Equal(_ksk.KeyTag, Tag(sig));
        }
        var apexNsec = Assert.Single(signed, r => r.Type == RecordType.NSEC && r.Owner.Equals(Zone));
        Assert.Contains("CDS CDNSKEY", ZoneWriter.ToLine(apexNsec), StringComparison.Ordinal);
        SignedZoneAssert.EveryRrsigVerifies(signed, Now);
    }

    [Fact]
    public void A_signer_that_is_not_published_signs_beside_the_published_one()
    {
        // Algorithm rollover, RFC 6781 §4.1.4 step 1: new-algorithm signatures before its DNSKEY.
        using var edKsk = DnssecPrivateKey.Generate(Zone, DnssecAlgorithm.Ed25519, ksk: true);
        using var edZsk = DnssecPrivateKey.Generate(Zone, DnssecAlgorithm.Ed25519, ksk: false);
        var signed = ZoneSigner.Sign(Zone, Unsigned(), new SigningKeySet([_ksk, _zsk], [_ksk, edKsk], [_zsk, edZsk]), Now);
        Assert.Equal(2, signed.Count(r => r.Type == RecordType.DNSKEY));
        Assert.Contains(signed, r => r.Type == RecordType.RRSIG && Tag(r) == edZsk.KeyTag && Covered(r) == RecordType.SOA);
        Assert.Contains(signed, r => r.Type == RecordType.RRSIG && Tag(r) == edKsk.KeyTag && Covered(r) == RecordType.DNSKEY);
    }

    [Fact]
    public void A_ZONEMD_digest_is_kept_with_its_signature_when_nothing_changed_and_made_anew_after_a_change()
    {
        var options = (IReadOnlyList<ResourceRecord>? previous, SigningCounters c) => new ZoneSigningOptions
        {
            ZonemdHashAlgorithm = Zonemd.Sha384, Previous = previous, Refresh = TimeSpan.FromDays(5), Counters = c,
        };
        var first = ZoneSigner.Sign(Zone, Unsigned(), Keys, Now, options(null, new SigningCounters()));
        Assert.True(Zonemd.Verify(Zone, first, out string problem), problem);
        var c2 = new SigningCounters();
        var same = ZoneSigner.Sign(Zone, Unsigned(), Keys, Now.AddHours(1), options(first, c2));
        Assert.Equal(0, c2.Made);
        Assert.Equal(first.Select(ZoneWriter.ToLine), same.Select(ZoneWriter.ToLine));
        var changed = Unsigned();
        changed.Add(R("extra 300 IN TXT \"x\""));
        var c3 = new SigningCounters();
        var after = ZoneSigner.Sign(Zone, changed, Keys, Now.AddHours(2), options(same, c3));
        Assert.True(Zonemd.Verify(Zone, after, out problem), problem);
        SignedZoneAssert.EveryRrsigVerifies(after, Now.AddHours(2));
        Assert.Equal(4, c3.Made);   // the TXT, its NSEC, the NSEC before it, the ZONEMD
    }

    private static ushort Tag(ResourceRecord rrsig) => (ushort)(rrsig.Data[16] << 8 | rrsig.Data[17]);
    private static RecordType Covered(ResourceRecord rrsig) => (RecordType)(rrsig.Data[0] << 8 | rrsig.Data[1]);
}

/// <summary>Checks on a signed zone's records.</summary>
internal static class SignedZoneAssert
{
    /// <summary>Every RRSIG verifies with the apex DNSKEY of its tag and algorithm over the RRset it covers.</summary>
    public static void EveryRrsigVerifies(List<ResourceRecord> records, DateTimeOffset now)
    {
        var apex = records.First(r => r.Type == RecordType.SOA).Owner;
        var dnskeys = records.Where(r => r.Type == RecordType.DNSKEY && r.Owner.Equals(apex)).ToList();
        foreach (var sig in records.Where(r => r.Type == RecordType.RRSIG))
        {
            Assert.True(Rrsig.TryRead(sig.Data, out var rrsig));
            var covered = rrsig.TypeCovered;
            ushort tag = rrsig.KeyTag;
            var alg = rrsig.Algorithm;
            var rrset = records.Where(r => r.Type == covered && r.Owner.Equals(sig.Owner)).ToList();
            var key = dnskeys.Single(k => DnsKey.KeyTag(k.Data) == tag && k.Data[3] == (byte)alg);
            var result = DnssecVerifier.Verify(sig, rrset, key, now);
            Assert.True(result.IsValid, $"{sig.Owner} {covered}: {result.Status}");
        }
    }
}
