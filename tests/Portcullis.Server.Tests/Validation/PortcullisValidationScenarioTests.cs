using System.Net;
using Microsoft.Extensions.Logging.Abstractions;
using Portcullis.Server.Configuration;
using Portcullis.Server.Hosting;
using Portcullis.Server.Resolution;
using Portcullis.Testing;
using Xunit.Abstractions;

namespace Portcullis.Server.Tests.Validation;

/// <summary>
/// Issue 11, "How it is checked": the Portcullis server as a validating resolver (recursion: with
/// the hierarchy's root hints and its root DS as the only trust anchor, everything else default)
/// over the signed test hierarchy, every scenario of <see cref="SignedHierarchy.Scenarios"/>
/// checked for RCODE, AD, data and, when bogus, the Extended DNS Error — the same table as
/// Unbound's (<see cref="UnboundValidationScenarioTests"/>), asked with dig.
/// </summary>
public sealed class PortcullisValidationScenarioTests(SignedHierarchyFixture fixture, ITestOutputHelper output)
    : IClassFixture<SignedHierarchyFixture>
{
    private SignedHierarchy Hierarchy => fixture.Hierarchy;

    private sealed class Resolver : IDisposable
    {
        public required DnsServer Server;
        public required IterativeResolver Built;
        public IPEndPoint EndPoint = null!;
        public void Dispose() => Server.Dispose();
    }

    /// <summary>A server on the hierarchy's resolver address, validating from the hierarchy's root DS.</summary>
    private Resolver Start(Action<ServerConfig>? configure = null)
    {
        var config = new ServerConfig
        {
            Listen = [$"{Hierarchy.ResolverAddress}:53"],
            AllowRecursion = ["127.0.0.0/8"],
        };
        config.Recursion.RootHints = Hierarchy.RootHintsFile;
        config.Recursion.OutgoingInterface = [Hierarchy.ResolverAddress.ToString()];
        config.Recursion.TrustAnchorFiles = [Hierarchy.TrustAnchorFile];
        configure?.Invoke(config);
        IterativeResolver? built = null;
        var server = new DnsServer(config, NullLoggerFactory.Instance, recursion: (o, t, l) => built = new IterativeResolver(o, t, l));
        server.Start();
        return new Resolver { Server = server, Built = built!, EndPoint = new IPEndPoint(Hierarchy.ResolverAddress, 53) };
    }

    private List<string> RunTable(Resolver resolver, List<ValidationResult> results)
    {
        var failures = new List<string>();
        foreach (var s in SignedHierarchy.Scenarios)
        {
            long verifications = resolver.Built.SignatureVerifications;
            var r = SignedHierarchy.Run(resolver.EndPoint, s);
            if (s.Name == "keytrap")
            {
                // KeyTrap: 100 colliding keys x 100 forged signatures would be 10,000 verifications;
                // the budget stops each response after 4 failures (16 verifications at most).
                long spent = resolver.Built.SignatureVerifications - verifications;
                output.WriteLine($"keytrap: {r.Rcode} after {r.Elapsed.TotalMilliseconds:0} ms, {spent} signature verifications");
                if (spent > 4 * Portcullis.Protocol.Dnssec.ValidationBudget.MaxVerifications) failures.Add($"keytrap: {spent} verifications");
            }
            results.Add(r);
            if (SignedHierarchy.Check(s, r) is { } why) failures.Add(why);
            // Bogus rows carry the scenario's EDE (RFC 8914's code, which is also Unbound's on every row).
            if (s.Expected == ValidationOutcome.Bogus && r.Ede != s.ExpectedEde)
                failures.Add($"{s.Name}: EDE {r.Ede?.ToString() ?? "none"}, expected {s.ExpectedEde}");
        }
        return failures;
    }

    [Fact]
    public void Portcullis_answers_every_scenario_secure_insecure_or_bogus_with_its_EDE_and_again_from_its_cache()
    {
        using var resolver = Start();
        var cold = new List<ValidationResult>();
        var failures = RunTable(resolver, cold);
        output.WriteLine("cold cache:\n" + SignedHierarchy.FormatTable(cold));
        // The second pass is answered from the cache (validation state and RRSIGs kept with each RRset).
        long resolutions = resolver.Built.Resolutions;
        var warm = new List<ValidationResult>();
        failures.AddRange(RunTable(resolver, warm).Select(f => "from the cache: " + f));
        output.WriteLine("warm cache:\n" + SignedHierarchy.FormatTable(warm));
        Assert.True(failures.Count == 0, string.Join("\n", failures) + "\n\n" + SignedHierarchy.FormatTable(cold) + "\n" + SignedHierarchy.FormatTable(warm));
        // Bogus entries are cached too (60 s), so the second pass resolved nothing again... except
        // what was never cached (a failure to reach a DS is not).
        Assert.True(resolver.Built.Resolutions - resolutions <= 2, $"{resolver.Built.Resolutions - resolutions} resolutions on the second pass");
    }

    /// <summary>RFC 4035 §3.2.2: with CD the resolver hands over what it got, bogus or not, never with AD; without CD the same name is SERVFAIL.</summary>
    [Fact]
    public void With_checking_disabled_Portcullis_returns_the_bogus_data_without_AD()
    {
        using var resolver = Start();
        var scenario = SignedHierarchy.Scenarios.Single(s => s.Name == "bad-signature");
        var cd = SignedHierarchy.Run(resolver.EndPoint, scenario, "+cd");
        Assert.Equal("NOERROR", cd.Rcode);
        Assert.False(cd.Ad);
        Assert.Contains("www.bad-sig.test. A 192.0.2.114", cd.Answer);
        Assert.Null(SignedHierarchy.Check(scenario, SignedHierarchy.Run(resolver.EndPoint, scenario)));
        // And again with CD, now from the cache.
        var cached = SignedHierarchy.Run(resolver.EndPoint, scenario, "+cd");
        Assert.Equal("NOERROR", cached.Rcode);
        Assert.Contains("www.bad-sig.test. A 192.0.2.114", cached.Answer);
    }

    /// <summary>
    /// RFC 6840 §5.7: AD only for clients that show they understand it (DO or AD set); RFC 4035
    /// §3.2.1: RRSIGs only for DO. A plain query gets the same data, neither AD nor signatures.
    /// </summary>
    [Fact]
    public void AD_and_RRSIGs_go_only_to_clients_that_ask_for_them()
    {
        using var resolver = Start();
        string Dig(params string[] options) => ExternalProcess.Run("dig", [$"@{resolver.EndPoint.Address}", "+tries=1", "+time=10", .. options,
            "www.secure-nsec.test.", "A"]).Stdout;
        foreach (var pass in new[] { "resolved", "cached" })
        {
            var plain = Dig("+noadflag");
            Assert.Contains("192.0.2.1", plain);
            Assert.DoesNotMatch(@"flags:[^;]*\bad\b", plain);
            Assert.DoesNotContain("RRSIG", plain);
            var adOnly = Dig("+adflag");
            Assert.Matches(@"flags:[^;]*\bad\b", adOnly);
            Assert.DoesNotContain("RRSIG", adOnly);
            var dnssec = Dig("+dnssec");
            Assert.Matches(@"flags:[^;]*\bad\b", dnssec);
            Assert.Matches(@"www\.secure-nsec\.test\.\s+\d+\s+IN\s+RRSIG\s+A 13 3 ", dnssec);
            output.WriteLine($"{pass}: ok");
        }
        // An RRSIG question: answered as received (signatures are not signed themselves), never AD.
        var sigs = ExternalProcess.Run("dig", [$"@{resolver.EndPoint.Address}", "+tries=1", "+time=10", "+dnssec", "www.secure-nsec.test.", "RRSIG"]).Stdout;
        Assert.Contains("status: NOERROR", sigs);
        Assert.Matches(@"IN\s+RRSIG\s+A 13 3 ", sigs);
        Assert.DoesNotMatch(@"flags:[^;]*\bad\b", sigs);
        // A DO client's negative answer carries the NSEC proof and its signatures.
        var nx = ExternalProcess.Run("dig", [$"@{resolver.EndPoint.Address}", "+tries=1", "+time=10", "+dnssec", "nx.secure-nsec.test.", "A"]).Stdout;
        Assert.Contains("status: NXDOMAIN", nx);
        Assert.Matches(@"IN\s+NSEC\s", nx);
        Assert.Matches(@"IN\s+RRSIG\s+NSEC ", nx);
    }

    /// <summary>RFC 7646: a negative trust anchor makes a broken zone insecure, its data served without AD; others still validate.</summary>
    [Fact]
    public void A_negative_trust_anchor_turns_a_bogus_zone_insecure()
    {
        using var resolver = Start(c => c.Recursion.NegativeTrustAnchors = ["bad-sig.test"]);
        var bad = SignedHierarchy.Run(resolver.EndPoint, SignedHierarchy.Scenarios.Single(s => s.Name == "bad-signature"));
        Assert.Equal("NOERROR", bad.Rcode);
        Assert.False(bad.Ad);
        Assert.Contains("www.bad-sig.test. A 192.0.2.114", bad.Answer);
        var expired = SignedHierarchy.Scenarios.Single(s => s.Name == "expired");
        Assert.Null(SignedHierarchy.Check(expired, SignedHierarchy.Run(resolver.EndPoint, expired)));
    }

    /// <summary>
    /// dnssec-sha1: false, the operator's SHA-1 policy (RHEL's): the RSASHA1 zone, secure by default
    /// (the table above), becomes insecure — served, without AD — while SHA-256 zones stay secure.
    /// </summary>
    [Fact]
    public void With_SHA1_turned_off_an_RSASHA1_zone_is_insecure_and_the_others_stay_secure()
    {
        using var resolver = Start(c => c.Recursion.DnssecSha1 = false);
        var sha1 = SignedHierarchy.Run(resolver.EndPoint, SignedHierarchy.Scenarios.Single(s => s.Name == "rsasha1"));
        Assert.Equal("NOERROR", sha1.Rcode);
        Assert.False(sha1.Ad);
        Assert.Contains("www.sha1.test. A 192.0.2.24", sha1.Answer);
        var rsa = SignedHierarchy.Scenarios.Single(s => s.Name == "rsasha256");
        Assert.Null(SignedHierarchy.Check(rsa, SignedHierarchy.Run(resolver.EndPoint, rsa)));
    }

    /// <summary>
    /// auto-trust-anchor-file (RFC 5011): seeded with the root's DS, as one would copy Debian's
    /// root.key; the server validates from it at once, and its first refresh (the root's DNSKEY RRset
    /// fetched through the resolver) rewrites the file with the root's KSK as a VALID anchor.
    /// </summary>
    [Fact]
    public void An_auto_trust_anchor_file_seeded_with_the_root_DS_is_rewritten_with_the_validated_KSK()
    {
        string file = Path.Combine(Path.GetTempPath(), $"portcullis-autokey-{Guid.NewGuid():N}");
        File.Copy(Hierarchy.TrustAnchorFile, file);
        try
        {
            using var resolver = Start(c => c.Recursion.AutoTrustAnchorFile = file);
            var root = SignedHierarchy.Scenarios.Single(s => s.Name == "nsec-answer");
            Assert.Null(SignedHierarchy.Check(root, SignedHierarchy.Run(resolver.EndPoint, root)));
            // The refresh runs on its own task: wait (bounded) for the file to show its outcome.
            var deadline = DateTime.UtcNow.AddSeconds(30);
            string text = File.ReadAllText(file);
            while (!(text.Contains("state=VALID") && !text.Contains(" DS ")) && DateTime.UtcNow < deadline)
            {
                Thread.Sleep(50);
                text = File.ReadAllText(file);
            }
            Assert.Contains(" DNSKEY 257 3 13 ", text);
            Assert.Contains("state=VALID", text);
            Assert.DoesNotContain(" DS ", text);
            // And the server goes on validating from the rewritten anchors.
            var tld = SignedHierarchy.Scenarios.Single(s => s.Name == "deep-chain");
            Assert.Null(SignedHierarchy.Check(tld, SignedHierarchy.Run(resolver.EndPoint, tld)));
        }
        finally { File.Delete(file); }
    }

    /// <summary>
    /// RFC 8198: after one validated NXDOMAIN and one NODATA, other names in the same NSEC range and
    /// other types at the same name are answered NXDOMAIN/NODATA with AD and the NSEC proof, without a
    /// single query upstream; with aggressive-nsec: false the same question goes upstream.
    /// </summary>
    [Fact]
    public void Validated_NSEC_ranges_answer_other_names_in_them_without_asking_upstream()
    {
        ValidationResult Ask(Resolver r, string name, string type) =>
            SignedHierarchy.Run(r.EndPoint, new ValidationScenario("aggressive", name, type, ValidationOutcome.Secure, null, ""));
        using (var resolver = Start())
        {
            Assert.Equal("NXDOMAIN", Ask(resolver, "nx.secure-nsec.test.", "A").Rcode);
            Assert.Equal("NOERROR", Ask(resolver, "www.secure-nsec.test.", "TXT").Rcode);
            long sent = resolver.Built.Upstream.QueriesSent;
            var nx = Ask(resolver, "ny.secure-nsec.test.", "A");
            Assert.Equal("NXDOMAIN", nx.Rcode);
            Assert.True(nx.Ad);
            Assert.Matches(@"\sNSEC\s", nx.Text);
            var nodata = Ask(resolver, "www.secure-nsec.test.", "MX");
            Assert.Equal("NOERROR", nodata.Rcode);
            Assert.True(nodata.Ad);
            Assert.Empty(nodata.Answer);
            Assert.Equal(sent, resolver.Built.Upstream.QueriesSent);
            Assert.Equal(2, resolver.Built.NsecRanges.Synthesised);
            // Where a wildcard exists, a name in an NSEC range is no NXDOMAIN: the wildcard answers it.
            Assert.Equal("NOERROR", Ask(resolver, "anything.wild.test.", "AAAA").Rcode);
            var wild = Ask(resolver, "other.wild.test.", "A");
            Assert.Equal("NOERROR", wild.Rcode);
            Assert.Contains("other.wild.test. A 192.0.2.50", wild.Answer);
        }
        // Below a negative trust anchor nothing is proven: the same range answers, but from upstream and without AD.
        using (var nta = Start(c => c.Recursion.NegativeTrustAnchors = ["ny.secure-nsec.test"]))
        {
            Assert.True(Ask(nta, "nx.secure-nsec.test.", "A").Ad);
            var ny = Ask(nta, "ny.secure-nsec.test.", "A");
            Assert.Equal(("NXDOMAIN", false), (ny.Rcode, ny.Ad));
            Assert.Equal(0, nta.Built.NsecRanges.Synthesised);
        }
        using (var plain = Start(c => c.Recursion.AggressiveNsec = false))
        {
            Assert.Equal("NXDOMAIN", Ask(plain, "nx.secure-nsec.test.", "A").Rcode);
            long sent = plain.Built.Upstream.QueriesSent;
            Assert.Equal("NXDOMAIN", Ask(plain, "ny.secure-nsec.test.", "A").Rcode);
            Assert.True(plain.Built.Upstream.QueriesSent > sent);
        }
    }

    /// <summary>
    /// Without QNAME minimisation the full name goes to the signed parent's servers, which also serve
    /// the unsigned child and answer from it: the unsigned answer is judged on the child's (insecure)
    /// state, found by walking down to it, not on the parent's.
    /// </summary>
    [Fact]
    public void Without_qname_minimisation_an_unsigned_child_on_its_signed_parents_server_is_insecure_not_bogus()
    {
        using var resolver = Start(c => c.Recursion.QnameMinimisation = false);
        var s = SignedHierarchy.Scenarios.Single(s => s.Name == "cohosted-insecure");
        Assert.Null(SignedHierarchy.Check(s, SignedHierarchy.Run(resolver.EndPoint, s)));
        var secure = SignedHierarchy.Scenarios.Single(s => s.Name == "deep-chain");
        Assert.Null(SignedHierarchy.Check(secure, SignedHierarchy.Run(resolver.EndPoint, secure)));
    }

    /// <summary>The Prometheus metrics count validations by verdict and the signature verifications.</summary>
    [Fact]
    public async Task The_metrics_count_validations_by_verdict()
    {
        var at = Telemetry.MetricsTests.FreeEndPoint();
        using var resolver = Start(c => c.Metrics.Listen = at.ToString());
        foreach (var name in new[] { "nsec-answer", "bad-signature", "insecure-delegation" })
            SignedHierarchy.Run(resolver.EndPoint, SignedHierarchy.Scenarios.Single(s => s.Name == name));
        var samples = Telemetry.MetricsTests.Parse(await Telemetry.MetricsTests.Scrape(resolver.Server.MetricsEndpoint!));
        // The meter sums over every server in this process: at least this one's.
        Assert.True(samples[Telemetry.MetricsTests.Key("portcullis_dnssec_validations_total", ("result", "secure"))] >= 1);
        Assert.True(samples[Telemetry.MetricsTests.Key("portcullis_dnssec_validations_total", ("result", "bogus"))] >= 1);
        Assert.True(samples[Telemetry.MetricsTests.Key("portcullis_dnssec_validations_total", ("result", "insecure"))] >= 1);
        Assert.True(samples[Telemetry.MetricsTests.Key("portcullis_dnssec_verifications_total")] >= resolver.Built.SignatureVerifications);
    }

    /// <summary>dnssec-validation: false — the operator's switch: no AD, bogus data served as it comes.</summary>
    [Fact]
    public void With_validation_off_nothing_is_judged()
    {
        using var resolver = Start(c => c.Recursion.DnssecValidation = false);
        var secure = SignedHierarchy.Run(resolver.EndPoint, SignedHierarchy.Scenarios.Single(s => s.Name == "nsec-answer"));
        Assert.Equal("NOERROR", secure.Rcode);
        Assert.False(secure.Ad);
        var bad = SignedHierarchy.Run(resolver.EndPoint, SignedHierarchy.Scenarios.Single(s => s.Name == "bad-signature"));
        Assert.Equal("NOERROR", bad.Rcode);
        Assert.Contains("www.bad-sig.test. A 192.0.2.114", bad.Answer);
        // Still security-aware (RFC 4035 §3.2.1): a DO=1 client gets the RRSIGs to validate itself.
        Assert.Matches(@"www\.secure-nsec\.test\.\s+RRSIG\s+A 13 3 ", secure.Text);
    }
}
