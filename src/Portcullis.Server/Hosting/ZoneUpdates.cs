using System.Net;
using Microsoft.Extensions.Logging;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Server.Authoritative;
using Portcullis.Server.Pipeline;
using Portcullis.Server.Replication;

namespace Portcullis.Server.Hosting;

/// <summary>
/// Dynamic updates (RFC 2136) for primary zones read from files: the update is worked out against
/// the zone served (<see cref="UpdateProcessor"/>), its change appended to the zone's journal and
/// flushed to disk, and only then swapped in and acknowledged; the server then schedules the zone
/// file's rewrite and sends NOTIFY. Updates are serialised (one at a time): they are rare, and the
/// order of their serials must be the order of the journal. A zone the server signs gets its
/// update signed (<paramref name="sign"/>: only what changed) before it is journaled, so the
/// journal and IXFR carry the signed difference. <paramref name="zoneLock"/> is the server's zone
/// lock, shared with reloads and re-signing, which also journal new versions.
/// </summary>
internal sealed class ZoneUpdates(ILogger logger, Func<DnsName, (Zone? Zone, bool Primary)> lookup, Action<Zone> commit,
    Func<Zone, Zone, (Zone Zone, IxfrDiff? Diff)?> sign, Lock zoneLock) : IUpdateHandler
{
    private readonly Lock _lock = zoneLock;

    public Rcode Update(Zone zone, ReadOnlySpan<byte> message, ReadOnlySpan<byte> client, ReadOnlySpan<byte> keyName)
    {
        string who = client.Length is 4 or 16 ? new IPAddress(client).ToString() : "?";
        if (!keyName.IsEmpty) who += $" key {DnsName.FromWire(keyName)}";
        if (!UpdateProcessor.TryParse(message, out var update, out string? error))
        {
            logger.LogInformation("update of {Zone} from {Client} refused: {Error} (FORMERR)", zone.Origin, who, error);
            return Rcode.FormErr;
        }
        lock (_lock)
        {
            var (current, primary) = lookup(zone.Origin);
            if (current is null || !primary || current.Journal is null)
            {
                // A secondary zone (RFC 2136 §3.1.2 allows forwarding to the primary; like BIND
                // without update-forwarding, we refuse) or one without a journal (embedded).
                logger.LogInformation("update of {Zone} from {Client} refused: {Why}", zone.Origin, who,
                    primary ? "the zone has no journal (not read from a file)" : "a secondary zone: send updates to its primary");
                return Rcode.Refused;
            }
            var result = UpdateProcessor.Process(current, update!);
            if (result.Rcode != Rcode.NoError)
            {
                logger.LogInformation("update of {Zone} from {Client}: {Rcode}: {Reason}", zone.Origin, who, result.Rcode, result.Reason);
                return result.Rcode;
            }
            if (!result.Changed) return Rcode.NoError;
            var newZone = result.NewZone!;
            var diff = result.Diff!;
            (Zone Zone, IxfrDiff? Diff)? signedZone;
            try { signedZone = sign(current, newZone); }
            catch (Exception e) when (e is ZoneLoadException or IOException or FormatException or UnauthorizedAccessException)
            {
                logger.LogError("update of {Zone} from {Client} not applied: signing failed: {Error}", zone.Origin, who, e.Message);
                return Rcode.ServFail;
            }
            if (signedZone is { } signedUpdate)
            {
                // Only records signing makes were touched: nothing to do.
                if (signedUpdate.Diff is null) return Rcode.NoError;
                newZone = signedUpdate.Zone;
                diff = signedUpdate.Diff;
            }
            try
            {
                // On disk before it is served or acknowledged (the "acknowledged = on disk").
                current.Journal.Append(diff);
            }
            catch (Exception e) when (e is JournalException or IOException)
            {
                logger.LogError("update of {Zone} from {Client} not applied: the journal could not be written: {Error}", zone.Origin, who, e.Message);
                return Rcode.ServFail;
            }
            var next = new Zone(newZone.Data) { Journal = current.Journal };
            commit(next);
            logger.LogInformation("update of {Zone} from {Client}: serial {From} -> {To}, {Deleted} records deleted, {Added} added",
                zone.Origin, who, current.Serial, next.Serial, diff.Deleted.Count, diff.Added.Count);
            return Rcode.NoError;
        }
    }
}
