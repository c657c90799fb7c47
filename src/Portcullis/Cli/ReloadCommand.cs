using System.CommandLine;
using System.Runtime.InteropServices;

namespace Portcullis.Cli;

/// <summary>
/// `portcullis reload --pid-file PATH`: asks a running server to reload its configuration and
/// changed zones, by sending it SIGHUP (as `rndc reload` or `knotc reload` ask theirs).
/// </summary>
public static partial class ReloadCommand
{
    private const int SIGHUP = 1;

    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var pidFile = new Option<string>("--pid-file") { Description = "The pid file the server was started with.", Required = true };
        var command = new Command("reload", "Reload a running server's configuration and changed zones (SIGHUP).") { pidFile };
        command.SetAction(result => Run(result.GetValue(pidFile)!, stdout, stderr));
        return command;
    }

    public static int Run(string pidFile, TextWriter stdout, TextWriter stderr)
    {
        string text;
        try { text = File.ReadAllText(pidFile).Trim(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"portcullis: {pidFile}: {e.Message}");
            return CommandLine.Problems;
        }
        if (!int.TryParse(text, out int pid) || pid <= 1)
        {
            stderr.WriteLine($"portcullis: {pidFile}: no process id in it");
            return CommandLine.Problems;
        }
        if (Kill(pid, SIGHUP) != 0)
        {
            stderr.WriteLine($"portcullis: cannot signal process {pid}: {Marshal.GetLastPInvokeErrorMessage()}");
            return CommandLine.Problems;
        }
        stdout.WriteLine($"reload requested (process {pid})");
        return CommandLine.Success;
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
