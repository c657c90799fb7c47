using System.CommandLine;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.ZoneText;

namespace Portcullis.Cli;

/// <summary>
/// `portcullis zone check FILE --origin ORIGIN [--print]`: the operator's check of a zone file, like
/// named-checkzone or kzonecheck. Prints "zone ORIGIN/IN: loaded serial N (R records, M names)" and
/// exits 0, or prints every error as "file:line:column: problem" on stderr and exits 1. With
/// --print the zone goes to stdout in canonical presentation (one record per line, absolute names,
/// canonical order, as named-compilezone -s full) and the summary line to stderr.
/// </summary>
public static class ZoneCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var file = new Argument<string>("FILE") { Description = "The zone file (master file, RFC 1035 §5) to check." };
        var origin = new Option<string>("--origin", "-o")
        {
            Description = "The zone's name (its origin), e.g. example.com.",
            Required = true,
        };
        var print = new Option<bool>("--print", "-p")
        {
            Description = "Write the zone to stdout in canonical presentation format (the summary line then goes to stderr).",
        };
        var check = new Command("check", "Check a zone file as a server would load it.") { file, origin, print };
        check.SetAction(result => Check(result.GetValue(file)!, result.GetValue(origin)!, result.GetValue(print), stdout, stderr));
        return new Command("zone", "Zone file tools.") { check };
    }

    public static int Check(string path, string originText, bool print, TextWriter stdout, TextWriter stderr)
    {
        if (!DnsName.TryParse(originText, DnsName.Root, out var origin, out string? error))
        {
            stderr.WriteLine($"portcullis: bad --origin '{originText}': {error}");
            return CommandLine.UsageError;
        }
        var result = ZoneChecker.Check(path, origin!);
        foreach (var warning in result.Warnings) stderr.WriteLine(warning.ToString());
        if (!result.Ok)
        {
            foreach (var e in result.Errors)
                stderr.WriteLine(e.Line > 0 ? e.Message : $"{e.File ?? path}: {e.Problem}");
            stderr.WriteLine($"zone {result.ZoneLabel}: not loaded due to {result.Errors.Count} error{(result.Errors.Count == 1 ? "" : "s")}");
            return CommandLine.Problems;
        }
        string summary = $"zone {result.ZoneLabel}: loaded serial {result.Serial} ({result.Records.Count} records, {result.NameCount} names)";
        if (print)
        {
            ZoneWriter.Write(stdout, result.Records);
            stdout.Flush();
            stderr.WriteLine(summary);
        }
        else
        {
            stdout.WriteLine(summary);
        }
        return CommandLine.Success;
    }
}
