using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;

namespace Portcullis.Server.Tests.Differential;

/// <summary>
/// Generates the differential queries from the zones, deterministically (fixed seed, names in
/// canonical order): every name × every type of the zones and the usual missing types, with and
/// without EDNS; ANY over TCP (and over UDP, where RFC 8482 lets answers differ); random missing
/// names under every node; names below every cut and DNAME; wildcard matches one and two labels
/// deep; mixed-case spellings; names in no served zone. A sample of the UDP queries is repeated
/// over TCP. RD is set on about half the queries: a server must echo it either way.
/// </summary>
public static class QueryGenerator
{
    public const int Seed = 20240603;

    /// <summary>Types asked at every name besides those present in the zones (most are missing at most names).</summary>
    private static readonly RecordType[] UsualTypes =
    [
        RecordType.A, RecordType.AAAA, RecordType.MX, RecordType.TXT, RecordType.NS, RecordType.SOA,
        RecordType.DS, RecordType.CNAME, RecordType.DNAME, RecordType.SRV, RecordType.PTR, RecordType.CAA,
    ];

    /// <summary>Names in no zone served: every server must refuse them the same way.</summary>
    private static readonly string[] Unserved = ["outside.example.", "test.", ".", "example.net.", "xample.test.", "tress.test."];

    /// <summary>One UDP query in this many is asked over TCP as well.</summary>
    private const int TcpSampleEvery = 10;

    public static List<DifferentialQuery> Generate(IReadOnlyList<DifferentialZone> zones)
    {
        var random = new Random(Seed);
        var queries = new List<DifferentialQuery>();
        var types = zones.SelectMany(z => z.Records.Select(r => r.Type)).Concat(UsualTypes)
            .Where(t => t != RecordType.ANY).Distinct().OrderBy(t => (ushort)t).ToArray();

        void Add(DnsName name, RecordType type, string why, bool? edns = null, bool tcp = false)
        {
            foreach (bool e in edns is { } only ? [only] : new[] { false, true })
                queries.Add(new DifferentialQuery(name, type, e, random.Next(2) == 1, tcp, why));
        }

        foreach (var zone in zones)
        {
            var names = zone.Names.OrderBy(n => n).ToArray();
            foreach (var name in names)
            {
                foreach (var type in types) Add(name, type, "name x type");
                // ANY: every RRset over TCP; over UDP RFC 8482 lets the answer shrink.
                Add(name, RecordType.ANY, "ANY over TCP", tcp: true);
                Add(name, RecordType.ANY, "ANY over UDP", edns: random.Next(2) == 1);
            }

            foreach (var name in names)
            {
                // A missing name directly under every node (NXDOMAIN, a wildcard, or a referral).
                var missing = name.Prepend(RandomLabel(random));
                Add(missing, RecordType.A, "missing name");
                Add(missing, types[random.Next(types.Length)], "missing name", edns: random.Next(2) == 1);
                // The same name spelt in mixed case, for each type it has and A.
                var mixed = MixCase(name, random);
                foreach (var type in zone.TypesAt(name).Append(RecordType.A).Distinct())
                    Add(mixed, type, "mixed case", edns: random.Next(2) == 1);
                Add(MixCase(missing, random), RecordType.TXT, "mixed case missing", edns: random.Next(2) == 1);
            }

            foreach (var cut in zone.Cuts.OrderBy(n => n))
            {
                var below = cut.Prepend(RandomLabel(random));
                var deeper = below.Prepend(RandomLabel(random));
                foreach (var type in new[] { RecordType.A, RecordType.AAAA, RecordType.NS, RecordType.DS, RecordType.SOA })
                {
                    Add(below, type, "below a cut");
                    Add(deeper, type, "below a cut", edns: random.Next(2) == 1);
                }
            }

            foreach (var wildcard in zone.Wildcards.OrderBy(n => n))
            {
                var parent = wildcard.Parent();
                var match = parent.Prepend(RandomLabel(random));
                var deep = match.Prepend(RandomLabel(random));
                foreach (var type in zone.TypesAt(wildcard).Concat([RecordType.A, RecordType.AAAA, RecordType.MX, RecordType.CNAME, RecordType.NS]).Distinct())
                {
                    Add(match, type, "wildcard match");
                    Add(deep, type, "wildcard match, two labels down", edns: random.Next(2) == 1);
                }
                Add(MixCase(match, random), RecordType.A, "wildcard match, mixed case");
            }

            foreach (var (dname, target) in zone.Dnames.OrderBy(d => d.Key))
            {
                // Random names below the DNAME, and the mirror of every name below its target.
                var below = new List<DnsName> { dname.Prepend(RandomLabel(random)), dname.Prepend(RandomLabel(random)).Prepend(RandomLabel(random)) };
                foreach (var name in zone.Names.Where(n => n.LabelCount > target.LabelCount && n.IsSubdomainOf(target)).OrderBy(n => n))
                    below.Add(Relocate(name, target, dname));
                foreach (var name in below)
                    foreach (var type in new[] { RecordType.A, RecordType.TXT, RecordType.CNAME, RecordType.DNAME })
                        Add(name, type, "below a DNAME", edns: random.Next(2) == 1);
                // Two long labels: the substitution may exceed 255 octets (RFC 6672 §2.2, YXDOMAIN).
                var longName = dname.Prepend(LongLabel('y')).Prepend(LongLabel('x'));
                Add(longName, RecordType.A, "below a DNAME, long name");
            }
        }

        foreach (var text in Unserved)
            foreach (var type in new[] { RecordType.A, RecordType.SOA, RecordType.NS })
                Add(DnsName.Parse(text), type, "no served zone");

        // A deterministic sample repeated over TCP.
        int count = queries.Count;
        for (int i = 0; i < count; i += TcpSampleEvery)
            if (!queries[i].Tcp) queries.Add(queries[i].OverTcp("TCP sample: " + queries[i].Why));
        return queries;
    }

    private static byte[] RandomLabel(Random random)
    {
        const string alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
        var label = new byte[random.Next(3, 11)];
        for (int i = 0; i < label.Length; i++) label[i] = (byte)alphabet[random.Next(alphabet.Length)];
        label[0] = (byte)'q';   // never "*", never a name of the zones by accident of a short label
        return label;
    }

    private static byte[] LongLabel(char c) => Enumerable.Repeat((byte)c, 63).ToArray();

    /// <summary>The name with each ASCII letter's case flipped at random (other octets kept).</summary>
    private static DnsName MixCase(DnsName name, Random random)
    {
        var wire = name.Wire.ToArray();
        int pos = 0;
        while (wire[pos] != 0)
        {
            int len = wire[pos];
            for (int i = pos + 1; i <= pos + len; i++)
                if (char.IsAsciiLetter((char)wire[i]) && random.Next(2) == 1) wire[i] ^= 0x20;
            pos += 1 + len;
        }
        return DnsName.FromWire(wire);
    }

    /// <summary>The name moved from below <paramref name="from"/> to below <paramref name="to"/>.</summary>
    private static DnsName Relocate(DnsName name, DnsName from, DnsName to)
    {
        var result = to;
        for (int i = name.LabelCount - from.LabelCount - 1; i >= 0; i--) result = result.Prepend(name.GetLabel(i));
        return result;
    }
}
