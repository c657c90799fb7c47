using System.Net;
using Microsoft.Extensions.Logging.Abstractions;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.Wire;
using Portcullis.Server.Configuration;
using Portcullis.Server.Hosting;
using Portcullis.Server.Resolution;

namespace Portcullis.Server.Tests.Hosting;

/// <summary>The recursion: section: defaults, its mapping onto the resolver's options, root hints files, and errors with file and line.</summary>
public sealed class RecursionConfigTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("portcullis-recursion-config-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, string text)
    {
        var file = Path.Combine(_dir, name);
        File.WriteAllText(file, text);
        return file;
    }

    private const string Hints = """
        ;       This file holds the information on root name servers needed to
        ;       initialize cache of Internet domain name servers
        .                        3600000      NS    A.ROOT-SERVERS.NET.
        A.ROOT-SERVERS.NET.      3600000      A     198.41.0.4
        A.ROOT-SERVERS.NET.      3600000      AAAA  2001:503:ba3e::2:30
        ;
        .                        3600000      NS    B.ROOT-SERVERS.NET.
        B.ROOT-SERVERS.NET.      3600000  IN  A     170.247.170.2
        ; an address for a name that is no root server is not a hint
        C.EXAMPLE.               3600000      A     192.0.2.1
        """;

    [Fact]
    public void Recursion_is_on_by_default_for_allow_recursion_with_unbounds_defaults()
    {
        var config = ConfigLoader.Parse("listen: [\"127.0.0.1:0\"]\n", Path.Combine(_dir, "p.yaml"));
        Assert.True(config.Recursion.Enabled);
        Assert.Equal(["localhost", "localnets"], config.AllowRecursion);
        var options = DnsServer.ResolverOptionsFrom(config.Recursion);
        var defaults = new ResolverOptions();
        Assert.Empty(options.RootHints);   // the built-in hints
        Assert.Empty(options.Forwarders);
        Assert.Equal(defaults.CacheBytes, options.CacheBytes);
        Assert.Equal(defaults.MinTtl, options.MinTtl);
        Assert.Equal(defaults.MaxTtl, options.MaxTtl);
        Assert.Equal(defaults.MaxNegativeTtl, options.MaxNegativeTtl);
        Assert.True(options.QnameMinimisation && options.ServeStale && options.Prefetch);
    }

    [Fact]
    public void Every_key_maps_onto_the_resolver_options()
    {
        Write("named.root", Hints);
        var config = ConfigLoader.Load(Write("p.yaml", """
            recursion:
              root-hints: named.root
              forwarders: ["192.0.2.53", "192.0.2.54@5353"]
              forward-zones:
                corp.example: ["10.0.0.53@53", "[2001:db8::53]@5300"]
              cache-size: 256
              cache-min-ttl: 30s
              cache-max-ttl: 2h
              cache-max-negative-ttl: 10m
              qname-minimisation: false
              serve-stale: false
              prefetch: false
              max-in-flight: 50
            """));
        var o = DnsServer.ResolverOptionsFrom(config.Recursion);
        Assert.Equal(Path.Combine(_dir, "named.root"), config.Recursion.RootHints);
        Assert.Equal(
            ["A.ROOT-SERVERS.NET./198.41.0.4", "A.ROOT-SERVERS.NET./2001:503:ba3e::2:30", "B.ROOT-SERVERS.NET./170.247.170.2"],
            o.RootHints.Select(h => $"{h.Name}/{h.Address}"));
        Assert.Equal(["192.0.2.53:53", "192.0.2.54:5353"], o.Forwarders[DnsName.Root].Select(e => e.ToString()));
        Assert.Equal(["10.0.0.53:53", "[2001:db8::53]:5300"], o.Forwarders[DnsName.Parse("corp.example.")].Select(e => e.ToString()));
        Assert.Equal(256L << 20, o.CacheBytes);
        Assert.Equal(TimeSpan.FromSeconds(30), o.MinTtl);
        Assert.Equal(TimeSpan.FromHours(2), o.MaxTtl);
        Assert.Equal(TimeSpan.FromMinutes(10), o.MaxNegativeTtl);
        Assert.False(o.QnameMinimisation || o.ServeStale || o.Prefetch);
        Assert.Equal(50, Portcullis.Server.Pipeline.QueryProcessorOptions.From(config, new Portcullis.Server.Security.LocalNetworks([])).MaxResolutionsInFlight);
    }

    [Theory]
    [InlineData("recursion:\n  forwarders: [\"not-an-address\"]\n", 2, "not-an-address")]
    [InlineData("recursion:\n  forward-zones:\n    corp.example: [\"10.0.0.1@99999\"]\n", 3, "bad port")]
    [InlineData("recursion:\n  forward-zones:\n    corp.example: []\n", 3, "has no servers")]
    [InlineData("recursion:\n  cache-max-ttl: soon\n", 2, "not a duration")]
    [InlineData("recursion:\n  cache-min-ttl: 2d\n", 2, "above cache-max-ttl")]
    [InlineData("recursion:\n  cache-size: 0\n", 2, "cache-size must be")]
    [InlineData("recursion:\n  max-in-flight: 0\n", 2, "max-in-flight must be")]
    [InlineData("recursion:\n  cache-sise: 10\n", 2, "cache-sise")]
    public void A_bad_value_is_an_error_with_file_and_line(string yaml, int line, string why)
    {
        var file = Write("p.yaml", yaml);
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Load(file));
        Assert.StartsWith($"{file}:{line}:", e.Message);
        Assert.Contains(why, e.Message);
    }

    [Theory]
    [InlineData("A.ROOT-SERVERS.NET. 3600000 A 198.41.0.400\n", 2, "not an IPv4 address")]
    [InlineData("A.ROOT-SERVERS.NET. 3600000 A\n", 2, "expected OWNER")]
    [InlineData("A.ROOT-SERVERS.NET. 3600000 NS B.ROOT-SERVERS.NET.\n", 2, "belong to the root")]
    [InlineData("A.ROOT-SERVERS.NET. 3600000 AAAA 198.41.0.4\n", 2, "not an IPv6 address")]
    public void A_broken_root_hints_file_is_an_error_with_its_file_and_line(string bad, int line, string why)
    {
        var hints = Write("named.root", ". 3600000 NS A.ROOT-SERVERS.NET.\n" + bad);
        var file = Write("p.yaml", "recursion:\n  root-hints: named.root\n");
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Load(file));
        Assert.StartsWith($"{hints}:{line}:", e.Message);
        Assert.Contains(why, e.Message);
    }

    [Fact]
    public void Root_hints_without_root_servers_or_their_addresses_are_refused()
    {
        var noNs = Write("a.root", "A.ROOT-SERVERS.NET. 3600000 A 198.41.0.4\n");
        Assert.Contains("no NS records", Assert.Throws<ConfigException>(() => RootHints.Load(noNs)).Message);
        var noAddress = Write("b.root", ". 3600000 NS A.ROOT-SERVERS.NET.\nX. 1 A 192.0.2.1\n");
        Assert.Contains("no address", Assert.Throws<ConfigException>(() => RootHints.Load(noAddress)).Message);
        var missing = Path.Combine(_dir, "missing.root");
        Assert.StartsWith($"{missing}: cannot read", Assert.Throws<ConfigException>(() => RootHints.Load(missing)).Message);
    }

    /// <summary>Counts what the server built and disposed.</summary>
    private sealed class CountedRecursion(ResolverOptions options) : IRecursion, IDisposable
    {
        public ResolverOptions Options { get; } = options;
        public bool Disposed { get; private set; }
        public bool TryAnswerFromCache(scoped ReadOnlySpan<byte> qname, RecordType qtype, RecordClass qclass, bool dnssecOk, bool checkingDisabled,
            ref DnsMessageWriter w, out CacheAnswer answer)
        {
            answer = default;
            return false;
        }
        public Task<ResolutionResult> ResolveAsync(ResolverQuestion question, CancellationToken token) => Task.FromResult(new ResolutionResult());
        public void Dispose() => Disposed = true;
    }

    [Fact]
    public void The_server_builds_the_resolver_from_the_section_and_rebuilds_it_only_when_reload_changes_it()
    {
        var built = new List<CountedRecursion>();
        string yaml = $"listen: [\"{Support.TestServer.NextAddress()}:0\"]\nrecursion:\n  cache-size: 8\n";
        var file = Write("p.yaml", yaml);
        using var server = new DnsServer(ConfigLoader.Load(file), NullLoggerFactory.Instance, () => ConfigLoader.Load(file),
            recursion: (options, _, _) => { var r = new CountedRecursion(options); built.Add(r); return r; });
        server.Start();
        Assert.Same(built.Single(), server.Recursion);
        Assert.Same(server.Recursion, server.Processor.Recursion);
        Assert.Equal(8L << 20, built[0].Options.CacheBytes);
        server.Reload();
        Assert.Single(built);   // unchanged section: the cache is kept
        File.WriteAllText(file, yaml.Replace("cache-size: 8", "cache-size: 16"));
        server.Reload();
        Assert.Equal(2, built.Count);
        Assert.True(built[0].Disposed);
        Assert.Same(built[1], server.Processor.Recursion);
        File.WriteAllText(file, yaml + "  enabled: false\n");
        server.Reload();
        Assert.Null(server.Processor.Recursion);
        Assert.True(built[1].Disposed);
    }
}
