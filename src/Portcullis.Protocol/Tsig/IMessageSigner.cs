namespace Portcullis.Protocol.Tsig;

/// <summary>
/// Signs the messages of one response stream (a zone transfer) with TSIG, in order: RFC 8945
/// §5.3.1 has every message of the response signed, each MAC covering the previous one. The
/// stream keeps <see cref="Reserve"/> octets free at the end of each message for the record.
/// </summary>
public interface IMessageSigner
{
    /// <summary>Octets a message must leave free for the TSIG record.</summary>
    int Reserve { get; }

    /// <summary>
    /// Appends the TSIG record to <c>message[..length]</c> (ARCOUNT is incremented) and returns
    /// the new length.
    /// </summary>
    int Sign(Span<byte> message, int length);
}
