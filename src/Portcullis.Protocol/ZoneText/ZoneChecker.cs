using System.Buffers.Binary;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;

namespace Portcullis.Protocol.ZoneText;

/// <summary>What <see cref="ZoneChecker"/> found: the zone's records in canonical order, or its errors.</summary>
public sealed class ZoneCheckResult
{
    internal ZoneCheckResult(DnsName origin, RecordClass @class)
    {
        Origin = origin;
        Class = @class;
    }

    public DnsName Origin { get; }
    public RecordClass Class { get; }

    /// <summary>Records in <see cref="ZoneWriter.CanonicalOrder"/>, duplicates dropped, each RRset with one TTL.</summary>
    public List<ResourceRecord> Records { get; } = new();

    /// <summary>Every error: syntax errors in file order, then content errors.</summary>
    public List<ZoneFormatException> Errors { get; } = new();

    public List<ZoneWarning> Warnings { get; } = new();

    /// <summary>The SOA serial, when there is exactly one SOA at the apex.</summary>
    public uint? Serial { get; internal set; }

    /// <summary>Distinct owner names.</summary>
    public int NameCount { get; internal set; }

    public bool Ok => Errors.Count == 0;

    /// <summary>"example.test/IN", as named-checkzone names a zone.</summary>
    public string ZoneLabel
    {
        get
        {
            string name = Origin.ToString();
            if (name.Length > 1) name = name[..^1];
            return $"{name}/{RecordClasses.ToText(Class)}";
        }
    }
}

/// <summary>
/// The operator's check of a whole zone (as named-checkzone and kzonecheck do): the file must read
/// without errors, hold exactly one SOA, at the apex, and NS records at the apex (RFC 1035 §5.2,
/// RFC 1034 §4.2.1), nothing outside the zone, and no data beside a CNAME other than RRSIG and NSEC
/// (RFC 1034 §3.6.2, RFC 2181 §10.1, RFC 4035 §2.5). Records of one RRset with different TTLs get
/// the first one's TTL with a warning (RFC 2181 §5.2), as BIND does.
/// </summary>
public static class ZoneChecker
{
    /// <summary>Errors or warnings, at most a thousand kept: a hostile zone must not fill memory with them.</summary>
    private sealed class Findings<T>
    {
        private const int Max = 1000;
        public readonly List<T> Items = new();
        public int Dropped;

        public void Add(T item)
        {
            if (Items.Count < Max) Items.Add(item);
            else Dropped++;
        }
    }

    // OwnerHash is the owner's case-insensitive hash, kept in the item so the grouping sort compares
    // ints in the array instead of chasing two references per comparison.
    private readonly record struct Item(ResourceRecord Record, byte[] Canonical, ZonePosition Position, int Order, int OwnerHash);

    /// <summary>Reads and checks the zone file at <paramref name="path"/>.</summary>
    public static ZoneCheckResult Check(string path, DnsName origin, ZoneReaderOptions? options = null)
    {
        options = new ZoneReaderOptions
        {
            CollectErrors = true,
            DefaultTtl = options?.DefaultTtl,
            Class = options?.Class ?? RecordClass.IN,
            MaxIncludeDepth = options?.MaxIncludeDepth ?? 8,
            BaseDirectory = options?.BaseDirectory,
            MaxGenerateRecords = options?.MaxGenerateRecords ?? 1 << 20,
            MaxErrors = options?.MaxErrors ?? 1000,
        };
        ZoneReader reader;
        try
        {
            reader = ZoneReader.Open(path, origin, options);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            var failed = new ZoneCheckResult(origin, options.Class);
            failed.Errors.Add(new ZoneFormatException(path, 0, 0, $"cannot open the zone file: {e.Message}"));
            return failed;
        }
        using (reader) return Check(reader, origin, options.Class, path);
    }

    /// <summary>
    /// Checks the zone read by <paramref name="reader"/> (which should collect errors). With
    /// <paramref name="canonicalOrder"/> false the records come out grouped by owner but owners in
    /// no particular order, which is much cheaper for a large zone (a server loading it has no use
    /// for the order; `zone check --print` has).
    /// </summary>
    public static ZoneCheckResult Check(ZoneReader reader, DnsName origin, RecordClass @class = RecordClass.IN, string? file = null,
        bool canonicalOrder = true)
    {
        var result = new ZoneCheckResult(origin, @class);
        var items = new List<Item>();
        var contentErrors = new Findings<ZoneFormatException>();
        var warnings = new Findings<ZoneWarning>();
        try
        {
            foreach (var r in reader.ReadRecords())
            {
                var position = reader.Position;
                if (!r.Owner.IsSubdomainOf(origin))
                {
                    contentErrors.Add(Error(position, $"out-of-zone data: '{r.Owner}' is not in zone '{origin}'"));
                    continue;
                }
                items.Add(new Item(r, RdataWire.ToCanonical(r.Type, r.Data), position, items.Count, r.Owner.GetHashCode()));
            }
        }
        catch (ZoneFormatException)
        {
            // Without CollectErrors the reader stops at the first error; it is in reader.Errors.
        }
        result.Errors.AddRange(reader.Errors);
        foreach (var w in reader.Warnings) warnings.Add(w);

        if (canonicalOrder)
            items.Sort(static (a, b) =>
            {
                int c = ZoneWriterOrder(a, b);
                return c != 0 ? c : a.Order.CompareTo(b.Order);
            });
        else
            // Owners by their (cached, case-insensitive) hash first: an int compare groups them
            // without the canonical name comparison; within an owner the order is as above.
            items.Sort(static (a, b) =>
            {
                int c = a.OwnerHash.CompareTo(b.OwnerHash);
                if (c == 0) c = ZoneWriterOrder(a, b);
                return c != 0 ? c : a.Order.CompareTo(b.Order);
            });

        ZonePosition? soaAt = null;
        bool apexNs = false;
        var names = new HashSet<DnsName>();
        var existing = new HashSet<DnsName>(); // owners and the empty non-terminals above them
        var addressed = new HashSet<DnsName>();
        var pointers = new List<Item>();
        int i = 0;
        while (i < items.Count)
        {
            // One owner name at a time.
            int end = i;
            while (end < items.Count && items[end].Record.Owner.Equals(items[i].Record.Owner)) end++;
            var owner = items[i].Record.Owner;
            names.Add(owner);
            for (var n = owner; existing.Add(n) && !n.Equals(origin); n = n.Parent()) { }
            bool apex = owner.Equals(origin);
            Item? cname = null;
            Item? dname = null;
            Item? otherData = null;
            Item? previous = null;
            for (int k = i; k < end; k++)
            {
                var item = items[k];
                var r = item.Record;
                if (previous is Item p && ZoneWriterOrder(p, item) == 0) continue; // a duplicate record
                bool sameRrset = previous is Item q && q.Record.Type == r.Type && q.Record.Class == r.Class
                    && (r.Type != RecordType.RRSIG || CoveredType(q.Record) == CoveredType(r));
                uint rrsetTtl = sameRrset ? result.Records[^1].Ttl : r.Ttl;
                previous = item;
                if (sameRrset && r.Ttl != rrsetTtl)
                {
                    warnings.Add(new ZoneWarning(item.Position,
                        $"TTL {r.Ttl} differs from the TTL {rrsetTtl} of the rest of the {owner}/{RecordTypes.ToText(r.Type)} RRset; using {rrsetTtl} (RFC 2181 §5.2)"));
                    r = r.WithTtl(rrsetTtl);
                }
                result.Records.Add(r);

                switch (r.Type)
                {
                    case RecordType.SOA:
                        if (!apex)
                            contentErrors.Add(Error(item.Position, $"SOA record for '{owner}' is not at the zone apex '{origin}'"));
                        else if (soaAt is ZonePosition first)
                            contentErrors.Add(Error(item.Position, $"more than one SOA record at the zone apex (the first is at {first})"));
                        else
                        {
                            soaAt = item.Position;
                            result.Serial = SoaSerial(r.Data);
                        }
                        break;
                    case RecordType.NS:
                        if (apex) apexNs = true;
                        otherData ??= item;
                        pointers.Add(item);
                        break;
                    case RecordType.MX:
                    case RecordType.SRV:
                        otherData ??= item;
                        pointers.Add(item);
                        break;
                    case RecordType.CNAME:
                        if (cname is Item firstCname)
                            contentErrors.Add(Error(item.Position, $"more than one CNAME record at '{owner}' (the first is at {firstCname.Position})"));
                        else cname = item;
                        break;
                    case RecordType.DNAME:
                        // RFC 6672 §2.4: at most one DNAME at a name.
                        if (dname is Item firstDname)
                            contentErrors.Add(Error(item.Position, $"more than one DNAME record at '{owner}' (the first is at {firstDname.Position})"));
                        else dname = item;
                        otherData ??= item;
                        break;
                    case RecordType.RRSIG:
                    case RecordType.NSEC:
                        break;
                    case RecordType.A:
                    case RecordType.AAAA:
                        addressed.Add(owner);
                        otherData ??= item;
                        break;
                    default:
                        otherData ??= item;
                        break;
                }
            }
            if (cname is Item c && otherData is Item o)
            {
                var later = c.Order > o.Order ? c : o;
                contentErrors.Add(Error(later.Position,
                    $"'{owner}' has a CNAME and other data ({RecordTypes.ToText(o.Record.Type)}); only RRSIG and NSEC may stand beside a CNAME (RFC 2181 §10.1)"));
            }
            i = end;
        }
        result.NameCount = names.Count;
        CheckAddresses(contentErrors, warnings, origin, pointers, existing, addressed);

        var zoneFile = file ?? reader.Position.File;
        if (soaAt is null)
            contentErrors.Add(new ZoneFormatException(zoneFile, 1, 1, $"no SOA record at the zone apex '{origin}'"));
        if (!apexNs)
            contentErrors.Add(new ZoneFormatException(zoneFile, 1, 1, $"no NS records at the zone apex '{origin}'"));
        contentErrors.Items.Sort(static (a, b) =>
        {
            int c = string.CompareOrdinal(a.File, b.File);
            if (c != 0) return c;
            c = a.Line.CompareTo(b.Line);
            return c != 0 ? c : a.Column.CompareTo(b.Column);
        });
        result.Errors.AddRange(contentErrors.Items);
        if (contentErrors.Dropped > 0)
            result.Errors.Add(new ZoneFormatException(zoneFile, 0, 0, $"{contentErrors.Dropped} more errors not shown"));
        result.Warnings.AddRange(warnings.Items);
        if (warnings.Dropped > 0)
            result.Warnings.Add(new ZoneWarning(new ZonePosition(zoneFile, 0, 0), $"{warnings.Dropped} more warnings not shown"));
        return result;
    }

    private static ZoneFormatException Error(ZonePosition at, string problem) => new(at.File, at.Line, at.Column, problem);

    /// <summary>
    /// As named-checkzone does: an in-zone name server of the apex without an address is an error
    /// (no one could reach it); other in-zone NS, MX and SRV targets without one are warnings.
    /// </summary>
    private static void CheckAddresses(Findings<ZoneFormatException> errors, Findings<ZoneWarning> warnings, DnsName origin,
        List<Item> pointers, HashSet<DnsName> names, HashSet<DnsName> addressed)
    {
        foreach (var item in pointers)
        {
            var r = item.Record;
            int skip = r.Type switch { RecordType.MX => 2, RecordType.SRV => 6, _ => 0 };
            if (r.Data.Length <= skip || !DnsName.TryMeasureWire(r.Data.AsSpan(skip), out _, out _)) continue;
            var target = DnsName.FromWire(r.Data.AsSpan(skip));
            if (target.IsRoot || !target.IsSubdomainOf(origin) || HasAddress(target, origin, names, addressed)) continue;
            string problem = $"{r.Owner}/{RecordTypes.ToText(r.Type)} '{target}' has no address records (A or AAAA)";
            if (r.Type == RecordType.NS && r.Owner.Equals(origin)) errors.Add(Error(item.Position, problem));
            else warnings.Add(new ZoneWarning(item.Position, problem));
        }
    }

    private static bool HasAddress(DnsName target, DnsName origin, HashSet<DnsName> names, HashSet<DnsName> addressed)
    {
        if (addressed.Contains(target)) return true;
        if (names.Contains(target)) return false;
        // RFC 4592: a name that does not exist may be answered by the wildcard of its closest encloser.
        for (var encloser = target.Parent(); encloser.LabelCount >= origin.LabelCount; encloser = encloser.Parent())
        {
            if (names.Contains(encloser) || encloser.Equals(origin))
                return addressed.Contains(encloser.Prepend("*"u8));
            if (encloser.IsRoot) break;
        }
        return false;
    }

    private static int ZoneWriterOrder(Item a, Item b)
    {
        int c = a.Record.Owner.CompareTo(b.Record.Owner);
        if (c != 0) return c;
        c = TypeRank(a.Record).CompareTo(TypeRank(b.Record));
        if (c != 0) return c;
        c = ((ushort)a.Record.Type).CompareTo((ushort)b.Record.Type);
        if (c != 0) return c;
        c = ((ushort)a.Record.Class).CompareTo((ushort)b.Record.Class);
        if (c != 0) return c;
        return a.Canonical.AsSpan().SequenceCompareTo(b.Canonical);
    }

    private static long TypeRank(ResourceRecord r) => ZoneWriter.TypeRank(r);

    private static int CoveredType(ResourceRecord r) => r.Data.Length >= 2 ? r.Data[0] << 8 | r.Data[1] : -1;

    /// <summary>The serial of SOA RDATA: the 32-bit field after MNAME and RNAME (RFC 1035 §3.3.13).</summary>
    private static uint? SoaSerial(byte[] data)
    {
        var span = data.AsSpan();
        if (!DnsName.TryMeasureWire(span, out int m, out _)) return null;
        span = span[m..];
        if (!DnsName.TryMeasureWire(span, out int r, out _)) return null;
        span = span[r..];
        return span.Length >= 4 ? BinaryPrimitives.ReadUInt32BigEndian(span) : null;
    }
}
