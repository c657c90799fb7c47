using System.Runtime.CompilerServices;
using Portcullis.Protocol.Dnssec;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.ZoneText;
using Portcullis.Testing;

namespace Portcullis.Protocol.Tests.Dnssec;

/// <summary>
/// ZONEMD (RFC 8976): the digests of the Appendix A example zones, verification catching changed
/// data, and zones signed by <see cref="ZoneSigner"/> with a placeholder then completed by
/// <see cref="Zonemd.Finalize"/>, checked by ldns-verify-zone (digest and DNSSEC) and Knot's kzonecheck (DNSSEC).
/// </summary>
public sealed class ZonemdTests : IDisposable
{
    private static readonly DnsName Example = DnsName.Parse("example.");
    private static readonly DnsName Zone = DnsName.Parse("example.test.");
    private readonly string _dir = Directory.CreateTempSubdirectory("portcullis-zonemd-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    // RFC 8976 Appendix A.1: the simple example zone.
    private const string SimpleZone = """
        example.      86400  IN  SOA     ns1 admin 2018031900 (
                                         1800 900 604800 86400 )
                      86400  IN  NS      ns1
                      86400  IN  NS      ns2
                      86400  IN  ZONEMD  2018031900 1 1 (
                                         c68090d90a7aed71
                                         6bc459f9340e3d7c
                                         1370d4d24b7e2fc3
                                         a1ddc0b9a87153b9
                                         a9713b3c9ae5cc27
                                         777f98b8e730044c )
        ns1           3600   IN  A       203.0.113.63
        ns2           3600   IN  AAAA    2001:db8::63

        """;

    // RFC 8976 Appendix A.2: occluded data, duplicates, out-of-zone data, upper case, a wildcard,
    // RDATA names to lower, an RRset to sort, a non-apex ZONEMD that is digested like any record.
    private const string ComplexZone = """
        example.      86400  IN  SOA     ns1 admin 2018031900 (
                                         1800 900 604800 86400 )
                      86400  IN  NS      ns1
                      86400  IN  NS      ns2
                      86400  IN  ZONEMD  2018031900 1 1 (
                                         a3b69bad980a3504
                                         e1cffcb0fd6397f9
                                         3848071c93151f55
                                         2ae2f6b1711d4bd2
                                         d8b39808226d7b9d
                                         b71e34b72077f8fe )
        ns1           3600   IN  A       203.0.113.63
        NS2           3600   IN  AAAA    2001:db8::63
        occluded.sub  7200   IN  TXT     "I'm occluded but must be digested"
        sub           7200   IN  NS      ns1
        duplicate     300    IN  TXT     "I must be digested just once"
        duplicate     300    IN  TXT     "I must be digested just once"
        foo.test.     555    IN  TXT     "out-of-zone data must be excluded"
        UPPERCASE     3600   IN  TXT     "canonicalize uppercase owner names"
        *             777    IN  PTR     dont-forget-about-wildcards
        mail          3600   IN  MX      20 MAIL1
        mail          3600   IN  MX      10 Mail2.Example.
        sortme        3600   IN  AAAA    2001:db8::5:61
        sortme        3600   IN  AAAA    2001:db8::3:62
        sortme        3600   IN  AAAA    2001:db8::4:63
        sortme        3600   IN  AAAA    2001:db8::1:65
        sortme        3600   IN  AAAA    2001:db8::2:64
        non-apex      900    IN  ZONEMD  2018031900 1 1 (
                                         616c6c6f77656420
                                         6275742069676e6f
                                         7265642e20616c6c
                                         6f77656420627574
                                         2069676e6f726564
                                         2e20616c6c6f7765 )

        """;

    // RFC 8976 Appendix A.3: SHA-384 and SHA-512 digests beside an unknown algorithm and an unknown scheme.
    private const string MultipleDigestsZone = """
        example.      86400  IN  SOA     ns1 admin 2018031900 (
                                         1800 900 604800 86400 )
        example.      86400  IN  NS      ns1.example.
        example.      86400  IN  NS      ns2.example.
        example.      86400  IN  ZONEMD  2018031900 1 1 (
                                         62e6cf51b02e54b9
                                         b5f967d547ce4313
                                         6792901f9f88e637
                                         493daaf401c92c27
                                         9dd10f0edb1c56f8
                                         080211f8480ee306 )
        example.      86400  IN  ZONEMD  2018031900 1 2 (
                                         08cfa1115c7b948c
                                         4163a901270395ea
                                         226a930cd2cbcf2f
                                         a9a5e6eb85f37c8a
                                         4e114d884e66f176
                                         eab121cb02db7d65
                                         2e0cc4827e7a3204
                                         f166b47e5613fd27 )
        example.      86400  IN  ZONEMD  2018031900 1 240 (
                                         e2d523f654b9422a
                                         96c5a8f44607bbee )
        example.      86400  IN  ZONEMD  2018031900 241 1 (
                                         e1846540e33a9e41
                                         89792d18d5d131f6
                                         05fc283eaaaaaaaa
                                         aaaaaaaaaaaaaaaa
                                         aaaaaaaaaaaaaaaa
                                         aaaaaaaaaaaaaaaa)
        ns1.example.  3600   IN  A       203.0.113.63
        ns2.example.  86400  IN  TXT     "This example has multiple digests"
        NS2.EXAMPLE.  3600   IN  AAAA    2001:db8::63

        """;

    private static List<ResourceRecord> Parse(string text, DnsName origin)
    {
        using var reader = new ZoneReader(new StringReader(text), origin);
        return reader.ReadRecords().ToList();
    }

    private static string Digest(ResourceRecord zonemd) => Convert.ToHexStringLower(zonemd.Data.AsSpan(6));

    [Theory]
    [InlineData(SimpleZone, "c68090d90a7aed716bc459f9340e3d7c1370d4d24b7e2fc3a1ddc0b9a87153b9a9713b3c9ae5cc27777f98b8e730044c")]
    [InlineData(ComplexZone, "a3b69bad980a3504e1cffcb0fd6397f93848071c93151f552ae2f6b1711d4bd2d8b39808226d7b9db71e34b72077f8fe")]
    [InlineData(MultipleDigestsZone, "62e6cf51b02e54b9b5f967d547ce43136792901f9f88e637493daaf401c92c279dd10f0edb1c56f8080211f8480ee306")]
    public void Create_gives_the_SHA384_digests_published_in_RFC_8976_appendix_A(string zoneText, string digest)
    {
        var records = Parse(zoneText, Example);
        var zonemd = Zonemd.Create(Example, records);
        Assert.Equal(digest, Digest(zonemd));
        // Serial and TTL from the SOA, scheme SIMPLE, SHA-384: the record of the appendix, byte for byte.
        Assert.Equal("example. 86400 IN ZONEMD 2018031900 1 1 " + digest.ToUpperInvariant(), zonemd.ToString());
        Assert.True(Zonemd.Verify(Example, records, out string problem), problem);
    }

    [Fact]
    public void Create_gives_the_SHA512_digest_of_the_multiple_digests_example()
    {
        var zonemd = Zonemd.Create(Example, Parse(MultipleDigestsZone, Example), Zonemd.Sha512);
        Assert.Equal("08cfa1115c7b948c4163a901270395ea226a930cd2cbcf2fa9a5e6eb85f37c8a"
            + "4e114d884e66f176eab121cb02db7d652e0cc4827e7a3204f166b47e5613fd27", Digest(zonemd));
        Assert.Equal(2, zonemd.Data[5]);
    }

    [Fact]
    public void The_digest_ignores_record_order_case_and_the_apex_ZONEMD_itself()
    {
        var records = Parse(ComplexZone, Example);
        var shuffled = records.AsEnumerable().Reverse().Where(r => !(r.Type == RecordType.ZONEMD && r.Owner.Equals(Example))).ToList();
        Assert.Equal(Digest(Zonemd.Create(Example, records)), Digest(Zonemd.Create(Example, shuffled)));
    }

    public static TheoryData<string, string, string> Tampering() => new()
    {
        // A changed record, an added one, a removed one: each changes the digest.
        { "ns1           3600   IN  A       203.0.113.63", "ns1           3600   IN  A       203.0.113.64", "digest does not match" },
        { "sortme        3600   IN  AAAA    2001:db8::2:64", "sortme        3600   IN  AAAA    2001:db8::2:64\nextra 60 IN A 192.0.2.1", "digest does not match" },
        { "occluded.sub  7200   IN  TXT     \"I'm occluded but must be digested\"", "", "digest does not match" },
        // A TTL is digested too (RFC 4034 §6.2 form with the TTL).
        { "duplicate     300    IN  TXT", "duplicate     301    IN  TXT", "digest does not match" },
        // RFC 8976 §4: the ZONEMD serial must be the SOA's.
        { "admin 2018031900", "admin 2018031901", "is not the SOA serial" },
    };

    [Theory]
    [MemberData(nameof(Tampering))]
    public void Verify_detects_a_changed_zone(string from, string to, string expected)
    {
        string text = ComplexZone.Replace("\r\n", "\n", StringComparison.Ordinal);
        Assert.Contains(from, text, StringComparison.Ordinal);
        var records = Parse(text.Replace(from, to, StringComparison.Ordinal), Example);
        Assert.False(Zonemd.Verify(Example, records, out string problem));
        Assert.Contains(expected, problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Verify_refuses_a_zone_without_ZONEMD_or_with_two_digests_of_one_kind()
    {
        var records = Parse(SimpleZone, Example);
        Assert.False(Zonemd.Verify(Example, records.Where(r => r.Type != RecordType.ZONEMD).ToList(), out string problem));
        Assert.Contains("no ZONEMD", problem, StringComparison.Ordinal);

        var twice = new List<ResourceRecord>(records)
        {
            new(Example, RecordType.ZONEMD, RecordClass.IN, 86400, [.. records.Single(r => r.Type == RecordType.ZONEMD).Data[..6], .. new byte[48]]),
        };
        Assert.False(Zonemd.Verify(Example, twice, out problem));
        Assert.Contains("more than one record with scheme 1 and hash algorithm 1", problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Finalize_needs_a_placeholder_so_that_the_apex_bitmap_lists_ZONEMD()
    {
        using var key = DnssecPrivateKey.Generate(Zone, DnssecAlgorithm.Ed25519, ksk: true);
        var now = DateTimeOffset.UtcNow;
        var signed = ZoneSigner.Sign(Zone, ReadZone(ExampleZone()), [key], now);
        var error = Assert.Throws<ArgumentException>(() => Zonemd.Finalize(Zone, signed, [key], now, now.AddDays(1)));
        Assert.Contains("placeholder", error.Message, StringComparison.Ordinal);
    }

    public static TheoryData<string, bool> Signings() => new()
    {
        { "ecdsap256sha256", false }, { "ecdsap256sha256", true }, { "ed25519", false }, { "rsasha256", true },
    };

    [Theory]
    [MemberData(nameof(Signings))]
    public void A_zone_signed_with_ZONEMD_passes_ldns_verify_zone_and_kzonecheck_and_ldns_rejects_tampered_glue(string algorithm, bool nsec3)
    {
        var now = DateTimeOffset.UtcNow;
        var alg = algorithm switch
        {
            "ecdsap256sha256" => DnssecAlgorithm.EcdsaP256Sha256,
            "ed25519" => DnssecAlgorithm.Ed25519,
            _ => DnssecAlgorithm.RsaSha256,
        };
        using var ksk = DnssecPrivateKey.Generate(Zone, alg, ksk: true);
        using var zsk = DnssecPrivateKey.Generate(Zone, alg, ksk: false);
        var signed = SignWithZonemd(ReadZone(ExampleZone()), [ksk, zsk], [zsk], now, nsec3);

        // The placeholder made the apex NSEC/NSEC3 list ZONEMD; the final RRset is signed by the ZSK only.
        var zonemd = Assert.Single(signed, r => r.Type == RecordType.ZONEMD);
        Assert.Equal(2024060101u, System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(zonemd.Data));
        Assert.NotEqual(new byte[48], zonemd.Data[6..]);
        var sig = Assert.Single(signed, r => r.Type == RecordType.RRSIG && (RecordType)(r.Data[0] << 8 | r.Data[1]) == RecordType.ZONEMD);
        Assert.True(Rrsig.TryRead(sig.Data, out var rrsig));
        Assert.Equal(zsk.KeyTag, rrsig.KeyTag);
        if (!nsec3)
        {
            var apexNsec = Assert.Single(signed, r => r.Type == RecordType.NSEC && r.Owner.Equals(Zone));
            Assert.Contains("ZONEMD", apexNsec.ToString(), StringComparison.Ordinal);
        }
        else
        {
            Assert.Contains(signed, r => r.Type == RecordType.NSEC3 && r.ToString().Contains("ZONEMD", StringComparison.Ordinal));
        }
        Assert.True(Zonemd.Verify(Zone, signed, out string problem), problem);

        string good = WriteZone("good.zone", signed);
        // -ZZ: a valid ZONEMD is required and the zone must be validly DNSSEC-signed as well.
        var ldns = ExternalProcess.Run("ldns-verify-zone", ["-ZZ", good]).EnsureSuccess();
        Assert.Contains("Zone is verified and complete", ldns.Stdout + ldns.Stderr, StringComparison.Ordinal);
        // Knot 3.2's kzonecheck checks the signatures and chain (the ZONEMD RRset and its RRSIG included)
        // but not the digest itself (only knotd's zonemd-verify does), so it judges the good zone only.
        ExternalProcess.Run("kzonecheck", ["-o", "example.test", "-d", "on", good]).EnsureSuccess();

        // Glue is not signed (RFC 4035 §2.2), so only the zone digest can notice it changed.
        var glue = DnsName.Parse("ns.sub.example.test.");
        var tampered = signed.Select(r => r.Type == RecordType.A && r.Owner.Equals(glue)
            ? new ResourceRecord(r.Owner, r.Type, r.Class, r.Ttl, [192, 0, 2, 154]) : r).ToList();
        Assert.False(Zonemd.Verify(Zone, tampered, out problem));
        Assert.Contains("digest does not match", problem, StringComparison.Ordinal);
        string bad = WriteZone("bad.zone", tampered);
        var ldnsBad = ExternalProcess.Run("ldns-verify-zone", ["-ZZ", bad]);
        Assert.NotEqual(0, ldnsBad.ExitCode);
        Assert.Contains("ZONEMD", ldnsBad.Stdout + ldnsBad.Stderr, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void A_SHA512_ZONEMD_beside_a_SHA384_one_is_computed_from_its_own_placeholder()
    {
        var now = DateTimeOffset.UtcNow;
        using var key = DnssecPrivateKey.Generate(Zone, DnssecAlgorithm.Ed25519, ksk: true);
        var input = ReadZone(ExampleZone());
        input.Add(Zonemd.Placeholder(Zone, input));
        input.Add(Zonemd.Placeholder(Zone, input, Zonemd.Sha512));
        var signed = SignWithZonemd(input, [key], [key], now, nsec3: false);
        var zonemd = signed.Where(r => r.Type == RecordType.ZONEMD).ToList();
        Assert.Equal([1, 2], zonemd.Select(r => (int)r.Data[5]).Order());
        Assert.True(Zonemd.Verify(Zone, signed, out string problem), problem);
        Assert.Equal(Digest(Zonemd.Create(Zone, signed, Zonemd.Sha512)), Digest(zonemd.Single(r => r.Data[5] == 2)));
        string path = WriteZone("two.zone", signed);
        ExternalProcess.Run("ldns-verify-zone", ["-ZZ", path]).EnsureSuccess();
    }

    /// <summary>What the signer does with --zonemd: a placeholder in the input, sign, then Finalize.</summary>
    private static List<ResourceRecord> SignWithZonemd(List<ResourceRecord> input, IReadOnlyList<DnssecPrivateKey> keys,
        IReadOnlyList<DnssecPrivateKey> zoneSigners, DateTimeOffset now, bool nsec3)
    {
        var options = new ZoneSigningOptions { Nsec3 = nsec3 };
        if (!input.Exists(r => r.Type == RecordType.ZONEMD)) input.Add(Zonemd.Placeholder(Zone, input));
        var signed = ZoneSigner.Sign(Zone, input, keys, now, options);
        return Zonemd.Finalize(Zone, signed, zoneSigners, now - options.InceptionOffset, now + options.Validity);
    }

    private string WriteZone(string name, List<ResourceRecord> records)
    {
        string path = Path.Combine(_dir, name);
        using (var w = new StreamWriter(path)) ZoneWriter.Write(w, records);
        return path;
    }

    private static List<ResourceRecord> ReadZone(string path)
    {
        using var reader = ZoneReader.Open(path, Zone);
        return reader.ReadRecords().ToList();
    }

    private static string ExampleZone() => ExampleZoneFile.Path();
}
