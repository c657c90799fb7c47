using System.Diagnostics.Metrics;
using Portcullis.Server.Security;
using Portcullis.Server.Tests.Support;

namespace Portcullis.Server.Tests.Security;

/// <summary>What an operator sees of refusals and limits: the metric, and a periodic log line.</summary>
public class SecurityCountersTests
{
    [Fact]
    public void Counters_are_published_as_a_metric_with_one_tag_per_reason()
    {
        using var meter = new Meter("Portcullis.Test." + Guid.NewGuid().ToString("N"));
        var counters = new SecurityCounters(meter);
        counters.Count(SecurityReason.RrlDropped);
        counters.Count(SecurityReason.RrlDropped);
        counters.Count(SecurityReason.TransferRefused);
        var seen = new Dictionary<string, long>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) => { if (instrument.Meter == meter) l.EnableMeasurementEvents(instrument); };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) => seen[(string)tags[0].Value!] = value);
        listener.Start();
        listener.RecordObservableInstruments();
        Assert.Equal(2, seen["rrl-dropped"]);
        Assert.Equal(1, seen["transfer-refused"]);
        Assert.Equal(0, seen["query-refused"]);
    }

    [Fact]
    public void A_summary_line_says_what_was_refused_or_limited_in_each_interval()
    {
        var log = new CollectingLoggerFactory();
        var counters = new SecurityCounters();
        using var events = new SecurityEvents(log.CreateLogger("test"), counters, TimeSpan.FromMilliseconds(50));
        counters.Count(SecurityReason.QueryRefused);
        counters.Count(SecurityReason.RrlSlipped);
        counters.Count(SecurityReason.RrlSlipped);
        // (A tick may fall between the counts and split them over two lines.)
        Assert.True(log.WaitFor("1 query-refused", DnsTestClient.Timeout));
        Assert.True(log.WaitFor("rrl-slipped", DnsTestClient.Timeout));
        Assert.All(log.Lines, l => Assert.Contains("in the last interval: ", l));
    }
}
