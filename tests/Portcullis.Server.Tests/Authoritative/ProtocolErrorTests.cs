using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Records;
using Portcullis.Server.Tests.Support;

namespace Portcullis.Server.Tests.Authoritative;

/// <summary>What the server answers (or drops) when a query is not a plain, well-formed QUERY.</summary>
public sealed class ProtocolErrorTests : IDisposable
{
    private readonly TestServer _server = new(("example.test.", TestServer.ExampleZone));
    private DnsTestClient Client => _server.Client();

    public void Dispose() => _server.Dispose();

    [Fact]
    public void Unknown_opcode_gets_notimp()
    {
        var q = DnsTestClient.Query("www.example.test.", RecordType.A);
        q.Header.Opcode = Opcode.Status;
        var r = DnsMessage.Parse(Client.UdpRaw(q.ToWire()));
        Assert.Equal(Rcode.NotImp, r.Rcode);
        Assert.Equal(q.Header.Id, r.Header.Id);
        Assert.Equal(Opcode.Status, r.Header.Opcode);
    }

    [Fact]
    public void Two_questions_get_formerr()
    {
        var q = DnsTestClient.Query("www.example.test.", RecordType.A);
        q.Questions.Add(q.Questions[0] with { Type = RecordType.AAAA });
        var r = DnsMessage.Parse(Client.UdpRaw(q.ToWire()));
        Assert.Equal(Rcode.FormErr, r.Rcode);
    }

    [Fact]
    public void A_truncated_question_gets_formerr_with_the_same_id()
    {
        var wire = DnsTestClient.Query("www.example.test.", RecordType.A).ToWire();
        var r = DnsMessage.Parse(Client.UdpRaw(wire[..(wire.Length - 3)]));
        Assert.Equal(Rcode.FormErr, r.Rcode);
        Assert.Equal(wire[0], Client.UdpRaw(wire[..(wire.Length - 3)])[0]);
        Assert.Empty(r.Questions);
    }

    [Fact]
    public void Two_opt_records_get_formerr()
    {
        var wire = DnsTestClient.Query("www.example.test.", RecordType.A, edns: true).ToWire();
        // Append a second copy of the OPT record (its last 11 octets) and count it.
        var twice = wire.Concat(wire[^11..]).ToArray();
        twice[11]++;
        Assert.Equal(Rcode.FormErr, DnsMessage.Parse(Client.UdpRaw(twice)).Rcode);
    }

    [Fact]
    public void Edns_version_above_zero_gets_badvers()
    {
        var q = DnsTestClient.Query("www.example.test.", RecordType.A, edns: true);
        q.Edns!.Version = 1;
        var r = DnsMessage.Parse(Client.UdpRaw(q.ToWire()));
        Assert.Equal(Rcode.BadVers, r.Rcode);
        Assert.NotNull(r.Edns);
        Assert.Equal(0, r.Edns!.Version);
        Assert.Empty(r.Answers);
    }

    [Fact]
    public void Responses_and_runts_are_dropped_and_the_server_keeps_answering()
    {
        var response = DnsTestClient.Query("www.example.test.", RecordType.A);
        response.Header.IsResponse = true;
        Assert.True(Client.UdpGetsNoAnswer(response.ToWire(), TimeSpan.FromMilliseconds(300)));
        Assert.True(Client.UdpGetsNoAnswer([1, 2, 3], TimeSpan.FromMilliseconds(300)));
        Assert.Equal(Rcode.NoError, Client.Udp("www.example.test.", RecordType.A).Rcode);
    }

    [Fact]
    public void Edns_is_echoed_with_our_payload_size_and_the_do_bit()
    {
        var q = DnsTestClient.Query("www.example.test.", RecordType.A, edns: true, payload: 4096);
        q.Edns!.DnssecOk = true;
        var r = DnsMessage.Parse(Client.UdpRaw(q.ToWire()));
        Assert.NotNull(r.Edns);
        Assert.Equal(1232, r.Edns!.UdpPayloadSize);
        Assert.True(r.Edns.DnssecOk);
        var plain = Client.Udp("www.example.test.", RecordType.A);
        Assert.Null(plain.Edns);
    }

    [Fact]
    public void Zone_transfers_are_refused_by_default()
    {
        Assert.Equal(Rcode.Refused, Client.Tcp("example.test.", RecordType.AXFR).Rcode);
        Assert.Equal(Rcode.Refused, Client.Udp("example.test.", RecordType.IXFR).Rcode);
    }

    [Fact]
    public void Meta_types_as_questions_are_errors()
    {
        Assert.Equal(Rcode.FormErr, Client.Udp("example.test.", RecordType.OPT).Rcode);
        Assert.Equal(Rcode.NotImp, Client.Udp("example.test.", RecordType.MAILB).Rcode);
    }

    [Fact]
    public void Random_garbage_never_stops_the_server()
    {
        var rng = new Random(53);
        var client = Client;
        for (int i = 0; i < 300; i++)
        {
            var junk = new byte[rng.Next(0, 600)];
            rng.NextBytes(junk);
            if (junk.Length > 2) junk[2] &= 0x7F;   // mostly "queries", so most get an answer or FORMERR
            client.UdpGetsNoAnswer(junk, TimeSpan.Zero);
        }
        Assert.Equal(Rcode.NoError, client.Udp("www.example.test.", RecordType.A).Rcode);
        Assert.Equal(Rcode.NoError, client.Tcp("www.example.test.", RecordType.A).Rcode);
    }
}
