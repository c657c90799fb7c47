using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Server.Authoritative;
using Portcullis.Server.Configuration;
using Portcullis.Server.Dnssec;
using Portcullis.Server.Replication;

namespace Portcullis.Server.Hosting;

/// <summary>
/// Zones the server signs itself (dnssec-signing: true), in the manner of BIND's inline signing:
/// the zone file stays unsigned (the operator's; rewritten only with dynamic updates), the signed
/// version served is saved beside it as ZONEFILE.signed (with the serial of the unsigned file it
/// came from), and the journal ZONEFILE.jnl holds the signed differences, so IXFR carries
/// signatures. Every new version (file edit, update, reload, key event, signatures due for
/// refresh) is signed keeping what is still good, journaled, then swapped in.
/// </summary>
public sealed partial class DnsServer
{
    private readonly TimeProvider _time;
    private readonly ILogger _signingLogger;
    private readonly Dictionary<DnsName, SignedZoneState> _signed = new();

    private sealed class SignedZoneState(ZoneSigning signing)
    {
        public ZoneSigning Signing { get; set; } = signing;
        /// <summary>The serial of the unsigned zone file this version came from (an edit changes it).</summary>
        public uint? SourceSerial { get; set; }
        /// <summary>Updates changed the unsigned content: the zone file is rewritten with it.</summary>
        public bool UnsignedDirty { get; set; }
        public ITimer? Timer { get; set; }
        /// <summary>A signing secondary: the signed version served now (null until the first).</summary>
        public Zone? LastSigned { get; set; }
        public string File { get; set; } = "";
        /// <summary>A signing secondary: FILE.signed is behind <see cref="LastSigned"/>; its write is pending on <see cref="WriteTimer"/>.</summary>
        public bool SignedDirty { get; set; }
        public Timer? WriteTimer { get; set; }
    }

    /// <summary>The signing state of a zone: made at first, made anew when its policy or key directory changed.</summary>
    private SignedZoneState SigningState(ZoneConfig zc, DnsName origin) => SigningState(zc, origin, _signed);

    private SignedZoneState SigningState(ZoneConfig zc, DnsName origin, Dictionary<DnsName, SignedZoneState> states)
    {
        DnssecPolicy policy;
        try { policy = PolicyConfig.For(_config, zc); }
        catch (FormatException e) { throw new ZoneLoadException($"zone {origin}: {e.Message}"); }
        string directory = zc.KeyDirectory ?? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(zc.File))!, "keys");
        if (states.TryGetValue(origin, out var state))
        {
            if (state.Signing.Policy == policy && state.Signing.KeyDirectory == directory) return state;
            var fresh = OpenSigning(origin, policy, directory);
            state.Signing.Dispose();
            state.Signing = fresh;
            return state;
        }
        state = new SignedZoneState(OpenSigning(origin, policy, directory));
        states[origin] = state;
        return state;
    }

    private ZoneSigning OpenSigning(DnsName origin, DnssecPolicy policy, string directory)
    {
        try { return new ZoneSigning(origin, policy, directory, _time); }
        catch (Exception e) when (e is IOException or FormatException or UnauthorizedAccessException or ArgumentException
            or System.Security.Cryptography.CryptographicException)
        {
            throw new ZoneLoadException($"zone {origin}: keys in {directory}: {e.Message}");
        }
    }

    /// <summary>
    /// The version to serve for a signed zone just read from its file: the last signed version
    /// (served now, or at start the .signed file with the journal replayed) carried forward with
    /// the file's content when the file changed (its serial differs from the one signed last),
    /// signed again keeping every good signature.
    /// </summary>
    private Zone LoadSigned(ZoneConfig zc, Zone fromFile, Zone? current)
    {
        var origin = fromFile.Origin;
        var state = SigningState(zc, origin);
        var journal = _journals.Open(zc, origin);
        List<ResourceRecord>? previous = current?.Records().ToList();
        if (current is null) previous = ReadSignedVersion(zc.File, origin, journal, state);
        List<ResourceRecord> unsigned;
        if (previous is not null && state.SourceSerial == fromFile.Serial)
        {
            unsigned = state.Signing.Strip(previous);
            if (current is not null)
                _signingLogger.LogWarning("zone {Zone}: the zone file changed but its serial {Serial} did not: ignored (raise the serial)", origin, fromFile.Serial);
        }
        else
        {
            unsigned = state.Signing.Strip(fromFile.Records());
            state.SourceSerial = fromFile.Serial;
            state.UnsignedDirty = false;
        }
        var signed = SignOrThrow(state, unsigned, previous);
        Zone zone;
        if (signed is null) zone = current ?? ZoneLoader.FromRecords(origin, previous!, zc.File + ".signed");
        else
        {
            zone = ZoneLoader.FromRecords(origin, signed, zc.File);
            if (previous is not null) AppendToJournal(journal, previous, zone);
            ScheduleZoneFileWrite(origin);
        }
        if (signed is null && !File.Exists(zc.File + ".signed")) ScheduleZoneFileWrite(origin);
        ScheduleResign(origin, state);
        return new Zone(zone.Data) { Journal = journal };
    }

    /// <summary>
    /// The signed version last served, from FILE.signed with the journal replayed on it (records
    /// in canonical order), or null when there is none (the journal, which continued it, is cleared).
    /// </summary>
    private List<ResourceRecord>? ReadSignedVersion(string file, DnsName origin, ZoneJournal journal, SignedZoneState state)
    {
        var saved = ReadSignedFile(file, origin, out uint? sourceSerial);
        if (saved is null)
        {
            if (journal.Count > 0) journal.Clear();   // it continued a signed version that is gone
            return null;
        }
        state.SourceSerial = sourceSerial;
        var records = saved.Records();
        if (journal.LastSerial is { } last && last != saved.Serial)
        {
            var steps = journal.DiffsFrom(saved.Serial);
            if (steps is { Count: > 0 })
            {
                records = ZoneJournal.Apply(records, steps);
                _signingLogger.LogInformation("zone {Zone}: {Steps} signed changes replayed from the journal", origin, steps.Count);
            }
            else
            {
                _signingLogger.LogWarning("zone {Zone}: the journal does not continue {File}.signed: cleared", origin, file);
                journal.Clear();
            }
        }
        return ZoneLoader.FromRecords(origin, records, file + ".signed").Records().ToList();
    }

    private List<ResourceRecord>? SignOrThrow(SignedZoneState state, IReadOnlyList<ResourceRecord> unsigned, IReadOnlyList<ResourceRecord>? previous)
    {
        List<ResourceRecord>? signed;
        try { signed = state.Signing.Sign(unsigned, previous); }
        catch (Exception e) when (e is IOException or FormatException or UnauthorizedAccessException or ArgumentException
            or InvalidOperationException or System.Security.Cryptography.CryptographicException)
        {
            throw new ZoneLoadException($"zone {state.Signing.Origin}: signing failed: {e.Message}");
        }
        foreach (var e in state.Signing.Events) _signingLogger.LogInformation("zone {Zone}: {Event}", state.Signing.Origin, e);
        var c = state.Signing.LastCounters;
        if (signed is not null)
            _signingLogger.LogInformation("zone {Zone} signed: {Made} signatures made, {Kept} kept; next signing {Next:u}",
                state.Signing.Origin, c.Made, c.Kept, state.Signing.NextEvent);
        return signed;
    }

    private void AppendToJournal(ZoneJournal journal, IReadOnlyList<ResourceRecord> previous, Zone next)
    {
        try
        {
            var diff = ZoneJournal.Difference(previous, next.Records());
            if (journal.LastSerial is { } last && last != SerialNumber.Of(diff.OldSoa)) journal.Clear();
            journal.Append(diff);
        }
        catch (Exception e) when (e is JournalException or IOException)
        {
            _signingLogger.LogWarning("zone {Zone}: the signed change could not be journaled ({Error}); IXFR will send the whole zone", next.Origin, e.Message);
            journal.Clear();
        }
    }

    /// <summary>
    /// An update's new version signed (only what it changed) with its step from the current version
    /// (null when nothing changed), or null for a zone the server does not sign. The step is taken
    /// from the current version's records already read for the signer: reading a big zone's
    /// records costs more than signing a small change.
    /// </summary>
    private (Zone Zone, IxfrDiff? Diff)? SignUpdate(Zone current, Zone updated)
    {
        lock (_reloadLock)
        {
            if (!_signed.TryGetValue(current.Origin, out var state)) return null;
            var previous = current.Records().ToList();
            var signed = SignOrThrow(state, state.Signing.Strip(updated.Records()), previous);
            ScheduleResign(current.Origin, state);
            if (signed is null) return (current, null);
            var zone = ZoneLoader.FromRecords(current.Origin, signed, "update");
            return (zone, ZoneJournal.Difference(previous, zone.Records()));
        }
    }

    /// <summary>On reload of an unchanged zone file: key states re-read (ds-seen), the policy applied, signatures checked.</summary>
    private Zone? ResignOnReload(ZoneConfig zc, Zone current)
    {
        var state = SigningState(zc, current.Origin);
        state.Signing.ReopenKeys();
        return Resign(current.Origin, current, state);
    }

    /// <summary>The next signed version of what is served, journaled, or null when nothing is due.</summary>
    private Zone? Resign(DnsName origin, Zone current, SignedZoneState state)
    {
        var previous = current.Records().ToList();
        List<ResourceRecord>? signed;
        try { signed = SignOrThrow(state, state.Signing.Strip(previous), previous); }
        catch (ZoneLoadException e)
        {
            _signingLogger.LogError("{Error}; still serving the last signed version", e.Message);
            return null;
        }
        finally { ScheduleResign(origin, state); }
        if (signed is null) return null;
        var zone = ZoneLoader.FromRecords(origin, signed, "signing");
        if (current.Journal is { } journal) AppendToJournal(journal, previous, zone);
        ScheduleZoneFileWrite(origin);
        return new Zone(zone.Data) { Journal = current.Journal };
    }

    /// <summary>A timer (on the server's TimeProvider) for the zone's next key event or signature refresh.</summary>
    private void ScheduleResign(DnsName origin, SignedZoneState state)
    {
        state.Timer?.Dispose();
        state.Timer = null;
        var next = state.Signing.NextEvent;
        if (next == DateTimeOffset.MaxValue || _stopping.IsCancellationRequested) return;
        // At least a second on: a key event that does not move on cannot spin the signer.
        var due = next - _time.GetUtcNow();
        if (due < TimeSpan.FromSeconds(1)) due = TimeSpan.FromSeconds(1);
        state.Timer = _time.CreateTimer(_ => ResignDue(origin), null, due, Timeout.InfiniteTimeSpan);
    }

    private void ResignDue(DnsName origin)
    {
        bool secondary;
        lock (_secondarySigningLock) secondary = _signedSecondaries.ContainsKey(origin);
        if (secondary)
        {
            if (!_stopping.IsCancellationRequested) _secondaries.Republish(origin);
            return;
        }
        Zone? resigned;
        lock (_reloadLock)
        {
            if (_stopping.IsCancellationRequested || !_signed.TryGetValue(origin, out var state) || !_loaded.TryGetValue(origin, out var current)) return;
            resigned = Resign(origin, current.Zone, state);
            if (resigned is null) return;
            _loaded[origin] = (resigned, current.Stamp);
            RebuildCatalog();
        }
        SendNotify(resigned);
    }

    /// <summary>ZONEFILE.signed and its first line "; ... source-serial N"; null when absent or unreadable (signed anew).</summary>
    private Zone? ReadSignedFile(string file, DnsName origin, out uint? sourceSerial)
    {
        sourceSerial = null;
        string path = file + ".signed";
        if (!File.Exists(path)) return null;
        try
        {
            string? first;
            using (var reader = new StreamReader(path)) first = reader.ReadLine();
            var match = first is null ? null : SourceSerialPattern().Match(first);
            if (match is { Success: true }) sourceSerial = uint.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
            return ZoneLoader.Load(origin, path).Zone;
        }
        catch (Exception e) when (e is ZoneLoadException or IOException or UnauthorizedAccessException or OverflowException)
        {
            _signingLogger.LogWarning("zone {Zone}: {File} cannot be read ({Error}): the zone is signed anew", origin, path, e.Message);
            return null;
        }
    }

    [GeneratedRegex(@"source-serial (\d+)")]
    private static partial Regex SourceSerialPattern();

    /// <summary>
    /// The unsigned zone file first when updates changed it (a crash between the two leaves a file
    /// whose serial differs from the recorded one: read as an edit, with the same content), then
    /// ZONEFILE.signed, then the journal compacted.
    /// </summary>
    private void WriteSignedZoneFiles(ZoneConfig zc, Zone zone, SignedZoneState state)
    {
        if (state.UnsignedDirty)
        {
            var unsigned = ZoneLoader.FromRecords(zone.Origin, state.Signing.Strip(zone.Records()), zc.File);
            ZoneLoader.Save(unsigned, zc.File, $"zone {zone.Origin}, serial {zone.Serial}, written by Portcullis after dynamic updates (signed version: {Path.GetFileName(zc.File)}.signed)");
            state.SourceSerial = zone.Serial;
            state.UnsignedDirty = false;
        }
        ZoneLoader.Save(zone, zc.File + ".signed",
            $"zone {zone.Origin}, serial {zone.Serial}, signed by Portcullis from {Path.GetFileName(zc.File)} source-serial {state.SourceSerial}");
        zone.Journal?.Compact(zone.Serial);
    }

    /// <summary>Signing state dropped for zones no longer signed.</summary>
    private void RetainSigning(ServerConfig config)
    {
        var keep = config.Zones.Where(z => z.DnssecSigning).Select(z => ServerConfig.AbsoluteName(z.Name)).ToHashSet();
        foreach (var origin in _signed.Keys.Where(o => !keep.Contains(o)).ToList())
        {
            _signed[origin].Timer?.Dispose();
            _signed[origin].Signing.Dispose();
            _signed.Remove(origin);
        }
    }

    private void StopSigning()
    {
        lock (_reloadLock)
            foreach (var state in _signed.Values)
            {
                state.Timer?.Dispose();
                state.Timer = null;
            }
        lock (_secondarySigningLock)
            foreach (var state in _signedSecondaries.Values)
            {
                state.Timer?.Dispose();
                state.Timer = null;
            }
    }

    /// <summary>The keys' secrets released (after the last write at shutdown).</summary>
    private void DisposeSigning()
    {
        lock (_reloadLock)
            foreach (var state in _signed.Values) state.Signing.Dispose();
        lock (_secondarySigningLock)
            foreach (var state in _signedSecondaries.Values) state.Signing.Dispose();
    }

    // Signing secondaries have their own lock: engines publish from their own threads, and a
    // reload holding the zone lock waits for engines it stops.
    private readonly Lock _secondarySigningLock = new();
    private readonly Dictionary<DnsName, SignedZoneState> _signedSecondaries = new();

    private List<DnsName> SignedSecondaries()
    {
        lock (_secondarySigningLock) return [.. _signedSecondaries.Keys];
    }

    /// <summary>Signing states for the secondary zones with dnssec-signing (made, kept, or dropped), before the engines start.</summary>
    private void ConfigureSecondarySigning(ServerConfig config)
    {
        lock (_secondarySigningLock)
        {
            var keep = new HashSet<DnsName>();
            foreach (var zc in config.Zones.Where(z => z.Type == "secondary" && z.DnssecSigning))
            {
                var origin = ServerConfig.AbsoluteName(zc.Name);
                keep.Add(origin);
                try
                {
                    var state = SigningState(zc, origin, _signedSecondaries);
                    state.File = zc.File;
                    state.Signing.ReopenKeys();
                }
                catch (ZoneLoadException e) { _signingLogger.LogError("secondary zone {Zone} will be served unsigned: {Error}", origin, e.Message); }
            }
            foreach (var origin in _signedSecondaries.Keys.Where(o => !keep.Contains(o)).ToList())
            {
                WriteSignedSecondary(origin);
                _signedSecondaries[origin].Timer?.Dispose();
                _signedSecondaries[origin].Signing.Dispose();
                _signedSecondaries.Remove(origin);
            }
        }
    }

    /// <summary>
    /// A transferred version of a signing secondary, signed: the version served before (or at start
    /// FILE.signed with FILE.signed.jnl replayed) gives the signatures to keep, so a transfer costs
    /// the signatures of what it changed; the signed difference goes into FILE.signed.jnl, which
    /// serves IXFR to our own secondaries. Null for a zone this server does not sign.
    /// </summary>
    private Zone? SignSecondary(Zone unsigned)
    {
        var origin = unsigned.Origin;
        lock (_secondarySigningLock)
        {
            if (!_signedSecondaries.TryGetValue(origin, out var state)) return null;
            ZoneJournal journal;
            try { journal = _journals.Open(state.File + ".signed", origin); }
            catch (ZoneLoadException e)
            {
                _signingLogger.LogError("secondary zone {Zone}: {Error}; served unsigned", origin, e.Message);
                return null;
            }
            var previous = state.LastSigned?.Records().ToList() ?? ReadSignedVersion(state.File, origin, journal, state);
            List<ResourceRecord>? signed;
            try { signed = SignOrThrow(state, state.Signing.Strip(unsigned.Records()), previous); }
            catch (ZoneLoadException e)
            {
                _signingLogger.LogError("{Error}; {What}", e.Message, state.LastSigned is null ? "served unsigned" : "still serving the last signed version");
                return state.LastSigned;
            }
            finally { ScheduleResign(origin, state); }
            if (signed is null)
            {
                state.LastSigned ??= new Zone(ZoneLoader.FromRecords(origin, previous!, state.File + ".signed").Data) { Journal = journal };
                return state.LastSigned;
            }
            var zone = ZoneLoader.FromRecords(origin, signed, state.File);
            if (previous is not null) AppendToJournal(journal, previous, zone);
            state.LastSigned = new Zone(zone.Data) { Journal = journal };
            state.SignedDirty = true;
            if (state.WriteTimer is { } timer) timer.Change(ZoneFileSyncDelay, Timeout.InfiniteTimeSpan);
            else state.WriteTimer = new Timer(_ => WriteSignedSecondary(origin), null, ZoneFileSyncDelay, Timeout.InfiniteTimeSpan);
            return state.LastSigned;
        }
    }

    /// <summary>FILE.signed of a signing secondary written (then its journal compacted); false for other zones.</summary>
    private bool WriteSignedSecondary(DnsName origin)
    {
        lock (_secondarySigningLock)
        {
            if (!_signedSecondaries.TryGetValue(origin, out var state)) return false;
            state.WriteTimer?.Dispose();
            state.WriteTimer = null;
            if (state.LastSigned is not { } zone || !state.SignedDirty) return true;
            state.SignedDirty = false;
            try
            {
                ZoneLoader.Save(zone, state.File + ".signed", $"zone {origin}, serial {zone.Serial}, signed by Portcullis from the transferred {Path.GetFileName(state.File)}");
                zone.Journal?.Compact(zone.Serial);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or JournalException)
            {
                _signingLogger.LogError("secondary zone {Zone}: cannot write {File}.signed: {Error}", origin, state.File, e.Message);
            }
            return true;
        }
    }
}
