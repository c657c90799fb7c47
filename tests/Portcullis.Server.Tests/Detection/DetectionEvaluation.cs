using System.Diagnostics;
using System.Globalization;
using System.Text;
using Portcullis.Server.Detection;
using Portcullis.Testing.TrafficSets;

namespace Portcullis.Server.Tests.Detection;

/// <summary>
/// Replays a labelled traffic set (query-log JSON lines, interleaved by time as one resolver sees
/// it) into the detector and measures it per class: domains alerted over domains seen (recall for
/// the malicious classes, false positives per 10,000 domains for the benign ones), precision over
/// all alerts, and the same for clients. The synthetic set comes from <see cref="TrafficGenerator"/>;
/// captures (*.jsonl under Detection/Data, e.g. the iodine helper's) are replayed beside it.
/// </summary>
public sealed class DetectionEvaluation
{
    public sealed record ClassRow(string Class, bool Malicious, int Domains, int Alerted, double MedianQueriesToAlert);

    public sealed record Result(string Name, IReadOnlyList<ClassRow> Rows, int UnlabelledAlerts, IReadOnlyList<string> FalsePositives,
        int MaliciousClients, int MaliciousClientsAlerted, int BenignClients, int BenignClientsAlerted, long Events, double NanosecondsPerEvent, double CpuNanosecondsPerEvent, long TableBytes)
    {
        public int BenignDomains => Rows.Where(r => !r.Malicious).Sum(r => r.Domains);
        public int BenignAlerted => Rows.Where(r => !r.Malicious).Sum(r => r.Alerted) + UnlabelledAlerts;
        public double FalsePositivesPer10k => BenignDomains == 0 ? 0 : BenignAlerted * 10000.0 / BenignDomains;
        public double Precision
        {
            get
            {
                int tp = Rows.Where(r => r.Malicious).Sum(r => r.Alerted);
                return tp + BenignAlerted == 0 ? 1 : (double)tp / (tp + BenignAlerted);
            }
        }

        public string Table()
        {
            var sb = new StringBuilder();
            sb.AppendLine(CultureInfo.InvariantCulture, $"== {Name}: {Events:N0} queries replayed, {NanosecondsPerEvent:F0} ns per query in the detector (wall), {CpuNanosecondsPerEvent:F0} ns CPU; tables {TableBytes / 1048576.0:F1} MiB");
            sb.AppendLine("class               kind       domains  alerted  recall / FP per 10k   median queries to alert");
            foreach (var r in Rows)
            {
                string measure = r.Malicious
                    ? (r.Domains == 0 ? "-" : ((double)r.Alerted / r.Domains).ToString("F3", CultureInfo.InvariantCulture)) + " recall"
                    : (r.Domains == 0 ? 0 : r.Alerted * 10000.0 / r.Domains).ToString("F1", CultureInfo.InvariantCulture) + " FP/10k";
                sb.AppendLine(CultureInfo.InvariantCulture,
                    $"{r.Class,-19} {(r.Malicious ? "malicious" : "benign"),-10} {r.Domains,7}  {r.Alerted,7}  {measure,-20}  {(double.IsNaN(r.MedianQueriesToAlert) ? "-" : r.MedianQueriesToAlert.ToString("F0", CultureInfo.InvariantCulture)),6}");
            }
            if (UnlabelledAlerts > 0) sb.AppendLine(CultureInfo.InvariantCulture, $"unlabelled alerts: {UnlabelledAlerts}");
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"benign: {BenignAlerted} of {BenignDomains} domains alerted = {FalsePositivesPer10k:F2} per 10,000; precision {Precision:F3}");
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"clients: {MaliciousClientsAlerted}/{MaliciousClients} carrying malicious traffic alerted; {BenignClientsAlerted}/{BenignClients} benign clients alerted");
            foreach (var fp in FalsePositives.Take(10)) sb.AppendLine("  FP " + fp);
            return sb.ToString();
        }
    }

    /// <summary>The traffic set: generated, written in the query-log format and read back, plus the captures found.</summary>
    public sealed class TrafficSet
    {
        public required List<QueryLogRecord> Records { get; init; }
        /// <summary>Label keys (registered domains or zones; a key labels everything under it) → class.</summary>
        public required Dictionary<string, string> Labels { get; init; }
        public required List<string> Captures { get; init; }
    }

    /// <summary>Builds the set: the generator's traffic through a JSON-lines file, and every capture under <paramref name="dataDirectory"/>.</summary>
    public static TrafficSet Build(TrafficGenerator generator, string workDirectory, string? dataDirectory, PublicSuffixList psl)
    {
        generator.Generate();
        Directory.CreateDirectory(workDirectory);
        string jsonl = Path.Combine(workDirectory, "synthetic.jsonl"), labelsFile = Path.Combine(workDirectory, "synthetic.labels");
        generator.Write(jsonl, labelsFile);
        var records = QueryLogFormat.ReadFile(jsonl).ToList();
        var labels = ReadLabels(labelsFile);
        var captures = new List<string>();
        if (dataDirectory is not null && Directory.Exists(dataDirectory))
        {
            int n = 0;
            foreach (var file in Directory.GetFiles(dataDirectory, "*.jsonl").Order(StringComparer.Ordinal))
            {
                var capture = QueryLogFormat.ReadFile(file).ToList();
                if (capture.Count == 0) continue;
                n++;
                // Placed into the synthetic timeline (starting 20 minutes in, 7 minutes apart), sent
                // by one of the generator's browsing clients (an infected host also browses), and
                // each capture under a registered domain of its own (the last characters of its
                // first label replaced by the capture's number: same length, so no name grows past
                // 255 octets), so that each capture counts as one tunnel domain.
                var shift = generator.Start + TimeSpan.FromMinutes(20 + 7 * n) - capture[0].Time;
                var client = System.Net.IPAddress.Parse(TrafficGenerator.ClientAddress(n * 37 % generator.Clients)).GetAddressBytes();
                foreach (var r in capture) records.Add(r with { Time = r.Time + shift, Client = client, Qname = Rename(psl, r.Qname, n) });
                var own = Path.ChangeExtension(file, ".labels");
                var name = Path.GetFileNameWithoutExtension(file);
                if (File.Exists(own)) foreach (var (k, v) in ReadLabels(own)) labels[k] = v;
                else
                {
                    // No label file: a capture named after a tunnel tool is tunnel traffic, every domain in it.
                    string cls = name.StartsWith("iodine", StringComparison.OrdinalIgnoreCase) ? "tunnel-iodine" : "tunnel-" + name;
                    foreach (var r in capture)
                        if (RegisteredDomain(psl, Rename(psl, r.Qname, n)) is { } rd) labels.TryAdd(rd, cls);
                }
                captures.Add($"{Path.GetFileName(file)} ({capture.Count} queries)");
            }
        }
        records.Sort((a, b) => a.Time.CompareTo(b.Time));
        return new TrafficSet { Records = records, Labels = labels, Captures = captures };
    }

    /// <summary>The name with the first label of its registered domain ending in the number <paramref name="n"/> instead.</summary>
    static byte[] Rename(PublicSuffixList psl, byte[] qname, int n)
    {
        int off = psl.RegisteredDomainOffset(qname);
        if (off < 0) return qname;
        var tag = n.ToString(CultureInfo.InvariantCulture);
        int len = qname[off];
        if (len < tag.Length) return qname;
        var copy = (byte[])qname.Clone();
        for (int i = 0; i < tag.Length; i++) copy[off + 1 + len - tag.Length + i] = (byte)tag[i];
        return copy;
    }

    static Dictionary<string, string> ReadLabels(string path)
    {
        var labels = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var line in File.ReadLines(path))
        {
            var parts = line.Split('\t', ' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length == 2 && !line.StartsWith('#')) labels[parts[0].TrimEnd('.')] = parts[1];
        }
        return labels;
    }

    static string? RegisteredDomain(PublicSuffixList psl, byte[] qname)
    {
        int off = psl.RegisteredDomainOffset(qname);
        return off < 0 ? null : NameHash.ToText(qname.AsSpan(off)).TrimEnd('.');
    }

    /// <summary>The label of a domain: that of the longest label key equal to it or above it.</summary>
    static string? LabelOf(Dictionary<string, string> labels, string domain)
    {
        for (string d = domain; ; )
        {
            if (labels.TryGetValue(d, out var l)) return l;
            int dot = d.IndexOf('.');
            if (dot < 0) return null;
            d = d[(dot + 1)..];
        }
    }

    /// <summary>Replays the set into a fresh detector with <paramref name="options"/> and scores it.</summary>
    public static Result Run(string name, TrafficSet set, DetectorOptions options, PublicSuffixList psl)
    {
        // Ground truth per registered domain (as the PSL groups names) and per client.
        var domainClass = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var clientMalicious = new Dictionary<string, bool>();
        var rdOf = new string?[set.Records.Count];
        for (int i = 0; i < set.Records.Count; i++)
        {
            var r = set.Records[i];
            var rd = RegisteredDomain(psl, r.Qname);
            rdOf[i] = rd;
            if (rd is null) continue;
            var cls = LabelOf(set.Labels, rd) ?? "unlabelled";
            domainClass.TryAdd(rd, cls);
            var client = new System.Net.IPAddress(r.Client).ToString();
            clientMalicious[client] = (clientMalicious.TryGetValue(client, out var m) && m) || TrafficGenerator.IsMalicious(cls);
        }

        // Timing: a warm-up pass, then the best of two timed passes (the machine is shared).
        double ns = double.MaxValue, cpuNs = double.MaxValue;
        for (int pass = 0; pass < 3; pass++)
        {
            var timed = new TunnelDetector(options, psl, hashSeed: 12345);
            var cpu = Environment.CpuUsage.UserTime + Environment.CpuUsage.PrivilegedTime;
            var sw = Stopwatch.StartNew();
            foreach (var r in set.Records) r.ReplayTo(timed);
            sw.Stop();
            var used = Environment.CpuUsage.UserTime + Environment.CpuUsage.PrivilegedTime - cpu;
            if (pass > 0)
            {
                ns = Math.Min(ns, sw.Elapsed.TotalNanoseconds / Math.Max(1, set.Records.Count));
                cpuNs = Math.Min(cpuNs, used.TotalNanoseconds / Math.Max(1, set.Records.Count));
            }
        }
        var alerts = new List<DetectorAlert>();
        var detector = new TunnelDetector(options, psl, hashSeed: 12345) { AlertRaised = alerts.Add };
        foreach (var r in set.Records) r.ReplayTo(detector);

        // Queries each domain had seen when it first alerted.
        var alertTimes = new Dictionary<string, DateTime>(StringComparer.OrdinalIgnoreCase);
        foreach (var a in alerts) if (a.Kind == "domain") alertTimes.TryAdd(a.Domain!.TrimEnd('.'), a.Time);
        var queriesToAlert = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        for (int i = 0; i < set.Records.Count; i++)
            if (rdOf[i] is { } rd && alertTimes.TryGetValue(rd, out var at) && set.Records[i].Time <= at)
                queriesToAlert[rd] = queriesToAlert.GetValueOrDefault(rd) + 1;

        var rows = new List<ClassRow>();
        var classes = TrafficGenerator.MaliciousClasses.Concat(domainClass.Values.Where(TrafficGenerator.IsMalicious).Distinct().Order())
            .Concat(TrafficGenerator.BenignClasses).Distinct();
        var falsePositives = new List<string>();
        int unlabelled = 0;
        foreach (var d in alertTimes.Keys)
        {
            var cls = domainClass.GetValueOrDefault(d) ?? LabelOf(set.Labels, d) ?? "unlabelled";
            if (cls == "unlabelled") unlabelled++;
            if (!TrafficGenerator.IsMalicious(cls))
            {
                var a = alerts.First(x => x.Kind == "domain" && x.Domain!.TrimEnd('.') == d);
                falsePositives.Add($"{d} ({cls}): score {a.Score}, {a.Queries} q, {a.UniqueNames} names, suspicion {a.MeanSuspicion}, info {a.InfoBytes} B, types {a.TypeShare}, {a.Clients} clients");
            }
        }
        foreach (var cls in classes)
        {
            var domains = domainClass.Where(kv => kv.Value == cls).Select(kv => kv.Key).ToList();
            var alerted = domains.Where(alertTimes.ContainsKey).ToList();
            var counts = alerted.Select(d => (double)queriesToAlert.GetValueOrDefault(d)).Order().ToList();
            rows.Add(new ClassRow(cls, TrafficGenerator.IsMalicious(cls), domains.Count, alerted.Count, counts.Count == 0 ? double.NaN : counts[counts.Count / 2]));
        }
        var alertedClients = alerts.Where(a => a.Kind == "client").Select(a => a.Client!).ToHashSet();
        return new Result(name, rows, unlabelled, falsePositives,
            clientMalicious.Count(c => c.Value), clientMalicious.Count(c => c.Value && alertedClients.Contains(c.Key)),
            clientMalicious.Count(c => !c.Value), clientMalicious.Count(c => !c.Value && alertedClients.Contains(c.Key)),
            set.Records.Count, ns, cpuNs, TunnelDetector.MemoryBytes(options));
    }

    /// <summary>The folder of captures in the source tree (tests/Portcullis.Server.Tests/Detection/Data), found from the test binaries.</summary>
    public static string? DataDirectory()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "Detection", "Data");
            if (Directory.Exists(candidate) && File.Exists(Path.Combine(dir.FullName, "Portcullis.Server.Tests.csproj"))) return candidate;
            candidate = Path.Combine(dir.FullName, "tests", "Portcullis.Server.Tests", "Detection", "Data");
            if (Directory.Exists(candidate)) return candidate;
        }
        return null;
    }
}
