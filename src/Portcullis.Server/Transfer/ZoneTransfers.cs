using System.Net;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Portcullis.Server.Transfer;

/// <summary>
/// The outgoing zone transfers of one server: how many run at once (BIND's transfers-out quota,
/// default 10) and the one log line each ends with. Shared by every transport thread, so the count
/// is an interlocked integer; a transfer takes a place in <see cref="TryBegin"/> and gives it back
/// when its stream is disposed, whether it finished or was abandoned.
/// </summary>
public sealed class ZoneTransfers(ILogger? logger = null)
{
    /// <summary>BIND's default for transfers-out.</summary>
    public const int DefaultLimit = 10;

    private int _active;
    private long _completed;
    private long _abandoned;

    public ILogger Logger { get; } = logger ?? NullLogger.Instance;

    /// <summary>Transfers being sent now.</summary>
    public int Active => Volatile.Read(ref _active);

    /// <summary>Transfers that sent their last message.</summary>
    public long Completed => Interlocked.Read(ref _completed);

    /// <summary>Transfers abandoned before their last message (client gone or too slow, server stopping).</summary>
    public long Abandoned => Interlocked.Read(ref _abandoned);

    /// <summary>Takes a place among at most <paramref name="limit"/> concurrent transfers; false when they are all taken.</summary>
    public bool TryBegin(int limit)
    {
        while (true)
        {
            int now = Volatile.Read(ref _active);
            if (now >= limit) return false;
            if (Interlocked.CompareExchange(ref _active, now + 1, now) == now) return true;
        }
    }

    internal void End(in TransferStats stats)
    {
        Interlocked.Decrement(ref _active);
        Interlocked.Increment(ref stats.Completed ? ref _completed : ref _abandoned);
        if (!Logger.IsEnabled(LogLevel.Information)) return;
        var client = new IPAddress(stats.Client);
        if (stats.Completed)
            Logger.LogInformation("{Kind} of {Zone} serial {Serial} to {Client}: {Messages} messages, {Records} records, {Bytes} bytes in {Ms:0} ms",
                stats.Kind, stats.Zone, stats.Serial, client, stats.Messages, stats.Records, stats.Bytes, stats.Elapsed.TotalMilliseconds);
        else
            Logger.LogInformation("{Kind} of {Zone} serial {Serial} to {Client} abandoned: {Messages} messages, {Records} records, {Bytes} bytes in {Ms:0} ms",
                stats.Kind, stats.Zone, stats.Serial, client, stats.Messages, stats.Records, stats.Bytes, stats.Elapsed.TotalMilliseconds);
    }
}

/// <summary>What one transfer sent, for its log line.</summary>
internal readonly record struct TransferStats(string Kind, string Zone, uint Serial, byte[] Client, bool Completed,
    long Messages, long Records, long Bytes, TimeSpan Elapsed);
