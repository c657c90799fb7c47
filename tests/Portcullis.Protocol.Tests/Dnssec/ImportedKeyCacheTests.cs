using Portcullis.Protocol.Dnssec;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;

namespace Portcullis.Protocol.Tests.Dnssec;

/// <summary>
/// The per-thread cache of imported public keys (DnssecCrypto): each signature is verified with its
/// own key however often keys alternate and however many pass through (past the cache's bound it
/// starts over, and still answers right), and a broken signature still fails.
/// </summary>
public sealed class ImportedKeyCacheTests
{
    [Theory]
    [InlineData(DnssecAlgorithm.EcdsaP256Sha256)]
    [InlineData(DnssecAlgorithm.RsaSha256)]
    [InlineData(DnssecAlgorithm.Ed25519)]
    public void Cached_keys_verify_only_their_own_signatures(DnssecAlgorithm algorithm)
    {
        var zone = DnsName.Parse("example.test.");
        var now = DateTimeOffset.UtcNow;
        var rrset = new List<ResourceRecord> { new(DnsName.Parse("www.example.test."), RecordType.A, RecordClass.IN, 300, [192, 0, 2, 1]) };
        var a = DnssecPrivateKey.Generate(zone, algorithm, ksk: false);
        var b = DnssecPrivateKey.Generate(zone, algorithm, ksk: false);
        var sigA = DnssecSigner.SignRrset(rrset, a, now.AddHours(-1), now.AddDays(1));
        var sigB = DnssecSigner.SignRrset(rrset, b, now.AddHours(-1), now.AddDays(1));
        var keyA = new ResourceRecord(zone, RecordType.DNSKEY, RecordClass.IN, 300, a.DnskeyRdata);
        var keyB = new ResourceRecord(zone, RecordType.DNSKEY, RecordClass.IN, 300, b.DnskeyRdata);
        // Alternating: each verification must find its own key (a wrong cached key would fail it).
        for (int i = 0; i < 20; i++)
        {
            Assert.Equal(SignatureStatus.Valid, DnssecVerifier.Verify(sigA, rrset, keyA, now).Status);
            Assert.Equal(SignatureStatus.Valid, DnssecVerifier.Verify(sigB, rrset, keyB, now).Status);
        }
        // And a signature changed by one bit fails with its (cached) key.
        var broken = sigA.Data.ToArray();
        broken[^1] ^= 1;
        Assert.Equal(SignatureStatus.BadSignature,
            DnssecVerifier.Verify(broken, sigA.Owner, RecordType.A, rrset, zone, a.DnskeyRdata, now).Status);
    }

    [Fact]
    public void More_keys_than_the_cache_holds_still_verify_right()
    {
        var zone = DnsName.Parse("example.test.");
        var now = DateTimeOffset.UtcNow;
        var rrset = new List<ResourceRecord> { new(DnsName.Parse("www.example.test."), RecordType.A, RecordClass.IN, 300, [192, 0, 2, 1]) };
        var signed = new List<(ResourceRecord Sig, ResourceRecord Key)>();
        for (int i = 0; i < 300; i++)
        {
            var k = DnssecPrivateKey.Generate(zone, DnssecAlgorithm.Ed25519, ksk: false);
            signed.Add((DnssecSigner.SignRrset(rrset, k, now.AddHours(-1), now.AddDays(1)), new ResourceRecord(zone, RecordType.DNSKEY, RecordClass.IN, 300, k.DnskeyRdata)));
        }
        for (int round = 0; round < 2; round++)
            for (int i = 0; i < signed.Count; i++)
            {
                Assert.Equal(SignatureStatus.Valid, DnssecVerifier.Verify(signed[i].Sig, rrset, signed[i].Key, now).Status);
            }
    }
}
