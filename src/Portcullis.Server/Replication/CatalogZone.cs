using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Server.Authoritative;

namespace Portcullis.Server.Replication;

/// <summary>
/// One member zone of a catalog (RFC 9432 §4.3): the zone to serve, the unique label of its member
/// node (lower case, presentation form) and its group property (§4.4.2), if any.
/// </summary>
public sealed record CatalogMember(DnsName Zone, string Id, string? Group)
{
    /// <summary>
    /// The change-of-ownership property (§4.4.1, <c>coo.ID.zones.CATALOG PTR OTHER-CATALOG</c>): the
    /// catalog the producer means to move the zone to. Noted, not acted on: a consumer only migrates
    /// a zone when the other catalog lists it too, which is the caller's business.
    /// </summary>
    public DnsName? ChangeOfOwnership { get; init; }
}

/// <summary>
/// What <see cref="CatalogZone.Parse"/> found: the members (in canonical order of their member
/// nodes) when <see cref="Error"/> is null; otherwise the catalog must not be used at all
/// (§4.2: an unsupported or missing version) and <see cref="Members"/> is empty. Warnings are one
/// line each (ignored member nodes, ambiguous properties), for the log.
/// </summary>
public sealed record CatalogParse(IReadOnlyList<CatalogMember> Members, string? Error, IReadOnlyList<string> Warnings)
{
    public bool Ok => Error is null;
}

/// <summary>
/// Catalog zones (RFC 9432) as pure logic: reading a catalog into its member zones (consumer),
/// comparing two versions of it, and generating one from a list of zones (producer). No sockets,
/// no files, no clock; runs off the query path (a catalog changes rarely), so it allocates freely.
/// </summary>
/// <remarks>
/// Layout (§4): the apex has SOA and NS (<c>NS invalid.</c>, §4.1: a catalog is not meant to be
/// queried); <c>version.CATALOG TXT "2"</c> (§4.2.1); one member node per zone,
/// <c>ID.zones.CATALOG PTR MEMBER.</c> (§4.3), with properties below it
/// (<c>group.ID.zones...</c> TXT, §4.4.2; <c>coo.ID.zones...</c> PTR, §4.4.1). Anything else is
/// ignored (§3: "Catalog consumers MUST ignore any RR in the catalog zone which is meaningless to
/// or otherwise not supported by the implementation"), including custom properties under
/// <c>ext.CATALOG</c> (§4.5).
/// </remarks>
public static class CatalogZone
{
    /// <summary>The catalog schema version this code reads and writes (§4.2.1).</summary>
    public const string SupportedVersion = "2";

    /// <summary>Digits of the SHA-256 hex kept in a generated member ID: 64 bits, so a collision inside one catalog is negligible.</summary>
    private const int IdDigits = 16;

    private static readonly DnsName Invalid = DnsName.Parse("invalid.");

    /// <summary>Reads a catalog served as <paramref name="zone"/> (e.g. a secondary zone just transferred).</summary>
    public static CatalogParse Parse(Zone zone) => Parse(zone.Origin, zone.Records());

    /// <summary>
    /// The member zones of catalog <paramref name="catalog"/> given all its records (a zone's
    /// records or an AXFR, in any order; the SOA may appear twice).
    /// </summary>
    public static CatalogParse Parse(DnsName catalog, IEnumerable<ResourceRecord> records)
    {
        var warnings = new List<string>();
        var zonesNode = DnsName.Parse("zones", catalog);
        var versionNode = DnsName.Parse("version", catalog);
        int memberLabels = zonesNode.LabelCount + 1;

        var versions = new List<ResourceRecord>();
        // Member node (ID.zones.CATALOG) → its PTR records; property nodes → their records.
        var memberPtrs = new Dictionary<DnsName, List<ResourceRecord>>();
        var groups = new Dictionary<DnsName, List<ResourceRecord>>();
        var coos = new Dictionary<DnsName, List<ResourceRecord>>();

        foreach (var r in records)
        {
            // A catalog is a zone of class IN (§3); records of other classes mean nothing here.
            if (r.Class != RecordClass.IN || !r.Owner.IsSubdomainOf(catalog)) continue;
            if (r.Type == RecordType.TXT && r.Owner.Equals(versionNode))
            {
                AddOnce(versions, r);
                continue;
            }
            if (!r.Owner.IsSubdomainOf(zonesNode)) continue;
            if (r.Owner.LabelCount == memberLabels)
            {
                // Other types at a member node are not defined by the RFC: ignored (§3).
                if (r.Type == RecordType.PTR) AddOnce(Bucket(memberPtrs, r.Owner), r);
            }
            else if (r.Owner.LabelCount == memberLabels + 1)
            {
                var property = r.Owner.GetLabel(0);
                var member = r.Owner.Parent();
                if (r.Type == RecordType.TXT && LabelIs(property, "group")) AddOnce(Bucket(groups, member), r);
                else if (r.Type == RecordType.PTR && LabelIs(property, "coo")) AddOnce(Bucket(coos, member), r);
                // Any other property (or the properties' own sub-trees) is not ours to interpret.
            }
        }

        // §4.2.1: a catalog without a version property, or with one we do not support, MUST NOT
        // be processed: the caller keeps whatever it had (its members are neither added nor removed).
        if (versions.Count == 0)
            return Failed($"catalog zone {catalog} has no version property ({versionNode} TXT \"{SupportedVersion}\", RFC 9432 §4.2.1): not used", warnings);
        if (versions.Count > 1)
            return Failed($"catalog zone {catalog} has {versions.Count} version TXT records, not one: not used", warnings);
        var version = CharacterStrings(versions[0].Data);
        if (version is not [SupportedVersion])
        {
            string shown = version is null ? "malformed TXT" : string.Join(' ', version.Select(s => $"\"{s}\""));
            return Failed($"catalog zone {catalog} has schema version {shown}, only \"{SupportedVersion}\" is supported (RFC 9432 §4.2.1): not used", warnings);
        }

        // Member nodes in canonical order, so that "the first" of two listing the same zone is
        // the same on every consumer and on every refresh.
        var nodes = memberPtrs.Keys.ToList();
        nodes.Sort();
        var members = new List<CatalogMember>(nodes.Count);
        var seen = new Dictionary<DnsName, DnsName>();
        foreach (var node in nodes)
        {
            var ptrs = memberPtrs[node];
            // §4.3: only one PTR is allowed at a member node; with more we cannot tell which zone
            // is meant, so the node is ignored.
            if (ptrs.Count != 1)
            {
                warnings.Add($"catalog zone {catalog}: member node {node} has {ptrs.Count} PTR records, not one: ignored (RFC 9432 §4.3)");
                continue;
            }
            if (!TryName(ptrs[0].Data, out var zone))
            {
                warnings.Add($"catalog zone {catalog}: member node {node} has a malformed PTR: ignored");
                continue;
            }
            if (zone.Equals(catalog))
            {
                warnings.Add($"catalog zone {catalog}: member node {node} names the catalog itself: ignored");
                continue;
            }
            // §4.3: a zone must be listed once; a second node for it is a producer error. The
            // first in canonical order is kept, so the choice is the same on every consumer.
            if (seen.TryGetValue(zone, out var firstNode))
            {
                warnings.Add($"catalog zone {catalog}: member zone {zone} is listed again at {node} (first at {firstNode}): ignored (RFC 9432 §4.3)");
                continue;
            }
            seen.Add(zone, node);

            string? group = null;
            if (groups.TryGetValue(node, out var groupRecords))
            {
                var strings = groupRecords.Count == 1 ? CharacterStrings(groupRecords[0].Data) : null;
                if (strings is [var g]) group = g;
                else warnings.Add($"catalog zone {catalog}: group property of {node} is not one TXT record of one string: ignored (RFC 9432 §4.4.2)");
            }
            DnsName? coo = null;
            if (coos.TryGetValue(node, out var cooRecords))
            {
                if (cooRecords.Count == 1 && TryName(cooRecords[0].Data, out var target)) coo = target;
                else warnings.Add($"catalog zone {catalog}: coo property of {node} is not one PTR record: ignored (RFC 9432 §4.4.1)");
            }
            members.Add(new CatalogMember(zone, LabelText(node), group) { ChangeOfOwnership = coo });
        }
        return new CatalogParse(members, null, warnings);
    }

    /// <summary>
    /// What changed between two versions of a catalog: zones to provision and zones to remove, each
    /// in canonical order. A zone whose member ID changed is in both lists (§5.4: the producer asks
    /// for a reset, so the consumer drops the zone and its state and provisions it afresh).
    /// </summary>
    public static (IReadOnlyList<DnsName> Added, IReadOnlyList<DnsName> Removed) Diff(
        IEnumerable<CatalogMember> oldMembers, IEnumerable<CatalogMember> newMembers)
    {
        var before = ById(oldMembers);
        var after = ById(newMembers);
        var added = new List<DnsName>();
        var removed = new List<DnsName>();
        foreach (var (zone, id) in after)
            if (!before.TryGetValue(zone, out var oldId) || !string.Equals(oldId, id, StringComparison.OrdinalIgnoreCase))
                added.Add(zone);
        foreach (var (zone, id) in before)
            if (!after.TryGetValue(zone, out var newId) || !string.Equals(newId, id, StringComparison.OrdinalIgnoreCase))
                removed.Add(zone);
        added.Sort();
        removed.Sort();
        return (added, removed);
    }

    /// <summary>
    /// The whole catalog zone <paramref name="catalog"/> listing <paramref name="members"/>: SOA
    /// (<c>invalid. invalid.</c>, as Knot and BIND generate it), <c>NS invalid.</c> (§4.1),
    /// <c>version TXT "2"</c>, and one member node per zone with the ID of <see cref="MemberId"/>,
    /// so regenerating after any change keeps every other member's ID (§5.4: an ID change would
    /// reset the zone on the consumers). Duplicates in <paramref name="members"/> are listed once.
    /// TTL 0 throughout: nobody should cache a catalog's records (§4.1).
    /// </summary>
    public static List<ResourceRecord> Build(DnsName catalog, uint serial, IEnumerable<DnsName> members)
    {
        var zonesNode = DnsName.Parse("zones", catalog);
        var records = new List<ResourceRecord>
        {
            new(catalog, RecordType.SOA, RecordClass.IN, 0, Soa(serial)),
            new(catalog, RecordType.NS, RecordClass.IN, 0, Invalid.Wire.ToArray()),
            new(DnsName.Parse("version", catalog), RecordType.TXT, RecordClass.IN, 0, [1, (byte)'2']),
        };
        var unique = new HashSet<DnsName>();
        var usedIds = new HashSet<string>(StringComparer.Ordinal);
        var ptrs = new List<ResourceRecord>();
        foreach (var member in members)
        {
            if (member.Equals(catalog))
                throw new ArgumentException($"catalog zone {catalog} cannot list itself as a member", nameof(members));
            if (!unique.Add(member)) continue;
            string id = MemberId(member);
            // Two names sharing a 64-bit prefix (not seen in practice): the later one takes more
            // of its hash, so each member node still has exactly one PTR (§4.3).
            for (int digits = IdDigits * 2; !usedIds.Add(id); digits *= 2) id = MemberId(member, Math.Min(digits, 64));
            ptrs.Add(new ResourceRecord(zonesNode.Prepend(Encoding.ASCII.GetBytes(id)), RecordType.PTR, RecordClass.IN, 0, member.Wire.ToArray()));
        }
        ptrs.Sort((a, b) => a.Owner.CompareTo(b.Owner));
        records.AddRange(ptrs);
        return records;
    }

    /// <summary>
    /// The member ID (unique-N label, §4.3) of a zone in a generated catalog: the first 16 hex
    /// digits of SHA-256 over the zone's lower-case wire name. A pure function of the name, so the
    /// same zone keeps its ID across regenerations and producers (Knot does the same with its own hash).
    /// </summary>
    public static string MemberId(DnsName zone) => MemberId(zone, IdDigits);

    private static string MemberId(DnsName zone, int digits)
    {
        var hash = SHA256.HashData(zone.ToLowerInvariant().Wire);
        return Convert.ToHexStringLower(hash)[..digits];
    }

    private static byte[] Soa(uint serial)
    {
        // MNAME and RNAME "invalid.": a catalog is not a zone anyone should contact or mail.
        // refresh 1 h, retry 10 min, expire 2^31-2 s (never expire a catalog for lack of a
        // primary: that would remove every member), minimum 0 — Knot's generated values.
        var wire = Invalid.Wire;
        var data = new byte[wire.Length * 2 + 20];
        wire.CopyTo(data);
        wire.CopyTo(data.AsSpan(wire.Length));
        var numbers = data.AsSpan(wire.Length * 2);
        BinaryPrimitives.WriteUInt32BigEndian(numbers, serial);
        BinaryPrimitives.WriteUInt32BigEndian(numbers[4..], 3600);
        BinaryPrimitives.WriteUInt32BigEndian(numbers[8..], 600);
        BinaryPrimitives.WriteUInt32BigEndian(numbers[12..], 2147483646);
        BinaryPrimitives.WriteUInt32BigEndian(numbers[16..], 0);
        return data;
    }

    /// <summary>Zone → member ID; a zone listed twice keeps its first entry, as <see cref="Parse(DnsName, IEnumerable{ResourceRecord})"/> does.</summary>
    private static Dictionary<DnsName, string> ById(IEnumerable<CatalogMember> members)
    {
        var map = new Dictionary<DnsName, string>();
        foreach (var m in members) map.TryAdd(m.Zone, m.Id);
        return map;
    }

    private static CatalogParse Failed(string error, List<string> warnings) => new([], error, warnings);

    private static List<ResourceRecord> Bucket(Dictionary<DnsName, List<ResourceRecord>> map, DnsName key)
    {
        if (!map.TryGetValue(key, out var list)) map.Add(key, list = []);
        return list;
    }

    /// <summary>An RRset holds a record once (RFC 2181 §5): an AXFR listing one twice (or the SOA at both ends) is one record.</summary>
    private static void AddOnce(List<ResourceRecord> list, ResourceRecord r)
    {
        if (!list.Contains(r)) list.Add(r);
    }

    private static bool LabelIs(ReadOnlySpan<byte> label, string text) =>
        label.Length == text.Length && DnsName.EqualsIgnoreCase(label, Encoding.ASCII.GetBytes(text));

    /// <summary>The first label of <paramref name="node"/> in lower-case presentation form (escapes kept).</summary>
    private static string LabelText(DnsName node)
    {
        var label = node.GetLabel(0);
        var wire = new byte[label.Length + 2];
        wire[0] = (byte)label.Length;
        label.CopyTo(wire.AsSpan(1));
        DnsName.LowerLabels(wire);
        var sb = new StringBuilder();
        DnsName.AppendPresentation(sb, wire, trailingDot: false);
        return sb.ToString();
    }

    /// <summary>RDATA of a PTR (an uncompressed name filling it exactly).</summary>
    private static bool TryName(byte[] rdata, out DnsName name)
    {
        name = DnsName.Root;
        if (!DnsName.TryMeasureWire(rdata, out int length, out _) || length != rdata.Length) return false;
        name = DnsName.FromWire(rdata);
        return true;
    }

    /// <summary>The character-strings of TXT RDATA (RFC 1035 §3.3.14) as text, or null when malformed.</summary>
    private static List<string>? CharacterStrings(byte[] rdata)
    {
        var strings = new List<string>();
        for (int i = 0; i < rdata.Length;)
        {
            int n = rdata[i++];
            if (i + n > rdata.Length) return null;
            strings.Add(Encoding.UTF8.GetString(rdata, i, n));
            i += n;
        }
        return strings.Count == 0 ? null : strings;
    }
}
