using Portcullis.Testing;
using Xunit.Abstractions;

namespace Portcullis.Server.Tests.Resolution;

/// <summary>
/// Unbound from Debian resolving over the test hierarchy (issue 9, "How it is checked"): checks the
/// hierarchy itself, and is the baseline the Portcullis resolver is compared with row by row. The
/// table runs in order against one Unbound with a cold cache (rows depend on earlier ones).
/// </summary>
public sealed class HierarchyUnboundTests(ITestOutputHelper output)
{
    [Fact]
    public void Unbound_answers_every_scenario_of_the_hierarchy_as_expected()
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        using var hierarchy = new DnsHierarchy();
        output.WriteLine($"hierarchy 127.53.{hierarchy.Subnet}.0/24 up in {clock.ElapsedMilliseconds} ms");
        clock.Restart();
        using var unbound = new ResolverUnbound(hierarchy);
        output.WriteLine($"unbound up in {clock.ElapsedMilliseconds} ms");
        var results = hierarchy.RunAll(unbound.EndPoint);
        output.WriteLine(DnsHierarchy.FormatTable(results));
        var failures = DnsHierarchy.Scenarios.Zip(results, DnsHierarchy.Check).OfType<string>().ToList();
        Assert.True(failures.Count == 0, string.Join("\n", failures) + "\n\n" + DnsHierarchy.FormatTable(results));
    }

    /// <summary>The hierarchy without a resolver: each odd server misbehaves exactly as designed.</summary>
    [Fact]
    public void The_hierarchy_servers_behave_as_designed()
    {
        using var hierarchy = new DnsHierarchy();
        DigResult Ask(int host, string name, string type, params string[] options)
        {
            var r = ExternalProcess.Run("dig", [$"@{hierarchy.Address(host)}", "+norecurse", "+tries=1", "+time=2", .. options, name, type]);
            return DigResult.Parse(r.Stdout + r.Stderr);
        }

        var root = Ask(1, ".", "NS");
        Assert.Equal("NOERROR", root.Status);
        Assert.Contains("aa", root.Flags);
        Assert.Contains(hierarchy.RootHints[0].Address.ToString(), root.Text);
        Assert.Contains(hierarchy.RootHints[0].Address.ToString(), File.ReadAllText(hierarchy.RootHintsFile));
        var referral = Ask(2, "www.sld.test.", "A");
        Assert.Equal("NOERROR", referral.Status);
        Assert.DoesNotContain("aa", referral.Flags);
        Assert.Contains("ns1.sld.test.", referral.Text);
        // The lame server of lame.test. refuses; the good one answers.
        Assert.Equal("REFUSED", Ask(4, "www.lame.test.", "A").Status);
        Assert.Contains("192.0.2.70", Ask(5, "www.lame.test.", "A").Text);
        // tcponly: TC=1 and an empty answer over UDP, the data over TCP.
        var udp = Ask(7, "www.tcponly.test.", "A", "+ignore", "+notcp");
        Assert.Contains("tc", udp.Flags);
        Assert.DoesNotContain("192.0.2.80", udp.Text);
        Assert.Contains("192.0.2.80", Ask(7, "www.tcponly.test.", "A", "+tcp").Text);
        // evil: the poison is really offered.
        var evil = Ask(8, "www.evil.test.", "A");
        Assert.Contains("www.sld.test.", evil.Text);
        Assert.Contains(EvilZone.PoisonAddress, evil.Text);
        Assert.Matches(@"sld\.test\.\s+\d+\s+IN\s+NS\s+ns\.evil\.test\.", evil.Text);
        // dead: one address never answers, nothing listens on the other.
        Assert.Equal("TIMEOUT", ScenarioResult.ParseDig("dead", Ask(250, "www.dead.test.", "A").Text, TimeSpan.Zero).Rcode);
        Assert.Equal("TIMEOUT", ScenarioResult.ParseDig("dead", Ask(251, "www.dead.test.", "A").Text, TimeSpan.Zero).Rcode);
        // Counting: the servers saw what was asked.
        Assert.Equal(2, hierarchy.Servers["tcponly"].QueriesFor("WWW.tcponly.test"));
        Assert.Equal(1, hierarchy.Servers["dead-silent"].QueriesFor("www.dead.test."));
        Assert.Equal(2, hierarchy.Servers["other"].QueriesFor("www.lame.test.") + hierarchy.Servers["sld"].QueriesFor("www.lame.test."));
    }

    [Fact]
    public void The_evil_server_injects_and_unbound_neither_serves_nor_caches_it()
    {
        using var hierarchy = new DnsHierarchy();
        using var unbound = new ResolverUnbound(hierarchy);
        var evil = DnsHierarchy.Scenarios.Single(s => s.Name == "evil");
        var victim = DnsHierarchy.Scenarios.Single(s => s.Name == "after-evil-victim");
        var newName = DnsHierarchy.Scenarios.Single(s => s.Name == "after-evil-delegation");

        Assert.Null(DnsHierarchy.Check(evil, hierarchy.Run(unbound.EndPoint, evil)));
        // The evil server was asked, so the poison was offered...
        Assert.True(hierarchy.Servers["evil"].QueriesFor("www.evil.test.") >= 1);
        // ...and refused: the victim name is resolved at sld.test's real server, which was asked for it.
        Assert.Null(DnsHierarchy.Check(victim, hierarchy.Run(unbound.EndPoint, victim)));
        Assert.True(hierarchy.Servers["sld"].QueriesFor("victim.sld.test.") >= 1);
        Assert.Null(DnsHierarchy.Check(newName, hierarchy.Run(unbound.EndPoint, newName)));
        Assert.Equal(0, hierarchy.Servers["evil"].QueriesFor("victim.sld.test.") + hierarchy.Servers["evil"].QueriesFor("mail.sld.test."));
    }

    [Fact]
    public void Negative_answers_are_cached_the_second_query_sends_nothing_upstream()
    {
        using var hierarchy = new DnsHierarchy();
        using var unbound = new ResolverUnbound(hierarchy);
        foreach (var s in DnsHierarchy.Scenarios.Where(s => s.RepeatFromCache))
        {
            var r = hierarchy.Run(unbound.EndPoint, s);
            output.WriteLine(DnsHierarchy.FormatTable([r]));
            Assert.Null(DnsHierarchy.Check(s, r));
            Assert.Equal(0, r.RepeatUpstreamQueries);
        }
    }

    [Fact]
    public void The_tcp_only_server_truncates_udp_and_answers_over_tcp()
    {
        using var hierarchy = new DnsHierarchy();
        using var unbound = new ResolverUnbound(hierarchy);
        var s = DnsHierarchy.Scenarios.Single(s => s.Name == "tcp-only");
        Assert.Null(DnsHierarchy.Check(s, hierarchy.Run(unbound.EndPoint, s)));
        var queries = hierarchy.Servers["tcponly"].Queries.Where(q => q.Name == "www.tcponly.test.").ToList();
        Assert.Contains(queries, q => !q.Tcp);
        Assert.Contains(queries, q => q.Tcp);
    }
}
