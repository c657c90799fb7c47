using Portcullis.Protocol.Dnssec;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.ZoneText;
using Portcullis.Testing;

namespace Portcullis.Protocol.Tests.Dnssec;

/// <summary>
/// Key tags, DS digests and RRSIG verification against zones and keys made by BIND's and ldns's
/// own tools: whatever they sign, Portcullis must verify, and nothing else.
/// </summary>
public sealed class DnssecVerifierTests
{
    public static TheoryData<string> BindAlgorithms => new()
    {
        "RSASHA1", "NSEC3RSASHA1", "RSASHA256", "RSASHA512", "ECDSAP256SHA256", "ECDSAP384SHA384", "ED25519",
    };

    [Theory]
    [MemberData(nameof(BindAlgorithms))]
    public void Key_tags_and_DS_digests_match_dnssec_dsfromkey(string algorithm)
    {
        using var zone = SignedZone.Bind(algorithm);
        foreach (var keyFile in zone.KeyFiles)
        {
            var key = SignedZone.ReadKeyFile(keyFile);
            Assert.Equal(SignedZone.TagFromFileName(keyFile), DnsKey.KeyTag(key.Data));
            foreach (var (option, type) in new[] { ("-1", DsDigestType.Sha1), ("-2", DsDigestType.Sha256), ("-a SHA-384", DsDigestType.Sha384) })
            {
                string output = ExternalProcess.Run("dnssec-dsfromkey", [.. option.Split(' '), keyFile]).EnsureSuccess().Stdout;
                var expected = ReadRecord(output);
                Assert.Equal(RecordType.DS, expected.Type);
                Assert.Equal(expected.Data, DsDigest.CreateDsRdata(key.Owner, key.Data, type));
                Assert.Equal(DsMatch.Match, DsDigest.Compare(expected.Data, key.Owner, key.Data));
                // The owner name is part of the digest, lowered (RFC 4034 §5.1.4, §6.2).
                Assert.Equal(DsMatch.Match, DsDigest.Compare(expected.Data, DnsName.Parse("EXAMPLE.test."), key.Data));
                Assert.Equal(DsMatch.Mismatch, DsDigest.Compare(expected.Data, DnsName.Parse("example.tesu."), key.Data));
                var corrupt = (byte[])expected.Data.Clone();
                corrupt[^1] ^= 1;
                Assert.Equal(DsMatch.Mismatch, DsDigest.Compare(corrupt, key.Owner, key.Data));
                Assert.Equal(DsMatch.Malformed, DsDigest.Compare(expected.Data[..^1], key.Owner, key.Data));
            }
        }
        Assert.True(DnsKey.IsSecureEntryPoint(SignedZone.ReadKeyFile(zone.KeyFiles[0]).Data));
        Assert.False(DnsKey.IsSecureEntryPoint(SignedZone.ReadKeyFile(zone.KeyFiles[1]).Data));
    }

    [Fact]
    public void A_DS_with_GOST_or_an_unknown_digest_type_is_unsupported_not_a_mismatch()
    {
        using var zone = SignedZone.Bind("ECDSAP256SHA256");
        var key = SignedZone.ReadKeyFile(zone.KeyFiles[0]);
        var ds = DsDigest.CreateDsRdata(key.Owner, key.Data, DsDigestType.Sha256)!;
        foreach (byte type in (byte[])[3, 5, 200])
        {
            ds[3] = type;
            Assert.Equal(DsMatch.UnsupportedDigest, DsDigest.Compare(ds, key.Owner, key.Data));
        }
        Assert.Null(DsDigest.CreateDsRdata(key.Owner, key.Data, DsDigestType.Gost));
    }

    [Theory]
    [MemberData(nameof(BindAlgorithms))]
    public void Every_signature_dnssec_signzone_made_verifies(string algorithm)
    {
        using var zone = SignedZone.Bind(algorithm);
        // SOA, NS, MX, DNSKEY at the apex, 6 RRsets at the 5 other names, an NSEC at each of the 6 names.
        AssertAllSignaturesValid(zone, expectedRrsets: 16);
    }

    [Fact]
    public void Every_signature_of_an_NSEC3_zone_from_dnssec_signzone_verifies()
    {
        using var zone = SignedZone.Bind("ECDSAP256SHA256", nsec3: true);
        Assert.Contains(zone.Records, r => r.Type == RecordType.NSEC3);
        AssertAllSignaturesValid(zone, expectedRrsets: 0);
    }

    [Theory]
    [InlineData("RSASHA512")]
    [InlineData("ED25519")]
    public void Every_signature_ldns_signzone_made_verifies(string algorithm)
    {
        using var zone = SignedZone.Ldns(algorithm);
        Assert.Contains(zone.Records, r => r.Type == RecordType.NSEC3);
        AssertAllSignaturesValid(zone, expectedRrsets: 0);
    }

    /// <summary>Every RRSIG verifies with the apex DNSKEYs at a time inside its window, and every RRset of the zone is signed.</summary>
    private static void AssertAllSignaturesValid(SignedZone zone, int expectedRrsets)
    {
        var rrsets = zone.RRsets();
        var keys = zone.DnsKeys;
        Assert.Equal(2, keys.Count);
        var signed = new HashSet<(DnsName, RecordType)>();
        int verified = 0;
        foreach (var rrsig in zone.Signatures)
        {
            Assert.True(Rrsig.TryRead(rrsig.Data, out var view));
            var rrset = rrsets[(rrsig.Owner, view.TypeCovered)];
            var result = DnssecVerifier.Verify(rrsig, rrset, keys, SignedZone.InsideWindow);
            Assert.True(result.IsValid, $"{rrsig}: {result.Status}");
            Assert.Equal(SignedZone.InceptionInstant, result.Inception);
            Assert.Equal(SignedZone.ExpirationInstant, result.Expiration);
            signed.Add((rrsig.Owner, view.TypeCovered));
            verified++;
        }
        Assert.True(verified >= rrsets.Count);
        // No delegations in the test zone: every RRset is signed (RFC 4035 §2.2).
        Assert.Equal(rrsets.Keys.ToHashSet(), signed);
        if (expectedRrsets > 0) Assert.Equal(expectedRrsets, rrsets.Count);
    }

    [Fact]
    public void A_tampered_record_fails_and_canonical_differences_do_not()
    {
        using var zone = SignedZone.Bind("ECDSAP256SHA256");
        var www = DnsName.Parse("www.example.test.");
        var rrset = zone.RRsets()[(www, RecordType.A)];
        var rrsig = Covering(zone, www, RecordType.A);
        var keys = zone.DnsKeys;
        var now = SignedZone.InsideWindow;
        Assert.Equal(SignatureStatus.Valid, DnssecVerifier.Verify(rrsig, rrset, keys, now).Status);

        // Changed address, a record removed, a record added: bad signatures.
        var changed = new ResourceRecord(rrset[0].Owner, RecordType.A, RecordClass.IN, rrset[0].Ttl, [192, 0, 2, 99]);
        Assert.Equal(SignatureStatus.BadSignature, DnssecVerifier.Verify(rrsig, [changed, rrset[1]], keys, now).Status);
        Assert.Equal(SignatureStatus.BadSignature, DnssecVerifier.Verify(rrsig, [rrset[0]], keys, now).Status);
        Assert.Equal(SignatureStatus.BadSignature, DnssecVerifier.Verify(rrsig, [.. rrset, changed], keys, now).Status);
        // A flipped bit in the signature.
        var data = (byte[])rrsig.Data.Clone();
        data[^5] ^= 0x10;
        var badSig = new ResourceRecord(rrsig.Owner, RecordType.RRSIG, RecordClass.IN, rrsig.Ttl, data);
        Assert.Equal(SignatureStatus.BadSignature, DnssecVerifier.Verify(badSig, rrset, keys, now).Status);

        // Order, owner case, TTL (decremented by a cache: the original TTL is signed) and a
        // duplicate record change nothing (RFC 4034 §6.2-6.3, RFC 4035 §5.3.2).
        var upper = DnsName.Parse("WWW.EXAMPLE.TEST.");
        var reordered = rrset.AsEnumerable().Reverse().Select(r => new ResourceRecord(upper, r.Type, r.Class, 17, r.Data)).ToList();
        var upperSig = new ResourceRecord(upper, RecordType.RRSIG, RecordClass.IN, 17, rrsig.Data);
        Assert.Equal(SignatureStatus.Valid, DnssecVerifier.Verify(upperSig, reordered, keys, now).Status);
        Assert.Equal(SignatureStatus.Valid, DnssecVerifier.Verify(rrsig, [.. rrset, rrset[0]], keys, now).Status);
    }

    [Fact]
    public void Names_in_RDATA_are_lowered_for_the_listed_types_only()
    {
        using var zone = SignedZone.Bind("ECDSAP256SHA256");
        var keys = zone.DnsKeys;
        var apex = SignedZone.Origin;
        // MX and SOA are on the RFC 4034 §6.2 list: upper-casing their names keeps the signature good.
        foreach (var type in (RecordType[])[RecordType.MX, RecordType.SOA, RecordType.NS])
        {
            var rrset = zone.RRsets()[(apex, type)];
            var shouted = rrset.Select(r => new ResourceRecord(r.Owner, r.Type, r.Class, r.Ttl, Upper(r.Type, r.Data))).ToList();
            Assert.NotEqual(rrset[0].Data, shouted[0].Data);
            Assert.Equal(SignatureStatus.Valid, DnssecVerifier.Verify(Covering(zone, apex, type), shouted, keys, SignedZone.InsideWindow).Status);
        }
        // NSEC is not (RFC 6840 §5.1): its next name is signed with the case the signer wrote.
        var nsec = zone.RRsets()[(apex, RecordType.NSEC)];
        var lowered = nsec.Select(r => new ResourceRecord(r.Owner, r.Type, r.Class, r.Ttl, Lower(r.Data))).ToList();
        Assert.NotEqual(nsec[0].Data, lowered[0].Data);   // BIND wrote "NS1.example.test."
        var rrsig = Covering(zone, apex, RecordType.NSEC);
        Assert.Equal(SignatureStatus.Valid, DnssecVerifier.Verify(rrsig, nsec, keys, SignedZone.InsideWindow).Status);
        Assert.Equal(SignatureStatus.BadSignature, DnssecVerifier.Verify(rrsig, lowered, keys, SignedZone.InsideWindow).Status);

        static byte[] Upper(RecordType type, byte[] data)
        {
            var copy = (byte[])data.Clone();
            RdataWire.ForEachName(type, copy, static span => { for (int i = 0; i < span.Length; i++) if (span[i] is >= (byte)'a' and <= (byte)'z') span[i] -= 32; });
            return copy;
        }

        static byte[] Lower(byte[] data)
        {
            var copy = (byte[])data.Clone();
            RdataWire.ForEachName(RecordType.NSEC, copy, static span => DnsName.LowerLabels(span));
            return copy;
        }
    }

    [Fact]
    public void A_wildcard_expanded_owner_verifies_against_the_labels_field()
    {
        using var zone = SignedZone.Bind("ED25519");
        var wildcard = DnsName.Parse("*.wild.example.test.");
        var rrset = zone.RRsets()[(wildcard, RecordType.A)];
        var rrsig = Covering(zone, wildcard, RecordType.A);
        Assert.True(Rrsig.TryRead(rrsig.Data, out var view));
        Assert.Equal(3, view.Labels);
        var keys = zone.DnsKeys;

        foreach (var name in (string[])["a.wild.example.test.", "B.c.WILD.example.test."])
        {
            var owner = DnsName.Parse(name);
            var expanded = rrset.Select(r => new ResourceRecord(owner, r.Type, r.Class, r.Ttl, r.Data)).ToList();
            var sig = new ResourceRecord(owner, RecordType.RRSIG, RecordClass.IN, rrsig.Ttl, rrsig.Data);
            Assert.Equal(SignatureStatus.Valid, DnssecVerifier.Verify(sig, expanded, keys, SignedZone.InsideWindow).Status);
        }
        // The same RRSIG moved under another parent: the reconstructed owner is *.other.example.test.
        var elsewhere = DnsName.Parse("a.other.example.test.");
        var moved = rrset.Select(r => new ResourceRecord(elsewhere, r.Type, r.Class, r.Ttl, r.Data)).ToList();
        var movedSig = new ResourceRecord(elsewhere, RecordType.RRSIG, RecordClass.IN, rrsig.Ttl, rrsig.Data);
        Assert.Equal(SignatureStatus.BadSignature, DnssecVerifier.Verify(movedSig, moved, keys, SignedZone.InsideWindow).Status);
        // The wildcard's parent itself (as many labels as the field, so not an expansion): bad.
        Assert.Equal(SignatureStatus.BadSignature, VerifyAt("wild.example.test."));
        // Fewer owner labels than the labels field: the RRSIG cannot cover it (RFC 4035 §5.3.1).
        Assert.Equal(SignatureStatus.RrsetMismatch, VerifyAt("example.test."));

        SignatureStatus VerifyAt(string name)
        {
            var owner = DnsName.Parse(name);
            var records = rrset.Select(r => new ResourceRecord(owner, r.Type, r.Class, r.Ttl, r.Data)).ToList();
            var sig = new ResourceRecord(owner, RecordType.RRSIG, RecordClass.IN, rrsig.Ttl, rrsig.Data);
            return DnssecVerifier.Verify(sig, records, keys, SignedZone.InsideWindow).Status;
        }
    }

    [Fact]
    public void Inception_and_expiration_bound_the_window()
    {
        using var zone = SignedZone.Bind("ECDSAP384SHA384");
        var apex = SignedZone.Origin;
        var rrset = zone.RRsets()[(apex, RecordType.SOA)];
        var rrsig = Covering(zone, apex, RecordType.SOA);
        var keys = zone.DnsKeys;
        Assert.Equal(SignatureStatus.Valid, DnssecVerifier.Verify(rrsig, rrset, keys, SignedZone.InceptionInstant).Status);
        Assert.Equal(SignatureStatus.Valid, DnssecVerifier.Verify(rrsig, rrset, keys, SignedZone.ExpirationInstant).Status);
        var early = DnssecVerifier.Verify(rrsig, rrset, keys, SignedZone.InceptionInstant.AddSeconds(-1));
        Assert.Equal(SignatureStatus.NotYetValid, early.Status);
        Assert.True(early.IsCryptographicallyValid);
        var late = DnssecVerifier.Verify(rrsig, rrset, keys, SignedZone.ExpirationInstant.AddSeconds(1));
        Assert.Equal(SignatureStatus.Expired, late.Status);
        Assert.Equal(SignedZone.ExpirationInstant, late.Expiration);
        // Serial arithmetic (RFC 4034 §3.1.5): the same 32-bit times read 2^32 s later still make a window.
        var nextEra = SignedZone.InsideWindow.AddSeconds(4294967296);
        var again = DnssecVerifier.Verify(rrsig, rrset, keys, nextEra);
        Assert.Equal(SignatureStatus.Valid, again.Status);
        Assert.Equal(SignedZone.ExpirationInstant.AddSeconds(4294967296), again.Expiration);
        // A tampered signature outside its window is bad, not expired.
        var data = (byte[])rrsig.Data.Clone();
        data[^1] ^= 1;
        Assert.Equal(SignatureStatus.BadSignature,
            DnssecVerifier.Verify(new ResourceRecord(apex, RecordType.RRSIG, RecordClass.IN, 0, data), rrset, keys, SignedZone.ExpirationInstant.AddDays(1)).Status);
    }

    [Fact]
    public void A_key_that_does_not_match_the_RRSIG_is_a_key_mismatch_and_Ed448_is_unsupported()
    {
        using var zone = SignedZone.Bind("ECDSAP256SHA256");
        using var other = SignedZone.Bind("ECDSAP256SHA256");
        var apex = SignedZone.Origin;
        var rrset = zone.RRsets()[(apex, RecordType.SOA)];
        var rrsig = Covering(zone, apex, RecordType.SOA);
        // Another zone's keys (same owner and algorithm, other tags).
        Assert.Equal(SignatureStatus.KeyMismatch, DnssecVerifier.Verify(rrsig, rrset, other.DnsKeys, SignedZone.InsideWindow).Status);
        // The right key under another owner name, and with the zone-key flag cleared.
        Assert.True(Rrsig.TryRead(rrsig.Data, out var view));
        ushort tag = view.KeyTag;
        var key = zone.DnsKeys.Single(k => DnsKey.KeyTag(k.Data) == tag);
        var renamed = new ResourceRecord(DnsName.Parse("example.tesu."), RecordType.DNSKEY, RecordClass.IN, 0, key.Data);
        Assert.Equal(SignatureStatus.KeyMismatch, DnssecVerifier.Verify(rrsig, rrset, renamed, SignedZone.InsideWindow).Status);
        // The RRSIG over another type's RRset.
        Assert.Equal(SignatureStatus.RrsetMismatch, DnssecVerifier.Verify(rrsig, zone.RRsets()[(apex, RecordType.NS)], key, SignedZone.InsideWindow).Status);
        // Truncated RRSIG RDATA.
        Assert.Equal(SignatureStatus.Malformed,
            DnssecVerifier.Verify(new ResourceRecord(apex, RecordType.RRSIG, RecordClass.IN, 0, rrsig.Data[..10]), rrset, key, SignedZone.InsideWindow).Status);

        using var ed448 = SignedZone.Bind("ED448");
        var check = DnssecVerifier.Verify(Covering(ed448, apex, RecordType.SOA), ed448.RRsets()[(apex, RecordType.SOA)], ed448.DnsKeys, SignedZone.InsideWindow);
        Assert.Equal(SignatureStatus.UnsupportedAlgorithm, check.Status);
        Assert.Equal(DnssecAlgorithm.Ed448, check.Algorithm);
    }

    [Fact]
    public void The_RSA_MD5_key_tag_is_taken_from_the_modulus()
    {
        // RFC 4034 Appendix B.1: the most significant 16 of the least significant 24 bits of the modulus.
        byte[] rdata = [0x01, 0x00, 3, 1, 1, 3, 0xAA, 0xBB, 0x12, 0x34, 0x56];
        Assert.Equal(0x1234, DnsKey.KeyTag(rdata));
    }

    private static ResourceRecord Covering(SignedZone zone, DnsName owner, RecordType type) =>
        zone.Signatures.First(s => s.Owner == owner && Rrsig.TryRead(s.Data, out var v) && v.TypeCovered == type);

    private static ResourceRecord ReadRecord(string line)
    {
        using var reader = new ZoneReader(new StringReader(line), DnsName.Root, options: new ZoneReaderOptions { DefaultTtl = 0 });
        return reader.ReadRecords().Single();
    }
}
