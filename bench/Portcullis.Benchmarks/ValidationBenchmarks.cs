using BenchmarkDotNet.Attributes;
using Portcullis.Protocol.Dnssec;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;

namespace Portcullis.Benchmarks;

/// <summary>
/// One RRSIG verified as the validating resolver verifies it on a cache miss
/// (<see cref="RrsetValidator.Validate"/>: key tag match, canonical RRset, the public-key operation),
/// for ECDSA P-256 (the common algorithm), RSA-2048 SHA-256 and Ed25519.
/// </summary>
[MemoryDiagnoser]
public class ValidationBenchmarks
{
    private readonly DnsName _zone = DnsName.Parse("example.test.");
    private (List<ResourceRecord> Rrset, List<ResourceRecord> Sigs, List<ResourceRecord> Keys) _ecdsa, _rsa, _ed25519;
    private readonly DateTimeOffset _now = DateTimeOffset.UtcNow;

    [GlobalSetup]
    public void Setup()
    {
        _ecdsa = Make(DnssecAlgorithm.EcdsaP256Sha256);
        _rsa = Make(DnssecAlgorithm.RsaSha256);
        _ed25519 = Make(DnssecAlgorithm.Ed25519);
    }

    private (List<ResourceRecord>, List<ResourceRecord>, List<ResourceRecord>) Make(DnssecAlgorithm algorithm)
    {
        var key = DnssecPrivateKey.Generate(_zone, algorithm, ksk: false);
        var rrset = new List<ResourceRecord> { new(DnsName.Parse("www.example.test."), RecordType.A, RecordClass.IN, 300, [192, 0, 2, 1]) };
        var sig = DnssecSigner.SignRrset(rrset, key, _now.AddHours(-1), _now.AddDays(7));
        return (rrset, [sig], [new ResourceRecord(_zone, RecordType.DNSKEY, RecordClass.IN, 300, key.DnskeyRdata)]);
    }

    private DnssecSecurity Verify((List<ResourceRecord> Rrset, List<ResourceRecord> Sigs, List<ResourceRecord> Keys) c)
    {
        var budget = new ValidationBudget();
        return RrsetValidator.Validate(c.Rrset, c.Sigs, _zone, c.Keys, _now, ref budget).Security;
    }

    [Benchmark] public DnssecSecurity EcdsaP256() => Verify(_ecdsa);
    [Benchmark] public DnssecSecurity RsaSha256() => Verify(_rsa);
    [Benchmark] public DnssecSecurity Ed25519() => Verify(_ed25519);
}
