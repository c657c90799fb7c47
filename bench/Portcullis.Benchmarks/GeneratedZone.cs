using System.Globalization;
using System.Text;

namespace Portcullis.Benchmarks;

/// <summary>
/// A deterministic zone file of a given number of records, written once to the temp directory and
/// reused: a mix of A, AAAA, MX, TXT, NS and CNAME under relative owners, with omitted owners and the
/// odd explicit TTL, as operators write large zones.
/// </summary>
public static class GeneratedZone
{
    public const string CountVariable = "PORTCULLIS_BENCH_ZONE_RECORDS";
    public const int DefaultCount = 1_000_000;
    public const string Origin = "bench.example.";

    /// <summary>The record count from <see cref="CountVariable"/>, else 1,000,000.</summary>
    public static int RecordCount
    {
        get
        {
            string? text = Environment.GetEnvironmentVariable(CountVariable);
            return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n >= 10 ? n : DefaultCount;
        }
    }

    public static string PathFor(int records) =>
        Path.Combine(Path.GetTempPath(), $"portcullis-bench-{records}.zone");

    /// <summary>Writes the zone unless it is already there; returns its path.</summary>
    public static string Ensure(int records)
    {
        string path = PathFor(records);
        if (File.Exists(path)) return path;
        // Write beside and rename, so that a reader in another process never sees half a file.
        string partial = path + "." + Environment.ProcessId + ".tmp";
        using (var writer = new StreamWriter(partial, false, new UTF8Encoding(false), 1 << 16))
            Write(writer, records);
        File.Move(partial, path, overwrite: true);
        return path;
    }

    public static void Write(TextWriter w, int records)
    {
        var inv = CultureInfo.InvariantCulture;
        w.Write("$ORIGIN "); w.WriteLine(Origin);
        w.WriteLine("$TTL 1h");
        w.WriteLine("@\tIN\tSOA\tns1 hostmaster (");
        w.WriteLine("\t\t2024010101 ; serial");
        w.WriteLine("\t\t2h 1h 2w 1h )");
        w.WriteLine("\tIN\tNS\tns1");
        w.WriteLine("\tIN\tNS\tns2.bench.example.");
        w.WriteLine("ns1\tIN\tA\t192.0.2.53");
        w.WriteLine("ns2\tIN\tA\t198.51.100.53");
        int written = 5;
        for (int i = 0; written < records; i++)
        {
            // Each owner gets a handful of records; the owner is omitted after the first, as usual.
            string owner = "host" + i.ToString(inv);
            int kind = i % 10;
            int lines = kind switch { 0 or 1 or 2 or 3 => 2, 4 or 5 => 3, 6 => 2, 7 => 1, 8 => 1, _ => 2 };
            for (int j = 0; j < lines && written < records; j++, written++)
            {
                w.Write(j == 0 ? owner : "");
                w.Write('\t');
                switch ((kind, j))
                {
                    case ((>= 0 and <= 3), 0):
                        w.Write("IN\tA\t10."); w.Write((i >> 16) & 255); w.Write('.'); w.Write((i >> 8) & 255); w.Write('.'); w.Write(i & 255);
                        break;
                    case ((>= 0 and <= 3), _):
                        w.Write("IN\tAAAA\t2001:db8:"); w.Write((i >> 16).ToString("x", inv)); w.Write("::"); w.Write((i & 0xffff).ToString("x", inv));
                        break;
                    case ((4 or 5), 0):
                        w.Write("300\tIN\tA\t172.16."); w.Write((i >> 8) & 255); w.Write('.'); w.Write(i & 255);
                        break;
                    case ((4 or 5), 1):
                        w.Write("IN\tMX\t10 mail"); w.Write(i % 50);
                        break;
                    case ((4 or 5), _):
                        w.Write("IN\tTXT\t\"v=spf1 ip4:10.0.0.0/8 include:_spf.example.net -all\" \"id="); w.Write(i); w.Write('"');
                        break;
                    case (6, 0):
                        w.Write("IN\tNS\tns1.host"); w.Write(i);
                        break;
                    case (6, _):
                        w.Write("IN\tNS\tns2.example.net.");
                        break;
                    case (7, _):
                        w.Write("IN\tCNAME\thost"); w.Write(i - 1);
                        break;
                    case (8, _):
                        w.Write("IN\tTXT\t\"google-site-verification=abcdefghijklmnopqrstuvwxyz"); w.Write(i); w.Write('"');
                        break;
                    default:
                        w.Write(j == 0 ? "IN\tAAAA\t2001:db8:ffff::" : "IN\tMX\t20 mx.example.net.");
                        if (j == 0) w.Write((i & 0xffff).ToString("x", inv));
                        break;
                }
                w.Write('\n');
            }
        }
    }
}
