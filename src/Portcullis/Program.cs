using System.Text;
using Portcullis.Cli;

namespace Portcullis;

public static class Program
{
    public static int Main(string[] args)
    {
        // Buffered: `zone check --print` of a large zone writes a million lines.
        using var stdout = new StreamWriter(Console.OpenStandardOutput(), new UTF8Encoding(false), 1 << 16) { AutoFlush = false };
        using var stderr = new StreamWriter(Console.OpenStandardError(), new UTF8Encoding(false), 1 << 12) { AutoFlush = true };
        return CommandLine.Run(args, stdout, stderr);
    }
}
