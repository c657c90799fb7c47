using Portcullis.Protocol.Records;
using Portcullis.Server.Tests.Support;
using Portcullis.Testing;
using Xunit;

namespace Portcullis.Server.Tests.Telemetry;

/// <summary>The server with dnstap: file: — every client query and response it answered, read back by BIND's dnstap-read.</summary>
public sealed class DnstapServeTests
{
    [Fact]
    public void Queries_over_UDP_and_TCP_and_their_responses_are_in_the_dnstap_file_that_dnstap_read_prints()
    {
        string path;
        using (var server = new TestServer(c =>
        {
            c.Dnstap.File = Path.Combine(Path.GetTempPath(), $"portcullis-dnstap-{Guid.NewGuid():N}.fstrm");
            c.Dnstap.Identity = "test-server";
        }, ("example.test.", TestServer.ExampleZone)))
        {
            path = server.Config.Dnstap.File!;
            Assert.NotEmpty(server.Client().Udp("www.example.test.", RecordType.A).Answers);
            Assert.NotEmpty(server.Client().Udp("example.test.", RecordType.MX).Answers);
            Assert.NotEmpty(server.Client().Tcp("example.test.", RecordType.NS).Answers);
        }
        try
        {
            // Disposing the server closed the file (STOP frame): dnstap-read reads it whole.
            var lines = ExternalProcess.Run("dnstap-read", [path]).EnsureSuccess().Stdout
                .Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(6, lines.Length);
            Assert.Equal(3, lines.Count(l => l.Contains(" CQ ")));
            Assert.Equal(3, lines.Count(l => l.Contains(" CR ")));
            Assert.Equal(2, lines.Count(l => l.Contains("www.example.test/IN/A")));
            Assert.Equal(2, lines.Count(l => l.Contains("example.test/IN/MX")));
            Assert.Equal(2, lines.Count(l => l.Contains("example.test/IN/NS") && l.Contains(" TCP ")));
            var yaml = ExternalProcess.Run("dnstap-read", ["-y", path]).EnsureSuccess().Stdout;
            Assert.Contains("identity: test-server", yaml);
        }
        finally { File.Delete(path); }
    }
}
