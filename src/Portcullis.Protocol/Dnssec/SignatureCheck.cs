namespace Portcullis.Protocol.Dnssec;

/// <summary>What checking one RRSIG over one RRset found (RFC 4035 §5.3).</summary>
public enum SignatureStatus : byte
{
    /// <summary>The signature verifies with the key and the time is inside its validity window.</summary>
    Valid,
    /// <summary>The signature does not verify over the canonical RRset with this key.</summary>
    BadSignature,
    /// <summary>The signature verifies but its expiration is before the time of the check.</summary>
    Expired,
    /// <summary>The signature verifies but its inception is after the time of the check.</summary>
    NotYetValid,
    /// <summary>The algorithm is not implemented here (Ed448, DSA, GOST, RSA/MD5, unknown): neither good nor bad.</summary>
    UnsupportedAlgorithm,
    /// <summary>No usable key: the signer's name, key tag, algorithm or protocol differ, or the key is not a zone key (RFC 4035 §5.3.1).</summary>
    KeyMismatch,
    /// <summary>The RRSIG does not cover this RRset: owner, class or type differ, too many labels, or the owner is outside the signer's zone.</summary>
    RrsetMismatch,
    /// <summary>The RRSIG, the key or the RRset cannot be read (truncated RDATA, key or signature of the wrong size).</summary>
    Malformed,
}

/// <summary>
/// The result of a signature check with the signature's facts, so that a caller can report the
/// validity window (the audit warns of signatures close to expiry) without reading the RRSIG again.
/// Inception and Expiration are default when the RRSIG could not be read.
/// </summary>
public readonly record struct SignatureCheck(
    SignatureStatus Status, DnssecAlgorithm Algorithm, ushort KeyTag, DateTimeOffset Inception, DateTimeOffset Expiration)
{
    public bool IsValid => Status == SignatureStatus.Valid;

    /// <summary>The signature itself is good; only the time of the check is outside its window.</summary>
    public bool IsCryptographicallyValid => Status is SignatureStatus.Valid or SignatureStatus.Expired or SignatureStatus.NotYetValid;
}
