namespace Portcullis.Server.Replication;

/// <summary>Serial number arithmetic (RFC 1982 §3.2) for SOA serials, which wrap at 2^32.</summary>
public static class SerialNumber
{
    /// <summary>Whether <paramref name="a"/> is newer than <paramref name="b"/>. Serials exactly 2^31
    /// apart are not comparable (RFC 1982 §3.2): neither is newer.</summary>
    public static bool IsNewer(uint a, uint b) => a != b && (int)(a - b) > 0 && a - b != 0x8000_0000u;
}
