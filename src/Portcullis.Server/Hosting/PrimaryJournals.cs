using Microsoft.Extensions.Logging;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.ZoneText;
using Portcullis.Server.Authoritative;
using Portcullis.Server.Configuration;
using Portcullis.Server.Replication;

namespace Portcullis.Server.Hosting;

/// <summary>
/// The journals of the primary zones read from files (ZONEFILE.jnl): opened with the zone and kept
/// across reloads, replayed on top of the zone file at start (changes acknowledged but not yet in
/// the file survive a crash), fed by reloads that bring a newer serial (the difference, as BIND's
/// ixfr-from-differences and Knot's zonefile-load: difference) so that IXFR answers edits too, and
/// compacted: the zone file rewritten at the newest serial, then history trimmed to the limit.
/// </summary>
internal sealed class PrimaryJournals(ILogger logger, long maxBytes) : IDisposable
{
    private readonly Lock _lock = new();
    private readonly Dictionary<DnsName, ZoneJournal> _journals = new();

    /// <summary>
    /// The zone to serve for a freshly read zone file: with its journal attached, and at start
    /// (<paramref name="current"/> null) with the journal's newer changes replayed; on a reload with
    /// a newer serial the difference from <paramref name="current"/> is appended first.
    /// </summary>
    public Zone Attach(ZoneConfig zc, Zone fromFile, Zone? current)
    {
        if (zc.File.StartsWith(DnsServer.EmbeddedPrefix, StringComparison.Ordinal)) return fromFile;
        var origin = fromFile.Origin;
        var journal = Open(zc, origin);
        var zone = fromFile;
        if (current is null)
        {
            if (journal.LastSerial is { } last && last != fromFile.Serial)
            {
                var steps = journal.DiffsFrom(fromFile.Serial);
                if (steps is { Count: > 0 })
                {
                    zone = ZoneLoader.FromRecords(origin, ZoneJournal.Apply(fromFile.Records(), steps), zc.File);
                    logger.LogInformation("zone {Zone}: {Steps} changes replayed from the journal, serial {From} -> {To}", origin, steps.Count, fromFile.Serial, zone.Serial);
                }
                else
                {
                    logger.LogWarning("zone {Zone}: the journal (serials {First}..{Last}) does not continue the zone file's serial {Serial}: the file wins, the journal is cleared",
                        origin, journal.FirstSerial, last, fromFile.Serial);
                    journal.Clear();
                }
            }
        }
        else if (SerialNumber.IsNewer(fromFile.Serial, current.Serial))
        {
            // An edited zone file: its difference from what was served becomes one IXFR step.
            try
            {
                if (journal.LastSerial is { } last && last != current.Serial) journal.Clear();
                journal.Append(ZoneJournal.Difference(current.Records(), fromFile.Records()));
                journal.Compact(fromFile.Serial);
            }
            catch (Exception e) when (e is JournalException or IOException)
            {
                logger.LogWarning("zone {Zone}: the change could not be journaled ({Error}); IXFR will send the whole zone", origin, e.Message);
                journal.Clear();
            }
        }
        else
        {
            // Not newer than what is served (which may include dynamic updates not yet in the file):
            // keep serving that; a change without a serial increase would never reach secondaries.
            if (fromFile.Serial != current.Serial || fromFile.RecordCount != current.RecordCount)
                logger.LogWarning("zone {Zone}: the zone file changed but its serial {Serial} is not newer than the served {Current}: ignored (raise the serial)",
                    origin, fromFile.Serial, current.Serial);
            return current;
        }
        return new Zone(zone.Data) { Journal = journal };
    }

    /// <summary>The zone's journal (ZONEFILE.jnl), opened once and kept across reloads.</summary>
    public ZoneJournal Open(ZoneConfig zc, DnsName origin) => Open(zc.File, origin);

    /// <summary>The journal FILE.jnl of a zone whose file is <paramref name="file"/> (for a signing secondary: its .signed copy).</summary>
    public ZoneJournal Open(string file, DnsName origin)
    {
        lock (_lock)
        {
            if (_journals.TryGetValue(origin, out var journal)) return journal;
            try { journal = ZoneJournal.Open(file + ".jnl", origin, maxBytes); }
            catch (Exception e) when (e is JournalException or IOException or UnauthorizedAccessException)
            {
                throw new ZoneLoadException($"{file}.jnl: {e.Message}");
            }
            if (journal.Recovery is { } recovery) logger.LogWarning("journal of {Zone}: {Recovery}", origin, recovery);
            _journals[origin] = journal;
            return journal;
        }
    }

    /// <summary>
    /// Writes the zone into its file (temporary file, flushed to disk, renamed over the old one) so
    /// that the file is current, then trims the journal's history to the size limit.
    /// </summary>
    public static void WriteZoneFile(Zone zone, string file)
    {
        ZoneLoader.Save(zone, file, $"zone {zone.Origin}, serial {zone.Serial}, written by Portcullis (changes since are in {Path.GetFileName(file)}.jnl)");
        zone.Journal?.Compact(zone.Serial);
    }

    /// <summary>Closes the journals of zones no longer configured.</summary>
    public void Retain(IEnumerable<DnsName> origins)
    {
        var keep = origins.ToHashSet();
        lock (_lock)
            foreach (var origin in _journals.Keys.Where(o => !keep.Contains(o)).ToList())
            {
                _journals[origin].Dispose();
                _journals.Remove(origin);
            }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            foreach (var j in _journals.Values) j.Dispose();
            _journals.Clear();
        }
    }
}
