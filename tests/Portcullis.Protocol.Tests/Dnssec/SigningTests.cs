using System.Runtime.CompilerServices;
using Portcullis.Protocol.Dnssec;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.ZoneText;
using Portcullis.Testing;

namespace Portcullis.Protocol.Tests.Dnssec;

/// <summary>
/// Offline signing (<see cref="ZoneSigner"/>, <see cref="DnssecSigner"/>, <see cref="DnssecKeyFile"/>)
/// through `portcullis dnssec`: the example zone (wildcard, delegation with glue, empty
/// non-terminals, DNAME) signed with each algorithm and NSEC or NSEC3 passes BIND's dnssec-verify
/// and ldns-verify-zone and our own verifier; key files are exchanged with BIND's tools.
/// </summary>
public sealed class SigningTests : IDisposable
{
    private static readonly DnsName Zone = DnsName.Parse("example.test.");
    private readonly string _dir = Directory.CreateTempSubdirectory("portcullis-sign-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static (int Code, string Stdout, string Stderr) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = Portcullis.Cli.CommandLine.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    private static string ExampleZone() => ExampleZoneFile.Path();

    public static TheoryData<string, bool> Algorithms()
    {
        var data = new TheoryData<string, bool>();
        foreach (string a in (string[])["ecdsap256sha256", "ecdsap384sha384", "ed25519", "rsasha256"])
        {
            data.Add(a, false);
            data.Add(a, true);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Algorithms))]
    public void A_zone_signed_by_us_passes_dnssec_verify_ldns_verify_zone_and_our_verifier(string algorithm, bool nsec3)
    {
        Assert.Equal(0, Run("dnssec", "keygen", "example.test", "-a", algorithm, "--ksk", "-K", _dir).Code);
        Assert.Equal(0, Run("dnssec", "keygen", "example.test", "-a", algorithm, "-K", _dir).Code);
        string signedPath = Path.Combine(_dir, "example.test.signed");
        var args = new List<string> { "dnssec", "sign", ExampleZone(), "-o", "example.test", "-K", _dir, "-f", signedPath };
        if (nsec3) args.Add("--nsec3");
        var (code, stdout, stderr) = Run([.. args]);
        Assert.True(code == 0, stderr);
        // One DS line for the one KSK.
        Assert.Single(stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.StartsWith("example.test. IN DS ", StringComparison.Ordinal));

        ExternalProcess.Run("dnssec-verify", ["-o", "example.test", signedPath]).EnsureSuccess();
        var ldns = ExternalProcess.Run("ldns-verify-zone", [signedPath]).EnsureSuccess();
        Assert.Contains("Zone is verified and complete", ldns.Stdout + ldns.Stderr, StringComparison.Ordinal);

        var records = ReadZone(signedPath);
        AssertEveryRrsigVerifies(records, DateTimeOffset.UtcNow);
        Assert.Equal(nsec3, records.Exists(r => r.Type == RecordType.NSEC3PARAM));
        Assert.Equal(!nsec3, records.Exists(r => r.Type == RecordType.NSEC));
        // Glue and the delegation NS are not signed; the delegation has no DS, so no RRSIG at all there.
        Assert.DoesNotContain(records, r => r.Type == RecordType.RRSIG && r.Owner.Equals(DnsName.Parse("ns.sub.example.test.")));
        Assert.DoesNotContain(records, r => r.Type == RecordType.RRSIG && r.Owner.Equals(DnsName.Parse("sub.example.test."))
            && (RecordType)(r.Data[0] << 8 | r.Data[1]) == RecordType.NS);
    }

    [Fact]
    public void The_zone_signer_uses_the_given_time_a_combined_key_and_the_RFC_9077_negative_TTL()
    {
        var now = new DateTimeOffset(2030, 6, 1, 0, 0, 0, TimeSpan.Zero);
        using var key = DnssecPrivateKey.Generate(Zone, DnssecAlgorithm.Ed25519, ksk: true);
        var signed = ZoneSigner.Sign(Zone, ReadZone(ExampleZone()), [key], now, new ZoneSigningOptions { Validity = TimeSpan.FromDays(3) });
        AssertEveryRrsigVerifies(signed, now);
        foreach (var r in signed.Where(r => r.Type == RecordType.RRSIG))
        {
            Rrsig.TryRead(r.Data, out var s);
            Assert.Equal((uint)(now - TimeSpan.FromHours(1)).ToUnixTimeSeconds(), s.Inception);
            Assert.Equal((uint)(now + TimeSpan.FromDays(3)).ToUnixTimeSeconds(), s.Expiration);
            Assert.Equal(key.KeyTag, s.KeyTag);
        }
        // SOA TTL 1h, minimum 5m: NSEC TTL 300.
        Assert.All(signed.Where(r => r.Type == RecordType.NSEC), r => Assert.Equal(300u, r.Ttl));
        // The wildcard's RRSIG has one label fewer than its owner (RFC 4034 §3.1.3).
        var wildcardSig = signed.First(r => r.Type == RecordType.RRSIG && r.Owner.IsWildcard);
        Assert.Equal(2, wildcardSig.Data[3]);
        // Canonical order: signing the same records again gives the same owners and types in the same order.
        var again = ZoneSigner.Sign(Zone, ReadZone(ExampleZone()), [key], now, new ZoneSigningOptions { Validity = TimeSpan.FromDays(3) });
        Assert.Equal(signed.Select(r => (r.Owner.ToString(), r.Type)), again.Select(r => (r.Owner.ToString(), r.Type)));
    }

    [Fact]
    public void NSEC3_hashes_and_type_bitmaps_match_the_RFC_examples()
    {
        // RFC 5155 Appendix A: H(example) with salt aabbccdd and 12 iterations.
        var hash = ZoneSigner.Nsec3Hash(DnsName.Parse("example."), Convert.FromHexString("aabbccdd"), 12);
        var sb = new System.Text.StringBuilder();
        Portcullis.Protocol.Records.Text.BinaryText.AppendBase32Hex(sb, hash);
        Assert.Equal("0p9mhaveqvm6t7vbl5lop2u3t2rp3tom", sb.ToString().ToLowerInvariant());
        // RFC 4034 §4.3: A MX RRSIG NSEC TYPE1234.
        var bitmap = ZoneSigner.TypeBitmap([RecordType.A, RecordType.MX, RecordType.RRSIG, RecordType.NSEC, (RecordType)1234]);
        Assert.Equal("0006400100000003041B" + new string('0', 52) + "20", Convert.ToHexString(bitmap));
    }

    [Theory]
    [InlineData("ECDSAP256SHA256")]
    [InlineData("ECDSAP384SHA384")]
    [InlineData("ED25519")]
    [InlineData("RSASHA256")]
    public void Keys_made_by_dnssec_keygen_are_read_and_sign_a_zone_dnssec_verify_accepts(string algorithm)
    {
        string ksk = ExternalProcess.Run("dnssec-keygen", ["-K", _dir, "-a", algorithm, "-f", "KSK", "example.test"]).EnsureSuccess().Stdout.Trim();
        string zsk = ExternalProcess.Run("dnssec-keygen", ["-K", _dir, "-a", algorithm, "example.test"]).EnsureSuccess().Stdout.Trim();
        using (var key = DnssecKeyFile.Read(Path.Combine(_dir, ksk)))
        {
            Assert.True(key.IsKsk);
            Assert.Equal(ksk, DnssecKeyFile.BaseName(key.Zone, key.Algorithm, key.KeyTag));
        }
        using (var key = DnssecKeyFile.Read(Path.Combine(_dir, zsk + ".private"))) Assert.False(key.IsKsk);

        string signedPath = Path.Combine(_dir, "bindkeys.signed");
        var (code, stdout, stderr) = Run("dnssec", "sign", ExampleZone(), "-o", "example.test", "-K", _dir, "-f", signedPath);
        Assert.True(code == 0, stderr);
        ExternalProcess.Run("dnssec-verify", ["-o", "example.test", signedPath]).EnsureSuccess();
        // Our DS of BIND's KSK is BIND's.
        string bindDs = ExternalProcess.Run("dnssec-dsfromkey", ["-2", Path.Combine(_dir, ksk + ".key")]).EnsureSuccess().Stdout;
        Assert.Equal(Normalise(bindDs), Normalise(stdout));
    }

    [Theory]
    [InlineData("ecdsap256sha256")]
    [InlineData("ecdsap384sha384")]
    [InlineData("ed25519")]
    [InlineData("rsasha256")]
    public void Keys_we_write_are_read_by_dnssec_dsfromkey_and_give_our_DS(string algorithm)
    {
        var (code, stdout, _) = Run("dnssec", "keygen", "example.test", "-a", algorithm, "--ksk", "-K", _dir);
        Assert.Equal(0, code);
        string keyFile = Path.Combine(_dir, stdout.Trim() + ".key");
        string bindDs = ExternalProcess.Run("dnssec-dsfromkey", ["-2", keyFile]).EnsureSuccess().Stdout;
        var ours = Run("dnssec", "ds", keyFile);
        Assert.Equal(0, ours.Code);
        Assert.Equal(Normalise(bindDs), Normalise(ours.Stdout));
        // Read back: same key.
        using var key = DnssecKeyFile.Read(keyFile);
        Assert.Equal(DnssecKeyFile.ReadPublic(keyFile).Rdata, key.DnskeyRdata);
    }

    private static string Normalise(string text) =>
        string.Join(' ', text.Split((char[])[' ', '\t', '\n', '\r'], StringSplitOptions.RemoveEmptyEntries)).ToUpperInvariant();

    private static List<ResourceRecord> ReadZone(string path)
    {
        using var reader = ZoneReader.Open(path, Zone);
        return reader.ReadRecords().ToList();
    }

    /// <summary>Every RRSIG verifies with the apex DNSKEY of its tag over the RRset it covers.</summary>
    private static void AssertEveryRrsigVerifies(List<ResourceRecord> records, DateTimeOffset now)
    {
        var dnskeys = records.Where(r => r.Type == RecordType.DNSKEY && r.Owner.Equals(Zone)).ToList();
        int checkedCount = 0;
        foreach (var sig in records.Where(r => r.Type == RecordType.RRSIG))
        {
            Assert.True(Rrsig.TryRead(sig.Data, out var rrsig));
            var covered = rrsig.TypeCovered;
            ushort tag = rrsig.KeyTag;
            var rrset = records.Where(r => r.Type == covered && r.Owner.Equals(sig.Owner)).ToList();
            var key = dnskeys.Single(k => DnsKey.KeyTag(k.Data) == tag);
            var result = DnssecVerifier.Verify(sig, rrset, key, now);
            Assert.True(result.IsValid, $"{sig.Owner} {covered}: {result.Status}");
            checkedCount++;
        }
        Assert.True(checkedCount > 20, $"only {checkedCount} signatures");
    }
}
