using System.Buffers.Binary;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.Wire;

namespace Portcullis.Protocol.Messages;

/// <summary>
/// A view of a message's OPT pseudo-record (RFC 6891 §6.1.2) over the message's own bytes, for the
/// server's query path: nothing is allocated. <see cref="IsPresent"/> is false when the message has
/// no OPT record. A view obtained from <see cref="TryRead"/> has had every option checked.
/// </summary>
public readonly ref struct OptRecord
{
    private OptRecord(ushort udpPayloadSize, uint ttl, ReadOnlySpan<byte> options)
    {
        IsPresent = true;
        UdpPayloadSize = udpPayloadSize;
        ExtendedRcode = (byte)(ttl >> 24);
        Version = (byte)(ttl >> 16);
        Flags = (ushort)ttl;
        Options = options;
    }

    public bool IsPresent { get; }

    /// <summary>The requestor's UDP payload size (the OPT CLASS field), as sent.</summary>
    public ushort UdpPayloadSize { get; }

    /// <summary>RFC 6891 §6.2.5: values below 512 are treated as 512.</summary>
    public int EffectiveUdpPayloadSize => Math.Max(512, (int)UdpPayloadSize);

    /// <summary>The upper 8 bits of the 12-bit RCODE.</summary>
    public byte ExtendedRcode { get; }

    public byte Version { get; }

    /// <summary>The 16 flag bits of the TTL: DO (the top bit) and Z.</summary>
    public ushort Flags { get; }

    /// <summary>DNSSEC OK (RFC 3225).</summary>
    public bool DnssecOk => (Flags & Edns.DnssecOkFlag) != 0;

    /// <summary>The option TLVs (OPT RDATA).</summary>
    public ReadOnlySpan<byte> Options { get; }

    /// <summary>The full RCODE given the header's 4 bits.</summary>
    public Rcode CombineRcode(byte headerRcode) => Rcodes.Combine(headerRcode, ExtendedRcode);

    public EdnsOptionEnumerator GetEnumerator() => new(Options);

    /// <summary>The data of the first option with <paramref name="code"/>.</summary>
    public bool TryGetOption(EdnsOptionCode code, out ReadOnlySpan<byte> data)
    {
        foreach (var option in new EdnsOptionEnumerator(Options))
        {
            if (option.Code == code) { data = option.Data; return true; }
        }
        data = default;
        return false;
    }

    /// <summary>The COOKIE option (RFC 7873 §4): 8-octet client cookie and an empty or 8..32-octet server cookie.</summary>
    public bool TryGetCookie(out ReadOnlySpan<byte> clientCookie, out ReadOnlySpan<byte> serverCookie)
    {
        if (TryGetOption(EdnsOptionCode.Cookie, out var data)) return EdnsOptionWire.TryReadCookie(data, out clientCookie, out serverCookie);
        clientCookie = default;
        serverCookie = default;
        return false;
    }

    /// <summary>
    /// Builds the view from a record already read as type OPT; false (FORMERR) when an option runs
    /// past the end or a known option is malformed.
    /// </summary>
    public static bool TryCreate(RecordClass @class, uint ttl, ReadOnlySpan<byte> rdata, out OptRecord opt, out string? error)
    {
        if (!EdnsOptionWire.TryValidate(rdata, out error)) { opt = default; return false; }
        opt = new OptRecord((ushort)@class, ttl, rdata);
        return true;
    }

    /// <summary>
    /// Finds and checks the OPT record of a whole message. False means FORMERR: a malformed header,
    /// question or record, counts beyond the message, trailing octets, more than one OPT record
    /// (RFC 6891 §6.1.1), an OPT record outside the additional section or not owned by the root
    /// (§6.1.2), or malformed options. RDATA of other records is only bounds-checked.
    /// </summary>
    public static bool TryRead(ReadOnlySpan<byte> message, out OptRecord opt) =>
        DnsMessage.Walk(message, null, checkRdata: false, out opt, out _, out _);

    /// <summary>
    /// As <see cref="TryRead"/>, continuing a reader that has just read the question section: the
    /// answer, authority and additional sections are walked (the reader ends after them).
    /// </summary>
    public static bool TryReadFrom(scoped ref DnsMessageReader reader, out OptRecord opt) =>
        DnsMessage.WalkRecords(ref reader, null, checkRdata: false, out opt, out _, out _);
}
