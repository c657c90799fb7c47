using System.Globalization;
using System.Text;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;

namespace Portcullis.Protocol.ZoneText;

/// <summary>
/// Writes records in canonical presentation: one record per line, absolute owner, TTL, class,
/// type and RDATA, tab separated as ldns-read-zone prints them (named-compilezone -s full pads the
/// same fields with tabs and blanks), so that the output can be compared with other tools'.
/// </summary>
public static class ZoneWriter
{
    /// <summary>Writes <paramref name="records"/> in the order given, one line each.</summary>
    public static void Write(TextWriter w, IEnumerable<ResourceRecord> records)
    {
        var sb = new StringBuilder(256);
        foreach (var r in records)
        {
            sb.Clear();
            AppendLine(sb, r);
            sb.Append('\n');
            w.Write(sb);
        }
    }

    /// <summary>One record as one line, without the line end.</summary>
    public static string ToLine(ResourceRecord r)
    {
        var sb = new StringBuilder(128);
        AppendLine(sb, r);
        return sb.ToString();
    }

    private static void AppendLine(StringBuilder sb, ResourceRecord r)
    {
        sb.Append(r.Owner.ToString()).Append('\t')
          .Append(r.Ttl.ToString(CultureInfo.InvariantCulture)).Append('\t')
          .Append(RecordClasses.ToText(r.Class)).Append('\t')
          .Append(RecordTypes.ToText(r.Type));
        string rdata = RdataText.Format(r.Type, r.Data);
        if (rdata.Length > 0) sb.Append('\t').Append(rdata);
    }

    /// <summary>
    /// The order named-compilezone dumps a zone in: owners in canonical order (RFC 4034 §6.1); at
    /// each owner the SOA first, then NS, then the other types by number, each RRSIG after the type it covers;
    /// within an RRset, records by canonical RDATA (RFC 4034 §6.3).
    /// </summary>
    public static IComparer<ResourceRecord> CanonicalOrder { get; } = new CanonicalComparer();

    /// <summary>The records sorted in <see cref="CanonicalOrder"/>, duplicates (same owner, class, type and RDATA) dropped.</summary>
    public static List<ResourceRecord> SortCanonical(IEnumerable<ResourceRecord> records)
    {
        var list = records as IReadOnlyList<ResourceRecord> ?? records.ToList();
        // Most callers pass records that are already in order (a zone's Records(), the signer's
        // output), often with a few more appended: a linear check finds the sorted prefix, and only
        // the rest is sorted and merged in, sparing the canonical RDATA copies and n log n comparisons.
        int prefix = SortedPrefix(list);
        if (prefix == list.Count) return new List<ResourceRecord>(list);
        if (prefix < list.Count / 2) return SortAll(list);
        var head = new ArraySegmentList(list, 0, prefix);
        var tail = SortAll(new ArraySegmentList(list, prefix, list.Count - prefix));
        return MergeCanonical(head, tail);
    }

    private static List<ResourceRecord> SortAll(IReadOnlyList<ResourceRecord> records)
    {
        var keyed = new List<(ResourceRecord Record, byte[] Canonical)>(records.Count);
        foreach (var r in records) keyed.Add((r, RdataWire.ToCanonical(r.Type, r.Data)));
        keyed.Sort((a, b) => Compare(a.Record, a.Canonical, b.Record, b.Canonical));
        var result = new List<ResourceRecord>(keyed.Count);
        for (int i = 0; i < keyed.Count; i++)
        {
            if (i > 0 && Compare(keyed[i - 1].Record, keyed[i - 1].Canonical, keyed[i].Record, keyed[i].Canonical) == 0) continue;
            result.Add(keyed[i].Record);
        }
        return result;
    }

    /// <summary>How many records from the start are each after the one before in <see cref="CanonicalOrder"/>.</summary>
    private static int SortedPrefix(IReadOnlyList<ResourceRecord> records)
    {
        for (int i = 1; i < records.Count; i++)
            if (CompareCanonical(records[i - 1], records[i]) >= 0) return i;
        return records.Count;
    }

    /// <summary>A slice of a list, read-only, without copying.</summary>
    private sealed class ArraySegmentList(IReadOnlyList<ResourceRecord> list, int start, int count) : IReadOnlyList<ResourceRecord>
    {
        public ResourceRecord this[int index] => list[start + index];
        public int Count => count;
        public IEnumerator<ResourceRecord> GetEnumerator()
        {
            for (int i = 0; i < count; i++) yield return list[start + i];
        }
        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }

    /// <summary>
    /// True when every record is after the one before it in <see cref="CanonicalOrder"/> (sorted, no
    /// duplicates): <see cref="SortCanonical"/> would return the same list. Linear; canonical RDATA
    /// is made only for neighbours of the same RRset.
    /// </summary>
    public static bool IsSortedCanonical(IReadOnlyList<ResourceRecord> records) => SortedPrefix(records) == records.Count;

    /// <summary>
    /// <see cref="CanonicalOrder"/> of two records; the canonical RDATA (RFC 4034 §6.2) is made only
    /// when owner, type and class are the same, so walking a sorted zone costs no copies.
    /// </summary>
    public static int CompareCanonical(ResourceRecord a, ResourceRecord b)
    {
        int c = CompareRrsets(a, b);
        if (c != 0) return c;
        if (ReferenceEquals(a.Data, b.Data)) return 0;
        return RdataWire.ToCanonical(a.Type, a.Data).AsSpan().SequenceCompareTo(RdataWire.ToCanonical(b.Type, b.Data));
    }

    /// <summary>The order of the RRsets (owner, type rank, type, class) two records belong to: 0 when the same RRset.</summary>
    public static int CompareRrsets(ResourceRecord a, ResourceRecord b)
    {
        int c = a.Owner.CompareTo(b.Owner);
        if (c != 0) return c;
        if (a.Type != b.Type || a.Type == RecordType.RRSIG)
        {
            c = TypeRank(a).CompareTo(TypeRank(b));
            if (c != 0) return c;
            c = ((ushort)a.Type).CompareTo((ushort)b.Type);
            if (c != 0) return c;
        }
        return ((ushort)a.Class).CompareTo((ushort)b.Class);
    }

    /// <summary>
    /// Two lists each in <see cref="CanonicalOrder"/> without duplicates (<see cref="IsSortedCanonical"/>)
    /// merged into one in that order; a record in both is taken once, from <paramref name="first"/>.
    /// Linear: what <see cref="SortCanonical"/> of both would give when the lists hold no duplicates.
    /// </summary>
    public static List<ResourceRecord> MergeCanonical(IReadOnlyList<ResourceRecord> first, IReadOnlyList<ResourceRecord> second)
    {
        var result = new List<ResourceRecord>(first.Count + second.Count);
        int i = 0, j = 0;
        // The records of one owner share its DnsName in a zone's Records(): owners are compared
        // again only when one side moves to another owner.
        DnsName? ownerA = null, ownerB = null;
        int ownerOrder = 0;
        while (i < first.Count && j < second.Count)
        {
            var a = first[i];
            var b = second[j];
            if (!ReferenceEquals(a.Owner, ownerA) || !ReferenceEquals(b.Owner, ownerB))
            {
                ownerA = a.Owner;
                ownerB = b.Owner;
                ownerOrder = a.Owner.CompareTo(b.Owner);
            }
            int c = ownerOrder != 0 ? ownerOrder : CompareCanonical(a, b);
            if (c < 0) result.Add(first[i++]);
            else if (c > 0) result.Add(second[j++]);
            else { result.Add(first[i++]); j++; }
        }
        for (; i < first.Count; i++) result.Add(first[i]);
        for (; j < second.Count; j++) result.Add(second[j]);
        return result;
    }

    internal static long TypeRank(ResourceRecord r) => TypeRank(r.Type, r.Data);

    /// <summary>
    /// Where an RRset goes among its owner's: SOA, NS, then by type number, each RRSIG right after
    /// the type it covers. Distinct for every (type, covered type) pair, below 2^18.
    /// </summary>
    internal static int TypeRank(RecordType recordType, ReadOnlySpan<byte> data)
    {
        ushort type = (ushort)recordType;
        int signature = 0;
        if (recordType == RecordType.RRSIG && data.Length >= 2)
        {
            type = (ushort)(data[0] << 8 | data[1]);
            signature = 1;
        }
        int rank = type switch
        {
            (ushort)RecordType.SOA => 0,
            (ushort)RecordType.NS => 1,
            _ => type + 2,
        };
        return rank * 2 + signature;
    }

    private static int Compare(ResourceRecord a, byte[] ca, ResourceRecord b, byte[] cb)
    {
        int c = a.Owner.CompareTo(b.Owner);
        if (c != 0) return c;
        c = TypeRank(a).CompareTo(TypeRank(b));
        if (c != 0) return c;
        c = ((ushort)a.Type).CompareTo((ushort)b.Type);
        if (c != 0) return c;
        c = ((ushort)a.Class).CompareTo((ushort)b.Class);
        if (c != 0) return c;
        return ca.AsSpan().SequenceCompareTo(cb);
    }

    private sealed class CanonicalComparer : IComparer<ResourceRecord>
    {
        public int Compare(ResourceRecord? x, ResourceRecord? y)
        {
            if (ReferenceEquals(x, y)) return 0;
            if (x is null) return -1;
            if (y is null) return 1;
            return CompareCanonical(x, y);
        }
    }
}
