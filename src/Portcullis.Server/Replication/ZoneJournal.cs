using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.InteropServices;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.ZoneText;

namespace Portcullis.Server.Replication;

/// <summary>A journal that cannot be used as it is: not a journal, another zone's, a damaged header.</summary>
public sealed class JournalException(string message) : Exception(message);

/// <summary>
/// The journal of one zone (issue 7, points 2, 5 and 6): an append-only file of the changes made to
/// the zone, each an <see cref="IxfrDiff"/> step (RFC 1995 §4: the old SOA, the records deleted,
/// the new SOA, the records added). It serves two purposes:
/// <list type="bullet">
/// <item>Crash safety: <see cref="Append"/> returns only once the step is on disk (written and
/// fsynced), so a change acknowledged after it survives a crash; a restart is the zone file plus
/// the steps after its serial (<see cref="DiffsFrom(uint)"/>, <see cref="Apply"/>).</item>
/// <item>IXFR out: the steps from a secondary's serial to ours (<see cref="DiffsFrom(uint, uint)"/>).</item>
/// </list>
/// <para>
/// File format (all integers big-endian): a header — the 8 octets <c>PCJOURN1</c>, the origin's
/// length (1 octet) and wire form, and a CRC-32C of all of that — then entries, each a 4-octet
/// payload length, a 4-octet CRC-32C of the length and the payload, and the payload: the old SOA,
/// a 4-octet count and that many deleted records, the new SOA, a count and the added records; a
/// record is its owner's length (1 octet) and uncompressed wire name, TYPE, CLASS, TTL, RDLENGTH
/// and RDATA. A crash mid-append leaves a short or mismatching last entry: <see cref="Open"/> cuts
/// the file back to the last complete entry, keeping every one before it, and also stops at the
/// first entry that does not continue the previous one's serial (a broken chain cannot be
/// replayed past).
/// </para>
/// <para>
/// One writer at a time (<see cref="Append"/>, <see cref="Compact"/>, <see cref="Clear"/> take a
/// lock); readers (<see cref="DiffsFrom(uint, uint)"/>, <see cref="LastSerial"/>, <see cref="All"/>)
/// read an immutable snapshot through one volatile reference and never lock, so the IXFR path does
/// not wait for an update being written.
/// </para>
/// </summary>
public sealed class ZoneJournal : IDisposable
{
    private static ReadOnlySpan<byte> Magic => "PCJOURN1"u8;
    private const int EntryFraming = 8;          // payload length + CRC
    /// <summary>The largest entry accepted: 64 MiB of changes in one step is far beyond any update or IXFR step.</summary>
    private const int MaxPayload = 64 << 20;

    /// <summary>The steps held, and where each one's entry begins in the file, published whole.</summary>
    private sealed class Snapshot(IxfrDiff[] steps, long[] offsets, long end)
    {
        public readonly IxfrDiff[] Steps = steps;
        /// <summary>Offsets[i] is where step i's entry begins; <see cref="End"/> where the file's last entry ends.</summary>
        public readonly long[] Offsets = offsets;
        public readonly long End = end;
    }

    private readonly string _path;
    private readonly byte[] _header;
    private readonly object _writeLock = new();
    private FileStream? _file;
    private volatile Snapshot _snapshot;

    private ZoneJournal(string path, DnsName origin, long maxBytes, byte[] header, FileStream file, Snapshot snapshot)
    {
        _path = path;
        Origin = origin;
        MaxBytes = maxBytes;
        _header = header;
        _file = file;
        _snapshot = snapshot;
    }

    public DnsName Origin { get; }
    public string Path => _path;
    /// <summary>The size the history is trimmed to by <see cref="Compact"/> (steps still needed to replay the zone file are kept beyond it).</summary>
    public long MaxBytes { get; }
    /// <summary>What <see cref="Open"/> cut off the end of the file, in one line (null when the file was whole): a torn or corrupt entry, or a broken chain.</summary>
    public string? Recovery { get; private set; }
    /// <summary>Octets <see cref="Open"/> cut off the end of the file.</summary>
    public long DiscardedBytes { get; private set; }

    /// <summary>The serial of the newest step's new SOA; null when the journal is empty.</summary>
    public uint? LastSerial
    {
        get
        {
            var steps = _snapshot.Steps;
            return steps.Length == 0 ? null : SerialNumber.Of(steps[^1].NewSoa);
        }
    }

    /// <summary>The serial the oldest step starts from; null when the journal is empty.</summary>
    public uint? FirstSerial
    {
        get
        {
            var steps = _snapshot.Steps;
            return steps.Length == 0 ? null : SerialNumber.Of(steps[0].OldSoa);
        }
    }

    /// <summary>Every step held, oldest first.</summary>
    public IEnumerable<IxfrDiff> All => _snapshot.Steps;

    /// <summary>Steps held.</summary>
    public int Count => _snapshot.Steps.Length;

    /// <summary>The file's size: the header and every entry held.</summary>
    public long Length => _snapshot.End;

    /// <summary>
    /// Opens the journal at <paramref name="path"/>, creating it (empty) when there is none. Every
    /// complete entry is read back; a torn or corrupt tail, or the entries from a break in the
    /// serial chain on, are cut off the file (<see cref="Recovery"/> says what was cut).
    /// </summary>
    /// <exception cref="JournalException">The file is not a Portcullis journal, is another zone's, or its header is damaged.</exception>
    /// <exception cref="IOException">The file cannot be read or written.</exception>
    public static ZoneJournal Open(string path, DnsName origin, long maxBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxBytes);
        byte[] header = Header(origin);
        // A compaction that crashed before its rename leaves its temporary file: the journal itself is whole.
        TryDelete(TempPath(path));
        if (!File.Exists(path)) WriteAtomically(path, header, null, 0, 0);
        var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.Read, 1, FileOptions.None);
        try
        {
            long length = file.Length;
            var found = new byte[Math.Min(length, header.Length)];
            file.ReadExactly(found);
            if (!found.AsSpan().SequenceEqual(header.AsSpan(0, found.Length)))
                throw new JournalException(DescribeBadHeader(path, origin, found, header));
            if (length < header.Length)
            {
                // Only a prefix of the header: the file was cut before any entry (journals are
                // created whole by rename, so only damage gets here). Nothing to keep.
                file.SetLength(0);
                file.Write(header);
                file.Flush(flushToDisk: true);
                var empty = new ZoneJournal(path, origin, maxBytes, header, file, new Snapshot([], [], header.Length));
                empty.Recovery = $"{path}: the header was cut short ({length} of {header.Length} octets); started an empty journal";
                return empty;
            }
            var journal = ReadEntries(path, origin, maxBytes, header, file);
            return journal;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private static ZoneJournal ReadEntries(string path, DnsName origin, long maxBytes, byte[] header, FileStream file)
    {
        long length = file.Length;
        long position = header.Length;
        var steps = new List<IxfrDiff>();
        var offsets = new List<long>();
        string? problem = null;
        Span<byte> framing = stackalloc byte[EntryFraming];
        file.Position = position;
        while (position < length)
        {
            if (length - position < EntryFraming)
            {
                problem = "a torn entry (its length cut short)";
                break;
            }
            file.ReadExactly(framing);
            uint payloadLength = BinaryPrimitives.ReadUInt32BigEndian(framing);
            uint crc = BinaryPrimitives.ReadUInt32BigEndian(framing[4..]);
            if (payloadLength > MaxPayload || payloadLength > length - position - EntryFraming)
            {
                problem = payloadLength > MaxPayload ? "a corrupt entry (impossible length)" : "a torn entry (shorter than its length)";
                break;
            }
            var payload = new byte[payloadLength];
            file.ReadExactly(payload);
            if (Crc(framing[..4], payload) != crc)
            {
                problem = "a corrupt entry (checksum mismatch)";
                break;
            }
            if (!TryDecode(payload, origin, out var step))
            {
                problem = "an entry that does not decode";
                break;
            }
            if (steps.Count > 0 && SerialNumber.Of(step.OldSoa) != SerialNumber.Of(steps[^1].NewSoa))
            {
                problem = $"a break in the serial chain (a step from {SerialNumber.Of(step.OldSoa)} after one to {SerialNumber.Of(steps[^1].NewSoa)})";
                break;
            }
            steps.Add(step);
            offsets.Add(position);
            position += EntryFraming + payloadLength;
        }
        var journal = new ZoneJournal(path, origin, maxBytes, header, file, new Snapshot([.. steps], [.. offsets], position));
        if (problem is not null)
        {
            // Cut the file back to the last good entry, so that the next append starts on a
            // boundary and a later open reads exactly what this one kept.
            file.SetLength(position);
            file.Flush(flushToDisk: true);
            journal.DiscardedBytes = length - position;
            journal.Recovery = $"{path}: cut {length - position} octets at offset {position}: {problem}; {steps.Count} steps kept";
        }
        return journal;
    }

    private static string DescribeBadHeader(string path, DnsName origin, byte[] found, byte[] header)
    {
        if (!found.AsSpan(0, Math.Min(found.Length, Magic.Length)).SequenceEqual(Magic[..Math.Min(found.Length, Magic.Length)]))
            return $"{path} is not a Portcullis journal";
        int n = found.Length > Magic.Length ? found[Magic.Length] : -1;
        if (n > 0 && found.Length >= Magic.Length + 1 + n && DnsName.TryMeasureWire(found.AsSpan(Magic.Length + 1, n), out int measured, out _)
            && measured == n && !DnsName.EqualsIgnoreCase(found.AsSpan(Magic.Length + 1, n), origin.Wire))
            return $"{path} is the journal of zone {DnsName.FromWire(found.AsSpan(Magic.Length + 1, n))}, not {origin}";
        return $"{path}: the journal's header is damaged (zone {origin}); move the file away to start a new journal";
    }

    /// <summary>
    /// Writes <paramref name="diff"/> at the end of the journal and flushes it to disk before
    /// returning: only then may the change it records be acknowledged (RFC 2136 §3.8 has the
    /// response sent after the update is committed to stable storage).
    /// </summary>
    /// <exception cref="ArgumentException">The step does not continue the journal (its old serial is not <see cref="LastSerial"/>), its new serial is not newer (RFC 1982), or a record is not of this zone.</exception>
    /// <exception cref="IOException">The write or the flush failed: nothing was appended (the file is cut back).</exception>
    public void Append(IxfrDiff diff)
    {
        Validate(diff);
        byte[] entry = Encode(diff);
        lock (_writeLock)
        {
            var file = _file ?? throw new ObjectDisposedException(nameof(ZoneJournal));
            var snapshot = _snapshot;
            if (snapshot.Steps.Length > 0 && SerialNumber.Of(diff.OldSoa) != SerialNumber.Of(snapshot.Steps[^1].NewSoa))
                throw new ArgumentException(
                    $"a step from serial {SerialNumber.Of(diff.OldSoa)} does not continue the journal of {Origin}, which ends at {SerialNumber.Of(snapshot.Steps[^1].NewSoa)}",
                    nameof(diff));
            try
            {
                file.Position = snapshot.End;
                file.Write(entry);
                file.Flush(flushToDisk: true);
            }
            catch (IOException)
            {
                // A half-written entry would be cut at the next open anyway; cut it now so that the
                // next append does not land after it.
                try
                {
                    file.SetLength(snapshot.End);
                    file.Flush(flushToDisk: true);
                }
                catch (IOException) { }
                throw;
            }
            _snapshot = new Snapshot([.. snapshot.Steps, diff], [.. snapshot.Offsets, snapshot.End], snapshot.End + entry.Length);
        }
    }

    /// <summary>
    /// The steps from <paramref name="serial"/> to the newest (empty when it is the newest), or null
    /// when the journal cannot answer: the serial is older than the oldest step or not one of its
    /// serials, or the journal is empty. On restart: the steps to replay over a zone file of that serial.
    /// </summary>
    public IReadOnlyList<IxfrDiff>? DiffsFrom(uint serial)
    {
        var steps = _snapshot.Steps;
        return steps.Length == 0 ? null : Range(steps, serial, SerialNumber.Of(steps[^1].NewSoa));
    }

    /// <summary>
    /// The steps from <paramref name="serial"/> to the version with serial <paramref name="to"/>
    /// (the zone served now, which an update may not yet have caught up with), or null when the
    /// journal does not hold that whole path. An IXFR answer (RFC 1995 §4) for a client at
    /// <paramref name="serial"/>. No lock and one small allocation (the list view).
    /// </summary>
    public IReadOnlyList<IxfrDiff>? DiffsFrom(uint serial, uint to) => Range(_snapshot.Steps, serial, to);

    private static IReadOnlyList<IxfrDiff>? Range(IxfrDiff[] steps, uint from, uint to)
    {
        int last = -1;
        for (int i = steps.Length - 1; i >= 0; i--)
        {
            if (SerialNumber.Of(steps[i].NewSoa) == to)
            {
                last = i;
                break;
            }
        }
        if (last < 0)
        {
            // Only the oldest serial is not any step's new one: asked from it to itself, nothing to send.
            if (from == to && steps.Length > 0 && SerialNumber.Of(steps[0].OldSoa) == to) return new ArraySegment<IxfrDiff>(steps, 0, 0);
            return null;
        }
        if (from == to) return new ArraySegment<IxfrDiff>(steps, last + 1, 0);
        for (int i = last; i >= 0; i--)
            if (SerialNumber.Of(steps[i].OldSoa) == from) return new ArraySegment<IxfrDiff>(steps, i, last - i + 1);
        return null;
    }

    /// <summary>
    /// Trims the history to <see cref="MaxBytes"/> by dropping the oldest steps, except those a
    /// restart still needs: the steps after <paramref name="zoneFileSerial"/>, the serial of the
    /// zone file on disk (all are kept when the journal does not know that serial). The kept
    /// entries are copied to a temporary file, which is flushed to disk and renamed over the
    /// journal (atomic: a crash leaves the old journal or the new one). Returns the steps dropped.
    /// </summary>
    public int Compact(uint zoneFileSerial)
    {
        lock (_writeLock)
        {
            var file = _file ?? throw new ObjectDisposedException(nameof(ZoneJournal));
            var s = _snapshot;
            int n = s.Steps.Length;
            int needed = n;     // the first step a restart from the zone file needs
            if (n > 0 && SerialNumber.Of(s.Steps[^1].NewSoa) != zoneFileSerial)
            {
                needed = 0;
                for (int i = n - 1; i >= 0; i--)
                {
                    if (SerialNumber.Of(s.Steps[i].OldSoa) == zoneFileSerial)
                    {
                        needed = i;
                        break;
                    }
                }
            }
            int keep = 0;
            while (keep < needed && _header.Length + (s.End - s.Offsets[keep]) > MaxBytes) keep++;
            if (keep == 0) return 0;
            Rewrite(file, s, keep);
            return keep;
        }
    }

    /// <summary>Drops every step (the zone file is the whole truth again), atomically as <see cref="Compact"/>.</summary>
    public void Clear()
    {
        lock (_writeLock)
        {
            var file = _file ?? throw new ObjectDisposedException(nameof(ZoneJournal));
            Rewrite(file, _snapshot, _snapshot.Steps.Length);
        }
    }

    /// <summary>Replaces the file by the header and the entries from step <paramref name="keep"/> on.</summary>
    private void Rewrite(FileStream file, Snapshot s, int keep)
    {
        long from = keep < s.Steps.Length ? s.Offsets[keep] : s.End;
        WriteAtomically(_path, _header, file, from, s.End - from);
        file.Dispose();
        _file = null;
        var reopened = new FileStream(_path, FileMode.Open, FileAccess.ReadWrite, FileShare.Read, 1, FileOptions.None);
        long shift = from - _header.Length;
        var offsets = new long[s.Steps.Length - keep];
        for (int i = 0; i < offsets.Length; i++) offsets[i] = s.Offsets[keep + i] - shift;
        _file = reopened;
        _snapshot = new Snapshot(s.Steps[keep..], offsets, s.End - shift);
    }

    /// <summary>
    /// Writes the header and <paramref name="count"/> octets of <paramref name="source"/> from
    /// <paramref name="from"/> to PATH.tmp, flushes it to disk, renames it over
    /// <paramref name="path"/> and flushes the directory, so the rename itself survives a crash.
    /// </summary>
    private static void WriteAtomically(string path, byte[] header, FileStream? source, long from, long count)
    {
        string temp = TempPath(path);
        using (var output = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.None))
        {
            output.Write(header);
            if (source is not null && count > 0)
            {
                var buffer = new byte[1 << 16];
                source.Position = from;
                long left = count;
                while (left > 0)
                {
                    int n = source.Read(buffer, 0, (int)Math.Min(buffer.Length, left));
                    if (n == 0) throw new IOException($"{path}: the journal ended early while it was being compacted");
                    output.Write(buffer, 0, n);
                    left -= n;
                }
            }
            output.Flush(flushToDisk: true);
        }
        File.Move(temp, path, overwrite: true);
        SyncDirectory(path);
    }

    private static string TempPath(string path) => path + ".tmp";

    private static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    /// <summary>fsync(2) of the directory holding <paramref name="path"/>: makes a rename or a new file's entry durable (Linux; elsewhere nothing).</summary>
    private static unsafe void SyncDirectory(string path)
    {
        if (!OperatingSystem.IsLinux()) return;
        string dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path)) ?? "/";
        byte[] bytes = new byte[System.Text.Encoding.UTF8.GetByteCount(dir) + 1];
        System.Text.Encoding.UTF8.GetBytes(dir, bytes);
        fixed (byte* p = bytes)
        {
            int fd = JournalNative.open(p, 0 /* O_RDONLY */);
            if (fd < 0) return;     // best effort: the data itself is already on disk
            JournalNative.fsync(fd);
            JournalNative.close(fd);
        }
    }

    public void Dispose()
    {
        lock (_writeLock)
        {
            _file?.Dispose();
            _file = null;
        }
    }

    // ---- the records after the steps ----

    /// <summary>
    /// The records of <paramref name="zone"/> (which holds exactly one SOA) after
    /// <paramref name="diffs"/>: a restart is the zone file with the journal's steps from its serial
    /// replayed; a secondary applies an IXFR's steps the same way. The SOA comes first.
    /// </summary>
    /// <exception cref="JournalException">A step does not apply: see <see cref="TryApply"/>.</exception>
    public static IEnumerable<ResourceRecord> Apply(IEnumerable<ResourceRecord> zone, IEnumerable<IxfrDiff> diffs) =>
        TryApply(zone, diffs, out var records, out string? problem) ? records : throw new JournalException(problem!);

    /// <summary>
    /// As <see cref="Apply"/>, without throwing: false (and why, in one line) when the zone has no
    /// SOA or more than one, a step starts from another serial than the version it applies to, its
    /// new serial is not newer (RFC 1982 §3.2), or it deletes a record the version does not have.
    /// Records are matched as <see cref="ResourceRecord.Equals(ResourceRecord?)"/> does (owner and
    /// RDATA names without case, TTL ignored); an added record that is already there replaces it
    /// (its TTL changes).
    /// </summary>
    public static bool TryApply(IEnumerable<ResourceRecord> zone, IEnumerable<IxfrDiff> diffs,
        out List<ResourceRecord> records, out string? problem)
    {
        records = [];
        var set = new HashSet<ResourceRecord>();
        ResourceRecord? soa = null;
        foreach (var r in zone)
        {
            if (r.Type == RecordType.SOA)
            {
                if (soa is not null)
                {
                    problem = "the zone has more than one SOA record";
                    return false;
                }
                soa = r;
                continue;
            }
            set.Remove(r);
            set.Add(r);
        }
        if (soa is null)
        {
            problem = "the zone has no SOA record";
            return false;
        }
        uint serial = SerialNumber.Of(soa);
        foreach (var diff in diffs)
        {
            uint from = SerialNumber.Of(diff.OldSoa), to = SerialNumber.Of(diff.NewSoa);
            if (from != serial)
            {
                problem = $"a step from serial {from} where the zone has {serial}";
                return false;
            }
            if (!SerialNumber.IsNewer(to, from))
            {
                problem = $"a step from serial {from} to {to}, which is not newer (RFC 1982)";
                return false;
            }
            foreach (var r in diff.Deleted)
            {
                if (!set.Remove(r))
                {
                    problem = $"the step from serial {from} deletes {r}, which the zone does not have";
                    return false;
                }
            }
            foreach (var r in diff.Added)
            {
                set.Remove(r);
                set.Add(r);
            }
            soa = diff.NewSoa;
            serial = to;
        }
        records.Capacity = set.Count + 1;
        records.Add(soa);
        records.AddRange(set);
        problem = null;
        return true;
    }

    /// <summary>
    /// The step from one version of a zone to another (each with exactly one SOA): what is in
    /// <paramref name="from"/> and not in <paramref name="to"/> is deleted, the reverse added, and a
    /// record whose TTL changed is deleted and added. For a zone reloaded from a file edited by
    /// hand (BIND's ixfr-from-differences), so the journal and IXFR still follow it.
    /// </summary>
    /// <remarks>
    /// Both versions are usually a zone's canonical records (Zone.Records()): they are then walked
    /// side by side, RRset by RRset, in linear time, and only RRsets that differ are compared record
    /// by record. Anything else (another order, duplicates, not one SOA) takes the hashing path; both
    /// give the same lists in the same order (deleted in the order of <paramref name="from"/>, added
    /// in that of <paramref name="to"/>).
    /// </remarks>
    public static IxfrDiff Difference(IEnumerable<ResourceRecord> from, IEnumerable<ResourceRecord> to)
    {
        var oldRecords = from as IReadOnlyList<ResourceRecord> ?? from.ToList();
        var newRecords = to as IReadOnlyList<ResourceRecord> ?? to.ToList();
        if (ZoneWriter.IsSortedCanonical(oldRecords) && ZoneWriter.IsSortedCanonical(newRecords) && TryMergeDifference(oldRecords, newRecords, out var merged))
            return merged;
        var (oldSoa, oldSet) = Split(oldRecords, nameof(from));
        var (newSoa, newSet) = Split(newRecords, nameof(to));
        var deleted = new List<ResourceRecord>();
        var added = new List<ResourceRecord>();
        foreach (var r in oldSet)
            if (!newSet.TryGetValue(r, out var now) || now.Ttl != r.Ttl) deleted.Add(r);
        foreach (var r in newSet)
            if (!oldSet.TryGetValue(r, out var before) || before.Ttl != r.Ttl) added.Add(r);
        return new IxfrDiff(oldSoa, deleted, newSoa, added);
    }

    /// <summary>
    /// <see cref="Difference"/> of two lists in canonical order without duplicates: a merge over
    /// their RRsets. False (the caller hashes instead) when either has no SOA or more than one, or
    /// when an RRset that changed holds two records equal as RRset members (names compared without
    /// case) yet distinct in canonical order, or is large: there, record-by-record matching could
    /// differ from the set semantics of the hashing path.
    /// </summary>
    private static bool TryMergeDifference(IReadOnlyList<ResourceRecord> from, IReadOnlyList<ResourceRecord> to, out IxfrDiff diff)
    {
        diff = null!;
        ResourceRecord? oldSoa = null, newSoa = null;
        var deleted = new List<ResourceRecord>();
        var added = new List<ResourceRecord>();
        int i = 0, j = 0;
        while (i < from.Count || j < to.Count)
        {
            // The next RRset of each list (records of one RRset are adjacent in canonical order).
            int iEnd = RrsetEnd(from, i), jEnd = RrsetEnd(to, j);
            int c = i == from.Count ? 1 : j == to.Count ? -1 : ZoneWriter.CompareRrsets(from[i], to[j]);
            if (c <= 0 && from[i].Type == RecordType.SOA)
            {
                if (oldSoa is not null || iEnd - i != 1) return false;
                oldSoa = from[i];
            }
            if (c >= 0 && to[j].Type == RecordType.SOA)
            {
                if (newSoa is not null || jEnd - j != 1) return false;
                newSoa = to[j];
            }
            if (c < 0)
            {
                if (from[i].Type != RecordType.SOA) AddRange(deleted, from, i, iEnd);
                i = iEnd;
            }
            else if (c > 0)
            {
                if (to[j].Type != RecordType.SOA) AddRange(added, to, j, jEnd);
                j = jEnd;
            }
            else
            {
                if (from[i].Type != RecordType.SOA && !SameRecords(from, i, iEnd, to, j, jEnd)
                    && !TryRrsetDifference(from, i, iEnd, to, j, jEnd, deleted, added)) return false;
                i = iEnd;
                j = jEnd;
            }
        }
        if (oldSoa is null || newSoa is null) return false;
        diff = new IxfrDiff(oldSoa, deleted, newSoa, added);
        return true;
    }

    private static int RrsetEnd(IReadOnlyList<ResourceRecord> records, int start)
    {
        if (start >= records.Count) return start;
        int end = start + 1;
        while (end < records.Count && ZoneWriter.CompareRrsets(records[start], records[end]) == 0) end++;
        return end;
    }

    private static void AddRange(List<ResourceRecord> to, IReadOnlyList<ResourceRecord> records, int start, int end)
    {
        for (int k = start; k < end; k++) to.Add(records[k]);
    }

    /// <summary>The same records, RDATA octet for octet, with the same TTLs: nothing to journal.</summary>
    private static bool SameRecords(IReadOnlyList<ResourceRecord> a, int aStart, int aEnd, IReadOnlyList<ResourceRecord> b, int bStart, int bEnd)
    {
        if (aEnd - aStart != bEnd - bStart) return false;
        for (int k = 0; k < aEnd - aStart; k++)
        {
            var x = a[aStart + k];
            var y = b[bStart + k];
            if (x.Ttl != y.Ttl || !x.Data.AsSpan().SequenceEqual(y.Data)) return false;
        }
        return true;
    }

    /// <summary>One RRset in both versions, changed: its records matched as the hashing path matches them (ResourceRecord.Equals, then TTL).</summary>
    private static bool TryRrsetDifference(IReadOnlyList<ResourceRecord> a, int aStart, int aEnd, IReadOnlyList<ResourceRecord> b, int bStart, int bEnd,
        List<ResourceRecord> deleted, List<ResourceRecord> added)
    {
        const int Largest = 64;   // beyond this the pairwise matching costs more than the hashing path
        if (aEnd - aStart > Largest || bEnd - bStart > Largest) return false;
        if (HasEqualPair(a, aStart, aEnd) || HasEqualPair(b, bStart, bEnd)) return false;
        for (int x = aStart; x < aEnd; x++)
            if (Match(a[x], b, bStart, bEnd) is not { } now || now.Ttl != a[x].Ttl) deleted.Add(a[x]);
        for (int y = bStart; y < bEnd; y++)
            if (Match(b[y], a, aStart, aEnd) is not { } earlier || earlier.Ttl != b[y].Ttl) added.Add(b[y]);
        return true;
    }

    private static bool HasEqualPair(IReadOnlyList<ResourceRecord> records, int start, int end)
    {
        for (int x = start; x < end; x++)
            for (int y = x + 1; y < end; y++)
                if (records[x].Equals(records[y])) return true;
        return false;
    }

    private static ResourceRecord? Match(ResourceRecord r, IReadOnlyList<ResourceRecord> records, int start, int end)
    {
        for (int k = start; k < end; k++)
            if (records[k].Equals(r)) return records[k];
        return null;
    }

    private static (ResourceRecord Soa, HashSet<ResourceRecord> Others) Split(IEnumerable<ResourceRecord> zone, string name)
    {
        ResourceRecord? soa = null;
        var rest = new HashSet<ResourceRecord>();
        foreach (var r in zone)
        {
            if (r.Type == RecordType.SOA)
            {
                if (soa is not null) throw new ArgumentException("the zone has more than one SOA record", name);
                soa = r;
            }
            else
            {
                rest.Remove(r);
                rest.Add(r);
            }
        }
        return (soa ?? throw new ArgumentException("the zone has no SOA record", name), rest);
    }

    /// <summary>The serial of a SOA record (RFC 1035 §3.3.13: the first of the five 32-bit fields ending the RDATA).</summary>

    // ---- encoding ----

    private void Validate(IxfrDiff diff)
    {
        CheckSoa(diff.OldSoa, "old");
        CheckSoa(diff.NewSoa, "new");
        uint from = SerialNumber.Of(diff.OldSoa), to = SerialNumber.Of(diff.NewSoa);
        if (!SerialNumber.IsNewer(to, from))
            throw new ArgumentException($"a step of {Origin} from serial {from} to {to}: the new serial must be newer (RFC 1982)", nameof(diff));
        foreach (var r in diff.Deleted) CheckRecord(r);
        foreach (var r in diff.Added) CheckRecord(r);
    }

    private void CheckSoa(ResourceRecord soa, string which)
    {
        if (soa.Type != RecordType.SOA || soa.Data.Length < 22 || !soa.Owner.Equals(Origin))
            throw new ArgumentException($"the {which} SOA of a step of {Origin} is not the zone's SOA: {soa}", nameof(soa));
    }

    private void CheckRecord(ResourceRecord r)
    {
        if (r.Type == RecordType.SOA)
            throw new ArgumentException($"a step of {Origin} lists a SOA among its records (the old and new SOA frame it): {r}", nameof(r));
        if (!r.Owner.IsSubdomainOf(Origin))
            throw new ArgumentException($"a step of {Origin} holds a record outside the zone: {r}", nameof(r));
        if (r.Data.Length > ushort.MaxValue)
            throw new ArgumentException($"a step of {Origin} holds a record with more than 65,535 octets of RDATA", nameof(r));
    }

    /// <summary>The header for a zone; the origin in lower case, so a zone configured in another case opens its journal.</summary>
    private static byte[] Header(DnsName origin)
    {
        origin = origin.ToLowerInvariant();
        var header = new byte[Magic.Length + 1 + origin.WireLength + 4];
        Magic.CopyTo(header);
        header[Magic.Length] = (byte)origin.WireLength;
        origin.Wire.CopyTo(header.AsSpan(Magic.Length + 1));
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(header.Length - 4), Crc(header.AsSpan(0, header.Length - 4), default));
        return header;
    }

    private static int RecordSize(ResourceRecord r) => 1 + r.Owner.WireLength + 10 + r.Data.Length;

    /// <summary>The whole entry: framing and payload.</summary>
    private static byte[] Encode(IxfrDiff diff)
    {
        long size = RecordSize(diff.OldSoa) + 4 + RecordSize(diff.NewSoa) + 4;
        foreach (var r in diff.Deleted) size += RecordSize(r);
        foreach (var r in diff.Added) size += RecordSize(r);
        if (size > MaxPayload) throw new ArgumentException($"a step of {size} octets is larger than a journal entry may be ({MaxPayload})", nameof(diff));
        var entry = new byte[EntryFraming + size];
        var span = entry.AsSpan(EntryFraming);
        int at = 0;
        WriteRecord(span, ref at, diff.OldSoa);
        BinaryPrimitives.WriteInt32BigEndian(span[at..], diff.Deleted.Count);
        at += 4;
        foreach (var r in diff.Deleted) WriteRecord(span, ref at, r);
        WriteRecord(span, ref at, diff.NewSoa);
        BinaryPrimitives.WriteInt32BigEndian(span[at..], diff.Added.Count);
        at += 4;
        foreach (var r in diff.Added) WriteRecord(span, ref at, r);
        BinaryPrimitives.WriteUInt32BigEndian(entry, (uint)size);
        BinaryPrimitives.WriteUInt32BigEndian(entry.AsSpan(4), Crc(entry.AsSpan(0, 4), span));
        return entry;
    }

    private static void WriteRecord(Span<byte> span, ref int at, ResourceRecord r)
    {
        span[at++] = (byte)r.Owner.WireLength;
        r.Owner.Wire.CopyTo(span[at..]);
        at += r.Owner.WireLength;
        BinaryPrimitives.WriteUInt16BigEndian(span[at..], (ushort)r.Type);
        BinaryPrimitives.WriteUInt16BigEndian(span[(at + 2)..], (ushort)r.Class);
        BinaryPrimitives.WriteUInt32BigEndian(span[(at + 4)..], r.Ttl);
        BinaryPrimitives.WriteUInt16BigEndian(span[(at + 8)..], (ushort)r.Data.Length);
        at += 10;
        r.Data.CopyTo(span[at..]);
        at += r.Data.Length;
    }

    /// <summary>Decodes a payload whose checksum matched; false for anything malformed (never throws).</summary>
    private static bool TryDecode(ReadOnlySpan<byte> payload, DnsName origin, out IxfrDiff diff)
    {
        diff = null!;
        int at = 0;
        if (!TryReadRecord(payload, ref at, out var oldSoa) || !IsSoaOf(oldSoa, origin)) return false;
        if (!TryReadList(payload, ref at, origin, out var deleted)) return false;
        if (!TryReadRecord(payload, ref at, out var newSoa) || !IsSoaOf(newSoa, origin)) return false;
        if (!TryReadList(payload, ref at, origin, out var added)) return false;
        if (at != payload.Length || !SerialNumber.IsNewer(SerialNumber.Of(newSoa), SerialNumber.Of(oldSoa))) return false;
        diff = new IxfrDiff(oldSoa, deleted, newSoa, added);
        return true;
    }

    private static bool IsSoaOf(ResourceRecord r, DnsName origin) => r.Type == RecordType.SOA && r.Data.Length >= 22 && r.Owner.Equals(origin);

    private static bool TryReadList(ReadOnlySpan<byte> payload, ref int at, DnsName origin, out List<ResourceRecord> list)
    {
        list = [];
        if (payload.Length - at < 4) return false;
        uint count = BinaryPrimitives.ReadUInt32BigEndian(payload[at..]);
        at += 4;
        // Every record takes at least 12 octets: a count larger than that allows is corrupt.
        if (count > (uint)(payload.Length - at) / 12) return false;
        list.Capacity = (int)count;
        for (uint i = 0; i < count; i++)
        {
            if (!TryReadRecord(payload, ref at, out var r) || r.Type == RecordType.SOA || !r.Owner.IsSubdomainOf(origin)) return false;
            list.Add(r);
        }
        return true;
    }

    private static bool TryReadRecord(ReadOnlySpan<byte> payload, ref int at, out ResourceRecord record)
    {
        record = null!;
        if (at >= payload.Length) return false;
        int nameLength = payload[at];
        if (payload.Length - at - 1 < nameLength + 10) return false;
        var wire = payload.Slice(at + 1, nameLength);
        if (!DnsName.TryMeasureWire(wire, out int measured, out _) || measured != nameLength) return false;
        var owner = DnsName.FromWire(wire);
        at += 1 + nameLength;
        var type = (RecordType)BinaryPrimitives.ReadUInt16BigEndian(payload[at..]);
        var @class = (RecordClass)BinaryPrimitives.ReadUInt16BigEndian(payload[(at + 2)..]);
        uint ttl = BinaryPrimitives.ReadUInt32BigEndian(payload[(at + 4)..]);
        int rdlength = BinaryPrimitives.ReadUInt16BigEndian(payload[(at + 8)..]);
        at += 10;
        if (payload.Length - at < rdlength) return false;
        record = new ResourceRecord(owner, type, @class, ttl, payload.Slice(at, rdlength).ToArray());
        at += rdlength;
        return true;
    }

    /// <summary>CRC-32C (Castagnoli) of <paramref name="a"/> then <paramref name="b"/>, with the usual pre- and post-inversion.</summary>
    private static uint Crc(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b) => ~Update(Update(~0u, a), b);

    private static uint Update(uint crc, ReadOnlySpan<byte> data)
    {
        while (data.Length >= 8)
        {
            crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data));
            data = data[8..];
        }
        foreach (byte b in data) crc = BitOperations.Crc32C(crc, b);
        return crc;
    }
}

/// <summary>The libc calls that flush a directory (the BCL opens no directory for fsync).</summary>
internal static unsafe partial class JournalNative
{
    [LibraryImport("libc", EntryPoint = "open")]
    internal static partial int open(byte* path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync")]
    internal static partial int fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close")]
    internal static partial int close(int fd);
}
