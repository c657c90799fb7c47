using System.Text.RegularExpressions;
using Portcullis.Testing;
using Xunit.Abstractions;

namespace Portcullis.Server.Tests.Validation;

/// <summary>The signed hierarchy, built once for the tests of this class (it holds no resolver state).</summary>
public sealed class SignedHierarchyFixture : IDisposable
{
    public SignedHierarchy Hierarchy { get; } = new();

    public void Dispose() => Hierarchy.Dispose();
}

/// <summary>
/// Issue 11, "How it is checked": Unbound from Debian validating over the signed test hierarchy, every
/// scenario of <see cref="SignedHierarchy.Scenarios"/> checked for RCODE, AD and EDE. This is Unbound's
/// column of the table the Portcullis validator is compared with (docs/validation-testbed.md), and the
/// check that the hierarchy itself is what the scenarios say it is.
/// </summary>
public sealed class UnboundValidationScenarioTests(SignedHierarchyFixture fixture, ITestOutputHelper output)
    : IClassFixture<SignedHierarchyFixture>
{
    private SignedHierarchy Hierarchy => fixture.Hierarchy;

    /// <summary>
    /// The EDE Unbound 1.17.1-2+deb12u4 (ede: yes, val-log-level: 2) attaches per scenario, where it
    /// attaches one: all on SERVFAIL. Where <see cref="ValidationScenario.ExpectedEde"/> says otherwise,
    /// the reason is in docs/validation-testbed.md (Unbound sends no EDE with insecure answers: 1, 2 and 27
    /// are optional there).
    /// </summary>
    private static readonly Dictionary<string, int> UnboundEde = new()
    {
        ["expired"] = 7,
        ["not-yet-valid"] = 8,
        ["wrong-ds"] = 9,
        ["no-dnskey"] = 9,
        ["dnskey-absent"] = 9,
        ["bad-signature"] = 6,
        ["rrsig-missing"] = 10,
        ["bad-nsec3-proof"] = 6,
        ["nsec3-missing"] = 6,
        ["nsec-missing"] = 12,
        ["keytrap"] = 6,
    };

    [Fact]
    public void Unbound_answers_every_scenario_secure_insecure_or_bogus_with_its_EDE()
    {
        output.WriteLine($"hierarchy 127.55.{Hierarchy.Subnet}.0/24: keys and signing {Hierarchy.BuildTime.TotalMilliseconds:0} ms "
            + $"(of which dnssec-keygen {Hierarchy.KeygenTime.TotalMilliseconds:0} ms), NSDs up in {Hierarchy.StartTime.TotalMilliseconds:0} ms");
        using var unbound = new SignedHierarchyUnbound(Hierarchy);
        var results = new List<ValidationResult>();
        var failures = new List<string>();
        foreach (var s in SignedHierarchy.Scenarios)
        {
            var cpu = unbound.CpuTime;
            var r = SignedHierarchy.Run(unbound.EndPoint, s);
            results.Add(r);
            if (s.Name == "keytrap")
                output.WriteLine($"keytrap: {r.Rcode} after {r.Elapsed.TotalMilliseconds:0} ms, Unbound CPU {(unbound.CpuTime - cpu).TotalMilliseconds:0} ms "
                    + $"({SignedHierarchy.KeyTrapKeys} colliding keys x {SignedHierarchy.KeyTrapSignatures} forged RRSIGs)");
            if (SignedHierarchy.Check(s, r) is { } why) failures.Add(why);
            int? ede = UnboundEde.TryGetValue(s.Name, out int e) ? e : null;
            if (r.Ede != ede) failures.Add($"{s.Name}: EDE {r.Ede?.ToString() ?? "none"}, Unbound's recorded {ede?.ToString() ?? "none"} {r.EdeText}");
        }
        string table = SignedHierarchy.FormatTable(results);
        output.WriteLine(table);
        Assert.True(failures.Count == 0, string.Join("\n", failures) + "\n\n" + table + "\nUnbound's log:\n" + unbound.Log);
    }

    /// <summary>RFC 4035 §3.2.2: with CD the resolver hands over what it got, bogus or not, and never sets AD on it.</summary>
    [Fact]
    public void With_checking_disabled_Unbound_returns_the_bogus_data_without_AD()
    {
        using var unbound = new SignedHierarchyUnbound(Hierarchy);
        var scenario = SignedHierarchy.Scenarios.Single(s => s.Name == "bad-signature");
        var r = SignedHierarchy.Run(unbound.EndPoint, scenario, "+cd");
        Assert.Equal("NOERROR", r.Rcode);
        Assert.False(r.Ad);
        Assert.Contains("www.bad-sig.test. A 192.0.2.114", r.Answer);
        // Without CD the same name is bogus.
        Assert.Null(SignedHierarchy.Check(scenario, SignedHierarchy.Run(unbound.EndPoint, scenario)));
    }

    /// <summary>
    /// An independent offline validator, ldns-verify-zone (ldnsutils), over each served zone text: the
    /// intact zones verify, the zones broken inside themselves do not. Zones broken only at the parent
    /// (wrong-ds, no-dnskey, unsupported-digest) and bad-nsec3 (a consistent but lying NSEC3 chain)
    /// verify on their own, as they should.
    /// </summary>
    [Fact]
    public void Ldns_verifies_the_intact_zones_and_rejects_the_broken_ones()
    {
        int Verify(string origin) =>
            ExternalProcess.Run("ldns-verify-zone", ["-V", "1", Hierarchy.ServedZoneFile(origin)]).ExitCode;
        string[] intact = [".", "test.", "secure-nsec.test.", "secure-nsec3.test.", "optout.test.", "wild.test.", "ed.test.", "rsa.test.",
            "sub.secure-nsec.test.", "iter.test.", "wrong-ds.test.", "no-dnskey.test.", "unsupported-digest.test.", "bad-nsec3.test."];
        string[] broken = ["expired.test.", "notyet.test.", "bad-sig.test.", "rrsig-missing.test.", "bad-nsec.test.", "nsec3-missing.test.", "dnskey-absent.test."];
        var wrong = intact.Where(z => Verify(z) != 0).Select(z => $"{z} does not verify")
            .Concat(broken.Where(z => Verify(z) == 0).Select(z => $"{z} verifies")).ToList();
        Assert.True(wrong.Count == 0, string.Join("\n", wrong));
    }

    /// <summary>The hierarchy without a resolver: each zone really has the property its scenario relies on.</summary>
    [Fact]
    public void The_signed_zones_are_built_as_the_scenarios_say()
    {
        string Ask(string zone, string name, string type, params string[] options) =>
            ExternalProcess.Run("dig", [$"@{Hierarchy.ZoneAddresses[zone]}", "+norec", "+dnssec", "+tries=1", "+time=3", .. options, name, type]).Stdout;

        // The anchor is the root's KSK, and the root serves it.
        var anchor = File.ReadAllText(Hierarchy.TrustAnchorFile).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["." , "300", "IN", "DS"], anchor[..4]);
        Assert.Contains($"key id = {anchor[4]}", Ask(".", ".", "DNSKEY", "+multi"));
        Assert.Contains(Hierarchy.ZoneAddresses["."].ToString(), File.ReadAllText(Hierarchy.RootHintsFile));

        // test. delegates with DS to signed zones, without DS (NSEC proof) to insecure.test.
        Assert.Matches(@"secure-nsec\.test\.\s+\d+\s+IN\s+DS\s+\d+ 13 2 ", Ask("test.", "secure-nsec.test.", "DS"));
        var noDs = Ask("test.", "insecure.test.", "DS");
        Assert.Contains("status: NOERROR", noDs);
        Assert.Matches(@"insecure\.test\.\s+\d+\s+IN\s+NSEC\s+\S+ NS RRSIG NSEC", noDs);
        Assert.Matches(@"IN\s+DS\s+\d+ 253 2 ", Ask("test.", "unsupported-alg.test.", "DS"));
        Assert.Matches(@"IN\s+DS\s+\d+ 13 200 ", Ask("test.", "unsupported-digest.test.", "DS"));

        // wrong-ds: the DS names the zone's key tag and algorithm, with another digest.
        string KeyTag(string zone) => Regex.Match(Ask(zone, zone, "DNSKEY", "+multi"), @"KSK; alg = \S+ ; key id = (\d+)").Groups[1].Value;
        Assert.Matches($@"IN\s+DS\s+{KeyTag("wrong-ds.test.")} 13 2 ", Ask("test.", "wrong-ds.test.", "DS"));
        Assert.DoesNotMatch($@"IN\s+DS\s+{KeyTag("no-dnskey.test.")} ", Ask("test.", "no-dnskey.test.", "DS"));
        Assert.Contains("ANSWER: 0,", Ask("dnskey-absent.test.", "dnskey-absent.test.", "DNSKEY"));

        // Algorithms, NSEC3 parameters, opt-out.
        Assert.Matches(@"IN\s+DNSKEY\s+257 3 15 ", Ask("ed.test.", "ed.test.", "DNSKEY"));
        Assert.Matches(@"IN\s+DNSKEY\s+257 3 8 ", Ask("rsa.test.", "rsa.test.", "DNSKEY"));
        Assert.Matches(@"IN\s+NSEC3PARAM\s+1 0 0 -", Ask("secure-nsec3.test.", "secure-nsec3.test.", "NSEC3PARAM"));
        Assert.Matches($@"IN\s+NSEC3PARAM\s+1 0 {SignedHierarchy.ManyIterations} -", Ask("iter.test.", "iter.test.", "NSEC3PARAM"));
        Assert.Matches(@"IN\s+NSEC3\s+1 1 0 - ", Ask("optout.test.", "nx.optout.test.", "A"));

        // Signature windows: expired.test's RRSIGs ended in the past, notyet.test's begin in the future.
        string now = DateTime.UtcNow.ToString("yyyyMMddHHmmss", System.Globalization.CultureInfo.InvariantCulture);
        var expired = Regex.Match(Ask("expired.test.", "www.expired.test.", "A"), @"RRSIG\s+A 13 3 300 (\d{14}) (\d{14})");
        Assert.True(string.CompareOrdinal(expired.Groups[1].Value, now) < 0, $"expiration {expired.Groups[1].Value} is not before {now}");
        var notYet = Regex.Match(Ask("notyet.test.", "www.notyet.test.", "A"), @"RRSIG\s+A 13 3 300 (\d{14}) (\d{14})");
        Assert.True(string.CompareOrdinal(notYet.Groups[2].Value, now) > 0, $"inception {notYet.Groups[2].Value} is not after {now}");

        // KeyTrap: many DNSKEYs share one key tag, and www A carries that many RRSIGs all claiming it.
        var keys = Regex.Matches(Ask("keytrap.test.", "keytrap.test.", "DNSKEY", "+tcp", "+multi"), @"ZSK; alg = RSASHA256 ; key id = (\d+)")
            .Select(m => m.Groups[1].Value).ToList();
        Assert.Equal(SignedHierarchy.KeyTrapKeys, keys.Count);
        Assert.Single(keys.Distinct());
        var sigs = Regex.Matches(Ask("keytrap.test.", "www.keytrap.test.", "A", "+tcp"), @"www\.keytrap\.test\.\s+\d+\s+IN\s+RRSIG\s+A 8 3 300 \d{14} \d{14} (\d+) ")
            .Select(m => m.Groups[1].Value).ToList();
        Assert.Equal(SignedHierarchy.KeyTrapSignatures, sigs.Count);
        Assert.Equal(keys[0], Assert.Single(sigs.Distinct()));

        // The deliberately broken denials.
        Assert.Matches(@"IN\s+NSEC3\s+1 0 0 - \S+ A TXT RRSIG", Ask("bad-nsec3.test.", "www.bad-nsec3.test.", "TXT"));
        Assert.DoesNotMatch(@"IN\s+NSEC\s", Ask("bad-nsec.test.", "nx.bad-nsec.test.", "A"));
        Assert.Contains("192.0.2.114", Ask("bad-sig.test.", "www.bad-sig.test.", "A"));
        var unsigned = Ask("rrsig-missing.test.", "www.rrsig-missing.test.", "A");
        Assert.Contains("192.0.2.15", unsigned);
        Assert.DoesNotMatch(@"www\.rrsig-missing\.test\.\s+\d+\s+IN\s+RRSIG", unsigned);
    }
}
