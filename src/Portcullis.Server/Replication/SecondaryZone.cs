using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using Microsoft.Extensions.Logging;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.Tsig;
using Portcullis.Protocol.ZoneText;
using Portcullis.Protocol.Zones;
using Portcullis.Server.Authoritative;
using Portcullis.Server.Hosting;

namespace Portcullis.Server.Replication;

/// <summary>A primary to pull a zone from, and the TSIG key to sign with (null: none).</summary>
public sealed record PrimaryServer(IPEndPoint EndPoint, TsigKey? Key)
{
    public override string ToString() => Key is null ? EndPoint.ToString() : $"{EndPoint} key {Key.Name}";
}

/// <summary>
/// One secondary zone (RFC 1034 §4.3.5, RFC 1996, RFC 1995): pulls the zone from its primaries,
/// IXFR first and AXFR as the fallback; checks the primary's serial every SOA refresh interval,
/// every retry interval after a failure, and at once on NOTIFY (<see cref="Notify"/>); stops
/// serving (SERVFAIL) when no primary was reached within the expire interval. The zone is written
/// to its file (and the time of the last successful check to FILE.state) before it is served, so
/// a restart serves at once from disk, with the expiry clock carried over.
/// </summary>
public sealed class SecondaryZone : IAsyncDisposable
{
    /// <summary>Shortest refresh/retry honoured, however small the SOA's: Knot's refresh-min-interval.</summary>
    public static readonly TimeSpan MinInterval = TimeSpan.FromSeconds(2);
    /// <summary>Longest refresh/retry honoured: Knot's refresh-max-interval.</summary>
    public static readonly TimeSpan MaxInterval = TimeSpan.FromDays(1);
    /// <summary>How soon to retry while the zone has never been transferred.</summary>
    public static readonly TimeSpan FirstRetry = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan SoaTimeout = TimeSpan.FromSeconds(5);

    private readonly IReadOnlyList<PrimaryServer> _primaries;
    private readonly string _file;
    private readonly TransferLimits _limits;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Action<Zone> _publish;
    private readonly SemaphoreSlim _wake = new(0, 1);
    private readonly CancellationTokenSource _stop = new();
    private readonly object _waitersLock = new();
    private readonly List<(uint Serial, TaskCompletionSource Done)> _waiters = [];
    private Task? _loop;
    private DateTimeOffset _lastRefresh;

    /// <param name="publish">Called with each new version to serve (an <see cref="Zone.Unavailable"/> one when expired).</param>
    public SecondaryZone(DnsName origin, IReadOnlyList<PrimaryServer> primaries, string file, Action<Zone> publish,
        ILogger logger, TimeProvider? time = null, TransferLimits? limits = null)
    {
        if (primaries.Count == 0) throw new ArgumentException($"secondary zone {origin} has no primaries", nameof(primaries));
        Origin = origin;
        _primaries = primaries;
        _file = file;
        _publish = publish;
        _logger = logger;
        _time = time ?? TimeProvider.System;
        _limits = limits ?? new TransferLimits();
    }

    public DnsName Origin { get; }
    /// <summary>The version served now; null until the first load or transfer.</summary>
    public Zone? Current { get; private set; }
    public bool Expired { get; private set; }
    /// <summary>How the last transfer came: AXFR, IXFR, or null when none yet.</summary>
    public string? LastTransfer { get; private set; }

    /// <summary>Loads the saved copy (if any, and not expired) and starts the refresh loop.</summary>
    public void Start()
    {
        OpenJournal();
        LoadSaved();
        Publish();
        _loop = Task.Run(() => RunAsync(_stop.Token));
    }

    /// <summary>A NOTIFY for this zone arrived from a primary (RFC 1996 §3.7): check its serial now.</summary>
    public void Notify()
    {
        try { _wake.Release(); }
        catch (SemaphoreFullException) { /* a check is already due */ }
    }

    /// <summary>Completes when the zone served has this serial or a newer one.</summary>
    public Task WaitForSerialAsync(uint serial)
    {
        lock (_waitersLock)
        {
            if (Current is { Unavailable: false } z && !SerialNumber.IsNewer(serial, z.Serial)) return Task.CompletedTask;
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((serial, done));
            return done.Task;
        }
    }

    /// <summary>IXFR history kept for our own secondaries (FILE.jnl): this much at most.</summary>
    public const long JournalMaxBytes = 16 << 20;
    private ZoneJournal? _journal;

    /// <summary>
    /// The journal of this copy (FILE.jnl): each new version is appended as one step from the
    /// version before, so that our own secondaries get IXFR too. Without it (unreadable), IXFR
    /// from us is answered with the whole zone.
    /// </summary>
    private void OpenJournal()
    {
        try
        {
            string? dir = Path.GetDirectoryName(Path.GetFullPath(_file));
            if (dir is not null) Directory.CreateDirectory(dir);
            _journal = ZoneJournal.Open(_file + ".jnl", Origin, JournalMaxBytes);
            if (_journal.Recovery is { } recovery) _logger.LogWarning("secondary zone {Zone}: journal: {Recovery}", Origin, recovery);
        }
        catch (Exception e) when (e is JournalException or IOException or UnauthorizedAccessException)
        {
            _logger.LogWarning("secondary zone {Zone}: no journal ({Error}): IXFR from this server will send the whole zone", Origin, e.Message);
        }
    }

    /// <summary>Records the step from the version served to <paramref name="next"/> and attaches the journal.</summary>
    private Zone Journaled(Zone next)
    {
        if (_journal is null) return next;
        try
        {
            if (Current is { } previous && SerialNumber.IsNewer(next.Serial, previous.Serial))
            {
                if (_journal.LastSerial is { } last && last != previous.Serial) _journal.Clear();
                _journal.Append(ZoneJournal.Difference(previous.Records(), next.Records()));
                _journal.Compact(next.Serial);
            }
            else _journal.Clear();
        }
        catch (Exception e) when (e is JournalException or IOException)
        {
            _logger.LogWarning("secondary zone {Zone}: journal not written ({Error}); cleared", Origin, e.Message);
            _journal.Clear();
        }
        return new Zone(next.Data) { Journal = _journal };
    }

    private void LoadSaved()
    {
        if (!File.Exists(_file)) return;
        try
        {
            var loaded = ZoneLoader.Load(Origin, _file);
            Current = new Zone(loaded.Zone.Data) { Journal = _journal };
            if (_journal?.LastSerial is { } last && last != Current.Serial) _journal.Clear();   // out of step with the saved copy
            _lastRefresh = ReadState() ?? File.GetLastWriteTimeUtc(_file);
            var (_, _, expire) = Timers(Current);
            Expired = _time.GetUtcNow() - _lastRefresh >= expire;
            _logger.LogInformation("secondary zone {Zone}: serial {Serial} loaded from {File}{Expired}", Origin, Current.Serial, _file,
                Expired ? " but it has expired (no primary reached within the SOA expire time): SERVFAIL until a transfer" : "");
        }
        catch (ZoneLoadException e)
        {
            _logger.LogWarning("secondary zone {Zone}: the saved copy {File} does not load, transferring anew: {Error}", Origin, _file, e.Message);
        }
    }

    private async Task RunAsync(CancellationToken token)
    {
        while (!token.IsCancellationRequested)
        {
            TimeSpan wait;
            bool ok = await RefreshAsync(token);
            if (token.IsCancellationRequested) return;
            if (Current is null) wait = FirstRetry;
            else
            {
                var (refresh, retry, expire) = Timers(Current);
                if (ok) wait = refresh;
                else
                {
                    wait = retry;
                    if (!Expired && _time.GetUtcNow() - _lastRefresh >= expire)
                    {
                        Expired = true;
                        _logger.LogError("secondary zone {Zone} expired: no primary answered for {Expire}; answering SERVFAIL", Origin, expire);
                        Publish();
                    }
                    else if (!Expired)
                    {
                        // Do not sleep past the expiry moment.
                        var left = _lastRefresh + expire - _time.GetUtcNow();
                        if (left < wait) wait = left < MinInterval ? MinInterval : left;
                    }
                }
            }
            // Whichever comes first: the timer (on the TimeProvider, so tests can move time) or a NOTIFY.
            using var either = CancellationTokenSource.CreateLinkedTokenSource(token);
            var woken = _wake.WaitAsync(either.Token);
            var timer = Task.Delay(wait, _time, either.Token);
            await Task.WhenAny(woken, timer);
            either.Cancel();
            try { await Task.WhenAll(woken, timer); }
            catch (OperationCanceledException) { if (token.IsCancellationRequested) return; }
        }
    }

    /// <summary>One check of the primaries in order; true when one answered (up to date or transferred).</summary>
    private async Task<bool> RefreshAsync(CancellationToken token)
    {
        foreach (var primary in _primaries)
        {
            try
            {
                uint serial = await TransferClient.QuerySerialAsync(primary.EndPoint, Origin, primary.Key, SoaTimeout, token);
                if (Current is not null && !Expired && !SerialNumber.IsNewer(serial, Current.Serial))
                {
                    MarkRefreshed();
                    return true;
                }
                if (Current is not null && !SerialNumber.IsNewer(serial, Current.Serial) && Expired)
                {
                    // Expired but the primary still has our serial: the data is good again.
                    MarkRefreshed();
                    Expired = false;
                    Publish();
                    return true;
                }
                var zone = await TransferAsync(primary, token);
                Save(zone);
                zone = Journaled(zone);
                Current = zone;
                Expired = false;
                MarkRefreshed();
                Publish();
                return true;
            }
            catch (TransferException e)
            {
                _logger.LogWarning("secondary zone {Zone}: {Primary}: {Error}", Origin, primary, e.Message);
            }
            catch (ZoneLoadException e)
            {
                _logger.LogWarning("secondary zone {Zone}: the zone from {Primary} is not valid, not served: {Error}", Origin, primary, e.Message);
            }
            catch (IOException e)
            {
                _logger.LogError("secondary zone {Zone}: cannot save {File}: {Error}", Origin, _file, e.Message);
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                return false;
            }
        }
        return false;
    }

    /// <summary>IXFR when we hold a version (falling back to AXFR if the primary's changes do not apply), AXFR otherwise.</summary>
    private async Task<Zone> TransferAsync(PrimaryServer primary, CancellationToken token)
    {
        var started = _time.GetTimestamp();
        var current = Current is { Unavailable: false } c ? c : null;
        TransferResult result;
        if (current is not null)
        {
            result = await TransferClient.TransferAsync(primary.EndPoint, Origin, current.Serial, primary.Key, _limits, token);
            if (result.Kind == TransferKind.Incremental)
            {
                var applied = Apply(current, result.Diffs!, out string? problem);
                if (applied is not null)
                {
                    LastTransfer = "IXFR";
                    Log("IXFR", result, applied, started);
                    return applied;
                }
                _logger.LogWarning("secondary zone {Zone}: IXFR from {Primary} does not apply ({Problem}); trying AXFR", Origin, primary, problem);
                result = await TransferClient.TransferAsync(primary.EndPoint, Origin, null, primary.Key, _limits, token);
            }
            else if (result.Kind == TransferKind.UpToDate) return current;
        }
        else result = await TransferClient.TransferAsync(primary.EndPoint, Origin, null, primary.Key, _limits, token);
        var zone = Build(result.Records!);
        LastTransfer = current is null || result.Kind == TransferKind.Full ? "AXFR" : "IXFR";
        Log(LastTransfer, result, zone, started);
        return zone;
    }

    private void Log(string how, TransferResult result, Zone zone, long started) =>
        _logger.LogInformation("secondary zone {Zone}: {How} done, serial {Serial}, {Records} records, {Messages} messages, {Bytes} bytes, {Ms:0} ms",
            Origin, how, zone.Serial, zone.RecordCount, result.Messages, result.Bytes, _time.GetElapsedTime(started).TotalMilliseconds);

    /// <summary>The current records with each step's deletions and additions applied; null (and why) when a step does not fit.</summary>
    private Zone? Apply(Zone current, List<IxfrDiff> diffs, out string? problem) =>
        ZoneJournal.TryApply(current.Records(), diffs, out var records, out problem) ? Build(records) : null;

    /// <summary>The zone from transferred records, through the same checks as a zone file.</summary>
    private Zone Build(List<ResourceRecord> records) => ZoneLoader.FromRecords(Origin, records, _file);

    /// <summary>The zone file, then its state, each written to a temporary file, flushed to disk and renamed over the old one.</summary>
    private void Save(Zone zone) => ZoneLoader.Save(zone, _file, $"secondary zone {Origin}, serial {zone.Serial}, transferred by Portcullis");

    private void MarkRefreshed()
    {
        _lastRefresh = _time.GetUtcNow();
        try
        {
            ZoneLoader.WriteAtomically(_file + ".state", w =>
                w.WriteLine($"refreshed {_lastRefresh.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture)}"));
        }
        catch (IOException e)
        {
            _logger.LogError("secondary zone {Zone}: cannot save {File}.state: {Error}", Origin, _file, e.Message);
        }
    }

    private DateTimeOffset? ReadState()
    {
        try
        {
            foreach (var line in File.ReadLines(_file + ".state"))
                if (line.StartsWith("refreshed ", StringComparison.Ordinal) && long.TryParse(line.AsSpan(10), NumberStyles.None, CultureInfo.InvariantCulture, out long t))
                    return DateTimeOffset.FromUnixTimeSeconds(t);
        }
        catch (IOException) { }
        return null;
    }

    private void Publish()
    {
        if (Current is null) return;
        var served = Expired ? new Zone(Current.Data) { Unavailable = true } : Current;
        _publish(served);
        if (Expired) return;
        lock (_waitersLock)
        {
            for (int i = _waiters.Count - 1; i >= 0; i--)
                if (!SerialNumber.IsNewer(_waiters[i].Serial, Current.Serial))
                {
                    _waiters[i].Done.TrySetResult();
                    _waiters.RemoveAt(i);
                }
        }
    }

    /// <summary>Refresh, retry and expire from the SOA (RFC 1035 §3.3.13), refresh and retry clamped.</summary>
    private static (TimeSpan Refresh, TimeSpan Retry, TimeSpan Expire) Timers(Zone zone)
    {
        var soa = zone.Soa.First;
        var refresh = TimeSpan.FromSeconds(BinaryPrimitives.ReadUInt32BigEndian(soa[^16..]));
        var retry = TimeSpan.FromSeconds(BinaryPrimitives.ReadUInt32BigEndian(soa[^12..]));
        var expire = TimeSpan.FromSeconds(BinaryPrimitives.ReadUInt32BigEndian(soa[^8..]));
        return (Clamp(refresh), Clamp(retry), expire < MinInterval ? MinInterval : expire);
    }

    private static TimeSpan Clamp(TimeSpan t) => t < MinInterval ? MinInterval : t > MaxInterval ? MaxInterval : t;

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        if (_loop is not null)
        {
            try { await _loop; }
            catch (OperationCanceledException) { }
        }
        _stop.Dispose();
        _wake.Dispose();
        _journal?.Dispose();
    }
}
