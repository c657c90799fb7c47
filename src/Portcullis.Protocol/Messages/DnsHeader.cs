using System.Buffers.Binary;

namespace Portcullis.Protocol.Messages;

public enum Opcode : byte
{
    Query = 0, IQuery = 1, Status = 2, Notify = 4, Update = 5, DSO = 6,
}

/// <summary>RCODEs, including the extended ones carried partly in the OPT record (RFC 6891) and TSIG errors.</summary>
public enum Rcode : ushort
{
    NoError = 0, FormErr = 1, ServFail = 2, NXDomain = 3, NotImp = 4, Refused = 5, YXDomain = 6,
    YXRRSet = 7, NXRRSet = 8, NotAuth = 9, NotZone = 10, DSOTypeNI = 11,
    BadVers = 16, BadSig = 16, BadKey = 17, BadTime = 18, BadMode = 19, BadName = 20, BadAlg = 21,
    BadTrunc = 22, BadCookie = 23,
}

/// <summary>The 12-octet message header (RFC 1035 §4.1.1, RFC 2535 AD/CD bits).</summary>
public struct DnsHeader
{
    public const int Size = 12;

    public ushort Id;
    /// <summary>The raw flags word: QR, OPCODE, AA, TC, RD, RA, Z, AD, CD, RCODE.</summary>
    public ushort Flags;
    public ushort QuestionCount;
    public ushort AnswerCount;
    public ushort AuthorityCount;
    public ushort AdditionalCount;

    public bool IsResponse { readonly get => (Flags & 0x8000) != 0; set => SetBit(0x8000, value); }
    public Opcode Opcode { readonly get => (Opcode)((Flags >> 11) & 0xF); set => Flags = (ushort)((Flags & ~0x7800) | (((int)value & 0xF) << 11)); }
    public bool AuthoritativeAnswer { readonly get => (Flags & 0x0400) != 0; set => SetBit(0x0400, value); }
    public bool Truncated { readonly get => (Flags & 0x0200) != 0; set => SetBit(0x0200, value); }
    public bool RecursionDesired { readonly get => (Flags & 0x0100) != 0; set => SetBit(0x0100, value); }
    public bool RecursionAvailable { readonly get => (Flags & 0x0080) != 0; set => SetBit(0x0080, value); }
    public bool Z { readonly get => (Flags & 0x0040) != 0; set => SetBit(0x0040, value); }
    public bool AuthenticData { readonly get => (Flags & 0x0020) != 0; set => SetBit(0x0020, value); }
    public bool CheckingDisabled { readonly get => (Flags & 0x0010) != 0; set => SetBit(0x0010, value); }
    /// <summary>The low four bits of the RCODE; the upper eight live in the OPT record.</summary>
    public byte Rcode { readonly get => (byte)(Flags & 0xF); set => Flags = (ushort)((Flags & ~0xF) | (value & 0xF)); }

    private void SetBit(int bit, bool on) => Flags = (ushort)(on ? Flags | bit : Flags & ~bit);

    public static bool TryRead(ReadOnlySpan<byte> message, out DnsHeader header)
    {
        if (message.Length < Size) { header = default; return false; }
        header = new DnsHeader
        {
            Id = BinaryPrimitives.ReadUInt16BigEndian(message),
            Flags = BinaryPrimitives.ReadUInt16BigEndian(message[2..]),
            QuestionCount = BinaryPrimitives.ReadUInt16BigEndian(message[4..]),
            AnswerCount = BinaryPrimitives.ReadUInt16BigEndian(message[6..]),
            AuthorityCount = BinaryPrimitives.ReadUInt16BigEndian(message[8..]),
            AdditionalCount = BinaryPrimitives.ReadUInt16BigEndian(message[10..]),
        };
        return true;
    }

    public readonly void WriteTo(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination, Id);
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], Flags);
        BinaryPrimitives.WriteUInt16BigEndian(destination[4..], QuestionCount);
        BinaryPrimitives.WriteUInt16BigEndian(destination[6..], AnswerCount);
        BinaryPrimitives.WriteUInt16BigEndian(destination[8..], AuthorityCount);
        BinaryPrimitives.WriteUInt16BigEndian(destination[10..], AdditionalCount);
    }
}
