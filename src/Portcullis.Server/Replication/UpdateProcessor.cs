using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.Wire;
using Portcullis.Protocol.Zones;
using Portcullis.Protocol.ZoneText;
using Portcullis.Server.Authoritative;

namespace Portcullis.Server.Replication;

/// <summary>
/// What a dynamic update did. <see cref="Rcode.NoError"/> with a <see cref="Diff"/> and a
/// <see cref="NewZone"/> when the zone changed (journal the diff, then swap the zone in);
/// <see cref="Rcode.NoError"/> with both null when the update changed nothing (RFC 2136 §3.4.2:
/// the serial stays); any other RCODE with the zone unchanged. <see cref="Reason"/> is one line for
/// the log: why it failed, or what changed.
/// </summary>
public sealed record UpdateResult(Rcode Rcode, IxfrDiff? Diff, Zone? NewZone, string? Reason)
{
    public bool Changed => Diff is not null;
}

/// <summary>
/// RFC 2136 dynamic update as pure logic: a zone and an UPDATE message in, the new zone and the
/// difference out. No sockets, no files, no clock: the caller has already found the zone by the
/// zone section's name and checked allow-update and TSIG (§3.3); it writes the journal, swaps the
/// zone and sends NOTIFY. This runs off the query path (an update is rare and builds a whole new
/// zone through <see cref="ZoneCompiler"/>), so it allocates freely.
/// </summary>
/// <remarks>
/// The sections of an UPDATE message reuse the query sections (§2): zone = question,
/// prerequisites = answer, updates = authority. The order of processing is the RFC's: zone section
/// (§3.1), prerequisites (§3.2), prescan of the updates (§3.4.1), then the updates in order
/// (§3.4.2); the first failure ends it with the zone untouched (§3.4.2.1 / §3.7: all or nothing).
/// Prerequisites are evaluated against the zone as it was before the update.
/// </remarks>
public static class UpdateProcessor
{
    public static UpdateResult Process(Zone zone, DnsMessage update)
    {
        if (update.Header.Opcode != Opcode.Update)
            return Fail(Rcode.FormErr, $"opcode {update.Header.Opcode} is not UPDATE");

        // §3.1.1: exactly one zone, of type SOA; a zone we are not authoritative for is NOTAUTH.
        if (update.Questions.Count != 1)
            return Fail(Rcode.FormErr, $"the zone section has {update.Questions.Count} entries, not 1 (RFC 2136 §3.1.1)");
        var z = update.Questions[0];
        if (z.Type != RecordType.SOA)
            return Fail(Rcode.FormErr, $"the zone section's type is {RecordTypes.ToText(z.Type)}, not SOA (RFC 2136 §3.1.1)");
        if (!z.Name.Equals(zone.Origin) || z.Class != zone.Class)
            return Fail(Rcode.NotAuth, $"zone {z.Name} class {RecordClasses.ToText(z.Class)} is not the zone {zone.Origin} (RFC 2136 §3.1.1)");

        var prerequisite = CheckPrerequisites(zone, update.Answers);
        if (prerequisite is not null) return prerequisite;
        var prescan = Prescan(zone, update.Authority);
        if (prescan is not null) return prescan;

        var work = new Working(zone);
        foreach (var rr in update.Authority) work.Apply(rr);
        return work.Finish();
    }

    /// <summary>
    /// Parses an UPDATE message. <see cref="DnsMessage.Parse"/> checks every RDATA against its type,
    /// which an update cannot pass: its "delete RRset", "delete name" and prerequisite records carry
    /// class ANY or NONE with empty RDATA (RFC 2136 §2.4, §2.5.2-3). Here empty RDATA is accepted
    /// for those two classes and every other RDATA is checked and expanded as usual. An OPT record
    /// is left out (the caller reads EDNS from the message itself); TSIG stays last in Additional.
    /// </summary>
    public static bool TryParse(ReadOnlySpan<byte> message, [NotNullWhen(true)] out DnsMessage? update, out string? error)
    {
        update = null;
        if (!DnsMessageReader.TryCreate(message, out var reader)) { error = "message shorter than the 12-octet header"; return false; }
        var header = reader.Header;
        // Every question is at least 5 octets and every record 11: bound the counts before looping.
        if (header.QuestionCount * 5 + (header.AnswerCount + header.AuthorityCount + header.AdditionalCount) * 11 > message.Length - DnsHeader.Size)
        {
            error = "section counts larger than the message";
            return false;
        }
        var result = new DnsMessage { Header = header };
        Span<byte> name = stackalloc byte[DnsName.MaxLength];
        for (int i = 0; i < header.QuestionCount; i++)
        {
            if (!reader.TryReadQuestion(name, out int length, out var type, out var @class)) { error = "malformed zone section"; return false; }
            result.Questions.Add(new DnsQuestion(DnsName.FromWire(name[..length]), type, @class));
        }
        int prerequisitesEnd = header.AnswerCount, updatesEnd = prerequisitesEnd + header.AuthorityCount;
        int total = updatesEnd + header.AdditionalCount;
        var buffer = ArrayPool<byte>.Shared.Rent(ushort.MaxValue);
        try
        {
            for (int i = 0; i < total; i++)
            {
                if (!reader.TryReadRecordHeader(name, out int nameLength, out var type, out var @class, out uint ttl, out int rdataOffset, out int rdataLength))
                {
                    error = $"malformed or truncated record at offset {reader.Position}";
                    return false;
                }
                if (type == RecordType.OPT && i >= updatesEnd) continue;
                byte[] data;
                if (rdataLength == 0 && @class is RecordClass.ANY or RecordClass.NONE) data = [];
                else if (DnsMessageReader.TryExpandRdata(type, reader.Message, rdataOffset, rdataLength, buffer, out int written, out error))
                    data = buffer.AsSpan(0, written).ToArray();
                else
                {
                    error = $"{RecordTypes.ToText(type)} record at offset {rdataOffset}: {error}";
                    return false;
                }
                var record = new ResourceRecord(DnsName.FromWire(name[..nameLength]), type, @class, ttl, data);
                (i < prerequisitesEnd ? result.Answers : i < updatesEnd ? result.Authority : result.Additional).Add(record);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        if (reader.Remaining != 0) { error = "octets after the last counted record"; return false; }
        error = null;
        update = result;
        return true;
    }

    /// <summary>SOA serial + 1 in RFC 1982 arithmetic, skipping 0 as BIND does (some software reads 0 as "unset").</summary>
    public static uint NextSerial(uint serial) => serial == uint.MaxValue ? 1 : serial + 1;

    private static UpdateResult Fail(Rcode rcode, string reason) => new(rcode, null, null, reason);

    private static string Describe(ResourceRecord rr) =>
        $"{rr.Owner} {RecordClasses.ToText(rr.Class)} {RecordTypes.ToText(rr.Type)}";

    /// <summary>§3.2: the prerequisite section, in order, against the zone before the update.</summary>
    private static UpdateResult? CheckPrerequisites(Zone zone, List<ResourceRecord> prerequisites)
    {
        // §3.2.3: the value-dependent prerequisites, gathered per RRset and compared after the loop.
        List<List<ResourceRecord>>? rrsets = null;
        foreach (var rr in prerequisites)
        {
            // §3.2.1: TTL 0, then the name in the zone.
            if (rr.Ttl != 0) return Fail(Rcode.FormErr, $"prerequisite {Describe(rr)} has TTL {rr.Ttl}, not 0 (RFC 2136 §3.2.1)");
            if (!rr.Owner.IsSubdomainOf(zone.Origin)) return Fail(Rcode.NotZone, $"prerequisite {Describe(rr)} is outside the zone {zone.Origin} (RFC 2136 §3.2.1)");
            var node = zone.Find(rr.Owner);
            bool nameInUse = node.Exists && node.Sets.Count > 0;   // an empty non-terminal owns no RR (§2.4.4)
            if (rr.Class is RecordClass.ANY or RecordClass.NONE)
            {
                if (rr.Data.Length != 0) return Fail(Rcode.FormErr, $"prerequisite {Describe(rr)} has RDATA (RFC 2136 §3.2.1)");
                bool any = rr.Type == RecordType.ANY;
                if (!any && RecordTypes.IsMetaType(rr.Type))
                    return Fail(Rcode.FormErr, $"prerequisite {Describe(rr)} names a meta type (RFC 2136 §3.2.1)");
                bool exists = any ? nameInUse : node.Exists && node.Get(rr.Type).Exists;
                if (rr.Class == RecordClass.ANY)
                {
                    // §2.4.1 RRset exists (value independent), §2.4.4 name is in use.
                    if (!exists) return Fail(any ? Rcode.NXDomain : Rcode.NXRRSet, $"prerequisite failed: {(any ? "name" : "RRset")} {rr.Owner}{(any ? "" : " " + RecordTypes.ToText(rr.Type))} does not exist");
                }
                else if (exists)
                {
                    // §2.4.3 RRset does not exist, §2.4.5 name is not in use.
                    return Fail(any ? Rcode.YXDomain : Rcode.YXRRSet, $"prerequisite failed: {(any ? "name" : "RRset")} {rr.Owner}{(any ? "" : " " + RecordTypes.ToText(rr.Type))} exists");
                }
            }
            else if (rr.Class == zone.Class)
            {
                if (RecordTypes.IsMetaType(rr.Type))
                    return Fail(Rcode.FormErr, $"prerequisite {Describe(rr)} names a meta type (RFC 2136 §3.2.1)");
                rrsets ??= [];
                var set = rrsets.Find(s => s[0].Type == rr.Type && s[0].Owner.Equals(rr.Owner));
                if (set is null) rrsets.Add([rr]);
                else set.Add(rr);
            }
            else return Fail(Rcode.FormErr, $"prerequisite {Describe(rr)} has a class that is neither ANY, NONE nor the zone's (RFC 2136 §3.2.1)");
        }
        if (rrsets is not null)
        {
            // §2.4.2 / §3.2.3: the zone's RRset must equal the one given, as sets of RDATA (TTLs ignored).
            foreach (var set in rrsets)
            {
                var node = zone.Find(set[0].Owner);
                var existing = node.Exists ? node.Get(set[0].Type) : default;
                if (!existing.Exists || !SameRdata(set, existing))
                    return Fail(Rcode.NXRRSet, $"prerequisite failed: RRset {set[0].Owner} {RecordTypes.ToText(set[0].Type)} is not the one given (RFC 2136 §2.4.2)");
            }
        }
        return null;
    }

    /// <summary>Whether <paramref name="given"/>, as a set, holds exactly the RDATA of <paramref name="existing"/>.</summary>
    private static bool SameRdata(List<ResourceRecord> given, RecordSet existing)
    {
        var type = existing.Type;
        var zoneData = existing.ToRdataArrays();   // no duplicates: the compiler dropped them
        var distinct = new List<byte[]>();
        foreach (var rr in given)
            if (!distinct.Exists(d => RdataWire.CanonicalEquals(type, d, rr.Data))) distinct.Add(rr.Data);
        if (distinct.Count != zoneData.Count) return false;
        foreach (var d in distinct)
            if (!zoneData.Exists(z => RdataWire.CanonicalEquals(type, z, d))) return false;
        return true;
    }

    /// <summary>§3.4.1.3: every update checked before any is applied.</summary>
    private static UpdateResult? Prescan(Zone zone, List<ResourceRecord> updates)
    {
        foreach (var rr in updates)
        {
            if (!rr.Owner.IsSubdomainOf(zone.Origin)) return Fail(Rcode.NotZone, $"update {Describe(rr)} is outside the zone {zone.Origin} (RFC 2136 §3.4.1.3)");
            if (rr.Class == zone.Class)
            {
                // Add to an RRset: a real type with well-formed RDATA.
                if (RecordTypes.IsMetaType(rr.Type)) return Fail(Rcode.FormErr, $"update {Describe(rr)} adds a meta type (RFC 2136 §3.4.1.3)");
                if (!RdataWire.IsValid(rr.Type, rr.Data, out string? error)) return Fail(Rcode.FormErr, $"update {Describe(rr)}: malformed RDATA: {error}");
            }
            else if (rr.Class == RecordClass.ANY)
            {
                // Delete an RRset (type ANY: every RRset at the name): TTL 0, no RDATA.
                if (rr.Ttl != 0 || rr.Data.Length != 0) return Fail(Rcode.FormErr, $"update {Describe(rr)} deletes with TTL {rr.Ttl} or RDATA (RFC 2136 §3.4.1.3)");
                if (rr.Type != RecordType.ANY && RecordTypes.IsMetaType(rr.Type)) return Fail(Rcode.FormErr, $"update {Describe(rr)} names a meta type (RFC 2136 §3.4.1.3)");
            }
            else if (rr.Class == RecordClass.NONE)
            {
                // Delete one RR: TTL 0, a real type, its RDATA.
                if (rr.Ttl != 0) return Fail(Rcode.FormErr, $"update {Describe(rr)} deletes with TTL {rr.Ttl}, not 0 (RFC 2136 §3.4.1.3)");
                if (RecordTypes.IsMetaType(rr.Type)) return Fail(Rcode.FormErr, $"update {Describe(rr)} names a meta type (RFC 2136 §3.4.1.3)");
                if (!RdataWire.IsValid(rr.Type, rr.Data, out string? error)) return Fail(Rcode.FormErr, $"update {Describe(rr)}: malformed RDATA: {error}");
            }
            else return Fail(Rcode.FormErr, $"update {Describe(rr)} has a class that is neither ANY, NONE nor the zone's (RFC 2136 §3.4.1.3)");
        }
        return null;
    }

    private static uint SerialOf(byte[] soa) => BinaryPrimitives.ReadUInt32BigEndian(soa.AsSpan(soa.Length - 20));   // RDATA only (SerialNumber.Of takes a record)

    private static byte[] WithSerial(byte[] soa, uint serial)
    {
        var copy = (byte[])soa.Clone();
        BinaryPrimitives.WriteUInt32BigEndian(copy.AsSpan(copy.Length - 20), serial);
        return copy;
    }

    /// <summary>Records equal as <see cref="ResourceRecord.Equals(ResourceRecord?)"/> says and with the same TTL,
    /// hashed over the RDATA with its names lowered, so that the records of an RRset spread.</summary>
    private sealed class RecordAndTtl : IEqualityComparer<ResourceRecord>
    {
        public static readonly RecordAndTtl Instance = new();

        public bool Equals(ResourceRecord? x, ResourceRecord? y) => x is null ? y is null : x.Equals(y) && x.Ttl == y!.Ttl;

        public int GetHashCode(ResourceRecord r)
        {
            var hash = new HashCode();
            hash.Add(r.Owner);
            hash.Add(r.Type);
            hash.Add(r.Ttl);
            // Names lowered as ResourceRecord.Equals compares them (every type with names, not only RFC 4034's list).
            var data = (byte[])r.Data.Clone();
            RdataWire.ForEachName(r.Type, data, static span => DnsName.LowerLabels(span));
            hash.AddBytes(data);
            return hash.ToHashCode();
        }
    }

    /// <summary>Whether CNAME may stand beside an RRset of this type (RFC 2181 §10.1, RFC 4035 §2.5).</summary>
    private static bool MayStandBesideCname(RecordType type) => type is RecordType.CNAME or RecordType.RRSIG or RecordType.NSEC;

    /// <summary>
    /// The names an update touches, each loaded whole from the zone on first use and changed in
    /// place; the rest of the zone is copied unchanged when the new zone is built.
    /// </summary>
    private sealed class Working(Zone zone)
    {
        private sealed class Name(DnsName owner, List<ResourceRecord> original)
        {
            public readonly DnsName Owner = owner;
            public readonly List<ResourceRecord> Original = original;
            /// <summary>The RRsets now, each non-empty, its records sharing one TTL.</summary>
            public readonly List<List<ResourceRecord>> Sets = [];

            public List<ResourceRecord>? Get(RecordType type) => Sets.Find(s => s[0].Type == type);
        }

        private readonly Dictionary<DnsName, Name> _names = [];
        private readonly List<Name> _order = [];
        private int _ignored;

        private Name Load(DnsName owner)
        {
            if (_names.TryGetValue(owner, out var name)) return name;
            var node = zone.Find(owner);
            var original = new List<ResourceRecord>();
            // Keep the owner as the zone spells it, so the new zone does not change its case.
            name = new Name(node.Exists ? node.ToName() : owner, original);
            if (node.Exists)
                foreach (var set in node.Sets)
                {
                    var records = new List<ResourceRecord>(set.ToRecords());
                    original.AddRange(records);
                    name.Sets.Add(records);
                }
            _names.Add(owner, name);
            _order.Add(name);
            return name;
        }

        public void Apply(ResourceRecord rr)
        {
            var name = Load(rr.Owner);
            bool apex = rr.Owner.Equals(zone.Origin);
            if (rr.Class == zone.Class) Add(name, rr);
            else if (rr.Class == RecordClass.ANY)
            {
                if (rr.Type == RecordType.ANY)
                    // §3.4.2.3: every RRset at the name; at the apex the SOA and NS stay.
                    name.Sets.RemoveAll(s => !apex || s[0].Type is not (RecordType.SOA or RecordType.NS));
                else if (apex && rr.Type is RecordType.SOA or RecordType.NS)
                    _ignored++;   // §3.4.2.3: the apex SOA and NS RRsets are never deleted whole
                else
                    name.Sets.RemoveAll(s => s[0].Type == rr.Type);
            }
            else
            {
                // §3.4.2.4: delete one RR; never the SOA, never the last NS at the apex.
                var set = name.Get(rr.Type);
                if (rr.Type == RecordType.SOA || set is null) { _ignored++; return; }
                if (apex && rr.Type == RecordType.NS && set.Count == 1) { _ignored++; return; }
                set.RemoveAll(z => RdataWire.CanonicalEquals(rr.Type, z.Data, rr.Data));
                if (set.Count == 0) name.Sets.Remove(set);
            }
        }

        /// <summary>§3.4.2.2: add to an RRset.</summary>
        private void Add(Name name, ResourceRecord given)
        {
            var rr = new ResourceRecord(name.Owner, given.Type, zone.Class, given.Ttl, given.Data);
            // CNAME and other data cannot coexist: an add that would mix them is ignored, whichever
            // came first (RRSIG and NSEC may stand beside a CNAME: RFC 4035 §2.5).
            if (rr.Type == RecordType.CNAME)
            {
                if (name.Sets.Exists(s => !MayStandBesideCname(s[0].Type))) { _ignored++; return; }
            }
            else if (!MayStandBesideCname(rr.Type) && name.Get(RecordType.CNAME) is not null) { _ignored++; return; }

            var set = name.Get(rr.Type);
            if (rr.Type == RecordType.SOA)
            {
                // An SOA is added only over the apex SOA, and only with a newer serial (RFC 1982):
                // §3.4.2.2 ignores an older one; an equal one is ignored too, as BIND does, since
                // the server's own increment would then be the real serial.
                if (set is null || !SerialNumber.IsNewer(SerialOf(rr.Data), SerialOf(set[0].Data))) { _ignored++; return; }
            }
            if (set is null)
            {
                name.Sets.Add([rr]);
                return;
            }
            // Singletons (CNAME, SOA; DNAME by RFC 6672 §2.4) are replaced; otherwise the same
            // RDATA (for WKS: the same address and protocol) is replaced, which may change its TTL.
            if (rr.Type is RecordType.CNAME or RecordType.SOA or RecordType.DNAME) set.Clear();
            else set.RemoveAll(z => rr.Type == RecordType.WKS
                ? z.Data.Length >= 5 && rr.Data.Length >= 5 && z.Data.AsSpan(0, 5).SequenceEqual(rr.Data.AsSpan(0, 5))
                : RdataWire.CanonicalEquals(rr.Type, z.Data, rr.Data));
            set.Add(rr);
            // RFC 2181 §5.2: one TTL per RRset; the latest one given wins, as in BIND.
            for (int i = 0; i < set.Count; i++)
                if (set[i].Ttl != rr.Ttl) set[i] = set[i].WithTtl(rr.Ttl);
        }

        public UpdateResult Finish()
        {
            var oldSoa = new ResourceRecord(zone.Origin, RecordType.SOA, zone.Class, zone.Soa.Ttl, zone.Soa.First.ToArray());
            var deleted = new List<ResourceRecord>();
            var added = new List<ResourceRecord>();
            ResourceRecord? newSoa = null;
            foreach (var name in _order)
            {
                // Records compared with their TTL: a TTL change is a delete and an add in IXFR.
                // Whatever was deleted and added back the same cancels out here. Hashed, since an
                // RRset may hold tens of thousands of records.
                var before = new HashSet<ResourceRecord>(name.Original, RecordAndTtl.Instance);
                var now = new HashSet<ResourceRecord>(RecordAndTtl.Instance);
                foreach (var set in name.Sets)
                    foreach (var rr in set)
                    {
                        now.Add(rr);
                        if (rr.Type == RecordType.SOA) newSoa = rr;
                        else if (!before.Contains(rr)) added.Add(rr);
                    }
                foreach (var rr in name.Original)
                    if (rr.Type != RecordType.SOA && !now.Contains(rr)) deleted.Add(rr);
            }
            bool soaChanged = newSoa is not null && !(newSoa.Equals(oldSoa) && newSoa.Ttl == oldSoa.Ttl);
            if (deleted.Count == 0 && added.Count == 0 && !soaChanged)
                return new UpdateResult(Rcode.NoError, null, null, $"no change ({_ignored} update records ignored or already in effect)");

            // A message counts an RRset's records in 16 bits (RFC 1035 §4.1.1): the zone checks say so
            // too, but refusing here keeps an oversized RRset away from the compiler altogether.
            foreach (var name in _order)
                foreach (var set in name.Sets)
                    if (set.Count > ushort.MaxValue)
                        return Fail(Rcode.Refused, $"the updated zone would be invalid: the {name.Owner}/{RecordTypes.ToText(set[0].Type)} RRset would have {set.Count} records, more than any message can carry");

            // No SOA seen: the update never touched the apex, so the SOA is the old one (it is never deleted).
            newSoa ??= oldSoa;
            uint oldSerial = zone.Serial;
            if (!SerialNumber.IsNewer(SerialOf(newSoa.Data), oldSerial))
                newSoa = new ResourceRecord(newSoa.Owner, RecordType.SOA, zone.Class, newSoa.Ttl, WithSerial(newSoa.Data, NextSerial(oldSerial)));

            var built = Build(newSoa, out string? problem);
            if (built is null) return Fail(Rcode.Refused, $"the updated zone would be invalid: {problem}");
            var diff = new IxfrDiff(oldSoa, deleted, newSoa, added);
            return new UpdateResult(Rcode.NoError, diff, built,
                $"serial {oldSerial} -> {built.Serial}: {deleted.Count} records deleted, {added.Count} added");
        }

        /// <summary>The untouched nodes of the old zone plus the touched names as they are now, through the zone checks.</summary>
        private Zone? Build(ResourceRecord soa, out string? problem)
        {
            var data = zone.Data;
            var touched = new HashSet<int>();
            foreach (var name in _order)
            {
                var node = zone.Find(name.Owner);
                if (node.Exists) touched.Add(node.Index);
            }
            var compiler = new ZoneCompiler(zone.Origin, zone.Class);
            var position = new ZonePosition("dynamic update", 0, 0);
            compiler.Add(soa, position);
            int apex = zone.Apex.Index;
            for (int i = 0; i < data.NodeCount; i++)
            {
                var node = data[i];
                if (node.Sets.Count == 0 || touched.Contains(i)) continue;
                DnsName owner = node.ToName();
                foreach (var set in node.Sets)
                {
                    if (i == apex && set.Type == RecordType.SOA) continue;   // the new one is in already
                    foreach (var rdata in set.ToRdataArrays())
                        compiler.Add(new ResourceRecord(owner, set.Type, zone.Class, set.Ttl, rdata), position);
                }
            }
            foreach (var name in _order)
                foreach (var set in name.Sets)
                    foreach (var rr in set)
                        if (rr.Type != RecordType.SOA) compiler.Add(rr, position);
            var result = compiler.Finish();
            if (!result.Ok)
            {
                problem = string.Join("; ", result.Errors.Take(3).Select(e => e.Problem));
                return null;
            }
            problem = null;
            return new Zone(result.Data!);
        }
    }
}
