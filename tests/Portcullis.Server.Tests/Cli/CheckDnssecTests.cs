using Portcullis.Check;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Testing;

namespace Portcullis.Server.Tests.Cli;

/// <summary>
/// The DNSSEC checks of `portcullis check` (<see cref="DnssecAudit"/>) against NSD and Knot serving
/// zones signed by BIND's dnssec-signzone: a good zone and its DS, a wrong DS, signatures about to
/// expire, expired and not yet valid, a DNSKEY answer too large for UDP, an unsigned zone.
/// </summary>
public sealed class CheckDnssecTests
{
    private static readonly DnsName Zone = DnsName.Parse("example.test.");
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(2);

    private const string ZoneText = """
        $ORIGIN example.test.
        $TTL 3600
        @ SOA ns1 hostmaster 1 7200 3600 1209600 300
        @ NS ns1
        @ NS ns2
        ns1 A 192.0.2.1
        ns2 A 192.0.2.2
        www A 192.0.2.3

        """;

    [Fact]
    public void A_signed_zone_and_its_DS_give_a_validated_chain()
    {
        using var signed = new Signer("ECDSAP256SHA256", "now-1h", "now+30d");
        using var nsd = new NsdPeer([new PeerZone("example.test", signed.SignedPath)]);
        string ds = signed.Ds(signed.Ksk);
        var anchor = DnssecAudit.ParseTrustAnchor(ds, out var error);
        Assert.True(anchor is not null, error);

        var findings = DnssecAudit.Run(nsd.EndPoint, Zone, Timeout, anchor, DateTimeOffset.UtcNow);
        AssertNoProblem(findings);
        Assert.Contains(findings, f => f.Text.StartsWith("DNSKEY: 2 key(s)", StringComparison.Ordinal)
            && f.Text.Contains($"{signed.Tag(signed.Ksk)} ECDSAP256SHA256 KSK", StringComparison.Ordinal)
            && f.Text.Contains($"{signed.Tag(signed.Zsk)} ECDSAP256SHA256 ZSK", StringComparison.Ordinal));
        foreach (var type in (string[])["DNSKEY", "SOA", "NS"])
            Assert.Contains(findings, f => f.Severity == Severity.Ok && f.Text.StartsWith($"example.test. {type}: signature by key", StringComparison.Ordinal));
        Assert.Contains(findings, f => f.Severity == Severity.Ok && f.Text.StartsWith("chain from the trust anchor validates", StringComparison.Ordinal));
        Assert.All(findings, f => Assert.Equal("dnssec", f.Check));

        // The same anchor from a file, and the KSK itself (its .key file) as anchor.
        string file = Path.Combine(signed.Directory, "anchor.ds");
        File.WriteAllText(file, "; the parent's DS\n" + ds);
        foreach (string source in (string[])[file, signed.Ksk])
        {
            var fromFile = DnssecAudit.ParseTrustAnchor(source, out error);
            Assert.True(fromFile is not null, error);
            Assert.Contains(DnssecAudit.Run(nsd.EndPoint, Zone, Timeout, fromFile, DateTimeOffset.UtcNow),
                f => f.Severity == Severity.Ok && f.Text.StartsWith("chain from the trust anchor validates", StringComparison.Ordinal));
        }

        // No anchor: the chain is not checked, and said so.
        var unanchored = DnssecAudit.Run(nsd.EndPoint, Zone, Timeout, null, DateTimeOffset.UtcNow);
        Assert.Contains(unanchored, f => f.Severity == Severity.Info && f.Text.StartsWith("no trust anchor given (--ds or --trust-anchor)", StringComparison.Ordinal));
        AssertNoProblem(unanchored);

        // Judged after expiration, and before inception: critical, with a fix.
        var late = DnssecAudit.Run(nsd.EndPoint, Zone, Timeout, anchor, DateTimeOffset.UtcNow.AddDays(40));
        Assert.Contains(late, f => f.Severity == Severity.Critical && f.Text.Contains("expired", StringComparison.Ordinal) && f.Fix.Length > 0);
        Assert.Contains(late, f => f.Severity == Severity.Critical && f.Text.StartsWith("chain from the trust anchor does not validate", StringComparison.Ordinal));
        var early = DnssecAudit.Run(nsd.EndPoint, Zone, Timeout, anchor, DateTimeOffset.UtcNow.AddDays(-1));
        Assert.Contains(early, f => f.Severity == Severity.Critical && f.Text.Contains("not valid before", StringComparison.Ordinal) && f.Fix.Length > 0);
    }

    [Fact]
    public void A_DS_that_matches_no_key_of_the_zone_is_critical()
    {
        using var signed = new Signer("ED25519", "now-1h", "now+30d");
        using var knot = new KnotPeer([new PeerZone("example.test", signed.SignedPath)]);
        // The DS of a KSK made for the same zone name but never published in it.
        string stray = signed.MakeKey("-f", "KSK");
        var anchor = DnssecAudit.ParseTrustAnchor(signed.Ds(stray), out var error);
        Assert.True(anchor is not null, error);
        var findings = DnssecAudit.Run(knot.EndPoint, Zone, Timeout, anchor, DateTimeOffset.UtcNow);
        var chain = Assert.Single(findings, f => f.Text.StartsWith("chain from the trust anchor", StringComparison.Ordinal));
        Assert.Equal(Severity.Critical, chain.Severity);
        Assert.Contains($"DS {signed.Tag(stray)} ED25519", chain.Text, StringComparison.Ordinal);
        Assert.NotEmpty(chain.Fix);
        // The signatures themselves are fine.
        Assert.Equal(3, findings.Count(f => f.Severity == Severity.Ok && f.Text.Contains("signature by key", StringComparison.Ordinal)));

        // A DS for another zone altogether.
        var other = DnssecAudit.ParseTrustAnchor("other.test. IN DS 12345 13 2 " + new string('A', 64), out error);
        Assert.True(other is not null, error);
        Assert.Contains(DnssecAudit.Run(knot.EndPoint, Zone, Timeout, other, DateTimeOffset.UtcNow),
            f => f.Severity == Severity.Critical && f.Text.StartsWith("the trust anchor is for other.test., not example.test.", StringComparison.Ordinal));
    }

    [Fact]
    public void Signatures_expiring_in_three_days_are_a_warning()
    {
        using var signed = new Signer("ECDSAP384SHA384", "now-1h", "now+3d");
        using var nsd = new NsdPeer([new PeerZone("example.test", signed.SignedPath)]);
        var anchor = DnssecAudit.ParseTrustAnchor(signed.Ds(signed.Ksk), out var error);
        Assert.True(anchor is not null, error);
        var findings = DnssecAudit.Run(nsd.EndPoint, Zone, Timeout, anchor, DateTimeOffset.UtcNow);
        var expiry = Assert.Single(findings, f => f.Severity == Severity.Warning);
        Assert.StartsWith("signatures expire in 3 days", expiry.Text, StringComparison.Ordinal);
        Assert.Contains("re-sign", expiry.Fix, StringComparison.Ordinal);
        Assert.DoesNotContain(findings, f => f.Severity == Severity.Critical);
    }

    [Fact]
    public void A_DNSKEY_answer_too_large_for_UDP_is_fetched_over_TCP()
    {
        // Two 4096-bit RSA keys and their signatures: about 2,000 octets, more than the 1232 asked for.
        using var signed = new Signer("RSASHA512", "now-1h", "now+30d", bits: 4096);
        using var nsd = new NsdPeer([new PeerZone("example.test", signed.SignedPath)]);
        var anchor = DnssecAudit.ParseTrustAnchor(signed.Ds(signed.Ksk), out var error);
        Assert.True(anchor is not null, error);
        var findings = DnssecAudit.Run(nsd.EndPoint, Zone, Timeout, anchor, DateTimeOffset.UtcNow);
        AssertNoProblem(findings);
        Assert.Contains(findings, f => f.Severity == Severity.Ok && f.Text.StartsWith("example.test. DNSKEY: signature by key", StringComparison.Ordinal));
        Assert.Contains(findings, f => f.Severity == Severity.Ok && f.Text.StartsWith("chain from the trust anchor validates", StringComparison.Ordinal));
    }

    [Fact]
    public void An_unsigned_zone_is_reported_as_information()
    {
        string directory = Directory.CreateTempSubdirectory("portcullis-dnssec-").FullName;
        try
        {
            string path = Path.Combine(directory, "example.test.zone");
            File.WriteAllText(path, ZoneText);
            using var nsd = new NsdPeer([new PeerZone("example.test", path)]);
            var finding = Assert.Single(DnssecAudit.Run(nsd.EndPoint, Zone, Timeout, null, DateTimeOffset.UtcNow));
            Assert.Equal(Severity.Info, finding.Severity);
            Assert.StartsWith("zone is not signed", finding.Text, StringComparison.Ordinal);
            Assert.Contains("sign", finding.Fix, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void Trust_anchor_text_is_parsed_or_refused_in_one_line()
    {
        var ds = DnssecAudit.ParseTrustAnchor("example.test. DS 60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118", out var error);
        Assert.Null(error);
        Assert.Equal(RecordType.DS, Assert.Single(ds!).Type);
        Assert.Equal(Zone, ds![0].Owner);

        Assert.Null(DnssecAudit.ParseTrustAnchor("example.test. DS 60485 5 1 2BB1XYZ", out error));
        Assert.NotNull(error);
        Assert.DoesNotContain('\n', error);
        Assert.Null(DnssecAudit.ParseTrustAnchor("/nonexistent/anchor.ds", out error));
        Assert.Contains("no such file", error, StringComparison.Ordinal);
        Assert.Null(DnssecAudit.ParseTrustAnchor("example.test. A 192.0.2.1", out error));
        Assert.Contains("no DS or DNSKEY", error, StringComparison.Ordinal);
        // Debian's root trust anchor file (dns-root-data), when installed, is read as it is.
        if (File.Exists("/usr/share/dns/root.key"))
        {
            var root = DnssecAudit.ParseTrustAnchor("/usr/share/dns/root.key", out error);
            Assert.True(root is not null, error);
            Assert.All(root!, r => Assert.True(r.Owner.IsRoot));
        }
    }

    private static void AssertNoProblem(IReadOnlyList<Finding> findings) =>
        Assert.All(findings, f => Assert.True(f.Severity <= Severity.Info, $"{f.Severity}: {f.Text}"));

    /// <summary>
    /// Keys from dnssec-keygen (a KSK and a ZSK) and the test zone signed by dnssec-signzone with the
    /// given window, in a temporary directory removed on Dispose.
    /// </summary>
    private sealed class Signer : IDisposable
    {
        public Signer(string algorithm, string inception, string expiration, int? bits = null)
        {
            _algorithm = algorithm;
            _bits = bits;
            Directory = System.IO.Directory.CreateTempSubdirectory("portcullis-dnssec-").FullName;
            try
            {
                Ksk = MakeKey("-f", "KSK");
                Zsk = MakeKey();
                string unsigned = Path.Combine(Directory, "unsigned.zone");
                File.WriteAllText(unsigned, ZoneText + $"$INCLUDE {Path.GetFileName(Ksk)}\n$INCLUDE {Path.GetFileName(Zsk)}\n");
                // -P: no post-signing verification (it judges windows by the current time, which
                // the expiry tests deliberately put close to or outside the window).
                ExternalProcess.Run("dnssec-signzone", ["-P", "-K", Directory, "-o", "example.test", "-s", inception, "-e", expiration,
                    "-f", SignedPath, unsigned], workingDirectory: Directory).EnsureSuccess();
            }
            catch
            {
                Dispose();
                throw;
            }
        }

        private readonly string _algorithm;
        private readonly int? _bits;

        public string Directory { get; }
        public string SignedPath => Path.Combine(Directory, "example.test.signed");
        /// <summary>Paths of the key files (K*.key).</summary>
        public string Ksk { get; } = "";
        public string Zsk { get; } = "";

        public string MakeKey(params string[] flags)
        {
            string[] size = _bits is { } b ? ["-b", b.ToString()] : [];
            var made = ExternalProcess.Run("dnssec-keygen", ["-q", "-K", Directory, "-a", _algorithm, .. size, .. flags, "-n", "ZONE", "example.test"],
                workingDirectory: Directory, timeout: TimeSpan.FromSeconds(120)).EnsureSuccess();
            return Path.Combine(Directory, made.Stdout.Trim() + ".key");
        }

        /// <summary>The SHA-256 DS line of a key, as dnssec-dsfromkey prints it for the parent.</summary>
        public string Ds(string keyFile) => ExternalProcess.Run("dnssec-dsfromkey", ["-2", keyFile]).EnsureSuccess().Stdout.Trim();

        public ushort Tag(string keyFile) => ushort.Parse(Path.GetFileNameWithoutExtension(keyFile).Split('+')[2]);

        public void Dispose()
        {
            try
            {
                System.IO.Directory.Delete(Directory, recursive: true);
            }
            catch (IOException)
            {
                // Left in the temp directory; harmless.
            }
        }
    }
}
