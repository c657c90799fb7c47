using System.Buffers.Binary;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;

namespace Portcullis.Protocol.Wire;

/// <summary>
/// A forward-only reader over one DNS message in a span, in the manner of Utf8JsonReader. The Try
/// methods allocate nothing and never throw; the others allocate the objects they return and throw
/// <see cref="DnsFormatException"/> on malformed input.
/// </summary>
public ref struct DnsMessageReader
{
    private readonly ReadOnlySpan<byte> _message;
    private int _position;

    public DnsHeader Header;

    private DnsMessageReader(ReadOnlySpan<byte> message, DnsHeader header)
    {
        _message = message;
        Header = header;
        _position = DnsHeader.Size;
    }

    public DnsMessageReader(ReadOnlySpan<byte> message)
    {
        if (!DnsHeader.TryRead(message, out var header)) throw new DnsFormatException("message shorter than the 12-octet header");
        _message = message;
        Header = header;
        _position = DnsHeader.Size;
    }

    public static bool TryCreate(ReadOnlySpan<byte> message, out DnsMessageReader reader)
    {
        if (!DnsHeader.TryRead(message, out var header)) { reader = default; return false; }
        reader = new DnsMessageReader(message, header);
        return true;
    }

    /// <summary>Offset of the next unread octet.</summary>
    public readonly int Position => _position;

    public readonly ReadOnlySpan<byte> Message => _message;

    public readonly int Remaining => _message.Length - _position;

    /// <summary>Reads a question's name (expanded into <paramref name="name"/>, 255 octets), type and class.</summary>
    public bool TryReadQuestion(scoped Span<byte> name, out int nameLength, out RecordType type, out RecordClass @class)
    {
        type = default;
        @class = default;
        int p = _position;
        if (!WireName.TryRead(_message, ref p, name, out nameLength, out _)) return false;
        if (p + 4 > _message.Length) return false;
        type = (RecordType)BinaryPrimitives.ReadUInt16BigEndian(_message[p..]);
        @class = (RecordClass)BinaryPrimitives.ReadUInt16BigEndian(_message[(p + 2)..]);
        _position = p + 4;
        return true;
    }

    public DnsQuestion ReadQuestion()
    {
        Span<byte> name = stackalloc byte[DnsName.MaxLength];
        if (!TryReadQuestion(name, out int len, out var type, out var cls))
            throw new DnsFormatException($"malformed question at offset {_position}");
        return new DnsQuestion(DnsName.FromWire(name[..len]), type, cls);
    }

    /// <summary>
    /// Reads a record's fixed part and leaves RDATA unread in the message: its offset and length
    /// are returned and the reader moves past it.
    /// </summary>
    public bool TryReadRecordHeader(scoped Span<byte> name, out int nameLength, out RecordType type, out RecordClass @class,
        out uint ttl, out int rdataOffset, out int rdataLength)
    {
        type = default; @class = default; ttl = 0; rdataOffset = 0; rdataLength = 0;
        int p = _position;
        if (!WireName.TryRead(_message, ref p, name, out nameLength, out _)) return false;
        if (p + 10 > _message.Length) return false;
        type = (RecordType)BinaryPrimitives.ReadUInt16BigEndian(_message[p..]);
        @class = (RecordClass)BinaryPrimitives.ReadUInt16BigEndian(_message[(p + 2)..]);
        ttl = BinaryPrimitives.ReadUInt32BigEndian(_message[(p + 4)..]);
        rdataLength = BinaryPrimitives.ReadUInt16BigEndian(_message[(p + 8)..]);
        rdataOffset = p + 10;
        if (rdataOffset + rdataLength > _message.Length) return false;
        _position = rdataOffset + rdataLength;
        return true;
    }

    /// <summary>
    /// Reads a whole record without allocating: the owner is expanded into <paramref name="name"/>
    /// (255 octets), and RDATA is checked against its type's schema and written uncompressed into
    /// <paramref name="rdata"/> (65535 octets always suffice). False when anything is malformed or
    /// <paramref name="rdata"/> is too small; the reader then stays where it was.
    /// </summary>
    public bool TryReadRecord(scoped Span<byte> name, out int nameLength, out RecordType type, out RecordClass @class,
        out uint ttl, scoped Span<byte> rdata, out int rdataLength)
    {
        rdataLength = 0;
        int start = _position;
        if (!TryReadRecordHeader(name, out nameLength, out type, out @class, out ttl, out int rdOff, out int rdLen)) return false;
        if (!TryExpandRdata(type, _message, rdOff, rdLen, rdata, out rdataLength, out _))
        {
            _position = start;
            return false;
        }
        return true;
    }

    /// <summary>
    /// Checks the RDATA of <paramref name="type"/> at <paramref name="offset"/> against its schema
    /// (names may be compressed and must decompress safely) without copying or allocating.
    /// </summary>
    public static bool TryCheckRdata(RecordType type, ReadOnlySpan<byte> message, int offset, int length, out string? error) =>
        WalkRdata(type, message, offset, length, default, copy: false, out _, out error);

    /// <summary>
    /// Checks the RDATA at <paramref name="offset"/> and writes it uncompressed into
    /// <paramref name="destination"/>; types without a schema are copied as they are (RFC 3597).
    /// </summary>
    public static bool TryExpandRdata(RecordType type, ReadOnlySpan<byte> message, int offset, int length,
        Span<byte> destination, out int written, out string? error) =>
        WalkRdata(type, message, offset, length, destination, copy: true, out written, out error);

    // One walk for checking and expanding, so the two can never disagree. Error strings are constants.
    private static bool WalkRdata(RecordType type, ReadOnlySpan<byte> message, int offset, int length,
        Span<byte> destination, bool copy, out int written, out string? error)
    {
        written = 0;
        if (offset < 0 || length < 0 || offset > message.Length - length) { error = "RDATA runs past the end of the message"; return false; }
        int end = offset + length;
        var fields = RdataSchema.Get(type);
        if (fields is null)
        {
            if (copy)
            {
                if (length > destination.Length) { error = "RDATA longer than the buffer"; return false; }
                message.Slice(offset, length).CopyTo(destination);
            }
            written = length;
            error = null;
            return true;
        }
        Span<byte> name = stackalloc byte[DnsName.MaxLength];
        int pos = offset;
        for (int i = 0; i < fields.Length; i++)
        {
            var f = fields[i];
            // The fields walked so far, for fields whose form depends on an earlier one (IPSECKEY gateway).
            ReadOnlySpan<byte> before = copy ? destination[..written] : message[offset..pos];
            if (f is RdataField.Name or RdataField.CompressibleName
                || (f is RdataField.IpseckeyGateway && before.Length >= 2 && before[1] == 3))
            {
                int p = pos;
                // Names in RDATA must end inside RDATA, though their pointers may lead anywhere before.
                if (!WireName.TryRead(message[..end], ref p, name, out int nameLength, out _)) { error = "bad domain name in RDATA"; return false; }
                if (copy)
                {
                    if (written + nameLength > destination.Length) { error = "RDATA longer than the buffer"; return false; }
                    name[..nameLength].CopyTo(destination[written..]);
                }
                written += nameLength;
                pos = p;
                continue;
            }
            if (!RdataWire.TryMeasureField(f, message[pos..end], before, out int fieldLength, out _)) { error = "RDATA field is truncated or malformed"; return false; }
            if (copy)
            {
                if (written + fieldLength > destination.Length) { error = "RDATA longer than the buffer"; return false; }
                message.Slice(pos, fieldLength).CopyTo(destination[written..]);
            }
            written += fieldLength;
            pos += fieldLength;
        }
        if (pos != end) { error = "RDATA has octets left over after its last field"; return false; }
        if (written > ushort.MaxValue) { error = "uncompressed RDATA longer than 65535 octets"; return false; }
        error = null;
        return true;
    }

    /// <summary>Reads a whole record, expanding and checking its RDATA.</summary>
    public ResourceRecord ReadRecord()
    {
        int start = _position;
        Span<byte> name = stackalloc byte[DnsName.MaxLength];
        if (!TryReadRecordHeader(name, out int len, out var type, out var cls, out uint ttl, out int rdOff, out int rdLen))
            throw new DnsFormatException($"malformed resource record at offset {start}");
        if (!RdataWire.TryReadFromMessage(type, _message, rdOff, rdLen, out var rdata, out var error))
            throw new DnsFormatException($"{error} (record at offset {start})");
        return new ResourceRecord(DnsName.FromWire(name[..len]), type, cls, ttl, rdata!);
    }
}
