using System.Globalization;
using System.Text;
using Xunit.Abstractions;

namespace Portcullis.Server.Tests.Differential;

/// <summary>
/// Issue 3's differential test: the same zone files served by Portcullis, Knot DNS and NSD, the
/// same generated queries asked of each, and every answer compared (rcode, flags, the three
/// sections as sets). The agreement is written to the test output, before and after the allowed
/// differences; after them it must be complete, but for the named known differences.
/// </summary>
public sealed class DifferentialTests(DifferentialFixture fixture, ITestOutputHelper output) : IClassFixture<DifferentialFixture>
{
    /// <summary>How many unexplained differences the failure message and output show in full.</summary>
    private const int ShowAtMost = 25;

    [Fact]
    public void Portcullis_answers_as_Knot_DNS_does() => Compare("portcullis", DifferentialFixture.Knot);

    [Fact]
    public void Portcullis_answers_as_NSD_does() => Compare("portcullis", DifferentialFixture.Nsd);

    /// <summary>
    /// The allowed differences are real implementation freedom, not excuses made for Portcullis:
    /// the two peers, compared by the same rules (Knot in Portcullis's place), agree completely.
    /// </summary>
    [Fact]
    public void Knot_DNS_and_NSD_agree_with_each_other_by_the_same_rules() => Compare(DifferentialFixture.Knot, DifferentialFixture.Nsd);

    private void Compare(string ours, string peer)
    {
        bool portcullis = ours == "portcullis";
        var comparer = new ResponseComparer(fixture.Zones);
        var mine = fixture.Answers[ours];
        var theirs = fixture.Answers[peer];
        var results = new List<Comparison>(fixture.Queries.Count);
        for (int i = 0; i < fixture.Queries.Count; i++)
        {
            var c = comparer.Compare(fixture.Queries[i], mine[i], theirs[i]);
            if (portcullis && !c.AgreesAfterAllowed)
                c.Known = KnownDifferences.List.FirstOrDefault(k => (k.Peer is null || k.Peer == peer) && Covers(k, c.Query));
            results.Add(c);
        }

        int total = results.Count;
        int full = results.Count(c => c.FullyAgrees);
        int afterAllowed = results.Count(c => c.AgreesAfterAllowed);
        var known = results.Where(c => !c.AgreesAfterAllowed && c.Known is not null).ToList();
        var unexplained = results.Where(c => !c.AgreesAfterAllowed && c.Known is null).ToList();

        var report = new StringBuilder();
        report.AppendLine(CultureInfo.InvariantCulture, $"{ours} vs {peer}: {total} queries ({results.Count(c => c.Query.Tcp)} over TCP), zones {string.Join(", ", fixture.PeerZones.Select(z => z.Origin))}, seed {QueryGenerator.Seed}");
        report.AppendLine(CultureInfo.InvariantCulture,
            $"  UDP answers with TC=1: {ours} {results.Count(c => !c.Query.Tcp && c.Portcullis.Message?.Header.Truncated == true)}, {peer} {results.Count(c => !c.Query.Tcp && c.Peer.Message?.Header.Truncated == true)}; "
            + $"re-asked over TCP: {results.Count(c => c.Query.Why.StartsWith("TCP retry", StringComparison.Ordinal))}; RD=1 on {results.Count(c => c.Query.RecursionDesired)}; EDNS on {results.Count(c => c.Query.Edns)}");
        report.AppendLine(CultureInfo.InvariantCulture, $"  fully agreeing:                {full,5} / {total} = {Percent(full, total)}");
        report.AppendLine(CultureInfo.InvariantCulture, $"  agreeing after allowed diffs:  {afterAllowed,5} / {total} = {Percent(afterAllowed, total)}");
        report.AppendLine(CultureInfo.InvariantCulture, $"  known differences (to fix):    {known.Count,5}");
        report.AppendLine(CultureInfo.InvariantCulture, $"  unexplained differences:       {unexplained.Count,5}");
        report.AppendLine("Allowed differences used (queries):");
        foreach (var rule in AllowedDifferences.All)
            report.AppendLine(CultureInfo.InvariantCulture, $"  {results.Count(c => c.AllowedUsed.Contains(rule)),5}  {rule}");
        var caseNotes = results.SelectMany(c => c.CaseNotes.Select(n => $"{c.Query}: {n}")).ToList();
        report.AppendLine(CultureInfo.InvariantCulture, $"Owner-case differences (not counted): {caseNotes.Count} records in {results.Count(c => c.CaseNotes.Count > 0)} answers");
        foreach (var note in caseNotes.Take(5)) report.AppendLine("  " + note);
        foreach (var group in known.GroupBy(c => c.Known!))
            report.AppendLine(CultureInfo.InvariantCulture, $"KNOWN {group.Key.Id}: {group.Count()} queries, e.g. {group.First().Query.Name} {Protocol.Records.RecordTypes.ToText(group.First().Query.Type)} — {group.Key.Reason}");
        foreach (var c in unexplained.Take(ShowAtMost)) report.Append(Describe(c, ours, peer));
        output.WriteLine(report.ToString());

        var stale = KnownDifferences.List.Where(k => portcullis && (k.Peer is null || k.Peer == peer) && !known.Any(c => c.Known == k)).ToList();
        Assert.True(stale.Count == 0,
            "Known differences that no longer occur (remove them from KnownDifferences.List): "
            + string.Join("; ", stale.Select(k => k.Id)));
        Assert.True(unexplained.Count == 0,
            $"{unexplained.Count} of {total} {ours} answers differ from {peer}'s beyond the allowed differences:\n"
            + string.Concat(unexplained.Take(ShowAtMost).Select(c => Describe(c, ours, peer))));
    }

    private bool Covers(KnownDifference k, DifferentialQuery q) =>
        DifferentialZone.For(fixture.Zones, q.Name) is { } zone && k.Applies(q, zone, fixture.Zones);

    private static string Percent(int part, int total) => (100.0 * part / total).ToString("0.00", CultureInfo.InvariantCulture) + " %";

    private static string Describe(Comparison c, string ours, string peer)
    {
        var sb = new StringBuilder();
        sb.Append("\n").Append(c.Query).Append('\n');
        foreach (var d in c.Remaining) sb.Append("  - ").Append(d).Append('\n');
        sb.Append("  ").Append(ours).Append(":\n").Append(ResponseComparer.Show(c.Portcullis));
        sb.Append("  ").Append(peer).Append(":\n").Append(ResponseComparer.Show(c.Peer));
        return sb.ToString();
    }
}
