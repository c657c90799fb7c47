using Microsoft.Extensions.Time.Testing;
using Portcullis.Cli;
using Portcullis.Protocol.Names;
using Portcullis.Server.Dnssec;

namespace Portcullis.Server.Tests.Dnssec;

/// <summary>
/// `portcullis dnssec ds-seen`, `ds-withdrawn` and `keys` on a key directory managed by
/// <see cref="ZoneKeys"/>: what the operator types while a KSK rollover waits for the parent.
/// </summary>
public sealed class DsSeenCommandTests : IDisposable
{
    private static readonly DnsName Zone = DnsName.Parse("example.test.");
    private readonly string _dir = Directory.CreateTempSubdirectory("portcullis-ds-seen-").FullName;
    // The CLI runs on the real clock: the fake one starts a little in the past so that waits counted
    // from the CLI's "now" are after the states the test made.
    private readonly FakeTimeProvider _time = new(DateTimeOffset.UtcNow - TimeSpan.FromDays(1));
    /// <summary>A parent with a 2 h DS TTL: the CLI, which does not read the server's configuration, must use it all the same.</summary>
    private static readonly DnssecPolicy Policy = new() { ZskLifetime = null, ParentDsTtl = TimeSpan.FromHours(2) };

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static (int Code, string Stdout, string Stderr) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = CommandLine.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    /// <summary>A zone whose first KSK's DS has been seen, then a KSK rollover started: (old KSK, new KSK).</summary>
    private (ushort Old, ushort New) KskRolloverWaitingForTheParent()
    {
        using var keys = ZoneKeys.Open(Zone, _dir, Policy, _time);
        keys.Plan(TimeSpan.FromHours(1));
        ushort old = keys.Status.Single(s => s.Role == KeyRole.Ksk).KeyTag;
        keys.DsSeen(old);
        keys.RollNow(ksk: true);
        ushort @new = keys.Status.Single(s => s.State == KeyState.DsPending).KeyTag;
        return (old, @new);
    }

    [Fact]
    public void Ds_seen_moves_a_KSK_waiting_for_its_DS_on_and_keys_lists_the_states()
    {
        var (old, @new) = KskRolloverWaitingForTheParent();

        var before = Run("dnssec", "keys", "example.test", "-K", _dir);
        Assert.True(before.Code == 0, before.Stderr);
        var lines = before.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("TAG", lines[0], StringComparison.Ordinal);
        Assert.Equal(4, lines.Length);   // header, KSK, new KSK, ZSK
        string newLine = lines.Single(l => l.StartsWith(@new + " ", StringComparison.Ordinal));
        Assert.Matches(@"KSK\s+ECDSAP256SHA256\s+ds-pending\s+submitted\s+no\s+-\s+yes", newLine);
        Assert.EndsWith($"DS at the parent: portcullis dnssec ds-seen example.test. {@new}", newLine, StringComparison.Ordinal);
        Assert.Matches(@"KSK\s+ECDSAP256SHA256\s+active\s+seen\s+yes\s+keys\s+yes", lines.Single(l => l.StartsWith(old + " ", StringComparison.Ordinal)));
        Assert.Matches(@"ZSK\s+ECDSAP256SHA256\s+active\s+none\s+yes\s+zone\s+no", lines.Single(l => l.Contains("ZSK", StringComparison.Ordinal)));

        var seen = Run("dnssec", "ds-seen", "example.test.", @new.ToString(System.Globalization.CultureInfo.InvariantCulture), "-K", _dir);
        Assert.True(seen.Code == 0, seen.Stderr);
        Assert.Empty(seen.Stderr);
        Assert.StartsWith($"KSK {@new}: ds-propagating, DS seen, next step at ", seen.Stdout, StringComparison.Ordinal);

        // The state is on disk: a ZoneKeys opened afterwards (the server, on reload) sees it.
        using var keys = ZoneKeys.Open(Zone, _dir, Policy, _time);
        var status = keys.Status.Single(s => s.KeyTag == @new);
        Assert.Equal(KeyState.DsPropagating, status.State);
        Assert.Equal(DsState.Seen, status.Ds);
        // Seen at the CLI's real "now": the swap is TTLds + DprpP (the server's 2 h + 1 h) later.
        Assert.InRange(status.NextTransition!.Value - DateTimeOffset.UtcNow, TimeSpan.FromHours(2.9), TimeSpan.FromHours(3));

        var after = Run("dnssec", "keys", "example.test", "-K", _dir);
        Assert.Matches(@"KSK\s+ECDSAP256SHA256\s+ds-propagating\s+seen\s+no\s+-\s+yes\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ",
            after.Stdout.Split('\n').Single(l => l.StartsWith(@new + " ", StringComparison.Ordinal)));
    }

    [Fact]
    public void Ds_withdrawn_removes_the_old_KSK_waiting_for_its_DS_to_go()
    {
        var (old, @new) = KskRolloverWaitingForTheParent();
        using (var keys = ZoneKeys.Open(Zone, _dir, Policy, _time))
        {
            keys.DsSeen(@new);
            // TTLds + DprpP, then the swap; TTLkey + Dprp, then CDS drops the old key.
            _time.Advance(TimeSpan.FromHours(3));
            keys.Plan(TimeSpan.FromHours(1));
            _time.Advance(TimeSpan.FromHours(2));
            keys.Plan(TimeSpan.FromHours(1));
            Assert.Equal(KeyState.DsWithdrawing, keys.Status.Single(s => s.KeyTag == old).State);
        }
        var gone = Run("dnssec", "ds-withdrawn", "example.test", old.ToString(System.Globalization.CultureInfo.InvariantCulture), "-K", _dir);
        Assert.True(gone.Code == 0, gone.Stderr);
        Assert.Equal($"KSK {old}: removed, DS withdrawn\n", gone.Stdout.ReplaceLineEndings("\n"));
        using var reread = ZoneKeys.Open(Zone, _dir, Policy, _time);
        Assert.Equal(KeyState.Removed, reread.Status.Single(s => s.KeyTag == old).State);
    }

    [Fact]
    public void A_running_ZoneKeys_takes_in_ds_seen_from_the_command_and_does_not_overwrite_it()
    {
        var (_, @new) = KskRolloverWaitingForTheParent();
        using var server = ZoneKeys.Open(Zone, _dir, Policy, _time);
        Assert.Equal(DateTimeOffset.MaxValue, server.Plan(TimeSpan.FromHours(1)).NextEvent);   // waiting for the parent: no timeout

        var seen = Run("dnssec", "ds-seen", "example.test", @new.ToString(System.Globalization.CultureInfo.InvariantCulture), "-K", _dir);
        Assert.True(seen.Code == 0, seen.Stderr);

        // A larger zone TTL makes the server write every state; the operator's step survives it.
        var plan = server.Plan(TimeSpan.FromHours(5));
        Assert.Equal(KeyState.DsPropagating, server.Status.Single(s => s.KeyTag == @new).State);
        Assert.True(plan.NextEvent < DateTimeOffset.MaxValue);
        using var reread = ZoneKeys.Open(Zone, _dir, Policy, _time);
        Assert.Equal(KeyState.DsPropagating, reread.Status.Single(s => s.KeyTag == @new).State);
    }

    [Fact]
    public void A_bad_tag_exits_1_with_one_line()
    {
        var (old, @new) = KskRolloverWaitingForTheParent();
        ushort unknown = (ushort)Enumerable.Range(1, 65535).First(t => t != old && t != @new && !Directory.GetFiles(_dir, $"*+{t:D5}.key").Any());
        var r = Run("dnssec", "ds-seen", "example.test", unknown.ToString(System.Globalization.CultureInfo.InvariantCulture), "-K", _dir);
        Assert.Equal(1, r.Code);
        Assert.Empty(r.Stdout);
        Assert.Matches($@"^portcullis: example\.test\. has no key with tag {unknown} in .* \(its keys: .*\)\n$", r.Stderr.ReplaceLineEndings("\n"));

        var notNumber = Run("dnssec", "ds-seen", "example.test", "KSK1", "-K", _dir);
        Assert.Equal(2, notNumber.Code);
        Assert.Equal("portcullis: 'KSK1': not a key tag (0 to 65535)\n", notNumber.Stderr.ReplaceLineEndings("\n"));

        var noDir = Run("dnssec", "keys", "example.test", "-K", Path.Combine(_dir, "absent"));
        Assert.Equal(1, noDir.Code);
        Assert.Single(noDir.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }
}
