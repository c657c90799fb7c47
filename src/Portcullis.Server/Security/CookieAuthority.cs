using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Portcullis.Server.Security;

/// <summary>What a query's COOKIE option (RFC 7873 §4) amounts to, as seen by this server.</summary>
public enum CookieStatus : byte
{
    /// <summary>Option length neither 8 nor 16..40: answer FORMERR (RFC 7873 §5.2.2).</summary>
    Malformed,

    /// <summary>A client cookie and no server cookie (RFC 7873 §5.2.3): send one back.</summary>
    ClientOnly,

    /// <summary>
    /// A server cookie that is not ours, not RFC 9018 version 1, too old, too far in the future,
    /// or made for another client cookie or address (RFC 7873 §5.2.4).
    /// </summary>
    BadServerCookie,

    /// <summary>Our server cookie, made for this client, inside its lifetime (RFC 7873 §5.2.5).</summary>
    Valid,

    /// <summary>Valid, but issued more than 30 minutes ago: send a fresh one (RFC 9018 §4.3).</summary>
    ValidNeedsRefresh,
}

/// <summary>
/// Issues and checks DNS server cookies in the interoperable format of RFC 9018 §4, so that every
/// server of an anycast set sharing the secret accepts the cookies the others issued:
/// <code>
/// Server Cookie = Version (1) = 1 | Reserved (3) = 0 | Timestamp (4, big-endian, seconds) | Hash (8)
/// Hash = SipHash-2-4(secret, Client Cookie | Version | Reserved | Timestamp | Client-IP)
/// </code>
/// Client-IP is the 4 or 16 address bytes as seen by the server. The hash is written in the byte
/// order the SipHash reference implementation produces (the 64-bit result little-endian), which is
/// what the RFC 9018 Appendix A examples show.
/// </summary>
/// <remarks>
/// <para>Secrets: the current one creates and checks; the previous one only checks, so cookies
/// issued before a rollover stay good while clients learn new ones (RFC 7873 §7.1, RFC 9018 §5).
/// Both sit in one immutable object behind a volatile reference; <see cref="Rotate"/> swaps the
/// reference, so a concurrent <see cref="Check"/> sees either the old pair or the new pair, never
/// a mix.</para>
/// <para><see cref="Check"/> and <see cref="WriteServerCookie"/> run once per query from several
/// UDP and TCP threads: they allocate nothing (the hash input lives on the stack), take no lock,
/// and throw only for caller bugs (wrong span lengths of the arguments the server itself supplies),
/// never because of what a client sent.</para>
/// </remarks>
public sealed class CookieAuthority
{
    /// <summary>Length of a client cookie (RFC 7873 §4).</summary>
    public const int ClientCookieLength = 8;

    /// <summary>Length of an RFC 9018 server cookie.</summary>
    public const int ServerCookieLength = 16;

    /// <summary>Length of a server secret: a 128-bit SipHash key (RFC 9018 §4.4).</summary>
    public const int SecretLength = 16;

    /// <summary>RFC 9018 §4.3: a cookie more than one hour old is not accepted.</summary>
    public const int MaxAgeSeconds = 3600;

    /// <summary>RFC 9018 §4.3: a cookie more than five minutes in the future is not accepted.</summary>
    public const int MaxFutureSeconds = 300;

    /// <summary>RFC 9018 §4.3: a cookie older than half an hour should be replaced by a fresh one.</summary>
    public const int RefreshAgeSeconds = 1800;

    private const byte Version1 = 1;

    // Client cookie (8) + version, reserved, timestamp (8) + IPv6 address (16).
    private const int MaxHashInputLength = ClientCookieLength + 8 + 16;

    /// <summary>
    /// The current and previous secret as SipHash key words, parsed once. Immutable: a rotation
    /// builds a new instance.
    /// </summary>
    private sealed class Secrets(ulong k0, ulong k1, bool hasPrevious, ulong p0, ulong p1)
    {
        public readonly ulong K0 = k0, K1 = k1;
        public readonly bool HasPrevious = hasPrevious;
        public readonly ulong P0 = p0, P1 = p1;
    }

    private volatile Secrets _secrets;

    /// <summary>
    /// An authority creating cookies with <paramref name="secret16"/> and also accepting those made
    /// with <paramref name="previousSecret16"/> when it is given (16 bytes; empty for none).
    /// </summary>
    /// <exception cref="ArgumentException">A secret is not 16 bytes.</exception>
    public CookieAuthority(ReadOnlySpan<byte> secret16, ReadOnlySpan<byte> previousSecret16 = default)
    {
        if (secret16.Length != SecretLength)
            throw new ArgumentException("A cookie secret is 16 bytes.", nameof(secret16));
        if (previousSecret16.Length is not 0 and not SecretLength)
            throw new ArgumentException("A cookie secret is 16 bytes (or empty for none).", nameof(previousSecret16));
        _secrets = previousSecret16.IsEmpty
            ? new Secrets(Word0(secret16), Word1(secret16), false, 0, 0)
            : new Secrets(Word0(secret16), Word1(secret16), true, Word0(previousSecret16), Word1(previousSecret16));
    }

    /// <summary>
    /// An authority with a fresh random secret from the system CSPRNG: what a single server uses
    /// when no shared secret is configured (BIND does the same at start).
    /// </summary>
    public static CookieAuthority CreateRandom()
    {
        Span<byte> secret = stackalloc byte[SecretLength];
        RandomNumberGenerator.Fill(secret);
        var authority = new CookieAuthority(secret);
        CryptographicOperations.ZeroMemory(secret);
        return authority;
    }

    /// <summary>
    /// Makes <paramref name="newSecret16"/> the secret that creates cookies; the current one becomes
    /// the previous one (checked, never used to create) and the previous one is forgotten, so a
    /// cookie survives exactly one rotation. Safe while other threads call <see cref="Check"/>.
    /// </summary>
    /// <exception cref="ArgumentException">The secret is not 16 bytes.</exception>
    public void Rotate(ReadOnlySpan<byte> newSecret16)
    {
        if (newSecret16.Length != SecretLength)
            throw new ArgumentException("A cookie secret is 16 bytes.", nameof(newSecret16));
        ulong n0 = Word0(newSecret16), n1 = Word1(newSecret16);
        // Compare-and-swap so that two rotations racing each other both take effect in some order
        // (a plain read-then-write could drop one and leave a secret unaccepted too early).
        Secrets seen = _secrets;
        while (true)
        {
            var next = new Secrets(n0, n1, true, seen.K0, seen.K1);
            Secrets was = Interlocked.CompareExchange(ref _secrets, next, seen);
            if (ReferenceEquals(was, seen)) return;
            seen = was;
        }
    }

    /// <summary>
    /// Classifies a query's COOKIE option payload (<paramref name="cookieOptionData"/>: the client
    /// cookie, then the server cookie if any) from the client at <paramref name="clientAddress"/>
    /// (4 or 16 bytes; an IPv4-mapped IPv6 source should be passed as its 4 IPv4 bytes, as the
    /// other servers of an anycast set would see it) at <paramref name="nowSeconds"/> (Unix time,
    /// modulo 2^32).
    /// </summary>
    /// <exception cref="ArgumentException">The address is neither 4 nor 16 bytes (a caller bug).</exception>
    public CookieStatus Check(ReadOnlySpan<byte> cookieOptionData, ReadOnlySpan<byte> clientAddress, uint nowSeconds)
    {
        if (clientAddress.Length is not 4 and not 16)
            throw new ArgumentException("A client address is 4 or 16 bytes.", nameof(clientAddress));

        // RFC 7873 §4: client cookie 8 bytes, server cookie 8..32 bytes; any other total is
        // malformed and answered with FORMERR (§5.2.2).
        int length = cookieOptionData.Length;
        if (length == ClientCookieLength) return CookieStatus.ClientOnly;
        if (length < ClientCookieLength + 8 || length > ClientCookieLength + 32) return CookieStatus.Malformed;

        // Well-formed, but only a 16-byte version 1 cookie can be one of ours (RFC 9018 §4.1).
        if (length != ClientCookieLength + ServerCookieLength) return CookieStatus.BadServerCookie;
        ReadOnlySpan<byte> server = cookieOptionData.Slice(ClientCookieLength, ServerCookieLength);
        if (server[0] != Version1) return CookieStatus.BadServerCookie;

        // RFC 9018 §4.3: the timestamp is compared with serial-number arithmetic (RFC 1982, 32
        // bits), so the check keeps working when Unix time wraps in 2106. The signed difference is
        // exact for distances below 2^31 s; the one undefined distance, 2^31, comes out as
        // int.MinValue, i.e. far in the future, and is rejected.
        uint timestamp = BinaryPrimitives.ReadUInt32BigEndian(server[4..]);
        int age = unchecked((int)(nowSeconds - timestamp));
        if (age > MaxAgeSeconds || age < -MaxFutureSeconds) return CookieStatus.BadServerCookie;

        // The hash input is built from the bytes as received, Reserved included: RFC 9018 §4.2
        // has servers set Reserved to zero when they create a cookie, and Appendix A.3 shows a
        // cookie with Reserved = abcdef that is still valid because the hash covers those bytes.
        // Rejecting non-zero Reserved would break interoperation with a future revision.
        Span<byte> input = stackalloc byte[MaxHashInputLength];
        int inputLength = ClientCookieLength + 8 + clientAddress.Length;
        cookieOptionData[..(ClientCookieLength + 8)].CopyTo(input);
        clientAddress.CopyTo(input[(ClientCookieLength + 8)..]);
        input = input[..inputLength];

        // Compared as one 64-bit word: a single comparison, with no early exit that would tell a
        // forger how many leading hash bytes were right (the point of a constant-time compare).
        ulong presented = BinaryPrimitives.ReadUInt64LittleEndian(server[8..]);
        Secrets secrets = _secrets; // read once: the pair is consistent even during a rotation
        bool ours = SipHash.Hash(secrets.K0, secrets.K1, input) == presented
            || (secrets.HasPrevious && SipHash.Hash(secrets.P0, secrets.P1, input) == presented);
        if (!ours) return CookieStatus.BadServerCookie;

        return age > RefreshAgeSeconds ? CookieStatus.ValidNeedsRefresh : CookieStatus.Valid;
    }

    /// <summary>
    /// Writes into <paramref name="destination16"/> the RFC 9018 server cookie for
    /// <paramref name="clientCookie8"/> from <paramref name="clientAddress"/> (4 or 16 bytes),
    /// stamped <paramref name="nowSeconds"/>, under the current secret.
    /// </summary>
    /// <exception cref="ArgumentException">A span has the wrong length (a caller bug).</exception>
    public void WriteServerCookie(Span<byte> destination16, ReadOnlySpan<byte> clientCookie8,
        ReadOnlySpan<byte> clientAddress, uint nowSeconds)
    {
        if (destination16.Length < ServerCookieLength)
            throw new ArgumentException("A server cookie is 16 bytes.", nameof(destination16));
        if (clientCookie8.Length != ClientCookieLength)
            throw new ArgumentException("A client cookie is 8 bytes.", nameof(clientCookie8));
        if (clientAddress.Length is not 4 and not 16)
            throw new ArgumentException("A client address is 4 or 16 bytes.", nameof(clientAddress));

        // Built on the stack first, so a destination overlapping the client cookie is harmless.
        Span<byte> input = stackalloc byte[MaxHashInputLength];
        clientCookie8.CopyTo(input);
        Span<byte> header = input.Slice(ClientCookieLength, 8);
        header[0] = Version1;
        header[1] = 0; header[2] = 0; header[3] = 0; // Reserved: zero on creation (RFC 9018 §4.2)
        BinaryPrimitives.WriteUInt32BigEndian(header[4..], nowSeconds);
        clientAddress.CopyTo(input[(ClientCookieLength + 8)..]);

        Secrets secrets = _secrets;
        ulong hash = SipHash.Hash(secrets.K0, secrets.K1, input[..(ClientCookieLength + 8 + clientAddress.Length)]);
        header.CopyTo(destination16);
        BinaryPrimitives.WriteUInt64LittleEndian(destination16.Slice(8, 8), hash);
    }

    private static ulong Word0(ReadOnlySpan<byte> key16) => BinaryPrimitives.ReadUInt64LittleEndian(key16);

    private static ulong Word1(ReadOnlySpan<byte> key16) => BinaryPrimitives.ReadUInt64LittleEndian(key16[8..]);
}
