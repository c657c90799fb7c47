using System.Globalization;
using System.Net;
using System.Text;
using Portcullis.Server.Resolution;
using Portcullis.Testing;
using Xunit.Abstractions;

namespace Portcullis.Server.Tests.Resolution;

/// <summary>
/// Issue 9's closing note: cold-cache resolution time over the test hierarchy, Portcullis next to
/// Unbound. Each resolver gets its own fresh <see cref="DnsHierarchy"/> and starts with an empty
/// cache; the scenario table runs in order (rows depend on earlier ones, see
/// <see cref="DnsHierarchy.Scenarios"/>) and every row's time is dig's "Query time". The dead-zone
/// row measures a timeout policy, not resolution speed, so it is reported apart from the totals.
/// The figures go to the test output and to a file in the temp directory; the only assertion is
/// what a user would notice: every row of ours answers as the table expects (times are reported,
/// never asserted: the machine is shared).
/// </summary>
public sealed class ColdResolutionFigures(ITestOutputHelper output)
{
    [Fact]
    public void Cold_cache_resolution_times_over_the_hierarchy_next_to_unbound()
    {
        IReadOnlyList<Row> ours, theirs;
        using (var hierarchy = new DnsHierarchy())
        {
            // As ResolverScenarioTests.The_server_with_this_resolver_answers_every_scenario: the real
            // server with recursion on for 127/8, the hierarchy's root hints, a fresh (cold) cache.
            var config = new Portcullis.Server.Configuration.ServerConfig
            {
                Listen = [$"{hierarchy.ResolverAddress}:53"],
                AllowRecursion = ["127.0.0.0/8"],
            };
            config.Recursion.RootHints = hierarchy.RootHintsFile;
            config.Recursion.DnssecValidation = false;   // an unsigned test hierarchy
            config.Recursion.OutgoingInterface = [hierarchy.ResolverAddress.ToString()];
            IterativeResolver? built = null;
            using var server = new Portcullis.Server.Hosting.DnsServer(config, Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance,
                recursion: (o, t, l) => built = new IterativeResolver(o with { ResolutionTimeout = TimeSpan.FromSeconds(8) }, t, l));
            server.Start();
            Assert.NotNull(built);
            ours = RunAll(hierarchy, new IPEndPoint(hierarchy.ResolverAddress, 53));
        }
        using (var hierarchy = new DnsHierarchy())
        {
            using var unbound = new ResolverUnbound(hierarchy);
            theirs = RunAll(hierarchy, unbound.EndPoint);
        }

        string report = Format(ours, theirs);
        string path = Path.Combine(Path.GetTempPath(),
            $"portcullis-cold-resolution-{DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture)}.txt");
        File.WriteAllText(path, report);
        output.WriteLine(report);
        output.WriteLine($"written to {path}");

        var failures = DnsHierarchy.Scenarios.Zip(ours, (s, r) => DnsHierarchy.Check(s, r.Result)).OfType<string>().ToList();
        Assert.True(failures.Count == 0, string.Join("\n", failures) + "\n\n" + report);
    }

    /// <summary>One row's result and every query (any name) that reached the hierarchy meanwhile, the repeat included.</summary>
    private sealed record Row(ScenarioResult Result, int AllUpstream);

    /// <summary>As <see cref="DnsHierarchy.RunAll"/>, counting all the queries each row cost the hierarchy.</summary>
    private static List<Row> RunAll(DnsHierarchy hierarchy, IPEndPoint resolver)
    {
        var rows = new List<Row>();
        foreach (var s in DnsHierarchy.Scenarios)
        {
            int before = hierarchy.TotalQueries;
            var r = hierarchy.Run(resolver, s);
            rows.Add(new Row(r, hierarchy.TotalQueries - before));
        }
        return rows;
    }

    /// <summary>The row table (ms, upstream queries per resolver), then totals without the dead row, then the dead row.</summary>
    private static string Format(IReadOnlyList<Row> ours, IReadOnlyList<Row> theirs)
    {
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"Cold-cache resolution over the test hierarchy, rows in order, one fresh hierarchy and cache per resolver");
        text.AppendLine(CultureInfo.InvariantCulture, $"(dig's Query time; up: queries for the row's name that reached the hierarchy / all queries it received during the row; load average {LoadAverage()}, {Environment.ProcessorCount} CPUs)");
        text.AppendLine(CultureInfo.InvariantCulture, $"{"row",-22} {"portcullis",-10} {"ms",7} {"up",7}   {"unbound",-10} {"ms",7} {"up",7}  check (ours; unbound)");
        double oursTotal = 0, theirsTotal = 0;
        int oursUp = 0, theirsUp = 0, oursAll = 0, theirsAll = 0, rows = 0;
        string? dead = null;
        for (int i = 0; i < DnsHierarchy.Scenarios.Count; i++)
        {
            var s = DnsHierarchy.Scenarios[i];
            var (a, b) = (ours[i].Result, theirs[i].Result);
            string upA = $"{a.UpstreamQueries}/{ours[i].AllUpstream}", upB = $"{b.UpstreamQueries}/{theirs[i].AllUpstream}";
            string check = $"{DnsHierarchy.Check(s, a) ?? "ok"}; {DnsHierarchy.Check(s, b) ?? "ok"}";
            string line = string.Create(CultureInfo.InvariantCulture,
                $"{s.Name,-22} {a.Rcode,-10} {a.Elapsed.TotalMilliseconds,7:0} {upA,7}   {b.Rcode,-10} {b.Elapsed.TotalMilliseconds,7:0} {upB,7}  {check}");
            if (s.ExpectedRcode == "SERVFAIL")
            {
                // The dead zone: how long each resolver waits before giving up, reported apart.
                dead = line;
                continue;
            }
            text.AppendLine(line);
            oursTotal += a.Elapsed.TotalMilliseconds;
            theirsTotal += b.Elapsed.TotalMilliseconds;
            oursUp += a.UpstreamQueries;
            theirsUp += b.UpstreamQueries;
            oursAll += ours[i].AllUpstream;
            theirsAll += theirs[i].AllUpstream;
            rows++;
        }
        text.AppendLine(CultureInfo.InvariantCulture,
            $"{$"total ({rows} rows)",-22} {"",-10} {oursTotal,7:0} {$"{oursUp}/{oursAll}",7}   {"",-10} {theirsTotal,7:0} {$"{theirsUp}/{theirsAll}",7}  portcullis/unbound time {(theirsTotal > 0 ? (oursTotal / theirsTotal).ToString("0.00", CultureInfo.InvariantCulture) + "x" : "n/a")}");
        if (dead is not null)
        {
            text.AppendLine("dead zone, apart (a timeout policy; Unbound tuned to SERVFAIL, see ResolverUnbound):");
            text.AppendLine(dead);
        }
        return text.ToString();
    }

    private static string LoadAverage()
    {
        try
        {
            return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "unknown";
        }
    }
}
