using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;

namespace Portcullis.Benchmarks;

public static class Program
{
    /// <summary>
    /// Runs BenchmarkDotNet's switcher. <c>--quick</c> uses ShortRun (one launch, three warm-ups,
    /// three iterations) so a whole run fits in a few minutes on a 2-core machine.
    /// </summary>
    public static void Main(string[] args)
    {
        bool quick = Array.IndexOf(args, "--quick") >= 0;
        args = Array.FindAll(args, a => a != "--quick");
        IConfig config = DefaultConfig.Instance;
        if (quick) config = config.AddJob(Job.ShortRun.WithId("ShortRun"));
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, config);
    }
}
