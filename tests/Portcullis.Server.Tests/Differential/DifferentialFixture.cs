using Portcullis.Server.Tests.Support;
using Portcullis.Testing;

namespace Portcullis.Server.Tests.Differential;

/// <summary>
/// The three servers of the differential test, each loading the same zone files on its own
/// loopback port: Portcullis in process, Knot DNS and NSD as child processes. The generated
/// queries are asked of all three once, when the fixture is made; the tests compare the answers.
/// </summary>
public sealed class DifferentialFixture : IDisposable
{
    public const string Knot = "knot";
    public const string Nsd = "nsd";

    private readonly TestServer _portcullis;
    private readonly KnotPeer _knot;
    private readonly NsdPeer _nsd;

    public DifferentialFixture()
    {
        string data = Path.Combine(AppContext.BaseDirectory, "Differential", "Data");
        PeerZones =
        [
            new PeerZone("example.test", Path.Combine(AppContext.BaseDirectory, "zones", "example.test.zone")),
            new PeerZone("stress.test", Path.Combine(data, "stress.test.zone")),
            // Served beside its parent: DS at its apex must still come from stress.test.
            new PeerZone("kid.stress.test", Path.Combine(data, "kid.stress.test.zone")),
        ];
        Zones = PeerZones.Select(z => new DifferentialZone(z.Origin, z.File)).ToList();
        Queries = QueryGenerator.Generate(Zones);

        _portcullis = new TestServer(PeerZones.Select(z => (z.Origin + ".", File.ReadAllText(z.File))).ToArray());
        try
        {
            _knot = new KnotPeer(PeerZones);
            _nsd = new NsdPeer(PeerZones);
        }
        catch
        {
            _knot?.Dispose();
            _portcullis.Dispose();
            throw;
        }

        Ask(Queries);
        // A client that gets TC=1 asks again over TCP (RFC 7766 §5): so does the test, on all three.
        var retries = new List<DifferentialQuery>();
        for (int i = 0; i < Queries.Count; i++)
            if (!Queries[i].Tcp && Answers.Values.Any(list => list[i].Message?.Header.Truncated == true))
                retries.Add(Queries[i].OverTcp("TCP retry after TC: " + Queries[i].Why));
        Queries.AddRange(retries);
        Ask(retries);
    }

    public IReadOnlyList<PeerZone> PeerZones { get; }
    public IReadOnlyList<DifferentialZone> Zones { get; }
    public List<DifferentialQuery> Queries { get; }

    /// <summary>Each server's answers ("portcullis", "knot", "nsd"), index for index with <see cref="Queries"/>.</summary>
    public Dictionary<string, List<Observation>> Answers { get; } = new() { ["portcullis"] = [], [Knot] = [], [Nsd] = [] };

    public string PeerLog(string peer) => peer == Knot ? _knot.Log : _nsd.Log;

    /// <summary>Asks every query of each server in turn; the three servers are asked in parallel.</summary>
    private void Ask(IReadOnlyList<DifferentialQuery> queries)
    {
        var endpoints = new Dictionary<string, System.Net.IPEndPoint>
        {
            ["portcullis"] = _portcullis.EndPoint, [Knot] = _knot.EndPoint, [Nsd] = _nsd.EndPoint,
        };
        Parallel.ForEach(endpoints, pair =>
        {
            using var client = new DifferentialClient(pair.Value);
            var list = Answers[pair.Key];
            foreach (var q in queries) list.Add(client.Ask(q));
        });
    }

    public void Dispose()
    {
        _nsd.Dispose();
        _knot.Dispose();
        _portcullis.Dispose();
    }
}
