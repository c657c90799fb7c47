using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Dnssec;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;

namespace Portcullis.Protocol.Tests.Dnssec;

/// <summary>
/// RRset and DNSKEY validation as a resolver does it (RFC 4035 §5.2–5.3): good data is secure,
/// each kind of breakage gets its Extended DNS Error reason, DS with nothing implemented makes
/// the zone insecure, and KeyTrap-shaped key sets stop at the validation budget.
/// </summary>
public sealed class RrsetValidatorTests : IDisposable
{
    private static readonly DnsName Zone = DnsName.Parse("example.test.");
    private static readonly DateTimeOffset Now = new(2030, 6, 1, 0, 0, 0, TimeSpan.Zero);
    private readonly DnssecPrivateKey _ksk = DnssecPrivateKey.Generate(Zone, DnssecAlgorithm.EcdsaP256Sha256, ksk: true);
    private readonly DnssecPrivateKey _zsk = DnssecPrivateKey.Generate(Zone, DnssecAlgorithm.EcdsaP256Sha256, ksk: false);
    private readonly List<ResourceRecord> _signed;

    public RrsetValidatorTests() => _signed = ZoneSigner.Sign(Zone, ExampleZoneFile.Records(Zone), [_ksk, _zsk], Now);

    public void Dispose()
    {
        _ksk.Dispose();
        _zsk.Dispose();
    }

    private List<ResourceRecord> Set(string owner, RecordType type) =>
        _signed.Where(r => r.Owner == DnsName.Parse(owner) && r.Type == type).ToList();

    private List<ResourceRecord> Sigs(string owner, RecordType type) =>
        _signed.Where(r => r.Owner == DnsName.Parse(owner) && r.Type == RecordType.RRSIG && Rrsig.TryRead(r.Data, out var s) && s.TypeCovered == type).ToList();

    private List<ResourceRecord> Keys => Set("example.test.", RecordType.DNSKEY);

    private ResourceRecord Ds(DnssecPrivateKey key, DsDigestType digest = DsDigestType.Sha256) =>
        new(Zone, RecordType.DS, RecordClass.IN, 3600, DsDigest.CreateDsRdata(Zone, key.DnskeyRdata, digest)!);

    private ValidationResult Check(List<ResourceRecord> rrset, List<ResourceRecord> sigs, List<ResourceRecord>? keys = null, DateTimeOffset? at = null)
    {
        var budget = new ValidationBudget();
        return RrsetValidator.Validate(rrset, sigs, Zone, keys ?? Keys, at ?? Now, ref budget);
    }

    [Fact]
    public void Signed_data_is_secure_with_its_label_count_and_a_ttl_within_the_signature()
    {
        var r = Check(Set("www.example.test.", RecordType.A), Sigs("www.example.test.", RecordType.A));
        Assert.Equal(DnssecSecurity.Secure, r.Security);
        Assert.Equal(3, r.Labels);
        Assert.Equal(3600u, r.MaxTtl);
        // Close to expiry, the TTL is cut to what is left of the signature.
        var late = Check(Set("www.example.test.", RecordType.A), Sigs("www.example.test.", RecordType.A), at: Now.AddDays(14).AddMinutes(-10));
        Assert.Equal(DnssecSecurity.Secure, late.Security);
        Assert.InRange(late.MaxTtl, 1u, 600u);
    }

    [Fact]
    public void Each_breakage_is_bogus_with_its_reason()
    {
        var a = Set("www.example.test.", RecordType.A);
        var sigs = Sigs("www.example.test.", RecordType.A);
        var tampered = a.Select(r => new ResourceRecord(r.Owner, r.Type, r.Class, r.Ttl, [192, 0, 2, 66])).ToList();
        Assert.Equal(ExtendedDnsErrorCode.DnssecBogus, Check(tampered, sigs).Reason);
        Assert.Equal(ExtendedDnsErrorCode.SignatureExpired, Check(a, sigs, at: Now.AddDays(30)).Reason);
        Assert.Equal(ExtendedDnsErrorCode.SignatureNotYetValid, Check(a, sigs, at: Now.AddDays(-2)).Reason);
        Assert.Equal(ExtendedDnsErrorCode.RrsigsMissing, Check(a, []).Reason);
        Assert.Equal(ExtendedDnsErrorCode.DnskeyMissing, Check(a, sigs, []).Reason);
        Assert.All(new[] { Check(tampered, sigs), Check(a, []) }, r => Assert.Equal(DnssecSecurity.Bogus, r.Security));
    }

    [Fact]
    public void The_dnskey_rrset_is_secure_through_a_matching_ds_and_bogus_through_a_wrong_one()
    {
        var keys = Keys;
        var sigs = Sigs("example.test.", RecordType.DNSKEY);
        var budget = new ValidationBudget();
        Assert.Equal(DnssecSecurity.Secure, RrsetValidator.ValidateKeys(keys, sigs, Zone, [Ds(_ksk)], [], Now, ref budget).Security);
        budget = new ValidationBudget();
        // A DS for the ZSK: it designates a key, but that key does not sign the DNSKEY RRset here.
        Assert.Equal(DnssecSecurity.Bogus, RrsetValidator.ValidateKeys(keys, sigs, Zone, [Ds(_zsk)], [], Now, ref budget).Security);
        using var other = DnssecPrivateKey.Generate(Zone, DnssecAlgorithm.EcdsaP256Sha256, ksk: true);
        budget = new ValidationBudget();
        var wrong = RrsetValidator.ValidateKeys(keys, sigs, Zone, [Ds(other)], [], Now, ref budget);
        Assert.Equal((DnssecSecurity.Bogus, ExtendedDnsErrorCode.DnskeyMissing), (wrong.Security, wrong.Reason));
        // A DNSKEY trust anchor (as root.key holds) works like a DS.
        budget = new ValidationBudget();
        var anchor = keys.First(k => DnsKey.IsSecureEntryPoint(k.Data));
        Assert.Equal(DnssecSecurity.Secure, RrsetValidator.ValidateKeys(keys, sigs, Zone, [], [anchor], Now, ref budget).Security);
    }

    [Fact]
    public void A_ds_rrset_with_nothing_implemented_makes_the_zone_insecure()
    {
        var keys = Keys;
        var sigs = Sigs("example.test.", RecordType.DNSKEY);
        var ds = Ds(_ksk);
        var gost = new ResourceRecord(Zone, RecordType.DS, RecordClass.IN, 3600, [ds.Data[0], ds.Data[1], ds.Data[2], 3, .. new byte[32]]);
        var privateAlg = new ResourceRecord(Zone, RecordType.DS, RecordClass.IN, 3600, [ds.Data[0], ds.Data[1], 253, .. ds.Data[3..]]);
        var budget = new ValidationBudget();
        var r = RrsetValidator.ValidateKeys(keys, sigs, Zone, [gost, privateAlg], [], Now, ref budget);
        Assert.Equal((DnssecSecurity.Insecure, ExtendedDnsErrorCode.UnsupportedDsDigestType), (r.Security, r.Reason));
        // Next to a usable DS, the unusable ones change nothing.
        budget = new ValidationBudget();
        Assert.Equal(DnssecSecurity.Secure, RrsetValidator.ValidateKeys(keys, sigs, Zone, [gost, ds], [], Now, ref budget).Security);
    }

    /// <summary>Key material changed in its last two octets so that the key tag becomes <paramref name="tag"/> (and the key is no longer a valid point).</summary>
    private static byte[] WithTag(byte[] rdata, ushort tag)
    {
        var copy = (byte[])rdata.Clone();
        for (int x = 0; x < 65536; x++)
        {
            copy[^2] = (byte)(x >> 8);
            copy[^1] = (byte)x;
            if (DnsKey.KeyTag(copy) == tag) return copy;
        }
        throw new InvalidOperationException("no collision");
    }

    [Fact]
    public void KeyTrap_colliding_keys_and_signatures_stop_at_the_budget_in_bounded_work()
    {
        // 64 DNSKEYs sharing the ZSK's tag and algorithm, and 64 RRSIGs naming that tag.
        var real = Keys;
        ushort tag = _zsk.KeyTag;
        var keys = new List<ResourceRecord>(real);
        for (int i = 0; i < 64; i++)
        {
            var material = (byte[])_zsk.DnskeyRdata.Clone();
            material[10] ^= (byte)(i + 1);
            keys.Insert(0, new ResourceRecord(Zone, RecordType.DNSKEY, RecordClass.IN, 3600, WithTag(material, tag)));
        }
        var a = Set("www.example.test.", RecordType.A);
        var good = Sigs("www.example.test.", RecordType.A)[0];
        var sigs = new List<ResourceRecord>();
        for (int i = 0; i < 64; i++)
        {
            var data = (byte[])good.Data.Clone();
            data[^1] ^= (byte)(i + 1);   // a signature that verifies with no key
            sigs.Add(new ResourceRecord(good.Owner, RecordType.RRSIG, good.Class, good.Ttl, data));
        }
        var budget = new ValidationBudget();
        var r = RrsetValidator.Validate(a, sigs, Zone, keys, Now, ref budget);
        Assert.Equal((DnssecSecurity.Bogus, ExtendedDnsErrorCode.DnssecBogus, true), (r.Security, r.Reason, r.LimitExceeded));
        Assert.InRange(budget.Verifications, 1, ValidationBudget.MaxVerifications);
        // Without the limits this would be 64 x 65 = 4,160 verifications.
        Assert.True(budget.Verifications <= ValidationBudget.MaxFailures, $"{budget.Verifications} verifications");
    }
}
