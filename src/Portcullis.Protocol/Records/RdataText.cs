using System.Text;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.ZoneText;

namespace Portcullis.Protocol.Records;

/// <summary>
/// The presentation side of RDATA, driven by <see cref="RdataSchema"/>: formatting uncompressed
/// RDATA as text and parsing zone-file tokens into RDATA. (Stub: generic RFC 3597 form only.)
/// </summary>
public static class RdataText
{
    /// <summary>Presentation of RDATA; the RFC 3597 <c>\# len hex</c> form for unknown types.</summary>
    public static string Format(RecordType type, ReadOnlySpan<byte> rdata)
    {
        var sb = new StringBuilder();
        FormatGeneric(sb, rdata);
        return sb.ToString();
    }

    public static void FormatGeneric(StringBuilder sb, ReadOnlySpan<byte> rdata)
    {
        sb.Append("\\# ").Append(rdata.Length);
        if (rdata.Length > 0) sb.Append(' ').Append(Convert.ToHexString(rdata));
    }

    /// <summary>
    /// Parses RDATA tokens of <paramref name="type"/>; relative names are completed with
    /// <paramref name="origin"/>. Errors are <see cref="ZoneFormatException"/>s at the offending token.
    /// </summary>
    public static byte[] Parse(RecordType type, IReadOnlyList<ZoneToken> tokens, DnsName origin, string? file = null)
    {
        throw new ZoneFormatException(file, tokens.Count > 0 ? tokens[0].Line : 0, tokens.Count > 0 ? tokens[0].Column : 0, "not yet implemented");
    }
}
