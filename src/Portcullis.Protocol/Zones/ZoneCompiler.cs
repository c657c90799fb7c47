using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.ZoneText;

namespace Portcullis.Protocol.Zones;

/// <summary>
/// Builds a <see cref="ZoneData"/> from a stream of records in one pass, and checks the zone as
/// named-checkzone and kzonecheck do while it is at it: exactly one SOA, at the apex; NS at the apex
/// (RFC 1035 §5.2, RFC 1034 §4.2.1); nothing outside the zone; no data beside a CNAME other than
/// RRSIG and NSEC (RFC 1034 §3.6.2, RFC 2181 §10.1, RFC 4035 §2.5); at most one DNAME at a name
/// (RFC 6672 §2.4); in-zone NS, MX and SRV targets with addresses. Duplicate records are dropped
/// (RFC 2181 §5); the records of an RRset with different TTLs all get the TTL of the first in
/// canonical order, with a warning (RFC 2181 §5.2).
/// <para>
/// Each record costs a few small structs while the zone is read (its owner is interned into one
/// byte array at once, its RDATA copied into another), so nothing the garbage collector has to trace
/// grows with the zone. <see cref="Finish"/> sorts the records by (owner, type) with integer keys,
/// packs each RRset's RDATA in canonical order, adds the empty non-terminals, marks cuts, and links
/// NS/MX/SRV targets to their addresses.
/// </para>
/// </summary>
public sealed class ZoneCompiler
{
    private const int MaxFindings = 1000;

    private struct Rec
    {
        public int Node;
        public int Data;
        public ushort Length;
        public RecordType Type;
        public uint Ttl;
        public int File;
        public int Line;
        public int Column;
    }

    private readonly DnsName _origin;
    private readonly RecordClass _class;
    private readonly string? _file;

    private byte[] _names = new byte[1024];
    private int _namesLength;
    private ZoneData.NodeEntry[] _nodes = new ZoneData.NodeEntry[64];
    private int _nodeCount;
    private ZoneData.Bucket[] _buckets = new ZoneData.Bucket[128];
    private int _shift = 32 - 7;

    private Rec[] _recs = new Rec[64];
    private long[] _keys = new long[64];
    private int _recCount;
    private byte[] _data = new byte[1024];
    private int _dataLength;
    private ZoneData.SetEntry[] _sets = [];   // built by Finish

    private readonly List<string?> _files = [];
    private string? _lastFile;
    private int _lastFileIndex = -1;
    private DnsName? _lastOwner;
    private int _lastNode;

    private readonly List<ZoneFormatException> _errors = [];
    private int _errorsDropped;
    private readonly List<ZoneWarning> _warnings = [];
    private int _warningsDropped;

    /// <param name="textSize">The zone file's size in bytes, if known: the arrays start near the size
    /// they will need (a zone line is about 30 bytes) instead of growing by doubling.</param>
    public ZoneCompiler(DnsName origin, RecordClass @class = RecordClass.IN, string? file = null, long textSize = 0)
    {
        _origin = origin;
        _class = @class;
        _file = file;
        if (textSize > 64 << 10)
        {
            int records = (int)Math.Min(textSize / 24, 1 << 26);
            _recs = new Rec[records];
            _keys = new long[records];
            _data = new byte[records * 16];
            _names = new byte[records * 12];
            _nodes = new ZoneData.NodeEntry[records / 2];
            _buckets = new ZoneData.Bucket[(int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)records)];
            _shift = 32 - System.Numerics.BitOperations.Log2((uint)_buckets.Length);
        }
    }

    /// <summary>Reads every record of <paramref name="reader"/> (which should collect errors) and compiles the zone.</summary>
    public static ZoneCheckResult Compile(ZoneReader reader, DnsName origin, RecordClass @class = RecordClass.IN, string? file = null,
        long textSize = 0)
    {
        var compiler = new ZoneCompiler(origin, @class, file, textSize);
        try
        {
            foreach (var r in reader.ReadRecords()) compiler.Add(r, reader.Position);
        }
        catch (ZoneFormatException)
        {
            // Without CollectErrors the reader stops at the first error; it is in reader.Errors.
        }
        return compiler.Finish(reader.Errors, reader.Warnings, file ?? reader.Position.File);
    }

    /// <summary>Adds one record read at <paramref name="position"/>.</summary>
    public void Add(ResourceRecord record, ZonePosition position)
    {
        if (record.Class != _class)
        {
            AddError(new ZoneFormatException(position.File, position.Line, position.Column,
                $"class {RecordClasses.ToText(record.Class)} does not match the zone's class {RecordClasses.ToText(_class)}"));
            return;
        }
        int node;
        if (ReferenceEquals(record.Owner, _lastOwner)) node = _lastNode;
        else
        {
            if (!record.Owner.IsSubdomainOf(_origin))
            {
                AddError(new ZoneFormatException(position.File, position.Line, position.Column,
                    $"out-of-zone data: '{record.Owner}' is not in zone '{_origin}'"));
                return;
            }
            node = Intern(record.Owner.Wire, record.Owner.LabelCount);
            _lastOwner = record.Owner;
            _lastNode = node;
        }
        var data = record.Data;
        if (_recCount == _recs.Length)
        {
            Array.Resize(ref _recs, _recs.Length * 2);
            Array.Resize(ref _keys, _keys.Length * 2);
        }
        if (_dataLength + data.Length > _data.Length) Array.Resize(ref _data, Math.Max(_data.Length * 2, _dataLength + data.Length));
        data.CopyTo(_data, _dataLength);
        if (!ReferenceEquals(position.File, _lastFile) || _lastFileIndex < 0)
        {
            _lastFile = position.File;
            _lastFileIndex = _files.IndexOf(position.File);
            if (_lastFileIndex < 0) { _lastFileIndex = _files.Count; _files.Add(position.File); }
        }
        _recs[_recCount] = new Rec
        {
            Node = node, Data = _dataLength, Length = (ushort)data.Length, Type = record.Type, Ttl = record.Ttl,
            File = _lastFileIndex, Line = position.Line, Column = position.Column,
        };
        _keys[_recCount] = (long)node << 32 | (uint)ZoneWriter.TypeRank(record.Type, data);
        _recCount++;
        _dataLength += data.Length;
    }

    private ZonePosition PositionOf(int rec) => new(_files[_recs[rec].File], _recs[rec].Line, _recs[rec].Column);

    private void AddError(ZoneFormatException e)
    {
        if (_errors.Count < MaxFindings) _errors.Add(e);
        else _errorsDropped++;
    }

    private void AddError(int rec, string problem)
    {
        var at = PositionOf(rec);
        AddError(new ZoneFormatException(at.File, at.Line, at.Column, problem));
    }

    private void AddWarning(int rec, string problem)
    {
        if (_warnings.Count < MaxFindings) _warnings.Add(new ZoneWarning(PositionOf(rec), problem));
        else _warningsDropped++;
    }

    /// <summary>The node of a name (interning it), whose wire bytes are already at <paramref name="at"/> in _names when at ≥ 0.</summary>
    private int Intern(ReadOnlySpan<byte> wire, int labels, int at = -1)
    {
        int hash = DnsName.HashWire(wire);
        int found = ZoneData.Probe(_names, _nodes, _buckets, _shift, wire, hash);
        if (found >= 0) return found;
        if (at < 0)
        {
            if (_namesLength + wire.Length > _names.Length) Array.Resize(ref _names, Math.Max(_names.Length * 2, _namesLength + wire.Length));
            wire.CopyTo(_names.AsSpan(_namesLength));
            at = _namesLength;
            _namesLength += wire.Length;
        }
        if (_nodeCount == _nodes.Length) Array.Resize(ref _nodes, _nodes.Length * 2);
        int n = _nodeCount++;
        _nodes[n] = new ZoneData.NodeEntry { Name = at, NameLength = (byte)wire.Length, Labels = (byte)labels };
        Insert(_buckets, _shift, n, hash);
        if (_nodeCount * 2 > _buckets.Length) Rehash(_buckets.Length * 2);
        return n;
    }

    private static void Insert(ZoneData.Bucket[] buckets, int shift, int node, int hash)
    {
        int mask = buckets.Length - 1;
        int i = ZoneData.BucketOf(hash, shift);
        while (buckets[i].Node != 0) i = (i + 1) & mask;
        buckets[i] = new ZoneData.Bucket { Hash = hash, Node = node + 1 };
    }

    private void Rehash(int size)
    {
        var old = _buckets;
        _buckets = new ZoneData.Bucket[size];
        _shift = 32 - System.Numerics.BitOperations.Log2((uint)size);
        foreach (var b in old)
            if (b.Node != 0) Insert(_buckets, _shift, b.Node - 1, b.Hash);
    }

    private ReadOnlySpan<byte> NameOf(int node) => _names.AsSpan(_nodes[node].Name, _nodes[node].NameLength);

    private ReadOnlySpan<byte> DataOf(int rec) => _data.AsSpan(_recs[rec].Data, _recs[rec].Length);

    private string OwnerText(int node) => DnsName.FromWire(NameOf(node)).ToString();

    private int Find(ReadOnlySpan<byte> wire) => ZoneData.Probe(_names, _nodes, _buckets, _shift, wire, DnsName.HashWire(wire));

    /// <summary>
    /// Builds the zone and lists what is wrong with it. The data is built even when there are errors
    /// (so that a checker can print it); a server must not serve it unless the result is Ok.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public ZoneCheckResult Finish(IReadOnlyList<ZoneFormatException>? syntaxErrors = null, IReadOnlyList<ZoneWarning>? readerWarnings = null,
        string? zoneFile = null)
    {
        zoneFile ??= _file;
        int owners = _nodeCount;
        AddEmptyNonTerminals(owners);

        var order = GroupByOwner(owners);
        var keys = new long[_recCount];
        for (int j = 0; j < keys.Length; j++) keys[j] = _keys[order[j]];

        var sets = _sets = new ZoneData.SetEntry[Math.Max(1, _recCount + 1)];
        int setCount = 0;
        var rdata = new byte[_dataLength + 2 * _recCount];
        int rdataLength = 0;
        int records = 0;
        int? soaRec = null;
        uint? serial = null;
        bool apexNs = false;
        var pointers = new List<int>();
        int apex = Find(_origin.Wire);
        var runComparer = new RunComparer(this);

        int k = 0;
        while (k < _recCount)
        {
            // One owner at a time.
            int node = (int)(keys[k] >> 32);
            bool isApex = node == apex;
            int firstSet = setCount;
            int cname = -1, dname = -1, otherData = -1;
            while (k < _recCount && (int)(keys[k] >> 32) == node)
            {
                // One RRset: the records with the same key, in canonical RDATA order, duplicates dropped.
                int end = k + 1;
                while (end < _recCount && keys[end] == keys[k]) end++;
                if (end - k > 1) runComparer.Sort(order, k, end - k);
                var type = _recs[order[k]].Type;
                uint ttl = _recs[order[k]].Ttl;
                int start = rdataLength;
                int count = 0;
                for (int j = k; j < end; j++)
                {
                    int rec = order[j];
                    if (j > k && runComparer.Same(order[j - 1], rec)) continue;   // a duplicate record
                    if (_recs[rec].Ttl != ttl)
                        AddWarning(rec, $"TTL {_recs[rec].Ttl} differs from the TTL {ttl} of the rest of the {OwnerText(node)}/{RecordTypes.ToText(type)} RRset; using {ttl} (RFC 2181 §5.2)");
                    var data = DataOf(rec);
                    BinaryPrimitives.WriteUInt16BigEndian(rdata.AsSpan(rdataLength), (ushort)data.Length);
                    data.CopyTo(rdata.AsSpan(rdataLength + 2));
                    rdataLength += 2 + data.Length;
                    count++;
                    switch (type)
                    {
                        case RecordType.SOA:
                            if (!isApex)
                                AddError(rec, $"SOA record for '{OwnerText(node)}' is not at the zone apex '{_origin}'");
                            else if (soaRec is int first)
                                AddError(rec, $"more than one SOA record at the zone apex (the first is at {PositionOf(first)})");
                            else
                            {
                                soaRec = rec;
                                serial = SoaField(data, 0);
                            }
                            break;
                        case RecordType.NS:
                            if (isApex) apexNs = true;
                            if (otherData < 0) otherData = rec;
                            pointers.Add(rec);
                            break;
                        case RecordType.MX:
                        case RecordType.SRV:
                            if (otherData < 0) otherData = rec;
                            pointers.Add(rec);
                            break;
                        case RecordType.CNAME:
                            if (cname >= 0)
                                AddError(rec, $"more than one CNAME record at '{OwnerText(node)}' (the first is at {PositionOf(cname)})");
                            else cname = rec;
                            break;
                        case RecordType.DNAME:
                            if (dname >= 0)
                                AddError(rec, $"more than one DNAME record at '{OwnerText(node)}' (the first is at {PositionOf(dname)})");
                            else dname = rec;
                            if (otherData < 0) otherData = rec;
                            break;
                        case RecordType.RRSIG:
                        case RecordType.NSEC:
                            break;
                        default:
                            if (otherData < 0) otherData = rec;
                            break;
                    }
                }
                int setLength = rdataLength - start;
                if (count > ushort.MaxValue)
                {
                    AddError(order[k], $"the {OwnerText(node)}/{RecordTypes.ToText(type)} RRset has {count} records, more than any message can carry");
                    // The zone is refused; keep the set consistent (its first 65,535 records) so that
                    // the rest of the build, which still runs for `zone check --print`, cannot trip on it.
                    setLength = 0;
                    for (int r = 0; r < ushort.MaxValue; r++) setLength += 2 + BinaryPrimitives.ReadUInt16BigEndian(rdata.AsSpan(start + setLength));
                }
                sets[setCount++] = new ZoneData.SetEntry
                {
                    Data = start, Length = setLength, Node = node, Ttl = ttl, Type = type, Count = (ushort)Math.Min(count, ushort.MaxValue),
                };
                records += count;
                k = end;
            }
            if (cname >= 0 && otherData >= 0)
            {
                int later = Math.Max(cname, otherData);   // record numbers are file order
                AddError(later, $"'{OwnerText(node)}' has a CNAME and other data ({RecordTypes.ToText(_recs[otherData].Type)}); only RRSIG and NSEC may stand beside a CNAME (RFC 2181 §10.1)");
            }
            _nodes[node].FirstSet = firstSet;
            _nodes[node].SetCount = setCount - firstSet;
        }

        // The SOA as negative answers carry it (RFC 2308 §3): TTL min(SOA TTL, MINIMUM); after the
        // sets of the nodes, belonging to none.
        int nodeSets = setCount;
        if (apex >= 0 && soaRec is not null)
        {
            for (int s = _nodes[apex].FirstSet; s < _nodes[apex].FirstSet + _nodes[apex].SetCount; s++)
            {
                if (sets[s].Type != RecordType.SOA) continue;
                var soa = sets[s];
                soa.Ttl = Math.Min(soa.Ttl, SoaField(rdata.AsSpan(soa.Data + 2, BinaryPrimitives.ReadUInt16BigEndian(rdata.AsSpan(soa.Data))), 4) ?? soa.Ttl);
                sets[setCount++] = soa;
                break;
            }
        }

        MarkNodes(apex, owners, sets);
        var extra = LinkAdditional(sets, nodeSets, rdata);
        var fragments = BuildFragments(sets, setCount, rdata, _class);
        CheckAddresses(pointers, apex);
        if (soaRec is null)
            AddError(new ZoneFormatException(zoneFile, 1, 1, $"no SOA record at the zone apex '{_origin}'"));
        if (!apexNs)
            AddError(new ZoneFormatException(zoneFile, 1, 1, $"no NS records at the zone apex '{_origin}'"));

        var result = new ZoneCheckResult(_origin, _class);
        if (syntaxErrors is not null) result.Errors.AddRange(syntaxErrors);
        _errors.Sort(static (a, b) =>
        {
            int c = string.CompareOrdinal(a.File, b.File);
            if (c != 0) return c;
            c = a.Line.CompareTo(b.Line);
            return c != 0 ? c : a.Column.CompareTo(b.Column);
        });
        result.Errors.AddRange(_errors);
        if (_errorsDropped > 0)
            result.Errors.Add(new ZoneFormatException(zoneFile, 0, 0, $"{_errorsDropped} more errors not shown"));
        if (readerWarnings is not null) result.Warnings.AddRange(readerWarnings);
        _warnings.Sort(static (a, b) =>
        {
            int c = string.CompareOrdinal(a.Position.File, b.Position.File);
            if (c != 0) return c;
            c = a.Position.Line.CompareTo(b.Position.Line);
            return c != 0 ? c : a.Position.Column.CompareTo(b.Position.Column);
        });
        result.Warnings.AddRange(_warnings);
        if (_warningsDropped > 0)
            result.Warnings.Add(new ZoneWarning(new ZonePosition(zoneFile, 0, 0), $"{_warningsDropped} more warnings not shown"));
        result.Serial = serial;
        result.NameCount = owners;

        // Exact-size arrays for the data that stays; the load's scratch arrays become garbage.
        Array.Resize(ref sets, setCount);
        if (rdataLength != rdata.Length) Array.Resize(ref rdata, rdataLength);
        Array.Resize(ref _names, _namesLength);
        Array.Resize(ref _nodes, _nodeCount);
        result.Data = new ZoneData(_origin, _class, _names, _nodes, _nodeCount, sets, nodeSets, rdata, extra, fragments, _buckets, records, owners);
        // An NSEC3 chain the answers cannot use (RFC 9276 §3.2: too many iterations; not SHA-1) is said at load.
        if (result.Data.Nsec3Problem is { } nsec3Problem) result.Warnings.Add(new ZoneWarning(new ZonePosition(zoneFile, 0, 0), nsec3Problem));
        _recs = [];
        _keys = [];
        _data = [];
        _sets = [];
        return result;
    }

    /// <summary>
    /// Record numbers grouped by owner (a counting sort: owners are numbered densely), and within an
    /// owner by RRset key, file order kept among equal keys. Linear in the records; no comparison
    /// sort over the whole zone.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private int[] GroupByOwner(int owners)
    {
        var start = new int[owners + 1];
        for (int i = 0; i < _recCount; i++) start[_recs[i].Node + 1]++;
        for (int n = 0; n < owners; n++) start[n + 1] += start[n];
        var next = (int[])start.Clone();
        var order = new int[_recCount];
        for (int i = 0; i < _recCount; i++) order[next[_recs[i].Node]++] = i;
        var keys = _keys;
        for (int n = 0; n < owners; n++)
        {
            int lo = start[n], hi = start[n + 1];
            if (hi - lo > 64)
            {
                Array.Sort(order, lo, hi - lo, Comparer<int>.Create((a, b) =>
                {
                    int c = keys[a].CompareTo(keys[b]);
                    return c != 0 ? c : a.CompareTo(b);
                }));
                continue;
            }
            // Insertion sort: a name has a handful of records, usually already in order.
            for (int j = lo + 1; j < hi; j++)
            {
                int x = order[j];
                long key = keys[x];
                int m = j - 1;
                while (m >= lo && keys[order[m]] > key)
                {
                    order[m + 1] = order[m];
                    m--;
                }
                order[m + 1] = x;
            }
        }
        return order;
    }

    /// <summary>SOA RDATA field after MNAME and RNAME: 0 serial, 1 refresh, 2 retry, 3 expire, 4 minimum.</summary>
    private static uint? SoaField(ReadOnlySpan<byte> data, int field)
    {
        if (!DnsName.TryMeasureWire(data, out int m, out _)) return null;
        data = data[m..];
        if (!DnsName.TryMeasureWire(data, out int r, out _)) return null;
        data = data[r..];
        return data.Length >= 4 * field + 4 ? BinaryPrimitives.ReadUInt32BigEndian(data[(4 * field)..]) : null;
    }

    /// <summary>
    /// Adds a node for every name between an owner and the apex that has none (RFC 4592 §2.2.2). Its
    /// name is the tail of the owner's, already in the names array.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void AddEmptyNonTerminals(int owners)
    {
        int apexLabels = _origin.LabelCount;
        for (int n = 0; n < owners; n++)
        {
            int at = _nodes[n].Name, length = _nodes[n].NameLength, labels = _nodes[n].Labels;
            // Walk up by slicing the wire name; stop at the first ancestor already there (its own
            // walk, or the one that made it, covers the rest).
            for (int pos = 1 + _names[at]; --labels > apexLabels; pos += 1 + _names[at + pos])
            {
                var suffix = _names.AsSpan(at + pos, length - pos);
                if (Find(suffix) >= 0) break;
                int ent = Intern(suffix, labels, at + pos);
                _nodes[ent].Flags = NodeFlags.EmptyNonTerminal;
            }
        }
    }

    /// <summary>Apex, cuts, CNAME and DNAME; then everything below a cut or a DNAME is occluded.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void MarkNodes(int apex, int owners, ZoneData.SetEntry[] sets)
    {
        for (int n = 0; n < owners; n++)
        {
            ref var e = ref _nodes[n];
            var f = e.Flags;
            for (int s = e.FirstSet; s < e.FirstSet + e.SetCount; s++)
            {
                switch (sets[s].Type)
                {
                    case RecordType.NS when n != apex: f |= NodeFlags.Delegation; break;
                    case RecordType.CNAME: f |= NodeFlags.Cname; break;
                    case RecordType.DNAME: f |= NodeFlags.Dname; break;
                }
            }
            if (n == apex) f |= NodeFlags.Apex;
            e.Flags = f;
        }
        // Every name between an owner and the apex is a node (the empty non-terminals were added),
        // so a node is below a cut exactly when its parent is a cut, a DNAME or below one. Taking
        // the nodes shallowest first (a counting sort by label count) settles each parent before
        // its children: one lookup per node, however deep the names.
        int apexLabels = _origin.LabelCount;
        var byDepth = new int[129];
        for (int n = 0; n < _nodeCount; n++) byDepth[_nodes[n].Labels + 1]++;
        for (int d = 0; d < 128; d++) byDepth[d + 1] += byDepth[d];
        var order = new int[_nodeCount];
        for (int n = 0; n < _nodeCount; n++) order[byDepth[_nodes[n].Labels]++] = n;
        foreach (int n in order)
        {
            if (_nodes[n].Labels <= apexLabels) continue;
            int at = _nodes[n].Name, length = _nodes[n].NameLength, skip = 1 + _names[at];
            int parent = Find(_names.AsSpan(at + skip, length - skip));
            if (parent >= 0 && (_nodes[parent].Flags & (NodeFlags.Delegation | NodeFlags.Dname | NodeFlags.BelowCut)) != 0)
                _nodes[n].Flags |= NodeFlags.BelowCut;
        }
    }

    /// <summary>
    /// For each NS, MX and SRV RRset, the A and AAAA RRsets of its targets in the zone, as lists in
    /// one int array (entry 0 is the empty list). Glue below a cut is only given with the referral
    /// it belongs to.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private int[] LinkAdditional(ZoneData.SetEntry[] sets, int setCount, byte[] rdata)
    {
        var extra = new List<int> { 0 };
        var found = new List<int>();
        for (int s = 0; s < setCount; s++)
        {
            var type = sets[s].Type;
            int offset = type switch { RecordType.NS => 0, RecordType.MX => 2, RecordType.SRV => 6, _ => -1 };
            if (offset < 0) continue;
            int owner = sets[s].Node;
            bool referral = type == RecordType.NS && (_nodes[owner].Flags & NodeFlags.Delegation) != 0;
            found.Clear();
            var packed = rdata.AsSpan(sets[s].Data, sets[s].Length);
            while (!packed.IsEmpty)
            {
                int length = BinaryPrimitives.ReadUInt16BigEndian(packed);
                var data = packed.Slice(2, length);
                packed = packed[(2 + length)..];
                if (data.Length <= offset || !DnsName.TryMeasureWire(data[offset..], out int nameLength, out _)) continue;
                var target = data.Slice(offset, nameLength);
                int t = Find(target);
                if (t < 0) continue;
                if ((_nodes[t].Flags & NodeFlags.BelowCut) != 0 && !(referral && IsBelow(target, NameOf(owner)))) continue;
                for (int ts = _nodes[t].FirstSet; ts < _nodes[t].FirstSet + _nodes[t].SetCount; ts++)
                    if (sets[ts].Type is RecordType.A or RecordType.AAAA && !found.Contains(ts)) found.Add(ts);
            }
            if (found.Count == 0) continue;
            sets[s].Extra = extra.Count;
            extra.Add(found.Count);
            extra.AddRange(found);
        }
        return extra.ToArray();
    }

    /// <summary>
    /// The answer fragment of every RRset whose RDATA the writer would copy unchanged (no
    /// compressible names): each record as owner pointer to the question, type, class, TTL,
    /// RDLENGTH and RDATA, exactly the bytes the writer would produce for it in an answer.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static byte[] BuildFragments(ZoneData.SetEntry[] sets, int setCount, byte[] rdata, RecordClass @class)
    {
        long size = 0;
        for (int s = 0; s < setCount; s++)
            if (!Wire.DnsMessageWriter.CompressesRdata(sets[s].Type)) size += sets[s].Length + 10L * sets[s].Count;
        var fragments = new byte[size];
        int at = 0;
        for (int s = 0; s < setCount; s++)
        {
            ref var set = ref sets[s];
            set.Fragment = -1;
            if (Wire.DnsMessageWriter.CompressesRdata(set.Type)) continue;
            set.Fragment = at;
            var packed = rdata.AsSpan(set.Data, set.Length);
            while (!packed.IsEmpty)
            {
                int length = BinaryPrimitives.ReadUInt16BigEndian(packed);
                var f = fragments.AsSpan(at);
                BinaryPrimitives.WriteUInt16BigEndian(f, Wire.DnsMessageWriter.QuestionPointer);
                BinaryPrimitives.WriteUInt16BigEndian(f[2..], (ushort)set.Type);
                BinaryPrimitives.WriteUInt16BigEndian(f[4..], (ushort)@class);
                BinaryPrimitives.WriteUInt32BigEndian(f[6..], set.Ttl);
                BinaryPrimitives.WriteUInt16BigEndian(f[10..], (ushort)length);
                packed.Slice(2, length).CopyTo(f[12..]);
                at += 12 + length;
                packed = packed[(2 + length)..];
            }
        }
        return fragments;
    }

    /// <summary>Whether <paramref name="name"/> is <paramref name="ancestor"/> or below it.</summary>
    private static bool IsBelow(ReadOnlySpan<byte> name, ReadOnlySpan<byte> ancestor)
    {
        for (int pos = 0; name.Length - pos >= ancestor.Length; pos += 1 + name[pos])
        {
            if (name.Length - pos == ancestor.Length) return DnsName.EqualsIgnoreCase(name[pos..], ancestor);
            if (name[pos] == 0) break;
        }
        return false;
    }

    /// <summary>
    /// As named-checkzone does: an in-zone name server of the apex without an address is an error
    /// (no one could reach it); other in-zone NS, MX and SRV targets without one are warnings. A
    /// target that does not exist may be answered by the wildcard of its closest encloser (RFC 4592).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void CheckAddresses(List<int> pointers, int apex)
    {
        Span<byte> wildcard = stackalloc byte[DnsName.MaxLength + 2];
        foreach (int rec in pointers)
        {
            var type = _recs[rec].Type;
            var data = DataOf(rec);
            int skip = type switch { RecordType.MX => 2, RecordType.SRV => 6, _ => 0 };
            if (data.Length <= skip || !DnsName.TryMeasureWire(data[skip..], out int nameLength, out int labels)) continue;
            var target = data.Slice(skip, nameLength);
            if (labels == 0 || !IsBelow(target, _origin.Wire)) continue;
            int node = Find(target);
            bool hasAddress;
            if (node >= 0) hasAddress = HasAddress(node);
            else
            {
                hasAddress = false;
                int pos = 0;
                for (int l = labels; l > _origin.LabelCount && pos < target.Length - 1; l--)
                {
                    pos += 1 + target[pos];
                    var encloser = target[pos..];
                    if (Find(encloser) >= 0 || l - 1 == _origin.LabelCount)
                    {
                        if (encloser.Length + 2 <= DnsName.MaxLength)
                        {
                            wildcard[0] = 1;
                            wildcard[1] = (byte)'*';
                            encloser.CopyTo(wildcard[2..]);
                            int w = Find(wildcard[..(2 + encloser.Length)]);
                            hasAddress = w >= 0 && HasAddress(w);
                        }
                        break;
                    }
                }
            }
            if (hasAddress) continue;
            int owner = _recs[rec].Node;
            string problem = $"{OwnerText(owner)}/{RecordTypes.ToText(type)} '{DnsName.FromWire(target)}' has no address records (A or AAAA)";
            if (type == RecordType.NS && owner == apex) AddError(rec, problem);
            else AddWarning(rec, problem);
        }
    }

    private bool HasAddress(int node)
    {
        ref readonly var e = ref _nodes[node];
        return HasType(e, RecordType.A) || HasType(e, RecordType.AAAA);
    }

    private bool HasType(in ZoneData.NodeEntry e, RecordType type)
    {
        for (int s = e.FirstSet; s < e.FirstSet + e.SetCount; s++)
            if (_sets[s].Type == type) return true;
        return false;
    }

    /// <summary>Orders the records of one RRset by canonical RDATA (RFC 4034 §6.3), then file order.</summary>
    private sealed class RunComparer(ZoneCompiler compiler) : IComparer<int>
    {
        private readonly Dictionary<int, byte[]> _canonical = [];
        private bool _lower;

        public void Sort(int[] order, int start, int length)
        {
            _canonical.Clear();
            var type = compiler._recs[order[start]].Type;
            _lower = RdataSchema.LowersNamesInCanonicalForm(type);
            if (_lower)
                for (int i = start; i < start + length; i++)
                    _canonical[order[i]] = RdataWire.ToCanonical(type, compiler.DataOf(order[i]).ToArray());
            Array.Sort(order, start, length, this);
        }

        private ReadOnlySpan<byte> Canonical(int rec) => _lower ? _canonical[rec] : compiler.DataOf(rec);

        public int Compare(int x, int y)
        {
            int c = Canonical(x).SequenceCompareTo(Canonical(y));
            return c != 0 ? c : x.CompareTo(y);
        }

        public bool Same(int x, int y) => Canonical(x).SequenceEqual(Canonical(y));
    }
}
