using Microsoft.Extensions.Logging;
using Portcullis.Server.Configuration;
using Portcullis.Server.Detection;
using Portcullis.Server.Telemetry;

namespace Portcullis.Server.Hosting;

/// <summary>
/// detection: the tunnel detector joins the query-event hub's observers, and its actions are
/// checked by the query processor (docs/detection.md). Made at start, like the other watchers.
/// </summary>
public sealed partial class DnsServer
{
    /// <summary>The tunnel detector, when detection.enabled.</summary>
    public TunnelDetector? Detector { get; private set; }

    partial void AddWatchers(ServerConfig config, List<IQueryObserver> observers)
    {
        var dc = config.Detection;
        if (!dc.Enabled) return;
        PublicSuffixList psl;
        try { psl = PublicSuffixList.Load(dc.PublicSuffixList); }
        catch (FormatException e) { throw new ZoneLoadException($"detection: {e.Message}"); }
        AlertLog? alertLog = null;
        if (dc.AlertLog is not null)
        {
            try { alertLog = AlertLog.Open(dc.AlertLog); }
            catch (IOException e) { throw new ZoneLoadException(e.Message); }
        }
        // The hub disposes its observers when it stops (StopWatching): the alert log is closed then.
        Detector = new TunnelDetector(dc.ToOptions(), psl, _loggerFactory.CreateLogger("Portcullis.Detection"), Meter, alertLog);
        observers.Add(Detector);
        Processor.DetectorActions = Detector.Actions;
        _logger.LogInformation("detection on: {Rules} public suffix rules, action {Action}{Log}", psl.RuleCount, dc.Action,
            dc.AlertLog is null ? "" : ", alerts to " + dc.AlertLog);
    }
}
