using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;

namespace Portcullis.Protocol.Wire;

public enum DnsSection : byte { Question, Answer, Authority, Additional }

/// <summary>
/// Writes a DNS message into a caller's span, in the manner of Utf8JsonWriter: no allocation, Try
/// methods that return false (and leave the message as it was) when the span is full, name
/// compression (RFC 1035 §4.1.4) against every name already written, matched without regard to
/// case. Sections must be written in order; <see cref="Finish"/> writes the header with the counts.
/// </summary>
public ref struct DnsMessageWriter
{
    public const int MaxCompressionTargets = 128;

    private readonly Span<byte> _buffer;
    private int _position;
    private CompressionTargets _targets;
    private int _targetCount;

    public DnsHeader Header;

    public DnsMessageWriter(Span<byte> buffer)
    {
        if (buffer.Length < DnsHeader.Size) throw new ArgumentException("buffer shorter than a DNS header", nameof(buffer));
        _buffer = buffer;
        _position = DnsHeader.Size;
        _targetCount = 0;
        Header = default;
    }

    public readonly int Position => _position;

    /// <summary>
    /// The capacity: at most 65535 octets (a message has a 16-bit length even over TCP); lower it
    /// with <see cref="Limit"/> to write within a client's UDP size.
    /// </summary>
    public int Capacity { readonly get; private set; } = 65535;

    /// <summary>Caps the message size (e.g. 512, or the EDNS payload size).</summary>
    public void Limit(int maxSize) => Capacity = Math.Min(maxSize, 65535);

    private readonly int End => Math.Min(_buffer.Length, Capacity);

    /// <summary>A point to come back to when what follows does not fit (truncation per RFC 2181 §9).</summary>
    public readonly Mark GetMark() => new(_position, _targetCount, Header);

    public void Rewind(Mark mark)
    {
        _position = mark.Position;
        _targetCount = mark.TargetCount;
        Header = mark.Header;
    }

    public readonly record struct Mark(int Position, int TargetCount, DnsHeader Header);

    public bool TryWriteQuestion(DnsQuestion question) => TryWriteQuestion(question.Name.Wire, question.Type, question.Class);

    public bool TryWriteQuestion(scoped ReadOnlySpan<byte> name, RecordType type, RecordClass @class)
    {
        var mark = GetMark();
        if (!TryWriteName(name, compress: true) || !TryWriteUInt16((ushort)type) || !TryWriteUInt16((ushort)@class))
        {
            Rewind(mark);
            return false;
        }
        Header.QuestionCount++;
        return true;
    }

    public bool TryWriteRecord(ResourceRecord record, DnsSection section) =>
        TryWriteRecord(record.Owner.Wire, record.Type, record.Class, record.Ttl, record.Data, section);

    /// <summary>Writes a record from uncompressed RDATA, compressing the names RFC 3597 §4 allows.</summary>
    public bool TryWriteRecord(scoped ReadOnlySpan<byte> owner, RecordType type, RecordClass @class, uint ttl,
        scoped ReadOnlySpan<byte> rdata, DnsSection section)
    {
        var mark = GetMark();
        if (!TryWriteName(owner, compress: true) || !TryWriteUInt16((ushort)type) || !TryWriteUInt16((ushort)@class)
            || !TryWriteUInt32(ttl) || !TryWriteUInt16(0))
        {
            Rewind(mark);
            return false;
        }
        int rdlengthAt = _position - 2;
        if (!TryWriteRdata(type, rdata))
        {
            Rewind(mark);
            return false;
        }
        BinaryPrimitives.WriteUInt16BigEndian(_buffer[rdlengthAt..], (ushort)(_position - rdlengthAt - 2));
        switch (section)
        {
            case DnsSection.Answer: Header.AnswerCount++; break;
            case DnsSection.Authority: Header.AuthorityCount++; break;
            case DnsSection.Additional: Header.AdditionalCount++; break;
            default: Header.QuestionCount++; break;
        }
        return true;
    }

    /// <summary>
    /// Writes the OPT pseudo-record (RFC 6891 §6.1.2) into the additional section: owner root, CLASS
    /// the UDP payload size, TTL the upper 8 bits of the RCODE, the version and the DO bit (RFC 3225),
    /// RDATA the option TLVs already built (see <see cref="EdnsOptionWire"/>). The low 4 bits of
    /// the RCODE stay in <see cref="Header"/>; <see cref="Rcodes"/> splits a 12-bit RCODE.
    /// </summary>
    public bool TryWriteOpt(ushort udpPayloadSize, byte extendedRcode, byte version, bool dnssecOk, scoped ReadOnlySpan<byte> options) =>
        TryWriteRecord([0], RecordType.OPT, (RecordClass)udpPayloadSize,
            Edns.ComposeTtl(extendedRcode, version, dnssecOk ? Edns.DnssecOkFlag : (ushort)0), options, DnsSection.Additional);

    private bool TryWriteRdata(RecordType type, scoped ReadOnlySpan<byte> rdata)
    {
        var fields = RdataSchema.Get(type);
        if (fields is null || !HasCompressibleName(fields)) return TryWriteBytes(rdata);
        int pos = 0;
        foreach (var f in fields)
        {
            if (!RdataWire.TryMeasureField(f, rdata[pos..], rdata[..pos], out int len, out _)) return false;
            bool ok = f == RdataField.CompressibleName
                ? TryWriteName(rdata.Slice(pos, len), compress: true)
                : TryWriteBytes(rdata.Slice(pos, len));
            if (!ok) return false;
            pos += len;
        }
        return pos == rdata.Length || TryWriteBytes(rdata[pos..]);
    }

    /// <summary>Whether this type's RDATA carries a name the writer compresses (RFC 3597 §4); other RDATA is copied as it is.</summary>
    public static bool CompressesRdata(RecordType type) => RdataSchema.Get(type) is { } fields && HasCompressibleName(fields);

    /// <summary>Pointer to the question name, which every response writes first at offset 12.</summary>
    public const ushort QuestionPointer = 0xC000 | DnsHeader.Size;

    /// <summary>
    /// Appends <paramref name="count"/> records already in wire form (a fragment built at zone
    /// load, owners compressed to <see cref="QuestionPointer"/>), all or nothing. The caller vouches
    /// that the question was written first and that the records hold no names to register for compression.
    /// </summary>
    public bool TryWriteRecords(scoped ReadOnlySpan<byte> records, int count, DnsSection section)
    {
        if (!TryWriteBytes(records)) return false;
        switch (section)
        {
            case DnsSection.Answer: Header.AnswerCount += (ushort)count; break;
            case DnsSection.Authority: Header.AuthorityCount += (ushort)count; break;
            case DnsSection.Additional: Header.AdditionalCount += (ushort)count; break;
            default: Header.QuestionCount += (ushort)count; break;
        }
        return true;
    }

    private static bool HasCompressibleName(RdataField[] fields)
    {
        foreach (var f in fields) if (f == RdataField.CompressibleName) return true;
        return false;
    }

    /// <summary>Writes an uncompressed wire name, replacing its longest already-written suffix with a pointer.</summary>
    public bool TryWriteName(scoped ReadOnlySpan<byte> name, bool compress)
    {
        int start = _position;
        int targetsBefore = _targetCount;
        int pos = 0;
        while (true)
        {
            int len = name[pos];
            if (len == 0)
            {
                if (!TryWriteByte(0)) { _position = start; _targetCount = targetsBefore; return false; }
                return true;
            }
            if (compress)
            {
                int pointer = FindSuffix(name[pos..]);
                if (pointer >= 0)
                {
                    if (!TryWriteUInt16((ushort)(0xC000 | pointer))) { _position = start; _targetCount = targetsBefore; return false; }
                    return true;
                }
            }
            if (_position + 1 + len > End) { _position = start; _targetCount = targetsBefore; return false; }
            if (compress && _position < 0x4000 && _targetCount < MaxCompressionTargets)
                _targets[_targetCount++] = (ushort)_position;
            name.Slice(pos, 1 + len).CopyTo(_buffer[_position..]);
            _position += 1 + len;
            pos += 1 + len;
        }
    }

    /// <summary>Offset of an earlier name (or name suffix) equal to <paramref name="suffix"/>, or -1.</summary>
    private readonly int FindSuffix(ReadOnlySpan<byte> suffix)
    {
        for (int i = 0; i < _targetCount; i++)
        {
            int offset = _targets[i];
            if (_buffer[offset] == suffix[0] && MatchesAt(offset, suffix)) return offset;
        }
        return -1;
    }

    private readonly bool MatchesAt(int offset, ReadOnlySpan<byte> suffix)
    {
        int p = offset;
        int s = 0;
        for (int hops = 0; hops < 128;)
        {
            byte b = _buffer[p];
            if ((b & 0xC0) == 0xC0)
            {
                p = ((b & 0x3F) << 8) | _buffer[p + 1];
                hops++;
                continue;
            }
            if (b != suffix[s]) return false;
            if (b == 0) return true;
            if (!DnsName.EqualsIgnoreCase(_buffer.Slice(p + 1, b), suffix.Slice(s + 1, b))) return false;
            p += 1 + b;
            s += 1 + b;
        }
        return false;
    }

    public bool TryWriteBytes(scoped ReadOnlySpan<byte> bytes)
    {
        if (_position + bytes.Length > End) return false;
        bytes.CopyTo(_buffer[_position..]);
        _position += bytes.Length;
        return true;
    }

    public bool TryWriteByte(byte value)
    {
        if (_position + 1 > End) return false;
        _buffer[_position++] = value;
        return true;
    }

    public bool TryWriteUInt16(ushort value)
    {
        if (_position + 2 > End) return false;
        BinaryPrimitives.WriteUInt16BigEndian(_buffer[_position..], value);
        _position += 2;
        return true;
    }

    public bool TryWriteUInt32(uint value)
    {
        if (_position + 4 > End) return false;
        BinaryPrimitives.WriteUInt32BigEndian(_buffer[_position..], value);
        _position += 4;
        return true;
    }

    /// <summary>Writes the header (with the section counts) and returns the message length.</summary>
    public readonly int Finish()
    {
        Header.WriteTo(_buffer);
        return _position;
    }

    [InlineArray(MaxCompressionTargets)]
    private struct CompressionTargets
    {
        private ushort _element;
    }
}
