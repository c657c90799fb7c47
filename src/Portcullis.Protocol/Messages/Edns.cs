using System.Buffers.Binary;

namespace Portcullis.Protocol.Messages;

/// <summary>
/// EDNS(0) in the allocating message model (RFC 6891 §6.1): what the OPT pseudo-record carries.
/// In <see cref="DnsMessage"/> it lives here, never among the additional records.
/// </summary>
public sealed class Edns
{
    /// <summary>The payload size of DNS Flag Day 2020, fitting one unfragmented datagram on common paths.</summary>
    public const ushort DefaultUdpPayloadSize = 1232;

    /// <summary>DO, the top bit of the OPT TTL's flags (RFC 3225 §3).</summary>
    public const ushort DnssecOkFlag = 0x8000;

    /// <summary>The OPT CLASS field.</summary>
    public ushort UdpPayloadSize { get; set; } = DefaultUdpPayloadSize;

    /// <summary>The upper 8 bits of the 12-bit RCODE (RFC 6891 §6.1.3).</summary>
    public byte ExtendedRcode { get; set; }

    public byte Version { get; set; }

    /// <summary>The 16 flag bits: DO and the Z bits (kept as received so that a message re-encodes as it came).</summary>
    public ushort Flags { get; set; }

    public bool DnssecOk
    {
        get => (Flags & DnssecOkFlag) != 0;
        set => Flags = (ushort)(value ? Flags | DnssecOkFlag : Flags & ~DnssecOkFlag);
    }

    public List<EdnsOption> Options { get; } = [];

    /// <summary>The first option of type <typeparamref name="T"/>, or null.</summary>
    public T? Find<T>() where T : EdnsOption
    {
        foreach (var option in Options)
            if (option is T t) return t;
        return null;
    }

    /// <summary>The OPT TTL: EXTENDED-RCODE, VERSION, then DO and Z (RFC 6891 §6.1.3).</summary>
    public static uint ComposeTtl(byte extendedRcode, byte version, ushort flags) =>
        ((uint)extendedRcode << 24) | ((uint)version << 16) | flags;

    internal uint Ttl => ComposeTtl(ExtendedRcode, Version, Flags);

    /// <summary>The option TLVs, as OPT RDATA.</summary>
    public byte[] GetOptionsData()
    {
        int length = 0;
        foreach (var option in Options) length += EdnsOptionWire.OptionHeaderSize + option.DataLength;
        if (length > ushort.MaxValue) throw new InvalidOperationException("EDNS options longer than 65535 octets");
        var data = new byte[length];
        int pos = 0;
        foreach (var option in Options)
        {
            BinaryPrimitives.WriteUInt16BigEndian(data.AsSpan(pos), (ushort)option.Code);
            BinaryPrimitives.WriteUInt16BigEndian(data.AsSpan(pos + 2), (ushort)option.DataLength);
            option.WriteData(data.AsSpan(pos + EdnsOptionWire.OptionHeaderSize, option.DataLength));
            pos += EdnsOptionWire.OptionHeaderSize + option.DataLength;
        }
        return data;
    }

    /// <summary>The model of a checked OPT view.</summary>
    public static Edns FromOpt(scoped in OptRecord opt)
    {
        var edns = new Edns
        {
            UdpPayloadSize = opt.UdpPayloadSize,
            ExtendedRcode = opt.ExtendedRcode,
            Version = opt.Version,
            Flags = opt.Flags,
        };
        foreach (var option in opt) edns.Options.Add(EdnsOption.FromWire(option.Code, option.Data));
        return edns;
    }
}
