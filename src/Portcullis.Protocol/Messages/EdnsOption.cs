using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Portcullis.Protocol.Messages;

/// <summary>
/// One EDNS option in the allocating message model. Two options are equal when their codes and
/// encoded data are equal. <see cref="FromWire"/> gives the typed subclass for options this
/// library knows and <see cref="UnknownEdnsOption"/> (raw bytes) for the rest.
/// </summary>
public abstract class EdnsOption : IEquatable<EdnsOption>
{
    protected EdnsOption(EdnsOptionCode code) => Code = code;

    public EdnsOptionCode Code { get; }

    /// <summary>Length of OPTION-DATA.</summary>
    public abstract int DataLength { get; }

    /// <summary>Writes OPTION-DATA (<see cref="DataLength"/> octets).</summary>
    public abstract void WriteData(Span<byte> destination);

    public byte[] GetData()
    {
        var data = new byte[DataLength];
        WriteData(data);
        return data;
    }

    /// <summary>The typed option for wire data; throws <see cref="DnsFormatException"/> when a known option is malformed.</summary>
    public static EdnsOption FromWire(EdnsOptionCode code, ReadOnlySpan<byte> data)
    {
        if (!EdnsOptionWire.TryValidateOption(code, data, out var error)) throw new DnsFormatException(error!);
        switch (code)
        {
            case EdnsOptionCode.Cookie:
                EdnsOptionWire.TryReadCookie(data, out var client, out var server);
                return new CookieOption(client.ToArray(), server.ToArray());
            case EdnsOptionCode.Nsid:
                return new NsidOption(data.ToArray());
            case EdnsOptionCode.ClientSubnet:
                EdnsOptionWire.TryReadClientSubnet(data, out ushort family, out byte source, out byte scope, out var address, out _);
                return new ClientSubnetOption(family, source, scope, address.ToArray());
            case EdnsOptionCode.TcpKeepalive:
                EdnsOptionWire.TryReadTcpKeepalive(data, out var timeout);
                return new TcpKeepaliveOption(timeout);
            case EdnsOptionCode.Padding:
                return new PaddingOption(data.Length);
            case EdnsOptionCode.ExtendedDnsError:
                EdnsOptionWire.TryReadExtendedError(data, out var info, out var text);
                return new ExtendedDnsErrorOption(info, Encoding.UTF8.GetString(text));
            default:
                return new UnknownEdnsOption(code, data.ToArray());
        }
    }

    public bool Equals(EdnsOption? other)
    {
        if (other is null || Code != other.Code || DataLength != other.DataLength) return false;
        return GetData().AsSpan().SequenceEqual(other.GetData());
    }

    public override bool Equals(object? obj) => obj is EdnsOption o && Equals(o);

    public override int GetHashCode() => HashCode.Combine(Code, DataLength);

    public override string ToString() => $"{Code}: {Convert.ToHexString(GetData())}";
}

/// <summary>DNS Cookies (RFC 7873 §4): an 8-octet client cookie and an empty or 8..32-octet server cookie.</summary>
public sealed class CookieOption : EdnsOption
{
    private readonly byte[] _client;
    private readonly byte[] _server;

    public CookieOption(byte[] clientCookie, byte[]? serverCookie = null) : base(EdnsOptionCode.Cookie)
    {
        serverCookie ??= [];
        if (clientCookie.Length != EdnsOptionWire.ClientCookieLength)
            throw new ArgumentException("the client cookie is 8 octets", nameof(clientCookie));
        if (serverCookie.Length != 0 && (serverCookie.Length < EdnsOptionWire.MinServerCookieLength || serverCookie.Length > EdnsOptionWire.MaxServerCookieLength))
            throw new ArgumentException("the server cookie is 8 to 32 octets", nameof(serverCookie));
        _client = clientCookie;
        _server = serverCookie;
    }

    public ReadOnlySpan<byte> ClientCookie => _client;
    /// <summary>Empty when the message carries only a client cookie.</summary>
    public ReadOnlySpan<byte> ServerCookie => _server;

    public override int DataLength => _client.Length + _server.Length;

    public override void WriteData(Span<byte> destination)
    {
        _client.CopyTo(destination);
        _server.CopyTo(destination[_client.Length..]);
    }

    public override string ToString() => $"COOKIE: {Convert.ToHexString(_client)}{(_server.Length > 0 ? " " + Convert.ToHexString(_server) : "")}";
}

/// <summary>Name server identifier (RFC 5001): empty in a query, opaque octets in a response.</summary>
public sealed class NsidOption : EdnsOption
{
    private readonly byte[] _data;

    public NsidOption(byte[]? data = null) : base(EdnsOptionCode.Nsid) => _data = data ?? [];

    public ReadOnlySpan<byte> Data => _data;

    public override int DataLength => _data.Length;

    public override void WriteData(Span<byte> destination) => _data.CopyTo(destination);

    public override string ToString() => $"NSID: {Convert.ToHexString(_data)}";
}

/// <summary>
/// EDNS Client Subnet (RFC 7871 §6). The address is kept truncated to the source prefix with the
/// bits beyond it zero, as it must be on the wire.
/// </summary>
public sealed class ClientSubnetOption : EdnsOption
{
    public const ushort FamilyIPv4 = 1;
    public const ushort FamilyIPv6 = 2;

    private readonly byte[] _address;

    /// <summary>Builds the option from a full address, truncating it to <paramref name="sourcePrefixLength"/> bits.</summary>
    public ClientSubnetOption(IPAddress address, int sourcePrefixLength, int scopePrefixLength = 0) : base(EdnsOptionCode.ClientSubnet)
    {
        (Family, int bits) = address.AddressFamily switch
        {
            AddressFamily.InterNetwork => (FamilyIPv4, 32),
            AddressFamily.InterNetworkV6 => (FamilyIPv6, 128),
            _ => throw new ArgumentException("EDNS Client Subnet carries IPv4 or IPv6 addresses", nameof(address)),
        };
        if ((uint)sourcePrefixLength > bits) throw new ArgumentOutOfRangeException(nameof(sourcePrefixLength));
        if ((uint)scopePrefixLength > bits) throw new ArgumentOutOfRangeException(nameof(scopePrefixLength));
        SourcePrefixLength = (byte)sourcePrefixLength;
        ScopePrefixLength = (byte)scopePrefixLength;
        var bytes = address.GetAddressBytes();
        _address = bytes[..((sourcePrefixLength + 7) / 8)];
        int spare = _address.Length * 8 - sourcePrefixLength;
        if (spare > 0) _address[^1] &= (byte)(0xFF << spare);
    }

    internal ClientSubnetOption(ushort family, byte sourcePrefixLength, byte scopePrefixLength, byte[] truncatedAddress) : base(EdnsOptionCode.ClientSubnet)
    {
        Family = family;
        SourcePrefixLength = sourcePrefixLength;
        ScopePrefixLength = scopePrefixLength;
        _address = truncatedAddress;
    }

    /// <summary>Address family number: 1 for IPv4, 2 for IPv6.</summary>
    public ushort Family { get; }
    public byte SourcePrefixLength { get; }
    /// <summary>Zero in queries (RFC 7871 §6); set by the answering server.</summary>
    public byte ScopePrefixLength { get; }

    /// <summary>The address octets as on the wire: ceil(SourcePrefixLength / 8) of them.</summary>
    public ReadOnlySpan<byte> TruncatedAddress => _address;

    /// <summary>The subnet's address with the bits beyond the prefix zero.</summary>
    public IPAddress Address
    {
        get
        {
            var full = new byte[Family == FamilyIPv4 ? 4 : 16];
            _address.CopyTo(full, 0);
            return new IPAddress(full);
        }
    }

    public override int DataLength => 4 + _address.Length;

    public override void WriteData(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination, Family);
        destination[2] = SourcePrefixLength;
        destination[3] = ScopePrefixLength;
        _address.CopyTo(destination[4..]);
    }

    public override string ToString() => $"CLIENT-SUBNET: {Address}/{SourcePrefixLength}/{ScopePrefixLength}";
}

/// <summary>Padding (RFC 7830 §3): the length is what matters; the octets are written as zeros.</summary>
public sealed class PaddingOption : EdnsOption
{
    public PaddingOption(int length) : base(EdnsOptionCode.Padding)
    {
        if ((uint)length > ushort.MaxValue) throw new ArgumentOutOfRangeException(nameof(length));
        Length = length;
    }

    public int Length { get; }

    public override int DataLength => Length;

    public override void WriteData(Span<byte> destination) => destination[..Length].Clear();

    public override string ToString() => $"PADDING: {Length}";
}

/// <summary>edns-tcp-keepalive (RFC 7828 §3.1): empty in queries; the idle timeout in units of 100 ms in responses.</summary>
public sealed class TcpKeepaliveOption : EdnsOption
{
    public TcpKeepaliveOption(ushort? timeout = null) : base(EdnsOptionCode.TcpKeepalive) => Timeout = timeout;

    /// <summary>In units of 100 milliseconds; null when the option is empty.</summary>
    public ushort? Timeout { get; }

    public override int DataLength => Timeout is null ? 0 : 2;

    public override void WriteData(Span<byte> destination)
    {
        if (Timeout is { } t) BinaryPrimitives.WriteUInt16BigEndian(destination, t);
    }

    public override string ToString() => Timeout is { } t ? $"TCP-KEEPALIVE: {t / 10.0:0.0}s" : "TCP-KEEPALIVE";
}

/// <summary>Extended DNS Error (RFC 8914 §2): an INFO-CODE and optional UTF-8 EXTRA-TEXT.</summary>
public sealed class ExtendedDnsErrorOption : EdnsOption
{
    public ExtendedDnsErrorOption(ExtendedDnsErrorCode infoCode, string extraText = "") : base(EdnsOptionCode.ExtendedDnsError)
    {
        InfoCode = infoCode;
        ExtraText = extraText;
        if (DataLength > ushort.MaxValue) throw new ArgumentException("EXTRA-TEXT is too long", nameof(extraText));
    }

    public ExtendedDnsErrorCode InfoCode { get; }

    /// <summary>Decoded as UTF-8; invalid sequences become U+FFFD.</summary>
    public string ExtraText { get; }

    public override int DataLength => 2 + Encoding.UTF8.GetByteCount(ExtraText);

    public override void WriteData(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination, (ushort)InfoCode);
        Encoding.UTF8.GetBytes(ExtraText, destination[2..]);
    }

    public override string ToString() =>
        $"EDE: {(ushort)InfoCode} ({ExtendedDnsErrors.ToText(InfoCode)}){(ExtraText.Length > 0 ? ": \"" + ExtraText + "\"" : "")}";
}

/// <summary>An option this library does not interpret, kept as its raw octets.</summary>
public sealed class UnknownEdnsOption : EdnsOption
{
    private readonly byte[] _data;

    public UnknownEdnsOption(EdnsOptionCode code, byte[] data) : base(code)
    {
        if (data.Length > ushort.MaxValue) throw new ArgumentException("option data longer than 65535 octets", nameof(data));
        _data = data;
    }

    public ReadOnlySpan<byte> Data => _data;

    public override int DataLength => _data.Length;

    public override void WriteData(Span<byte> destination) => _data.CopyTo(destination);
}
