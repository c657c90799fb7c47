using System.Security.Cryptography;
using Portcullis.Protocol.Names;

namespace Portcullis.Protocol.Tsig;

/// <summary>
/// A shared TSIG key (RFC 8945 §3): its name (a domain name, compared without regard to case), its
/// algorithm and its secret. Immutable.
/// </summary>
public sealed class TsigKey
{
    /// <summary>Secrets shorter than this are refused: RFC 8945 §3 asks for at least the MAC size;
    /// we accept down to 16 octets (128 bits) so that keys made by older tools still load.</summary>
    public const int MinSecretLength = 16;

    private readonly byte[] _secret;
    private readonly byte[] _nameWire;

    public TsigKey(DnsName name, TsigAlgorithm algorithm, ReadOnlySpan<byte> secret)
    {
        Name = name.ToLowerInvariant();
        _nameWire = Name.Wire.ToArray();
        Algorithm = algorithm;
        _secret = secret.ToArray();
    }

    /// <summary>The key's name, lower case.</summary>
    public DnsName Name { get; }
    /// <summary>The name in canonical wire form (lower case, uncompressed), as MACs cover it.</summary>
    public ReadOnlySpan<byte> NameWire => _nameWire;
    public TsigAlgorithm Algorithm { get; }
    public ReadOnlySpan<byte> Secret => _secret;
    internal byte[] SecretArray => _secret;
    public string SecretBase64 => Convert.ToBase64String(_secret);

    /// <summary>A new key with a random secret as long as the algorithm's MAC (what tsig-keygen and keymgr make).</summary>
    public static TsigKey Generate(DnsName name, TsigAlgorithm algorithm = TsigAlgorithms.Default) =>
        new(name, algorithm, RandomNumberGenerator.GetBytes(TsigAlgorithms.MacSize(algorithm)));

    /// <summary>
    /// A key from its three parts as text (configuration): a name, an algorithm name and a base64
    /// secret. On failure, <paramref name="error"/> says which part is wrong.
    /// </summary>
    public static bool TryCreate(string name, string algorithm, string secret, out TsigKey? key, out string? error)
    {
        key = null;
        if (!DnsName.TryParse(name.EndsWith('.') ? name : name + ".", null, out var dnsName, out error))
        {
            error = $"key name '{name}': {error}";
            return false;
        }
        if (!TsigAlgorithms.TryParse(algorithm, out var alg))
        {
            error = $"algorithm '{algorithm}': not one of hmac-sha1, hmac-sha256, hmac-sha384, hmac-sha512";
            return false;
        }
        byte[] bytes;
        try { bytes = Convert.FromBase64String(secret); }
        catch (FormatException)
        {
            error = $"secret of key '{name}': not base64";
            return false;
        }
        if (bytes.Length < MinSecretLength)
        {
            error = $"secret of key '{name}': {bytes.Length} octets, fewer than {MinSecretLength}";
            return false;
        }
        key = new TsigKey(dnsName!, alg, bytes);
        error = null;
        return true;
    }

    /// <summary>
    /// A key given on a command line, in either order people type: "name:algorithm:secret" (this
    /// project's), "algorithm:name:secret" (dig -y and kdig -y), or "name:secret" (hmac-sha256).
    /// </summary>
    public static bool TryParseSpec(string spec, out TsigKey? key, out string? error)
    {
        var parts = spec.Split(':');
        key = null;
        switch (parts.Length)
        {
            case 2:
                return TryCreate(parts[0], TsigAlgorithms.Name(TsigAlgorithms.Default), parts[1], out key, out error);
            case 3:
                if (TsigAlgorithms.TryParse(parts[0], out _) && !TsigAlgorithms.TryParse(parts[1], out _))
                    return TryCreate(parts[1], parts[0], parts[2], out key, out error);
                return TryCreate(parts[0], parts[1], parts[2], out key, out error);
            default:
                error = $"'{spec}': expected name:algorithm:secret (or algorithm:name:secret, or name:secret)";
                return false;
        }
    }

    public override string ToString() => $"{Name} ({TsigAlgorithms.Name(Algorithm)})";
}

/// <summary>The keys a server knows, found by the name in a request's TSIG record. Immutable; a few
/// keys at most in practice, so a linear search (no allocation, no hashing of attacker input).</summary>
public sealed class TsigKeyRing
{
    private readonly TsigKey[] _keys;

    public TsigKeyRing(IEnumerable<TsigKey> keys) => _keys = [.. keys];

    public static readonly TsigKeyRing Empty = new([]);

    public int Count => _keys.Length;
    public IReadOnlyList<TsigKey> Keys => _keys;

    /// <summary>The key with this wire-form name (any case), or null.</summary>
    public TsigKey? Find(ReadOnlySpan<byte> nameWire)
    {
        foreach (var key in _keys)
            if (DnsName.EqualsIgnoreCase(nameWire, key.NameWire)) return key;
        return null;
    }
}
