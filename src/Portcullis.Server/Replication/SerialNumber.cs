namespace Portcullis.Server.Replication;

/// <summary>Serial number arithmetic (RFC 1982 §3.2) for SOA serials, which wrap at 2^32.</summary>
public static class SerialNumber
{
    /// <summary>The serial of a SOA record: the RDATA's first fixed field, 20 octets from its end (RFC 1035 §3.3.13).</summary>
    public static uint Of(Portcullis.Protocol.Records.ResourceRecord soa) =>
        System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(soa.Data.AsSpan(soa.Data.Length - 20));

    /// <summary>Whether <paramref name="a"/> is newer than <paramref name="b"/>. Serials exactly 2^31
    /// apart are not comparable (RFC 1982 §3.2): neither is newer.</summary>
    public static bool IsNewer(uint a, uint b) => a != b && (int)(a - b) > 0 && a - b != 0x8000_0000u;
}
