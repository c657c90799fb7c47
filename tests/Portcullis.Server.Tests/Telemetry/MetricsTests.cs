using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Records;
using Portcullis.Server.Security;
using Portcullis.Server.Telemetry;
using Portcullis.Transport;
using Xunit;

namespace Portcullis.Server.Tests.Telemetry;

public sealed partial class MetricsTests
{
    [Fact]
    public async Task ScrapedCountersMatchTheQueriesRecorded()
    {
        using var meter = new Meter("Portcullis.Test." + Guid.NewGuid().ToString("N"));
        var metrics = new QueryMetrics(meter);
        var security = new SecurityCounters(meter);
        using var endpoint = MetricsEndpoint.Start(FreeEndPoint(), meter.Name);

        long start = Stopwatch.GetTimestamp();
        for (int i = 0; i < 7; i++) metrics.Record(TransportKind.Udp, RecordType.A, Rcode.NoError, 100, start);
        for (int i = 0; i < 3; i++) metrics.Record(TransportKind.Tcp, RecordType.AAAA, Rcode.NXDomain, 600, start);
        for (int i = 0; i < 2; i++) metrics.Record(TransportKind.Udp, (RecordType)65280, Rcode.Refused, 40, start);
        metrics.Record(TransportKind.Udp, RecordType.TXT, (Rcode)15, 2000, start);
        security.Count(SecurityReason.RrlDropped);
        security.Count(SecurityReason.RrlDropped);

        var samples = Parse(await Scrape(endpoint));

        Assert.Equal(7, samples[Key("portcullis_queries_total", ("qtype", "A"), ("rcode", "NOERROR"), ("transport", "udp"))]);
        Assert.Equal(3, samples[Key("portcullis_queries_total", ("qtype", "AAAA"), ("rcode", "NXDOMAIN"), ("transport", "tcp"))]);
        Assert.Equal(2, samples[Key("portcullis_queries_total", ("qtype", "other"), ("rcode", "REFUSED"), ("transport", "udp"))]);
        Assert.Equal(1, samples[Key("portcullis_queries_total", ("qtype", "TXT"), ("rcode", "other"), ("transport", "udp"))]);
        Assert.Equal(4, samples.Keys.Count(k => k.StartsWith("portcullis_queries_total{", StringComparison.Ordinal)));

        // Histograms: every query counted once, sizes summed, and the buckets cumulative (le="512" holds 100 and 40 byte answers).
        Assert.Equal(10, samples[Key("portcullis_response_size_bytes_count", ("transport", "udp"))]);
        Assert.Equal(3, samples[Key("portcullis_response_size_bytes_count", ("transport", "tcp"))]);
        Assert.Equal(7 * 100 + 2 * 40 + 2000, samples[Key("portcullis_response_size_bytes_sum", ("transport", "udp"))]);
        Assert.Equal(9, samples[Key("portcullis_response_size_bytes_bucket", ("le", "512"), ("transport", "udp"))]);
        Assert.Equal(10, samples[Key("portcullis_query_duration_seconds_count", ("transport", "udp"))]);
        Assert.Equal(10, samples[Key("portcullis_query_duration_seconds_bucket", ("le", "+Inf"), ("transport", "udp"))]);

        // The existing security counters come out of the same meter.
        Assert.Equal(2, samples[Key("portcullis_security_events_total", ("reason", "rrl-dropped"))]);
    }

    [Fact]
    public async Task AServerWithMetricsOnCountsTheQueriesItAnswers()
    {
        var at = FreeEndPoint();
        using var server = new Support.TestServer(c => c.Metrics.Listen = at.ToString(), ("example.test.", Support.TestServer.ExampleZone));
        var endpoint = server.Server.MetricsEndpoint;
        Assert.NotNull(endpoint);
        Assert.Equal(at, endpoint.EndPoint);
        // The server's meter is shared by every server in this process (other tests' too), so the
        // check is on the change in two series no other test in this assembly sends: HINFO, NAPTR.
        var hinfoUdp = Key("portcullis_queries_total", ("qtype", "HINFO"), ("rcode", "NOERROR"), ("transport", "udp"));
        var naptrTcp = Key("portcullis_queries_total", ("qtype", "NAPTR"), ("rcode", "NOERROR"), ("transport", "tcp"));
        var before = Parse(await Scrape(endpoint));

        var client = server.Client();
        for (int i = 0; i < 5; i++) Assert.Equal(Rcode.NoError, client.Udp("www.example.test.", RecordType.HINFO).Rcode);
        for (int i = 0; i < 3; i++) Assert.Equal(Rcode.NoError, client.Tcp("example.test.", RecordType.NAPTR).Rcode);

        var after = Parse(await Scrape(endpoint));
        Assert.Equal(5, after[hinfoUdp] - before.GetValueOrDefault(hinfoUdp));
        Assert.Equal(3, after[naptrTcp] - before.GetValueOrDefault(naptrTcp));
        Assert.True(after[Key("portcullis_query_duration_seconds_count", ("transport", "tcp"))] >= 3);
        Assert.True(after[Key("portcullis_response_size_bytes_count", ("transport", "udp"))] >= 5);
    }

    [Fact]
    public void TheYamlConfigurationNamesTheEndpoint()
    {
        var config = Configuration.ConfigLoader.Parse("metrics:\n  listen: \"127.0.0.1:9153\"\n", "test.yaml");
        Assert.Equal("127.0.0.1:9153", config.Metrics.Listen);
        Assert.Null(Configuration.ConfigLoader.Parse("listen: [\"127.0.0.1:53\"]\n", "test.yaml").Metrics.Listen);
        var e = Assert.Throws<Configuration.ConfigException>(() => Configuration.ConfigLoader.Parse("metrics:\n  listen: localhost\n", "test.yaml"));
        Assert.Contains("metrics listen", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RecordingAllocatesNothingWhileTheExporterListens()
    {
        using var meter = new Meter("Portcullis.Test." + Guid.NewGuid().ToString("N"));
        var metrics = new QueryMetrics(meter);
        using var endpoint = MetricsEndpoint.Start(FreeEndPoint(), meter.Name);
        Span<byte> response = Response(RecordType.MX, Rcode.NXDomain);
        var types = new[] { RecordType.A, RecordType.AAAA, RecordType.TXT, (RecordType)4000 };

        // Warm up: the exporter creates each label combination's child metric once, on first sight.
        for (int i = 0; i < 4; i++)
        {
            metrics.Record(TransportKind.Udp, types[i], Rcode.NoError, 100, Stopwatch.GetTimestamp());
            metrics.Record(TransportKind.Tcp, types[i], Rcode.NoError, 100, Stopwatch.GetTimestamp());
        }
        metrics.RecordResponse(TransportKind.Udp, response, Stopwatch.GetTimestamp());

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10_000; i++)
        {
            metrics.Record((TransportKind)(i & 1), types[i & 3], Rcode.NoError, 100 + i, Stopwatch.GetTimestamp());
            metrics.RecordResponse(TransportKind.Udp, response, Stopwatch.GetTimestamp());
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public async Task RecordResponseReadsTheTypeFromTheQuestionAndTheRcodeFromTheHeader()
    {
        using var meter = new Meter("Portcullis.Test." + Guid.NewGuid().ToString("N"));
        var metrics = new QueryMetrics(meter);
        using var endpoint = MetricsEndpoint.Start(FreeEndPoint(), meter.Name);

        metrics.RecordResponse(TransportKind.Tcp, Response(RecordType.SOA, Rcode.ServFail), Stopwatch.GetTimestamp());
        metrics.RecordResponse(TransportKind.Udp, Response(RecordType.A, Rcode.NoError)[..DnsHeader.Size], Stopwatch.GetTimestamp());   // QDCOUNT 1, question cut off

        var samples = Parse(await Scrape(endpoint));
        Assert.Equal(1, samples[Key("portcullis_queries_total", ("qtype", "SOA"), ("rcode", "SERVFAIL"), ("transport", "tcp"))]);
        Assert.Equal(1, samples[Key("portcullis_queries_total", ("qtype", "other"), ("rcode", "NOERROR"), ("transport", "udp"))]);
    }

    [Fact]
    public void ABusyAddressIsAOneLineError()
    {
        using var meter = new Meter("Portcullis.Test." + Guid.NewGuid().ToString("N"));
        var at = FreeEndPoint();
        using var first = MetricsEndpoint.Start(at, meter.Name);
        var e = Assert.Throws<MetricsEndpointException>(() => MetricsEndpoint.Start(at, meter.Name));
        Assert.StartsWith("metrics: cannot listen on " + at, e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Theory]
    [InlineData(null, null)]
    [InlineData("127.0.0.1:9100", "127.0.0.1:9100")]
    [InlineData("127.0.0.1", "127.0.0.1:9153")]
    [InlineData("[::1]:9200", "[::1]:9200")]
    [InlineData("::1", "[::1]:9153")]
    public void ConfigNamesTheEndpoint(string? listen, string? expected)
    {
        Assert.True(new MetricsConfig { Listen = listen }.TryGetEndPoint(out var endPoint, out var error));
        Assert.Null(error);
        Assert.Equal(expected, endPoint?.ToString());
        if (listen is null) Assert.Null(MetricsEndpoint.Start(new MetricsConfig()));
    }

    [Fact]
    public void Enabled_without_an_address_binds_the_loopback_only()
    {
        Assert.True(new MetricsConfig { Enabled = true }.TryGetEndPoint(out var endPoint, out _));
        Assert.Equal("127.0.0.1:9153", endPoint?.ToString());
        var config = Configuration.ConfigLoader.Parse("metrics: { enabled: true }", "/etc/portcullis.yaml");
        Assert.True(config.Metrics.TryGetEndPoint(out endPoint, out _));
        Assert.True(IPAddress.IsLoopback(endPoint!.Address));
    }

    [Theory]
    [InlineData("localhost:9153")]
    [InlineData("127.0.0.1:0")]
    [InlineData("127.0.0.1:99999")]
    public void ConfigRejectsWhatIsNotAnAddress(string listen)
    {
        Assert.False(new MetricsConfig { Listen = listen }.TryGetEndPoint(out var endPoint, out var error));
        Assert.Null(endPoint);
        Assert.Contains(listen, error, StringComparison.Ordinal);
        Assert.Throws<MetricsEndpointException>(() => MetricsEndpoint.Start(new MetricsConfig { Listen = listen }));
    }

    /// <summary>A 127.0.0.x of the test's own and a TCP port the kernel says is free on it.</summary>
    internal static IPEndPoint FreeEndPoint()
    {
        var address = Support.TestServer.NextAddress();
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(new IPEndPoint(address, 0));
        return (IPEndPoint)probe.LocalEndPoint!;
    }

    internal static async Task<string> Scrape(MetricsEndpoint endpoint)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        using var reply = await http.GetAsync(endpoint.Url);
        Assert.Equal(HttpStatusCode.OK, reply.StatusCode);
        Assert.StartsWith("text/plain", reply.Content.Headers.ContentType?.MediaType, StringComparison.Ordinal);
        return await reply.Content.ReadAsStringAsync();
    }

    /// <summary>
    /// The Prometheus text format (one sample a line: name, optional {label="value",...}, value;
    /// # lines are HELP/TYPE comments) as "name{labels sorted by name}" → value.
    /// </summary>
    internal static Dictionary<string, double> Parse(string text)
    {
        var samples = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line[0] == '#') continue;
            var m = SampleLine().Match(line);
            Assert.True(m.Success, $"not a sample line: {line}");
            var labels = LabelPair().Matches(m.Groups["labels"].Value)
                .Select(l => (l.Groups["k"].Value, l.Groups["v"].Value))
                .Where(l => !l.Item1.StartsWith("otel_scope_", StringComparison.Ordinal))   // the exporter's scope labels: the meter's name
                .ToArray();
            double value = m.Groups["value"].Value switch
            {
                "+Inf" => double.PositiveInfinity,
                "-Inf" => double.NegativeInfinity,
                var v => double.Parse(v, NumberStyles.Float, CultureInfo.InvariantCulture),
            };
            samples.Add(Key(m.Groups["name"].Value, labels), value);
        }
        return samples;
    }

    internal static string Key(string name, params (string Name, string Value)[] labels) =>
        labels.Length == 0 ? name
            : name + "{" + string.Join(",", labels.OrderBy(l => l.Name, StringComparer.Ordinal).Select(l => $"{l.Name}=\"{l.Value}\"")) + "}";

    /// <summary>A response header (QR, the RCODE) with one question for example.test of <paramref name="type"/>.</summary>
    private static byte[] Response(RecordType type, Rcode rcode)
    {
        byte[] name = [7, .."example"u8, 4, .."test"u8, 0];
        var bytes = new byte[DnsHeader.Size + name.Length + 4];
        bytes[2] = 0x84;
        bytes[3] = (byte)(0x80 | ((int)rcode & 0xF));
        bytes[5] = 1;
        name.CopyTo(bytes, DnsHeader.Size);
        bytes[DnsHeader.Size + name.Length] = (byte)((ushort)type >> 8);
        bytes[DnsHeader.Size + name.Length + 1] = (byte)type;
        bytes[DnsHeader.Size + name.Length + 3] = 1;
        return bytes;
    }

    [GeneratedRegex(@"^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?<labels>[^}]*)\})?\s+(?<value>\S+)(\s+\d+)?$")]
    private static partial Regex SampleLine();

    [GeneratedRegex(@"(?<k>[a-zA-Z_][a-zA-Z0-9_]*)=""(?<v>[^""]*)""")]
    private static partial Regex LabelPair();
}
