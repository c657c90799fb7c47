using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.Wire;
using Portcullis.Server.Configuration;
using Portcullis.Server.Policy;
using Portcullis.Server.Security;
using Portcullis.Server.Telemetry;
using Xunit;

namespace Portcullis.Server.Tests.Policy;

/// <summary>
/// Response policy zones and domain lists as files are read and matched: the RPZ encoding of each
/// action, exact and wildcard QNAME triggers with BIND's precedence, overrides, lists in both
/// formats, the answers written for each action, and errors that name the file and line.
/// </summary>
public sealed class PolicyMatchingTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("portcullis-rpz-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private const string Head = """
        $TTL 300
        @ SOA ns.rpz. hostmaster.rpz. 7 3600 600 86400 60
        @ NS localhost.
        """;

    private string WriteFile(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    private PolicySource Zone(string origin, string body) =>
        PolicySources.ReadZoneFile(DnsName.Parse(origin), WriteFile(origin + "zone", Head + "\n" + body));

    private PolicySource List(string name, string text, PolicyAction action = PolicyAction.Nxdomain) =>
        PolicySources.ReadListFile(name, WriteFile(name, text), action);

    private static PolicyHit? Match(ResponsePolicy policy, string name) =>
        policy.TryMatch(DnsName.Parse(name).Wire, out var hit) ? hit : null;

    [Fact]
    public void Each_cname_encoding_gives_its_action_and_other_records_are_local_data()
    {
        var policy = ResponsePolicy.Build([new PolicyLayer(Zone("rpz.test.", """
            nx.example      CNAME .
            nodata.example  CNAME *.
            pass.example    CNAME rpz-passthru.
            drop.example    CNAME rpz-drop.
            tcp.example     CNAME rpz-tcp-only.
            self.example    CNAME self.example.
            local.example   A     192.0.2.7
            local.example   TXT   "walled garden"
            alias.example   CNAME garden.example.net.
            """))]);
        Assert.Equal(PolicyAction.Nxdomain, Match(policy, "nx.example.")?.Action);
        Assert.Equal(PolicyAction.Nodata, Match(policy, "nodata.example.")?.Action);
        Assert.Equal(PolicyAction.Passthru, Match(policy, "pass.example.")?.Action);
        Assert.Equal(PolicyAction.Drop, Match(policy, "drop.example.")?.Action);
        Assert.Equal(PolicyAction.TcpOnly, Match(policy, "tcp.example.")?.Action);
        Assert.Equal(PolicyAction.Passthru, Match(policy, "self.example.")?.Action);   // the older passthru form
        Assert.Equal(PolicyAction.LocalData, Match(policy, "local.example.")?.Action);
        Assert.Equal(PolicyAction.LocalData, Match(policy, "alias.example.")?.Action);
        Assert.Null(Match(policy, "example."));
        Assert.Null(Match(policy, "other.example."));
        var hit = Match(policy, "NX.Example.")!.Value;   // case does not matter
        Assert.Equal("rpz.test", hit.PolicyName);
        Assert.Equal(QueryPolicy.RpzNxdomain, hit.QueryPolicy);
        Assert.Equal(SecurityReason.PolicyNxdomain, hit.Reason);
        Assert.False(hit.Wildcard);
    }

    [Fact]
    public void Exact_beats_wildcard_and_the_longest_wildcard_wins_within_a_zone()
    {
        var policy = ResponsePolicy.Build([new PolicyLayer(Zone("rpz.test.", """
            *.example         CNAME .
            *.deep.example    CNAME *.
            ok.deep.example   CNAME rpz-passthru.
            """))]);
        Assert.Null(Match(policy, "example."));                                         // a wildcard never matches its own name
        Assert.Equal(PolicyAction.Nxdomain, Match(policy, "a.example.")?.Action);
        Assert.Equal(PolicyAction.Nxdomain, Match(policy, "a.b.c.example.")?.Action);  // any depth
        Assert.Equal(PolicyAction.Nxdomain, Match(policy, "deep.example.")?.Action);
        Assert.Equal(PolicyAction.Nodata, Match(policy, "x.deep.example.")?.Action);    // the closer wildcard
        Assert.Equal(PolicyAction.Nodata, Match(policy, "x.y.deep.example.")?.Action);
        Assert.Equal(PolicyAction.Passthru, Match(policy, "ok.deep.example.")?.Action); // exact over both
        Assert.Equal(PolicyAction.Nodata, Match(policy, "sub.ok.deep.example.")?.Action);
        Assert.True(Match(policy, "x.deep.example.")!.Value.Wildcard);
    }

    [Fact]
    public void The_first_zone_in_configuration_order_wins_even_with_a_wildcard_against_an_exact_trigger()
    {
        var allow = Zone("allow.test.", "*.example CNAME rpz-passthru.\n");
        var block = Zone("block.test.", "www.example CNAME .\nbad.net CNAME .\n");
        var policy = ResponsePolicy.Build([new PolicyLayer(allow), new PolicyLayer(block)]);
        var hit = Match(policy, "www.example.")!.Value;
        Assert.Equal(PolicyAction.Passthru, hit.Action);
        Assert.Equal("allow.test", hit.PolicyName);
        Assert.Equal(PolicyAction.Nxdomain, Match(policy, "bad.net.")?.Action);
        Assert.Equal("block.test", Match(policy, "bad.net.")!.Value.PolicyName);

        // The other order: the block zone's exact trigger comes first.
        var reversed = ResponsePolicy.Build([new PolicyLayer(block), new PolicyLayer(allow)]);
        Assert.Equal(PolicyAction.Nxdomain, Match(reversed, "www.example.")?.Action);
        Assert.Equal(PolicyAction.Passthru, Match(reversed, "mail.example.")?.Action);
    }

    [Fact]
    public void A_policy_override_replaces_every_action_of_its_zone()
    {
        var zone = Zone("rpz.test.", "a.example CNAME rpz-passthru.\nb.example A 192.0.2.1\n");
        var policy = ResponsePolicy.Build([new PolicyLayer(zone, PolicyAction.Drop)]);
        Assert.Equal(PolicyAction.Drop, Match(policy, "a.example.")?.Action);
        Assert.Equal(PolicyAction.Drop, Match(policy, "b.example.")?.Action);
    }

    [Fact]
    public void A_root_wildcard_matches_every_name()
    {
        var policy = ResponsePolicy.Build([new PolicyLayer(Zone("rpz.test.", "* CNAME .\nok.example CNAME rpz-passthru.\n"))]);
        Assert.Equal(PolicyAction.Nxdomain, Match(policy, "anything.at.all.")?.Action);
        Assert.Equal(PolicyAction.Passthru, Match(policy, "ok.example.")?.Action);
        Assert.False(policy.TryMatch([0], out _));   // the root itself
    }

    [Fact]
    public void Unsupported_triggers_are_ignored_with_a_warning_naming_the_line()
    {
        var source = Zone("rpz.test.", "32.1.2.0.192.rpz-ip CNAME .\nns.bad.rpz-nsdname CNAME .\nbad.example CNAME .\n");
        Assert.Equal(1, source.TriggerCount);
        Assert.Equal("bad.example. Nxdomain", source.TriggerAt(0).ToString());
        var warning = Assert.Single(source.Warnings);
        Assert.Contains("rpz.test.zone:4:", warning);
        Assert.Contains("rpz-ip triggers are not supported", warning);
        Assert.Contains("1 more", warning);
    }

    [Fact]
    public void Zone_file_errors_name_the_file_and_line()
    {
        var bad = Assert.Throws<PolicyLoadException>(() => Zone("rpz.test.", "ok.example CNAME .\nbad.example CNAME .\nbad.example A 192.0.2.1\nbroken.example A 999.1.1.1\n"));
        Assert.Contains("rpz.test.zone:6:", bad.Message);   // CNAME and other data (the zone checks)
        Assert.Contains("CNAME and other data", bad.Message);
        Assert.Contains("rpz.test.zone:7:", bad.Message);   // not an address
        var missing = Assert.Throws<PolicyLoadException>(() => PolicySources.ReadZoneFile(DnsName.Parse("rpz.test."), Path.Combine(_dir, "nope.zone")));
        Assert.Contains("nope.zone: policy zone file not found", missing.Message);
    }

    [Fact]
    public void A_domain_list_blocks_each_name_and_its_subdomains_in_plain_and_hosts_formats()
    {
        var source = List("bad.txt", """
            # a comment line
            plain.example
            Mixed.Case.Example.   # trailing comment
            *.only-below.example
            127.0.0.1 localhost
            ::1 ip6-localhost ip6-loopback
            ff02::1 ip6-allnodes
            0.0.0.0 0.0.0.0
            0.0.0.0 hosts.example tracker.example
            192.0.2.1 pinned.example
            """);
        var policy = ResponsePolicy.Build([new PolicyLayer(source, Name: "bad.txt")]);
        foreach (var name in new[] { "plain.example.", "www.plain.example.", "mixed.case.example.", "a.b.mixed.case.example.",
                     "x.only-below.example.", "hosts.example.", "ads.tracker.example." })
            Assert.True(Match(policy, name)?.Action == PolicyAction.Nxdomain, name);
        foreach (var name in new[] { "only-below.example.", "localhost.", "ip6-localhost.", "pinned.example.", "example.", "0.0.0.0." })
            Assert.Null(Match(policy, name));
        Assert.Equal("bad.txt", Match(policy, "plain.example.")!.Value.PolicyName);
    }

    [Fact]
    public void List_errors_name_the_file_and_line()
    {
        var e = Assert.Throws<PolicyLoadException>(() => List("broken.txt", "good.example\n\nnot a domain line here\nbad..name\n"));
        Assert.Contains("broken.txt:3: 'not a domain line here'", e.Message);
        Assert.Contains("broken.txt:4: 'bad..name' is not a domain name", e.Message);
    }

    [Fact]
    public void A_list_action_applies_to_its_names_and_zones_come_before_lists()
    {
        var zone = Zone("rpz.test.", "www.shared.example CNAME rpz-passthru.\n");
        var list = List("nodata.txt", "shared.example\n", PolicyAction.Nodata);
        var policy = ResponsePolicy.Build([new PolicyLayer(zone), new PolicyLayer(list)]);
        Assert.Equal(PolicyAction.Passthru, Match(policy, "www.shared.example.")?.Action);
        Assert.Equal(PolicyAction.Nodata, Match(policy, "shared.example.")?.Action);
        Assert.Equal(PolicyAction.Nodata, Match(policy, "mail.shared.example.")?.Action);
    }

    [Fact]
    public void Matching_allocates_nothing()
    {
        var policy = ResponsePolicy.Build([new PolicyLayer(Zone("rpz.test.", "*.example CNAME .\nexact.example CNAME *.\n"))]);
        var names = new[] { DnsName.Parse("a.b.c.d.example.").Wire.ToArray(), DnsName.Parse("EXACT.example.").Wire.ToArray(), DnsName.Parse("www.other.test.").Wire.ToArray() };
        foreach (var n in names) policy.TryMatch(n, out _);   // warm up
        long before = GC.GetAllocatedBytesForCurrentThread();
        int hits = 0;
        for (int i = 0; i < 1000; i++)
            foreach (var n in names)
                if (policy.TryMatch(n, out var hit) && hit.PolicyName.Length > 0) hits++;
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(2000, hits);
    }

    [Fact]
    public void Malformed_names_match_nothing_and_never_throw()
    {
        var policy = ResponsePolicy.Build([new PolicyLayer(Zone("rpz.test.", "* CNAME .\n"))]);
        Assert.False(policy.TryMatch([], out _));
        Assert.False(policy.TryMatch([3, (byte)'a', (byte)'b'], out _));            // runs off the end
        Assert.False(policy.TryMatch([64, .. new byte[64], 0], out _));            // label too long
        Assert.False(policy.TryMatch([0xC0, 0x0C], out _));                        // a pointer
        var rng = new Random(1234);
        var buffer = new byte[300];
        for (int i = 0; i < 10_000; i++)
        {
            rng.NextBytes(buffer);
            policy.TryMatch(buffer.AsSpan(0, rng.Next(buffer.Length)), out _);
        }
        var longest = new List<byte>();
        for (int i = 0; i < 127; i++) longest.AddRange([1, (byte)'x']);
        longest.Add(0);
        Assert.True(policy.TryMatch(longest.ToArray(), out var hit) && hit.Wildcard);   // 127 labels, 255 octets
    }

    [Fact]
    public void The_host_applies_order_overrides_and_disabled_and_keeps_the_last_good_file()
    {
        var first = WriteFile("first.zone", Head + "\nwww.example CNAME .\n");
        var second = WriteFile("second.zone", Head + "\nwww.example CNAME rpz-passthru.\nmail.example CNAME *.\n");
        var list = WriteFile("list.txt", "example\n");
        using var zones = new ResponsePolicyZones(Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance);
        var config = new ResponsePolicyConfig
        {
            Zones =
            [
                new PolicyZoneConfig { Name = "first.test", File = first, Policy = "disabled" },
                new PolicyZoneConfig { Name = "second.test", File = second, Policy = "given" },
            ],
            Lists = [new PolicyListConfig { File = list, Action = "drop" }],
        };
        zones.Configure(config, Protocol.Tsig.TsigKeyRing.Empty, strict: true);
        Assert.Equal(PolicyAction.Passthru, Match(zones.Current, "www.example.")?.Action);    // the disabled zone is left out
        Assert.Equal(PolicyAction.Nodata, Match(zones.Current, "mail.example.")?.Action);
        Assert.Equal(PolicyAction.Drop, Match(zones.Current, "ftp.example.")?.Action);        // the list, after the zones
        Assert.Equal("list.txt", Match(zones.Current, "ftp.example.")!.Value.PolicyName);

        config.Zones[0].Policy = "nxdomain";   // enabled, with an override
        zones.Configure(config, Protocol.Tsig.TsigKeyRing.Empty, strict: true);
        Assert.Equal(PolicyAction.Nxdomain, Match(zones.Current, "www.example.")?.Action);

        // A broken list: at start it stops everything; on reload the last good version stays.
        File.WriteAllText(list, "example\nnot valid line\n");
        var e = Assert.Throws<PolicyLoadException>(() => zones.Configure(config, Protocol.Tsig.TsigKeyRing.Empty, strict: true));
        Assert.Contains("list.txt:2:", e.Message);
        zones.Configure(config, Protocol.Tsig.TsigKeyRing.Empty, strict: false);
        Assert.Equal(PolicyAction.Drop, Match(zones.Current, "ftp.example.")?.Action);
    }

    [Fact]
    public void Answering_policy_hits_in_the_pipeline_allocates_nothing()
    {
        var file = WriteFile("rpz.zone", Head + "\nnx.example CNAME .\nlocal.example A 192.0.2.7\n*.wild.example CNAME *.\n");
        using var zones = new ResponsePolicyZones(Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance);
        zones.Configure(new ResponsePolicyConfig { Zones = [new PolicyZoneConfig { Name = "rpz.test", File = file, Log = true }] },
            Protocol.Tsig.TsigKeyRing.Empty, strict: true);
        var config = new ServerConfig { AllowRecursion = ["127.0.0.1"] };
        var processor = new Server.Pipeline.QueryProcessor(Server.Authoritative.ZoneCatalog.Empty, Server.Pipeline.QueryProcessorOptions.From(config))
        {
            Recursion = new Pipeline.ForwardingRecursion(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 9)),
            PolicyZones = zones,
        };
        var info = new Portcullis.Transport.QueryContextInfo(Portcullis.Transport.TransportKind.Udp, new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 5353).Serialize());
        var queries = new[] { "nx.example.", "local.example.", "a.b.wild.example." }
            .Select(n => { var q = Support.DnsTestClient.Query(n, RecordType.A, edns: true); q.Header.RecursionDesired = true; return q.ToWire(); }).ToArray();
        var response = new byte[1232];
        var rcodes = new List<int>();
        foreach (var q in queries)
        {
            int n = processor.Process(q, response, in info);
            rcodes.Add(response[3] & 0xF);
            Assert.True(n > 12);
        }
        Assert.Equal([3, 0, 0], rcodes);
        for (int i = 0; i < 200; i++) foreach (var q in queries) processor.Process(q, response, in info);   // warm-up
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++) foreach (var q in queries) processor.Process(q, response, in info);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(1201, processor.Counters[SecurityReason.PolicyNxdomain]);
    }

    private static DnsMessage Answer(ResponsePolicy policy, string name, RecordType type, bool tcp, out PolicyResponse result)
    {
        Assert.True(policy.TryMatch(DnsName.Parse(name).Wire, out var hit));
        var buffer = new byte[512];
        var w = new DnsMessageWriter(buffer);
        w.Header = new DnsHeader { Id = 1, IsResponse = true, RecursionDesired = true, RecursionAvailable = true };
        var qname = DnsName.Parse(name).Wire;
        w.TryWriteQuestion(qname, type, RecordClass.IN);
        result = PolicyResponseWriter.Write(in hit, ref w, qname, type, tcp);
        return DnsMessage.Parse(buffer.AsSpan(0, w.Finish()).ToArray());
    }

    [Fact]
    public void The_answers_written_for_each_action()
    {
        var policy = ResponsePolicy.Build([new PolicyLayer(Zone("rpz.test.", """
            nx.example     CNAME .
            nodata.example CNAME *.
            *.local.example 120 A 192.0.2.7
            *.local.example 120 A 192.0.2.8
            alias.example  CNAME garden.example.net.
            tcp.example    CNAME rpz-tcp-only.
            drop.example   CNAME rpz-drop.
            """))]);
        var nx = Answer(policy, "nx.example.", RecordType.A, false, out var r);
        Assert.Equal(PolicyResponse.Written, r);
        Assert.Equal(Rcode.NXDomain, nx.Rcode);
        var soa = Assert.Single(nx.Authority);
        Assert.Equal("rpz.test.", soa.Owner.ToString());
        Assert.Equal(60u, soa.Ttl);   // min(TTL 300, MINIMUM 60)
        Assert.False(nx.Header.AuthoritativeAnswer);

        var nodata = Answer(policy, "nodata.example.", RecordType.AAAA, false, out _);
        Assert.Equal(Rcode.NoError, nodata.Rcode);
        Assert.Empty(nodata.Answers);
        Assert.Single(nodata.Authority);

        var local = Answer(policy, "Www.Local.Example.", RecordType.A, false, out _);
        Assert.Equal(2, local.Answers.Count);
        Assert.All(local.Answers, a => Assert.Equal("Www.Local.Example.", a.Owner.ToString()));
        Assert.All(local.Answers, a => Assert.Equal(120u, a.Ttl));
        var localNodata = Answer(policy, "www.local.example.", RecordType.MX, false, out _);   // no MX there: NODATA
        Assert.Empty(localNodata.Answers);
        Assert.Equal(RecordType.SOA, Assert.Single(localNodata.Authority).Type);

        var alias = Answer(policy, "alias.example.", RecordType.A, false, out _);
        var cname = Assert.Single(alias.Answers);
        Assert.Equal(RecordType.CNAME, cname.Type);
        Assert.Equal("garden.example.net.", DnsName.FromWire(cname.Data).ToString());

        var tcpOverUdp = Answer(policy, "tcp.example.", RecordType.A, false, out r);
        Assert.Equal(PolicyResponse.Written, r);
        Assert.True(tcpOverUdp.Header.Truncated);
        Assert.Empty(tcpOverUdp.Answers);
        Answer(policy, "tcp.example.", RecordType.A, true, out r);
        Assert.Equal(PolicyResponse.Continue, r);
        Answer(policy, "drop.example.", RecordType.A, false, out r);
        Assert.Equal(PolicyResponse.Drop, r);
    }

    [Fact]
    public void The_configuration_reads_and_names_its_problems_with_line_numbers()
    {
        var yaml = """
            listen: ["127.0.0.1:5353"]
            keys:
              - name: xfr
                secret: dGVzdC1vbmx5LXRzaWctc2VjcmV0LTMyLW9jdGV0cyE=
            response-policy:
              zones:
                - name: rpz.test
                  file: rpz.zone
                  policy: nodata
                  log: false
                - name: feed.test
                  primaries: ["127.0.0.5@5300"]
                  tsig-key: xfr
              lists:
                - file: bad.txt
                  action: drop
            """;
        var configPath = Path.Combine(_dir, "portcullis.yaml");
        var config = ConfigLoader.Parse(yaml, configPath);
        var rp = config.ResponsePolicy;
        Assert.Equal(2, rp.Zones.Count);
        Assert.Equal(Path.Combine(_dir, "rpz.zone"), rp.Zones[0].File);
        Assert.Equal("nodata", rp.Zones[0].Policy);
        Assert.False(rp.Zones[0].Log);
        Assert.Equal(Path.Combine(_dir, "rpz", "feed.test.zone"), rp.Zones[1].File);   // the transferred copy's default place
        Assert.Equal("drop", rp.Lists[0].Action);
        Assert.Equal("bad.txt", rp.Lists[0].PolicyName);

        var wrong = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(yaml.Replace("policy: nodata", "policy: block"), configPath));
        Assert.Contains("portcullis.yaml:9:", wrong.Message);
        Assert.Contains("policy 'block' is not one of given, nxdomain", wrong.Message);
        var noKey = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(yaml.Replace("tsig-key: xfr", "tsig-key: other"), configPath));
        Assert.Contains("tsig-key: no key named other", noKey.Message);
        var noSource = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(yaml.Replace("      file: rpz.zone\n", ""), configPath));
        Assert.Contains("give file", noSource.Message);
    }
}
