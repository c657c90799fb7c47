using Portcullis.Protocol.Messages;
using System.Buffers.Binary;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;

namespace Portcullis.Protocol.Dnssec;

/// <summary>The DNSSEC state of validated data (RFC 4033 §5, RFC 4035 §4.3).</summary>
public enum DnssecSecurity : byte
{
    /// <summary>A chain of signed DNSKEY and DS RRsets leads from a trust anchor to the data.</summary>
    Secure,
    /// <summary>A signed proof says there is no chain (no DS, or only algorithms or digests not implemented here).</summary>
    Insecure,
    /// <summary>There should be a chain and the data does not verify along it.</summary>
    Bogus,
}

/// <summary>The outcome of validating one RRset or one DNSKEY RRset.</summary>
/// <remarks>
/// <see cref="Reason"/> is the Extended DNS Error (RFC 8914 §4) a client would be told: 6 DNSSEC Bogus,
/// 7 Signature Expired, 8 Not Yet Valid, 9 DNSKEY Missing, 10 RRSIGs Missing, 11 No Zone Key Bit,
/// 1/2 unsupported algorithm or digest (insecure); null when there is nothing to tell. A validation
/// limit hit (<see cref="LimitExceeded"/>) is reported as DNSSEC Bogus, as Unbound reports it.
/// </remarks>
public readonly record struct ValidationResult(DnssecSecurity Security, ExtendedDnsErrorCode? Reason, int Labels = -1, uint MaxTtl = uint.MaxValue)
{
    /// <summary>Bogus because a KeyTrap limit of <see cref="ValidationBudget"/> was reached, not because a signature failed.</summary>
    public bool LimitExceeded { get; init; }

    public static ValidationResult Secured(int labels, uint maxTtl) => new(DnssecSecurity.Secure, null, labels, maxTtl);
    public static ValidationResult BogusFor(ExtendedDnsErrorCode reason) => new(DnssecSecurity.Bogus, reason);
    public static ValidationResult InsecureFor(ExtendedDnsErrorCode? reason) => new(DnssecSecurity.Insecure, reason);
    public static ValidationResult Limit { get; } = new(DnssecSecurity.Bogus, ExtendedDnsErrorCode.DnssecBogus) { LimitExceeded = true };
}

/// <summary>
/// The cryptographic work one response may cost (KeyTrap, CVE-2023-50387). BIND allows 16
/// validations per fetch and 1 failure; Unbound 8 RRSIGs per step and 16 suspensions; Knot
/// Resolver 32 per query; PowerDNS 2 RRSIGs per record, 2 DNSKEYs per tag, 30 per query.
/// Portcullis: at most <see cref="MaxVerifications"/> (16) signature verifications per response,
/// at most <see cref="MaxKeysPerTag"/> (2) DNSKEYs tried for one RRSIG (colliding key tags),
/// at most <see cref="MaxSignaturesPerRrset"/> (4) RRSIGs tried for one RRset (enough for an
/// algorithm rollover), and at most <see cref="MaxFailures"/> (4) failed verifications. With
/// ECDSA P-256 at about 60 µs per verification, a response costs at most about 1 ms of CPU.
/// </summary>
public struct ValidationBudget
{
    public const int MaxVerifications = 16;
    public const int MaxKeysPerTag = 2;
    public const int MaxSignaturesPerRrset = 4;
    public const int MaxFailures = 4;

    private int _verifications, _failures;

    /// <summary>
    /// The operator's SHA-1 policy: when set, RSASHA1 and RSASHA1-NSEC3-SHA1 signatures (algorithms
    /// 5 and 7) and SHA-1 DS digests count as not implemented, so zones that rely on them are
    /// insecure rather than secure (RFC 4035 §5.2) — what RHEL's crypto policy does to BIND and
    /// Unbound. Off by default: RFC 8624 §3.1 still has validators implement them.
    /// </summary>
    public bool Sha1Disabled { readonly get; init; }

    /// <summary>Whether signatures of <paramref name="algorithm"/> are verified here under this policy.</summary>
    public readonly bool Allows(DnssecAlgorithm algorithm) =>
        DnssecAlgorithms.IsSupported(algorithm) && !(Sha1Disabled && algorithm is DnssecAlgorithm.RsaSha1 or DnssecAlgorithm.RsaSha1Nsec3Sha1);

    /// <summary>Whether DS digests of <paramref name="digest"/> are checked here under this policy.</summary>
    public readonly bool Allows(DsDigestType digest) => DsDigest.IsSupported(digest) && !(Sha1Disabled && digest == DsDigestType.Sha1);

    public readonly int Verifications => _verifications;
    public readonly int Failures => _failures;
    public readonly bool Exhausted => _verifications >= MaxVerifications || _failures >= MaxFailures;

    internal bool TrySpend()
    {
        if (Exhausted) return false;
        _verifications++;
        return true;
    }

    internal void Failed() => _failures++;
}

/// <summary>
/// Validation of RRsets with keys already trusted, and of a zone's DNSKEY RRset with the DS RRset
/// (or trust anchor) above it (RFC 4035 §5.2–5.3), under a <see cref="ValidationBudget"/>.
/// </summary>
public static class RrsetValidator
{
    /// <summary>
    /// An RRset signed by <paramref name="signer"/>'s <paramref name="trustedKeys"/> (its validated DNSKEY
    /// RRset): secure when one of the RRSIGs covering it verifies with one of the keys and is inside its
    /// window. The result carries the RRSIG's label count (fewer than the owner's: a wildcard answer,
    /// which needs a denial proof, RFC 4035 §5.3.4) and the TTL the data may be cached for: at most the
    /// original TTL and the time left before the signature expires (§5.3.3).
    /// </summary>
    public static ValidationResult Validate(IReadOnlyList<ResourceRecord> rrset, IReadOnlyList<ResourceRecord> rrsigs, DnsName signer,
        IReadOnlyList<ResourceRecord> trustedKeys, DateTimeOffset now, ref ValidationBudget budget)
    {
        if (rrset.Count == 0) return ValidationResult.BogusFor(ExtendedDnsErrorCode.DnssecBogus);
        var owner = rrset[0].Owner;
        var type = rrset[0].Type;
        var worst = ExtendedDnsErrorCode.RrsigsMissing;
        int tried = 0;
        bool anySupported = false, anySignature = false;
        for (int s = 0; s < rrsigs.Count; s++)
        {
            var sig = rrsigs[s];
            if (sig.Type != RecordType.RRSIG || !sig.Owner.Equals(owner)) continue;
            if (!Rrsig.TryRead(sig.Data, out var r) || r.TypeCovered != type) continue;
            if (!DnsName.EqualsIgnoreCase(r.SignerName, signer.Wire)) continue;
            anySignature = true;
            if (!budget.Allows(r.Algorithm)) continue;
            anySupported = true;
            if (++tried > ValidationBudget.MaxSignaturesPerRrset) break;
            int keysTried = 0;
            bool keyFound = false;
            for (int k = 0; k < trustedKeys.Count && keysTried < ValidationBudget.MaxKeysPerTag; k++)
            {
                var key = trustedKeys[k].Data;
                if (trustedKeys[k].Type != RecordType.DNSKEY || !DnsKey.IsWellFormed(key) || DnsKey.KeyTag(key) != r.KeyTag
                    || DnsKey.Algorithm(key) != r.Algorithm) continue;
                keyFound = true;
                if (!DnsKey.IsZoneKey(key) || DnsKey.IsRevoked(key))
                {
                    worst = Worse(worst, ExtendedDnsErrorCode.NoZoneKeyBitSet);
                    continue;
                }
                keysTried++;
                if (!budget.TrySpend()) return ValidationResult.Limit;
                var check = DnssecVerifier.Verify(sig.Data, owner, type, rrset, trustedKeys[k].Owner, key, now);
                switch (check.Status)
                {
                    case SignatureStatus.Valid:
                        return ValidationResult.Secured(r.Labels, MaxTtl(r.OriginalTtl, check.Expiration, now));
                    case SignatureStatus.Expired:
                        worst = Worse(worst, ExtendedDnsErrorCode.SignatureExpired);
                        break;
                    case SignatureStatus.NotYetValid:
                        worst = Worse(worst, ExtendedDnsErrorCode.SignatureNotYetValid);
                        break;
                    default:
                        worst = Worse(worst, ExtendedDnsErrorCode.DnssecBogus);
                        break;
                }
                budget.Failed();
                if (budget.Exhausted) return ValidationResult.Limit;
            }
            if (!keyFound) worst = Worse(worst, ExtendedDnsErrorCode.DnskeyMissing);
        }
        // Signatures only with algorithms we do not implement: RFC 4035 §5.2 (and RFC 6840 §5.2)
        // make the zone insecure when its DS names only such algorithms; the caller decides that at
        // the DS. Here, with trusted keys in hand, data signed by none of them is bogus.
        if (anySignature && !anySupported) return ValidationResult.BogusFor(ExtendedDnsErrorCode.UnsupportedDnskeyAlgorithm);
        return ValidationResult.BogusFor(worst);
    }

    /// <summary>
    /// A zone's DNSKEY RRset from the DS RRset of its parent (or the trust anchor's DS records), RFC
    /// 4035 §5.2: secure when a DNSKEY that a DS designates (tag, algorithm, digest; a zone key, not
    /// revoked) signs the RRset. Insecure when no DS has an algorithm and digest implemented here
    /// (§5.2, RFC 6840 §5.2, RFC 4509 §3: SHA-1 DS ignored when SHA-256 is present). Trusted DNSKEY
    /// anchors (a DNSKEY rather than DS trust anchor) are given as <paramref name="anchorKeys"/>.
    /// </summary>
    public static ValidationResult ValidateKeys(IReadOnlyList<ResourceRecord> dnskeys, IReadOnlyList<ResourceRecord> rrsigs, DnsName zone,
        IReadOnlyList<ResourceRecord> ds, IReadOnlyList<ResourceRecord> anchorKeys, DateTimeOffset now, ref ValidationBudget budget)
    {
        // The keys the DS (or anchor) designates, among the RRset's.
        var designated = new List<ResourceRecord>();
        bool anyUsableDs = false, anySha256 = false, anyDs = false;
        foreach (var d in ds)
            if (d.Type == RecordType.DS && d.Data.Length > 4 && (DsDigestType)d.Data[3] is DsDigestType.Sha256 or DsDigestType.Sha384
                && budget.Allows((DnssecAlgorithm)d.Data[2]))
                anySha256 = true;
        foreach (var d in ds)
        {
            if (d.Type != RecordType.DS || d.Data.Length < 5) continue;
            anyDs = true;
            var digest = (DsDigestType)d.Data[3];
            if (!budget.Allows(digest) || !budget.Allows((DnssecAlgorithm)d.Data[2])) continue;
            if (digest == DsDigestType.Sha1 && anySha256) continue;   // RFC 4509 §3
            anyUsableDs = true;
            foreach (var k in dnskeys)
                if (k.Type == RecordType.DNSKEY && DsDigest.Compare(d.Data, zone, k.Data) == DsMatch.Match && !designated.Contains(k))
                    designated.Add(k);
        }
        foreach (var a in anchorKeys)
        {
            if (a.Type != RecordType.DNSKEY || !budget.Allows(DnsKey.Algorithm(a.Data))) continue;
            anyUsableDs = true;
            foreach (var k in dnskeys)
                if (k.Type == RecordType.DNSKEY && k.Data.AsSpan().SequenceEqual(a.Data) && !designated.Contains(k)) designated.Add(k);
        }
        if (!anyUsableDs)
            return anyDs || anchorKeys.Count > 0
                ? ValidationResult.InsecureFor(anyDs ? ExtendedDnsErrorCode.UnsupportedDsDigestType : ExtendedDnsErrorCode.UnsupportedDnskeyAlgorithm)
                : ValidationResult.BogusFor(ExtendedDnsErrorCode.DnskeyMissing);
        if (designated.Count == 0) return ValidationResult.BogusFor(ExtendedDnsErrorCode.DnskeyMissing);
        return Validate(dnskeys, rrsigs, zone, designated, now, ref budget);
    }

    /// <summary>The TTL validated data may be served with: the original TTL, and no longer than its signature lasts.</summary>
    private static uint MaxTtl(uint originalTtl, DateTimeOffset expiration, DateTimeOffset now)
    {
        double left = (expiration - now).TotalSeconds;
        return left <= 0 ? 0 : (uint)Math.Min(originalTtl, Math.Min(left, uint.MaxValue));
    }

    /// <summary>The more telling of two reasons: a verified signature out of its window, then a bad one, then missing keys or signatures.</summary>
    private static ExtendedDnsErrorCode Worse(ExtendedDnsErrorCode a, ExtendedDnsErrorCode b) => Rank(b) > Rank(a) ? b : a;

    private static int Rank(ExtendedDnsErrorCode r) => r switch
    {
        ExtendedDnsErrorCode.SignatureExpired or ExtendedDnsErrorCode.SignatureNotYetValid => 5,
        ExtendedDnsErrorCode.DnssecBogus => 4,
        ExtendedDnsErrorCode.NoZoneKeyBitSet => 3,
        ExtendedDnsErrorCode.DnskeyMissing => 2,
        _ => 1,
    };

    /// <summary>The key tag a DS designates (RFC 4034 §5.1.1).</summary>
    public static ushort DsKeyTag(ReadOnlySpan<byte> dsRdata) => BinaryPrimitives.ReadUInt16BigEndian(dsRdata);
}
