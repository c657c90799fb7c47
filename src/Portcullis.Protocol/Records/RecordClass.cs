using System.Globalization;

namespace Portcullis.Protocol.Records;

/// <summary>DNS CLASS values (RFC 1035 §3.2.4, RFC 2136 for NONE).</summary>
public enum RecordClass : ushort
{
    IN = 1,
    CH = 3,
    HS = 4,
    NONE = 254,
    ANY = 255,
}

public static class RecordClasses
{
    public static string ToText(RecordClass c) => c switch
    {
        RecordClass.IN => "IN",
        RecordClass.CH => "CH",
        RecordClass.HS => "HS",
        RecordClass.NONE => "NONE",
        RecordClass.ANY => "ANY",
        _ => "CLASS" + ((ushort)c).ToString(CultureInfo.InvariantCulture),
    };

    /// <summary>Accepts IN, CH (or CHAOS), HS (or HESIOD), NONE, ANY and CLASSnnn, in any case.</summary>
    public static bool TryParse(ReadOnlySpan<char> text, out RecordClass c)
    {
        c = default;
        if (text.Equals("IN", StringComparison.OrdinalIgnoreCase)) c = RecordClass.IN;
        else if (text.Equals("CH", StringComparison.OrdinalIgnoreCase) || text.Equals("CHAOS", StringComparison.OrdinalIgnoreCase)) c = RecordClass.CH;
        else if (text.Equals("HS", StringComparison.OrdinalIgnoreCase) || text.Equals("HESIOD", StringComparison.OrdinalIgnoreCase)) c = RecordClass.HS;
        else if (text.Equals("NONE", StringComparison.OrdinalIgnoreCase)) c = RecordClass.NONE;
        else if (text.Equals("ANY", StringComparison.OrdinalIgnoreCase)) c = RecordClass.ANY;
        else if (text.Length > 5 && text[..5].Equals("CLASS", StringComparison.OrdinalIgnoreCase)
                 && ushort.TryParse(text[5..], NumberStyles.None, CultureInfo.InvariantCulture, out ushort v)) c = (RecordClass)v;
        else return false;
        return true;
    }
}
