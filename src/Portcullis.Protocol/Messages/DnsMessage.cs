using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.Wire;

namespace Portcullis.Protocol.Messages;

/// <summary>
/// A whole DNS message as objects, for tools and tests (the server's hot path uses
/// <see cref="DnsMessageReader"/>, <see cref="DnsMessageWriter"/> and <see cref="OptRecord"/>
/// instead). EDNS lives in <see cref="Edns"/>, never as an OPT record in <see cref="Additional"/>.
/// </summary>
/// <remarks>
/// Parsing is strict, as BIND and Knot are when they answer FORMERR: the section counts must
/// account for the whole message and octets after the last counted record are an error (RFC 1035
/// §4.1 defines a message as exactly its header and counted sections; a sender that appends
/// garbage is broken or probing). At most one OPT record, only in the additional section and
/// owned by the root (RFC 6891 §6.1.1-2). Every RDATA is checked against its type's schema.
/// </remarks>
public sealed class DnsMessage
{
    /// <summary>Smallest question: root name, TYPE, CLASS.</summary>
    private const int MinQuestionSize = 5;
    /// <summary>Smallest record: root owner, TYPE, CLASS, TTL, RDLENGTH.</summary>
    private const int MinRecordSize = 11;

    /// <summary>
    /// ID and flags. The counts are those read from the wire (the OPT record included); writing
    /// computes its own.
    /// </summary>
    public DnsHeader Header;

    public List<DnsQuestion> Questions { get; }
    public List<ResourceRecord> Answers { get; }
    public List<ResourceRecord> Authority { get; }
    /// <summary>Additional records, without the OPT record (see <see cref="Edns"/>).</summary>
    public List<ResourceRecord> Additional { get; }

    /// <summary>The OPT record's contents, or null when the message has none.</summary>
    public Edns? Edns { get; set; }

    public DnsMessage()
    {
        Questions = [];
        Answers = [];
        Authority = [];
        Additional = [];
    }

    private DnsMessage(DnsHeader header)
    {
        // Capacities come from counts already checked against the message length.
        Header = header;
        Questions = new List<DnsQuestion>(header.QuestionCount);
        Answers = new List<ResourceRecord>(header.AnswerCount);
        Authority = new List<ResourceRecord>(header.AuthorityCount);
        Additional = new List<ResourceRecord>(header.AdditionalCount);
    }

    /// <summary>A query with one question, RD set as dig sets it by default.</summary>
    public static DnsMessage CreateQuery(DnsName name, RecordType type, RecordClass @class = RecordClass.IN, ushort id = 0, bool recursionDesired = true)
    {
        var message = new DnsMessage();
        message.Header.Id = id;
        message.Header.RecursionDesired = recursionDesired;
        message.Questions.Add(new DnsQuestion(name, type, @class));
        return message;
    }

    /// <summary>
    /// The 12-bit RCODE: the header's 4 bits joined with the OPT record's EXTENDED-RCODE. Setting a
    /// value above 15 needs <see cref="Edns"/>.
    /// </summary>
    public Rcode Rcode
    {
        get => Rcodes.Combine(Header.Rcode, Edns?.ExtendedRcode ?? 0);
        set
        {
            byte extended = Rcodes.ExtendedPart(value);
            if (extended != 0 && Edns is null) throw new InvalidOperationException($"RCODE {value} needs EDNS (an OPT record)");
            Header.Rcode = Rcodes.HeaderPart(value);
            if (Edns is not null) Edns.ExtendedRcode = extended;
        }
    }

    /// <summary>Parses a message; anything malformed throws <see cref="DnsFormatException"/>.</summary>
    public static DnsMessage Parse(ReadOnlySpan<byte> message)
    {
        if (!TryParse(message, out var result, out var error, out int offset))
            throw new DnsFormatException($"malformed DNS message: {error} (at offset {offset})");
        return result;
    }

    public static bool TryParse(ReadOnlySpan<byte> message, [NotNullWhen(true)] out DnsMessage? result) =>
        TryParse(message, out result, out _, out _);

    private static bool TryParse(ReadOnlySpan<byte> message, [NotNullWhen(true)] out DnsMessage? result, out string? error, out int offset)
    {
        result = null;
        if (!DnsHeader.TryRead(message, out var header)) { error = "message shorter than the 12-octet header"; offset = 0; return false; }
        // Checked before any list is sized from a count (no allocation from an unchecked length field).
        if (!CountsFit(header, message.Length)) { error = "section counts larger than the message"; offset = 4; return false; }
        var model = new DnsMessage(header);
        try
        {
            if (!Walk(message, model, checkRdata: true, out _, out error, out offset)) return false;
        }
        catch (DnsFormatException e)
        {
            // Only EdnsOption.FromWire throws, and only on options Walk has already checked.
            error = e.Message;
            offset = 0;
            return false;
        }
        result = model;
        return true;
    }

    /// <summary>
    /// True when <see cref="Parse"/> would succeed; allocates nothing (the server's way to apply
    /// the same rules without building the model).
    /// </summary>
    public static bool IsWellFormed(ReadOnlySpan<byte> message) => Walk(message, null, checkRdata: true, out _, out _, out _);

    private static bool CountsFit(in DnsHeader h, int messageLength) =>
        h.QuestionCount * MinQuestionSize + (h.AnswerCount + h.AuthorityCount + h.AdditionalCount) * MinRecordSize
            <= messageLength - DnsHeader.Size;

    /// <summary>
    /// The one walk over a message behind <see cref="Parse"/>, <see cref="IsWellFormed"/> and
    /// <see cref="OptRecord.TryRead"/>. With <paramref name="into"/> null nothing is allocated.
    /// </summary>
    internal static bool Walk(ReadOnlySpan<byte> message, DnsMessage? into, bool checkRdata, out OptRecord opt, out string? error, out int errorOffset)
    {
        opt = default;
        errorOffset = 0;
        if (!DnsMessageReader.TryCreate(message, out var reader)) { error = "message shorter than the 12-octet header"; return false; }
        var header = reader.Header;
        if (!CountsFit(header, message.Length)) { error = "section counts larger than the message"; errorOffset = 4; return false; }
        Span<byte> name = stackalloc byte[DnsName.MaxLength];
        for (int i = 0; i < header.QuestionCount; i++)
        {
            int at = reader.Position;
            if (!reader.TryReadQuestion(name, out int length, out var type, out var @class))
            {
                error = "malformed or truncated question";
                errorOffset = at;
                return false;
            }
            into?.Questions.Add(new DnsQuestion(DnsName.FromWire(name[..length]), type, @class));
        }
        return WalkRecords(ref reader, into, checkRdata, out opt, out error, out errorOffset);
    }

    /// <summary>The answer, authority and additional sections, from a reader just past the questions.</summary>
    internal static bool WalkRecords(scoped ref DnsMessageReader reader, DnsMessage? into, bool checkRdata, out OptRecord opt, out string? error, out int errorOffset)
    {
        opt = default;
        errorOffset = 0;
        var header = reader.Header;
        int answerEnd = header.AnswerCount;
        int authorityEnd = answerEnd + header.AuthorityCount;
        int total = authorityEnd + header.AdditionalCount;
        bool seenOpt = false;
        Span<byte> name = stackalloc byte[DnsName.MaxLength];
        byte[]? rdataBuffer = into is null ? null : ArrayPool<byte>.Shared.Rent(ushort.MaxValue);
        try
        {
            for (int i = 0; i < total; i++)
            {
                int at = reader.Position;
                errorOffset = at;
                if (!reader.TryReadRecordHeader(name, out int nameLength, out var type, out var @class, out uint ttl, out int rdataOffset, out int rdataLength))
                {
                    error = "malformed or truncated resource record";
                    return false;
                }
                if (type == RecordType.OPT)
                {
                    // RFC 6891 §6.1.1: one OPT at most, in the additional section; §6.1.2: owned by the root.
                    if (i < authorityEnd) { error = "OPT record outside the additional section"; return false; }
                    if (seenOpt) { error = "more than one OPT record"; return false; }
                    if (nameLength != 1) { error = "OPT record not owned by the root"; return false; }
                    if (!OptRecord.TryCreate(@class, ttl, reader.Message.Slice(rdataOffset, rdataLength), out opt, out error)) return false;
                    seenOpt = true;
                    if (into is not null) into.Edns = Edns.FromOpt(opt);
                    continue;
                }
                if (into is not null)
                {
                    if (!DnsMessageReader.TryExpandRdata(type, reader.Message, rdataOffset, rdataLength, rdataBuffer, out int written, out error))
                        return false;
                    var record = new ResourceRecord(DnsName.FromWire(name[..nameLength]), type, @class, ttl, rdataBuffer.AsSpan(0, written).ToArray());
                    (i < answerEnd ? into.Answers : i < authorityEnd ? into.Authority : into.Additional).Add(record);
                }
                else if (checkRdata && !DnsMessageReader.TryCheckRdata(type, reader.Message, rdataOffset, rdataLength, out error))
                {
                    return false;
                }
            }
            if (reader.Remaining != 0)
            {
                error = "octets after the last counted record";
                errorOffset = reader.Position;
                return false;
            }
            error = null;
            errorOffset = 0;
            return true;
        }
        finally
        {
            if (rdataBuffer is not null) ArrayPool<byte>.Shared.Return(rdataBuffer);
        }
    }

    /// <summary>
    /// Writes the message with name compression into <paramref name="destination"/> (at most 65535
    /// octets of it); false when it does not fit. The OPT record goes last in the additional
    /// section, or just before a final TSIG or SIG(0) record, which must stay last (RFC 8945 §5.1).
    /// </summary>
    public bool TryWrite(Span<byte> destination, out int written)
    {
        written = 0;
        if (destination.Length < DnsHeader.Size) return false;
        foreach (var record in Additional)
            if (record.Type == RecordType.OPT)
                throw new InvalidOperationException("EDNS belongs in DnsMessage.Edns, not as an OPT record in Additional");
        byte[]? options = Edns?.GetOptionsData();

        var writer = new DnsMessageWriter(destination);
        writer.Limit(destination.Length);
        writer.Header.Id = Header.Id;
        writer.Header.Flags = Header.Flags;
        foreach (var question in Questions)
            if (!writer.TryWriteQuestion(question)) return false;
        foreach (var record in Answers)
            if (!writer.TryWriteRecord(record, DnsSection.Answer)) return false;
        foreach (var record in Authority)
            if (!writer.TryWriteRecord(record, DnsSection.Authority)) return false;
        int optAt = -1;
        if (Edns is not null)
        {
            optAt = Additional.Count;
            if (optAt > 0 && Additional[^1].Type is RecordType.TSIG or RecordType.SIG) optAt--;
        }
        for (int i = 0; i <= Additional.Count; i++)
        {
            if (i == optAt && !writer.TryWriteRecord([0], RecordType.OPT, (RecordClass)Edns!.UdpPayloadSize, Edns.Ttl, options, DnsSection.Additional))
                return false;
            if (i < Additional.Count && !writer.TryWriteRecord(Additional[i], DnsSection.Additional)) return false;
        }
        written = writer.Finish();
        return true;
    }

    /// <summary>Writes the message; throws <see cref="ArgumentException"/> when it does not fit.</summary>
    public int Write(Span<byte> destination)
    {
        if (TryWrite(destination, out int written)) return written;
        ThrowIfMalformedRdata();
        throw new ArgumentException($"the message does not fit in {destination.Length} octets", nameof(destination));
    }

    /// <summary>
    /// The message in wire form, compressed, within <paramref name="maxSize"/> octets (capped at
    /// 65535); throws <see cref="InvalidOperationException"/> when it does not fit (this model does
    /// not truncate).
    /// </summary>
    public byte[] ToWire(int maxSize = ushort.MaxValue)
    {
        int limit = Math.Clamp(maxSize, DnsHeader.Size, ushort.MaxValue);
        var buffer = ArrayPool<byte>.Shared.Rent(limit);
        try
        {
            if (TryWrite(buffer.AsSpan(0, limit), out int written)) return buffer[..written];
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        ThrowIfMalformedRdata();
        throw new InvalidOperationException($"the message does not fit in {maxSize} octets");
    }

    // The writer cannot tell "full" from "RDATA that does not match its type"; say which it was.
    private void ThrowIfMalformedRdata()
    {
        foreach (var section in (List<ResourceRecord>[])[Answers, Authority, Additional])
            foreach (var record in section)
                if (!RdataWire.IsValid(record.Type, record.Data, out var error))
                    throw new DnsFormatException($"{record.Owner} {RecordTypes.ToText(record.Type)}: malformed RDATA: {error}");
    }
}
