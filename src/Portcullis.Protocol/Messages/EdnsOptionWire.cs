using System.Buffers.Binary;

namespace Portcullis.Protocol.Messages;

/// <summary>One option as it stands in OPT RDATA: its code and a view of its data.</summary>
public readonly ref struct EdnsOptionView
{
    public EdnsOptionView(EdnsOptionCode code, ReadOnlySpan<byte> data)
    {
        Code = code;
        Data = data;
    }

    public EdnsOptionCode Code { get; }
    public ReadOnlySpan<byte> Data { get; }
}

/// <summary>
/// Walks the OPTION-CODE / OPTION-LENGTH / OPTION-DATA triples of OPT RDATA (RFC 6891 §6.1.2)
/// without allocating. Stops at the end or at a triple that runs past the end (then
/// <see cref="IsMalformed"/> is true).
/// </summary>
public ref struct EdnsOptionEnumerator
{
    private ReadOnlySpan<byte> _rest;
    private EdnsOptionView _current;

    public EdnsOptionEnumerator(ReadOnlySpan<byte> options)
    {
        _rest = options;
        _current = default;
        IsMalformed = false;
    }

    public readonly EdnsOptionView Current => _current;

    /// <summary>True when the walk stopped on an option whose header or data runs past the end.</summary>
    public bool IsMalformed { readonly get; private set; }

    public readonly EdnsOptionEnumerator GetEnumerator() => this;

    public bool MoveNext()
    {
        if (_rest.IsEmpty) return false;
        if (_rest.Length < EdnsOptionWire.OptionHeaderSize) { IsMalformed = true; _rest = default; return false; }
        int length = BinaryPrimitives.ReadUInt16BigEndian(_rest[2..]);
        if (EdnsOptionWire.OptionHeaderSize + length > _rest.Length) { IsMalformed = true; _rest = default; return false; }
        _current = new EdnsOptionView((EdnsOptionCode)BinaryPrimitives.ReadUInt16BigEndian(_rest),
            _rest.Slice(EdnsOptionWire.OptionHeaderSize, length));
        _rest = _rest[(EdnsOptionWire.OptionHeaderSize + length)..];
        return true;
    }
}

/// <summary>
/// The wire side of EDNS options, allocating nothing: validation of the options this library knows,
/// typed readers over option data, and writers that build option TLVs into a span for
/// <see cref="Wire.DnsMessageWriter.TryWriteOpt"/>. Error strings are constants.
/// </summary>
public static class EdnsOptionWire
{
    public const int OptionHeaderSize = 4;
    /// <summary>RFC 7873 §4: the client cookie is exactly 8 octets.</summary>
    public const int ClientCookieLength = 8;
    /// <summary>RFC 7873 §4: the server cookie is 8 to 32 octets.</summary>
    public const int MinServerCookieLength = 8;
    public const int MaxServerCookieLength = 32;

    /// <summary>Checks the TLV layout of OPT RDATA and the contents of every option this library knows.</summary>
    public static bool TryValidate(ReadOnlySpan<byte> options, out string? error)
    {
        var walk = new EdnsOptionEnumerator(options);
        while (walk.MoveNext())
        {
            if (!TryValidateOption(walk.Current.Code, walk.Current.Data, out error)) return false;
        }
        if (walk.IsMalformed) { error = "EDNS option runs past the end of the OPT record"; return false; }
        error = null;
        return true;
    }

    /// <summary>Checks one option's data; options this library does not know are always accepted.</summary>
    public static bool TryValidateOption(EdnsOptionCode code, ReadOnlySpan<byte> data, out string? error)
    {
        error = null;
        switch (code)
        {
            case EdnsOptionCode.Cookie:
                // RFC 7873 §5.2.2: a length other than 8 or 16..40 is FORMERR.
                if (!TryReadCookie(data, out _, out _)) { error = "COOKIE option is not 8 or 16 to 40 octets"; return false; }
                return true;
            case EdnsOptionCode.ClientSubnet:
                return TryReadClientSubnet(data, out _, out _, out _, out _, out error);
            case EdnsOptionCode.TcpKeepalive:
                // RFC 7828 §3.1: empty (query) or a 16-bit timeout (response).
                if (data.Length is not (0 or 2)) { error = "edns-tcp-keepalive option is not 0 or 2 octets"; return false; }
                return true;
            case EdnsOptionCode.ExtendedDnsError:
                // RFC 8914 §2: a 16-bit INFO-CODE, then EXTRA-TEXT.
                if (data.Length < 2) { error = "Extended DNS Error option shorter than 2 octets"; return false; }
                return true;
            default:
                return true;
        }
    }

    /// <summary>Splits COOKIE data into the client cookie and the (possibly empty) server cookie.</summary>
    public static bool TryReadCookie(ReadOnlySpan<byte> data, out ReadOnlySpan<byte> clientCookie, out ReadOnlySpan<byte> serverCookie)
    {
        clientCookie = default;
        serverCookie = default;
        if (data.Length != ClientCookieLength
            && (data.Length < ClientCookieLength + MinServerCookieLength || data.Length > ClientCookieLength + MaxServerCookieLength))
            return false;
        clientCookie = data[..ClientCookieLength];
        serverCookie = data[ClientCookieLength..];
        return true;
    }

    /// <summary>
    /// Reads EDNS Client Subnet data (RFC 7871 §6), checking what §7.1.1 says to answer with FORMERR:
    /// a family other than IPv4 (1) or IPv6 (2), prefix lengths beyond the address size, an address
    /// not exactly ceil(SOURCE PREFIX-LENGTH / 8) octets long, or bits set past the source prefix.
    /// </summary>
    public static bool TryReadClientSubnet(ReadOnlySpan<byte> data, out ushort family, out byte sourcePrefixLength,
        out byte scopePrefixLength, out ReadOnlySpan<byte> address, out string? error)
    {
        family = 0; sourcePrefixLength = 0; scopePrefixLength = 0; address = default;
        if (data.Length < 4) { error = "EDNS Client Subnet option shorter than 4 octets"; return false; }
        family = BinaryPrimitives.ReadUInt16BigEndian(data);
        sourcePrefixLength = data[2];
        scopePrefixLength = data[3];
        int maxBits = family switch { 1 => 32, 2 => 128, _ => -1 };
        if (maxBits < 0) { error = "EDNS Client Subnet family is neither IPv4 nor IPv6"; return false; }
        if (sourcePrefixLength > maxBits || scopePrefixLength > maxBits) { error = "EDNS Client Subnet prefix longer than the address"; return false; }
        int octets = (sourcePrefixLength + 7) / 8;
        if (data.Length - 4 != octets) { error = "EDNS Client Subnet address is not truncated to the source prefix"; return false; }
        address = data[4..];
        int spareBits = octets * 8 - sourcePrefixLength;
        if (spareBits > 0 && (address[^1] & ((1 << spareBits) - 1)) != 0)
        {
            error = "EDNS Client Subnet address has bits set past the source prefix";
            return false;
        }
        error = null;
        return true;
    }

    /// <summary>The edns-tcp-keepalive timeout in units of 100 ms, or null when the option is empty.</summary>
    public static bool TryReadTcpKeepalive(ReadOnlySpan<byte> data, out ushort? timeout)
    {
        timeout = null;
        if (data.Length == 0) return true;
        if (data.Length != 2) return false;
        timeout = BinaryPrimitives.ReadUInt16BigEndian(data);
        return true;
    }

    /// <summary>The INFO-CODE and the UTF-8 EXTRA-TEXT of an Extended DNS Error option.</summary>
    public static bool TryReadExtendedError(ReadOnlySpan<byte> data, out ExtendedDnsErrorCode code, out ReadOnlySpan<byte> utf8ExtraText)
    {
        code = default;
        utf8ExtraText = default;
        if (data.Length < 2) return false;
        code = (ExtendedDnsErrorCode)BinaryPrimitives.ReadUInt16BigEndian(data);
        utf8ExtraText = data[2..];
        return true;
    }

    /// <summary>Writes one option TLV; false (nothing written) when it does not fit or the data exceeds 65535 octets.</summary>
    public static bool TryWriteOption(Span<byte> destination, EdnsOptionCode code, ReadOnlySpan<byte> data, out int written)
    {
        written = 0;
        if (data.Length > ushort.MaxValue || destination.Length < OptionHeaderSize + data.Length) return false;
        BinaryPrimitives.WriteUInt16BigEndian(destination, (ushort)code);
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], (ushort)data.Length);
        data.CopyTo(destination[OptionHeaderSize..]);
        written = OptionHeaderSize + data.Length;
        return true;
    }

    /// <summary>Writes a COOKIE option; the server cookie is empty or 8 to 32 octets (RFC 7873 §4).</summary>
    public static bool TryWriteCookie(Span<byte> destination, ReadOnlySpan<byte> clientCookie, ReadOnlySpan<byte> serverCookie, out int written)
    {
        if (clientCookie.Length != ClientCookieLength)
            throw new ArgumentException("the client cookie is 8 octets", nameof(clientCookie));
        if (!serverCookie.IsEmpty && (serverCookie.Length < MinServerCookieLength || serverCookie.Length > MaxServerCookieLength))
            throw new ArgumentException("the server cookie is 8 to 32 octets", nameof(serverCookie));
        written = 0;
        int length = clientCookie.Length + serverCookie.Length;
        if (destination.Length < OptionHeaderSize + length) return false;
        BinaryPrimitives.WriteUInt16BigEndian(destination, (ushort)EdnsOptionCode.Cookie);
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], (ushort)length);
        clientCookie.CopyTo(destination[OptionHeaderSize..]);
        serverCookie.CopyTo(destination[(OptionHeaderSize + ClientCookieLength)..]);
        written = OptionHeaderSize + length;
        return true;
    }

    /// <summary>Writes an Extended DNS Error option (RFC 8914 §2) with already UTF-8-encoded EXTRA-TEXT.</summary>
    public static bool TryWriteExtendedError(Span<byte> destination, ExtendedDnsErrorCode code, ReadOnlySpan<byte> utf8ExtraText, out int written)
    {
        written = 0;
        int length = 2 + utf8ExtraText.Length;
        if (length > ushort.MaxValue || destination.Length < OptionHeaderSize + length) return false;
        BinaryPrimitives.WriteUInt16BigEndian(destination, (ushort)EdnsOptionCode.ExtendedDnsError);
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], (ushort)length);
        BinaryPrimitives.WriteUInt16BigEndian(destination[OptionHeaderSize..], (ushort)code);
        utf8ExtraText.CopyTo(destination[(OptionHeaderSize + 2)..]);
        written = OptionHeaderSize + length;
        return true;
    }

    /// <summary>Writes an edns-tcp-keepalive option: empty, or the idle timeout in units of 100 ms (RFC 7828 §3.1).</summary>
    public static bool TryWriteTcpKeepalive(Span<byte> destination, ushort? timeout, out int written)
    {
        Span<byte> value = stackalloc byte[2];
        if (timeout is { } t) BinaryPrimitives.WriteUInt16BigEndian(value, t);
        return TryWriteOption(destination, EdnsOptionCode.TcpKeepalive, timeout is null ? default : value, out written);
    }

    /// <summary>Writes a Padding option of <paramref name="length"/> zero octets (RFC 7830 §3).</summary>
    public static bool TryWritePadding(Span<byte> destination, int length, out int written)
    {
        written = 0;
        if ((uint)length > ushort.MaxValue || destination.Length < OptionHeaderSize + length) return false;
        BinaryPrimitives.WriteUInt16BigEndian(destination, (ushort)EdnsOptionCode.Padding);
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], (ushort)length);
        destination.Slice(OptionHeaderSize, length).Clear();
        written = OptionHeaderSize + length;
        return true;
    }

    /// <summary>
    /// The Padding option data length that brings a message of <paramref name="unpaddedLength"/>
    /// octets (not counting the padding option) to a multiple of <paramref name="blockSize"/>, as the
    /// block-length strategy of RFC 8467 §4.1 recommends (468 for responses, 128 for queries).
    /// </summary>
    public static int PaddingLengthFor(int unpaddedLength, int blockSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blockSize);
        int withHeader = unpaddedLength + OptionHeaderSize;
        return (blockSize - withHeader % blockSize) % blockSize;
    }
}
