using System.Security.Cryptography;
using System.Text;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.Records.Text;
using Portcullis.Protocol.ZoneText;

namespace Portcullis.Protocol.Dnssec;

/// <summary>How a zone is signed.</summary>
public sealed record ZoneSigningOptions
{
    /// <summary>Signature validity after now (RFC 6781 §4.4.2); 14 days as Knot and BIND's defaults are in that range.</summary>
    public TimeSpan Validity { get; init; } = TimeSpan.FromDays(14);
    /// <summary>How far back inception is set, for validators whose clocks lag.</summary>
    public TimeSpan InceptionOffset { get; init; } = TimeSpan.FromHours(1);
    /// <summary>NSEC3 (RFC 5155) instead of NSEC (RFC 4034 §4).</summary>
    public bool Nsec3 { get; init; }
    /// <summary>RFC 9276 §3.1: additional iterations SHOULD be 0.</summary>
    public ushort Nsec3Iterations { get; init; }
    /// <summary>RFC 9276 §3.1: the salt SHOULD be empty.</summary>
    public byte[] Nsec3Salt { get; init; } = [];
    /// <summary>RFC 8976: add an apex ZONEMD with this hash algorithm (1 SHA-384, 2 SHA-512); 0: none.</summary>
    public byte ZonemdHashAlgorithm { get; init; }
    /// <summary>
    /// Expirations are spread over [validity - jitter, validity] so that re-signing comes in small
    /// batches instead of the whole zone at once (BIND's signatures-jitter).
    /// </summary>
    public TimeSpan Jitter { get; init; }
    /// <summary>
    /// The zone as last signed: an RRSIG there is kept when its RRset is unchanged (same TTL and
    /// RDATA), its key still signs that kind of RRset, and it expires later than now + Refresh.
    /// This is what makes re-signing incremental: only changed RRsets and chain links are signed.
    /// </summary>
    public IReadOnlyList<ResourceRecord>? Previous { get; init; }
    /// <summary>A kept signature must stay valid at least this long (BIND's signatures-refresh).</summary>
    public TimeSpan Refresh { get; init; }
    /// <summary>TTL of the DNSKEY, CDS and CDNSKEY RRsets (default: a DNSKEY TTL in the input, else the SOA's).</summary>
    public uint? DnskeyTtl { get; init; }
    /// <summary>Output: how many signatures were made (the others were kept from <see cref="Previous"/>).</summary>
    public SigningCounters? Counters { get; init; }
}

/// <summary>What a signing pass did.</summary>
public sealed class SigningCounters
{
    public int Made;
    public int Kept;
    /// <summary>The earliest expiration among the zone's signatures (when refresh is next due: this minus Refresh).</summary>
    public DateTimeOffset EarliestExpiration = DateTimeOffset.MaxValue;
}

/// <summary>
/// The keys of a zone and what each does: <see cref="Published"/> go into the DNSKEY RRset,
/// <see cref="KeySigners"/> sign the apex DNSKEY, CDS and CDNSKEY RRsets, <see cref="ZoneSigners"/>
/// everything else, and <see cref="Cds"/> get a CDS (SHA-256) and CDNSKEY at the apex (RFC 7344).
/// A key may sign unpublished (algorithm rollover, RFC 6781 §4.1.4) or be published without
/// signing (pre-publication and retirement, §4.1.1.1).
/// </summary>
public sealed record SigningKeySet(IReadOnlyList<DnssecPrivateKey> Published, IReadOnlyList<DnssecPrivateKey> KeySigners,
    IReadOnlyList<DnssecPrivateKey> ZoneSigners)
{
    public IReadOnlyList<DnssecPrivateKey> Cds { get; init; } = [];
}

/// <summary>
/// Signs a whole zone offline: DNSKEY RRset at the apex, an RRSIG on every authoritative RRset,
/// and an NSEC or NSEC3 chain (RFC 4035 §2). Input records are the unsigned zone (old DNSSEC
/// records are dropped); the result is in canonical order, so the same input, keys and time give
/// the same records except for ECDSA's random signatures.
/// </summary>
public static class ZoneSigner
{
    /// <summary>Every key is published; per algorithm, SEP keys sign DNSKEY and the others the rest (see SplitKeys).</summary>
    public static List<ResourceRecord> Sign(DnsName apex, IEnumerable<ResourceRecord> records, IReadOnlyList<DnssecPrivateKey> keys,
        DateTimeOffset now, ZoneSigningOptions? options = null)
    {
        if (keys.Count == 0) throw new ArgumentException("no keys to sign with", nameof(keys));
        var (ksk, zsk) = SplitKeys(keys);
        return Sign(apex, records, new SigningKeySet(keys, ksk, zsk), now, options);
    }

    public static List<ResourceRecord> Sign(DnsName apex, IEnumerable<ResourceRecord> records, SigningKeySet keys,
        DateTimeOffset now, ZoneSigningOptions? options = null)
    {
        options ??= new ZoneSigningOptions();
        if (keys.KeySigners.Count == 0 || keys.ZoneSigners.Count == 0) throw new ArgumentException("no keys to sign with", nameof(keys));
        var inception = now - options.InceptionOffset;
        var signatures = new SignatureSource(options, now, inception);

        // Drop what signing makes anew; keep DNSKEYs already in the zone (pre-published keys).
        var input = new List<ResourceRecord>(records is IReadOnlyCollection<ResourceRecord> c ? c.Count : 0);
        ResourceRecord? soa = null;
        foreach (var r in records)
        {
            if (r.Type is RecordType.RRSIG or RecordType.NSEC or RecordType.NSEC3 or RecordType.NSEC3PARAM) continue;
            // A ZONEMD made anew replaces the old one (its digest would be stale anyway).
            if (r.Type == RecordType.ZONEMD && options.ZonemdHashAlgorithm != 0 && r.Owner.Equals(apex)) continue;
            if (!r.Owner.IsSubdomainOf(apex)) continue;
            if (r.Type == RecordType.SOA && r.Owner.Equals(apex)) soa = r;
            input.Add(r);
        }
        if (soa is null) throw new ArgumentException("the zone has no SOA at its apex", nameof(records));
        uint soaMinimum = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(soa.Data.AsSpan(soa.Data.Length - 4));
        // RFC 9077 §3: NSEC/NSEC3 TTL is the smaller of the SOA's minimum and its own TTL.
        uint negativeTtl = Math.Min(soaMinimum, soa.Ttl);
        uint dnskeyTtl = options.DnskeyTtl ?? soa.Ttl;
        if (options.DnskeyTtl is null)
            foreach (var r in input)
                if (r.Type == RecordType.DNSKEY && r.Owner.Equals(apex)) { dnskeyTtl = r.Ttl; break; }
        // The records signing adds are kept apart and merged in: the input is usually a zone's
        // canonical records already, and sorting it again would cost more than the rest.
        var made = new List<ResourceRecord>();
        foreach (var key in keys.Published) made.Add(DnssecSigner.DnskeyRecord(key, dnskeyTtl));
        // RFC 7344 §4: CDS and CDNSKEY at the apex tell the parent which DS to hold; TTL as DNSKEY's.
        foreach (var key in keys.Cds)
        {
            made.Add(new ResourceRecord(apex, RecordType.CDNSKEY, soa.Class, dnskeyTtl, key.DnskeyRdata));
            made.Add(new ResourceRecord(apex, RecordType.CDS, soa.Class, dnskeyTtl,
                DsDigest.CreateDsRdata(apex, key.DnskeyRdata, DsDigestType.Sha256)!));
        }
        // RFC 8976 §3.1: a placeholder first, so that the apex NSEC/NSEC3 bitmap lists ZONEMD (§3.2).
        if (options.ZonemdHashAlgorithm != 0) made.Add(Zonemd.Placeholder(apex, input, options.ZonemdHashAlgorithm));
        if (options.Nsec3)
            made.Add(new ResourceRecord(apex, RecordType.NSEC3PARAM, soa.Class, 0, Nsec3ParamRdata(options)));

        var sorted = ZoneWriter.MergeCanonical(ZoneWriter.SortCanonical(input), ZoneWriter.SortCanonical(made));

        // Owners in canonical order, each with its RRsets (sorted: the records of one RRset are
        // adjacent). The output is written in canonical order as it is made (ZoneWriter.CanonicalOrder:
        // each RRSIG right after the RRset it covers); the NSEC of an owner goes where its type
        // number puts it among the owner's RRsets, so the chain (made after, when every owner is
        // known) is spliced in at recorded positions instead of sorting the whole signed zone.
        // Zone cuts (NS below the apex) and DNAME owners: names below them are not authoritative
        // (RFC 4035 §2.2: glue and occluded data are neither signed nor in the chain).
        DnsName? cut = null;
        var output = new List<ResourceRecord>(sorted.Count * 2 + 16);
        var chainNames = new List<ChainName>();
        var types = new List<RecordType>();
        var set = new List<ResourceRecord>();
        var kskBy = keys.KeySigners;
        var zskBy = keys.ZoneSigners;
        int nsecRank = ZoneWriter.TypeRank(RecordType.NSEC, default);
        int n = sorted.Count;
        for (int i = 0; i < n;)
        {
            var name = sorted[i].Owner;
            int end = i + 1;
            while (end < n && sorted[end].Owner.Equals(name)) end++;
            if (cut is not null && !name.Equals(cut) && name.IsSubdomainOf(cut))
            {
                for (; i < end; i++) output.Add(sorted[i]);   // glue or occluded: copied unsigned
                continue;
            }
            cut = null;
            bool isApex = name.Equals(apex);
            bool isDelegation = false, isDname = false;
            for (int k = i; k < end; k++)
            {
                if (sorted[k].Type == RecordType.NS && !isApex) isDelegation = true;
                if (sorted[k].Type == RecordType.DNAME) isDname = true;
            }
            if (isDelegation || isDname) cut = name;
            int typesStart = types.Count;
            int nsecAt = -1;
            bool signedHere = false;
            while (i < end)
            {
                // One RRset; RFC 2181 §5.2: one TTL per RRset, the first one wins.
                var first = sorted[i];
                set.Clear();
                for (; i < end && sorted[i].Type == first.Type && sorted[i].Class == first.Class; i++)
                    set.Add(sorted[i].Ttl == first.Ttl ? sorted[i] : sorted[i].WithTtl(first.Ttl));
                var type = first.Type;
                if (nsecAt < 0 && ZoneWriter.TypeRank(type, default) > nsecRank + 1) nsecAt = output.Count;
                output.AddRange(set);
                // At a delegation only NS and DS are the parent's to list; only DS is signed (RFC 4035 §2.2).
                if (isDelegation && type is not (RecordType.NS or RecordType.DS)) continue;
                types.Add(type);
                if (isDelegation && type != RecordType.DS) continue;
                // The placeholder ZONEMD is signed once its digest is known (below).
                if (type == RecordType.ZONEMD && options.ZonemdHashAlgorithm != 0 && isApex) { signedHere = true; continue; }
                var signers = type is RecordType.DNSKEY or RecordType.CDS or RecordType.CDNSKEY && isApex ? kskBy : zskBy;
                signatures.Sign(set, signers, output);
                signedHere = true;
            }
            if (nsecAt < 0) nsecAt = output.Count;
            chainNames.Add(new ChainName(name, typesStart, types.Count - typesStart, signedHere, nsecAt));
        }

        List<ResourceRecord> signedZone;
        if (options.Nsec3)
        {
            // NSEC3 owners (hash labels under the apex) fall between the other owners: the chain is
            // made in hash order, which is their canonical order (base32hex keeps the order of the
            // hashes, RFC 5155 §3.3), and merged in.
            var chain = AddNsec3Chain(apex, chainNames, types, options, negativeTtl, soa.Class, zskBy, signatures);
            signedZone = ZoneWriter.MergeCanonical(output, chain);
        }
        else signedZone = AddNsecChain(apex, chainNames, types, negativeTtl, soa.Class, zskBy, signatures, output);
        // RFC 8976 §3.4/§3.5: the digest over the signed zone replaces the placeholder, signed by the zone signers.
        if (options.ZonemdHashAlgorithm == 0) return signedZone;
        var finalized = Zonemd.Finalize(apex, signedZone, zskBy, inception, now + options.Validity - options.Jitter);
        // The digest's signatures through the signature source too: an unchanged zone keeps its
        // ZONEMD signature, so signing it again gives the same records. They go where Finalize put
        // its own (right after the apex ZONEMD RRset), so the zone stays in canonical order.
        var zonemd = finalized.FindAll(r => r.Type == RecordType.ZONEMD && r.Owner.Equals(apex));
        finalized.RemoveAll(r => r.Type == RecordType.RRSIG && r.Owner.Equals(apex) && Rrsig.TryRead(r.Data, out var s) && s.TypeCovered == RecordType.ZONEMD);
        int after = finalized.FindLastIndex(r => r.Type == RecordType.ZONEMD && r.Owner.Equals(apex)) + 1;
        var zonemdSignatures = new List<ResourceRecord>();
        signatures.Rewind();
        signatures.Sign(zonemd, zskBy, zonemdSignatures);
        finalized.InsertRange(after, zonemdSignatures);
        return finalized;
    }

    /// <summary>An authoritative owner: its types (a slice of a shared list), whether it has signatures, where its NSEC goes in the output.</summary>
    private readonly record struct ChainName(DnsName Name, int TypesStart, int TypeCount, bool Signed, int NsecAt);

    /// <summary>
    /// Makes the RRSIGs of an RRset, or keeps those of the previous signing when the RRset is the
    /// same (owner, type, TTL, RDATA), the signing key is the same and the signature stays valid
    /// beyond now + Refresh. The signatures of one RRset are added in canonical order (by RDATA).
    /// </summary>
    /// <remarks>
    /// The previous version is normally in canonical order (a zone's Records(), the signer's
    /// output): it is then walked by a cursor alongside the signing, which asks for RRsets in
    /// canonical order within each pass (<see cref="Rewind"/> between passes), instead of hashing
    /// every previous record. Any other order falls back to a dictionary.
    /// </remarks>
    private sealed class SignatureSource
    {
        private readonly ZoneSigningOptions _options;
        private readonly DateTimeOffset _now;
        private readonly DateTimeOffset _inception;
        private readonly IReadOnlyList<ResourceRecord>? _sorted;
        private int _cursor;
        private readonly Dictionary<(DnsName, RecordType), (List<ResourceRecord> Rrset, List<ResourceRecord> Sigs)>? _previous;
        private readonly List<ResourceRecord> _rrsetBuffer = [];
        private readonly List<ResourceRecord> _sigBuffer = [];

        public SignatureSource(ZoneSigningOptions options, DateTimeOffset now, DateTimeOffset inception)
        {
            _options = options;
            _now = now;
            _inception = inception;
            if (options.Previous is not { } previous) return;
            if (InRrsetOrder(previous)) { _sorted = previous; return; }
            _previous = new();
            foreach (var r in previous)
            {
                var type = r.Type;
                bool isSig = type == RecordType.RRSIG;
                if (isSig)
                {
                    if (!Rrsig.TryRead(r.Data, out var sig)) continue;
                    type = sig.TypeCovered;
                }
                if (!_previous.TryGetValue((r.Owner, type), out var entry)) _previous[(r.Owner, type)] = entry = ([], []);
                (isSig ? entry.Sigs : entry.Rrset).Add(r);
            }
        }

        /// <summary>Starts a new pass over the previous version (the next RRsets asked for may be before the last ones).</summary>
        public void Rewind() => _cursor = 0;

        /// <summary>Owners in canonical order and, at each, RRsets by type rank (each RRSIG after what it covers): what the cursor needs.</summary>
        private static bool InRrsetOrder(IReadOnlyList<ResourceRecord> records)
        {
            for (int i = 1; i < records.Count; i++)
            {
                var a = records[i - 1];
                var b = records[i];
                int c = a.Owner.CompareTo(b.Owner);
                if (c > 0 || c == 0 && ZoneWriter.TypeRank(a) > ZoneWriter.TypeRank(b)) return false;
            }
            return true;
        }

        /// <summary>The previous RRset of (owner, type) and its signatures, found by moving the cursor forward.</summary>
        private bool Seek(DnsName owner, RecordType type, out List<ResourceRecord> rrset, out List<ResourceRecord> sigs)
        {
            rrset = _rrsetBuffer;
            sigs = _sigBuffer;
            rrset.Clear();
            sigs.Clear();
            var previous = _sorted!;
            int rank = ZoneWriter.TypeRank(type, default);
            int i = _cursor;
            DnsName? lastOwner = null;
            int ownerOrder = 0;
            for (; i < previous.Count; i++)
            {
                var r = previous[i];
                // Records of one owner share their DnsName in a zone's Records(): compare once per owner.
                if (!ReferenceEquals(r.Owner, lastOwner)) { lastOwner = r.Owner; ownerOrder = OwnerOrder(r.Owner, owner); }
                if (ownerOrder > 0) break;
                if (ownerOrder == 0 && ZoneWriter.TypeRank(r.Type, r.Data) >= rank) break;
            }
            _cursor = i;
            for (; i < previous.Count; i++)
            {
                var r = previous[i];
                if (!ReferenceEquals(r.Owner, lastOwner)) { lastOwner = r.Owner; ownerOrder = OwnerOrder(r.Owner, owner); }
                if (ownerOrder != 0) break;
                int rankHere = ZoneWriter.TypeRank(r.Type, r.Data);
                if (rankHere == rank) rrset.Add(r);
                else if (rankHere == rank + 1) sigs.Add(r);
                else break;
            }
            return rrset.Count > 0;
        }

        /// <summary>Canonical order of two owners; equality (the common answer while walking) is cheaper to see first.</summary>
        private static int OwnerOrder(DnsName a, DnsName b) => a.Equals(b) ? 0 : a.CompareTo(b);

        public void Sign(List<ResourceRecord> rrset, IReadOnlyList<DnssecPrivateKey> signers, List<ResourceRecord> output)
        {
            var first = rrset[0];
            List<ResourceRecord>? candidates = null;
            if (_sorted is not null)
            {
                if (Seek(first.Owner, first.Type, out var before, out var sigs) && SameRrset(before, rrset)) candidates = sigs;
            }
            else if (_previous is not null && _previous.TryGetValue((first.Owner, first.Type), out var entry) && SameRrset(entry.Rrset, rrset))
                candidates = entry.Sigs;
            var counters = _options.Counters;
            int start = output.Count;
            foreach (var key in signers)
            {
                var kept = candidates is null ? null : Reusable(candidates, key);
                if (kept is null)
                {
                    var jitter = _options.Jitter > TimeSpan.Zero ? TimeSpan.FromSeconds(Random.Shared.NextDouble() * _options.Jitter.TotalSeconds) : TimeSpan.Zero;
                    var expiration = _now + _options.Validity - jitter;
                    kept = DnssecSigner.SignRrset(rrset, key, _inception, expiration);
                    if (counters is not null) counters.Made++;
                }
                else if (counters is not null) counters.Kept++;
                if (counters is not null && Rrsig.TryRead(kept.Data, out var s))
                {
                    var expires = Rrsig.ToInstant(s.Expiration, _now);
                    if (expires < counters.EarliestExpiration) counters.EarliestExpiration = expires;
                }
                output.Add(kept);
            }
            // More than one signer (a rollover): the RRSIGs in canonical order, none twice.
            if (output.Count - start > 1)
            {
                var ordered = ZoneWriter.SortCanonical(output.GetRange(start, output.Count - start));
                output.RemoveRange(start, output.Count - start);
                output.AddRange(ordered);
            }
        }

        private ResourceRecord? Reusable(List<ResourceRecord> sigs, DnssecPrivateKey key)
        {
            foreach (var r in sigs)
            {
                if (!Rrsig.TryRead(r.Data, out var sig) || sig.KeyTag != key.KeyTag || sig.Algorithm != key.Algorithm) continue;
                if (Rrsig.ToInstant(sig.Inception, _now) > _now) continue;
                if (Rrsig.ToInstant(sig.Expiration, _now) <= _now + _options.Refresh) continue;
                // Matched by key tag and algorithm, not verified (verifying costs more than signing):
                // key managers never give one zone two keys with the same tag and algorithm.
                return r;
            }
            return null;
        }

        private static bool SameRrset(List<ResourceRecord> a, List<ResourceRecord> b)
        {
            if (a.Count != b.Count || a[0].Ttl != b[0].Ttl) return false;
            foreach (var x in a)
            {
                bool found = false;
                foreach (var y in b)
                    if (x.Data.AsSpan().SequenceEqual(y.Data)) { found = true; break; }
                if (!found) return false;
            }
            return true;
        }
    }

    /// <summary>
    /// Which keys sign what: per algorithm, SEP keys sign the DNSKEY RRset and the others the
    /// rest; an algorithm with only one kind of key uses it for both (a combined signing key).
    /// Every algorithm in the DNSKEY RRset signs every RRset (RFC 4035 §2.2, RFC 6840 §5.11).
    /// </summary>
    private static (List<DnssecPrivateKey> Ksk, List<DnssecPrivateKey> Zsk) SplitKeys(IReadOnlyList<DnssecPrivateKey> keys)
    {
        var ksk = new List<DnssecPrivateKey>();
        var zsk = new List<DnssecPrivateKey>();
        foreach (var algorithm in keys.Select(k => k.Algorithm).Distinct())
        {
            var sep = keys.Where(k => k.Algorithm == algorithm && k.IsKsk).ToList();
            var other = keys.Where(k => k.Algorithm == algorithm && !k.IsKsk).ToList();
            ksk.AddRange(sep.Count > 0 ? sep : other);
            zsk.AddRange(other.Count > 0 ? other : sep);
        }
        return (ksk, zsk);
    }

    /// <summary>
    /// The signed zone: <paramref name="output"/> with each owner's NSEC and its RRSIGs spliced in
    /// at the position recorded for it (<see cref="ChainName.NsecAt"/>).
    /// </summary>
    private static List<ResourceRecord> AddNsecChain(DnsName apex, List<ChainName> names, List<RecordType> types, uint ttl,
        RecordClass @class, IReadOnlyList<DnssecPrivateKey> signers, SignatureSource signatures, List<ResourceRecord> output)
    {
        // RFC 4034 §4.1: next owner in canonical order, the last pointing back to the apex; the
        // bitmap lists the types at the owner plus RRSIG and NSEC (the NSEC is itself signed).
        var result = new List<ResourceRecord>(output.Count + names.Count * (1 + signers.Count));
        var span = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(output);
        var nsec = new List<ResourceRecord>(1);
        signatures.Rewind();
        int copied = 0;
        for (int i = 0; i < names.Count; i++)
        {
            var name = names[i];
            var next = i + 1 < names.Count ? names[i + 1].Name : apex;
            var ownTypes = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(types).Slice(name.TypesStart, name.TypeCount);
            var record = new ResourceRecord(name.Name, RecordType.NSEC, @class, ttl,
                ChainRdata(next.Wire, ownTypes, RecordType.RRSIG, RecordType.NSEC));
            result.AddRange(span[copied..name.NsecAt]);
            copied = name.NsecAt;
            result.Add(record);
            nsec.Clear();
            nsec.Add(record);
            signatures.Sign(nsec, signers, result);
        }
        result.AddRange(span[copied..]);
        return result;
    }

    /// <summary>The NSEC3 records and their RRSIGs, in canonical order.</summary>
    private static List<ResourceRecord> AddNsec3Chain(DnsName apex, List<ChainName> names, List<RecordType> types,
        ZoneSigningOptions options, uint ttl, RecordClass @class, IReadOnlyList<DnssecPrivateKey> signers,
        SignatureSource signatures)
    {
        // RFC 5155 §7.1: every authoritative name and every empty non-terminal between them and
        // the apex gets an NSEC3; with opt-out off, every delegation too.
        var byName = new Dictionary<DnsName, (int Start, int Count)>();
        var signedAt = new HashSet<DnsName>();
        foreach (var name in names)
        {
            byName[name.Name] = (name.TypesStart, name.TypeCount);
            if (name.Signed) signedAt.Add(name.Name);
        }
        foreach (var name in names)
        {
            for (var parent = name.Name; !parent.Equals(apex) && parent.LabelCount > apex.LabelCount;)
            {
                parent = parent.Parent();
                if (!byName.ContainsKey(parent)) byName[parent] = (0, 0);
            }
        }
        var hashed = new List<(byte[] Hash, DnsName Name, int Start, int Count)>(byName.Count);
        foreach (var (name, slice) in byName)
            hashed.Add((Nsec3Hash(name, options.Nsec3Salt, options.Nsec3Iterations), name, slice.Start, slice.Count));
        hashed.Sort((a, b) => a.Hash.AsSpan().SequenceCompareTo(b.Hash));
        byte[] parameters = [1, 0, (byte)(options.Nsec3Iterations >> 8), (byte)options.Nsec3Iterations,
            (byte)options.Nsec3Salt.Length, .. options.Nsec3Salt];
        var result = new List<ResourceRecord>(hashed.Count * (1 + signers.Count));
        var record = new List<ResourceRecord>(1);
        var label = new StringBuilder(32);
        signatures.Rewind();
        for (int i = 0; i < hashed.Count; i++)
        {
            var (hash, name, start, count) = hashed[i];
            var next = hashed[(i + 1) % hashed.Count].Hash;
            byte[] prefix = [.. parameters, (byte)next.Length, .. next];
            // RRSIG is listed when the original name has signatures (RFC 5155 §3.2.1); an empty
            // non-terminal or an insecure delegation has none.
            var ownTypes = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(types).Slice(start, count);
            byte[] rdata = signedAt.Contains(name)
                ? ChainRdata(prefix, ownTypes, RecordType.RRSIG, null)
                : ChainRdata(prefix, ownTypes, null, null);
            label.Clear();
            BinaryText.AppendBase32Hex(label, hash);
            var owner = apex.Prepend(Encoding.ASCII.GetBytes(label.ToString().ToLowerInvariant()));
            var nsec3 = new ResourceRecord(owner, RecordType.NSEC3, @class, ttl, rdata);
            result.Add(nsec3);
            record.Clear();
            record.Add(nsec3);
            signatures.Sign(record, signers, result);
        }
        return result;
    }

    /// <summary>NSEC3PARAM RDATA: SHA-1, flags 0, iterations, salt (RFC 5155 §4.2).</summary>
    private static byte[] Nsec3ParamRdata(ZoneSigningOptions options) =>
        [1, 0, (byte)(options.Nsec3Iterations >> 8), (byte)options.Nsec3Iterations, (byte)options.Nsec3Salt.Length, .. options.Nsec3Salt];

    /// <summary>
    /// RFC 5155 §5: IH(salt, x, 0) = H(x | salt), IH(salt, x, k) = H(IH(salt, x, k-1) | salt), with
    /// x the owner in canonical (lowered) wire form and H SHA-1.
    /// </summary>
    public static byte[] Nsec3Hash(DnsName name, ReadOnlySpan<byte> salt, int iterations)
    {
        byte[] wire = name.Wire.ToArray();
        DnsName.LowerLabels(wire);
        byte[] digest = SHA1.HashData([.. wire, .. salt]);
        for (int i = 0; i < iterations; i++) digest = SHA1.HashData([.. digest, .. salt]);
        return digest;
    }

    /// <summary>
    /// The type bitmap of RFC 4034 §4.1.2: for each window (high octet of the type) that has
    /// types, the window number, the bitmap length, and the bitmap trimmed of trailing zero octets.
    /// </summary>
    public static byte[] TypeBitmap(IEnumerable<RecordType> types)
    {
        var list = new List<RecordType>(types);
        return ChainRdata([], System.Runtime.InteropServices.CollectionsMarshal.AsSpan(list), null, null);
    }

    /// <summary>
    /// <paramref name="prefix"/> followed by the type bitmap (RFC 4034 §4.1.2) of
    /// <paramref name="types"/> plus up to two more types, in one array: the RDATA of an NSEC or
    /// NSEC3 record. Types listed twice are listed once.
    /// </summary>
    private static byte[] ChainRdata(ReadOnlySpan<byte> prefix, ReadOnlySpan<RecordType> types, RecordType? extra1, RecordType? extra2)
    {
        int count = types.Length + (extra1 is null ? 0 : 1) + (extra2 is null ? 0 : 1);
        Span<ushort> sortedTypes = count <= 128 ? stackalloc ushort[count] : new ushort[count];
        for (int i = 0; i < types.Length; i++) sortedTypes[i] = (ushort)types[i];
        int filled = types.Length;
        if (extra1 is { } e1) sortedTypes[filled++] = (ushort)e1;
        if (extra2 is { } e2) sortedTypes[filled++] = (ushort)e2;
        sortedTypes.Sort();
        // First the size: per window 2 octets and the bitmap up to its last type's octet.
        int size = prefix.Length;
        for (int i = 0; i < count;)
        {
            int window = sortedTypes[i] >> 8;
            int last = i;
            while (i < count && sortedTypes[i] >> 8 == window) last = i++;
            size += 2 + (sortedTypes[last] & 0xFF) / 8 + 1;
        }
        var result = new byte[size];
        prefix.CopyTo(result);
        int pos = prefix.Length;
        for (int i = 0; i < count;)
        {
            int window = sortedTypes[i] >> 8;
            int bits = pos + 2;
            int length = 0;
            for (; i < count && sortedTypes[i] >> 8 == window; i++)
            {
                int low = sortedTypes[i] & 0xFF;
                result[bits + low / 8] |= (byte)(0x80 >> (low % 8));
                length = low / 8 + 1;
            }
            result[pos] = (byte)window;
            result[pos + 1] = (byte)length;
            pos = bits + length;
        }
        return result;
    }
}
