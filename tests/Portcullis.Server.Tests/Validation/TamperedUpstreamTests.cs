using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Server.Configuration;
using Portcullis.Server.Hosting;
using Portcullis.Server.Resolution;
using Portcullis.Testing;

namespace Portcullis.Server.Tests.Validation;

/// <summary>
/// A man in the middle between the validating resolver and its upstream: UDP datagrams relayed to
/// a real recursive server (Unbound over the signed hierarchy, asked with CD=1 as Portcullis asks a
/// forwarder), each response parsed and rewritten by <see cref="Tamper"/> on the way back.
/// </summary>
internal sealed class TamperingProxy : IDisposable
{
    private readonly Socket _socket;
    private readonly IPEndPoint _upstream;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    public TamperingProxy(IPEndPoint listen, IPEndPoint upstream)
    {
        _upstream = upstream;
        _socket = new Socket(listen.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        _socket.Bind(listen);
        EndPoint = listen;
        _loop = Task.Run(RunAsync);
    }

    public IPEndPoint EndPoint { get; }
    /// <summary>Rewrites a response (question as the client asked it); null keeps it.</summary>
    public volatile Func<DnsMessage, DnsMessage?>? Tamper;
    public int Tampered;

    private async Task RunAsync()
    {
        var buffer = new byte[65535];
        while (!_stop.IsCancellationRequested)
        {
            SocketReceiveFromResult got;
            try { got = await _socket.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), _stop.Token); }
            catch (Exception) { return; }
            var query = buffer.AsSpan(0, got.ReceivedBytes).ToArray();
            _ = RelayAsync(query, got.RemoteEndPoint);
        }
    }

    private async Task RelayAsync(byte[] query, EndPoint client)
    {
        try
        {
            using var upstream = new Socket(_upstream.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            upstream.Bind(new IPEndPoint(EndPoint.Address, 0));
            await upstream.SendToAsync(query, SocketFlags.None, _upstream, _stop.Token);
            var buffer = new byte[65535];
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            timeout.CancelAfter(TimeSpan.FromSeconds(10));
            int n = await upstream.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
            var response = buffer.AsSpan(0, n).ToArray();
            if (Tamper is { } tamper && tamper(DnsMessage.Parse(response)) is { } changed)
            {
                Interlocked.Increment(ref Tampered);
                response = changed.ToWire();
            }
            await _socket.SendToAsync(response, SocketFlags.None, client, _stop.Token);
        }
        catch (Exception) { /* a lost datagram: the resolver retries */ }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _socket.Dispose();
        try { _loop.Wait(TimeSpan.FromSeconds(5)); } catch (AggregateException) { }
        _stop.Dispose();
    }
}

/// <summary>
/// Review findings on the validator, tried for real: Portcullis validating (the hierarchy's root
/// anchor) behind a forwarder whose answers a man in the middle rewrites. Extra unsigned records
/// must neither downgrade a signed answer nor get cached; a forged DNSKEY answer must not poison
/// the cache; a forged NSEC must not feed the aggressive negative cache.
/// </summary>
public sealed class TamperedUpstreamTests(SignedHierarchyFixture fixture) : IClassFixture<SignedHierarchyFixture>
{
    private SignedHierarchy Hierarchy => fixture.Hierarchy;

    private sealed class Bed : IDisposable
    {
        public required SignedHierarchyUnbound Unbound;
        public required TamperingProxy Proxy;
        public required DnsServer Server;
        public required IterativeResolver Resolver;
        public required IPEndPoint EndPoint;
        public void Dispose()
        {
            Server.Dispose();
            Proxy.Dispose();
            Unbound.Dispose();
        }
    }

    private Bed Start(TamperingProxy? second = null, SignedHierarchyUnbound? unboundGiven = null, Action<ServerConfig>? configure = null)
    {
        var unbound = unboundGiven ?? new SignedHierarchyUnbound(Hierarchy);
        var proxy = new TamperingProxy(new IPEndPoint(Hierarchy.Address(202), 53), unbound.EndPoint);
        var config = new ServerConfig { Listen = [$"{Hierarchy.Address(201)}:53"], AllowRecursion = ["127.0.0.0/8"] };
        config.Recursion.Forwarders = second is null ? [$"{proxy.EndPoint.Address}@53"] : [$"{proxy.EndPoint.Address}@53", $"{second.EndPoint.Address}@53"];
        config.Recursion.TrustAnchorFiles = [Hierarchy.TrustAnchorFile];
        config.Recursion.OutgoingInterface = [Hierarchy.Address(201).ToString()];
        configure?.Invoke(config);
        IterativeResolver? built = null;
        var server = new DnsServer(config, NullLoggerFactory.Instance, recursion: (o, t, l) => built = new IterativeResolver(o, t, l));
        server.Start();
        return new Bed { Unbound = unbound, Proxy = proxy, Server = server, Resolver = built!, EndPoint = new IPEndPoint(Hierarchy.Address(201), 53) };
    }

    private static ValidationResult Ask(Bed bed, string name, string type, params string[] options) =>
        SignedHierarchy.Run(bed.EndPoint, new ValidationScenario("tampered", name, type, ValidationOutcome.Secure, null, ""), options);

    private static bool Is(DnsMessage m, string name, RecordType type) =>
        m.Questions.Count == 1 && m.Questions[0].Type == type && m.Questions[0].Name == DnsName.Parse(name);

    /// <summary>
    /// Two forwarders; whichever first sees a response that <paramref name="match"/>es becomes the
    /// forger (so the forged answer is the one the resolver gets first) and applies <paramref name="forge"/>
    /// to every matching response; the other relays faithfully.
    /// </summary>
    private static void FirstAskedForges(TamperingProxy first, TamperingProxy second, Func<DnsMessage, bool> match, Action<DnsMessage> forge)
    {
        var forger = new TamperingProxy?[1];
        Func<DnsMessage, DnsMessage?> As(TamperingProxy me) => m =>
        {
            if (!match(m)) return null;
            Interlocked.CompareExchange(ref forger[0], me, null);
            if (Volatile.Read(ref forger[0]) != me) return null;
            forge(m);
            return m;
        };
        first.Tamper = As(first);
        second.Tamper = As(second);
    }

    private static ResourceRecord A(string owner, byte last) => new(DnsName.Parse(owner), RecordType.A, RecordClass.IN, 300, [192, 0, 2, last]);

    [Fact]
    public void Unsigned_records_added_to_a_signed_answer_neither_downgrade_it_nor_get_served()
    {
        using var bed = Start();
        bed.Proxy.Tamper = m =>
        {
            if (!Is(m, "www.secure-nsec.test.", RecordType.A)) return null;
            m.Answers.Add(A("junk.secure-nsec.test.", 66));
            m.Answers.Add(A("www.insecure.test.", 66));
            return m;
        };
        var r = Ask(bed, "www.secure-nsec.test.", "A");
        Assert.True(bed.Proxy.Tampered > 0);
        Assert.Equal("NOERROR", r.Rcode);
        Assert.True(r.Ad);
        Assert.Equal(["www.secure-nsec.test. A 192.0.2.1"], r.Answer.Where(l => l.Contains(" A ")).ToList());
        bed.Proxy.Tamper = null;
        // What was slipped in was not cached: the real answers come from upstream.
        Assert.Contains("www.insecure.test. A 192.0.2.9", Ask(bed, "www.insecure.test.", "A").Answer);
        Assert.Equal("NXDOMAIN", Ask(bed, "junk.secure-nsec.test.", "A").Rcode);
    }

    [Fact]
    public void An_unsigned_record_added_to_a_DS_answer_does_not_make_the_zone_insecure()
    {
        using var bed = Start();
        bed.Proxy.Tamper = m =>
        {
            if (!Is(m, "secure-nsec.test.", RecordType.DS)) return null;
            m.Answers.Add(A("junk.test.", 66));
            m.Authority.Add(new ResourceRecord(DnsName.Parse("junk.test."), RecordType.NSEC, RecordClass.IN, 300,
                [.. DnsName.Parse("zz.test.").Wire, 0, 1, 0x40]));
            return m;
        };
        var r = Ask(bed, "www.secure-nsec.test.", "A");
        Assert.True(bed.Proxy.Tampered > 0);
        Assert.Equal("NOERROR", r.Rcode);
        Assert.True(r.Ad, "the zone was downgraded to insecure by the junk:\n" + r.Text);
        // A forged answer for the zone is then still caught.
        bed.Proxy.Tamper = m =>
        {
            if (!Is(m, "forged.secure-nsec.test.", RecordType.A)) return null;
            m.Header.Rcode = (byte)Rcode.NoError;
            m.Answers.Clear();
            m.Authority.Clear();
            m.Answers.Add(A("forged.secure-nsec.test.", 66));
            return m;
        };
        Assert.Equal("SERVFAIL", Ask(bed, "forged.secure-nsec.test.", "A").Rcode);
    }

    [Fact]
    public void A_forged_answer_to_the_validators_DNSKEY_lookup_is_not_cached_for_clients()
    {
        using var bed = Start();
        bed.Proxy.Tamper = m =>
        {
            if (!Is(m, "secure-nsec3.test.", RecordType.DNSKEY)) return null;
            m.Answers.Clear();
            m.Authority.Clear();
            m.Answers.Add(new ResourceRecord(DnsName.Parse("secure-nsec3.test."), RecordType.CNAME, RecordClass.IN, 3600, DnsName.Parse("evil.insecure.test.").Wire.ToArray()));
            return m;
        };
        var r = Ask(bed, "www.secure-nsec3.test.", "A");
        Assert.True(bed.Proxy.Tampered > 0);
        Assert.Equal("SERVFAIL", r.Rcode);
        bed.Proxy.Tamper = null;
        // The CNAME the attacker sent in place of the keys never reaches a client.
        foreach (var type in new[] { "A", "CNAME", "SOA" })
        {
            var apex = Ask(bed, "secure-nsec3.test.", type);
            Assert.DoesNotContain(apex.Answer, l => l.Contains("evil", StringComparison.Ordinal));
        }
    }

    /// <summary>
    /// Two forwarders, one of them forging addresses: the one asked first becomes the forger, so the
    /// bogus answer comes first, and the secure answer of the other must be the one given — for
    /// several names (without the retry the first one fails).
    /// </summary>
    [Fact]
    public void A_bogus_answer_from_one_forwarder_is_set_aside_for_the_other_forwarders_secure_one()
    {
        var unbound = new SignedHierarchyUnbound(Hierarchy);
        using var clean = new TamperingProxy(new IPEndPoint(Hierarchy.Address(203), 53), unbound.EndPoint);
        using var bed = Start(clean, unbound);
        FirstAskedForges(bed.Proxy, clean, m => m.Questions.Count == 1 && m.Questions[0].Type == RecordType.A && m.Answers.Count > 0, m =>
        {
            for (int i = 0; i < m.Answers.Count; i++)
                if (m.Answers[i].Type == RecordType.A) m.Answers[i] = new ResourceRecord(m.Answers[i].Owner, RecordType.A, RecordClass.IN, 300, [192, 0, 2, 66]);
        });
        foreach (var name in new[] { "www.secure-nsec.test.", "n1.wild.test.", "n2.wild.test.", "www.secure-nsec3.test." })
        {
            var r = Ask(bed, name, "A");
            Assert.Equal("NOERROR", r.Rcode);
            Assert.True(r.Ad, r.Text);
            Assert.DoesNotContain(r.Answer, l => l.EndsWith("192.0.2.66", StringComparison.Ordinal));
        }
        // The first name was forged by the forwarder asked first (later ones go to whichever is faster).
        Assert.True(bed.Proxy.Tampered + clean.Tampered >= 1, "the forger never forged");
    }

    /// <summary>
    /// Second review, finding 1: an NSEC validly signed by another zone (here bad-sig.test, whose key
    /// the test holds) whose "next" name points into secure-nsec.test would "cover" any name there.
    /// Beside secure-nsec.test's genuine signed SOA it must prove nothing: no NXDOMAIN with AD.
    /// </summary>
    [Fact]
    public void An_NSEC_signed_by_another_zone_proves_nothing_about_this_one()
    {
        using var bed = Start();
        // The genuine signed SOA of secure-nsec.test, from a real negative answer.
        List<ResourceRecord>? soa = null;
        bed.Proxy.Tamper = m =>
        {
            if (Is(m, "nx.secure-nsec.test.", RecordType.A))
                soa = m.Authority.FindAll(r => r.Owner == DnsName.Parse("secure-nsec.test.") && r.Type is RecordType.SOA or RecordType.RRSIG
                    && (r.Type == RecordType.SOA || System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(r.Data) == (ushort)RecordType.SOA));
            return null;
        };
        Assert.Equal("NXDOMAIN", Ask(bed, "nx.secure-nsec.test.", "A").Rcode);
        Assert.NotNull(soa);
        // The forgery: "a.bad-sig.test NSEC zzz.secure-nsec.test", signed with bad-sig.test's real key.
        string dir = Directory.CreateTempSubdirectory("portcullis-forge-").FullName;
        try
        {
            var key = Portcullis.Protocol.Dnssec.DnssecKeyFile.Read(Path.Combine(dir, Hierarchy.SecondLevelKey.PlaceFor("bad-sig.test.", dir)));
            var nsec = new ResourceRecord(DnsName.Parse("a.bad-sig.test."), RecordType.NSEC, RecordClass.IN, 300,
                [.. DnsName.Parse("zzz.secure-nsec.test.").Wire, 0, 6, 0, 0, 0, 0, 0, 0x03]);   // RRSIG NSEC
            var sig = Portcullis.Protocol.Dnssec.DnssecSigner.SignRrset([nsec], key, DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddDays(1));
            bed.Proxy.Tamper = m =>
            {
                if (!Is(m, "www.secure-nsec.test.", RecordType.A)) return null;
                m.Header.Rcode = (byte)Rcode.NXDomain;
                m.Answers.Clear();
                m.Authority.Clear();
                m.Authority.AddRange(soa!);
                m.Authority.Add(nsec);
                m.Authority.Add(sig);
                return m;
            };
            var r = Ask(bed, "www.secure-nsec.test.", "A");
            Assert.True(bed.Proxy.Tampered > 0);
            Assert.False(r.Rcode == "NXDOMAIN" && r.Ad, "a foreign NSEC proved NXDOMAIN:\n" + r.Text);
            Assert.Equal("SERVFAIL", r.Rcode);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    /// <summary>
    /// Second review, finding 2: beside a signed DNAME the wire CNAME is the server's synthesis,
    /// unsigned; rewriting its target must not redirect the answer (nor be cached as secure).
    /// </summary>
    [Fact]
    public void A_rewritten_CNAME_beside_a_signed_DNAME_does_not_redirect_the_answer()
    {
        using var bed = Start();
        bed.Proxy.Tamper = m =>
        {
            if (!Is(m, "www.dname.secure-nsec.test.", RecordType.A)) return null;
            for (int i = 0; i < m.Answers.Count; i++)
                if (m.Answers[i].Type == RecordType.CNAME)
                    m.Answers[i] = new ResourceRecord(m.Answers[i].Owner, RecordType.CNAME, RecordClass.IN, m.Answers[i].Ttl, DnsName.Parse("www.secure-nsec.test.").Wire.ToArray());
            m.Answers.RemoveAll(r => r.Type is RecordType.A or RecordType.RRSIG && r.Owner != DnsName.Parse("dname.secure-nsec.test."));
            return m;
        };
        var r = Ask(bed, "www.dname.secure-nsec.test.", "A");
        Assert.True(bed.Proxy.Tampered > 0);
        Assert.Equal("NOERROR", r.Rcode);
        Assert.Contains("www.secure-nsec3.test. A 192.0.2.2", r.Answer);
        Assert.DoesNotContain(r.Answer, l => l.EndsWith("192.0.2.1", StringComparison.Ordinal));
        bed.Proxy.Tamper = null;
        var cname = Ask(bed, "www.dname.secure-nsec.test.", "CNAME");
        Assert.DoesNotContain(cname.Answer, l => l.Contains("www.secure-nsec.test.", StringComparison.Ordinal) && !l.Contains("secure-nsec3", StringComparison.Ordinal));
    }

    /// <summary>
    /// The validator's own DNSKEY lookup: a forwarder that corrupts the zone's key set (its RRSIG no
    /// longer verifies) is set aside for the other forwarder's good one; the zone stays secure.
    /// </summary>
    [Fact]
    public void A_corrupted_key_set_from_one_forwarder_is_set_aside_for_the_others()
    {
        var unbound = new SignedHierarchyUnbound(Hierarchy);
        using var clean = new TamperingProxy(new IPEndPoint(Hierarchy.Address(203), 53), unbound.EndPoint);
        using var bed = Start(clean, unbound);
        FirstAskedForges(bed.Proxy, clean, m => Is(m, "secure-nsec3.test.", RecordType.DNSKEY), m =>
        {
            for (int i = 0; i < m.Answers.Count; i++)
                if (m.Answers[i].Type == RecordType.RRSIG)
                {
                    var data = m.Answers[i].Data.ToArray();
                    data[^1] ^= 0xFF;
                    m.Answers[i] = new ResourceRecord(m.Answers[i].Owner, RecordType.RRSIG, RecordClass.IN, m.Answers[i].Ttl, data);
                }
        });
        var r = Ask(bed, "www.secure-nsec3.test.", "A");
        Assert.True(bed.Proxy.Tampered + clean.Tampered >= 1, "the key set was never corrupted");
        Assert.Equal("NOERROR", r.Rcode);
        Assert.True(r.Ad, r.Text);
    }

    /// <summary>
    /// Third review, finding 1: an RRSIG question cannot be validated, but a forged NXDOMAIN (or a
    /// CNAME) in its answer must not then stand for the name's other types.
    /// </summary>
    [Fact]
    public void A_forged_answer_to_an_RRSIG_question_does_not_poison_the_name()
    {
        using var bed = Start();
        bed.Proxy.Tamper = m =>
        {
            if (!Is(m, "www.secure-nsec.test.", RecordType.RRSIG)) return null;
            m.Header.Rcode = (byte)Rcode.NXDomain;
            m.Answers.Clear();
            m.Authority.Clear();
            return m;
        };
        Ask(bed, "www.secure-nsec.test.", "RRSIG");
        Assert.True(bed.Proxy.Tampered > 0);
        bed.Proxy.Tamper = null;
        var a = Ask(bed, "www.secure-nsec.test.", "A");
        Assert.Equal("NOERROR", a.Rcode);
        Assert.True(a.Ad);
        Assert.Contains("www.secure-nsec.test. A 192.0.2.1", a.Answer);
    }

    /// <summary>
    /// Third review, finding 2: a negative trust anchor covers its own zone only; a forged record for
    /// a name outside it, chained from inside it, is still judged (and refused), not cached as insecure.
    /// </summary>
    [Fact]
    public void A_negative_trust_anchor_does_not_let_a_chain_out_of_it_carry_forged_data()
    {
        using var bed = Start(configure: c => c.Recursion.NegativeTrustAnchors = ["secure-nsec3.test"]);
        bed.Proxy.Tamper = m =>
        {
            if (!Is(m, "www.secure-nsec3.test.", RecordType.A)) return null;
            m.Answers.Clear();
            m.Answers.Add(new ResourceRecord(DnsName.Parse("www.secure-nsec3.test."), RecordType.CNAME, RecordClass.IN, 300,
                DnsName.Parse("www.secure-nsec.test.").Wire.ToArray()));
            m.Answers.Add(A("www.secure-nsec.test.", 66));
            return m;
        };
        var forged = Ask(bed, "www.secure-nsec3.test.", "A");
        Assert.True(bed.Proxy.Tampered > 0);
        Assert.DoesNotContain(forged.Answer, l => l.EndsWith("192.0.2.66", StringComparison.Ordinal));
        bed.Proxy.Tamper = null;
        var real = Ask(bed, "www.secure-nsec.test.", "A");
        Assert.Equal("NOERROR", real.Rcode);
        Assert.True(real.Ad);
        Assert.Contains("www.secure-nsec.test. A 192.0.2.1", real.Answer);
    }

    [Fact]
    public void A_forged_NSEC_slipped_into_a_negative_answer_does_not_feed_aggressive_negative_answers()
    {
        using var bed = Start();
        bed.Proxy.Tamper = m =>
        {
            if (!Is(m, "nx.secure-nsec.test.", RecordType.A)) return null;
            // "alias → zz" would cover www.secure-nsec.test if it were believed.
            m.Authority.Add(new ResourceRecord(DnsName.Parse("alias.secure-nsec.test."), RecordType.NSEC, RecordClass.IN, 300,
                [.. DnsName.Parse("zz.secure-nsec.test.").Wire, 0, 1, 0x40]));
            return m;
        };
        var nx = Ask(bed, "nx.secure-nsec.test.", "A");
        Assert.True(bed.Proxy.Tampered > 0);
        Assert.Equal("NXDOMAIN", nx.Rcode);
        Assert.True(nx.Ad);
        bed.Proxy.Tamper = null;
        var www = Ask(bed, "www.secure-nsec.test.", "A");
        Assert.Equal("NOERROR", www.Rcode);
        Assert.Contains("www.secure-nsec.test. A 192.0.2.1", www.Answer);
        Assert.Equal(0, bed.Resolver.NsecRanges.Synthesised);
    }
}
