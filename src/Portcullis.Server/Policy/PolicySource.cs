using System.Buffers.Binary;
using System.Net;
using System.Text;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.ZoneText;
using Portcullis.Protocol.Zones;

namespace Portcullis.Server.Policy;

/// <summary>A record of local data at a trigger: answered with the query's name as its owner.</summary>
public sealed record PolicyRecord(RecordType Type, uint Ttl, byte[] Data);

/// <summary>
/// One QNAME trigger as read: its name in lower-case wire form (for a wildcard <c>*.name</c>, the
/// name below which it matches), the action the zone encodes, and its records for local data.
/// </summary>
public sealed record PolicyTrigger(byte[] Name, bool Wildcard, PolicyAction Action, IReadOnlyList<PolicyRecord> Records)
{
    public override string ToString() => (Wildcard ? "*." : "") + DnsName.FromWire(Name) + " " + Action;
}

/// <summary>
/// One policy as read from its zone (file or transfer) or list file, before the order and overrides
/// of the configuration apply: its triggers, and for a zone its SOA (for the authority section of
/// the negative answers it causes). Built off the query path. Kept (to compile the policy anew when
/// another policy changes) in flat arrays: a million-name list is two arrays, not a million objects.
/// </summary>
public sealed class PolicySource
{
    internal struct Entry
    {
        public int Name;        // offset in _names
        public int Records;     // index in _recordSets, or -1
        public byte NameLength;
        public bool Wildcard;
        public PolicyAction Action;
    }

    private readonly byte[] _names;
    private readonly Entry[] _entries;
    private readonly PolicyRecord[][] _recordSets;

    internal PolicySource(string name, byte[] names, Entry[] entries, PolicyRecord[][] recordSets, IReadOnlyList<string> warnings)
    {
        Name = name;
        _names = names;
        _entries = entries;
        _recordSets = recordSets;
        Warnings = warnings;
    }

    /// <summary>The zone's name (without the final dot) or the list's name.</summary>
    public string Name { get; }
    public int TriggerCount => _entries.Length;
    /// <summary>Records that mean nothing here (unsupported triggers), one line each.</summary>
    public IReadOnlyList<string> Warnings { get; }
    /// <summary>The zone's origin (wire form) and SOA RDATA, or null for a list.</summary>
    public byte[]? SoaOwner { get; init; }
    public byte[]? SoaData { get; init; }
    /// <summary>The TTL of the SOA in negative answers: the lesser of its TTL and MINIMUM (RFC 2308 §3).</summary>
    public uint SoaTtl { get; init; }
    /// <summary>The zone's serial, when it is a zone.</summary>
    public uint? Serial { get; init; }

    /// <summary>One trigger as an object (for tools and tests).</summary>
    public PolicyTrigger TriggerAt(int i) => new(NameOf(i).ToArray(), IsWildcard(i), ActionOf(i), RecordsOf(i));

    internal ReadOnlySpan<byte> NameOf(int i) => _names.AsSpan(_entries[i].Name, _entries[i].NameLength);
    internal bool IsWildcard(int i) => _entries[i].Wildcard;
    internal PolicyAction ActionOf(int i) => _entries[i].Action;
    internal PolicyRecord[] RecordsOf(int i) => _entries[i].Records < 0 ? [] : _recordSets[_entries[i].Records];

    public override string ToString() => $"{Name}: {TriggerCount} triggers";

    /// <summary>Collects triggers; a name equal to the one before shares its octets (a list's exact and wildcard pair).</summary>
    internal sealed class Builder
    {
        private readonly List<byte> _names = [];
        private readonly List<Entry> _entries = [];
        private readonly List<PolicyRecord[]> _recordSets = [];
        private int _lastName = -1, _lastLength;

        public int Count => _entries.Count;

        public void Add(ReadOnlySpan<byte> lowerName, bool wildcard, PolicyAction action, PolicyRecord[]? records = null)
        {
            if (lowerName.Length > 255) return;
            int offset;
            if (_lastName >= 0 && _lastLength == lowerName.Length
                && System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_names).Slice(_lastName, _lastLength).SequenceEqual(lowerName))
                offset = _lastName;
            else
            {
                offset = _names.Count;
                _names.AddRange(lowerName);
                _lastName = offset;
                _lastLength = lowerName.Length;
            }
            int set = -1;
            if (records is { Length: > 0 })
            {
                set = _recordSets.Count;
                _recordSets.Add(records);
            }
            _entries.Add(new Entry { Name = offset, NameLength = (byte)lowerName.Length, Wildcard = wildcard, Action = action, Records = set });
        }

        public PolicySource Build(string name, IReadOnlyList<string> warnings, byte[]? soaOwner = null, byte[]? soaData = null, uint soaTtl = 0, uint? serial = null) =>
            new(name, [.. _names], [.. _entries], [.. _recordSets], warnings) { SoaOwner = soaOwner, SoaData = soaData, SoaTtl = soaTtl, Serial = serial };
    }
}

/// <summary>A policy zone or list that did not load: every problem, each with file and line where known.</summary>
public sealed class PolicyLoadException(string message) : Exception(message);

/// <summary>Reads Response Policy Zones (from files or transferred records) and domain lists into <see cref="PolicySource"/>s.</summary>
public static class PolicySources
{
    /// <summary>Trigger kinds this server does not implement (their last label above the zone's origin).</summary>
    private static readonly string[] UnsupportedTriggers = ["rpz-client-ip", "rpz-ip", "rpz-nsdname", "rpz-nsip"];

    private const int MaxReported = 20;

    /// <summary>
    /// Reads an RPZ zone file: the zone-file syntax and the zone checks (SOA and NS at the apex, a
    /// CNAME alone at its name, …) as for any zone, then the RPZ encoding. Every problem names the
    /// file, line and column.
    /// </summary>
    public static PolicySource ReadZoneFile(DnsName origin, string path)
    {
        if (!File.Exists(path)) throw new PolicyLoadException($"{path}: policy zone file not found (zone {origin})");
        var errors = new List<string>();
        var records = new List<(ResourceRecord Record, ZonePosition At)>();
        ZoneCheckResult check;
        try
        {
            using var reader = ZoneReader.Open(path, origin, new ZoneReaderOptions { CollectErrors = true });
            var compiler = new ZoneCompiler(origin, RecordClass.IN, path);
            try
            {
                foreach (var r in reader.ReadRecords())
                {
                    compiler.Add(r, reader.Position);
                    records.Add((r, reader.Position));
                }
            }
            catch (ZoneFormatException) { /* in reader.Errors */ }
            check = compiler.Finish(reader.Errors, reader.Warnings, path);
        }
        catch (IOException e) { throw new PolicyLoadException($"{path}: {e.Message}"); }
        foreach (var e in check.Errors) errors.Add(e.Line > 0 ? e.Message : $"{path}: {e.Problem}");
        if (errors.Count > 0) throw new PolicyLoadException(string.Join(Environment.NewLine, errors.Take(MaxReported)));
        var source = Build(origin, records, errors);
        if (errors.Count > 0) throw new PolicyLoadException(string.Join(Environment.NewLine, errors.Take(MaxReported)));
        return source;
    }

    /// <summary>A policy zone from its records (a transfer); problems name the zone.</summary>
    public static PolicySource FromRecords(DnsName origin, IEnumerable<ResourceRecord> records)
    {
        var errors = new List<string>();
        var at = new ZonePosition($"policy zone {origin}", 0, 0);
        var source = Build(origin, records.Select(r => (r, at)), errors);
        if (errors.Count > 0) throw new PolicyLoadException(string.Join(Environment.NewLine, errors.Take(MaxReported)));
        return source;
    }

    private static string Where(ZonePosition at) => at.Line > 0 ? at.ToString() : at.File ?? "<input>";

    private static PolicySource Build(DnsName origin, IEnumerable<(ResourceRecord Record, ZonePosition At)> records, List<string> errors)
    {
        var warnings = new List<string>();
        byte[]? soa = null;
        uint soaTtl = 0;
        // Owner (lower case, relative part as an absolute name) → its records, in file order.
        var byOwner = new Dictionary<string, (byte[] Name, bool Wildcard, List<(ResourceRecord Record, ZonePosition At)> Records)>(StringComparer.Ordinal);
        var order = new List<string>();
        int unsupported = 0;
        string? firstUnsupported = null;
        foreach (var (r, at) in records)
        {
            if (r.Class != RecordClass.IN || !r.Owner.IsSubdomainOf(origin)) continue;
            if (r.Owner.LabelCount == origin.LabelCount)
            {
                if (r.Type == RecordType.SOA && soa is null && r.Data.Length >= 22)
                {
                    soa = r.Data;
                    uint minimum = BinaryPrimitives.ReadUInt32BigEndian(r.Data.AsSpan(r.Data.Length - 4));
                    soaTtl = Math.Min(r.Ttl, minimum);
                }
                continue;   // the apex holds the zone's SOA and NS, no policy
            }
            // DNSSEC records of a signed policy zone say nothing about policy.
            if (r.Type is RecordType.RRSIG or RecordType.NSEC or RecordType.NSEC3 or RecordType.NSEC3PARAM or RecordType.DNSKEY) continue;
            int relative = r.Owner.LabelCount - origin.LabelCount;
            var kind = Encoding.ASCII.GetString(r.Owner.GetLabel(relative - 1)).ToLowerInvariant();
            if (Array.IndexOf(UnsupportedTriggers, kind) >= 0)
            {
                unsupported++;
                firstUnsupported ??= $"{Where(at)}: {r.Owner}: {kind} triggers are not supported (QNAME triggers only): ignored";
                continue;
            }
            var name = RelativeName(r.Owner, relative);
            bool wildcard = name[0] == 1 && name[1] == (byte)'*';
            if (wildcard) name = name[2..];
            DnsName.LowerLabels(name);
            string key = (wildcard ? "*" : "") + Convert.ToHexString(name);
            if (!byOwner.TryGetValue(key, out var entry))
            {
                entry = (name, wildcard, []);
                byOwner[key] = entry;
                order.Add(key);
            }
            entry.Records.Add((r, at));
        }
        if (unsupported > 0) warnings.Add(unsupported == 1 ? firstUnsupported! : $"{firstUnsupported} (and {unsupported - 1} more such records)");
        if (soa is null) errors.Add($"policy zone {origin}: no SOA record at its apex");

        var triggers = new PolicySource.Builder();
        foreach (var key in order)
        {
            var (name, wildcard, list) = byOwner[key];
            var cname = list.Find(x => x.Record.Type == RecordType.CNAME);
            if (cname.Record is not null)
            {
                if (list.Count > 1)
                {
                    var other = list.Find(x => !ReferenceEquals(x.Record, cname.Record));
                    errors.Add($"{Where(other.At)}: {other.Record.Owner} has a CNAME (at {Where(cname.At)}) and other records; an RPZ trigger's CNAME stands alone");
                    continue;
                }
                var action = CnameAction(cname.Record, name, wildcard);
                triggers.Add(name, wildcard, action,
                    action == PolicyAction.LocalData ? [new PolicyRecord(RecordType.CNAME, cname.Record.Ttl, cname.Record.Data)] : null);
                continue;
            }
            triggers.Add(name, wildcard, PolicyAction.LocalData, list.Select(x => new PolicyRecord(x.Record.Type, x.Record.Ttl, x.Record.Data)).ToArray());
        }
        return triggers.Build(origin.ToString().TrimEnd('.') is { Length: > 0 } n ? n : ".", warnings, origin.Wire.ToArray(), soa, soaTtl,
            soa is null ? null : BinaryPrimitives.ReadUInt32BigEndian(soa.AsSpan(soa.Length - 20)));
    }

    /// <summary>The first <paramref name="labels"/> labels of <paramref name="owner"/>, as an absolute wire name.</summary>
    private static byte[] RelativeName(DnsName owner, int labels)
    {
        var wire = owner.Wire;
        int pos = 0;
        for (int i = 0; i < labels; i++) pos += wire[pos] + 1;
        var name = new byte[pos + 1];
        wire[..pos].CopyTo(name);
        return name;
    }

    /// <summary>
    /// The action a CNAME encodes (draft-vixie-dnsop-dns-rpz §3): <c>.</c> NXDOMAIN, <c>*.</c> NODATA,
    /// <c>rpz-passthru.</c> (or, the older form, the trigger's own name) PASSTHRU, <c>rpz-drop.</c>
    /// DROP, <c>rpz-tcp-only.</c> TCP-only; any other target is local data.
    /// </summary>
    private static PolicyAction CnameAction(ResourceRecord cname, byte[] trigger, bool wildcard)
    {
        var target = cname.Data.AsSpan();
        if (target.Length == 1 && target[0] == 0) return PolicyAction.Nxdomain;
        if (target.Length == 3 && target[0] == 1 && target[1] == (byte)'*' && target[2] == 0) return PolicyAction.Nodata;
        if (IsSpecial(target, "rpz-passthru"u8)) return PolicyAction.Passthru;
        if (IsSpecial(target, "rpz-drop"u8)) return PolicyAction.Drop;
        if (IsSpecial(target, "rpz-tcp-only"u8)) return PolicyAction.TcpOnly;
        if (!wildcard && DnsName.EqualsIgnoreCase(target, trigger)) return PolicyAction.Passthru;
        return PolicyAction.LocalData;
    }

    /// <summary>A one-label name (the special targets live at the root), compared without case.</summary>
    private static bool IsSpecial(ReadOnlySpan<byte> target, ReadOnlySpan<byte> label)
    {
        if (target.Length != label.Length + 2 || target[0] != label.Length || target[^1] != 0) return false;
        for (int i = 0; i < label.Length; i++)
            if ((target[1 + i] | 0x20) != (label[i] | 0x20)) return false;
        return true;
    }

    /// <summary>
    /// Reads a domain list: one domain a line, or hosts-file lines ("0.0.0.0 bad.example [more names]");
    /// blank lines and <c>#</c> comments are skipped. Each listed name matches itself and every name
    /// below it; a line "*.name" matches only the names below. In hosts lines, entries for other
    /// addresses than 0.0.0.0, ::, 127.0.0.0/8 and ::1 (the ff02:: lines of hosts files) and the
    /// machine's own names (localhost, broadcasthost, ip6-*) are skipped. Problems name the file and line.
    /// </summary>
    public static PolicySource ReadListFile(string name, string path, PolicyAction action)
    {
        if (!File.Exists(path)) throw new PolicyLoadException($"{path}: domain list not found");
        try
        {
            using var reader = new StreamReader(path, Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
            return ReadList(name, reader, path, action);
        }
        catch (IOException e) { throw new PolicyLoadException($"{path}: {e.Message}"); }
    }

    public static PolicySource ReadList(string name, TextReader text, string fileName, PolicyAction action)
    {
        var errors = new List<string>();
        var triggers = new PolicySource.Builder();
        int lineNumber = 0;
        string? line;
        while ((line = text.ReadLine()) is not null)
        {
            lineNumber++;
            int hash = line.IndexOf('#');
            var content = (hash >= 0 ? line[..hash] : line).Trim();
            if (content.Length == 0) continue;
            var words = content.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            IEnumerable<string> names = words;
            if (words.Length > 1 || IPAddress.TryParse(words[0], out _))
            {
                // A hosts-file line: ADDRESS NAME [NAME...].
                if (!IPAddress.TryParse(words[0], out var address))
                {
                    errors.Add($"{fileName}:{lineNumber}: '{content}': expected one domain, or a hosts line (ADDRESS NAME...)");
                    continue;
                }
                if (words.Length == 1)
                {
                    errors.Add($"{fileName}:{lineNumber}: '{content}': an address without a name");
                    continue;
                }
                if (!IsBlackhole(address)) continue;
                names = words.Skip(1).Where(w => !IsOwnName(w) && !IPAddress.TryParse(w, out _));
            }
            foreach (var word in names)
            {
                bool wildcard = word.StartsWith("*.", StringComparison.Ordinal);
                string text1 = wildcard ? word[2..] : word;
                if (!DnsName.TryParse(text1.EndsWith('.') ? text1 : text1 + ".", null, out var parsed, out var error) || parsed is null)
                {
                    errors.Add($"{fileName}:{lineNumber}: '{word}' is not a domain name: {error}");
                    continue;
                }
                if (parsed.IsRoot && !wildcard)
                {
                    errors.Add($"{fileName}:{lineNumber}: the root cannot be listed (it would match every name)");
                    continue;
                }
                var wire = parsed.Wire.ToArray();
                DnsName.LowerLabels(wire);
                // A name blocks itself and what is below it: an exact trigger and a wildcard one
                // (a name listed twice is kept once when the policy is compiled).
                if (!wildcard) triggers.Add(wire, false, action);
                triggers.Add(wire, true, action);
            }
            if (errors.Count >= MaxReported) break;
        }
        if (errors.Count > 0) throw new PolicyLoadException(string.Join(Environment.NewLine, errors));
        return triggers.Build(name, []);
    }

    private static bool IsBlackhole(IPAddress a) =>
        a.Equals(IPAddress.Any) || a.Equals(IPAddress.IPv6Any) || IPAddress.IsLoopback(a);

    private static bool IsOwnName(string name) =>
        name.Equals("localhost", StringComparison.OrdinalIgnoreCase) || name.Equals("localhost.localdomain", StringComparison.OrdinalIgnoreCase)
        || name.Equals("local", StringComparison.OrdinalIgnoreCase) || name.Equals("broadcasthost", StringComparison.OrdinalIgnoreCase)
        || name.StartsWith("ip6-", StringComparison.OrdinalIgnoreCase);
}
