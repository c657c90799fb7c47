using System.Buffers;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;

namespace Portcullis.Protocol.Dnssec;

/// <summary>
/// RRSIG verification (RFC 4035 §5.3): the checks of §5.3.1 between the RRSIG, the RRset and the
/// DNSKEY, the signed data of §5.3.2 (canonical RRset, wildcard owner, original TTL), then the
/// signature with the key (§5.3.3), then the validity window. Results are values, never exceptions.
/// </summary>
/// <remarks>
/// The cryptography comes before the time check so that <see cref="SignatureStatus.Expired"/> and
/// <see cref="SignatureStatus.NotYetValid"/> mean "a good signature outside its window", which is
/// what an operator needs told apart from a bad one. A resolver pays for that only on signatures
/// that would be rejected anyway.
/// </remarks>
public static class DnssecVerifier
{
    /// <summary>
    /// Verifies <paramref name="rrsig"/> over <paramref name="rrset"/> with each key of
    /// <paramref name="dnskeys"/> that the RRSIG designates (signer's name, algorithm, key tag: tags
    /// can collide, RFC 4034 Appendix B). Valid as soon as one key verifies; otherwise the most
    /// telling failure: a signature that verified with a key outside its window, a bad signature,
    /// then a key mismatch when no key was designated.
    /// </summary>
    public static SignatureCheck Verify(ResourceRecord rrsig, IReadOnlyList<ResourceRecord> rrset, IReadOnlyList<ResourceRecord> dnskeys, DateTimeOffset now)
    {
        SignatureCheck best = Describe(rrsig, now, SignatureStatus.KeyMismatch);
        if (best.Status == SignatureStatus.Malformed) return best;
        for (int i = 0; i < dnskeys.Count; i++)
        {
            var key = dnskeys[i];
            if (key.Type != RecordType.DNSKEY) continue;
            var result = Verify(rrsig, rrset, key, now);
            if (result.Status == SignatureStatus.Valid) return result;
            if (Rank(result.Status) > Rank(best.Status)) best = result;
        }
        return best;

        // Which failure says most about the signature: a verified one out of its window, then a
        // structural problem with the RRset, then a bad signature, then an unusable key.
        static int Rank(SignatureStatus s) => s switch
        {
            SignatureStatus.Expired or SignatureStatus.NotYetValid => 6,
            SignatureStatus.RrsetMismatch => 5,
            SignatureStatus.UnsupportedAlgorithm => 4,
            SignatureStatus.BadSignature => 3,
            SignatureStatus.Malformed => 2,
            _ => 1,
        };
    }

    /// <summary>Verifies one RRSIG record over one RRset with one DNSKEY record.</summary>
    public static SignatureCheck Verify(ResourceRecord rrsig, IReadOnlyList<ResourceRecord> rrset, ResourceRecord dnskey, DateTimeOffset now)
    {
        if (rrsig.Type != RecordType.RRSIG || rrset.Count == 0) return Describe(rrsig, now, SignatureStatus.RrsetMismatch);
        // RFC 4035 §5.3.1: same owner and class as the RRset, covering its type.
        var first = rrset[0];
        for (int i = 0; i < rrset.Count; i++)
        {
            var r = rrset[i];
            if (r.Type != first.Type || r.Class != first.Class || !r.Owner.Equals(first.Owner))
                return Describe(rrsig, now, SignatureStatus.RrsetMismatch);
        }
        if (!rrsig.Owner.Equals(first.Owner) || rrsig.Class != first.Class) return Describe(rrsig, now, SignatureStatus.RrsetMismatch);
        return Verify(rrsig.Data, first.Owner, first.Type, rrset, dnskey.Owner, dnskey.Data, now);
    }

    /// <summary>
    /// The core: RRSIG RDATA over an RRset whose owner and type are given (the RRset's records must
    /// share them), with DNSKEY RDATA owned by <paramref name="keyOwner"/>.
    /// </summary>
    public static SignatureCheck Verify(ReadOnlySpan<byte> rrsigRdata, DnsName owner, RecordType type, IReadOnlyList<ResourceRecord> rrset,
        DnsName keyOwner, ReadOnlySpan<byte> dnskeyRdata, DateTimeOffset now)
    {
        if (!Rrsig.TryRead(rrsigRdata, out var rrsig) || rrsig.Signature.Length == 0)
            return new SignatureCheck(SignatureStatus.Malformed, default, 0, default, default);
        var inception = Rrsig.ToInstant(rrsig.Inception, now);
        var expiration = Rrsig.ToInstant(rrsig.Expiration, now);
        var algorithm = rrsig.Algorithm;
        ushort keyTag = rrsig.KeyTag;
        SignatureCheck Result(SignatureStatus status) => new(status, algorithm, keyTag, inception, expiration);

        // RFC 4035 §5.3.1: the RRSIG covers this type; the owner has at least as many labels as
        // the labels field; the owner is in the signer's zone.
        if (rrsig.TypeCovered != type || rrsig.Labels > owner.LabelCount) return Result(SignatureStatus.RrsetMismatch);
        if (!IsAtOrBelow(owner.Wire, rrsig.SignerName)) return Result(SignatureStatus.RrsetMismatch);
        // The key: owned by the signer, same algorithm and tag, protocol 3, a zone key.
        if (!DnsKey.IsWellFormed(dnskeyRdata)) return Result(SignatureStatus.Malformed);
        if (!DnsName.EqualsIgnoreCase(keyOwner.Wire, rrsig.SignerName) || DnsKey.Algorithm(dnskeyRdata) != rrsig.Algorithm
            || DnsKey.ProtocolField(dnskeyRdata) != DnsKey.Protocol || !DnsKey.IsZoneKey(dnskeyRdata)
            || DnsKey.KeyTag(dnskeyRdata) != rrsig.KeyTag)
            return Result(SignatureStatus.KeyMismatch);
        if (!DnssecAlgorithms.IsSupported(rrsig.Algorithm)) return Result(SignatureStatus.UnsupportedAlgorithm);

        int size = CanonicalRrset.Measure(rrsigRdata, rrset);
        if (size < 0) return Result(SignatureStatus.RrsetMismatch);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(size);
        SignatureStatus status;
        try
        {
            CanonicalRrset.TryWrite(rrsigRdata, rrset, buffer, out int written);
            status = DnssecCrypto.Verify(rrsig.Algorithm, DnsKey.PublicKey(dnskeyRdata), buffer.AsSpan(0, written), rrsig.Signature);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        if (status != SignatureStatus.Valid) return Result(status);

        // RFC 4035 §5.3.1: inception <= now <= expiration, in serial arithmetic (RFC 4034 §3.1.5).
        if (now < inception) return Result(SignatureStatus.NotYetValid);
        if (now > expiration) return Result(SignatureStatus.Expired);
        return Result(SignatureStatus.Valid);
    }

    /// <summary>The RRSIG's facts with a status, before (or without) verifying it.</summary>
    public static SignatureCheck Describe(ResourceRecord rrsig, DateTimeOffset now, SignatureStatus status)
    {
        if (rrsig.Type != RecordType.RRSIG || !Rrsig.TryRead(rrsig.Data, out var r))
            return new SignatureCheck(SignatureStatus.Malformed, default, 0, default, default);
        return new SignatureCheck(status, r.Algorithm, r.KeyTag, Rrsig.ToInstant(r.Inception, now), Rrsig.ToInstant(r.Expiration, now));
    }

    /// <summary>True when the wire name <paramref name="name"/> equals <paramref name="ancestor"/> or is below it (both uncompressed).</summary>
    private static bool IsAtOrBelow(ReadOnlySpan<byte> name, ReadOnlySpan<byte> ancestor)
    {
        int pos = 0;
        while (name.Length - pos > ancestor.Length) pos += 1 + name[pos];
        return name.Length - pos == ancestor.Length && DnsName.EqualsIgnoreCase(name[pos..], ancestor);
    }
}
