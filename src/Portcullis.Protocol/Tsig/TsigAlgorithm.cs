using System.Security.Cryptography;
using Portcullis.Protocol.Names;

namespace Portcullis.Protocol.Tsig;

/// <summary>
/// The TSIG MAC algorithms (RFC 8945 §6). HMAC-MD5 is not offered: it is "deprecated" there and
/// no peer we interoperate with needs it; neither is HMAC-SHA224, which .NET lacks (BIND offers
/// it, Knot does too, but neither uses it by default). A request naming either gets BADKEY.
/// </summary>
public enum TsigAlgorithm : byte { HmacSha1, HmacSha256, HmacSha384, HmacSha512 }

public static class TsigAlgorithms
{
    /// <summary>The default for new keys (RFC 8945 §6: "hmac-sha256 ... mandatory to implement").</summary>
    public const TsigAlgorithm Default = TsigAlgorithm.HmacSha256;

    /// <summary>The longest MAC any algorithm makes (SHA-512).</summary>
    public const int MaxMacSize = 64;

    private static readonly byte[][] WireNames =
    [
        DnsName.Parse("hmac-sha1.").Wire.ToArray(),
        DnsName.Parse("hmac-sha256.").Wire.ToArray(),
        DnsName.Parse("hmac-sha384.").Wire.ToArray(),
        DnsName.Parse("hmac-sha512.").Wire.ToArray(),
    ];

    /// <summary>The algorithm's name in wire form (lower case, uncompressed: RFC 8945 §4.2).</summary>
    public static ReadOnlySpan<byte> WireName(TsigAlgorithm algorithm) => WireNames[(int)algorithm];

    /// <summary>The name as written in configuration and by BIND's and Knot's tools ("hmac-sha256").</summary>
    public static string Name(TsigAlgorithm algorithm) => algorithm switch
    {
        TsigAlgorithm.HmacSha1 => "hmac-sha1",
        TsigAlgorithm.HmacSha256 => "hmac-sha256",
        TsigAlgorithm.HmacSha384 => "hmac-sha384",
        _ => "hmac-sha512",
    };

    public static int MacSize(TsigAlgorithm algorithm) => algorithm switch
    {
        TsigAlgorithm.HmacSha1 => 20,
        TsigAlgorithm.HmacSha256 => 32,
        TsigAlgorithm.HmacSha384 => 48,
        _ => 64,
    };

    /// <summary>Text names, case-insensitive, with or without the final dot.</summary>
    public static bool TryParse(ReadOnlySpan<char> text, out TsigAlgorithm algorithm)
    {
        if (text.EndsWith(".")) text = text[..^1];
        for (int i = 0; i < WireNames.Length; i++)
        {
            algorithm = (TsigAlgorithm)i;
            if (text.Equals(Name(algorithm), StringComparison.OrdinalIgnoreCase)) return true;
        }
        algorithm = default;
        return false;
    }

    /// <summary>The algorithm named by a wire-form name (any case), as found in a TSIG record.</summary>
    public static bool TryFromWire(ReadOnlySpan<byte> name, out TsigAlgorithm algorithm)
    {
        for (int i = 0; i < WireNames.Length; i++)
        {
            if (DnsName.EqualsIgnoreCase(name, WireNames[i])) { algorithm = (TsigAlgorithm)i; return true; }
        }
        algorithm = default;
        return false;
    }

    /// <summary>HMAC of <paramref name="data"/> into <paramref name="mac"/>; returns the MAC size.</summary>
    public static int Compute(TsigAlgorithm algorithm, ReadOnlySpan<byte> secret, ReadOnlySpan<byte> data, Span<byte> mac) => algorithm switch
    {
        TsigAlgorithm.HmacSha1 => HMACSHA1.HashData(secret, data, mac),
        TsigAlgorithm.HmacSha256 => HMACSHA256.HashData(secret, data, mac),
        TsigAlgorithm.HmacSha384 => HMACSHA384.HashData(secret, data, mac),
        _ => HMACSHA512.HashData(secret, data, mac),
    };

    /// <summary>An incremental HMAC, for streams of messages (zone transfers).</summary>
    public static IncrementalHash CreateIncremental(TsigAlgorithm algorithm, byte[] secret) => algorithm switch
    {
        TsigAlgorithm.HmacSha1 => IncrementalHash.CreateHMAC(HashAlgorithmName.SHA1, secret),
        TsigAlgorithm.HmacSha256 => IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, secret),
        TsigAlgorithm.HmacSha384 => IncrementalHash.CreateHMAC(HashAlgorithmName.SHA384, secret),
        _ => IncrementalHash.CreateHMAC(HashAlgorithmName.SHA512, secret),
    };
}
