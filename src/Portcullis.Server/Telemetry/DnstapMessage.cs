using Google.Protobuf;

namespace Portcullis.Server.Telemetry;

/// <summary>Message.Type of dnstap.proto: which side of which exchange a message records.</summary>
public enum DnstapMessageType
{
    AuthQuery = 1,
    AuthResponse = 2,
    ResolverQuery = 3,
    ResolverResponse = 4,
    ClientQuery = 5,
    ClientResponse = 6,
}

/// <summary>SocketProtocol of dnstap.proto (the values dnstap-read knows).</summary>
public enum DnstapSocketProtocol
{
    Udp = 1,
    Tcp = 2,
}

/// <summary>
/// The fields of one dnstap Message. Addresses are 4 (IPv4) or 16 (IPv6) octets; the socket
/// family is taken from their length. A time left at default is not written.
/// </summary>
public struct DnstapEntry
{
    public DnstapMessageType Type;
    public DnstapSocketProtocol Protocol;
    public ReadOnlyMemory<byte> QueryAddress;
    public int QueryPort;
    public ReadOnlyMemory<byte> ResponseAddress;
    public int ResponsePort;
    public DateTime QueryTime;
    public ReadOnlyMemory<byte> QueryMessage;
    public DateTime ResponseTime;
    public ReadOnlyMemory<byte> ResponseMessage;
}

/// <summary>
/// Encodes a dnstap.Dnstap protobuf (the schema of dnstap.proto, github.com/dnstap/dnstap.pb)
/// by hand with Google.Protobuf's CodedOutputStream: no generated code, only the field numbers.
/// Runs on the logger's background task, never on the query path.
/// </summary>
public static class DnstapEncoder
{
    // Dnstap
    const int DnstapIdentity = 1, DnstapVersion = 2, DnstapMessageField = 14, DnstapType = 15;
    const int DnstapTypeMessage = 1;
    // Message
    const int MType = 1, MSocketFamily = 2, MSocketProtocol = 3, MQueryAddress = 4, MResponseAddress = 5,
        MQueryPort = 6, MResponsePort = 7, MQueryTimeSec = 8, MQueryTimeNsec = 9, MQueryMessage = 10,
        MResponseTimeSec = 12, MResponseTimeNsec = 13, MResponseMessage = 14;
    // SocketFamily
    const int FamilyInet = 1, FamilyInet6 = 2;

    /// <summary>An upper bound of the encoded size, for sizing the destination.</summary>
    public static int MaxSize(int identityLength, int versionLength, in DnstapEntry m) =>
        identityLength + versionLength + m.QueryAddress.Length + m.ResponseAddress.Length
        + m.QueryMessage.Length + m.ResponseMessage.Length + 128;

    /// <summary>Writes the Dnstap message into <paramref name="destination"/> and returns its length.</summary>
    public static int Encode(byte[] destination, ReadOnlyMemory<byte> identity, ReadOnlyMemory<byte> version, in DnstapEntry m)
    {
        var output = new CodedOutputStream(destination);
        if (!identity.IsEmpty) WriteBytes(output, DnstapIdentity, identity);
        if (!version.IsEmpty) WriteBytes(output, DnstapVersion, version);
        output.WriteTag(DnstapMessageField, WireFormat.WireType.LengthDelimited);
        output.WriteLength(MessageSize(m));
        WriteMessage(output, m);
        output.WriteTag(DnstapType, WireFormat.WireType.Varint);
        output.WriteEnum(DnstapTypeMessage);
        output.Flush();
        return (int)output.Position;
    }

    /// <summary>Encodes into a new array (tools and tests).</summary>
    public static byte[] Encode(ReadOnlyMemory<byte> identity, ReadOnlyMemory<byte> version, in DnstapEntry m)
    {
        var buffer = new byte[MaxSize(identity.Length, version.Length, m)];
        return buffer.AsSpan(0, Encode(buffer, identity, version, m)).ToArray();
    }

    static void WriteMessage(CodedOutputStream o, in DnstapEntry m)
    {
        o.WriteTag(MType, WireFormat.WireType.Varint);
        o.WriteEnum((int)m.Type);
        int family = Family(m);
        if (family != 0)
        {
            o.WriteTag(MSocketFamily, WireFormat.WireType.Varint);
            o.WriteEnum(family);
        }
        o.WriteTag(MSocketProtocol, WireFormat.WireType.Varint);
        o.WriteEnum((int)m.Protocol);
        if (!m.QueryAddress.IsEmpty) WriteBytes(o, MQueryAddress, m.QueryAddress);
        if (!m.ResponseAddress.IsEmpty) WriteBytes(o, MResponseAddress, m.ResponseAddress);
        if (!m.QueryAddress.IsEmpty)
        {
            o.WriteTag(MQueryPort, WireFormat.WireType.Varint);
            o.WriteUInt32((uint)m.QueryPort);
        }
        if (!m.ResponseAddress.IsEmpty)
        {
            o.WriteTag(MResponsePort, WireFormat.WireType.Varint);
            o.WriteUInt32((uint)m.ResponsePort);
        }
        if (m.QueryTime != default)
        {
            var (sec, nsec) = Split(m.QueryTime);
            o.WriteTag(MQueryTimeSec, WireFormat.WireType.Varint);
            o.WriteUInt64(sec);
            o.WriteTag(MQueryTimeNsec, WireFormat.WireType.Fixed32);
            o.WriteFixed32(nsec);
        }
        if (!m.QueryMessage.IsEmpty) WriteBytes(o, MQueryMessage, m.QueryMessage);
        if (m.ResponseTime != default)
        {
            var (sec, nsec) = Split(m.ResponseTime);
            o.WriteTag(MResponseTimeSec, WireFormat.WireType.Varint);
            o.WriteUInt64(sec);
            o.WriteTag(MResponseTimeNsec, WireFormat.WireType.Fixed32);
            o.WriteFixed32(nsec);
        }
        if (!m.ResponseMessage.IsEmpty) WriteBytes(o, MResponseMessage, m.ResponseMessage);
    }

    static int MessageSize(in DnstapEntry m)
    {
        int size = 1 + CodedOutputStream.ComputeEnumSize((int)m.Type)
            + 1 + CodedOutputStream.ComputeEnumSize((int)m.Protocol);
        if (Family(m) != 0) size += 2;
        if (!m.QueryAddress.IsEmpty) size += 1 + BytesSize(m.QueryAddress.Length) + 1 + CodedOutputStream.ComputeUInt32Size((uint)m.QueryPort);
        if (!m.ResponseAddress.IsEmpty) size += 1 + BytesSize(m.ResponseAddress.Length) + 1 + CodedOutputStream.ComputeUInt32Size((uint)m.ResponsePort);
        if (m.QueryTime != default) size += 1 + CodedOutputStream.ComputeUInt64Size(Split(m.QueryTime).Sec) + 1 + 4;
        if (!m.QueryMessage.IsEmpty) size += 1 + BytesSize(m.QueryMessage.Length);
        if (m.ResponseTime != default) size += 1 + CodedOutputStream.ComputeUInt64Size(Split(m.ResponseTime).Sec) + 1 + 4;
        if (!m.ResponseMessage.IsEmpty) size += 1 + BytesSize(m.ResponseMessage.Length);
        return size;
    }

    static int BytesSize(int length) => CodedOutputStream.ComputeLengthSize(length) + length;

    static int Family(in DnstapEntry m) => (m.QueryAddress.IsEmpty ? m.ResponseAddress.Length : m.QueryAddress.Length) switch
    {
        4 => FamilyInet,
        16 => FamilyInet6,
        _ => 0,
    };

    static void WriteBytes(CodedOutputStream o, int field, ReadOnlyMemory<byte> value)
    {
        o.WriteTag(field, WireFormat.WireType.LengthDelimited);
        // UnsafeWrap: the bytes are written at once, so no copy is needed.
        o.WriteBytes(UnsafeByteOperations.UnsafeWrap(value));
    }

    static (ulong Sec, uint Nsec) Split(DateTime utc)
    {
        long ticks = utc.Ticks - DateTime.UnixEpoch.Ticks;
        return ((ulong)(ticks / TimeSpan.TicksPerSecond), (uint)(ticks % TimeSpan.TicksPerSecond * 100));
    }
}
