using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;

namespace Portcullis.Protocol.Messages;

public sealed record DnsQuestion(DnsName Name, RecordType Type, RecordClass Class = RecordClass.IN)
{
    public override string ToString() => $"{Name} {RecordClasses.ToText(Class)} {RecordTypes.ToText(Type)}";
}
