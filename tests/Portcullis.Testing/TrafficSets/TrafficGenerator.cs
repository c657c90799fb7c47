using System.Globalization;
using System.Text;

namespace Portcullis.Testing.TrafficSets;

/// <summary>One generated query: the fields of a query-log line, and the class of its registered domain.</summary>
public sealed record TrafficQuery(DateTime Time, string Client, string Qname, string QType, int QuerySize, int ResponseSize, string Rcode);

/// <summary>
/// A deterministic (seeded), labelled traffic set for the tunnel detector, as one recursive resolver
/// would see it: benign browsing over more than 10,000 registered domains under real public
/// suffixes, the benign look-alikes (CDN hashed names, DNSBL lookups, PTR sweeps, and hard ones not on
/// the allow-list: hashed SaaS tenants, telemetry ids, ad trackers, DKIM), and exfiltration
/// (base32, base64, hex chunks of files under one domain, TXT-heavy, at rates from a query every 30 s
/// to 20 per second) plus an iodine-like synthetic tunnel (the real capture is replayed beside it).
/// Written in the query log's JSON-lines format with a label file (registered domain, class).
/// </summary>
public sealed class TrafficGenerator
{
    public static readonly string[] MaliciousClasses = ["tunnel-synthetic", "exfil-base32", "exfil-base64", "exfil-hex"];
    public static readonly string[] BenignClasses = ["browsing", "cdn-hashed", "dnsbl", "ptr-sweep", "hard-saas", "hard-telemetry", "hard-adtech", "hard-dkim", "hard-sync"];

    public static bool IsMalicious(string label) => label.StartsWith("tunnel", StringComparison.Ordinal) || label.StartsWith("exfil", StringComparison.Ordinal);

    public DateTime Start { get; init; } = new(2026, 11, 30, 0, 0, 0, DateTimeKind.Utc);
    public TimeSpan Duration { get; init; } = TimeSpan.FromHours(2);
    public int BrowsingDomains { get; init; } = 12000;
    public int Clients { get; init; } = 300;
    public int ExfilSessionsPerClass { get; init; } = 24;
    public int TunnelSessions { get; init; } = 8;

    private readonly Random _r;
    private readonly List<TrafficQuery> _queries = [];
    private readonly Dictionary<string, string> _labels = new(StringComparer.OrdinalIgnoreCase);

    public TrafficGenerator(int seed = 20261130) => _r = new Random(seed);

    public IReadOnlyList<TrafficQuery> Queries => _queries;
    /// <summary>Registered domain → class.</summary>
    public IReadOnlyDictionary<string, string> Labels => _labels;

    static readonly string[] Syllables = ["ka", "lo", "mi", "ra", "ten", "vo", "san", "del", "ber", "tor", "na", "li", "pe", "qu", "stone", "bright",
        "cloud", "shop", "news", "mar", "ket", "blue", "sun", "wave", "fox", "data", "soft", "tech", "city", "art", "home", "food", "trip", "go",
        "bank", "star", "line", "net", "hub", "box", "cast", "play", "book", "land", "craft", "gear", "zen", "nova", "pix", "ly", "ify", "er", "ia"];
    static readonly (string Suffix, int Weight)[] Suffixes = [("com", 40), ("net", 6), ("org", 6), ("de", 5), ("co.uk", 4), ("fr", 3), ("io", 3),
        ("nl", 2), ("com.au", 2), ("jp", 2), ("co.jp", 1), ("com.br", 2), ("it", 2), ("es", 2), ("pl", 2), ("ru", 2), ("ca", 2), ("ch", 1),
        ("se", 1), ("info", 1), ("eu", 1), ("us", 1), ("co", 1), ("me", 1), ("org.uk", 1), ("com.mx", 1), ("in", 1), ("co.in", 1), ("be", 1), ("at", 1)];
    static readonly string[] Hosts = ["www", "www", "www", "", "", "mail", "api", "static", "cdn", "img", "m", "blog", "shop", "login", "accounts",
        "app", "assets", "media", "news", "support", "docs", "auth", "images", "video", "s", "en", "de", "fonts", "status", "store"];

    string Word(int min = 2, int max = 4)
    {
        var sb = new StringBuilder();
        int n = _r.Next(min, max + 1);
        for (int i = 0; i < n; i++) sb.Append(Syllables[_r.Next(Syllables.Length)]);
        if (_r.Next(8) == 0) sb.Append(_r.Next(2, 99).ToString(CultureInfo.InvariantCulture));
        if (_r.Next(10) == 0) sb.Insert(sb.Length / 2, '-');
        return sb.ToString();
    }

    string Suffix()
    {
        int total = Suffixes.Sum(s => s.Weight), pick = _r.Next(total);
        foreach (var (s, w) in Suffixes) { if (pick < w) return s; pick -= w; }
        return "com";
    }

    string Client(int i) => ClientAddress(i);

    /// <summary>The address of the generator's client number <paramref name="i"/> (its browsing clients are 0 to <see cref="Clients"/> − 1).</summary>
    public static string ClientAddress(int i) => $"10.{20 + i / 250}.{i % 250 / 10}.{i % 250 % 10 + 10}";

    string NewDomain(string label)
    {
        while (true)
        {
            var d = Word() + "." + Suffix();
            if (_labels.TryAdd(d, label)) return d;
        }
    }

    void Add(DateTime t, string client, string qname, string qtype, int rsize = -1, string rcode = "NOERROR")
    {
        if (t < Start || t >= Start + Duration) return;
        int qsize = 12 + qname.Length + 2 + 4 + 11;
        if (rsize < 0) rsize = qtype switch { "TXT" => 120 + _r.Next(200), "NULL" => 200 + _r.Next(1000), "AAAA" => qsize + 28 + 16, "MX" => qsize + 40, _ => qsize + 32 };
        _queries.Add(new TrafficQuery(t, client, qname.EndsWith('.') ? qname : qname + ".", qtype, qsize, rsize, rcode));
    }

    DateTime RandomTime() => Start + TimeSpan.FromTicks((long)(_r.NextDouble() * Duration.Ticks));

    public TrafficGenerator Generate()
    {
        Browsing();
        CdnHashed();
        Dnsbl();
        PtrSweeps();
        HardLookAlikes();
        Exfiltration("exfil-base32");
        Exfiltration("exfil-base64");
        Exfiltration("exfil-hex");
        SyntheticTunnels();
        _queries.Sort((a, b) => a.Time.CompareTo(b.Time));
        return this;
    }

    /// <summary>Zipf-popular domains; each visit asks a few hosts, A and AAAA (and HTTPS, some MX/TXT), repeated by clients.</summary>
    void Browsing()
    {
        var domains = new string[BrowsingDomains];
        var hosts = new string[BrowsingDomains][];
        for (int i = 0; i < domains.Length; i++)
        {
            domains[i] = NewDomain("browsing");
            int n = 1 + _r.Next(6);
            hosts[i] = Enumerable.Range(0, n).Select(_ => Hosts[_r.Next(Hosts.Length)]).Distinct().ToArray();
            // Some sites use per-page or per-region hosts with digits (img3, eu-west-2-static).
            if (_r.Next(10) == 0) hosts[i] = [.. hosts[i], $"img{_r.Next(1, 9)}", $"eu-west-{_r.Next(1, 4)}-static"];
        }
        // Every domain is visited at least once; then Zipf(1) visits.
        double[] cumulative = new double[domains.Length];
        double sum = 0;
        for (int i = 0; i < domains.Length; i++) { sum += 1.0 / (i + 1); cumulative[i] = sum; }
        int visits = domains.Length * 6;
        for (int v = 0; v < visits; v++)
        {
            int d = v;
            if (v >= domains.Length)
            {
                int k = Array.BinarySearch(cumulative, _r.NextDouble() * sum);
                d = Math.Min(k >= 0 ? k : ~k, domains.Length - 1);
            }
            var client = Client(_r.Next(Clients));
            var t = RandomTime();
            foreach (var h in hosts[d])
            {
                if (_r.Next(3) == 0 && h != hosts[d][0]) continue;
                var name = h.Length == 0 ? domains[d] : h + "." + domains[d];
                var at = t + TimeSpan.FromMilliseconds(_r.Next(0, 3000));
                Add(at, client, name, "A");
                if (_r.Next(10) < 8) Add(at + TimeSpan.FromMilliseconds(1), client, name, "AAAA");
                if (_r.Next(10) == 0) Add(at + TimeSpan.FromMilliseconds(2), client, name, "HTTPS");
            }
            int extra = _r.Next(100);
            if (extra < 3) Add(t, client, domains[d], "MX");
            else if (extra < 6) Add(t, client, domains[d], "TXT");
            else if (extra < 7) Add(t, client, "_dmarc." + domains[d], "TXT");
        }
    }

    const string Hex = "0123456789abcdef";
    const string Base32 = "abcdefghijklmnopqrstuvwxyz234567";
    const string Alnum = "abcdefghijklmnopqrstuvwxyz0123456789";

    string Random(string alphabet, int n)
    {
        var sb = new StringBuilder(n);
        for (int i = 0; i < n; i++) sb.Append(alphabet[_r.Next(alphabet.Length)]);
        return sb.ToString();
    }

    /// <summary>CDN and cloud names with hashed or coded labels, many clients (allow-listed by default).</summary>
    void CdnHashed()
    {
        var patterns = new List<(string Rd, Func<string> Name)>
        {
            ("akamaiedge.net", () => $"e{_r.Next(1000, 99999)}.{(char)('a' + _r.Next(8))}.akamaiedge.net"),
            ("akamaihd.net", () => $"{Word(1, 2)}-{Random(Alnum, 6)}.akamaihd.net"),
            ("googlevideo.com", () => $"rr{_r.Next(1, 9)}---sn-{Random(Alnum, 8)}.googlevideo.com"),
            ("azureedge.net", () => $"{Word(1, 2)}{Random(Alnum, 6)}.azureedge.net"),
            ("fastly.net", () => $"{Random(Alnum, 10)}.global.ssl.fastly.net"),
            ("trafficmanager.net", () => $"{Word(1, 2)}-{Random(Hex, 8)}.trafficmanager.net"),
            ("elb.amazonaws.com", () => $"{Word(1, 2)}-{Random(Alnum, 16)}-{_r.Next(100000000, 999999999)}.eu-west-1.elb.amazonaws.com"),
            ("apple-dns.net", () => $"{Random(Alnum, 12)}.v.aaplimg.com.apple-dns.net"),
        };
        foreach (var (rd, _) in patterns) _labels[rd] = "cdn-hashed";
        // CloudFront: every distribution is its own registered domain (PSL private section).
        var distributions = Enumerable.Range(0, 400).Select(_ => $"d{Random(Alnum, 13)}.cloudfront.net").ToArray();
        foreach (var d in distributions) _labels[d] = "cdn-hashed";
        for (int i = 0; i < 30000; i++)
        {
            var client = Client(_r.Next(Clients));
            var t = RandomTime();
            if (_r.Next(4) == 0) { Add(t, client, distributions[_r.Next(distributions.Length)], "A"); continue; }
            var (_, name) = patterns[_r.Next(patterns.Count)];
            var n = name();
            Add(t, client, n, "A");
            Add(t + TimeSpan.FromMilliseconds(1), client, n, "AAAA");
        }
    }

    /// <summary>Two mail servers checking every connecting address and every URL against DNSBLs (allow-listed by default).</summary>
    void Dnsbl()
    {
        string[] ipZones = ["zen.spamhaus.org", "bl.spamcop.net", "b.barracudacentral.org", "dnsbl.sorbs.net", "list.dnswl.org"];
        string[] domainZones = ["dbl.spamhaus.org", "multi.surbl.org", "multi.uribl.com"];
        foreach (var z in ipZones.Concat(domainZones).Append("hash.cymru.com").Append("sophosxl.net")) _labels[Rd(z)] = "dnsbl";
        string[] servers = [Client(1000), Client(1001)];
        for (int i = 0; i < 20000; i++)
        {
            var client = servers[_r.Next(2)];
            var t = RandomTime();
            var ip = $"{_r.Next(1, 255)}.{_r.Next(256)}.{_r.Next(256)}.{_r.Next(1, 255)}";
            foreach (var z in ipZones) Add(t, client, $"{ip}.{z}", "A", rcode: _r.Next(10) == 0 ? "NOERROR" : "NXDOMAIN");
            if (_r.Next(10) == 0) Add(t, client, $"{ip}.zen.spamhaus.org", "TXT");
            if (_r.Next(3) == 0)
            {
                var dom = Word() + "." + Suffix();
                foreach (var z in domainZones) Add(t, client, $"{dom}.{z}", "A", rcode: "NXDOMAIN");
            }
            if (_r.Next(5) == 0) Add(t, client, $"{Random(Hex, 40)}.hash.cymru.com", "TXT");
            if (_r.Next(5) == 0) Add(t, client, $"{Random(Base32, 26)}.{Random(Base32, 26)}.3.0.0.sfv.sophosxl.net", "TXT");
        }
    }

    static string Rd(string zone) => zone.Split('.') is var l && l.Length >= 2 ? l[^2] + "." + l[^1] : zone;

    /// <summary>Reverse lookups: a log processor resolving every address it sees, and a scanner sweeping /24s (allow-listed by default).</summary>
    void PtrSweeps()
    {
        _labels["in-addr.arpa"] = "ptr-sweep";
        _labels["ip6.arpa"] = "ptr-sweep";
        var sweeper = Client(1002);
        for (int net = 0; net < 40; net++)
        {
            var t = RandomTime();
            int a = _r.Next(1, 224), b = _r.Next(256), c = _r.Next(256);
            for (int h = 1; h < 255; h++) Add(t + TimeSpan.FromMilliseconds(h * 20), sweeper, $"{h}.{c}.{b}.{a}.in-addr.arpa", "PTR", rcode: "NXDOMAIN");
        }
        for (int i = 0; i < 5000; i++)
        {
            var nibbles = string.Join('.', Random(Hex, 32).Reverse());
            Add(RandomTime(), Client(_r.Next(Clients)), $"{nibbles}.ip6.arpa", "PTR", rcode: "NXDOMAIN");
        }
    }

    /// <summary>Benign services with encoded-looking names that are NOT on the allow-list.</summary>
    void HardLookAlikes()
    {
        // A SaaS with hashed per-tenant subdomains, used by many clients.
        for (int s = 0; s < 6; s++)
        {
            var rd = NewDomain("hard-saas");
            var tenants = Enumerable.Range(0, 300).Select(_ => $"t-{Random(Hex, 16)}").ToArray();
            for (int i = 0; i < 6000; i++)
            {
                var n = $"{tenants[(int)Math.Min(tenants.Length - 1, -Math.Log(1 - _r.NextDouble()) * 60)]}.app.{rd}";
                var t = RandomTime();
                var client = Client(_r.Next(Clients));
                Add(t, client, n, "A");
                Add(t, client, n, "AAAA");
            }
        }
        // Telemetry with a per-device id (UUID without dashes), each client keeps its id.
        for (int s = 0; s < 6; s++)
        {
            var rd = NewDomain("hard-telemetry");
            var ids = Enumerable.Range(0, Clients).Select(_ => Random(Hex, 32)).ToArray();
            for (int i = 0; i < 4000; i++)
            {
                int c = _r.Next(Clients);
                Add(RandomTime(), Client(c), $"{ids[c]}.events.{rd}", "A");
            }
        }
        // An ad tracker with base32-ish click ids, one-off names, many clients.
        for (int s = 0; s < 4; s++)
        {
            var rd = NewDomain("hard-adtech");
            for (int i = 0; i < 3000; i++)
                Add(RandomTime(), Client(_r.Next(Clients)), $"c-{Random(Alnum, 20)}.px.{rd}", "A");
        }
        // A sync agent on one machine resolving per-object hashed hosts (SHA-1-like hex), slowly:
        // one client, unique names, hex labels. The hardest benign case: it differs from slow hex
        // exfiltration only by its type (A/AAAA) and its modest information rate.
        for (int s = 0; s < 4; s++)
        {
            var rd = NewDomain("hard-sync");
            var client = Client(_r.Next(Clients));
            var t = Start + TimeSpan.FromSeconds(_r.Next(600));
            while (t < Start + Duration)
            {
                var n = $"{Random(Hex, 40)}.objects.{rd}";
                Add(t, client, n, "A");
                Add(t, client, n, "AAAA");
                t += TimeSpan.FromSeconds(30 + _r.Next(90));
            }
        }
        // A mail server checking DKIM keys and DMARC across many sending domains (TXT, underscore labels).
        var mta = Client(1003);
        for (int s = 0; s < 300; s++)
        {
            var rd = NewDomain("hard-dkim");
            var sel = _r.Next(3) switch { 0 => "selector1", 1 => "google", _ => $"s{Random(Alnum, 10)}" };
            for (int i = 0; i < 20; i++)
            {
                var t = RandomTime();
                Add(t, mta, $"{sel}._domainkey.{rd}", "TXT");
                Add(t, mta, $"_dmarc.{rd}", "TXT");
                Add(t, mta, rd, "MX");
            }
        }
    }

    /// <summary>
    /// Exfiltration sessions: a client (which also browses) sends a file as encoded chunks under one
    /// domain: [seq].[chunk].[chunk].[session].domain, mostly TXT, at one of several rates.
    /// </summary>
    void Exfiltration(string kind)
    {
        for (int s = 0; s < ExfilSessionsPerClass; s++)
        {
            var rd = NewDomain(kind);
            var client = Client(_r.Next(Clients));
            int fileBytes = (int)(2048 * Math.Pow(2, _r.Next(0, 7)));             // 2 KB .. 128 KB
            double interval = s % 4 switch { 0 => 0.05, 1 => 1, 2 => 5, _ => 20 };  // seconds between queries
            double txtShare = s % 3 == 0 ? 1.0 : s % 3 == 1 ? 0.8 : 0.5;
            int labels = 1 + s % 2;
            var session = Random(Alnum, 4);
            var t = Start + TimeSpan.FromSeconds(_r.Next(0, (int)(Duration.TotalSeconds / 2)));
            int sent = 0, seq = 0;
            while (sent < fileBytes)
            {
                var parts = new List<string> { seq.ToString(CultureInfo.InvariantCulture) };
                for (int l = 0; l < labels; l++)
                {
                    int chunk = kind switch { "exfil-hex" => 30, "exfil-base32" => 35, _ => 45 };
                    chunk = Math.Max(8, chunk - _r.Next(0, 10));
                    var bytes = new byte[chunk];
                    _r.NextBytes(bytes);
                    sent += chunk;
                    parts.Add(Encode(kind, bytes, s));
                }
                parts.Add(session);
                var qtype = _r.NextDouble() < txtShare ? "TXT" : "A";
                Add(t, client, string.Join('.', parts) + "." + rd, qtype, rcode: "NOERROR");
                t += TimeSpan.FromSeconds(interval * (0.5 + _r.NextDouble()));
                seq++;
                if (t >= Start + Duration) break;
            }
        }
    }

    static string Encode(string kind, byte[] data, int variant)
    {
        switch (kind)
        {
            case "exfil-hex":
                return Convert.ToHexString(data).ToLowerInvariant();
            case "exfil-base32":
                return Base32Encode(data);
            default:
                var b64 = Convert.ToBase64String(data).TrimEnd('=');
                // Half the sessions use base64url (- and _), half the standard alphabet (+ and /), as dns2tcp does.
                return variant % 2 == 0 ? b64.Replace('+', '-').Replace('/', '_') : b64;
        }
    }

    static string Base32Encode(byte[] data)
    {
        var sb = new StringBuilder();
        int buffer = 0, bits = 0;
        foreach (var b in data)
        {
            buffer = buffer << 8 | b;
            bits += 8;
            while (bits >= 5) { sb.Append(Base32[(buffer >> (bits - 5)) & 31]); bits -= 5; }
        }
        if (bits > 0) sb.Append(Base32[(buffer << (5 - bits)) & 31]);
        return sb.ToString();
    }

    /// <summary>
    /// An iodine-like tunnel (synthetic, from the measurements in the security reference): NULL
    /// queries of ≈240-character names in 62-character labels of Base128 (non-LDH bytes escaped as
    /// \DDD), bursts at ≈50 q/s while data flows and a lazy-mode poll every 4 s when idle.
    /// </summary>
    void SyntheticTunnels()
    {
        for (int s = 0; s < TunnelSessions; s++)
        {
            var rd = "t." + NewDomain("tunnel-synthetic");
            var client = Client(_r.Next(Clients));
            var t = Start + TimeSpan.FromSeconds(_r.Next(0, (int)(Duration.TotalSeconds / 2)));
            var end = t + TimeSpan.FromMinutes(_r.Next(5, 40));
            var qtype = s % 3 == 0 ? "NULL" : s % 3 == 1 ? "CNAME" : "TXT";
            while (t < end)
            {
                bool burst = _r.Next(4) == 0;
                int n = burst ? _r.Next(20, 200) : 1;
                for (int i = 0; i < n; i++)
                {
                    var name = new StringBuilder();
                    name.Append((char)"vlizyrpa"[_r.Next(8)]);
                    int total = burst ? Math.Min(230, 250 - rd.Length - 6) : _r.Next(10, 40);
                    int inLabel = 1;
                    for (int c = 1; c < total; c++)
                    {
                        if (inLabel == 62) { name.Append('.'); inLabel = 0; }
                        int v = s % 2 == 0 ? 0xBC + _r.Next(0x42) : 0;
                        if (v != 0 && _r.Next(5) < 4) name.Append('\\').Append(v.ToString("D3", CultureInfo.InvariantCulture));
                        else name.Append(Base32[_r.Next(32)]);
                        inLabel++;
                    }
                    Add(t, client, name + "." + rd, qtype, rsize: burst ? 1100 : 60);
                    t += TimeSpan.FromMilliseconds(burst ? 20 : 0);
                }
                t += TimeSpan.FromSeconds(4);
            }
        }
    }

    /// <summary>Writes the queries as query-log JSON lines and the labels as "domain class" lines.</summary>
    public void Write(string jsonlPath, string labelsPath)
    {
        using (var w = new StreamWriter(jsonlPath))
            foreach (var q in _queries) w.WriteLine(ToJson(q));
        File.WriteAllLines(labelsPath, _labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $"{l.Key}\t{l.Value}"));
    }

    /// <summary>One query-log line (the server's format).</summary>
    public static string ToJson(TrafficQuery q)
    {
        var sb = new StringBuilder(200);
        sb.Append("{\"time\":\"").Append(q.Time.ToString("yyyy-MM-ddTHH:mm:ss.ffffffZ", CultureInfo.InvariantCulture))
          .Append("\",\"client\":\"").Append(q.Client).Append("\",\"port\":").Append(40000 + (q.Qname.Length * 7919 % 20000))
          .Append(",\"proto\":\"udp\",\"qname\":\"").Append(q.Qname.Replace("\\", "\\\\").Replace("\"", "\\\""))
          .Append("\",\"qtype\":\"").Append(q.QType).Append("\",\"qclass\":\"IN\",\"rcode\":\"").Append(q.Rcode)
          .Append("\",\"flags\":\"qr rd ra\",\"qsize\":").Append(q.QuerySize).Append(",\"rsize\":").Append(q.ResponseSize)
          .Append(",\"latency_us\":").Append(q.QuerySize * 3).Append(",\"policy\":\"none\"}");
        return sb.ToString();
    }
}
