using System.Text;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;

namespace Portcullis.Server.Tests.Differential;

/// <summary>One query's comparison: every difference, what the allowed rules explained, and what is left.</summary>
public sealed class Comparison(DifferentialQuery query, Observation portcullis, Observation peer)
{
    public DifferentialQuery Query { get; } = query;
    public Observation Portcullis { get; } = portcullis;
    public Observation Peer { get; } = peer;

    /// <summary>Every difference, before any allowed rule.</summary>
    public List<string> Differences { get; } = [];

    /// <summary>Differences no allowed rule explains.</summary>
    public List<string> Remaining { get; } = [];

    public HashSet<AllowedDifference> AllowedUsed { get; } = [];

    /// <summary>Owners equal without case but written in different case by the two servers.</summary>
    public List<string> CaseNotes { get; } = [];

    /// <summary>The known-difference entry that covers <see cref="Remaining"/>, if any.</summary>
    public KnownDifference? Known { get; set; }

    public bool FullyAgrees => Differences.Count == 0;
    public bool AgreesAfterAllowed => Remaining.Count == 0;
}

/// <summary>
/// Compares Portcullis's answer with a peer's: header (QR, opcode, RCODE with its EDNS part, AA,
/// TC, RD echo, RA, AD, CD), the question echo, OPT presence and version, and the answer,
/// authority and additional sections as sets of (owner without case, type, class, TTL, canonical
/// RDATA). Then applies <see cref="AllowedDifferences"/>, each only where its RFC leaves room.
/// </summary>
public sealed class ResponseComparer(IReadOnlyList<DifferentialZone> zones)
{
    private enum Side { Portcullis, Peer }

    private static readonly string[] SectionNames = ["answer", "authority", "additional"];

    private readonly IReadOnlyList<DifferentialZone> _zones = zones;
    private readonly HashSet<string> _zoneKeys = zones.SelectMany(z => z.Keys).ToHashSet();
    private readonly List<HashSet<string>> _apexNs = zones.Select(z => z.ApexNsKeys()).ToList();
    private readonly HashSet<DnsName> _apexes = zones.Select(z => z.Origin).ToHashSet();
    private readonly List<ResourceRecord> _wildcardRecords = zones.SelectMany(z => z.Records).Where(r => r.Owner.IsWildcard).ToList();

    public Comparison Compare(DifferentialQuery query, Observation portcullis, Observation peer)
    {
        var c = new Comparison(query, portcullis, peer);
        if (portcullis.Message is null || peer.Message is null)
        {
            if (portcullis.Error != peer.Error && !(portcullis.Error?.StartsWith("no answer") == true && peer.Error?.StartsWith("no answer") == true))
                Both(c, $"answer: Portcullis {portcullis.Error ?? "answered"}, peer {peer.Error ?? "answered"}");
            return c;
        }
        var p = portcullis.Message;
        var o = peer.Message;

        CompareHeader(c, p, o);

        var onlyP = new List<ResourceRecord>[3];
        var onlyO = new List<ResourceRecord>[3];
        var pSections = Sections(p);
        var oSections = Sections(o);
        for (int s = 0; s < 3; s++)
        {
            Duplicates(c, "Portcullis", SectionNames[s], pSections[s]);
            Duplicates(c, "peer", SectionNames[s], oSections[s]);
            var pKeys = pSections[s].ToLookup(RecordKey.Of);
            var oKeys = oSections[s].ToLookup(RecordKey.Of);
            onlyP[s] = pSections[s].Where(r => !oKeys.Contains(RecordKey.Of(r))).ToList();
            onlyO[s] = oSections[s].Where(r => !pKeys.Contains(RecordKey.Of(r))).ToList();
            foreach (var r in pSections[s])
                if (oKeys[RecordKey.Of(r)].FirstOrDefault() is { } twin && !r.Owner.Wire.SequenceEqual(twin.Owner.Wire))
                    c.CaseNotes.Add($"{SectionNames[s]}: Portcullis {r.Owner}, peer {twin.Owner}");
            foreach (var r in onlyP[s]) c.Differences.Add($"{SectionNames[s]}: only Portcullis has {RecordKey.Show(r)}");
            foreach (var r in onlyO[s]) c.Differences.Add($"{SectionNames[s]}: only the peer has {RecordKey.Show(r)}");
        }

        ExplainSections(c, query, p, o, onlyP, onlyO);
        foreach (var r in onlyP.SelectMany((list, s) => list.Select(r => $"{SectionNames[s]}: only Portcullis has {RecordKey.Show(r)}")))
            c.Remaining.Add(r);
        foreach (var r in onlyO.SelectMany((list, s) => list.Select(r => $"{SectionNames[s]}: only the peer has {RecordKey.Show(r)}")))
            c.Remaining.Add(r);
        if (c.CaseNotes.Count > 0) c.AllowedUsed.Add(AllowedDifferences.OwnerCase);
        if (p.Edns is not null && o.Edns is not null && (p.Edns.UdpPayloadSize != o.Edns.UdpPayloadSize || p.Edns.Options.Count != o.Edns.Options.Count))
            c.AllowedUsed.Add(AllowedDifferences.EdnsDetails);
        return c;
    }

    private static void Both(Comparison c, string difference)
    {
        c.Differences.Add(difference);
        c.Remaining.Add(difference);
    }

    private static List<ResourceRecord>[] Sections(DnsMessage m) => [m.Answers, m.Authority, m.Additional];

    private static void CompareHeader(Comparison c, DnsMessage p, DnsMessage o)
    {
        void Flag(string name, bool a, bool b)
        {
            if (a != b) Both(c, $"{name}: Portcullis {(a ? 1 : 0)}, peer {(b ? 1 : 0)}");
        }
        if (!p.Header.IsResponse) Both(c, "QR: Portcullis answered with QR=0");
        if (!o.Header.IsResponse) Both(c, "QR: the peer answered with QR=0");
        if (p.Header.Opcode != o.Header.Opcode) Both(c, $"opcode: Portcullis {p.Header.Opcode}, peer {o.Header.Opcode}");
        if (p.Rcode != o.Rcode) Both(c, $"rcode: Portcullis {p.Rcode}, peer {o.Rcode}");
        Flag("AA", p.Header.AuthoritativeAnswer, o.Header.AuthoritativeAnswer);
        Flag("TC", p.Header.Truncated, o.Header.Truncated);
        Flag("RD", p.Header.RecursionDesired, o.Header.RecursionDesired);
        if (p.Header.RecursionDesired != c.Query.RecursionDesired) Both(c, "RD: Portcullis did not echo the query's RD");
        Flag("RA", p.Header.RecursionAvailable, o.Header.RecursionAvailable);
        Flag("AD", p.Header.AuthenticData, o.Header.AuthenticData);
        Flag("CD", p.Header.CheckingDisabled, o.Header.CheckingDisabled);

        string Question(DnsMessage m) => string.Join(", ", m.Questions.Select(q => $"{q.Name} {RecordTypes.ToText(q.Type)} {(ushort)q.Class}"));
        // The question is echoed octet for octet, case included (RFC 1035 §4.1.2; resolvers using
        // 0x20 randomisation rely on it).
        bool sameQuestion = p.Questions.Count == o.Questions.Count
            && p.Questions.Zip(o.Questions).All(x => x.First.Name.Wire.SequenceEqual(x.Second.Name.Wire) && x.First.Type == x.Second.Type && x.First.Class == x.Second.Class);
        if (!sameQuestion) Both(c, $"question: Portcullis [{Question(p)}], peer [{Question(o)}]");

        if ((p.Edns is null) != (o.Edns is null))
            Both(c, $"OPT: Portcullis {(p.Edns is null ? "none" : "present")}, peer {(o.Edns is null ? "none" : "present")}");
        else if (p.Edns is not null && o.Edns is not null && p.Edns.Version != o.Edns.Version)
            Both(c, $"OPT version: Portcullis {p.Edns.Version}, peer {o.Edns.Version}");
        else if (p.Edns is not null && o.Edns is not null && p.Edns.DnssecOk != o.Edns.DnssecOk)
            Both(c, $"OPT DO: Portcullis {p.Edns.DnssecOk}, peer {o.Edns.DnssecOk}");
    }

    /// <summary>RFC 2181 §5: servers should suppress duplicate records; a set comparison alone would hide them.</summary>
    private static void Duplicates(Comparison c, string who, string section, List<ResourceRecord> records)
    {
        foreach (var group in records.GroupBy(RecordKey.Of).Where(g => g.Count() > 1))
            Both(c, $"{section}: {who} repeats {RecordKey.Show(group.First())} {group.Count()} times");
    }

    /// <summary>Removes from the one-sided records those an allowed rule accounts for.</summary>
    private void ExplainSections(Comparison c, DifferentialQuery query, DnsMessage p, DnsMessage o,
        List<ResourceRecord>[] onlyP, List<ResourceRecord>[] onlyO)
    {
        bool any = onlyP.Any(l => l.Count > 0) || onlyO.Any(l => l.Count > 0);
        if (!any) return;

        // Truncated on both sides: the bodies are not compared (the TCP retry is).
        if (!query.Tcp && p.Header.Truncated && o.Header.Truncated)
        {
            foreach (var l in onlyP.Concat(onlyO)) l.Clear();
            c.AllowedUsed.Add(AllowedDifferences.TruncatedBody);
            return;
        }

        // A peer from before RFC 9471 drops referral glue that does not fit instead of setting TC;
        // Portcullis sets TC=1 as §3 requires. The TCP retry is compared in full.
        if (!query.Tcp && p.Header.Truncated && !o.Header.Truncated && p.Rcode == o.Rcode && LacksRequiredGlue(o))
        {
            foreach (var l in onlyP.Concat(onlyO)) l.Clear();
            c.Remaining.RemoveAll(d => d.StartsWith("TC:", StringComparison.Ordinal));
            c.AllowedUsed.Add(AllowedDifferences.PeerGlueWithoutTc);
            return;
        }

        // RFC 8482: an answer to ANY may be any non-empty choice of whole RRsets at the name.
        if (query.Type == RecordType.ANY && p.Rcode == o.Rcode && (onlyP[0].Count > 0 || onlyO[0].Count > 0)
            && IsWholeRRsetsAt(query.Name, p.Answers) && IsWholeRRsetsAt(query.Name, o.Answers))
        {
            onlyP[0].Clear();
            onlyO[0].Clear();
            c.AllowedUsed.Add(AllowedDifferences.MinimalAny);
        }

        // A CNAME chain that leaves the zone for another zone the server also serves.
        if (p.Rcode == o.Rcode && query.Type != RecordType.ANY)
        {
            foreach (var (shortSide, longSide, onlyShort, onlyLong) in new[] { (p, o, onlyP, onlyO), (o, p, onlyO, onlyP) })
            {
                if (onlyShort[0].Count > 0 || onlyShort[1].Count > 0 || (onlyLong[0].Count == 0 && onlyLong[1].Count == 0)
                    || !EndsInOtherZone(shortSide.Answers, out var target)) continue;
                if (!onlyLong[0].All(r => r.Owner.IsSubdomainOf(target.Origin) && IsZoneData(r))) continue;
                // What the longer answer adds about the other zone in authority: its apex NS, or its
                // SOA when the name there has no data of the type (NODATA, RFC 2308 §2.2).
                var authority = onlyLong[1].Select(RecordKey.Of).ToHashSet();
                bool soa = onlyLong[1].Count == 1 && onlyLong[1][0].Type == RecordType.SOA && onlyLong[1][0].Owner.Equals(target.Origin)
                    && target.Records.Any(r => r.Type == RecordType.SOA && RdataWire.CanonicalEquals(r.Type, r.Data, onlyLong[1][0].Data));
                if (authority.Count > 0 && !soa && !authority.SetEquals(target.ApexNsKeys())) continue;
                onlyLong[0].Clear();
                onlyLong[1].Clear();
                c.AllowedUsed.Add(AllowedDifferences.CnameToOtherZone);
            }
        }

        // The apex NS RRset of a served zone in the authority section of a positive answer.
        if (p.Rcode == Rcode.NoError && o.Rcode == Rcode.NoError && p.Answers.Count > 0 && o.Answers.Count > 0)
        {
            foreach (var (mine, theirs) in new[] { (onlyP[1], onlyO[1]), (onlyO[1], onlyP[1]) })
            {
                if (mine.Count == 0 || theirs.Count > 0) continue;
                var keys = mine.Select(RecordKey.Of).ToHashSet();
                var side = ReferenceEquals(mine, onlyP[1]) ? p : o;
                var sideAuthority = side.Authority.Select(RecordKey.Of).ToHashSet();
                if (_apexNs.Any(ns => keys.SetEquals(ns) && ns.IsSubsetOf(sideAuthority)))
                {
                    mine.Clear();
                    c.AllowedUsed.Add(AllowedDifferences.ApexNsInAuthority);
                }
            }
        }

        // Optional additional data: addresses of targets the same answer names, from the zone.
        var required = RequiredGlue(p).Concat(RequiredGlue(o)).ToHashSet();
        foreach (var (extra, side, other) in new[] { (onlyP[2], p, o), (onlyO[2], o, p) })
        {
            var targets = Targets(side);
            int removed = extra.RemoveAll(r =>
                r.Type is RecordType.A or RecordType.AAAA
                && targets.Contains(r.Owner)
                && IsZoneData(r)
                && !(required.Contains(r.Owner) && !other.Header.Truncated));
            if (removed > 0) c.AllowedUsed.Add(AllowedDifferences.OptionalAdditional);
        }
    }

    /// <summary>Names an answer points at for additional processing: NS, MX and SRV targets in its answer and authority sections.</summary>
    private static HashSet<DnsName> Targets(DnsMessage m)
    {
        var targets = new HashSet<DnsName>();
        foreach (var r in m.Answers.Concat(m.Authority))
        {
            int offset = r.Type switch { RecordType.NS => 0, RecordType.MX => 2, RecordType.SRV => 6, _ => -1 };
            if (offset >= 0 && r.Data.Length > offset) targets.Add(DnsName.FromWire(r.Data.AsSpan(offset)));
        }
        return targets;
    }

    /// <summary>
    /// In-domain name servers of a referral (NS in authority owned by a name that is not a zone
    /// apex, with the server's name below it): their addresses must be in the answer (RFC 9471 §3).
    /// </summary>
    private IEnumerable<DnsName> RequiredGlue(DnsMessage m)
    {
        foreach (var r in m.Authority)
        {
            if (r.Type != RecordType.NS || _apexes.Contains(r.Owner)) continue;
            var target = DnsName.FromWire(r.Data);
            if (target.IsSubdomainOf(r.Owner)) yield return target;
        }
    }

    /// <summary>True when every answer record is owned by the name and every RRset is whole, as the zone defines it there.</summary>
    private bool IsWholeRRsetsAt(DnsName name, List<ResourceRecord> answers)
    {
        if (answers.Count == 0 || !answers.All(r => r.Owner.Equals(name))) return false;
        var zone = DifferentialZone.For(_zones, name);
        if (zone is null) return false;
        foreach (var set in answers.GroupBy(r => r.Type))
        {
            var expected = zone.RRset(name, set.Key).Select(RecordKey.Of).ToHashSet();
            if (!expected.SetEquals(set.Select(RecordKey.Of))) return false;
        }
        return true;
    }

    /// <summary>
    /// True when the answer is a CNAME chain whose last target lies in another served zone than the
    /// CNAME that points there (the answer stops where the zone ends).
    /// </summary>
    private bool EndsInOtherZone(List<ResourceRecord> answers, out DifferentialZone target)
    {
        target = null!;
        var owners = answers.Select(r => r.Owner).ToHashSet();
        var last = answers.LastOrDefault(r => r.Type == RecordType.CNAME && !owners.Contains(DnsName.FromWire(r.Data)));
        if (last is null) return false;
        var targetName = DnsName.FromWire(last.Data);
        var from = DifferentialZone.For(_zones, last.Owner);
        var to = DifferentialZone.For(_zones, targetName);
        if (to is null || from == to) return false;
        target = to;
        return true;
    }

    /// <summary>True when a referral leaves out an address of one of its in-domain name servers that the zone has.</summary>
    private bool LacksRequiredGlue(DnsMessage m)
    {
        var present = m.Additional.Select(RecordKey.Of).ToHashSet();
        foreach (var target in RequiredGlue(m))
        {
            var zone = DifferentialZone.For(_zones, target);
            if (zone is null) continue;
            foreach (var glue in zone.Records.Where(r => r.Owner.Equals(target) && r.Type is RecordType.A or RecordType.AAAA))
                if (!present.Contains(RecordKey.Of(glue))) return true;
        }
        return false;
    }

    /// <summary>True when the record is in a zone as written, or synthesised from one of its wildcards (RFC 4592).</summary>
    private bool IsZoneData(ResourceRecord r)
    {
        if (_zoneKeys.Contains(RecordKey.Of(r))) return true;
        foreach (var w in _wildcardRecords)
            if (w.Type == r.Type && w.Ttl == r.Ttl && r.Owner.IsSubdomainOf(w.Owner.Parent()) && r.Owner.LabelCount > w.Owner.LabelCount - 1
                && RdataWire.CanonicalEquals(r.Type, w.Data, r.Data))
                return true;
        return false;
    }

    /// <summary>A message in presentation form, for the report.</summary>
    public static string Show(Observation o)
    {
        if (o.Message is not { } m) return "    " + o.Error + "\n";
        var h = m.Header;
        var sb = new StringBuilder();
        sb.Append($"    rcode {m.Rcode}, flags");
        foreach (var (name, on) in new[] { ("qr", h.IsResponse), ("aa", h.AuthoritativeAnswer), ("tc", h.Truncated), ("rd", h.RecursionDesired), ("ra", h.RecursionAvailable) })
            if (on) sb.Append(' ').Append(name);
        sb.Append(m.Edns is null ? ", no OPT" : $", OPT udp {m.Edns.UdpPayloadSize}").Append('\n');
        foreach (var (name, list) in new[] { ("an", m.Answers), ("au", m.Authority), ("ad", m.Additional) })
            foreach (var r in list) sb.Append("    ").Append(name).Append(' ').Append(RecordKey.Show(r)).Append('\n');
        return sb.ToString();
    }
}
