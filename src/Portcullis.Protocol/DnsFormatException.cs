namespace Portcullis.Protocol;

/// <summary>
/// The one error type for bad DNS input, in wire or presentation form. Malformed bytes from the
/// network or a malformed zone file end in this exception (or a false from a Try method), never in
/// IndexOutOfRange, overflow or an unbounded allocation.
/// </summary>
public class DnsFormatException : FormatException
{
    public DnsFormatException(string message) : base(message) { }
    public DnsFormatException(string message, Exception inner) : base(message, inner) { }
}
