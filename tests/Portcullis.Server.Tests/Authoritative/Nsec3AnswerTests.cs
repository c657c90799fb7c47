using Portcullis.Protocol.Dnssec;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.Zones;
using Portcullis.Server.Authoritative;
using Portcullis.Server.Hosting;
using Portcullis.Server.Tests.Support;
using Portcullis.Testing;
using Xunit;

namespace Portcullis.Server.Tests.Authoritative;

public sealed class BindNsec3Zone() : SignedExampleZone(bind: true, nsec3: true);

public sealed class PortcullisNsec3Zone() : SignedExampleZone(bind: false, nsec3: true);

public sealed class BindNsec3OptOutZone() : SignedExampleZone(bind: true, nsec3: true, optOut: true);

/// <summary>
/// NSEC3 proofs in answers (RFC 5155 §7.2) from a zone signed with NSEC3, beyond what the
/// validators check: the same NSEC3 owners as Knot serving the same file, none without DO, NSEC3
/// owner names answered as names that do not exist (§7.2.8).
/// </summary>
public abstract class Nsec3ZoneTests<TZone>(TZone zone) : ValidatedZoneTests<TZone>(zone) where TZone : SignedExampleZone
{
    private static DnsMessage Ask(System.Net.IPEndPoint server, string name, RecordType type, bool dnssecOk = true, bool tcp = false)
    {
        var q = DnsTestClient.Query(name, type, edns: true);
        q.Edns!.DnssecOk = dnssecOk;
        var client = new DnsTestClient(server);
        return DnsMessage.Parse(tcp ? client.TcpRaw(q.ToWire()) : client.UdpRaw(q.ToWire()));
    }

    /// <summary>Knot serving the same signed file: the same RCODE and the same RRsets (owner, type, count) in answer and authority.</summary>
    [Theory]
    [InlineData("www.example.test", RecordType.A)]
    [InlineData("anything.example.test", RecordType.TXT)]     // §7.2.6
    [InlineData("nope.www.example.test", RecordType.A)]       // §7.2.2
    [InlineData("a.b.c.nope.example.test", RecordType.A)]     // wildcard answer deeper down
    [InlineData("www.example.test", RecordType.MX)]           // §7.2.3
    [InlineData("b.ent.example.test", RecordType.A)]          // §7.2.3 at an empty non-terminal
    [InlineData("nope.b.ent.example.test", RecordType.A)]     // §7.2.2 below an empty non-terminal
    [InlineData("anything.example.test", RecordType.MX)]      // §7.2.5
    [InlineData("example.test", RecordType.NS)]
    [InlineData("ftp.example.test", RecordType.A)]
    [InlineData("host.other.example.test", RecordType.A)]     // §7.2.7
    [InlineData("host.secure.example.test", RecordType.A)]
    [InlineData("sub.example.test", RecordType.DS)]           // §7.2.4 (a matching NSEC3: no opt-out)
    [InlineData("secure.example.test", RecordType.DS)]
    public void Sections_match_knot(string name, RecordType type)
    {
        var ours = Ask(Zone.Server.EndPoint, name, type, tcp: true);
        var theirs = Ask(Zone.Knot.EndPoint, name, type, tcp: true);
        SectionShape.AssertSame(theirs, ours);
    }


    [Fact]
    public void Nxdomain_carries_three_distinct_nsec3_each_signed()
    {
        var r = Ask(Zone.Server.EndPoint, "nope.www.example.test", RecordType.A);
        Assert.Equal(Rcode.NXDomain, r.Rcode);
        var nsec3 = r.Authority.Where(x => x.Type == RecordType.NSEC3).Select(x => x.Owner.ToString()).ToList();
        Assert.InRange(nsec3.Count, 2, 3);
        Assert.Equal(nsec3.Count, nsec3.Distinct().Count());
        Assert.Equal(r.Authority.Count(x => x.Type != RecordType.RRSIG), r.Authority.Count(x => x.Type == RecordType.RRSIG));
    }

    [Theory]
    [InlineData("nope.www.example.test", RecordType.A)]
    [InlineData("www.example.test", RecordType.MX)]
    [InlineData("anything.example.test", RecordType.MX)]
    [InlineData("host.other.example.test", RecordType.A)]
    public void Without_do_no_nsec3_appears(string name, RecordType type)
    {
        var r = Ask(Zone.Server.EndPoint, name, type, dnssecOk: false);
        Assert.DoesNotContain(r.Answers.Concat(r.Authority).Concat(r.Additional), x => x.Type is RecordType.RRSIG or RecordType.NSEC3);
    }

    [Fact]
    public void A_question_for_an_nsec3_owner_is_answered_as_for_a_name_that_does_not_exist()
    {
        // RFC 5155 §7.2.8: as if the NSEC3 owner did not exist, so here the apex wildcard answers.
        var owner = Zone.Text.Split('\n').Select(l => l.Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries))
            .First(f => f.Length > 3 && f.Contains("NSEC3"))[0];
        var nsec3 = Ask(Zone.Server.EndPoint, owner, RecordType.NSEC3);
        Assert.Equal(Rcode.NoError, nsec3.Rcode);
        Assert.Empty(nsec3.Answers);
        var a = Ask(Zone.Server.EndPoint, owner, RecordType.A);
        Assert.Equal(["192.0.2.99"], a.Answers.Where(x => x.Type == RecordType.A).Select(x => new System.Net.IPAddress(x.Data).ToString()));
        var validated = Zone.Unbound.Dig(owner, "A");
        Assert.True(validated.Status == "NOERROR" && (validated.AuthenticatedData || Zone.CoveredByOptOut(owner, "A")), validated.Text);
    }
}

/// <summary>example.test signed by dnssec-signzone -3 aabbccdd -H 5 (a salt and extra iterations, so the hashing is checked against BIND's).</summary>
public sealed class BindNsec3AnswerTests(BindNsec3Zone zone) : Nsec3ZoneTests<BindNsec3Zone>(zone), IClassFixture<BindNsec3Zone>;

/// <summary>
/// example.test signed by dnssec-signzone -3 -A (opt-out): the unsigned delegations sub and other
/// have no NSEC3, so a DS question there (§7.2.4) and a referral to them (§7.2.7) take the closest
/// provable encloser proof with the opt-out NSEC3 covering the next closer name.
/// </summary>
public sealed class BindNsec3OptOutAnswerTests(BindNsec3OptOutZone zone) : Nsec3ZoneTests<BindNsec3OptOutZone>(zone), IClassFixture<BindNsec3OptOutZone>;

/// <summary>example.test signed by Portcullis's ZoneSigner with NSEC3 (RFC 9276: no salt, no extra iterations).</summary>
public sealed class OwnNsec3AnswerTests(PortcullisNsec3Zone zone) : Nsec3ZoneTests<PortcullisNsec3Zone>(zone), IClassFixture<PortcullisNsec3Zone>;

/// <summary>The NSEC3 index of <see cref="ZoneData"/>, without a server.</summary>
public sealed class Nsec3IndexTests
{
    private static ZoneData Sign(ushort iterations, byte[] salt)
    {
        var apex = DnsName.Parse("example.test.");
        using var key = DnssecPrivateKey.Generate(apex, DnssecAlgorithm.Ed25519, ksk: true);
        var records = ZoneLoader.LoadText(apex, TestServer.ExampleZone, "example.test.zone").Zone.Data.CanonicalRecords().ToList();
        var signed = ZoneSigner.Sign(apex, records, [key], DateTimeOffset.UtcNow,
            new ZoneSigningOptions { Nsec3 = true, Nsec3Iterations = iterations, Nsec3Salt = salt });
        using var text = new StringWriter();
        Protocol.ZoneText.ZoneWriter.Write(text, signed);
        return ZoneLoader.LoadText(apex, text.ToString(), "signed").Zone.Data;
    }

    [Fact]
    public void Hashes_match_the_signer_and_every_name_has_its_matching_nsec3()
    {
        var data = Sign(3, [0xAA, 0xBB]);
        Assert.True(data.HasNsec3);
        Assert.Null(data.Nsec3Problem);
        Assert.Equal(3, data.Nsec3Iterations);
        Span<byte> hash = stackalloc byte[ZoneData.Nsec3HashLength];
        foreach (var name in new[] { "example.test.", "WWW.example.test.", "ent.example.test.", "*.example.test.", "sub.example.test." })
        {
            data.HashNsec3(DnsName.Parse(name).Wire, hash);
            Assert.Equal(ZoneSigner.Nsec3Hash(DnsName.Parse(name), [0xAA, 0xBB], 3), hash.ToArray());
            Assert.True(data.FindNsec3Matching(hash).Exists, name);
            Assert.False(data.FindNsec3Covering(hash).Exists, name);
        }
        data.HashNsec3(DnsName.Parse("nope.example.test.").Wire, hash);
        Assert.False(data.FindNsec3Matching(hash).Exists);
        Assert.True(data.FindNsec3Covering(hash).Exists);
        // Below the first hash and above the last, the last NSEC3 (whose next is the first) covers.
        Assert.Equal(data.FindNsec3Covering(new byte[20]), data.FindNsec3Covering(Enumerable.Repeat((byte)0xFF, 20).ToArray()));
    }

    [Fact]
    public void Hashing_agrees_with_the_platform_SHA1_for_names_and_salts_of_every_length()
    {
        // Inputs from 14 to 449 octets: one to eight SHA-1 blocks, and the padding cases on the way.
        Span<byte> hash = stackalloc byte[ZoneData.Nsec3HashLength];
        foreach (int saltLength in new[] { 0, 1, 55, 200, 255 })
        {
            var salt = Enumerable.Range(0, saltLength).Select(i => (byte)(i * 7)).ToArray();
            var data = Sign(1, salt);
            for (int labels = 0; labels <= 60; labels++)
            {
                var name = DnsName.Parse(string.Concat(Enumerable.Repeat("Ab.", labels)) + "example.test.");
                data.HashNsec3(name.Wire, hash);
                Assert.Equal(ZoneSigner.Nsec3Hash(name, salt, 1), hash.ToArray());
            }
        }
    }

    [Fact]
    public void More_than_150_iterations_give_no_nsec3_proofs_and_say_why()
    {
        var data = Sign(151, []);
        Assert.False(data.HasNsec3);
        Assert.Contains("151", data.Nsec3Problem);
        Assert.True(Sign(150, []).HasNsec3);
    }
}
