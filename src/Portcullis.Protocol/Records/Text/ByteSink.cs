using System.Buffers.Binary;

namespace Portcullis.Protocol.Records.Text;

/// <summary>A growable buffer that RDATA is assembled in while parsing presentation text.</summary>
internal sealed class ByteSink
{
    private byte[] _buffer = new byte[64];

    public int Length { get; private set; }

    public ReadOnlySpan<byte> WrittenSpan => _buffer.AsSpan(0, Length);

    public Span<byte> WrittenSpanMutable => _buffer.AsSpan(0, Length);

    private Span<byte> Reserve(int count)
    {
        if (Length + count > _buffer.Length)
        {
            // Doubling keeps appends linear; RDATA is at most 64 KiB plus whatever we reject later.
            Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, Length + count));
        }
        var span = _buffer.AsSpan(Length, count);
        Length += count;
        return span;
    }

    public void WriteU8(byte value) => Reserve(1)[0] = value;

    public void WriteU16(ushort value) => BinaryPrimitives.WriteUInt16BigEndian(Reserve(2), value);

    public void WriteU32(uint value) => BinaryPrimitives.WriteUInt32BigEndian(Reserve(4), value);

    public void WriteU48(ulong value)
    {
        var span = Reserve(6);
        BinaryPrimitives.WriteUInt16BigEndian(span, (ushort)(value >> 32));
        BinaryPrimitives.WriteUInt32BigEndian(span[2..], (uint)value);
    }

    public void Write(ReadOnlySpan<byte> bytes) => bytes.CopyTo(Reserve(bytes.Length));

    public void PatchU16(int offset, ushort value) => BinaryPrimitives.WriteUInt16BigEndian(_buffer.AsSpan(offset), value);

    public void PatchU8(int offset, byte value) => _buffer[offset] = value;

    public void Truncate(int length) => Length = length;

    public byte[] ToArray() => _buffer.AsSpan(0, Length).ToArray();
}
