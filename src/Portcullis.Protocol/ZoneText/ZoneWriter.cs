using System.Globalization;
using System.Text;
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
        var keyed = new List<(ResourceRecord Record, byte[] Canonical)>();
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
            return ZoneWriter.Compare(x, RdataWire.ToCanonical(x.Type, x.Data), y, RdataWire.ToCanonical(y.Type, y.Data));
        }
    }
}
