using System.CommandLine;

namespace Portcullis.Cli;

/// <summary>
/// The `portcullis` command tree. Exit codes: 0 success, 1 the work found problems (a zone with
/// errors), 2 a usage error (unknown command or option, missing argument), as the BSD sysexits
/// convention of grep and diff has it.
/// </summary>
public static class CommandLine
{
    public const int Success = 0;
    public const int Problems = 1;
    public const int UsageError = 2;

    /// <summary>Runs the command line <paramref name="args"/> writing to the given streams; returns the exit code.</summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        var root = new RootCommand("Portcullis: an authoritative and recursive DNS server.")
        {
            ZoneCommand.Create(stdout, stderr),
            ServeCommand.Create(stdout, stderr),
            ReloadCommand.Create(stdout, stderr),
            QueryCommand.Create(stdout, stderr),
            CheckCommand.Create(stdout, stderr),
            TsigKeygenCommand.Create(stdout, stderr),
            DnssecCommand.Create(stdout, stderr),
        };
        var parsed = root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });   // `query @server`: no @response files
        var configuration = new InvocationConfiguration { Output = stdout, Error = stderr };
        if (parsed.Errors.Count > 0 && !RequestsHelp(args))
        {
            foreach (var error in parsed.Errors) stderr.WriteLine($"portcullis: {error.Message}");
            stderr.WriteLine("Run 'portcullis --help' (or 'portcullis zone check --help') for usage.");
            stdout.Flush();
            return UsageError;
        }
        int code = parsed.Invoke(configuration);
        stdout.Flush();
        return code;
    }

    private static bool RequestsHelp(string[] args) =>
        args.Any(a => a is "-h" or "--help" or "-?" or "/?" or "/h");
}
