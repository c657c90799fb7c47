namespace Portcullis.Protocol.Messages;

/// <summary>
/// The 12-bit RCODE of RFC 6891 §6.1.3: the low 4 bits in the header, the upper 8 bits in the OPT
/// record's TTL (EXTENDED-RCODE). Without an OPT record only values 0..15 can be expressed.
/// </summary>
public static class Rcodes
{
    public const int MaxExtended = 0xFFF;

    /// <summary>Joins the header's 4-bit RCODE and the OPT record's 8-bit EXTENDED-RCODE.</summary>
    public static Rcode Combine(byte headerRcode, byte extendedRcode) =>
        (Rcode)((extendedRcode << 4) | (headerRcode & 0xF));

    /// <summary>The low 4 bits, for the header.</summary>
    public static byte HeaderPart(Rcode rcode)
    {
        Check(rcode);
        return (byte)((ushort)rcode & 0xF);
    }

    /// <summary>The upper 8 bits, for the OPT record's EXTENDED-RCODE.</summary>
    public static byte ExtendedPart(Rcode rcode)
    {
        Check(rcode);
        return (byte)((ushort)rcode >> 4);
    }

    /// <summary>True when the RCODE needs an OPT record to be sent (above 15).</summary>
    public static bool NeedsEdns(Rcode rcode) => (ushort)rcode > 0xF;

    private static void Check(Rcode rcode)
    {
        // TSIG's BADSIG..BADTRUNC live in the TSIG record's error field, not here, but share values.
        if ((ushort)rcode > MaxExtended) throw new ArgumentOutOfRangeException(nameof(rcode), "an RCODE is 12 bits");
    }
}
