using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Records;
using Portcullis.Server.Tests.Support;
using Portcullis.Testing;
using Xunit;

namespace Portcullis.Server.Tests.Authoritative;

/// <summary>
/// A zone signed by BIND's dnssec-signzone (ECDSAP256SHA256, KSK + ZSK, NSEC) served by
/// Portcullis: answers with DO=1 carry what RFC 4035 §3.1 asks, as `delv` (given the KSK as trust
/// anchor) and Knot serving the same file show; answers without DO stay as for an unsigned zone.
/// </summary>
public sealed class SignedAnswerTests : IClassFixture<SignedAnswerTests.SignedZone>
{
    private const string Origin = "example.test";
    private readonly SignedZone _zone;

    public SignedAnswerTests(SignedZone zone) => _zone = zone;

    /// <summary>Signs example.test (plus a signed child "secure" with a DS, beside the unsigned child "sub") once for the class.</summary>
    public sealed class SignedZone : IDisposable
    {
        public SignedZone()
        {
            Directory = System.IO.Directory.CreateTempSubdirectory("portcullis-signed-").FullName;
            string unsigned = Path.Combine(Directory, "example.test.zone");
            File.WriteAllText(unsigned, TestServer.ExampleZone + """

                ; A signed child: its DS is here (the digest is only ever compared, never used by a validator here).
                secure              NS    ns2.example.test.
                secure              DS    12345 13 2 ( 2BB183AF5F22588179A53B0A98631FAD1A292118D0E4D4D5B8A9F43E4C4D2D9E )
                ; Another unsigned child, not served here: its referrals are looked at.
                other               NS    ns2.example.test.
                """);
            string ksk = KeyGen("-f", "KSK");
            KeyGen();
            ExternalProcess.Run("dnssec-signzone", ["-S", "-K", Directory, "-o", Origin, "-f", SignedFile, unsigned], workingDirectory: Directory).EnsureSuccess();
            // delv's trust anchor: the KSK as a static key.
            var key = File.ReadAllLines(Path.Combine(Directory, ksk + ".key")).First(l => !l.StartsWith(';'));
            var fields = key.Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            int at = Array.IndexOf(fields, "DNSKEY");
            AnchorFile = Path.Combine(Directory, "anchors.conf");
            File.WriteAllText(AnchorFile, $"trust-anchors {{ {Origin}. static-key {fields[at + 1]} {fields[at + 2]} {fields[at + 3]} \"{string.Concat(fields[(at + 4)..])}\"; }};\n");
            Text = File.ReadAllText(SignedFile);
            // The unsigned child sub.example.test is served by the same server, so that delv, which asks
            // only this server, reaches it and proves it insecure through the parent's NSEC at the cut.
            Server = new TestServer((Origin, Text), ("sub." + Origin, ChildZone));
        }

        private const string ChildZone = """
            $ORIGIN sub.example.test.
            @     3600 IN SOA ns.sub.example.test. hostmaster.example.test. 1 7200 1800 1209600 300
            @     3600 IN NS  ns.sub.example.test.
            ns    3600 IN A   192.0.2.153
            host  3600 IN A   192.0.2.154
            """;

        private string KeyGen(params string[] extra) =>
            ExternalProcess.Run("dnssec-keygen", [.. extra, "-a", "ECDSAP256SHA256", "-K", Directory, "-n", "ZONE", Origin], workingDirectory: Directory)
                .EnsureSuccess().Stdout.Trim();

        public string Directory { get; }
        public string SignedFile => Path.Combine(Directory, "example.test.signed");
        public string AnchorFile { get; }
        public string Text { get; }
        public TestServer Server { get; }

        public void Dispose()
        {
            Server.Dispose();
            try { System.IO.Directory.Delete(Directory, recursive: true); } catch (IOException) { }
        }
    }

    private DnsMessage Ask(System.Net.IPEndPoint server, string name, RecordType type, bool dnssecOk = true, bool tcp = false, ushort payload = 1232)
    {
        var q = DnsTestClient.Query(name, type, edns: true, payload: payload);
        q.Edns!.DnssecOk = dnssecOk;
        var client = new DnsTestClient(server);
        return DnsMessage.Parse(tcp ? client.TcpRaw(q.ToWire()) : client.UdpRaw(q.ToWire()));
    }

    private string Delv(string name, string type)
    {
        var ep = _zone.Server.EndPoint;
        var r = ExternalProcess.Run("delv", [$"@{ep.Address}", "-p", ep.Port.ToString(), "-a", _zone.AnchorFile, $"+root={Origin}", name, type]);
        return r.Stdout + r.Stderr;
    }

    [Theory]
    [InlineData("www.example.test", "A")]            // an answer
    [InlineData("mail.example.test", "AAAA")]
    [InlineData("anything.example.test", "TXT")]     // a wildcard answer
    [InlineData("nope.www.example.test", "A")]       // NXDOMAIN (below a name, no wildcard there)
    [InlineData("www.example.test", "MX")]           // NODATA
    [InlineData("b.ent.example.test", "A")]          // NODATA at an empty non-terminal
    [InlineData("anything.example.test", "MX")]      // wildcard NODATA
    [InlineData("example.test", "DNSKEY")]
    [InlineData("ftp.example.test", "A")]            // CNAME then the answer
    [InlineData("secure.example.test", "DS")]
    [InlineData("sub.example.test", "DS")]           // no DS: NODATA at the cut
    public void Delv_fully_validates(string name, string type)
    {
        var output = Delv(name, type);
        // "; fully validated", or "; negative response, fully validated" (after delv's
        // ";; resolution failed: ncache nxdomain" line, which only says the answer is negative).
        Assert.Contains("fully validated", output);
        Assert.DoesNotContain("validation failed", output);
        Assert.DoesNotContain("insecure", output);
    }

    [Fact]
    public void Delegation_to_an_unsigned_child_is_proven_insecure()
    {
        var output = Delv("host.sub.example.test", "A");
        // The child's answer is unsigned and the parent's NSEC at the cut, without DS, proves that
        // it may be (RFC 4035 §5.2): delv reports an unsigned answer, not a failure.
        Assert.Contains("; unsigned answer", output);
        Assert.Contains("192.0.2.154", output);
        Assert.DoesNotContain("; fully validated", output);
        Assert.DoesNotContain("validation failed", output);
    }

    [Fact]
    public void Nxdomain_carries_the_soa_its_signature_and_two_nsec_proofs()
    {
        var r = Ask(_zone.Server.EndPoint, "nope.www.example.test", RecordType.A);
        Assert.Equal(Rcode.NXDomain, r.Rcode);
        Assert.Contains(r.Authority, x => x.Type == RecordType.SOA);
        Assert.Equal(r.Authority.Count(x => x.Type != RecordType.RRSIG), r.Authority.Count(x => x.Type == RecordType.RRSIG));
        Assert.InRange(r.Authority.Count(x => x.Type == RecordType.NSEC), 1, 2);
    }

    [Fact]
    public void Referrals_carry_ds_and_its_signature_or_the_nsec_proving_no_ds()
    {
        var secure = Ask(_zone.Server.EndPoint, "host.secure.example.test", RecordType.A);
        Assert.Equal(["NS", "DS", "RRSIG"], secure.Authority.Select(x => x.Type.ToString()).Distinct());
        Assert.False(secure.Header.AuthoritativeAnswer);
        var insecure = Ask(_zone.Server.EndPoint, "host.other.example.test", RecordType.A);
        Assert.Equal(["NS", "NSEC", "RRSIG"], insecure.Authority.Select(x => x.Type.ToString()).Distinct());
        Assert.Contains(insecure.Additional, x => x.Type == RecordType.A);
    }

    [Theory]
    [InlineData("www.example.test", RecordType.A)]
    [InlineData("nope.www.example.test", RecordType.A)]
    [InlineData("www.example.test", RecordType.MX)]
    [InlineData("anything.example.test", RecordType.TXT)]
    [InlineData("host.other.example.test", RecordType.A)]
    public void Without_do_no_dnssec_records_appear(string name, RecordType type)
    {
        var r = Ask(_zone.Server.EndPoint, name, type, dnssecOk: false);
        Assert.DoesNotContain(r.Answers.Concat(r.Authority).Concat(r.Additional), x => x.Type is RecordType.RRSIG or RecordType.NSEC or RecordType.DS);
    }

    [Fact]
    public void Explicit_queries_for_dnssec_types_answer_without_do()
    {
        Assert.Contains(Ask(_zone.Server.EndPoint, "example.test", RecordType.DNSKEY, dnssecOk: false).Answers, x => x.Type == RecordType.DNSKEY);
        Assert.Contains(Ask(_zone.Server.EndPoint, "www.example.test", RecordType.NSEC, dnssecOk: false).Answers, x => x.Type == RecordType.NSEC);
        var sigs = Ask(_zone.Server.EndPoint, "www.example.test", RecordType.RRSIG, dnssecOk: false).Answers;
        Assert.True(sigs.Count >= 3);   // over A, AAAA and NSEC
        Assert.All(sigs, x => Assert.Equal(RecordType.RRSIG, x.Type));
    }

    [Fact]
    public void A_signature_that_does_not_fit_truncates_and_never_leaves_its_rrset_alone()
    {
        // 512 octets: the DNSKEY RRset (two keys) fits, its signatures do not all fit beside it.
        foreach (var (name, type) in new[] { ("example.test", RecordType.DNSKEY), ("nope.www.example.test", RecordType.A), ("example.test", RecordType.TXT) })
        {
            var r = Ask(_zone.Server.EndPoint, name, type, payload: 512);
            foreach (var section in new[] { r.Answers, r.Authority })
                foreach (var set in section.Where(x => x.Type != RecordType.RRSIG).Select(x => (x.Owner.ToString(), x.Type)).Distinct())
                    Assert.Contains(section, x => x.Type == RecordType.RRSIG && x.Owner.ToString() == set.Item1
                        && (RecordType)(x.Data[0] << 8 | x.Data[1]) == set.Type);
            if (!r.Header.Truncated) Assert.NotEmpty(r.Answers.Concat(r.Authority));
        }
    }

    /// <summary>Knot serving the same signed file: the same RCODE and the same RRsets (owner, type, count) in answer and authority.</summary>
    [Theory]
    [InlineData("www.example.test", RecordType.A)]
    [InlineData("anything.example.test", RecordType.TXT)]
    [InlineData("nope.www.example.test", RecordType.A)]
    [InlineData("zzz.example.test", RecordType.A)]
    [InlineData("www.example.test", RecordType.MX)]
    [InlineData("b.ent.example.test", RecordType.A)]
    [InlineData("anything.example.test", RecordType.MX)]
    [InlineData("example.test", RecordType.DNSKEY)]
    [InlineData("ftp.example.test", RecordType.A)]
    [InlineData("host.other.example.test", RecordType.A)]
    [InlineData("host.secure.example.test", RecordType.A)]
    [InlineData("sub.example.test", RecordType.DS)]
    public void Sections_match_knot(string name, RecordType type)
    {
        using var knot = new KnotPeer([new PeerZone(Origin, _zone.SignedFile)]);
        var ours = Ask(_zone.Server.EndPoint, name, type, tcp: true);
        var theirs = Ask(knot.EndPoint, name, type, tcp: true);
        SectionShape.AssertSame(theirs, ours);
    }

}
