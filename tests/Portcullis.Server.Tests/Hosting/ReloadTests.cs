using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Records;
using Portcullis.Server.Tests.Support;

namespace Portcullis.Server.Tests.Hosting;

/// <summary>Reloading zones while queries keep coming: no query lost, a bad zone keeps its last good version.</summary>
public sealed class ReloadTests
{
    private const string Zone1 = "$ORIGIN r.test.\n$TTL 60\n@ SOA ns h 1 3600 600 86400 60\n@ NS ns\nns A 192.0.2.1\nold A 192.0.2.10\n";
    private const string Zone2 = "$ORIGIN r.test.\n$TTL 60\n@ SOA ns h 2 3600 600 86400 60\n@ NS ns\nns A 192.0.2.1\nnew A 192.0.2.20\n";

    [Fact]
    public async Task Reload_under_load_answers_every_query_and_serves_the_new_zone()
    {
        using var server = new TestServer(("r.test.", Zone1));
        var client = server.Client();
        int answered = 0, sent = 0;
        using var warmedUp = new ManualResetEventSlim();
        using var reloaded = new ManualResetEventSlim();
        var load = Task.Run(() =>
        {
            // Bounded: 500 queries before the reload and 500 after it.
            int after = 0;
            while (after < 500 && sent < 100_000)
            {
                sent++;
                var r = client.Udp("ns.r.test.", RecordType.A);
                if (r.Rcode == Rcode.NoError && r.Answers.Count == 1) answered++;
                if (sent == 500) warmedUp.Set();
                if (reloaded.IsSet) after++;
            }
        });
        Assert.True(warmedUp.Wait(TimeSpan.FromSeconds(60)), "load did not start");
        File.WriteAllText(server.ZoneFile("r.test."), Zone2);
        Assert.Equal(0, server.Server.Reload());
        reloaded.Set();
        Assert.Single(client.Udp("new.r.test.", RecordType.A).Answers);
        Assert.Equal(Rcode.NXDomain, client.Udp("old.r.test.", RecordType.A).Rcode);
        await load.WaitAsync(TimeSpan.FromSeconds(120));
        Assert.True(sent >= 1000);
        Assert.Equal(sent, answered);
    }

    [Fact]
    public void A_zone_that_fails_to_reload_keeps_serving_its_last_good_version()
    {
        using var server = new TestServer(("r.test.", Zone1));
        File.WriteAllText(server.ZoneFile("r.test."), Zone1 + "broken A not-an-address\n");
        Assert.Equal(1, server.Server.Reload());
        var r = server.Client().Udp("old.r.test.", RecordType.A);
        Assert.Equal(Rcode.NoError, r.Rcode);
        Assert.Single(r.Answers);
    }

    [Fact]
    public void An_unchanged_zone_is_not_reloaded()
    {
        using var server = new TestServer(("r.test.", Zone1));
        var before = server.Server.Processor.Catalog.Get(Portcullis.Protocol.Names.DnsName.Parse("r.test."));
        Assert.Equal(0, server.Server.Reload());
        Assert.Same(before, server.Server.Processor.Catalog.Get(Portcullis.Protocol.Names.DnsName.Parse("r.test.")));
    }
}
