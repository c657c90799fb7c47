using System.Net.Sockets;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Records;
using Portcullis.Server.Tests.Support;

namespace Portcullis.Server.Tests.Transport;

/// <summary>
/// DNS over TCP: pipelined answers keep the order of the queries, also when the client reads them
/// late and the server has to hold answers the kernel would not take yet (RFC 7766 §6.2.1.1).
/// </summary>
public sealed class TcpOrderTests
{
    private static byte[] Framed(IEnumerable<DnsMessage> queries)
    {
        var all = new List<byte>();
        foreach (var q in queries)
        {
            var wire = q.ToWire();
            all.Add((byte)(wire.Length >> 8));
            all.Add((byte)wire.Length);
            all.AddRange(wire);
        }
        return all.ToArray();
    }

    [Fact]
    public void Pipelined_answers_come_back_in_the_order_of_the_queries()
    {
        using var server = new TestServer(("example.test.", TestServer.ExampleZone));
        using var socket = server.Client().Connect();
        var queries = Enumerable.Range(0, 50).Select(i => DnsTestClient.Query(i % 2 == 0 ? "www.example.test." : "nope.example.test.", RecordType.A)).ToList();
        socket.Send(Framed(queries));
        foreach (var q in queries)
            Assert.Equal(q.Header.Id, DnsMessage.Parse(DnsTestClient.ReceiveMessage(socket)!).Header.Id);
    }

    [Fact]
    public async Task A_client_that_reads_late_gets_every_answer_in_order()
    {
        using var server = new TestServer(("example.test.", TestServer.ExampleZone));
        using var socket = new Socket(server.EndPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp)
        {
            ReceiveBufferSize = 4096,   // small, so that the server's sends stall and it must keep answers back
            ReceiveTimeout = 10_000,
            SendTimeout = 10_000,
        };
        socket.Connect(server.EndPoint);
        // About 5 MB of answers: more than the server's send buffer holds (tcp_wmem allows it 4 MB at most).
        var queries = Enumerable.Range(0, 80000).Select(_ => DnsTestClient.Query("www.example.test.", RecordType.A)).ToList();
        // The server stops reading while its answers wait, so the write may block until we read: send from another task.
        var sending = Task.Run(() => socket.Send(Framed(queries)));
        await Task.Delay(300);
        foreach (var q in queries)
        {
            var r = DnsMessage.Parse(DnsTestClient.ReceiveMessage(socket)!);
            Assert.Equal(q.Header.Id, r.Header.Id);
            Assert.Single(r.Answers);
        }
        await sending.WaitAsync(TimeSpan.FromSeconds(10));
        // The connection still serves afterwards.
        var last = DnsTestClient.Query("mail.example.test.", RecordType.A);
        DnsTestClient.Send(socket, last.ToWire());
        Assert.Equal(last.Header.Id, DnsMessage.Parse(DnsTestClient.ReceiveMessage(socket)!).Header.Id);
    }
}
