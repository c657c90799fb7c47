using System.Net;
using Microsoft.Extensions.Logging.Abstractions;
using Portcullis.Server.Configuration;
using Portcullis.Server.Hosting;

namespace Portcullis.Server.Tests.Support;

/// <summary>
/// A real server on a loopback address and a free port, serving zone files written to a temp
/// directory of its own. Disposing it stops the listeners and removes the directory.
/// </summary>
public sealed class TestServer : IDisposable
{
    private static int _nextAddress = 10;

    public TestServer(params (string Origin, string Text)[] zones) : this(null, zones) { }

    public TestServer(Action<ServerConfig>? configure, params (string Origin, string Text)[] zones)
        : this(configure, NullLoggerFactory.Instance, zones) { }

    public TestServer(Action<ServerConfig>? configure, Microsoft.Extensions.Logging.ILoggerFactory loggerFactory, params (string Origin, string Text)[] zones)
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("portcullis-test-").FullName;
        // Each server gets its own 127.0.0.x (and a free port), so tests never collide.
        Address = NextAddress();
        // Recursion off unless a test turns it on: a name outside the zones is then REFUSED at once
        // instead of being resolved from the Internet's root servers (unreachable in tests).
        Config = new ServerConfig { Listen = [$"{Address}:0"], Recursion = { Enabled = false } };
        foreach (var (origin, text) in zones)
        {
            var file = Path.Combine(Directory, origin.TrimEnd('.') + ".zone");
            File.WriteAllText(file, text);
            Config.Zones.Add(new ZoneConfig { Name = origin, File = file });
        }
        configure?.Invoke(Config);
        Server = new DnsServer(Config, loggerFactory);
        Server.Start();
        EndPoint = Server.UdpEndPoints[0];
    }

    /// <summary>A 127.0.0.x of its own for a server a test starts (with port 0), so tests never collide.</summary>
    public static IPAddress NextAddress() => IPAddress.Parse($"127.0.0.{Interlocked.Increment(ref _nextAddress) % 200 + 20}");

    public static string ExampleZone => File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "zones", "example.test.zone"));

    public string Directory { get; }
    public IPAddress Address { get; }
    public ServerConfig Config { get; }
    public DnsServer Server { get; }
    public IPEndPoint EndPoint { get; }

    public DnsTestClient Client() => new(EndPoint);

    /// <summary>A client whose queries come from <paramref name="source"/> (a 127.0.0.x address).</summary>
    public DnsTestClient ClientFrom(string source) => new(EndPoint, IPAddress.Parse(source));

    public string ZoneFile(string origin) => Path.Combine(Directory, origin.TrimEnd('.') + ".zone");

    public void Dispose()
    {
        Server.Dispose();
        try { System.IO.Directory.Delete(Directory, recursive: true); } catch (IOException) { }
    }
}
