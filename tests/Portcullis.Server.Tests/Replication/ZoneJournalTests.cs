using System.Diagnostics;
using System.Globalization;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.ZoneText;
using Portcullis.Server.Replication;
using Xunit;

// Block-scoped: the startup hook below must be in no namespace.
namespace Portcullis.Server.Tests.Replication
{
    /// <summary>
    /// The zone journal: steps written and read back, the serial chain enforced, the steps between two
    /// serials, trimming to a size without dropping what a restart needs, replay (Apply) and the
    /// difference of two versions, and crash safety: a journal cut at every offset, or with any one
    /// octet changed, opens with exactly the complete entries before the damage and never throws.
    /// </summary>
    public sealed class ZoneJournalTests : IDisposable
    {
        private static readonly DnsName Origin = DnsName.Parse("example.test.");
        private readonly string _dir = Directory.CreateTempSubdirectory("journal").FullName;

        public void Dispose() => Directory.Delete(_dir, recursive: true);

        private string JournalPath => Path.Combine(_dir, "example.test.zone.jnl");

        private static List<ResourceRecord> Records(string text)
        {
            using var reader = new ZoneReader(new StringReader("$ORIGIN example.test.\n$TTL 300\n" + text), Origin);
            return reader.ReadRecords().ToList();
        }

        private static ResourceRecord Soa(uint serial) => Records($"@ 3600 SOA ns1 hostmaster {serial} 3600 900 604800 300\n")[0];

        private static IxfrDiff Step(uint from, uint to, string deleted, string added) => new(Soa(from), Records(deleted), Soa(to), Records(added));

        private static string Describe(IxfrDiff d) =>
            $"{d.OldSoa} | {string.Join(", ", d.Deleted)} | {d.NewSoa} | {string.Join(", ", d.Added)}";

        private static List<string> Describe(IEnumerable<IxfrDiff> steps) => steps.Select(Describe).ToList();

        private static readonly string BaseZone = """
            @ 3600 SOA ns1 hostmaster 100 3600 900 604800 300
            @ NS ns1
            ns1 A 192.0.2.1
            www A 192.0.2.80
            """ + "\n";

        /// <summary>
        /// <paramref name="count"/> steps from serial <paramref name="start"/> that apply to <see cref="BaseZone"/> (when it
        /// starts at 100): each adds a host (A, MX and a TXT of varied size), the odd ones also delete the host before.
        /// </summary>
        private static List<IxfrDiff> Chain(int count, uint start = 100, int seed = 1)
        {
            var rng = new Random(seed);
            var steps = new List<IxfrDiff>();
            uint serial = start;
            string? previous = null;
            for (int i = 0; i < count; i++)
            {
                string host = $"h{i}";
                string added = $"{host} A 192.0.2.{i % 250 + 2}\n{host} MX 10 mail.{host}\n{host} TXT \"{new string('x', rng.Next(1, 200))}\"\n";
                string deleted = i % 2 == 1 && previous is not null ? previous : "";
                steps.Add(Step(serial, serial + 1, deleted, added));
                previous = added;
                serial++;
            }
            return steps;
        }

        [Fact]
        public void Steps_appended_are_read_back_after_reopening_in_order()
        {
            var steps = Chain(8);
            using (var journal = ZoneJournal.Open(JournalPath, Origin, 1 << 20))
            {
                Assert.Null(journal.LastSerial);
                Assert.Equal(0, journal.Count);
                foreach (var s in steps) journal.Append(s);
                Assert.Equal(108u, journal.LastSerial);
                Assert.Equal(100u, journal.FirstSerial);
                Assert.Equal(Describe(steps), Describe(journal.All));
            }
            using var reopened = ZoneJournal.Open(JournalPath, Origin, 1 << 20);
            Assert.Null(reopened.Recovery);
            Assert.Equal(Describe(steps), Describe(reopened.All));
            Assert.Equal(new FileInfo(JournalPath).Length, reopened.Length);
            // And appending goes on from where it was.
            reopened.Append(Step(108, 109, "", "late A 192.0.2.9\n"));
            Assert.Equal(109u, reopened.LastSerial);
        }

        [Fact]
        public void A_step_that_does_not_continue_the_chain_or_does_not_go_forward_is_refused_and_nothing_is_written()
        {
            using var journal = ZoneJournal.Open(JournalPath, Origin, 1 << 20);
            journal.Append(Step(100, 101, "", "a A 192.0.2.1\n"));
            long length = journal.Length;
            Assert.Throws<ArgumentException>(() => journal.Append(Step(100, 102, "", "b A 192.0.2.2\n")));   // not from 101
            Assert.Throws<ArgumentException>(() => journal.Append(Step(101, 101, "", "b A 192.0.2.2\n")));   // not newer
            Assert.Throws<ArgumentException>(() => journal.Append(Step(101, 101u + 0x8000_0000u, "", "")));  // 2^31 away: undefined (RFC 1982)
            Assert.Throws<ArgumentException>(() => journal.Append(new IxfrDiff(Soa(101), [], Soa(102),
                [new ResourceRecord(DnsName.Parse("other.test."), RecordType.A, RecordClass.IN, 60, [192, 0, 2, 3])])));   // outside the zone
            Assert.Throws<ArgumentException>(() => journal.Append(new IxfrDiff(Soa(101), [], Soa(102), [Soa(102)])));  // a SOA inside
            Assert.Equal(length, journal.Length);
            Assert.Equal(length, new FileInfo(JournalPath).Length);
            Assert.Equal(101u, journal.LastSerial);
        }

        [Fact]
        public void DiffsFrom_gives_the_steps_from_a_serial_to_the_newest_or_null_when_it_cannot_answer()
        {
            using var journal = ZoneJournal.Open(JournalPath, Origin, 1 << 20);
            Assert.Null(journal.DiffsFrom(100));     // empty: nothing known
            var steps = Chain(5);                    // 100 → 105
            foreach (var s in steps) journal.Append(s);
            for (uint serial = 100; serial <= 105; serial++)
                Assert.Equal(Describe(steps.Skip((int)(serial - 100))), Describe(journal.DiffsFrom(serial)!));
            Assert.Empty(journal.DiffsFrom(105)!);
            Assert.Null(journal.DiffsFrom(99));      // older than the oldest kept
            Assert.Null(journal.DiffsFrom(106));     // newer than ours
            Assert.Null(journal.DiffsFrom(7));
            // Up to a given version (the zone served may lag an append).
            Assert.Equal(Describe(steps.Skip(1).Take(2)), Describe(journal.DiffsFrom(101, 103)!));
            Assert.Empty(journal.DiffsFrom(100, 100)!);
            Assert.Null(journal.DiffsFrom(101, 110));
            Assert.Null(journal.DiffsFrom(103, 101));
        }

        [Fact]
        public void Serials_wrap_around_2_to_the_32_as_RFC_1982_says()
        {
            using (var journal = ZoneJournal.Open(JournalPath, Origin, 1 << 20))
            {
                journal.Append(Step(0xFFFF_FFFE, 0xFFFF_FFFF, "", "a A 192.0.2.1\n"));
                journal.Append(Step(0xFFFF_FFFF, 0, "", "b A 192.0.2.2\n"));
                journal.Append(Step(0, 5, "a A 192.0.2.1\n", ""));
            }
            using var reopened = ZoneJournal.Open(JournalPath, Origin, 1 << 20);
            Assert.Null(reopened.Recovery);
            Assert.Equal(3, reopened.Count);
            Assert.Equal(5u, reopened.LastSerial);
            Assert.Equal(2, reopened.DiffsFrom(0xFFFF_FFFF)!.Count);
            var zone = Records("@ 3600 SOA ns1 hostmaster 4294967294 3600 900 604800 300\n");
            var after = ZoneJournal.Apply(zone, reopened.All).ToList();
            Assert.Equal(5u, SerialNumber.Of(after[0]));
            Assert.Equal(["b.example.test. 300 IN A 192.0.2.2"], after.Skip(1).Select(r => r.ToString()));
        }

        [Fact]
        public void Compact_drops_the_oldest_steps_to_the_size_but_never_those_a_restart_needs()
        {
            var steps = Chain(30);      // 100 → 130, a few hundred octets each
            using var journal = ZoneJournal.Open(JournalPath, Origin, maxBytes: 2000);
            foreach (var s in steps) journal.Append(s);
            long full = journal.Length;
            Assert.True(full > 4000, $"{full} octets");

            // The zone file is at serial 110: the 20 steps after it stay, however large.
            Assert.Equal(10, journal.Compact(zoneFileSerial: 110));
            Assert.Equal(110u, journal.FirstSerial);
            Assert.True(journal.Length > 2000);
            // A serial the journal does not know: nothing can be known to be replayed, nothing dropped.
            Assert.Equal(0, journal.Compact(zoneFileSerial: 7));
            Assert.Equal(20, journal.Count);

            // The zone file caught up with the journal: trimmed to the size, newest kept.
            int dropped = journal.Compact(zoneFileSerial: 130);
            Assert.True(dropped > 0);
            Assert.True(journal.Length <= 2000, $"{journal.Length} octets");
            Assert.Equal(new FileInfo(JournalPath).Length, journal.Length);
            Assert.Equal(Describe(steps.Skip(10 + dropped)), Describe(journal.All));
            Assert.Null(journal.DiffsFrom(100));
            Assert.Equal(Describe(steps.Skip(10 + dropped)), Describe(journal.DiffsFrom(journal.FirstSerial!.Value)!));
            Assert.False(File.Exists(JournalPath + ".tmp"));

            // Appends go on after the rewrite; a reopen reads the same.
            journal.Append(Step(130, 131, "", "late A 192.0.2.9\n"));
            var kept = Describe(journal.All);
            journal.Dispose();
            using var reopened = ZoneJournal.Open(JournalPath, Origin, 2000);
            Assert.Null(reopened.Recovery);
            Assert.Equal(kept, Describe(reopened.All));
        }

        [Fact]
        public void Clear_empties_the_journal_and_any_step_may_start_it_again()
        {
            using (var journal = ZoneJournal.Open(JournalPath, Origin, 1 << 20))
            {
                foreach (var s in Chain(3)) journal.Append(s);
                journal.Clear();
                Assert.Equal(0, journal.Count);
                Assert.Null(journal.LastSerial);
                journal.Append(Step(500, 501, "", "a A 192.0.2.1\n"));
            }
            using var reopened = ZoneJournal.Open(JournalPath, Origin, 1 << 20);
            Assert.Equal(501u, reopened.LastSerial);
            Assert.Equal(1, reopened.Count);
        }

        [Fact]
        public void A_compaction_that_crashed_before_its_rename_leaves_the_journal_whole_and_its_temporary_file_is_removed()
        {
            using (var journal = ZoneJournal.Open(JournalPath, Origin, 1 << 20))
                foreach (var s in Chain(4)) journal.Append(s);
            File.WriteAllBytes(JournalPath + ".tmp", [1, 2, 3]);
            using var reopened = ZoneJournal.Open(JournalPath, Origin, 1 << 20);
            Assert.Equal(4, reopened.Count);
            Assert.False(File.Exists(JournalPath + ".tmp"));
        }

        /// <summary>A journal of <paramref name="steps"/>, its bytes, and where each entry ends (the first boundary is the header's end).</summary>
        private (byte[] Bytes, List<long> Boundaries) Written(List<IxfrDiff> steps)
        {
            var boundaries = new List<long>();
            using (var journal = ZoneJournal.Open(JournalPath, Origin, 1 << 20))
            {
                boundaries.Add(journal.Length);
                foreach (var s in steps)
                {
                    journal.Append(s);
                    boundaries.Add(journal.Length);
                }
            }
            return (File.ReadAllBytes(JournalPath), boundaries);
        }

        [Fact]
        public void A_journal_cut_at_any_offset_opens_with_exactly_the_complete_entries_before_the_cut()
        {
            var steps = Chain(12, seed: 7);
            var (bytes, boundaries) = Written(steps);
            long header = boundaries[0];
            string cutPath = Path.Combine(_dir, "cut.jnl");
            for (int cut = 0; cut <= bytes.Length; cut++)
            {
                File.WriteAllBytes(cutPath, bytes[..cut]);
                int complete = cut < header ? 0 : boundaries.Count(b => b <= cut) - 1;
                using (var journal = ZoneJournal.Open(cutPath, Origin, 1 << 20))
                {
                    Assert.Equal(Describe(steps.Take(complete)), Describe(journal.All));
                    long end = boundaries[complete];
                    // The torn tail is gone from the file too, so the next append starts on a boundary.
                    Assert.Equal(end, new FileInfo(cutPath).Length);
                    Assert.Equal(cut >= header && cut == end, journal.Recovery is null);
                    Assert.Equal(cut >= header ? cut - end : 0, journal.DiscardedBytes);
                    if (cut % 37 == 0)
                    {
                        // The server restarts and takes the next update: it lands after the kept entries.
                        uint from = journal.LastSerial ?? 100;
                        journal.Append(Step(from, from + 1, "", "after A 192.0.2.250\n"));
                    }
                }
                if (cut % 37 == 0)
                {
                    using var again = ZoneJournal.Open(cutPath, Origin, 1 << 20);
                    Assert.Null(again.Recovery);
                    Assert.Equal(complete + 1, again.Count);
                }
            }
        }

        [Fact]
        public void A_journal_with_any_one_octet_of_an_entry_changed_opens_with_the_entries_before_it()
        {
            var steps = Chain(10, seed: 3);
            var (bytes, boundaries) = Written(steps);
            long header = boundaries[0];
            string damaged = Path.Combine(_dir, "flip.jnl");
            var rng = new Random(11);
            for (int at = (int)header; at < bytes.Length; at++)
            {
                var copy = (byte[])bytes.Clone();
                copy[at] ^= (byte)rng.Next(1, 256);
                File.WriteAllBytes(damaged, copy);
                int before = boundaries.Count(b => b <= at) - 1;     // the entry holding the octet is entry `before`
                using var journal = ZoneJournal.Open(damaged, Origin, 1 << 20);
                Assert.Equal(Describe(steps.Take(before)), Describe(journal.All));
                Assert.NotNull(journal.Recovery);
                Assert.Equal(boundaries[before], new FileInfo(damaged).Length);
            }
        }

        [Fact]
        public void A_damaged_header_another_zones_journal_or_another_file_is_refused_with_one_line()
        {
            var (bytes, boundaries) = Written(Chain(2));
            string damaged = Path.Combine(_dir, "header.jnl");
            for (int at = 0; at < boundaries[0]; at++)
            {
                var copy = (byte[])bytes.Clone();
                copy[at] ^= 0x20;
                File.WriteAllBytes(damaged, copy);
                var e = Assert.Throws<JournalException>(() => ZoneJournal.Open(damaged, Origin, 1 << 20));
                Assert.DoesNotContain('\n', e.Message);
                Assert.Equal(copy, File.ReadAllBytes(damaged));     // left as it was for the operator
            }
            var other = Assert.Throws<JournalException>(() => ZoneJournal.Open(JournalPath, DnsName.Parse("other.test."), 1 << 20));
            Assert.Contains("example.test", other.Message);
            File.WriteAllText(damaged, "$ORIGIN example.test.\n");
            Assert.Contains("not a Portcullis journal", Assert.Throws<JournalException>(() => ZoneJournal.Open(damaged, Origin, 1 << 20)).Message);
        }

        [Fact]
        public void Opening_stops_at_a_break_in_the_serial_chain()
        {
            var (first, _) = Written(Chain(3));     // 100 → 103
            File.Delete(JournalPath);
            var (second, boundaries) = Written([Step(200, 201, "", "x A 192.0.2.1\n")]);
            File.WriteAllBytes(JournalPath, [.. first, .. second[(int)boundaries[0]..]]);
            using var journal = ZoneJournal.Open(JournalPath, Origin, 1 << 20);
            Assert.Equal(3, journal.Count);
            Assert.Equal(103u, journal.LastSerial);
            Assert.Contains("serial chain", journal.Recovery);
            Assert.Equal(first.Length, new FileInfo(JournalPath).Length);
        }

        [Fact]
        public void Apply_replays_steps_over_the_zone_and_refuses_steps_that_do_not_fit()
        {
            var zone = Records(BaseZone);
            var steps = new List<IxfrDiff>
            {
                Step(100, 101, "www A 192.0.2.80\n", "www A 192.0.2.81\nmail A 192.0.2.25\n"),
                Step(101, 102, "mail A 192.0.2.25\n", "www 60 A 192.0.2.81\n"),      // a TTL change replaces the record
            };
            var after = ZoneJournal.Apply(zone, steps).Select(r => r.ToString()).ToList();
            Assert.StartsWith("example.test. 3600 IN SOA ns1.example.test. hostmaster.example.test. 102 ", after[0]);
            Assert.Equal(
                ["example.test. 300 IN NS ns1.example.test.", "ns1.example.test. 300 IN A 192.0.2.1", "www.example.test. 60 IN A 192.0.2.81"],
                after.Skip(1).Order(StringComparer.Ordinal));

            Assert.False(ZoneJournal.TryApply(zone, [Step(99, 100, "", "")], out _, out string? problem));
            Assert.Contains("from serial 99 where the zone has 100", problem);
            Assert.False(ZoneJournal.TryApply(zone, [Step(100, 101, "gone A 192.0.2.9\n", "")], out _, out problem));
            Assert.Contains("does not have", problem);
            Assert.False(ZoneJournal.TryApply(Records("a A 192.0.2.1\n"), [], out _, out problem));
            Assert.Contains("no SOA", problem);
            Assert.Throws<JournalException>(() => ZoneJournal.Apply(zone, [Step(100, 101, "gone A 192.0.2.9\n", "")]));
        }

        [Fact]
        public void A_restart_is_the_zone_file_plus_the_steps_after_its_serial_and_Difference_makes_one_step_of_two_versions()
        {
            var zone = Records(BaseZone);
            var steps = Chain(20);
            using var journal = ZoneJournal.Open(JournalPath, Origin, 1 << 20);
            foreach (var s in steps) journal.Append(s);
            var final = ZoneJournal.Apply(zone, journal.All).ToList();
            // The zone file written at serial 110, the journal replayed from there: the same zone.
            var at110 = ZoneJournal.Apply(zone, steps.Take(10)).ToList();
            var restarted = ZoneJournal.Apply(at110, journal.DiffsFrom(110)!).ToList();
            Assert.Equal(Set(final), Set(restarted));

            var one = ZoneJournal.Difference(zone, final);
            Assert.Equal(100u, SerialNumber.Of(one.OldSoa));
            Assert.Equal(120u, SerialNumber.Of(one.NewSoa));
            Assert.Equal(Set(final), Set(ZoneJournal.Apply(zone, [one])));
            Assert.Empty(ZoneJournal.Difference(final, final).Added);

            static List<string> Set(IEnumerable<ResourceRecord> records) => records.Select(r => r.ToString()).Order(StringComparer.Ordinal).ToList();
        }

        // ---- a process killed with SIGKILL while appending and compacting ----

        private const string CrashVariable = "PORTCULLIS_JOURNAL_CRASH_TEST";

        /// <summary>
        /// The child's side: appends steps (tens of KB each, so a kill often lands mid-write) and
        /// compacts now and then (a kill may land mid-rewrite), printing "acked SERIAL" after each
        /// Append returns, as a server would acknowledge an update, until it is killed.
        /// </summary>
        internal static void AppendUntilKilled(string path)
        {
            using var journal = ZoneJournal.Open(path, Origin, maxBytes: 300_000);
            var rng = new Random(Environment.ProcessId);
            uint serial = journal.LastSerial ?? 1;
            for (int i = 0; ; i++)
            {
                var added = new List<ResourceRecord>();
                int records = rng.Next(1, 400);
                for (int r = 0; r < records; r++)
                {
                    var text = new byte[rng.Next(1, 200)];
                    text[0] = (byte)(text.Length - 1);
                    rng.NextBytes(text.AsSpan(1));
                    added.Add(new ResourceRecord(DnsName.Parse($"k{serial}-{r}.example.test."), RecordType.TXT, RecordClass.IN, 300, text));
                }
                journal.Append(new IxfrDiff(Soa(serial), [], Soa(serial + 1), added));
                serial++;
                Console.Out.WriteLine("acked " + serial.ToString(CultureInfo.InvariantCulture));
                if (i % 7 == 6) journal.Compact(serial);
            }
        }

        [Fact]
        public async Task A_process_killed_with_SIGKILL_while_appending_keeps_every_acknowledged_step()
        {
            // The child is this test assembly run by `dotnet exec`, with itself as its startup hook
            // (StartupHook below): the real journal code in a real process, killed for real.
            string assembly = typeof(ZoneJournalTests).Assembly.Location;
            string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";
            var rng = new Random(5);
            uint acked = 0;
            for (int round = 0; round < 6; round++)
            {
                var info = new ProcessStartInfo(dotnet)
                {
                    RedirectStandardOutput = true,
                    RedirectStandardError = true,
                    UseShellExecute = false,
                };
                info.ArgumentList.Add("exec");
                info.ArgumentList.Add(assembly);
                info.Environment["DOTNET_STARTUP_HOOKS"] = assembly;
                info.Environment[CrashVariable] = JournalPath;
                using var child = Process.Start(info)!;
                var stderr = child.StandardError.ReadToEndAsync();
                int target = rng.Next(2, 15), seen = 0;
                try
                {
                    while (seen < target)
                    {
                        string? line = await child.StandardOutput.ReadLineAsync();
                        if (line is null) Assert.Fail($"the child ended early: {await stderr}");
                        acked = uint.Parse(line.AsSpan(6), CultureInfo.InvariantCulture);
                        seen++;
                    }
                }
                finally
                {
                    child.Kill();       // SIGKILL on Linux: no handler, no flush, no finally in the child
                    await child.WaitForExitAsync();
                }
                // Acknowledgements printed before the kill and not read yet count too.
                string? rest;
                while ((rest = await child.StandardOutput.ReadLineAsync()) is not null)
                    if (rest.StartsWith("acked ", StringComparison.Ordinal)) acked = uint.Parse(rest.AsSpan(6), CultureInfo.InvariantCulture);

                using var journal = ZoneJournal.Open(JournalPath, Origin, 300_000);
                // Every acknowledged step is there; at most one more (written, killed before it was acknowledged).
                Assert.True(journal.LastSerial == acked || journal.LastSerial == acked + 1,
                    $"round {round}: last serial {journal.LastSerial}, acknowledged {acked}; {journal.Recovery}");
                Assert.Equal(journal.Count, journal.DiffsFrom(journal.FirstSerial!.Value)!.Count);
                Assert.False(File.Exists(JournalPath + ".tmp"));
                acked = journal.LastSerial!.Value;
            }
        }
    }
}

/// <summary>
/// A .NET startup hook (the type the runtime looks for by this name, in no namespace): when the
/// crash test starts this assembly with <c>DOTNET_STARTUP_HOOKS</c> and its variable set, it runs
/// the appending child; in any other process it does nothing.
/// </summary>
internal static class StartupHook
{
    public static void Initialize()
    {
        if (Environment.GetEnvironmentVariable("PORTCULLIS_JOURNAL_CRASH_TEST") is { Length: > 0 } path)
            Portcullis.Server.Tests.Replication.ZoneJournalTests.AppendUntilKilled(path);
    }
}
