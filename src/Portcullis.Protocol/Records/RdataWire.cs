using System.Buffers;
using System.Buffers.Binary;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Wire;

namespace Portcullis.Protocol.Records;

/// <summary>
/// The wire side of RDATA, driven by <see cref="RdataSchema"/>: validating, expanding compressed
/// names when reading from a message, walking fields, and the canonical form of RFC 4034 §6.2.
/// </summary>
public static class RdataWire
{
    /// <summary>
    /// Reads RDATA of <paramref name="length"/> octets at <paramref name="offset"/> in
    /// <paramref name="message"/>, expanding compressed names, checking every field, and returns the
    /// uncompressed RDATA. Unknown types are copied as they are.
    /// </summary>
    public static bool TryReadFromMessage(RecordType type, ReadOnlySpan<byte> message, int offset, int length,
        out byte[]? rdata, out string? error)
    {
        rdata = null;
        if (length < 0 || offset < 0 || offset > message.Length - length) { error = "RDATA runs past the end of the message"; return false; }
        // Expanded names can be longer than compressed ones: a schema has at most a few names, each
        // at most 255 octets, so this bounds the output.
        byte[] buffer = ArrayPool<byte>.Shared.Rent(Math.Min(65535, length + 255 * 4));
        try
        {
            if (!Wire.DnsMessageReader.TryExpandRdata(type, message, offset, length, buffer, out int written, out error))
            {
                error = $"{RecordTypes.ToText(type)} RDATA: {error}";
                return false;
            }
            rdata = buffer.AsSpan(0, written).ToArray();
            return true;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Checks uncompressed RDATA against the schema of its type.</summary>
    public static bool IsValid(RecordType type, ReadOnlySpan<byte> rdata, out string? error)
    {
        var fields = RdataSchema.Get(type);
        error = null;
        if (fields is null) return rdata.Length <= 65535;
        int pos = 0;
        foreach (var f in fields)
        {
            if (!TryMeasureField(f, rdata[pos..], rdata[..pos], out int len, out error)) return false;
            pos += len;
        }
        if (pos != rdata.Length) { error = $"{rdata.Length - pos} octets left over"; return false; }
        return true;
    }

    /// <summary>
    /// Length of the field <paramref name="field"/> at the start of <paramref name="data"/>
    /// (uncompressed form); <paramref name="before"/> is the RDATA already walked, for fields whose
    /// form depends on an earlier one (the IPSECKEY gateway).
    /// </summary>
    public static bool TryMeasureField(RdataField field, ReadOnlySpan<byte> data, ReadOnlySpan<byte> before, out int length, out string? error)
    {
        error = null;
        length = 0;
        switch (field)
        {
            case RdataField.U8: return Fixed(1, data, out length, ref error);
            case RdataField.U16 or RdataField.CoveredType or RdataField.CertType: return Fixed(2, data, out length, ref error);
            case RdataField.U32 or RdataField.Interval32 or RdataField.Time32 or RdataField.IPv4: return Fixed(4, data, out length, ref error);
            case RdataField.Time48 or RdataField.Eui48: return Fixed(6, data, out length, ref error);
            case RdataField.Eui64: return Fixed(8, data, out length, ref error);
            case RdataField.IPv6 or RdataField.Loc:
                if (!Fixed(16, data, out length, ref error)) return false;
                if (field == RdataField.Loc && data[0] != 0) { error = "LOC version is not 0"; return false; }
                return true;
            case RdataField.Name or RdataField.CompressibleName:
                if (!DnsName.TryMeasureWire(data, out length, out _)) { error = "bad domain name"; return false; }
                return true;
            case RdataField.CharString or RdataField.HexU8:
                if (data.Length < 1 || data.Length < 1 + data[0]) { error = "string runs past the end"; return false; }
                length = 1 + data[0];
                return true;
            case RdataField.Base32U8 or RdataField.CaaTag:
                if (data.Length < 1 || data[0] == 0 || data.Length < 1 + data[0]) { error = "empty or truncated field"; return false; }
                length = 1 + data[0];
                return true;
            case RdataField.Base64U16:
                if (data.Length < 2) { error = "truncated length"; return false; }
                int l16 = BinaryPrimitives.ReadUInt16BigEndian(data);
                if (data.Length < 2 + l16) { error = "data runs past the end"; return false; }
                length = 2 + l16;
                return true;
            case RdataField.CharStrings:
                if (data.Length == 0) { error = "no character-string"; return false; }
                while (length < data.Length)
                {
                    int l = data[length];
                    if (length + 1 + l > data.Length) { error = "string runs past the end"; return false; }
                    length += 1 + l;
                }
                return true;
            case RdataField.Base64Rest or RdataField.HexRest or RdataField.TextRest:
                length = data.Length;
                return true;
            case RdataField.TypeBitmap:
                return TryMeasureTypeBitmap(data, out length, out error);
            case RdataField.IpseckeyGateway:
                if (before.Length < 2) { error = "IPSECKEY gateway type missing"; return false; }
                switch (before[1])
                {
                    case 0: length = 0; return true;
                    case 1: return Fixed(4, data, out length, ref error);
                    case 2: return Fixed(16, data, out length, ref error);
                    case 3:
                        if (!DnsName.TryMeasureWire(data, out length, out _)) { error = "bad gateway name"; return false; }
                        return true;
                    default: error = $"unknown IPSECKEY gateway type {before[1]}"; return false;
                }
            case RdataField.SvcParams:
                return TryMeasureSvcParams(data, out length, out error);
            default:
                error = "unknown field kind";
                return false;
        }
    }

    private static bool Fixed(int n, ReadOnlySpan<byte> data, out int length, ref string? error)
    {
        length = n;
        if (data.Length >= n) return true;
        error = $"field needs {n} octets, {data.Length} left";
        return false;
    }

    private static bool TryMeasureTypeBitmap(ReadOnlySpan<byte> data, out int length, out string? error)
    {
        int pos = 0;
        int lastWindow = -1;
        while (pos < data.Length)
        {
            if (pos + 2 > data.Length) { error = "truncated type bitmap window"; length = 0; return false; }
            int window = data[pos], len = data[pos + 1];
            if (window <= lastWindow) { error = "type bitmap windows out of order"; length = 0; return false; }
            if (len < 1 || len > 32 || pos + 2 + len > data.Length) { error = "bad type bitmap window length"; length = 0; return false; }
            lastWindow = window;
            pos += 2 + len;
        }
        length = pos;
        error = null;
        return true;
    }

    private static bool TryMeasureSvcParams(ReadOnlySpan<byte> data, out int length, out string? error)
    {
        int pos = 0;
        int lastKey = -1;
        while (pos < data.Length)
        {
            if (pos + 4 > data.Length) { error = "truncated SvcParam"; length = 0; return false; }
            int key = BinaryPrimitives.ReadUInt16BigEndian(data[pos..]);
            int len = BinaryPrimitives.ReadUInt16BigEndian(data[(pos + 2)..]);
            if (key <= lastKey) { error = "SvcParam keys not in strictly increasing order"; length = 0; return false; }
            if (pos + 4 + len > data.Length) { error = "SvcParam value runs past the end"; length = 0; return false; }
            lastKey = key;
            pos += 4 + len;
        }
        length = pos;
        error = null;
        return true;
    }

    /// <summary>The canonical form of RDATA (RFC 4034 §6.2): names lowered for the listed types.</summary>
    public static byte[] ToCanonical(RecordType type, byte[] rdata)
    {
        if (!RdataSchema.LowersNamesInCanonicalForm(type)) return rdata;
        var copy = (byte[])rdata.Clone();
        ForEachName(type, copy, static (span) => DnsName.LowerLabels(span));
        return copy;
    }

    /// <summary>Compares RDATA as DNS does for RRset membership: names without regard to case.</summary>
    public static bool CanonicalEquals(RecordType type, byte[] a, byte[] b)
    {
        if (a.Length != b.Length) return false;
        if (a.AsSpan().SequenceEqual(b)) return true;
        var fields = RdataSchema.Get(type);
        if (fields is null) return false;
        return ToLowerNames(type, a).AsSpan().SequenceEqual(ToLowerNames(type, b));
    }

    private static byte[] ToLowerNames(RecordType type, byte[] rdata)
    {
        var copy = (byte[])rdata.Clone();
        ForEachName(type, copy, static (span) => DnsName.LowerLabels(span));
        return copy;
    }

    /// <summary>Calls <paramref name="action"/> with the span of every domain name in uncompressed RDATA.</summary>
    public static void ForEachName(RecordType type, Span<byte> rdata, SpanAction action)
    {
        var fields = RdataSchema.Get(type);
        if (fields is null) return;
        int pos = 0;
        foreach (var f in fields)
        {
            if (!TryMeasureField(f, rdata[pos..], rdata[..pos], out int len, out _)) return;
            bool isName = f is RdataField.Name or RdataField.CompressibleName
                || (f == RdataField.IpseckeyGateway && rdata[1] == 3);
            if (isName) action(rdata.Slice(pos, len));
            pos += len;
        }
    }

    public delegate void SpanAction(Span<byte> span);
}
