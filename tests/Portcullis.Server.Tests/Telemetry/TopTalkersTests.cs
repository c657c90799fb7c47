using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Server.Telemetry;
using Portcullis.Server.Tests.Support;
using Xunit;

namespace Portcullis.Server.Tests.Telemetry;

/// <summary>Top clients and names over a sliding window: bounded sketches that still find the heavy hitters.</summary>
public sealed class TopTalkersTests
{
    private static readonly DateTime T0 = new(2026, 11, 30, 6, 0, 0, DateTimeKind.Utc);

    private static void Feed(TopTalkers top, DateTime time, byte[] client, string name, int times = 1)
    {
        var wire = DnsName.Parse(name).Wire.ToArray();
        for (int i = 0; i < times; i++)
            top.Observe(new QueryEvent { Time = time, Client = client, Qname = wire, QType = RecordType.A, QClass = RecordClass.IN });
    }

    [Fact]
    public void The_heaviest_clients_and_names_top_the_lists_through_a_flood_of_one_off_names()
    {
        var top = new TopTalkers(TimeSpan.FromSeconds(60), reported: 3, nowTicks: () => T0.AddSeconds(20).Ticks);
        var random = new Random(7);
        // 20,000 one-off names from 1,000 clients (a random-subdomain attack's shape) around three heavy hitters.
        for (int i = 0; i < 20_000; i++)
        {
            Feed(top, T0.AddMilliseconds(i), [10, 0, (byte)(i % 1000 / 250), (byte)(i % 250)], $"r{random.Next():x8}.victim.test.");
            if (i % 10 == 0) Feed(top, T0.AddMilliseconds(i), [192, 0, 2, 1], "www.example.test.");
            if (i % 20 == 0) Feed(top, T0.AddMilliseconds(i), [192, 0, 2, 2], "MAIL.example.test.");
            if (i % 40 == 0) Feed(top, T0.AddMilliseconds(i), [192, 0, 2, 3], "api.example.test.");
        }
        var clients = top.Current.Clients;
        var names = top.Current.Names;
        Assert.Equal(["192.0.2.1", "192.0.2.2", "192.0.2.3"], clients.Select(c => c.Key));
        Assert.Equal(["www.example.test.", "mail.example.test.", "api.example.test."], names.Select(c => c.Key));
        // Space-Saving overestimates by at most the error it reports, never underestimates.
        Assert.InRange(names[0].Count, 2000, 2000 + names[0].Error);
        Assert.InRange(clients[1].Count, 1000, 1000 + clients[1].Error);
    }

    [Fact]
    public void What_was_busy_two_windows_ago_leaves_the_lists()
    {
        var now = T0;
        var top = new TopTalkers(TimeSpan.FromSeconds(10), reported: 5, nowTicks: () => now.Ticks);
        Feed(top, T0, [192, 0, 2, 9], "old.example.test.", 500);
        Feed(top, T0.AddSeconds(6), [192, 0, 2, 8], "new.example.test.", 5);
        now = T0.AddSeconds(6);
        Assert.Contains(top.Current.Names, n => n.Key == "old.example.test.");   // within the window
        Feed(top, T0.AddSeconds(12), [192, 0, 2, 8], "new.example.test.", 5);
        now = T0.AddSeconds(12);
        Assert.DoesNotContain(top.Current.Names, n => n.Key == "old.example.test.");
        Assert.Equal(["192.0.2.8"], top.Current.Clients.Select(c => c.Key));
        Assert.Equal(10, top.Current.Names.Single().Count);
        // An idle server: after a whole window without events the lists are empty, not frozen.
        now = T0.AddSeconds(23);
        Assert.Empty(top.Current.Names);
    }

    [Fact]
    public async Task A_server_with_metrics_exports_its_top_names_and_clients()
    {
        var at = MetricsTests.FreeEndPoint();
        using var server = new TestServer(c => c.Metrics.Listen = at.ToString(), ("example.test.", TestServer.ExampleZone));
        for (int i = 0; i < 12; i++) server.Client().Udp("toptalker.example.test.", RecordType.A);
        await server.Server.QueryEvents!.DrainAsync();

        var samples = MetricsTests.Parse(await MetricsTests.Scrape(server.Server.MetricsEndpoint!));
        Assert.Equal(12, samples[MetricsTests.Key("portcullis_top_names_queries", ("name", "toptalker.example.test."))]);
        // Other tests' servers in this process also see 127.0.0.1: their counts add up under the same key.
        Assert.True(samples[MetricsTests.Key("portcullis_top_clients_queries", ("client", "127.0.0.1"))] >= 12);
        Assert.Contains(samples.Keys, k => k.StartsWith("portcullis_transfers_out_active", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_signing_server_exports_how_long_its_signatures_have_left()
    {
        var at = MetricsTests.FreeEndPoint();
        using var server = new TestServer(c =>
        {
            c.Metrics.Listen = at.ToString();
            c.Zones[0].DnssecSigning = true;
        }, ("example.test.", TestServer.ExampleZone));
        var samples = MetricsTests.Parse(await MetricsTests.Scrape(server.Server.MetricsEndpoint!));
        var expire = samples[MetricsTests.Key("portcullis_dnssec_signatures_expire_seconds", ("zone", "example.test."))];
        // The default policy signs for 14 days with jitter: the earliest signature expires within that.
        Assert.InRange(expire, TimeSpan.FromDays(7).TotalSeconds, TimeSpan.FromDays(14).TotalSeconds);
        var next = samples[MetricsTests.Key("portcullis_dnssec_next_event_seconds", ("zone", "example.test."))];
        Assert.InRange(next, 0, expire);
    }
}
