using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;

namespace Portcullis.Server.Tests.Differential;

/// <summary>
/// One query of the differential run, sent identically to every server: the question, EDNS
/// (none, or version 0 with a 1232-octet payload), RD, and the transport. <see cref="Why"/> says
/// which generator rule made it, for the report.
/// </summary>
public sealed record DifferentialQuery(DnsName Name, RecordType Type, bool Edns, bool RecursionDesired, bool Tcp, string Why)
{
    public const ushort EdnsPayload = 1232;

    public byte[] ToWire(ushort id)
    {
        var q = DnsMessage.CreateQuery(Name, Type, RecordClass.IN, id, RecursionDesired);
        if (Edns) q.Edns = new Edns { UdpPayloadSize = EdnsPayload };
        return q.ToWire();
    }

    /// <summary>The same question over TCP (the retry a client makes after TC=1).</summary>
    public DifferentialQuery OverTcp(string why) => this with { Tcp = true, Why = why };

    public override string ToString() =>
        $"{Name} {RecordTypes.ToText(Type)} {(Tcp ? "TCP" : "UDP")}{(Edns ? " +edns" : "")}{(RecursionDesired ? " +rd" : "")} [{Why}]";
}
