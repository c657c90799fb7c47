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
