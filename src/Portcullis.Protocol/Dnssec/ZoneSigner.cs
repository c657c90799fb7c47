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
        var input = new List<ResourceRecord>();
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
        foreach (var key in keys.Published) input.Add(DnssecSigner.DnskeyRecord(key, dnskeyTtl));
        // RFC 7344 §4: CDS and CDNSKEY at the apex tell the parent which DS to hold; TTL as DNSKEY's.
        foreach (var key in keys.Cds)
        {
            input.Add(new ResourceRecord(apex, RecordType.CDNSKEY, soa.Class, dnskeyTtl, key.DnskeyRdata));
            input.Add(new ResourceRecord(apex, RecordType.CDS, soa.Class, dnskeyTtl,
                DsDigest.CreateDsRdata(apex, key.DnskeyRdata, DsDigestType.Sha256)!));
        }
        // RFC 8976 §3.1: a placeholder first, so that the apex NSEC/NSEC3 bitmap lists ZONEMD (§3.2).
        if (options.ZonemdHashAlgorithm != 0) input.Add(Zonemd.Placeholder(apex, input, options.ZonemdHashAlgorithm));
        if (options.Nsec3)
            input.Add(new ResourceRecord(apex, RecordType.NSEC3PARAM, soa.Class, 0, Nsec3ParamRdata(options)));

        var sorted = ZoneWriter.SortCanonical(input);
        // Group into owners, each with its RRsets (sorted: the records of one RRset are adjacent).
        var owners = new List<(DnsName Name, List<List<ResourceRecord>> Rrsets)>();
        foreach (var r in sorted)
        {
            if (owners.Count == 0 || !owners[^1].Name.Equals(r.Owner)) owners.Add((r.Owner, []));
            var sets = owners[^1].Rrsets;
            if (sets.Count == 0 || sets[^1][0].Type != r.Type || sets[^1][0].Class != r.Class) sets.Add([]);
            // RFC 2181 §5.2: one TTL per RRset; the first one wins.
            sets[^1].Add(sets[^1].Count == 0 ? r : r.WithTtl(sets[^1][0].Ttl));
        }

        // Zone cuts (NS below the apex) and DNAME owners: names below them are not authoritative
        // (RFC 4035 §2.2: glue and occluded data are neither signed nor in the chain).
        DnsName? cut = null;
        var output = new List<ResourceRecord>();
        var chainNames = new List<(DnsName Name, List<RecordType> Types, bool Signed)>();
        var kskBy = keys.KeySigners;
        var zskBy = keys.ZoneSigners;
        foreach (var (name, rrsets) in owners)
        {
            if (cut is not null && !name.Equals(cut) && name.IsSubdomainOf(cut))
            {
                foreach (var set in rrsets) output.AddRange(set);   // glue or occluded: copied unsigned
                continue;
            }
            cut = null;
            bool isDelegation = !name.Equals(apex) && rrsets.Exists(s => s[0].Type == RecordType.NS);
            bool isDname = rrsets.Exists(s => s[0].Type == RecordType.DNAME);
            if (isDelegation || isDname) cut = name;
            var types = new List<RecordType>();
            bool signedHere = false;
            foreach (var set in rrsets)
            {
                output.AddRange(set);
                var type = set[0].Type;
                // At a delegation only NS and DS are the parent's to list; only DS is signed (RFC 4035 §2.2).
                if (isDelegation && type is not (RecordType.NS or RecordType.DS)) continue;
                types.Add(type);
                if (isDelegation && type != RecordType.DS) continue;
                // The placeholder ZONEMD is signed once its digest is known (below).
                if (type == RecordType.ZONEMD && options.ZonemdHashAlgorithm != 0 && name.Equals(apex)) { signedHere = true; continue; }
                var signers = type is RecordType.DNSKEY or RecordType.CDS or RecordType.CDNSKEY && name.Equals(apex) ? kskBy : zskBy;
                signatures.Sign(set, signers, output);
                signedHere = true;
            }
            chainNames.Add((name, types, signedHere));
        }

        if (options.Nsec3) AddNsec3Chain(apex, chainNames, options, negativeTtl, soa.Class, zskBy, signatures, output);
        else AddNsecChain(apex, chainNames, negativeTtl, soa.Class, zskBy, signatures, output);
        var signedZone = ZoneWriter.SortCanonical(output);
        // RFC 8976 §3.4/§3.5: the digest over the signed zone replaces the placeholder, signed by the zone signers.
        if (options.ZonemdHashAlgorithm == 0) return signedZone;
        var finalized = Zonemd.Finalize(apex, signedZone, zskBy, inception, now + options.Validity - options.Jitter);
        // The digest's signatures through the signature source too: an unchanged zone keeps its
        // ZONEMD signature, so signing it again gives the same records.
        var zonemd = finalized.FindAll(r => r.Type == RecordType.ZONEMD && r.Owner.Equals(apex));
        finalized.RemoveAll(r => r.Type == RecordType.RRSIG && r.Owner.Equals(apex) && Rrsig.TryRead(r.Data, out var s) && s.TypeCovered == RecordType.ZONEMD);
        signatures.Sign(zonemd, zskBy, finalized);
        return ZoneWriter.SortCanonical(finalized);
    }

    /// <summary>
    /// Makes the RRSIGs of an RRset, or keeps those of the previous signing when the RRset is the
    /// same (owner, type, TTL, RDATA), the signing key is the same and the signature stays valid
    /// beyond now + Refresh.
    /// </summary>
    private sealed class SignatureSource
    {
        private readonly ZoneSigningOptions _options;
        private readonly DateTimeOffset _now;
        private readonly DateTimeOffset _inception;
        private readonly Dictionary<(DnsName, RecordType), (List<ResourceRecord> Rrset, List<ResourceRecord> Sigs)>? _previous;

        public SignatureSource(ZoneSigningOptions options, DateTimeOffset now, DateTimeOffset inception)
        {
            _options = options;
            _now = now;
            _inception = inception;
            if (options.Previous is null) return;
            _previous = new();
            foreach (var r in options.Previous)
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

        public void Sign(List<ResourceRecord> rrset, IReadOnlyList<DnssecPrivateKey> signers, List<ResourceRecord> output)
        {
            var first = rrset[0];
            List<ResourceRecord>? candidates = null;
            if (_previous is not null && _previous.TryGetValue((first.Owner, first.Type), out var entry) && SameRrset(entry.Rrset, rrset))
                candidates = entry.Sigs;
            var counters = _options.Counters;
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

    private static void AddNsecChain(DnsName apex, List<(DnsName Name, List<RecordType> Types, bool Signed)> names, uint ttl,
        RecordClass @class, IReadOnlyList<DnssecPrivateKey> signers, SignatureSource signatures, List<ResourceRecord> output)
    {
        // RFC 4034 §4.1: next owner in canonical order, the last pointing back to the apex; the
        // bitmap lists the types at the owner plus RRSIG and NSEC (the NSEC is itself signed).
        for (int i = 0; i < names.Count; i++)
        {
            var (name, types, _) = names[i];
            var next = i + 1 < names.Count ? names[i + 1].Name : apex;
            var bitmap = new List<RecordType>(types) { RecordType.RRSIG, RecordType.NSEC };
            byte[] rdata = [.. next.Wire, .. TypeBitmap(bitmap)];
            var nsec = new ResourceRecord(name, RecordType.NSEC, @class, ttl, rdata);
            output.Add(nsec);
            signatures.Sign([nsec], signers, output);
        }
    }

    private static void AddNsec3Chain(DnsName apex, List<(DnsName Name, List<RecordType> Types, bool Signed)> names,
        ZoneSigningOptions options, uint ttl, RecordClass @class, IReadOnlyList<DnssecPrivateKey> signers,
        SignatureSource signatures, List<ResourceRecord> output)
    {
        // RFC 5155 §7.1: every authoritative name and every empty non-terminal between them and
        // the apex gets an NSEC3; with opt-out off, every delegation too.
        var byName = new Dictionary<DnsName, List<RecordType>>();
        var signedAt = new HashSet<DnsName>();
        foreach (var (name, types, signed) in names)
        {
            byName[name] = types;
            if (signed) signedAt.Add(name);
        }
        foreach (var (name, _, _) in names)
        {
            for (var parent = name; !parent.Equals(apex) && parent.LabelCount > apex.LabelCount;)
            {
                parent = parent.Parent();
                if (!byName.ContainsKey(parent)) byName[parent] = [];
            }
        }
        var hashed = new List<(byte[] Hash, List<RecordType> Types)>();
        foreach (var (name, types) in byName)
        {
            var bitmap = new List<RecordType>(types);
            // RRSIG is listed when the original name has signatures (RFC 5155 §3.2.1); an empty
            // non-terminal or an insecure delegation has none.
            if (signedAt.Contains(name)) bitmap.Add(RecordType.RRSIG);
            hashed.Add((Nsec3Hash(name, options.Nsec3Salt, options.Nsec3Iterations), bitmap));
        }
        hashed.Sort((a, b) => a.Hash.AsSpan().SequenceCompareTo(b.Hash));
        byte[] parameters = [1, 0, (byte)(options.Nsec3Iterations >> 8), (byte)options.Nsec3Iterations,
            (byte)options.Nsec3Salt.Length, .. options.Nsec3Salt];
        for (int i = 0; i < hashed.Count; i++)
        {
            var (hash, types) = hashed[i];
            var next = hashed[(i + 1) % hashed.Count].Hash;
            byte[] rdata = [.. parameters, (byte)next.Length, .. next, .. TypeBitmap(types)];
            var sb = new StringBuilder();
            BinaryText.AppendBase32Hex(sb, hash);
            var owner = apex.Prepend(Encoding.ASCII.GetBytes(sb.ToString().ToLowerInvariant()));
            var nsec3 = new ResourceRecord(owner, RecordType.NSEC3, @class, ttl, rdata);
            output.Add(nsec3);
            signatures.Sign([nsec3], signers, output);
        }
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
        var sortedTypes = types.Select(t => (ushort)t).Distinct().Order().ToList();
        var result = new List<byte>();
        int index = 0;
        while (index < sortedTypes.Count)
        {
            int window = sortedTypes[index] >> 8;
            var bits = new byte[32];
            int length = 0;
            for (; index < sortedTypes.Count && sortedTypes[index] >> 8 == window; index++)
            {
                int low = sortedTypes[index] & 0xFF;
                bits[low / 8] |= (byte)(0x80 >> (low % 8));
                length = low / 8 + 1;
            }
            result.Add((byte)window);
            result.Add((byte)length);
            result.AddRange(bits.AsSpan(0, length));
        }
        return [.. result];
    }
}
