using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;

namespace Portcullis.Server.Security;

/// <summary>
/// SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast short-input PRF", 2012): 128-bit key,
/// 64-bit output, two compression rounds per 8-byte block and four finalisation rounds. RFC 9018
/// §4.4 uses it as the PRF of the interoperable DNS server cookie. The BCL has no SipHash.
/// </summary>
/// <remarks>
/// Pure arithmetic on locals: no allocation, no state, safe to call from any number of threads.
/// Key and message words are read little-endian, as the paper specifies, whatever the machine.
/// </remarks>
public static class SipHash
{
    /// <summary>SipHash-2-4 of <paramref name="data"/> under the 16-byte <paramref name="key16"/>.</summary>
    /// <exception cref="ArgumentException">The key is not 16 bytes (a caller bug, not an input error).</exception>
    public static ulong Hash(ReadOnlySpan<byte> key16, ReadOnlySpan<byte> data)
    {
        if (key16.Length != 16)
            throw new ArgumentException("A SipHash key is 16 bytes.", nameof(key16));
        return Hash(
            BinaryPrimitives.ReadUInt64LittleEndian(key16),
            BinaryPrimitives.ReadUInt64LittleEndian(key16[8..]),
            data);
    }

    /// <summary>
    /// SipHash-2-4 with the key already split into its two little-endian words (k0 = bytes 0..7,
    /// k1 = bytes 8..15), so a caller that hashes under one key many times parses it once.
    /// </summary>
    internal static ulong Hash(ulong k0, ulong k1, ReadOnlySpan<byte> data)
    {
        // Initialisation (paper §2.1): the key xored with "somepseudorandomlygeneratedbytes".
        ulong v0 = k0 ^ 0x736f6d6570736575UL;
        ulong v1 = k1 ^ 0x646f72616e646f6dUL;
        ulong v2 = k0 ^ 0x6c7967656e657261UL;
        ulong v3 = k1 ^ 0x7465646279746573UL;

        // Compression: every whole 8-byte word m, little-endian, is xored into v3, mixed by c = 2
        // rounds, then xored into v0.
        int whole = data.Length & ~7;
        for (int i = 0; i < whole; i += 8)
        {
            ulong m = BinaryPrimitives.ReadUInt64LittleEndian(data.Slice(i, 8));
            v3 ^= m;
            Round(ref v0, ref v1, ref v2, ref v3);
            Round(ref v0, ref v1, ref v2, ref v3);
            v0 ^= m;
        }

        // The last word: the 0..7 remaining bytes, little-endian, with the message length mod 256
        // in the top byte (so messages that differ only by trailing zero bytes hash differently).
        ulong last = (ulong)(byte)data.Length << 56;
        ReadOnlySpan<byte> tail = data[whole..];
        for (int i = 0; i < tail.Length; i++)
            last |= (ulong)tail[i] << (8 * i);
        v3 ^= last;
        Round(ref v0, ref v1, ref v2, ref v3);
        Round(ref v0, ref v1, ref v2, ref v3);
        v0 ^= last;

        // Finalisation: 0xff into v2, d = 4 rounds, the four words folded by xor.
        v2 ^= 0xff;
        Round(ref v0, ref v1, ref v2, ref v3);
        Round(ref v0, ref v1, ref v2, ref v3);
        Round(ref v0, ref v1, ref v2, ref v3);
        Round(ref v0, ref v1, ref v2, ref v3);
        return v0 ^ v1 ^ v2 ^ v3;
    }

    /// <summary>One SipRound (paper §2.1, Figure 2.1): add, rotate, xor on two parallel halves.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Round(ref ulong v0, ref ulong v1, ref ulong v2, ref ulong v3)
    {
        v0 += v1; v1 = BitOperations.RotateLeft(v1, 13); v1 ^= v0; v0 = BitOperations.RotateLeft(v0, 32);
        v2 += v3; v3 = BitOperations.RotateLeft(v3, 16); v3 ^= v2;
        v0 += v3; v3 = BitOperations.RotateLeft(v3, 21); v3 ^= v0;
        v2 += v1; v1 = BitOperations.RotateLeft(v1, 17); v1 ^= v2; v2 = BitOperations.RotateLeft(v2, 32);
    }
}
