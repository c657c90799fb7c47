using System.Diagnostics.Metrics;
using System.Text.Json;
using Portcullis.Protocol.Records;
using Portcullis.Server.Configuration;
using Portcullis.Server.Detection;

namespace Portcullis.Server.Tests.Detection;

/// <summary>The detector's parts: registered domains, name features, the query-log reader, actions, bounds, alerts, configuration.</summary>
public sealed class DetectorTests
{
    static readonly Lazy<PublicSuffixList> Psl = new(() => PublicSuffixList.Load(PublicSuffixList.DebianPath));
    static readonly DateTime T0 = new(2026, 11, 30, 1, 0, 0, DateTimeKind.Utc);
    static readonly byte[] Client = [10, 1, 2, 3];

    static byte[] W(string name) => QueryLogFormat.NameToWire(name);

    [Fact]
    public void Registered_domains_match_every_vector_of_the_publicsuffix_package()
    {
        // Debian's publicsuffix ships the list's own test vectors (CC0): checkPublicSuffix('name', 'expected').
        var vectors = File.ReadAllLines("/usr/share/doc/publicsuffix/examples/test_psl.txt")
            .Where(l => l.StartsWith("checkPublicSuffix(", StringComparison.Ordinal))
            .Select(l => l["checkPublicSuffix(".Length..l.LastIndexOf(')')].Split(", "))
            .Select(p => (Name: p[0] == "null" ? null : p[0].Trim('\''), Expected: p[1] == "null" ? null : p[1].Trim('\'')))
            .ToList();
        Assert.True(vectors.Count > 60);
        var failures = new List<string>();
        foreach (var (name, expected) in vectors)
        {
            if (name is null || name.StartsWith('.')) continue;       // not names a DNS query can carry
            string? got;
            try { got = Psl.Value.RegisteredDomain(name); }
            catch (ArgumentException) { got = null; }
            if (got != expected?.ToLowerInvariant() && !(expected is not null && got == new System.Globalization.IdnMapping().GetAscii(expected)))
                failures.Add($"{name}: expected {expected ?? "null"}, got {got ?? "null"}");
        }
        Assert.Empty(failures);
        // The private section splits hosting customers into their own domains.
        Assert.Equal("evil.duckdns.org", Psl.Value.RegisteredDomain("a.b.evil.duckdns.org"));
        Assert.Equal("example.co.uk", Psl.Value.RegisteredDomain("WWW.Example.CO.UK"));
    }

    [Fact]
    public void A_bad_public_suffix_list_is_reported_with_its_file_and_line()
    {
        var e = Assert.Throws<FormatException>(() => PublicSuffixList.Parse(["// comment", "com", "foo.*.bar"], "psl.dat"));
        Assert.StartsWith("psl.dat:3:", e.Message);
        Assert.Contains("/nonexistent.dat", Assert.Throws<FormatException>(() => PublicSuffixList.Load("/nonexistent.dat")).Message);
    }

    [Fact]
    public void Encoded_names_score_as_suspicious_and_ordinary_hosts_do_not()
    {
        LexicalFeatures F(string name)
        {
            var w = W(name);
            return LexicalFeatures.Of(w, Psl.Value.RegisteredDomainOffset(w));
        }
        Assert.Equal(0, F("www.example.com.").Suspicion);
        Assert.True(F("static-eu-west-2.cdn.example.com.").Suspicion < 0.1);
        Assert.Equal(0, F("aaaa.example.com.").Entropy);
        var hex = F("0.4f6e2a9b1c3d5e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f.x1y2.evil.com.");
        Assert.True(!hex.HexOnly && hex.BitsPerChar == 4 && hex.Suspicion > 0.8, $"hex chunk scored {hex.Suspicion}");
        var b32 = F("mfrggzdfmztwq2lknnwg23tpobyxe43uov3ho6dzpjqwe3dsmfzwk3tu.evil.com.");
        Assert.True(b32.Suspicion > 0.8 && b32.BitsPerChar == 5, $"base32 scored {b32.Suspicion}, {b32.BitsPerChar} bits");
        var iodine = F("vaa\\200\\201\\202xyz.t.evil.com.");
        Assert.True(iodine.NonLdh);
        Assert.Equal(1, iodine.Suspicion);
    }

    [Fact]
    public void The_query_log_format_round_trips_with_escaped_names()
    {
        const string line = "{\"time\":\"2026-11-30T06:01:02.123456Z\",\"client\":\"127.0.0.1\",\"port\":53211,\"proto\":\"udp\",\"qname\":\"www.example.test.\",\"qtype\":\"A\",\"qclass\":\"IN\",\"rcode\":\"NOERROR\",\"flags\":\"qr rd ra\",\"qsize\":40,\"rsize\":56,\"latency_us\":12,\"policy\":\"none\"}";
        var r = QueryLogFormat.Parse(line);
        Assert.Equal(new DateTime(2026, 11, 30, 6, 1, 2, DateTimeKind.Utc).AddTicks(1234560), r.Time);
        Assert.Equal([127, 0, 0, 1], r.Client);
        Assert.Equal(W("www.example.test."), r.Qname);
        Assert.Equal(line, QueryLogFormat.Format(r));

        // \DDD and \c escapes (then JSON-escaped): a dot inside a label, a quote, binary octets.
        byte[] wire = [5, (byte)'a', (byte)'.', (byte)'"', 0xBC, 0x00, 3, (byte)'c', (byte)'o', (byte)'m', 0];
        var escaped = QueryLogFormat.Format(r with { Qname = wire, QType = (RecordType)65399 });
        Assert.Contains("\"qname\":\"a\\\\.\\\\\\\"\\\\188\\\\000.com.\"", escaped);
        Assert.Contains("\"qtype\":\"TYPE65399\"", escaped);
        var back = QueryLogFormat.Parse(escaped);
        Assert.Equal(wire, back.Qname);
        Assert.Equal((RecordType)65399, back.QType);

        var bad = Path.GetTempFileName();
        try
        {
            File.WriteAllLines(bad, [line, "{\"time\":\"x\"}"]);
            var e = Assert.Throws<FormatException>(() => QueryLogFormat.ReadFile(bad).ToList());
            Assert.StartsWith(bad + ":2:", e.Message);
        }
        finally { File.Delete(bad); }
    }

    [Fact]
    public void The_reader_parses_what_the_servers_query_log_writes()
    {
        byte[] qname = [7, (byte)'V', 0xBC, (byte)'.', (byte)'\\', (byte)'"', (byte)'x', (byte)'y', 1, (byte)'t', 4, (byte)'t', (byte)'e', (byte)'s', (byte)'t', 0];
        var e = new Portcullis.Server.Telemetry.QueryEvent
        {
            Time = T0.AddTicks(1234560), Client = Client, ClientPort = 5353, Qname = qname, QType = RecordType.NULL, QClass = RecordClass.IN,
            Flags = 0x8180, QuerySize = 40, ResponseSize = 0, Latency = TimeSpan.FromMicroseconds(12), Policy = Portcullis.Server.Telemetry.QueryPolicy.DetectorBlocked, PolicyName = "detector",
        };
        var r = QueryLogFormat.Parse(Portcullis.Server.Telemetry.QueryLog.FormatLine(in e).TrimEnd('\n'));
        Assert.Equal(e.Time, r.Time);
        Assert.Equal(Client, r.Client);
        Assert.Equal(qname, r.Qname);
        Assert.Equal(RecordType.NULL, r.QType);
        Assert.Equal("DROPPED", r.Rcode);
        Assert.Equal("detector-blocked", r.Policy);
        Assert.Equal("detector", r.PolicyName);
    }

    [Fact]
    public void Blocked_domains_cover_their_subdomains_until_they_expire_and_rate_limits_admit_their_rate()
    {
        var actions = new DetectorActions();
        long now = T0.Ticks;
        Assert.False(actions.IsBlocked(W("x.evil.com."), Client, now));
        actions.AddDomain(W("Evil.COM."), DetectorAction.Block, now, now + TimeSpan.FromMinutes(10).Ticks);
        Assert.Equal(DetectorVerdict.Refuse, actions.Check(W("abc.def.EVIL.com."), [192, 0, 2, 1], now));
        Assert.Equal(DetectorVerdict.Refuse, actions.Check(W("evil.com."), Client, now));
        Assert.Equal(DetectorVerdict.None, actions.Check(W("notevil.com."), Client, now));
        Assert.Equal(DetectorVerdict.None, actions.Check(W("evil.com.au."), Client, now));
        Assert.Equal(DetectorVerdict.None, actions.Check(W("x.evil.com."), Client, now + TimeSpan.FromMinutes(10).Ticks));

        actions.AddClient(Client, DetectorAction.Block, now, now + TimeSpan.FromMinutes(1).Ticks);
        Assert.Equal(DetectorVerdict.Drop, actions.Check(W("www.example.com."), Client, now));
        Assert.Equal(DetectorVerdict.None, actions.Check(W("www.example.com."), [10, 1, 2, 4], now));

        // Rate limit: 2 per second admitted (burst 2), the rest refused until time moves on.
        actions.AddDomain(W("slow.org."), DetectorAction.RateLimit, now, now + TimeSpan.FromMinutes(1).Ticks, ratePerSecond: 2);
        byte[] other = [10, 9, 9, 9];
        int admitted = 0;
        for (int i = 0; i < 10; i++) if (actions.Check(W("a.slow.org."), other, now) == DetectorVerdict.None) admitted++;
        Assert.Equal(2, admitted);
        Assert.Equal(DetectorVerdict.None, actions.Check(W("a.slow.org."), other, now + TimeSpan.FromSeconds(1).Ticks));
        actions.Expire(now + TimeSpan.FromHours(1).Ticks);
        Assert.Equal(0, actions.Count);
    }

    [Fact]
    public void The_action_table_is_bounded_and_a_new_block_never_lifts_one_in_force()
    {
        var actions = new DetectorActions();
        long now = T0.Ticks;
        for (int i = 0; i < DetectorActions.MaxEntries + 500; i++)
            actions.AddDomain(W($"d{i}.flood.example."), DetectorAction.Block, now, now + TimeSpan.FromMinutes(10).Ticks + i);
        Assert.Equal(DetectorActions.MaxEntries, actions.Count);
        // The ones that end first made room; the latest are all in force.
        Assert.Equal(DetectorVerdict.Refuse, actions.Check(W($"x.d{DetectorActions.MaxEntries + 499}.flood.example."), Client, now));
        Assert.Equal(DetectorVerdict.None, actions.Check(W("x.d0.flood.example."), Client, now));
    }

    [Fact]
    public void Refused_and_dropped_queries_are_not_evidence_and_clients_are_not_blocked_unless_asked()
    {
        // Spoofed in a victim's name: refused by an ACL, dropped by RRL. None of it counts.
        var alerts = new List<DetectorAlert>();
        var detector = new TunnelDetector(new DetectorOptions { Action = DetectorAction.Block }, Psl.Value, hashSeed: 1) { AlertRaised = alerts.Add };
        long t = T0.Ticks;
        foreach (var (ticks, name, type) in Exfiltration("leak.example.com", 300, TimeSpan.FromSeconds(1), t))
        {
            var wire = W(name);
            detector.Observe(new Portcullis.Server.Telemetry.QueryEvent
            {
                Time = new DateTime(ticks, DateTimeKind.Utc), Client = Client, Qname = wire, QType = type, QClass = RecordClass.IN,
                QuerySize = 80, ResponseSize = 60, Rcode = Portcullis.Protocol.Messages.Rcode.Refused,
                Policy = Portcullis.Server.Telemetry.QueryPolicy.AclRefused,
            });
            detector.Observe(new Portcullis.Server.Telemetry.QueryEvent
            {
                Time = new DateTime(ticks, DateTimeKind.Utc), Client = Client, Qname = wire, QType = type, QClass = RecordClass.IN,
                QuerySize = 80, ResponseSize = 0, Policy = Portcullis.Server.Telemetry.QueryPolicy.RrlDrop,
            });
        }
        Assert.Empty(alerts);
        // Answered, the same traffic is caught; with action block the domain is blocked, the client is not
        // (act-on-clients is off: over UDP its address proves nothing).
        foreach (var (ticks, name, type) in Exfiltration("leak.example.com", 300, TimeSpan.FromSeconds(1), t))
            detector.Observe(ticks, Client, W(name), type, 80, 200);
        Assert.Contains(alerts, a => a.Kind == "domain");
        Assert.Equal(DetectorVerdict.Refuse, detector.Actions.Check(W("x.leak.example.com."), Client, t));
        Assert.Equal(DetectorVerdict.None, detector.Actions.Check(W("www.example.org."), Client, t));
    }

    static IEnumerable<(long Ticks, string Name, RecordType Type)> Exfiltration(string domain, int count, TimeSpan every, long start)
    {
        var r = new Random(7);
        for (int i = 0; i < count; i++)
        {
            var chunk = Convert.ToHexString(Enumerable.Range(0, 28).Select(_ => (byte)r.Next(256)).ToArray()).ToLowerInvariant();
            yield return (start + every.Ticks * i, $"{i}.{chunk}.s1.{domain}.", RecordType.TXT);
        }
    }

    [Fact]
    public void Tables_stay_within_their_capacity_under_a_flood_of_domains_and_a_tunnel_inside_it_is_still_found()
    {
        var options = new DetectorOptions { MaxDomains = 1024, MaxClients = 64 };
        var alerts = new List<DetectorAlert>();
        var detector = new TunnelDetector(options, Psl.Value, hashSeed: 1) { AlertRaised = alerts.Add };
        var exfil = Exfiltration("leak.example.com", 200, TimeSpan.FromSeconds(1), T0.Ticks).GetEnumerator();
        var r = new Random(3);
        long t = T0.Ticks;
        for (int i = 0; i < 200_000; i++)
        {
            t += TimeSpan.FromMilliseconds(1).Ticks;
            detector.Observe(t, [10, 0, (byte)(i % 200), (byte)(i % 250)], W($"www.site{r.Next(1_000_000)}.com."), RecordType.A, 40, 60);
            if (i % 1000 == 0 && exfil.MoveNext()) detector.Observe(t, Client, W(exfil.Current.Name), exfil.Current.Type, 80, 200);
        }
        Assert.True(detector.TrackedDomains <= 1024);
        Assert.True(detector.TrackedClients <= 64);
        var alert = Assert.Single(alerts, a => a.Kind == "domain");
        Assert.Equal("example.com.", alert.Domain);   // example.com is the registered domain under .com
    }

    [Fact]
    public void A_replay_raises_the_same_alerts_every_time_and_logs_them_as_json_lines_with_a_metric()
    {
        var dir = Directory.CreateTempSubdirectory("portcullis-detect-").FullName;
        try
        {
            using var meter = new Meter("Portcullis.Test." + Guid.NewGuid().ToString("N"));
            var counted = new Dictionary<string, long>();
            using var listener = new MeterListener();
            listener.InstrumentPublished = (i, l) => { if (i.Meter == meter) l.EnableMeasurementEvents(i); };
            listener.SetMeasurementEventCallback<long>((i, v, tags, _) =>
            {
                Assert.Equal("portcullis.detector.alerts", i.Name);
                var kind = (string)tags[0].Value!;
                counted[kind] = counted.GetValueOrDefault(kind) + v;
            });
            listener.Start();

            List<string> Run(string log, Meter? m)
            {
                var alerts = new List<string>();
                var options = new DetectorOptions { Action = DetectorAction.Block };
                using var detector = new TunnelDetector(options, Psl.Value, meter: m, alertLog: AlertLog.Open(log), hashSeed: 42) { AlertRaised = a => alerts.Add(a.ToString()) };
                foreach (var (ticks, name, type) in Exfiltration("exfil.example.net", 120, TimeSpan.FromSeconds(2), T0.Ticks))
                    detector.Observe(ticks, Client, W(name), type, 90, 150);
                Assert.True(detector.Actions.IsBlocked(W("x.exfil.example.net."), [10, 0, 0, 1], T0.AddMinutes(5).Ticks));
                detector.Flush();
                return alerts;
            }
            var first = Run(Path.Combine(dir, "a.jsonl"), meter);
            var second = Run(Path.Combine(dir, "b.jsonl"), null);
            Assert.NotEmpty(first);
            Assert.Equal(first, second);
            Assert.Equal(first.Count(a => a.Contains("Kind = domain")), counted.GetValueOrDefault("domain"));

            var line = File.ReadAllLines(Path.Combine(dir, "a.jsonl")).First();
            using var json = JsonDocument.Parse(line);
            Assert.Equal("domain", json.RootElement.GetProperty("kind").GetString());
            Assert.Equal("example.net.", json.RootElement.GetProperty("domain").GetString());
            Assert.Equal("block", json.RootElement.GetProperty("action").GetString());
            Assert.True(json.RootElement.GetProperty("score").GetDouble() >= DetectorOptions.DefaultThreshold);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void Hostile_names_and_lines_never_crash_the_detector_or_the_reader()
    {
        var r = new Random(11);
        var detector = new TunnelDetector(new DetectorOptions { MaxDomains = 64, MaxClients = 16 }, Psl.Value);
        var actions = new DetectorActions();
        actions.AddDomain(W("evil.com."), DetectorAction.Block, T0.Ticks, long.MaxValue);
        for (int i = 0; i < 20000; i++)
        {
            var name = new byte[r.Next(0, 300)];
            r.NextBytes(name);
            if (i % 3 == 0 && name.Length > 0) name[0] = (byte)r.Next(0, 64);       // mostly valid-looking starts
            detector.Observe(T0.Ticks + i, i % 5 == 0 ? [] : Client, name, (RecordType)r.Next(65536), r.Next(), r.Next());
            actions.Check(name, Client, T0.Ticks);
            LexicalFeatures.Of(name, Math.Min(name.Length, r.Next(0, 300)));
        }
        foreach (var line in new[] { "", "{}", "[1,2]", "{\"time\":\"2026-11-30T00:00:00Z\",\"client\":\"::1\",\"qname\":\"a\\\\\",\"qtype\":\"A\"}",
                     "{\"time\":\"2026-11-30T00:00:00Z\",\"client\":\"1.2.3.4\",\"qname\":\"" + new string('a', 64) + ".\",\"qtype\":\"A\"}" })
        {
            try { QueryLogFormat.Parse(line); }
            catch (Exception e) when (e is FormatException or JsonException or KeyNotFoundException or InvalidOperationException) { }
        }
        Assert.True(detector.TrackedDomains <= 64);
    }

    [Fact]
    public void Allow_listed_domains_are_never_scored()
    {
        var alerts = new List<DetectorAlert>();
        var detector = new TunnelDetector(new DetectorOptions { Allow = NameSuffixSet.FromText(["example.net"]) }, Psl.Value) { AlertRaised = alerts.Add };
        foreach (var (ticks, name, type) in Exfiltration("exfil.example.net", 200, TimeSpan.FromSeconds(1), T0.Ticks))
            detector.Observe(ticks, Client, W(name), type, 90, 150);
        Assert.Empty(alerts);
        Assert.Equal(200, detector.EventsAllowListed);
    }

    [Fact]
    public void The_detection_section_is_read_from_yaml_and_its_errors_name_the_line()
    {
        var config = ConfigLoader.Parse("""
            detection:
              enabled: true
              alert-log: /tmp/alerts.jsonl
              allow: [ corp.example, build.example ]
              action: block
              action-duration: 30m
              domain-response: drop
            """, "test.yaml");
        Assert.True(config.Detection.Enabled);
        var options = config.Detection.ToOptions();
        Assert.Equal(DetectorAction.Block, options.Action);
        Assert.Equal(TimeSpan.FromMinutes(30), options.ActionDuration);
        Assert.True(options.DomainDrop);
        Assert.True(options.Allow.Matches(W("x.build.example.")));
        Assert.True(options.Allow.Matches(W("1.2.0.192.in-addr.arpa.")));   // built-in

        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("listen: [127.0.0.1:53]\ndetection:\n  action: nuke\n", "bad.yaml"));
        Assert.StartsWith("bad.yaml:", e.Message);
        Assert.Contains("action must be alert, block or rate-limit", e.Message);
    }
}
