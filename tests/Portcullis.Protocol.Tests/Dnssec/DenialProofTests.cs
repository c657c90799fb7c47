using System.Runtime.CompilerServices;
using Portcullis.Protocol.Dnssec;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.ZoneText;

namespace Portcullis.Protocol.Tests.Dnssec;

/// <summary>
/// A validator's reading of NSEC and NSEC3 denial (RFC 4035 §5.4, RFC 5155 §8, RFC 6840 §4) over the
/// chains our signer makes for the example zone: what exists is never denied, what does not is
/// proven, and taking away the record a proof needs breaks it. NSEC3 limits (RFC 9276, CVE-2023-50868).
/// </summary>
public sealed class DenialProofTests : IDisposable
{
    private static readonly DnsName Zone = DnsName.Parse("example.test.");
    private static readonly DateTimeOffset Now = new(2030, 6, 1, 0, 0, 0, TimeSpan.Zero);
    private readonly DnssecPrivateKey _key = DnssecPrivateKey.Generate(Zone, DnssecAlgorithm.EcdsaP256Sha256, ksk: true);

    public void Dispose() => _key.Dispose();

    private static List<ResourceRecord> Unsigned() => ExampleZoneFile.Records(Zone);

    private List<NsecRecord> Nsecs() => ZoneSigner.Sign(Zone, Unsigned(), [_key], Now)
        .Select(NsecRecord.From).OfType<NsecRecord>().ToList();

    private List<Nsec3Record> Nsec3s(ushort iterations = 0, byte[]? salt = null) => ZoneSigner.Sign(Zone, Unsigned(), [_key], Now,
            new ZoneSigningOptions { Nsec3 = true, Nsec3Iterations = iterations, Nsec3Salt = salt ?? [] })
        .Select(Nsec3Record.From).OfType<Nsec3Record>().ToList();

    private static DnsName N(string name) => DnsName.Parse(name);

    [Theory]
    [InlineData("nope.ent.example.test.")]          // below an empty non-terminal: no wildcard there
    [InlineData("deeper.nope.ent.example.test.")]
    [InlineData("X.A.B.ENT.example.test.")]        // any case
    public void Nsec_proves_a_name_error_and_loses_the_proof_without_the_covering_record(string name)
    {
        var nsecs = Nsecs();
        Assert.Equal(DenialResult.Proven, NsecProofs.NameError(nsecs, N(name), Zone));
        var cover = nsecs.Single(n => n.Covers(N(name)));
        Assert.Equal(DenialResult.NotProven, NsecProofs.NameError(nsecs.Where(n => n != cover).ToList(), N(name), Zone));
    }

    [Theory]
    [InlineData("www.example.test.")]
    [InlineData("a.b.ent.example.test.")]
    [InlineData("anything.example.test.")]      // exists through the wildcard: no NSEC may deny it outright... but it is covered
    public void Nsec_never_proves_a_name_error_for_what_exists(string name)
    {
        var nsecs = Nsecs();
        if (name.StartsWith("anything", StringComparison.Ordinal))
            // Covered, but the wildcard *.example.test exists: the NXDOMAIN proof fails on it.
            Assert.Equal(DenialResult.NotProven, NsecProofs.NameError(nsecs, N(name), Zone));
        else
        {
            Assert.DoesNotContain(nsecs, n => n.Covers(N(name)));
            Assert.Equal(DenialResult.NotProven, NsecProofs.NameError(nsecs, N(name), Zone));
        }
    }

    [Theory]
    [InlineData("www.example.test.", RecordType.MX, DenialResult.Proven)]
    [InlineData("www.example.test.", RecordType.A, DenialResult.NotProven)]     // it has A
    [InlineData("ftp.example.test.", RecordType.A, DenialResult.NotProven)]     // a CNAME answers it
    [InlineData("ent.example.test.", RecordType.A, DenialResult.Proven)]        // empty non-terminal
    [InlineData("anything.example.test.", RecordType.MX, DenialResult.Proven)]  // wildcard NODATA
    [InlineData("anything.example.test.", RecordType.TXT, DenialResult.NotProven)]
    [InlineData("sub.example.test.", RecordType.DS, DenialResult.Proven)]       // insecure delegation
    [InlineData("sub.example.test.", RecordType.A, DenialResult.NotProven)]     // parent side of a cut proves only DS
    public void Nsec_nodata(string name, RecordType type, DenialResult expected) =>
        Assert.Equal(expected, NsecProofs.NoData(Nsecs(), N(name), type, Zone));

    [Fact]
    public void Nsec_below_a_delegation_or_a_DNAME_proves_nothing()
    {
        var nsecs = Nsecs();
        Assert.Equal(DenialResult.NotProven, NsecProofs.NameError(nsecs, N("x.sub.example.test."), Zone));
        Assert.Equal(DenialResult.NotProven, NsecProofs.NameError(nsecs, N("x.old.example.test."), Zone));
    }

    [Fact]
    public void Nsec_proves_that_a_wildcard_answer_was_not_for_an_existing_name()
    {
        var nsecs = Nsecs();
        Assert.Equal(DenialResult.Proven, NsecProofs.WildcardAnswer(nsecs, N("anything.example.test.")));
        Assert.Equal(DenialResult.NotProven, NsecProofs.WildcardAnswer(nsecs, N("www.example.test.")));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(10)]
    public void Nsec3_name_error_nodata_and_wildcard_proofs(ushort iterations)
    {
        var nsec3s = Nsec3s(iterations, iterations > 0 ? [0xAB, 0xCD] : null);
        var budget = new Nsec3Budget();
        Assert.Equal(DenialResult.Proven, Nsec3Proofs.NameError(nsec3s, N("nope.ent.example.test."), Zone, ref budget));
        Assert.Equal(DenialResult.Proven, Nsec3Proofs.NameError(nsec3s, N("a.b.c.nope.ent.example.test."), Zone, ref budget));
        Assert.Equal(DenialResult.NotProven, Nsec3Proofs.NameError(nsec3s, N("www.example.test."), Zone, ref budget));
        Assert.Equal(DenialResult.NotProven, Nsec3Proofs.NameError(nsec3s, N("anything.example.test."), Zone, ref budget));   // the wildcard exists
        Assert.Equal(DenialResult.Proven, Nsec3Proofs.NoData(nsec3s, N("www.example.test."), RecordType.MX, Zone, ref budget));
        Assert.Equal(DenialResult.NotProven, Nsec3Proofs.NoData(nsec3s, N("www.example.test."), RecordType.AAAA, Zone, ref budget));
        Assert.Equal(DenialResult.Proven, Nsec3Proofs.NoData(nsec3s, N("ent.example.test."), RecordType.A, Zone, ref budget));
        Assert.Equal(DenialResult.Proven, Nsec3Proofs.NoData(nsec3s, N("anything.example.test."), RecordType.MX, Zone, ref budget));
        Assert.Equal(DenialResult.Proven, Nsec3Proofs.NoData(nsec3s, N("sub.example.test."), RecordType.DS, Zone, ref budget));
        Assert.Equal(DenialResult.NotProven, Nsec3Proofs.NoData(nsec3s, N("sub.example.test."), RecordType.A, Zone, ref budget));
        // RRSIG labels 2 (example.test) under a 3-label name: synthesised from *.example.test.
        Assert.Equal(DenialResult.Proven, Nsec3Proofs.WildcardAnswer(nsec3s, N("anything.example.test."), 2, Zone, ref budget));
        Assert.Equal(DenialResult.NotProven, Nsec3Proofs.WildcardAnswer(nsec3s, N("www.example.test."), 2, Zone, ref budget));
        Assert.InRange(budget.Used, 1, 100);
    }

    [Fact]
    public void Nsec3_proofs_break_without_the_record_covering_the_next_closer_name()
    {
        var nsec3s = Nsec3s();
        var hash = new byte[20];
        Nsec3Proofs.Hash(N("nope.ent.example.test."), [], 0, hash);
        var cover = nsec3s.Single(n => n.Covers(hash));
        var budget = new Nsec3Budget();
        Assert.Equal(DenialResult.NotProven, Nsec3Proofs.NameError(nsec3s.Where(n => n != cover).ToList(), N("nope.ent.example.test."), Zone, ref budget));
    }

    [Fact]
    public void Opt_out_over_a_missing_DS_makes_the_delegation_insecure_not_proven_absent()
    {
        // The signer makes no opt-out chains; flip the flag on the record covering the next closer name.
        var nsec3s = Nsec3s();
        var hash = new byte[20];
        Nsec3Proofs.Hash(N("unsigned.example.test."), [], 0, hash);
        var optOut = nsec3s.Select(n => n.Covers(hash) ? n with { Flags = 1 } : n).ToList();
        var budget = new Nsec3Budget();
        // No NSEC3 matches unsigned.example.test; its next closer is covered by an opt-out record.
        Assert.Equal(DenialResult.OptOut, Nsec3Proofs.NoData(optOut, N("unsigned.example.test."), RecordType.DS, Zone, ref budget));
        Assert.Equal(DenialResult.NotProven, Nsec3Proofs.NoData(nsec3s, N("unsigned.example.test."), RecordType.DS, Zone, ref budget));
    }

    [Fact]
    public void Nsec3_over_50_iterations_is_unsupported_so_insecure_and_the_hash_budget_is_enforced()
    {
        var many = Nsec3s(iterations: 51);
        var budget = new Nsec3Budget();
        Assert.Equal(DenialResult.Unsupported, Nsec3Proofs.NameError(many, N("nope.ent.example.test."), Zone, ref budget));
        Assert.Equal(0, budget.Used);   // nothing hashed

        // A long name makes the closest-encloser search hash label after label: a small budget stops it.
        var longName = N(string.Concat(Enumerable.Repeat("x.", 60)) + "nope.ent.example.test.");
        var small = new Nsec3Budget(8);
        Assert.Equal(DenialResult.BudgetExceeded, Nsec3Proofs.NameError(Nsec3s(), longName, Zone, ref small));
        Assert.Equal(9, small.Used);
        var full = new Nsec3Budget();
        Assert.Equal(DenialResult.Proven, Nsec3Proofs.NameError(Nsec3s(), longName, Zone, ref full));
    }

    [Theory]
    [InlineData(RecordType.A, true)]
    [InlineData(RecordType.MX, true)]
    [InlineData(RecordType.RRSIG, true)]
    [InlineData(RecordType.NSEC, true)]
    [InlineData(RecordType.AAAA, false)]
    [InlineData(RecordType.CAA, false)]
    public void Type_bitmaps_say_which_types_exist(RecordType type, bool present)
    {
        var bitmap = ZoneSigner.TypeBitmap([RecordType.A, RecordType.MX, RecordType.RRSIG, RecordType.NSEC]);
        Assert.Equal(present, TypeBitmaps.Contains(bitmap, type));
        Assert.False(TypeBitmaps.Contains([0, 0], RecordType.A));          // malformed: length 0
        Assert.False(TypeBitmaps.Contains([0, 40, 0xFF], RecordType.A));   // malformed: length past the end
    }
}
