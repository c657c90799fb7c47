using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Records;
using Xunit;

namespace Portcullis.Server.Tests.Authoritative;

/// <summary>Two answers with the same RRsets (owner, type, RRSIG's covered type, count) in answer and authority, and the same rcode and AA.</summary>
internal static class SectionShape
{
    public static void AssertSame(DnsMessage expected, DnsMessage actual)
    {
        Assert.Equal(expected.Rcode, actual.Rcode);
        Assert.Equal(expected.Header.AuthoritativeAnswer, actual.Header.AuthoritativeAnswer);
        Assert.Equal(Sets(expected.Answers), Sets(actual.Answers));
        Assert.Equal(Sets(expected.Authority), Sets(actual.Authority));
    }

    private static string[] Sets(List<ResourceRecord> section) =>
        [.. section.Select(x => $"{x.Owner.ToString().ToLowerInvariant()} {x.Type}" + (x.Type == RecordType.RRSIG ? $"({(RecordType)(x.Data[0] << 8 | x.Data[1])})" : ""))
            .GroupBy(s => s).Select(g => $"{g.Key} x{g.Count()}").Order(StringComparer.Ordinal)];
}
