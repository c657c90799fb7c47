using System.Globalization;
using System.Net;

namespace Portcullis.Testing;

/// <summary>
/// Unbound from Debian run as <c>unbound -d</c> in a temporary directory of its own, with the
/// configuration a subclass writes (<see cref="UnboundConfig"/>); the constructor returns once it
/// answers (a probe on <see cref="EndPoint"/>), Dispose kills it and removes the directory.
/// </summary>
public abstract class UnboundProcess : IDisposable
{
    private readonly BackgroundProcess? _process;

    /// <param name="configure">The unbound.conf text, given the directory it lives in.</param>
    protected UnboundProcess(IPEndPoint endPoint, string directoryPrefix, ushort probeId, Func<string, string> configure)
    {
        EndPoint = endPoint;
        Directory = System.IO.Directory.CreateTempSubdirectory(directoryPrefix).FullName;
        try
        {
            string config = Path.Combine(Directory, "unbound.conf");
            File.WriteAllText(config, configure(Directory));
            _process = new BackgroundProcess("unbound", ["-d", "-c", config], Directory);
            if (!_process.WaitForOutput("start of service", ExternalProcess.DefaultTimeout))
                throw new InvalidOperationException($"unbound did not start.\n`{_process.CommandLine}` printed:\n{_process.Output}");
            ResolverProbe.WaitUntilAnswering(EndPoint, probeId, () => _process.HasExited, () => Log);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public IPEndPoint EndPoint { get; }
    public string Directory { get; }
    public string Log => _process?.Output ?? "";

    /// <summary>CPU time (user + system) Unbound has used so far, from /proc/PID/stat (clock ticks of 10 ms).</summary>
    public TimeSpan CpuTime
    {
        get
        {
            var stat = File.ReadAllText($"/proc/{_process!.Id}/stat");
            // The fields after the command name (which is in parentheses and may hold spaces).
            var f = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            long ticks = long.Parse(f[11], CultureInfo.InvariantCulture) + long.Parse(f[12], CultureInfo.InvariantCulture);
            return TimeSpan.FromMilliseconds(ticks * 10);
        }
    }

    public void Dispose()
    {
        _process?.Dispose();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // Left in the temp directory; harmless.
        }
        GC.SuppressFinalize(this);
    }
}
