using System.Buffers.Binary;

namespace Portcullis.Protocol.Tsig;

/// <summary>
/// Signs the messages of one response stream (a zone transfer) in order, every one of them
/// (RFC 8945 §5.3.1): the first as a normal response (the request's MAC, then the message, then
/// all the TSIG variables), each later one with the previous message's MAC and only the timers.
/// One per stream; not thread-safe (a stream is written by one thread).
/// </summary>
public sealed class TsigStreamSigner : IMessageSigner
{
    private readonly TsigKey _key;
    private readonly Func<long> _now;
    private readonly byte[] _prior = new byte[TsigAlgorithms.MaxMacSize];
    private int _priorLength;
    private bool _first = true;

    /// <param name="requestMac">The MAC of the signed request this stream answers.</param>
    /// <param name="now">Seconds since the epoch (the time signed of each message).</param>
    public TsigStreamSigner(TsigKey key, ReadOnlySpan<byte> requestMac, Func<long> now)
    {
        _key = key;
        _now = now;
        requestMac.CopyTo(_prior);
        _priorLength = requestMac.Length;
        Reserve = Tsig.MaxRecordSize(key);
    }

    public int Reserve { get; }

    public int Sign(Span<byte> message, int length)
    {
        int signed = Tsig.Sign(message, length, _key, _prior.AsSpan(0, _priorLength), hasPrior: true, _now(), Tsig.DefaultFudge,
            TsigError.NoError, default, timersOnly: !_first, _prior, out _priorLength);
        _first = false;
        return signed;
    }
}

/// <summary>What checking one message of a signed exchange found.</summary>
public enum TsigCheck : byte
{
    /// <summary>Signed, and the MAC and time are right.</summary>
    Verified,
    /// <summary>An intermediate message without TSIG, accepted (RFC 8945 §5.3.1: up to 99 in a row).</summary>
    Unsigned,
    /// <summary>A message that must be signed is not (the first, or the 100th unsigned in a row).</summary>
    Missing,
    /// <summary>The TSIG record is malformed or not last.</summary>
    Malformed,
    /// <summary>The MAC does not verify, or another key or algorithm signed it.</summary>
    BadSignature,
    /// <summary>Signed outside the fudge window of our clock.</summary>
    BadTime,
    /// <summary>The server answered with a TSIG error (BADKEY, BADSIG, BADTIME...): see the record's Error.</summary>
    ServerError,
}

/// <summary>
/// Checks the responses to a request we signed (the client side): the first message must be
/// signed with our key over our request's MAC; in a stream, later messages may be unsigned up to
/// 99 in a row (RFC 8945 §5.3.1, for old servers), and the next signed one covers them; the last
/// must be signed (<see cref="EndedSigned"/>). One per exchange, not thread-safe.
/// </summary>
public sealed class TsigResponseVerifier
{
    public const int MaxUnsignedInARow = 99;

    private readonly TsigKey _key;
    private readonly long _now;
    private readonly byte[] _prior = new byte[TsigAlgorithms.MaxMacSize];
    private int _priorLength;
    private bool _first = true;
    private readonly List<byte> _unsigned = [];
    private int _unsignedCount;

    public TsigResponseVerifier(TsigKey key, ReadOnlySpan<byte> requestMac, long now)
    {
        _key = key;
        _now = now;
        requestMac.CopyTo(_prior);
        _priorLength = requestMac.Length;
    }

    /// <summary>The last message checked was signed and verified.</summary>
    public bool EndedSigned { get; private set; }
    /// <summary>The TSIG error the server returned, when <see cref="Check"/> said ServerError.</summary>
    public TsigError ServerErrorCode { get; private set; }
    /// <summary>The server's clock (Other Data of a BADTIME answer), when it sent one.</summary>
    public long? ServerTime { get; private set; }

    /// <summary>
    /// What a check found, in one line for a user or a log (null when the message is acceptable):
    /// the words `portcullis query --tsig` prints and the secondary logs.
    /// </summary>
    public string? Describe(TsigCheck check) => check switch
    {
        TsigCheck.Verified or TsigCheck.Unsigned => null,
        TsigCheck.Missing => "the reply is not signed",
        TsigCheck.Malformed => "malformed TSIG record",
        TsigCheck.BadSignature => $"the signature does not verify with key {_key.Name} (another secret or algorithm?)",
        TsigCheck.BadTime => "signed at a time outside the fudge of this machine's clock",
        _ => $"the server refused the signature: {ServerErrorCode.ToString().ToUpperInvariant()}"
            + (ServerErrorCode == TsigError.BadTime && ServerTime is { } t ? $" (the server's clock is {t - _now:+0;-0} s from ours)" : ""),
    };

    public TsigCheck Check(ReadOnlySpan<byte> message)
    {
        EndedSigned = false;
        var presence = Tsig.Find(message, out var record);
        if (presence == TsigPresence.Malformed) return TsigCheck.Malformed;
        if (presence == TsigPresence.None)
        {
            if (_first || ++_unsignedCount > MaxUnsignedInARow) return TsigCheck.Missing;
            foreach (byte b in message) _unsigned.Add(b);
            return TsigCheck.Unsigned;
        }
        if (record.Error != 0)
        {
            ServerErrorCode = (TsigError)record.Error;
            if (record.OtherLength == 6)
            {
                var other = record.Other(message);
                ServerTime = ((long)BinaryPrimitives.ReadUInt16BigEndian(other) << 32) | BinaryPrimitives.ReadUInt32BigEndian(other[2..]);
            }
            return TsigCheck.ServerError;
        }
        var status = Tsig.VerifyMac(message, record, _key, _prior.AsSpan(0, _priorLength), hasPrior: true,
            timersOnly: !_first, unsignedBefore: _unsigned.Count == 0 ? default : _unsigned.ToArray());
        if (status != TsigStatus.Ok) return TsigCheck.BadSignature;
        if (!Tsig.TimeIsValid(record, _now)) return TsigCheck.BadTime;
        record.Mac(message).CopyTo(_prior);
        _priorLength = record.MacLength;
        _first = false;
        _unsigned.Clear();
        _unsignedCount = 0;
        EndedSigned = true;
        return TsigCheck.Verified;
    }
}
