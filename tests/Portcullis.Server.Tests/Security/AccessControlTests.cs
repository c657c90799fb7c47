using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Server.Configuration;
using Portcullis.Server.Security;
using Portcullis.Server.Tests.Support;

namespace Portcullis.Server.Tests.Security;

/// <summary>
/// Access control on a running server: clients bind distinct 127.0.0.x source addresses to play
/// different hosts. Refusals are REFUSED with an Extended DNS Error (RFC 8914) and are counted.
/// </summary>
public sealed class AccessControlTests
{
    private static DnsMessage Ask(DnsTestClient client, string name, RecordType type, bool rd, Opcode opcode = Opcode.Query, bool tcp = false)
    {
        var q = DnsTestClient.Query(name, type, edns: true);
        q.Header.RecursionDesired = rd;
        q.Header.Opcode = opcode;
        return DnsMessage.Parse(tcp ? client.TcpRaw(q.ToWire()) : client.UdpRaw(q.ToWire()));
    }

    private static ExtendedDnsErrorCode? Ede(DnsMessage m) =>
        m.Edns?.Options.OfType<ExtendedDnsErrorOption>().Select(o => (ExtendedDnsErrorCode?)o.InfoCode).FirstOrDefault();

    [Fact]
    public void A_client_outside_allow_recursion_is_refused_as_prohibited_with_rd_set_or_not()
    {
        using var server = new TestServer(c => c.AllowRecursion = ["127.0.0.5"], ("example.test.", TestServer.ExampleZone));
        var outsider = server.ClientFrom("127.0.0.77");
        foreach (bool rd in new[] { true, false })
        {
            var r = Ask(outsider, "www.example.com.", RecordType.A, rd);
            Assert.Equal(Rcode.Refused, r.Rcode);
            Assert.Empty(r.Answers);
            Assert.Equal(ExtendedDnsErrorCode.Prohibited, Ede(r));
        }
        // A client inside allow-recursion is refused too (no resolver yet), as not authoritative.
        var insider = Ask(server.ClientFrom("127.0.0.5"), "www.example.com.", RecordType.A, rd: true);
        Assert.Equal(Rcode.Refused, insider.Rcode);
        Assert.Equal(ExtendedDnsErrorCode.NotAuthoritative, Ede(insider));
        // Authoritative data is still served to the outsider.
        Assert.Equal(Rcode.NoError, Ask(outsider, "www.example.test.", RecordType.A, rd: true).Rcode);
        Assert.Equal(2, server.Server.Processor.Counters[SecurityReason.RecursionRefused]);
    }

    [Fact]
    public void Allow_query_of_a_zone_refuses_the_clients_it_does_not_admit()
    {
        using var server = new TestServer(c => c.Zones[0].AllowQuery = ["!127.0.0.78", "127.0.0.0/8"], ("example.test.", TestServer.ExampleZone));
        var refused = Ask(server.ClientFrom("127.0.0.78"), "www.example.test.", RecordType.A, rd: false);
        Assert.Equal(Rcode.Refused, refused.Rcode);
        Assert.Equal(ExtendedDnsErrorCode.Prohibited, Ede(refused));
        Assert.False(refused.Header.AuthoritativeAnswer);
        var served = Ask(server.ClientFrom("127.0.0.79"), "www.example.test.", RecordType.A, rd: false);
        Assert.Equal(Rcode.NoError, served.Rcode);
        Assert.Single(served.Answers);
        Assert.Equal(1, server.Server.Processor.Counters[SecurityReason.QueryRefused]);
    }

    [Fact]
    public void Zone_transfers_are_refused_to_everyone_by_default_and_logged_once_each()
    {
        var log = new CollectingLoggerFactory();
        using var server = new TestServer(null, log, ("example.test.", TestServer.ExampleZone));
        var client = server.ClientFrom("127.0.0.80");
        foreach (var type in new[] { RecordType.AXFR, RecordType.IXFR })
        {
            var r = Ask(client, "example.test.", type, rd: false, tcp: true);
            Assert.Equal(Rcode.Refused, r.Rcode);
            Assert.Empty(r.Answers);
            Assert.Equal(ExtendedDnsErrorCode.Prohibited, Ede(r));
        }
        Assert.Equal(2, server.Server.Processor.Counters[SecurityReason.TransferRefused]);
        Assert.True(log.WaitFor("zone transfer of example.test. refused to 127.0.0.80", DnsTestClient.Timeout));
    }

    [Fact]
    public void Updates_and_notifies_are_refused_by_default_and_updates_applied_when_allowed()
    {
        using var server = new TestServer(c => c.AllowUpdate = ["127.0.0.81"], ("example.test.", TestServer.ExampleZone));
        var stranger = Ask(server.ClientFrom("127.0.0.82"), "example.test.", RecordType.SOA, rd: false, Opcode.Update);
        Assert.Equal(Rcode.Refused, stranger.Rcode);
        Assert.Equal(ExtendedDnsErrorCode.Prohibited, Ede(stranger));
        // Allowed: applied (an update with no changes is NOERROR and leaves the serial, RFC 2136 §3.4.2).
        Assert.Equal(Rcode.NoError, Ask(server.ClientFrom("127.0.0.81"), "example.test.", RecordType.SOA, rd: false, Opcode.Update).Rcode);
        Assert.Equal(2024060101u, server.Server.Processor.Catalog.Get(DnsName.Parse("example.test."))!.Serial);
        // RFC 2136 §3.1.1: an update for a zone we do not serve is NOTAUTH.
        Assert.Equal(Rcode.NotAuth, Ask(server.ClientFrom("127.0.0.81"), "example.com.", RecordType.SOA, rd: false, Opcode.Update).Rcode);
        var notify = Ask(server.ClientFrom("127.0.0.81"), "example.test.", RecordType.SOA, rd: false, Opcode.Notify);
        Assert.Equal(Rcode.Refused, notify.Rcode);
        Assert.Equal(1, server.Server.Processor.Counters[SecurityReason.UpdateRefused]);
        Assert.Equal(1, server.Server.Processor.Counters[SecurityReason.NotifyRefused]);
    }

    [Fact]
    public void Opening_recursion_to_everyone_gets_a_loud_warning_at_start()
    {
        var log = new CollectingLoggerFactory();
        using (new TestServer(c => c.AllowRecursion = ["any"], log, ("example.test.", TestServer.ExampleZone)))
            Assert.Contains(log.Lines, l => l.StartsWith("Warning") && l.Contains("OPEN RESOLVER"));
        var quiet = new CollectingLoggerFactory();
        using (new TestServer(null, quiet, ("example.test.", TestServer.ExampleZone)))
            Assert.DoesNotContain(quiet.Lines, l => l.Contains("OPEN RESOLVER"));
    }

    [Fact]
    public void Acl_errors_in_the_configuration_name_file_line_and_element()
    {
        const string yaml = "acls:\n  office: [ 192.0.2.0/24 ]\nallow-transfer:\n  - office\n  - 198.51.100.0/40\n";
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(yaml, "/etc/portcullis.yaml"));
        Assert.StartsWith("/etc/portcullis.yaml:5:5: allow-transfer: '198.51.100.0/40'", e.Message);
        var builtIn = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("acls:\n  any: [ 192.0.2.1 ]\n", "p.yaml"));
        Assert.Contains("built-in", builtIn.Message);
        // Lists in YAML replace the defaults rather than adding to them.
        var config = ConfigLoader.Parse("allow-query: [ 192.0.2.0/24 ]\n", "q.yaml");
        Assert.Equal(["192.0.2.0/24"], config.AllowQuery);
    }
}
