namespace Portcullis.Protocol.Dnssec;

/// <summary>DNSSEC algorithm numbers (IANA "DNS Security Algorithm Numbers"; RFC 8624 says which to use).</summary>
public enum DnssecAlgorithm : byte
{
    RsaMd5 = 1,
    Dsa = 3,
    RsaSha1 = 5,
    DsaNsec3Sha1 = 6,
    RsaSha1Nsec3Sha1 = 7,
    RsaSha256 = 8,
    RsaSha512 = 10,
    EccGost = 12,
    EcdsaP256Sha256 = 13,
    EcdsaP384Sha384 = 14,
    Ed25519 = 15,
    Ed448 = 16,
}

/// <summary>DS digest types (IANA "Delegation Signer (DS) Resource Record Digest Algorithms").</summary>
public enum DsDigestType : byte
{
    /// <summary>RFC 4034 §5.1.4.</summary>
    Sha1 = 1,
    /// <summary>RFC 4509.</summary>
    Sha256 = 2,
    /// <summary>RFC 5933, not implemented (RFC 8624 §3.3: MUST NOT be used to create DS).</summary>
    Gost = 3,
    /// <summary>RFC 6605 §2.</summary>
    Sha384 = 4,
}

/// <summary>Mnemonics and capabilities of the algorithm numbers.</summary>
public static class DnssecAlgorithms
{
    /// <summary>Algorithms whose signatures this library verifies. Ed448 (16) is not among them:
    /// .NET has no Ed448 and NSec offers only Ed25519; RFC 8624 §3.1 makes it MAY for validators.</summary>
    public static bool IsSupported(DnssecAlgorithm algorithm) => algorithm is DnssecAlgorithm.RsaSha1 or DnssecAlgorithm.RsaSha1Nsec3Sha1
        or DnssecAlgorithm.RsaSha256 or DnssecAlgorithm.RsaSha512 or DnssecAlgorithm.EcdsaP256Sha256
        or DnssecAlgorithm.EcdsaP384Sha384 or DnssecAlgorithm.Ed25519;

    /// <summary>The mnemonic of the IANA registry ("ECDSAP256SHA256"), or the number.</summary>
    public static string ToText(DnssecAlgorithm algorithm) => algorithm switch
    {
        DnssecAlgorithm.RsaMd5 => "RSAMD5",
        DnssecAlgorithm.Dsa => "DSA",
        DnssecAlgorithm.RsaSha1 => "RSASHA1",
        DnssecAlgorithm.DsaNsec3Sha1 => "DSA-NSEC3-SHA1",
        DnssecAlgorithm.RsaSha1Nsec3Sha1 => "RSASHA1-NSEC3-SHA1",
        DnssecAlgorithm.RsaSha256 => "RSASHA256",
        DnssecAlgorithm.RsaSha512 => "RSASHA512",
        DnssecAlgorithm.EccGost => "ECC-GOST",
        DnssecAlgorithm.EcdsaP256Sha256 => "ECDSAP256SHA256",
        DnssecAlgorithm.EcdsaP384Sha384 => "ECDSAP384SHA384",
        DnssecAlgorithm.Ed25519 => "ED25519",
        DnssecAlgorithm.Ed448 => "ED448",
        _ => ((byte)algorithm).ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    /// <summary>A signing algorithm by mnemonic (any case) or number, among those keys can be made for.</summary>
    public static bool TryParseSigning(string text, out DnssecAlgorithm algorithm)
    {
        algorithm = text.Trim().ToLowerInvariant() switch
        {
            "ecdsap256sha256" or "13" => DnssecAlgorithm.EcdsaP256Sha256,
            "ecdsap384sha384" or "14" => DnssecAlgorithm.EcdsaP384Sha384,
            "ed25519" or "15" => DnssecAlgorithm.Ed25519,
            "rsasha256" or "8" => DnssecAlgorithm.RsaSha256,
            _ => 0,
        };
        return algorithm != 0;
    }

    public static string ToText(DsDigestType digest) => digest switch
    {
        DsDigestType.Sha1 => "SHA-1",
        DsDigestType.Sha256 => "SHA-256",
        DsDigestType.Gost => "GOST R 34.11-94",
        DsDigestType.Sha384 => "SHA-384",
        _ => ((byte)digest).ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}
