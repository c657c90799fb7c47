using System.Security.Cryptography;
using NSec.Cryptography;

namespace Portcullis.Protocol.Dnssec;

/// <summary>
/// The public-key operations behind RRSIG verification, one per algorithm family: RSA with
/// PKCS #1 v1.5 (RFC 3110, RFC 5702), ECDSA over P-256/P-384 (RFC 6605) and Ed25519 (RFC 8080).
/// Imported keys are kept per thread (<see cref="MaxCachedKeys"/> at most, then the cache starts
/// over): importing a key costs several times the verification itself (an RSA or ECDSA import is
/// ~150 µs, the verification 20–70 µs), and a validating resolver verifies with the same few keys
/// again and again. Per thread, so no imported object is ever shared between threads.
/// </summary>
internal static class DnssecCrypto
{
    /// <summary>Imported public keys kept per thread.</summary>
    public const int MaxCachedKeys = 256;

    private sealed record Imported(DnssecAlgorithm Algorithm, byte[] Key, object Handle);

    [ThreadStatic] private static Dictionary<int, Imported>? t_imported;

    /// <summary>The key imported earlier on this thread, or null.</summary>
    private static object? Cached(DnssecAlgorithm algorithm, ReadOnlySpan<byte> key, out int hash)
    {
        var h = new HashCode();
        h.Add((int)algorithm);
        h.AddBytes(key);
        hash = h.ToHashCode();
        return t_imported is { } cache && cache.TryGetValue(hash, out var found) && found.Algorithm == algorithm && key.SequenceEqual(found.Key)
            ? found.Handle : null;
    }

    private static void Keep(DnssecAlgorithm algorithm, ReadOnlySpan<byte> key, int hash, object handle)
    {
        var cache = t_imported ??= new Dictionary<int, Imported>();
        if (cache.Count >= MaxCachedKeys)
        {
            foreach (var (_, old) in cache) (old.Handle as IDisposable)?.Dispose();
            cache.Clear();
        }
        // A hash collision keeps the newer key; the one it replaces is not in use (calls are synchronous).
        if (cache.TryGetValue(hash, out var replaced)) (replaced.Handle as IDisposable)?.Dispose();
        cache[hash] = new Imported(algorithm, key.ToArray(), handle);
    }
    /// <summary>RFC 3110 §2 limits RSA moduli to 4096 bits; smaller than 512 is not a key OpenSSL accepts.</summary>
    private const int MaxRsaModulus = 4096 / 8, MinRsaModulus = 512 / 8;

    public static SignatureStatus Verify(DnssecAlgorithm algorithm, ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> data, ReadOnlySpan<byte> signature) =>
        algorithm switch
        {
            DnssecAlgorithm.RsaSha1 or DnssecAlgorithm.RsaSha1Nsec3Sha1 => Rsa(publicKey, data, signature, HashAlgorithmName.SHA1),
            DnssecAlgorithm.RsaSha256 => Rsa(publicKey, data, signature, HashAlgorithmName.SHA256),
            DnssecAlgorithm.RsaSha512 => Rsa(publicKey, data, signature, HashAlgorithmName.SHA512),
            DnssecAlgorithm.EcdsaP256Sha256 => Ecdsa(publicKey, data, signature, ECCurve.NamedCurves.nistP256, 32, HashAlgorithmName.SHA256),
            DnssecAlgorithm.EcdsaP384Sha384 => Ecdsa(publicKey, data, signature, ECCurve.NamedCurves.nistP384, 48, HashAlgorithmName.SHA384),
            DnssecAlgorithm.Ed25519 => Ed25519(publicKey, data, signature),
            _ => SignatureStatus.UnsupportedAlgorithm,
        };

    /// <summary>
    /// RFC 3110 §2: exponent length in one octet, or a zero octet then two octets when the exponent
    /// is longer than 255 octets; the exponent; the modulus. The signature is an integer as long
    /// as the modulus (RFC 3110 §3), left-padded here when a signer dropped leading zeros.
    /// </summary>
    private static SignatureStatus Rsa(ReadOnlySpan<byte> key, ReadOnlySpan<byte> data, ReadOnlySpan<byte> signature, HashAlgorithmName hash)
    {
        if (key.Length < 3) return SignatureStatus.Malformed;
        int exponentLength = key[0], offset = 1;
        if (exponentLength == 0)
        {
            exponentLength = (key[1] << 8) | key[2];
            offset = 3;
        }
        if (exponentLength == 0 || key.Length <= offset + exponentLength) return SignatureStatus.Malformed;
        var exponent = key.Slice(offset, exponentLength);
        var modulus = key[(offset + exponentLength)..];
        while (modulus.Length > 0 && modulus[0] == 0) modulus = modulus[1..];
        while (exponent.Length > 0 && exponent[0] == 0) exponent = exponent[1..];
        if (modulus.Length < MinRsaModulus || modulus.Length > MaxRsaModulus || exponent.Length == 0 || exponent.Length > modulus.Length)
            return SignatureStatus.Malformed;
        if (signature.Length > modulus.Length) return SignatureStatus.BadSignature;
        Span<byte> padded = stackalloc byte[MaxRsaModulus];
        padded = padded[..modulus.Length];
        padded[..(modulus.Length - signature.Length)].Clear();
        signature.CopyTo(padded[(modulus.Length - signature.Length)..]);
        try
        {
            var algorithm = hash == HashAlgorithmName.SHA1 ? DnssecAlgorithm.RsaSha1 : DnssecAlgorithm.RsaSha256;
            if (Cached(algorithm, key, out int id) is not RSA rsa)
            {
                rsa = RSA.Create();
                try { rsa.ImportParameters(new RSAParameters { Modulus = modulus.ToArray(), Exponent = exponent.ToArray() }); }
                catch (CryptographicException) { rsa.Dispose(); throw; }
                Keep(algorithm, key, id, rsa);
            }
            return rsa.VerifyData(data, padded, hash, RSASignaturePadding.Pkcs1) ? SignatureStatus.Valid : SignatureStatus.BadSignature;
        }
        catch (CryptographicException)
        {
            // The platform refused the key (e.g. an even modulus): a broken key, not a bad signature.
            return SignatureStatus.Malformed;
        }
    }

    /// <summary>RFC 6605 §4: the key is the point Q as x | y, the signature r | s, each a fixed-size integer.</summary>
    private static SignatureStatus Ecdsa(ReadOnlySpan<byte> key, ReadOnlySpan<byte> data, ReadOnlySpan<byte> signature, ECCurve curve, int size, HashAlgorithmName hash)
    {
        if (key.Length != 2 * size || signature.Length != 2 * size) return SignatureStatus.Malformed;
        try
        {
            var algorithm = size == 32 ? DnssecAlgorithm.EcdsaP256Sha256 : DnssecAlgorithm.EcdsaP384Sha384;
            if (Cached(algorithm, key, out int id) is not ECDsa ecdsa)
            {
                ecdsa = ECDsa.Create(new ECParameters
                {
                    Curve = curve,
                    Q = new ECPoint { X = key[..size].ToArray(), Y = key[size..].ToArray() },
                });
                Keep(algorithm, key, id, ecdsa);
            }
            return ecdsa.VerifyData(data, signature, hash, DSASignatureFormat.IeeeP1363FixedFieldConcatenation)
                ? SignatureStatus.Valid : SignatureStatus.BadSignature;
        }
        catch (CryptographicException)
        {
            // Q not on the curve.
            return SignatureStatus.Malformed;
        }
    }

    /// <summary>RFC 8080 §3-4: a 32-octet public key and a 64-octet signature (RFC 8032).</summary>
    private static SignatureStatus Ed25519(ReadOnlySpan<byte> key, ReadOnlySpan<byte> data, ReadOnlySpan<byte> signature)
    {
        var algorithm = SignatureAlgorithm.Ed25519;
        if (key.Length != algorithm.PublicKeySize || signature.Length != algorithm.SignatureSize) return SignatureStatus.Malformed;
        if (Cached(DnssecAlgorithm.Ed25519, key, out int id) is not PublicKey publicKey)
        {
            if (!PublicKey.TryImport(algorithm, key, KeyBlobFormat.RawPublicKey, out var imported) || imported is null)
                return SignatureStatus.Malformed;
            publicKey = imported;
            Keep(DnssecAlgorithm.Ed25519, key, id, publicKey);
        }
        return algorithm.Verify(publicKey, data, signature) ? SignatureStatus.Valid : SignatureStatus.BadSignature;
    }
}
