using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.Wire;

namespace Portcullis.Protocol.Tsig;

/// <summary>TSIG error codes (RFC 8945 §3), carried in the TSIG record's error field.</summary>
public enum TsigError : ushort { NoError = 0, BadSig = 16, BadKey = 17, BadTime = 18, BadTrunc = 22 }

/// <summary>What a check of a signed message found. <see cref="FormErr"/> is not a TSIG error code:
/// the message is malformed and is answered FORMERR (RFC 8945 §5.2.2.1).</summary>
public enum TsigStatus : byte { Ok, BadSig, BadKey, BadTime, BadTrunc, FormErr }

/// <summary>Whether a message carries a TSIG record.</summary>
public enum TsigPresence : byte { None, Found, Malformed }

/// <summary>
/// A TSIG record found in a message (RFC 8945 §4.2), as offsets into that message: the owner name
/// (the key's name), the algorithm name, Time Signed, Fudge, the MAC, Original ID, Error and Other
/// Data. <see cref="Start"/> is where the record begins: the signed part of the message ends there.
/// </summary>
public readonly struct TsigRecord
{
    public int Start { get; init; }
    public int End { get; init; }
    public int AlgorithmOffset { get; init; }
    public int AlgorithmLength { get; init; }
    public long TimeSigned { get; init; }
    public ushort Fudge { get; init; }
    public int MacOffset { get; init; }
    public int MacLength { get; init; }
    public ushort OriginalId { get; init; }
    public ushort Error { get; init; }
    public int OtherOffset { get; init; }
    public int OtherLength { get; init; }

    public ReadOnlySpan<byte> Algorithm(ReadOnlySpan<byte> message) => message.Slice(AlgorithmOffset, AlgorithmLength);
    public ReadOnlySpan<byte> Mac(ReadOnlySpan<byte> message) => message.Slice(MacOffset, MacLength);
    public ReadOnlySpan<byte> Other(ReadOnlySpan<byte> message) => message.Slice(OtherOffset, OtherLength);

    /// <summary>The key name (wire form, as sent: its case may differ from ours) into <paramref name="destination"/> (255 octets).</summary>
    public int KeyName(ReadOnlySpan<byte> message, Span<byte> destination)
    {
        int offset = Start;
        return WireName.TryRead(message, ref offset, destination, out int length, out _) ? length : 0;
    }
}

/// <summary>
/// TSIG (RFC 8945): finding the record, computing and checking MACs, signing messages. The message
/// digested is the message as it was before the TSIG record was added (ARCOUNT one less, the ID
/// the Original ID), preceded by the request's or the previous message's MAC when there is one,
/// and followed by the "TSIG variables" (§4.3.3) or, for the later messages of a stream, the timers
/// alone (§5.3.1). Nothing here allocates on the managed heap: the digest input is assembled in a
/// pooled buffer and hashed in one call.
/// </summary>
public static class Tsig
{
    /// <summary>The fudge we send and accept by default: five minutes (RFC 8945 §10 recommends 300 s).</summary>
    public const ushort DefaultFudge = 300;
    private const int HeaderSize = 12;
    private const ushort ClassAny = 255;

    /// <summary>
    /// Octets a TSIG record signed with <paramref name="key"/> takes at most: the owner name, the
    /// fixed fields, the algorithm name, a full MAC and six octets of Other Data (BADTIME).
    /// </summary>
    public static int MaxRecordSize(TsigKey key) =>
        key.NameWire.Length + 10 + TsigAlgorithms.WireName(key.Algorithm).Length + 6 + 2 + 2 + TsigAlgorithms.MacSize(key.Algorithm) + 2 + 2 + 2 + 6;

    /// <summary>Finds the TSIG record of a message: it must be the last record of the additional
    /// section, and no other record may be a TSIG (RFC 8945 §5.2: otherwise FORMERR).</summary>
    public static TsigPresence Find(ReadOnlySpan<byte> message, out TsigRecord record)
    {
        record = default;
        if (message.Length < HeaderSize) return TsigPresence.Malformed;
        int qd = BinaryPrimitives.ReadUInt16BigEndian(message[4..]);
        int total = BinaryPrimitives.ReadUInt16BigEndian(message[6..]) + BinaryPrimitives.ReadUInt16BigEndian(message[8..])
            + BinaryPrimitives.ReadUInt16BigEndian(message[10..]);
        if (BinaryPrimitives.ReadUInt16BigEndian(message[10..]) == 0) return TsigPresence.None;
        int offset = HeaderSize;
        for (int i = 0; i < qd; i++)
        {
            if (!WireName.TrySkip(message, ref offset) || offset + 4 > message.Length) return TsigPresence.Malformed;
            offset += 4;
        }
        for (int i = 0; i < total; i++)
        {
            int start = offset;
            if (!WireName.TrySkip(message, ref offset) || offset + 10 > message.Length) return TsigPresence.Malformed;
            var type = (RecordType)BinaryPrimitives.ReadUInt16BigEndian(message[offset..]);
            int rdLength = BinaryPrimitives.ReadUInt16BigEndian(message[(offset + 8)..]);
            offset += 10 + rdLength;
            if (offset > message.Length) return TsigPresence.Malformed;
            if (type == RecordType.TSIG)
            {
                if (i != total - 1) return TsigPresence.Malformed;
                return TryParseAt(message, start, out record) ? TsigPresence.Found : TsigPresence.Malformed;
            }
        }
        return TsigPresence.None;
    }

    /// <summary>Parses the TSIG record that starts at <paramref name="start"/> and must end the message.</summary>
    public static bool TryParseAt(ReadOnlySpan<byte> message, int start, out TsigRecord record)
    {
        record = default;
        int offset = start;
        if (!WireName.TrySkip(message, ref offset) || offset + 10 > message.Length) return false;
        if ((RecordType)BinaryPrimitives.ReadUInt16BigEndian(message[offset..]) != RecordType.TSIG) return false;
        // RFC 8945 §4.2: CLASS ANY, TTL 0.
        if (BinaryPrimitives.ReadUInt16BigEndian(message[(offset + 2)..]) != ClassAny) return false;
        if (BinaryPrimitives.ReadUInt32BigEndian(message[(offset + 4)..]) != 0) return false;
        int rdLength = BinaryPrimitives.ReadUInt16BigEndian(message[(offset + 8)..]);
        offset += 10;
        int end = offset + rdLength;
        if (end != message.Length) return false;
        // The algorithm name is never compressed (RFC 8945 §4.2): labels up to the root label.
        int algorithm = offset;
        while (true)
        {
            if (offset >= end) return false;
            int label = message[offset];
            if (label == 0) { offset++; break; }
            if (label > 63) return false;
            offset += 1 + label;
        }
        if (offset - algorithm > 255 || offset + 10 > end) return false;
        long time = ((long)BinaryPrimitives.ReadUInt16BigEndian(message[offset..]) << 32) | BinaryPrimitives.ReadUInt32BigEndian(message[(offset + 2)..]);
        ushort fudge = BinaryPrimitives.ReadUInt16BigEndian(message[(offset + 6)..]);
        int macLength = BinaryPrimitives.ReadUInt16BigEndian(message[(offset + 8)..]);
        offset += 10;
        int mac = offset;
        offset += macLength;
        if (offset + 6 > end) return false;
        ushort originalId = BinaryPrimitives.ReadUInt16BigEndian(message[offset..]);
        ushort error = BinaryPrimitives.ReadUInt16BigEndian(message[(offset + 2)..]);
        int otherLength = BinaryPrimitives.ReadUInt16BigEndian(message[(offset + 4)..]);
        offset += 6;
        if (offset + otherLength != end) return false;
        record = new TsigRecord
        {
            Start = start, End = end, AlgorithmOffset = algorithm, AlgorithmLength = mac - 10 - algorithm,
            TimeSigned = time, Fudge = fudge, MacOffset = mac, MacLength = macLength,
            OriginalId = originalId, Error = error, OtherOffset = offset, OtherLength = otherLength,
        };
        return true;
    }

    /// <summary>
    /// Checks the MAC of a signed message (RFC 8945 §5.2.1-5.2.2): the algorithm must be the key's,
    /// the MAC not longer than the hash nor shorter than half of it or 10 octets (FORMERR), and not
    /// truncated at all (our policy, as Knot's: BADTRUNC), and equal to the one we compute.
    /// <paramref name="priorMac"/> is the request's MAC (checking a response) or the previous
    /// message's (a stream); <paramref name="hasPrior"/> false for a request.
    /// </summary>
    public static TsigStatus VerifyMac(ReadOnlySpan<byte> message, in TsigRecord record, TsigKey key,
        ReadOnlySpan<byte> priorMac, bool hasPrior, bool timersOnly = false, ReadOnlySpan<byte> unsignedBefore = default)
    {
        if (!TsigAlgorithms.TryFromWire(record.Algorithm(message), out var algorithm) || algorithm != key.Algorithm)
            return TsigStatus.BadKey;
        int hashSize = TsigAlgorithms.MacSize(algorithm);
        if (record.MacLength > hashSize || record.MacLength < Math.Max(10, hashSize / 2)) return TsigStatus.FormErr;
        if (record.MacLength < hashSize) return TsigStatus.BadTrunc;
        Span<byte> variables = stackalloc byte[VariablesMaxSize];
        int variablesLength = WriteVariables(variables, key, record.TimeSigned, record.Fudge, record.Error, record.Other(message), timersOnly);
        Span<byte> expected = stackalloc byte[TsigAlgorithms.MaxMacSize];
        ushort arcount = (ushort)(BinaryPrimitives.ReadUInt16BigEndian(message[10..]) - 1);
        ComputeMac(key, priorMac, hasPrior, unsignedBefore, message[..record.Start], record.OriginalId, arcount, variables[..variablesLength], expected);
        return CryptographicOperations.FixedTimeEquals(expected[..hashSize], record.Mac(message)) ? TsigStatus.Ok : TsigStatus.BadSig;
    }

    /// <summary>RFC 8945 §5.2.3: the signing time must be within Fudge seconds of ours.</summary>
    public static bool TimeIsValid(in TsigRecord record, long now) => Math.Abs(now - record.TimeSigned) <= record.Fudge;

    /// <summary>
    /// Signs <c>message[..length]</c>: computes the MAC and appends the TSIG record, incrementing
    /// ARCOUNT. Returns the new length, or -1 when the record does not fit. The MAC is copied to
    /// <paramref name="macOut"/> (a response's or a stream's next message needs it).
    /// </summary>
    public static int Sign(Span<byte> message, int length, TsigKey key, ReadOnlySpan<byte> priorMac, bool hasPrior,
        long timeSigned, ushort fudge, TsigError error, ReadOnlySpan<byte> other, bool timersOnly, Span<byte> macOut, out int macLength)
    {
        macLength = TsigAlgorithms.MacSize(key.Algorithm);
        if (length < HeaderSize) return -1;
        Span<byte> variables = stackalloc byte[VariablesMaxSize];
        int variablesLength = WriteVariables(variables, key, timeSigned, fudge, (ushort)error, other, timersOnly);
        ushort id = BinaryPrimitives.ReadUInt16BigEndian(message);
        ushort arcount = BinaryPrimitives.ReadUInt16BigEndian(message[10..]);
        Span<byte> mac = stackalloc byte[TsigAlgorithms.MaxMacSize];
        ComputeMac(key, priorMac, hasPrior, default, message[..length], id, arcount, variables[..variablesLength], mac);
        mac[..macLength].CopyTo(macOut);
        return Append(message, length, key.NameWire, TsigAlgorithms.WireName(key.Algorithm), timeSigned, fudge, mac[..macLength], id, error, other);
    }

    /// <summary>
    /// Appends an unsigned TSIG record (MAC size 0), as the answer to a request whose key is unknown
    /// or whose MAC is wrong must carry (RFC 8945 §5.3.2: "MUST NOT send back a signed error").
    /// </summary>
    public static int AppendUnsigned(Span<byte> message, int length, ReadOnlySpan<byte> keyName, ReadOnlySpan<byte> algorithm,
        long timeSigned, ushort fudge, TsigError error) =>
        Append(message, length, keyName, algorithm, timeSigned, fudge, default, BinaryPrimitives.ReadUInt16BigEndian(message), error, default);

    private static int Append(Span<byte> message, int length, ReadOnlySpan<byte> keyName, ReadOnlySpan<byte> algorithm,
        long timeSigned, ushort fudge, ReadOnlySpan<byte> mac, ushort originalId, TsigError error, ReadOnlySpan<byte> other)
    {
        int rdLength = algorithm.Length + 6 + 2 + 2 + mac.Length + 2 + 2 + 2 + other.Length;
        int size = keyName.Length + 10 + rdLength;
        if (length + size > message.Length) return -1;
        var w = message[length..];
        keyName.CopyTo(w);
        w = w[keyName.Length..];
        BinaryPrimitives.WriteUInt16BigEndian(w, (ushort)RecordType.TSIG);
        BinaryPrimitives.WriteUInt16BigEndian(w[2..], ClassAny);
        BinaryPrimitives.WriteUInt32BigEndian(w[4..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(w[8..], (ushort)rdLength);
        w = w[10..];
        algorithm.CopyTo(w);
        w = w[algorithm.Length..];
        WriteTime(w, timeSigned);
        BinaryPrimitives.WriteUInt16BigEndian(w[6..], fudge);
        BinaryPrimitives.WriteUInt16BigEndian(w[8..], (ushort)mac.Length);
        w = w[10..];
        mac.CopyTo(w);
        w = w[mac.Length..];
        BinaryPrimitives.WriteUInt16BigEndian(w, originalId);
        BinaryPrimitives.WriteUInt16BigEndian(w[2..], (ushort)error);
        BinaryPrimitives.WriteUInt16BigEndian(w[4..], (ushort)other.Length);
        other.CopyTo(w[6..]);
        BinaryPrimitives.WriteUInt16BigEndian(message[10..], (ushort)(BinaryPrimitives.ReadUInt16BigEndian(message[10..]) + 1));
        return length + size;
    }

    /// <summary>Other Data of a BADTIME answer: the server's time, 48 bits (RFC 8945 §5.2.3).</summary>
    public static void WriteTime(Span<byte> destination, long seconds)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination, (ushort)(seconds >> 32));
        BinaryPrimitives.WriteUInt32BigEndian(destination[2..], (uint)seconds);
    }

    // Key name ≤ 255, class 2, TTL 4, algorithm ≤ 255, time 6, fudge 2, error 2, other length 2,
    // other data: only BADTIME's 6 octets are defined; up to 64 are digested (see WriteVariables).
    private const int VariablesMaxSize = 255 + 2 + 4 + 255 + 6 + 2 + 2 + 2 + 64;

    private static int WriteVariables(Span<byte> destination, TsigKey key, long timeSigned, ushort fudge, ushort error, ReadOnlySpan<byte> other, bool timersOnly)
    {
        int n = 0;
        if (!timersOnly)
        {
            key.NameWire.CopyTo(destination);
            n = key.NameWire.Length;
            BinaryPrimitives.WriteUInt16BigEndian(destination[n..], ClassAny);
            BinaryPrimitives.WriteUInt32BigEndian(destination[(n + 2)..], 0);
            n += 6;
            var algorithm = TsigAlgorithms.WireName(key.Algorithm);
            algorithm.CopyTo(destination[n..]);
            n += algorithm.Length;
        }
        WriteTime(destination[n..], timeSigned);
        BinaryPrimitives.WriteUInt16BigEndian(destination[(n + 6)..], fudge);
        n += 8;
        if (timersOnly) return n;
        // Other Data longer than the room left is cut: its MAC then fails, which is the right
        // outcome for a record no peer produces (only BADTIME's 6 octets are defined).
        int otherLength = Math.Min(other.Length, destination.Length - n - 4);
        BinaryPrimitives.WriteUInt16BigEndian(destination[n..], error);
        BinaryPrimitives.WriteUInt16BigEndian(destination[(n + 2)..], (ushort)other.Length);
        other[..otherLength].CopyTo(destination[(n + 4)..]);
        return n + 4 + otherLength;
    }

    private static void ComputeMac(TsigKey key, ReadOnlySpan<byte> priorMac, bool hasPrior, ReadOnlySpan<byte> unsignedBefore,
        ReadOnlySpan<byte> message, ushort id, ushort arcount, ReadOnlySpan<byte> variables, Span<byte> mac)
    {
        int size = (hasPrior ? 2 + priorMac.Length : 0) + unsignedBefore.Length + message.Length + variables.Length;
        byte[] rented = ArrayPool<byte>.Shared.Rent(size);
        try
        {
            var d = rented.AsSpan();
            int n = 0;
            if (hasPrior)
            {
                BinaryPrimitives.WriteUInt16BigEndian(d, (ushort)priorMac.Length);
                priorMac.CopyTo(d[2..]);
                n = 2 + priorMac.Length;
            }
            unsignedBefore.CopyTo(d[n..]);
            n += unsignedBefore.Length;
            message.CopyTo(d[n..]);
            BinaryPrimitives.WriteUInt16BigEndian(d[n..], id);
            BinaryPrimitives.WriteUInt16BigEndian(d[(n + 10)..], arcount);
            n += message.Length;
            variables.CopyTo(d[n..]);
            n += variables.Length;
            TsigAlgorithms.Compute(key.Algorithm, key.Secret, d[..n], mac);
        }
        finally { ArrayPool<byte>.Shared.Return(rented); }
    }
}
