using System.Diagnostics;
using System.Globalization;
using System.Text;
using Portcullis.Protocol.Names;
using Portcullis.Server.Policy;
using Xunit;
using Xunit.Abstractions;

namespace Portcullis.Server.Tests.Policy;

/// <summary>
/// What a large block list costs: a hosts-format list of 500,000 names read and compiled (time and
/// managed memory of the snapshot), and the time per lookup on the receive thread for names that
/// hit exactly, hit by a subdomain, and miss. Figures go to the test output, never asserted (the
/// machine is shared); the assertions are what a user would notice: every listed name and its
/// subdomains are blocked, other names are not, and lookups allocate nothing.
/// </summary>
public sealed class PolicyFigures(ITestOutputHelper output)
{
    [Fact]
    public void A_half_million_name_list_loads_and_matches()
    {
        const int count = 500_000;
        string file = Path.Combine(Path.GetTempPath(), $"portcullis-rpz-figures-{Environment.ProcessId}.txt");
        try
        {
            using (var w = new StreamWriter(file))
            {
                w.WriteLine("# generated block list");
                for (int i = 0; i < count; i++) w.WriteLine($"0.0.0.0 ads{i.ToString(CultureInfo.InvariantCulture)}.tracker{i % 997}.example");
            }
            long memoryBefore = GC.GetTotalMemory(forceFullCollection: true);
            var clock = Stopwatch.StartNew();
            var source = PolicySources.ReadListFile("big", file, PolicyAction.Nxdomain);
            var read = clock.Elapsed;
            long memoryRead = GC.GetTotalMemory(forceFullCollection: true);
            clock.Restart();
            var policy = ResponsePolicy.Build([new PolicyLayer(source)]);
            var compiled = clock.Elapsed;
            long memoryBoth = GC.GetTotalMemory(forceFullCollection: true);
            GC.KeepAlive(source);
            GC.KeepAlive(policy);

            var exact = DnsName.Parse("ads123456.tracker825.example.").Wire.ToArray();
            var below = DnsName.Parse("a.b.c.ads99.tracker99.example.").Wire.ToArray();
            var miss = DnsName.Parse("www.some.unlisted.domain.example.").Wire.ToArray();
            Assert.True(policy.TryMatch(exact, out var hit) && hit.Action == PolicyAction.Nxdomain && !hit.Wildcard);
            Assert.True(policy.TryMatch(below, out hit) && hit.Wildcard);
            Assert.False(policy.TryMatch(miss, out _));

            const int rounds = 1_000_000;
            var report = new StringBuilder();
            report.AppendLine(CultureInfo.InvariantCulture, $"{count:N0} names (hosts format): read {read.TotalMilliseconds:F0} ms (kept: ~{(memoryRead - memoryBefore) / 1048576.0:F1} MiB), "
                + $"compiled {compiled.TotalMilliseconds:F0} ms ({policy.TriggerCount:N0} triggers, snapshot ~{(memoryBoth - memoryRead) / 1048576.0:F1} MiB)");
            foreach (var (label, name) in new[] { ("exact hit", exact), ("hit 3 labels below", below), ("miss, 5 labels", miss) })
                for (int i = 0; i < rounds; i++) policy.TryMatch(name, out _);   // warm-up (tiered JIT)
            foreach (var (label, name) in new[] { ("exact hit", exact), ("hit 3 labels below", below), ("miss, 5 labels", miss) })
            {
                long allocated = GC.GetAllocatedBytesForCurrentThread();
                clock.Restart();
                for (int i = 0; i < rounds; i++) policy.TryMatch(name, out _);
                double ns = clock.Elapsed.TotalNanoseconds / rounds;
                Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - allocated);
                report.AppendLine(CultureInfo.InvariantCulture, $"TryMatch {label}: {ns:F0} ns");
            }
            var (longest, mean) = policy.ProbeLengths();
            report.AppendLine(CultureInfo.InvariantCulture, $"hash table: {mean:F2} probes per trigger on average, {longest} at most");
            output.WriteLine(report.ToString());
            File.WriteAllText(Path.Combine(Path.GetTempPath(), "portcullis-rpz-figures.txt"), report.ToString());
        }
        finally
        {
            File.Delete(file);
        }
    }
}
