using System.Buffers.Binary;
using System.Security.Cryptography;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.ZoneText;

namespace Portcullis.Protocol.Dnssec;

/// <summary>
/// The message digest of a whole zone (RFC 8976): making the apex ZONEMD record (scheme SIMPLE,
/// SHA-384 or SHA-512), checking one, and putting the digest into a zone signed with a placeholder.
/// A tool and signer path: it allocates freely, never runs on the query path.
/// </summary>
public static class Zonemd
{
    /// <summary>RFC 8976 §5.2: SIMPLE, the one scheme defined (§3.3).</summary>
    public const byte SchemeSimple = 1;
    /// <summary>RFC 8976 §5.3: SHA-384 (48-octet digest).</summary>
    public const byte Sha384 = 1;
    /// <summary>RFC 8976 §5.3: SHA-512 (64-octet digest).</summary>
    public const byte Sha512 = 2;

    /// <summary>Serial (4), scheme (1), hash algorithm (1): the fixed part of the RDATA (RFC 8976 §2.2).</summary>
    private const int FixedLength = 6;
    /// <summary>RFC 8976 §2.2.4: a digest shorter than 12 octets is invalid whatever the algorithm.</summary>
    private const int MinimumDigestLength = 12;

    /// <summary>Whether this code can compute digests for <paramref name="hashAlgorithm"/>.</summary>
    public static bool IsSupported(byte hashAlgorithm) => hashAlgorithm is Sha384 or Sha512;

    /// <summary>The digest length of a supported algorithm (RFC 8976 §5.3), or -1.</summary>
    public static int DigestLength(byte hashAlgorithm) => hashAlgorithm switch { Sha384 => 48, Sha512 => 64, _ => -1 };

    /// <summary>
    /// The apex ZONEMD record for <paramref name="records"/> (RFC 8976 §3): scheme SIMPLE, the SOA's
    /// serial (§2.2.1) and TTL, the digest of §3.3 over every record of the zone except the apex
    /// ZONEMD RRset and the RRSIGs covering it.
    /// </summary>
    /// <exception cref="ArgumentException">No SOA at the apex, or an algorithm other than SHA-384/SHA-512.</exception>
    public static ResourceRecord Create(DnsName apex, IReadOnlyList<ResourceRecord> records, byte hashAlgorithm = Sha384)
    {
        if (!IsSupported(hashAlgorithm)) throw new ArgumentException($"ZONEMD hash algorithm {hashAlgorithm} is not supported", nameof(hashAlgorithm));
        var soa = FindSoa(apex, records, out string? problem) ?? throw new ArgumentException(problem, nameof(records));
        byte[] digest = ComputeDigest(apex, soa.Class, records, hashAlgorithm);
        return new ResourceRecord(soa.Owner, RecordType.ZONEMD, soa.Class, soa.Ttl, Rdata(SoaSerial(soa), SchemeSimple, hashAlgorithm, digest));
    }

    /// <summary>
    /// A placeholder ZONEMD (RFC 8976 §3.1): the SOA's serial and TTL, scheme SIMPLE, a digest of zeros
    /// of the algorithm's length. Added to the unsigned zone before signing so that the apex NSEC or
    /// NSEC3 type bitmap lists ZONEMD (§3.2); <see cref="Finalize"/> replaces it after signing.
    /// </summary>
    public static ResourceRecord Placeholder(DnsName apex, IReadOnlyList<ResourceRecord> records, byte hashAlgorithm = Sha384)
    {
        if (!IsSupported(hashAlgorithm)) throw new ArgumentException($"ZONEMD hash algorithm {hashAlgorithm} is not supported", nameof(hashAlgorithm));
        var soa = FindSoa(apex, records, out string? problem) ?? throw new ArgumentException(problem, nameof(records));
        return new ResourceRecord(soa.Owner, RecordType.ZONEMD, soa.Class, soa.Ttl,
            Rdata(SoaSerial(soa), SchemeSimple, hashAlgorithm, new byte[DigestLength(hashAlgorithm)]));
    }

    /// <summary>
    /// Completes a zone signed with placeholder ZONEMD records at the apex (RFC 8976 §3.2, after
    /// signing): for each placeholder the digest is computed over the signed zone (§3.3: the apex
    /// ZONEMD RRset and its RRSIGs left out), the placeholders are replaced, and the new ZONEMD RRset
    /// is signed (§3.5) with <paramref name="zoneSigners"/> — the keys that sign the zone's RRsets other
    /// than DNSKEY. The result is in <see cref="ZoneWriter.CanonicalOrder"/>, like the signer's.
    /// </summary>
    /// <exception cref="ArgumentException">No SOA or no placeholder at the apex, an unsupported algorithm, or no signer.</exception>
    public static List<ResourceRecord> Finalize(DnsName apex, List<ResourceRecord> signedRecords, IReadOnlyList<DnssecPrivateKey> zoneSigners,
        DateTimeOffset inception, DateTimeOffset expiration)
    {
        if (zoneSigners.Count == 0) throw new ArgumentException("no keys to sign the ZONEMD RRset with", nameof(zoneSigners));
        var soa = FindSoa(apex, signedRecords, out string? problem) ?? throw new ArgumentException(problem, nameof(signedRecords));
        uint serial = SoaSerial(soa);

        var placeholders = new List<ResourceRecord>();
        var rest = new List<ResourceRecord>(signedRecords.Count);
        foreach (var r in signedRecords)
        {
            if (IsApexZonemdOrItsSignature(apex, r)) { if (r.Type == RecordType.ZONEMD) placeholders.Add(r); continue; }
            rest.Add(r);
        }
        if (placeholders.Count == 0)
            throw new ArgumentException("no placeholder ZONEMD at the apex: add one before signing so that the NSEC/NSEC3 bitmap lists ZONEMD (RFC 8976 §3.2)", nameof(signedRecords));

        // One digest per hash algorithm asked for; the placeholder's TTL is kept (one TTL per RRset).
        var zonemd = new List<ResourceRecord>();
        var done = new HashSet<byte>();
        foreach (var placeholder in placeholders)
        {
            if (placeholder.Data.Length < FixedLength || placeholder.Data[4] != SchemeSimple || !IsSupported(placeholder.Data[5]))
                throw new ArgumentException("a placeholder ZONEMD has a scheme or hash algorithm that cannot be computed here", nameof(signedRecords));
            byte algorithm = placeholder.Data[5];
            if (!done.Add(algorithm)) continue;
            byte[] digest = ComputeDigest(apex, soa.Class, rest, algorithm);
            zonemd.Add(new ResourceRecord(placeholder.Owner, RecordType.ZONEMD, placeholder.Class, placeholders[0].Ttl,
                Rdata(serial, SchemeSimple, algorithm, digest)));
        }
        rest.AddRange(zonemd);
        foreach (var key in zoneSigners) rest.Add(DnssecSigner.SignRrset(zonemd, key, inception, expiration));
        return ZoneWriter.SortCanonical(rest);
    }

    /// <summary>
    /// Verifies the zone digest (RFC 8976 §4): the zone has one SOA and a ZONEMD RRset at the apex
    /// holding no two records of the same scheme and algorithm (§2); verification succeeds when one
    /// ZONEMD record with the SOA's serial, scheme SIMPLE and a supported algorithm carries the digest
    /// computed here. DNSSEC signatures over the ZONEMD RRset (§4 steps 1–2) are not checked here:
    /// the caller validates them with <see cref="DnssecVerifier"/> when the zone is signed.
    /// </summary>
    public static bool Verify(DnsName apex, IReadOnlyList<ResourceRecord> records, out string problem)
    {
        var soa = FindSoa(apex, records, out string? soaProblem);
        if (soa is null) { problem = soaProblem!; return false; }
        uint serial = SoaSerial(soa);

        var zonemd = new List<ResourceRecord>();
        foreach (var r in records)
            if (r.Type == RecordType.ZONEMD && r.Class == soa.Class && r.Owner.Equals(apex)) zonemd.Add(r);
        if (zonemd.Count == 0) { problem = "no ZONEMD record at the apex"; return false; }

        var seen = new HashSet<(byte Scheme, byte Algorithm)>();
        foreach (var r in zonemd)
        {
            if (r.Data.Length < FixedLength) continue;
            // Duplicates in the RRset itself (same RDATA) are one record; two digests of one kind are an error.
            if (!seen.Add((r.Data[4], r.Data[5])) && !IsDuplicateOfEarlier(zonemd, r))
            {
                problem = $"the ZONEMD RRset holds more than one record with scheme {r.Data[4]} and hash algorithm {r.Data[5]} (RFC 8976 §2)";
                return false;
            }
        }

        string? why = null;
        var digests = new Dictionary<byte, byte[]>();
        foreach (var r in zonemd)
        {
            if (r.Data.Length < FixedLength + MinimumDigestLength) { why ??= "a ZONEMD record has a digest shorter than 12 octets (RFC 8976 §2.2.4)"; continue; }
            uint recordSerial = BinaryPrimitives.ReadUInt32BigEndian(r.Data);
            byte scheme = r.Data[4], algorithm = r.Data[5];
            // §4: a record whose serial, scheme or algorithm does not fit cannot make verification succeed.
            if (recordSerial != serial) { why ??= $"the ZONEMD serial {recordSerial} is not the SOA serial {serial}"; continue; }
            if (scheme != SchemeSimple) { why ??= $"ZONEMD scheme {scheme} is not supported"; continue; }
            if (!IsSupported(algorithm)) { why ??= $"ZONEMD hash algorithm {algorithm} is not supported"; continue; }
            if (r.Data.Length - FixedLength != DigestLength(algorithm))
            {
                why = $"the ZONEMD digest for hash algorithm {algorithm} has {r.Data.Length - FixedLength} octets, not {DigestLength(algorithm)}";
                continue;
            }
            if (!digests.TryGetValue(algorithm, out var computed))
                digests[algorithm] = computed = ComputeDigest(apex, soa.Class, records, algorithm);
            if (computed.AsSpan().SequenceEqual(r.Data.AsSpan(FixedLength)))
            {
                problem = "";
                return true;
            }
            why = $"the zone's {(algorithm == Sha384 ? "SHA-384" : "SHA-512")} digest does not match the ZONEMD record";
        }
        problem = why ?? "no usable ZONEMD record";
        return false;
    }

    /// <summary>
    /// The SIMPLE digest (RFC 8976 §3.3.1) with <paramref name="hashAlgorithm"/> over the records of
    /// class <paramref name="class"/> at or below <paramref name="apex"/>: every RR of the zone —
    /// glue and occluded data included (§3.3), out-of-zone data excluded — except the apex ZONEMD RRset
    /// and the apex RRSIGs covering ZONEMD (§3.3.1), each RR once, in canonical wire form
    /// with its own TTL (RFC 4034 §6.2), in canonical order (§6.1, §6.3) with the RRsets of one owner
    /// ordered by type number (§3.3.1; RRSIGs form one RRset of type 46, its records ordered by
    /// RDATA, so by the type they cover).
    /// </summary>
    public static byte[] ComputeDigest(DnsName apex, RecordClass @class, IReadOnlyList<ResourceRecord> records, byte hashAlgorithm)
    {
        var hashName = hashAlgorithm switch
        {
            Sha384 => HashAlgorithmName.SHA384,
            Sha512 => HashAlgorithmName.SHA512,
            _ => throw new ArgumentException($"ZONEMD hash algorithm {hashAlgorithm} is not supported", nameof(hashAlgorithm)),
        };

        var entries = new List<Entry>(records.Count);
        foreach (var r in records)
        {
            if (r.Class != @class || !r.Owner.IsSubdomainOf(apex) || IsApexZonemdOrItsSignature(apex, r)) continue;
            entries.Add(new Entry(r, RdataWire.ToCanonical(r.Type, r.Data)));
        }
        entries.Sort(static (a, b) => Compare(a, b));

        using var hash = IncrementalHash.CreateHash(hashName);
        Span<byte> owner = stackalloc byte[DnsName.MaxLength];
        Span<byte> fixedPart = stackalloc byte[10];
        for (int i = 0; i < entries.Count; i++)
        {
            var (r, rdata) = entries[i];
            if (i > 0 && Compare(entries[i - 1], entries[i]) == 0) continue;   // RFC 8976 §3.3.1: duplicates digested once
            r.Owner.CopyTo(owner);
            var ownerWire = owner[..r.Owner.WireLength];
            DnsName.LowerLabels(ownerWire);
            BinaryPrimitives.WriteUInt16BigEndian(fixedPart, (ushort)r.Type);
            BinaryPrimitives.WriteUInt16BigEndian(fixedPart[2..], (ushort)r.Class);
            BinaryPrimitives.WriteUInt32BigEndian(fixedPart[4..], r.Ttl);
            BinaryPrimitives.WriteUInt16BigEndian(fixedPart[8..], (ushort)rdata.Length);
            hash.AppendData(ownerWire);
            hash.AppendData(fixedPart);
            hash.AppendData(rdata);
        }
        return hash.GetHashAndReset();
    }

    private readonly record struct Entry(ResourceRecord Record, byte[] Canonical);

    private static int Compare(Entry a, Entry b)
    {
        int c = a.Record.Owner.CompareTo(b.Record.Owner);
        if (c != 0) return c;
        c = ((ushort)a.Record.Type).CompareTo((ushort)b.Record.Type);
        if (c != 0) return c;
        return a.Canonical.AsSpan().SequenceCompareTo(b.Canonical);
    }

    /// <summary>The apex ZONEMD RRset and the RRSIGs at the apex covering ZONEMD: what the digest leaves out (RFC 8976 §3.3.1).</summary>
    private static bool IsApexZonemdOrItsSignature(DnsName apex, ResourceRecord r) =>
        (r.Type == RecordType.ZONEMD
            || (r.Type == RecordType.RRSIG && r.Data.Length >= 2 && BinaryPrimitives.ReadUInt16BigEndian(r.Data) == (ushort)RecordType.ZONEMD))
        && r.Owner.Equals(apex);

    private static bool IsDuplicateOfEarlier(List<ResourceRecord> zonemd, ResourceRecord r)
    {
        foreach (var other in zonemd)
        {
            if (ReferenceEquals(other, r)) return false;
            if (other.Data.AsSpan().SequenceEqual(r.Data)) return true;
        }
        return false;
    }

    private static ResourceRecord? FindSoa(DnsName apex, IReadOnlyList<ResourceRecord> records, out string? problem)
    {
        ResourceRecord? soa = null;
        foreach (var r in records)
        {
            if (r.Type != RecordType.SOA || !r.Owner.Equals(apex)) continue;
            if (soa is not null && !soa.Equals(r)) { problem = "the zone has more than one SOA record at its apex"; return null; }
            soa ??= r;
        }
        if (soa is null || soa.Data.Length < 20) { problem = "the zone has no SOA record at its apex"; return null; }
        problem = null;
        return soa;
    }

    /// <summary>The SOA serial: the first of the five 32-bit fields after the two names (RFC 1035 §3.3.13).</summary>
    private static uint SoaSerial(ResourceRecord soa) => BinaryPrimitives.ReadUInt32BigEndian(soa.Data.AsSpan(soa.Data.Length - 20));

    private static byte[] Rdata(uint serial, byte scheme, byte hashAlgorithm, byte[] digest)
    {
        var rdata = new byte[FixedLength + digest.Length];
        BinaryPrimitives.WriteUInt32BigEndian(rdata, serial);
        rdata[4] = scheme;
        rdata[5] = hashAlgorithm;
        digest.CopyTo(rdata, FixedLength);
        return rdata;
    }
}
