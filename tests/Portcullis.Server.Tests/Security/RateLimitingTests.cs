using System.Net.Sockets;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Records;
using Portcullis.Server.Configuration;
using Portcullis.Server.Security;
using Portcullis.Server.Tests.Support;

namespace Portcullis.Server.Tests.Security;

/// <summary>
/// Response rate limiting, dynamic client blocks and cookies on a running server, with clients on
/// distinct 127.0.0.6x source addresses and prefix length 32, so each address is its own client.
/// Floods are bounded in count; the end of each batch is found with a sentinel query, not a sleep.
/// </summary>
public sealed class RateLimitingTests
{
    private const int Rate = 5;

    private static void Limits(ServerConfig c, int rate = Rate)
    {
        c.RateLimit.ResponsesPerSecond = rate;
        c.RateLimit.Window = 5;
        c.RateLimit.Slip = 2;
        c.RateLimit.Ipv4PrefixLength = 32;
        c.RateLimit.ExemptClients = [];
        c.ClientLimit.QueriesPerSecond = 0;
    }

    private sealed class Tally
    {
        public int Full, Slipped, BadCookie, Missing, Sent;
    }

    /// <summary>The example zone with s0..s199: sentinel names, each its own RRL account (a wildcard would share one).</summary>
    private static readonly string Zone = TestServer.ExampleZone + string.Concat(Enumerable.Range(0, 200).Select(i => $"s{i} A 192.0.2.{i % 250 + 1}\n"));

    private int _sentinel;

    /// <summary>
    /// Sends <paramref name="count"/> copies of <paramref name="query"/> from one socket in batches of
    /// 100, each followed by a sentinel (a name of its own, so its own RRL account).
    /// Responses on one loopback flow come back in order, so when the sentinel's answer arrives every
    /// answer of the batch has arrived or was never sent.
    /// </summary>
    private Tally Flood(DnsTestClient client, Func<DnsMessage> query, int count)
    {
        var tally = new Tally();
        using var socket = client.UdpSocket();
        socket.ReceiveTimeout = (int)DnsTestClient.Timeout.TotalMilliseconds;
        var buffer = new byte[65535];
        for (int batch = 0; batch * 100 < count; batch++)
        {
            int n = Math.Min(100, count - batch * 100);
            var ids = new HashSet<ushort>();
            for (int i = 0; i < n; i++)
            {
                var q = query();
                ids.Add(q.Header.Id);
                socket.Send(q.ToWire());
            }
            var sentinel = DnsTestClient.Query($"s{_sentinel++}.example.test.", RecordType.A);
            socket.Send(sentinel.ToWire());
            tally.Sent += n;
            int answered = 0;
            while (true)
            {
                int got = socket.Receive(buffer);
                var r = DnsMessage.Parse(buffer.AsSpan(0, got).ToArray());
                if (r.Header.Id == sentinel.Header.Id) break;
                if (!ids.Remove(r.Header.Id)) continue;
                answered++;
                if (r.Header.Truncated && r.Answers.Count == 0) tally.Slipped++;
                else if (r.Rcode == Rcode.BadCookie) tally.BadCookie++;
                else tally.Full++;
            }
            tally.Missing += n - answered;
        }
        return tally;
    }

    [Fact]
    public void A_flood_of_identical_queries_gets_the_burst_then_only_slips_while_another_client_keeps_full_service()
    {
        var log = new CollectingLoggerFactory();
        using var server = new TestServer(c => Limits(c), log, ("example.test.", Zone));
        var attacker = server.ClientFrom("127.0.0.61");
        var bystander = server.ClientFrom("127.0.0.62");
        var total = new Tally();
        int bystanderFull = 0;
        for (int round = 0; round < 20; round++)
        {
            var t = Flood(attacker, () => DnsTestClient.Query("www.example.test.", RecordType.A), 200);
            total.Full += t.Full; total.Slipped += t.Slipped; total.Missing += t.Missing; total.Sent += t.Sent;
            // The other client asks the same name at its own modest pace (within the rate): every
            // fourth round, so 5 times while the flood goes on.
            if (round % 4 != 0) continue;
            var b = bystander.Udp("www.example.test.", RecordType.A);
            if (!b.Header.Truncated && b.Answers.Count == 1) bystanderFull++;
        }
        // BIND's accounting: a client above the rate owes up to window x rate responses, so while the
        // flood lasts nothing but the first second's burst and the slips get out.
        Assert.Equal(4000, total.Sent);
        Assert.InRange(total.Full, Rate, 3 * Rate);
        int limited = total.Sent - total.Full;
        Assert.InRange(total.Slipped, limited * 4 / 10, limited * 6 / 10);          // slip 2: every second one
        Assert.Equal(limited - total.Slipped, total.Missing);
        Assert.Equal(5, bystanderFull);
        var counters = server.Server.Processor.Counters;
        Assert.Equal(total.Slipped, counters[SecurityReason.RrlSlipped]);
        Assert.Equal(total.Missing, counters[SecurityReason.RrlDropped]);
        // One log line for the newly limited client, not one per packet.
        Assert.True(log.WaitFor("rate limiting responses to 127.0.0.61", DnsTestClient.Timeout));
        Assert.Single(log.Lines, l => l.Contains("rate limiting responses to 127.0.0.61"));
        // TCP is never rate-limited: the limited client gets its answer there.
        Assert.Single(attacker.Tcp("www.example.test.", RecordType.A).Answers);
    }

    [Fact]
    public void Nxdomain_floods_under_random_names_share_the_zone_account()
    {
        using var server = new TestServer(c => Limits(c), ("example.test.", "$TTL 1h\n@ SOA ns hostmaster 1 2h 1h 2w 5m\n@ NS ns\nns A 192.0.2.1\n* A 192.0.2.9\nsub.nx TXT x\n" + string.Concat(Enumerable.Range(0, 20).Select(i => $"s{i} A 192.0.2.1\n"))));
        int i = 0;
        // Names under nx.example.test. do not exist (the wildcard at the apex does not cover nx's subtree).
        var t = Flood(server.ClientFrom("127.0.0.63"), () => DnsTestClient.Query($"r{i++}.sub-missing.nx.example.test.", RecordType.A), 600);
        Assert.InRange(t.Full, Rate, 3 * Rate);
        Assert.True(t.Slipped > 0);
    }

    [Fact]
    public void Log_only_mode_answers_everything_but_reports_the_client()
    {
        var log = new CollectingLoggerFactory();
        using var server = new TestServer(c => { Limits(c); c.RateLimit.LogOnly = true; }, log, ("example.test.", Zone));
        var t = Flood(server.ClientFrom("127.0.0.64"), () => DnsTestClient.Query("www.example.test.", RecordType.A), 500);
        Assert.Equal(500, t.Full);
        Assert.True(log.WaitFor("would rate-limit responses to 127.0.0.64", DnsTestClient.Timeout));
    }

    [Fact]
    public void A_client_with_a_valid_server_cookie_is_not_rate_limited()
    {
        using var server = new TestServer(c => Limits(c), ("example.test.", Zone));
        var client = server.ClientFrom("127.0.0.65");
        var clientCookie = new byte[] { 1, 2, 3, 4, 5, 6, 7, 8 };
        var first = DnsTestClient.Query("www.example.test.", RecordType.A, edns: true);
        first.Edns!.Options.Add(new CookieOption(clientCookie));
        var answer = DnsMessage.Parse(client.UdpRaw(first.ToWire()));
        var cookie = Assert.Single(answer.Edns!.Options.OfType<CookieOption>());
        Assert.Equal(clientCookie, cookie.ClientCookie.ToArray());
        Assert.Equal(16, cookie.ServerCookie.Length);
        Assert.Equal(1, cookie.ServerCookie[0]);   // RFC 9018 version 1
        var serverCookie = cookie.ServerCookie.ToArray();
        var t = Flood(client, () =>
        {
            var q = DnsTestClient.Query("www.example.test.", RecordType.A, edns: true);
            q.Edns!.Options.Add(new CookieOption(clientCookie, serverCookie));
            return q;
        }, 300);
        Assert.Equal(300, t.Full);
        // The same flood with a forged server cookie is limited.
        var forged = (byte[])serverCookie.Clone();
        forged[^1] ^= 0xFF;
        var f = Flood(client, () =>
        {
            var q = DnsTestClient.Query("mail.example.test.", RecordType.A, edns: true);
            q.Edns!.Options.Add(new CookieOption(clientCookie, forged));
            return q;
        }, 300);
        Assert.InRange(f.Full, Rate, 3 * Rate);
        // Its slips are BADCOOKIE with a fresh cookie (as BIND does), so the client can retry over UDP.
        Assert.True(f.BadCookie > 0);
        Assert.Equal(0, f.Slipped);
    }

    [Fact]
    public void Required_cookies_turn_away_udp_queries_without_a_valid_server_cookie()
    {
        using var server = new TestServer(c => { Limits(c); c.Cookies.Require = true; }, ("example.test.", Zone));
        var client = server.ClientFrom("127.0.0.66");
        var clientCookie = new byte[] { 8, 7, 6, 5, 4, 3, 2, 1 };
        var q = DnsTestClient.Query("www.example.test.", RecordType.A, edns: true);
        q.Edns!.Options.Add(new CookieOption(clientCookie));
        var bad = DnsMessage.Parse(client.UdpRaw(q.ToWire()));
        Assert.Equal(Rcode.BadCookie, bad.Rcode);
        Assert.Empty(bad.Answers);
        var fresh = Assert.Single(bad.Edns!.Options.OfType<CookieOption>());
        var retry = DnsTestClient.Query("www.example.test.", RecordType.A, edns: true);
        retry.Edns!.Options.Add(new CookieOption(clientCookie, fresh.ServerCookie.ToArray()));
        var good = DnsMessage.Parse(client.UdpRaw(retry.ToWire()));
        Assert.Equal(Rcode.NoError, good.Rcode);
        Assert.Single(good.Answers);
        // Over TCP the address is proven by the handshake: no BADCOOKIE.
        Assert.Equal(Rcode.NoError, DnsMessage.Parse(client.TcpRaw(q.ToWire())).Rcode);
        // A malformed cookie (a 5-octet client cookie) is FORMERR (RFC 7873 §5.2.2).
        var raw = DnsTestClient.Query("www.example.test.", RecordType.A, edns: true).ToWire();
        var withBadCookie = AppendRawOption(raw, 10, [1, 2, 3, 4, 5]);
        Assert.Equal(Rcode.FormErr, DnsMessage.Parse(client.UdpRaw(withBadCookie)).Rcode);
        Assert.Equal(1, server.Server.Processor.Counters[SecurityReason.BadCookie]);
    }

    /// <summary>Adds an option to the OPT record that ends a query (the last record), bypassing the option classes' checks.</summary>
    private static byte[] AppendRawOption(byte[] query, ushort code, byte[] data)
    {
        var result = new byte[query.Length + 4 + data.Length];
        query.CopyTo(result, 0);
        result[query.Length] = (byte)(code >> 8);
        result[query.Length + 1] = (byte)code;
        result[query.Length + 2] = (byte)(data.Length >> 8);
        result[query.Length + 3] = (byte)data.Length;
        data.CopyTo(result, query.Length + 4);
        // The OPT record's RDLENGTH is the last two octets before its (so far empty) RDATA.
        int rdlength = (result[query.Length - 2] << 8 | result[query.Length - 1]) + 4 + data.Length;
        result[query.Length - 2] = (byte)(rdlength >> 8);
        result[query.Length - 1] = (byte)rdlength;
        return result;
    }

    [Fact]
    public void A_source_above_the_client_limit_is_blocked_and_logged_once()
    {
        var log = new CollectingLoggerFactory();
        using var server = new TestServer(c =>
        {
            c.RateLimit.ResponsesPerSecond = 0;
            c.ClientLimit.QueriesPerSecond = 5;
            c.ClientLimit.Window = 10;
            c.ClientLimit.Block = 60;
            c.ClientLimit.ExemptClients = [];
        }, log, ("example.test.", Zone));
        var noisy = server.ClientFrom("127.0.0.67");
        using (var socket = noisy.UdpSocket())
        {
            // 150 queries are more than 5 per second averaged over 10 s however slowly they go out.
            for (int i = 0; i < 150; i++) socket.Send(DnsTestClient.Query("www.example.test.", RecordType.A).ToWire());
        }
        var counters = server.Server.Processor.Counters;
        Assert.True(SpinWait.SpinUntil(() => counters[SecurityReason.ClientBlockedQuery] >= 50, DnsTestClient.Timeout));
        Assert.True(log.WaitFor("blocking 127.0.0.67", DnsTestClient.Timeout));
        Assert.Equal(1, counters[SecurityReason.ClientBlockStarted]);
        // Blocked over UDP: no answer; another client and TCP are unaffected.
        Assert.True(noisy.UdpGetsNoAnswer(DnsTestClient.Query("www.example.test.", RecordType.A).ToWire(), TimeSpan.FromMilliseconds(300)));
        Assert.Single(server.ClientFrom("127.0.0.68").Udp("www.example.test.", RecordType.A).Answers);
        Assert.Single(noisy.Tcp("www.example.test.", RecordType.A).Answers);
    }
}
