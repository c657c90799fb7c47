using Portcullis.Protocol.Dnssec;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.ZoneText;
using Portcullis.Server.Tests.Support;
using Portcullis.Testing;
using Xunit;

namespace Portcullis.Server.Tests.Authoritative;

/// <summary>
/// example.test signed once for a test class, by BIND's dnssec-signzone or by Portcullis's
/// <see cref="ZoneSigner"/>, with NSEC or NSEC3 (KSK + ZSK, ECDSAP256SHA256), served by Portcullis
/// beside its unsigned child sub.example.test; a validating Unbound holding the KSK as trust
/// anchor is pointed at it. The zone adds a signed child "secure" (a DS, never validated through)
/// and an unsigned child "other" (not served) to the example zone.
/// </summary>
public abstract class SignedExampleZone : IDisposable
{
    public const string Origin = "example.test";

    public const string ChildZone = """
        $ORIGIN sub.example.test.
        @     3600 IN SOA ns.sub.example.test. hostmaster.example.test. 1 7200 1800 1209600 300
        @     3600 IN NS  ns.sub.example.test.
        ns    3600 IN A   192.0.2.153
        host  3600 IN A   192.0.2.154
        """;

    public static string UnsignedText => TestServer.ExampleZone + """

        secure              NS    ns2.example.test.
        secure              DS    12345 13 2 ( 2BB183AF5F22588179A53B0A98631FAD1A292118D0E4D4D5B8A9F43E4C4D2D9E )
        other               NS    ns2.example.test.
        """;

    /// <param name="bind">Sign with dnssec-signzone (NSEC3: salt aabbccdd, 5 iterations, to exercise both); else with ZoneSigner.</param>
    /// <param name="optOut">NSEC3 with opt-out (dnssec-signzone -A): the insecure delegations get no NSEC3 (RFC 5155 §6).</param>
    protected SignedExampleZone(bool bind, bool nsec3, bool optOut = false)
    {
        Nsec3 = nsec3;
        OptOut = optOut;
        Directory = System.IO.Directory.CreateTempSubdirectory("portcullis-validated-").FullName;
        try
        {
            string unsigned = Path.Combine(Directory, "example.test.zone");
            File.WriteAllText(unsigned, UnsignedText);
            if (bind)
            {
                string ksk = BindKeyGen("-f", "KSK");
                BindKeyGen();
                string[] chain = nsec3 ? ["-3", "aabbccdd", "-H", "5", .. optOut ? new[] { "-A" } : []] : [];
                ExternalProcess.Run("dnssec-signzone", ["-S", .. chain, "-K", Directory, "-o", Origin, "-f", SignedFile, unsigned], workingDirectory: Directory).EnsureSuccess();
                var line = File.ReadAllLines(Path.Combine(Directory, ksk + ".key")).First(l => !l.StartsWith(';'));
                var fields = line.Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
                int at = Array.IndexOf(fields, "DNSKEY");
                KskDnskey = $"{fields[at + 1]} {fields[at + 2]} {fields[at + 3]} {string.Concat(fields[(at + 4)..])}";
            }
            else
            {
                var apex = DnsName.Parse(Origin + ".");
                using var ksk = DnssecPrivateKey.Generate(apex, DnssecAlgorithm.EcdsaP256Sha256, ksk: true);
                using var zsk = DnssecPrivateKey.Generate(apex, DnssecAlgorithm.EcdsaP256Sha256, ksk: false);
                List<ResourceRecord> records;
                using (var reader = ZoneReader.Open(unsigned, apex)) records = reader.ReadRecords().ToList();
                var signed = ZoneSigner.Sign(apex, records, [ksk, zsk], DateTimeOffset.UtcNow, new ZoneSigningOptions { Nsec3 = nsec3 });
                using (var writer = new StreamWriter(SignedFile)) ZoneWriter.Write(writer, signed);
                KskDnskey = $"{ksk.Flags} 3 {(int)ksk.Algorithm} {Convert.ToBase64String(ksk.DnskeyRdata.AsSpan(4))}";
            }
            AnchorFile = Path.Combine(Directory, "anchors.conf");
            var parts = KskDnskey.Split(' ', 4);
            File.WriteAllText(AnchorFile, $"trust-anchors {{ {Origin}. static-key {parts[0]} {parts[1]} {parts[2]} \"{parts[3]}\"; }};\n");
            Text = File.ReadAllText(SignedFile);
            Server = new TestServer((Origin, Text), ("sub." + Origin, ChildZone));
            Unbound = new ValidatingUnbound($"{Origin}. DNSKEY {KskDnskey}", Stubs);
            Knot = new KnotPeer([new PeerZone(Origin, SignedFile)]);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    private string BindKeyGen(params string[] extra) =>
        ExternalProcess.Run("dnssec-keygen", [.. extra, "-a", "ECDSAP256SHA256", "-K", Directory, "-n", "ZONE", Origin], workingDirectory: Directory)
            .EnsureSuccess().Stdout.Trim();

    public bool Nsec3 { get; }
    public bool OptOut { get; }

    /// <summary>
    /// With opt-out, a proof whose next closer name is covered by an NSEC3 with the opt-out flag
    /// shows only that no secure name is there (RFC 5155 §6, §9.2): validators call the answer
    /// insecure, never bogus. In the test zone these are the wildcard answers and wildcard NODATA,
    /// NXDOMAIN and DS at an opt-out delegation.
    /// </summary>
    public bool CoveredByOptOut(string name, string type) =>
        OptOut && (name.StartsWith("anything.", StringComparison.Ordinal) || name.StartsWith("nope.", StringComparison.Ordinal)
            || (name, type) is ("sub.example.test", "DS") || name.Split('.')[0].Length == 32);
    public string Directory { get; }
    public string SignedFile => Path.Combine(Directory, "example.test.signed");
    /// <summary>The KSK's DNSKEY RDATA in presentation form: flags, protocol, algorithm, base64 key.</summary>
    public string KskDnskey { get; } = "";
    /// <summary>delv's trust anchor file (the KSK as a static key).</summary>
    public string AnchorFile { get; } = "";
    public string Text { get; } = "";
    public TestServer Server { get; } = null!;
    /// <summary>Unbound validating with the KSK as trust anchor, stub zones example.test and sub.example.test at <see cref="Server"/>.</summary>
    public ValidatingUnbound Unbound { get; } = null!;
    /// <summary>Knot serving the same signed file (no signing of its own).</summary>
    public KnotPeer Knot { get; } = null!;

    public IReadOnlyList<(string Zone, System.Net.IPEndPoint Server)> Stubs => [(Origin, Server.EndPoint), ("sub." + Origin, Server.EndPoint)];

    public void Dispose()
    {
        Knot?.Dispose();
        Unbound?.Dispose();
        Server?.Dispose();
        try { System.IO.Directory.Delete(Directory, recursive: true); } catch (IOException) { }
        GC.SuppressFinalize(this);
    }
}

/// <summary>
/// What two validators from Debian, `delv` (BIND 9.18) and Unbound 1.17, make of a signed zone
/// served by Portcullis: secure answers, NXDOMAIN, NODATA (at a name, at an empty non-terminal, DS
/// at a delegation), wildcard answers and wildcard NODATA; a delegation to an unsigned child
/// proven insecure; a trust anchor of another key gives SERVFAIL (bogus). Each subclass is one zone.
/// </summary>
public abstract class ValidatedZoneTests<TZone>(TZone zone) where TZone : SignedExampleZone
{
    protected TZone Zone { get; } = zone;

    /// <summary>Questions whose answers are secure: (name, type, expected RCODE).</summary>
    public static TheoryData<string, string, string> SecureQuestions => new()
    {
        { "www.example.test", "A", "NOERROR" },            // an answer
        { "anything.example.test", "TXT", "NOERROR" },     // a wildcard answer
        { "nope.www.example.test", "A", "NXDOMAIN" },      // no name, no wildcard there
        { "www.example.test", "MX", "NOERROR" },           // NODATA
        { "b.ent.example.test", "A", "NOERROR" },          // NODATA at an empty non-terminal
        { "anything.example.test", "MX", "NOERROR" },      // wildcard NODATA
        { "example.test", "DNSKEY", "NOERROR" },
        { "ftp.example.test", "A", "NOERROR" },            // CNAME, then the answer
        { "secure.example.test", "DS", "NOERROR" },
        { "sub.example.test", "DS", "NOERROR" },           // NODATA: no DS at the delegation
    };

    private string Delv(string name, string type)
    {
        var ep = Zone.Server.EndPoint;
        var r = ExternalProcess.Run("delv", [$"@{ep.Address}", "-p", ep.Port.ToString(), "-a", Zone.AnchorFile, $"+root={SignedExampleZone.Origin}", name, type]);
        return r.Stdout + r.Stderr;
    }

    [Theory]
    [MemberData(nameof(SecureQuestions))]
    public void Delv_fully_validates(string name, string type, string rcode)
    {
        var output = Delv(name, type);
        if (Zone.CoveredByOptOut(name, type))
            Assert.True((output.Contains("fully validated") || output.Contains("unsigned answer")) && !output.Contains("validation failed"), $"{name} {type}:\n{output}");
        else
            Assert.True(output.Contains("fully validated") && !output.Contains("validation failed") && !output.Contains("insecure"), $"{name} {type}:\n{output}");
        Assert.Equal(rcode == "NXDOMAIN", output.Contains("nxdomain"));
    }

    [Fact]
    public void Delv_proves_the_unsigned_child_insecure()
    {
        var output = Delv("host.sub.example.test", "A");
        Assert.Contains("; unsigned answer", output);
        Assert.Contains("192.0.2.154", output);
        Assert.DoesNotContain("validation failed", output);
    }

    [Theory]
    [MemberData(nameof(SecureQuestions))]
    public void Unbound_validates_and_sets_AD(string name, string type, string rcode)
    {
        var r = Zone.Unbound.Dig(name, type);
        // Opt-out: the right RCODE, insecure (no AD), not SERVFAIL.
        Assert.True(r.Status == rcode && (r.AuthenticatedData || Zone.CoveredByOptOut(name, type)), $"{name} {type}:\n{r.Text}\nUnbound log:\n{Zone.Unbound.Log}");
    }

    [Fact]
    public void Unbound_answers_the_unsigned_child_as_insecure_without_AD()
    {
        var r = Zone.Unbound.Dig("host.sub.example.test", "A");
        Assert.True(r.Status == "NOERROR" && !r.AuthenticatedData && r.Text.Contains("192.0.2.154"), $"{r.Text}\nUnbound log:\n{Zone.Unbound.Log}");
    }

    [Fact]
    public void Unbound_with_the_anchor_of_another_key_finds_the_answers_bogus()
    {
        using var other = DnssecPrivateKey.Generate(DnsName.Parse(SignedExampleZone.Origin + "."), DnssecAlgorithm.EcdsaP256Sha256, ksk: true);
        using var unbound = new ValidatingUnbound($"{SignedExampleZone.Origin}. DNSKEY 257 3 13 {Convert.ToBase64String(other.DnskeyRdata.AsSpan(4))}", Zone.Stubs);
        foreach (var (name, type) in new[] { ("www.example.test", "A"), ("nope.www.example.test", "A") })
        {
            var r = unbound.Dig(name, type);
            Assert.True(r.Status == "SERVFAIL" && !r.AuthenticatedData, $"{name} {type}:\n{r.Text}");
        }
    }
}

public sealed class PortcullisNsecZone() : SignedExampleZone(bind: false, nsec3: false);

/// <summary>A zone signed by Portcullis with NSEC, validated by delv and Unbound.</summary>
public sealed class UnboundValidationTests(PortcullisNsecZone zone) : ValidatedZoneTests<PortcullisNsecZone>(zone), IClassFixture<PortcullisNsecZone>;
