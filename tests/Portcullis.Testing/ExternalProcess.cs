using System.ComponentModel;
using System.Diagnostics;
using System.Text;

namespace Portcullis.Testing;

/// <summary>What a finished external command printed, and how it ended.</summary>
public sealed record ProcessResult(string CommandLine, int ExitCode, string Stdout, string Stderr)
{
    /// <summary>Fails the test with the command, its exit code and stderr unless it exited 0.</summary>
    public ProcessResult EnsureSuccess()
    {
        if (ExitCode != 0)
            throw new InvalidOperationException($"`{CommandLine}` exited {ExitCode}.\nstderr:\n{Stderr}\nstdout:\n{Stdout}");
        return this;
    }
}

/// <summary>
/// Runs the Debian tools the interop tests compare against: arguments passed as a list (no shell),
/// stdout and stderr captured, and every wait bounded so that a hung tool fails the test instead of
/// hanging the run.
/// </summary>
public static class ExternalProcess
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(20);

    public const string InstallHint =
        "the interop tests need Debian's bind9-utils, bind9-dnsutils, knot-dnsutils, ldnsutils and knot (see .ci/run)";

    public static ProcessResult Run(string fileName, IEnumerable<string> arguments, string? standardInput = null,
        string? workingDirectory = null, TimeSpan? timeout = null)
    {
        var limit = timeout ?? DefaultTimeout;
        var info = NewStartInfo(fileName, arguments, workingDirectory);
        info.RedirectStandardInput = standardInput is not null;
        string commandLine = Describe(info);
        using var process = Start(info, commandLine);
        // Read both streams concurrently so neither pipe fills up and blocks the tool.
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (standardInput is not null)
        {
            process.StandardInput.Write(standardInput);
            process.StandardInput.Close();
        }
        if (!process.WaitForExit(limit))
        {
            KillQuietly(process);
            throw new TimeoutException($"`{commandLine}` did not finish within {limit.TotalSeconds:0} s and was killed.");
        }
        if (!Task.WaitAll([stdout, stderr], limit))
            throw new TimeoutException($"`{commandLine}` exited but its output was not closed within {limit.TotalSeconds:0} s.");
        return new ProcessResult(commandLine, process.ExitCode, stdout.Result, stderr.Result);
    }

    internal static ProcessStartInfo NewStartInfo(string fileName, IEnumerable<string> arguments, string? workingDirectory)
    {
        var info = new ProcessStartInfo(fileName)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        if (workingDirectory is not null) info.WorkingDirectory = workingDirectory;
        foreach (var a in arguments) info.ArgumentList.Add(a);
        // The tools' messages are compared as text; keep them in the C locale.
        info.Environment["LC_ALL"] = "C";
        return info;
    }

    internal static Process Start(ProcessStartInfo info, string commandLine)
    {
        try
        {
            return Process.Start(info) ?? throw new InvalidOperationException($"`{commandLine}` did not start.");
        }
        catch (Win32Exception e)
        {
            throw new InvalidOperationException($"`{commandLine}` could not be started ({e.Message}): {InstallHint}.", e);
        }
    }

    internal static string Describe(ProcessStartInfo info) =>
        string.Join(' ', new[] { info.FileName }.Concat(info.ArgumentList.Select(a => a.Contains(' ') ? $"'{a}'" : a)));

    internal static void KillQuietly(Process process)
    {
        try
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
            process.WaitForExit(5000);
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }
}

/// <summary>
/// A long-running tool (knotd) whose output is collected as it comes; Dispose kills it and waits,
/// boundedly, for it to go.
/// </summary>
public sealed class BackgroundProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    public BackgroundProcess(string fileName, IEnumerable<string> arguments, string? workingDirectory = null)
    {
        var info = ExternalProcess.NewStartInfo(fileName, arguments, workingDirectory);
        CommandLine = ExternalProcess.Describe(info);
        _process = ExternalProcess.Start(info, CommandLine);
        _process.OutputDataReceived += (_, e) => Append(e.Data);
        _process.ErrorDataReceived += (_, e) => Append(e.Data);
        _process.EnableRaisingEvents = true;
        _process.Exited += (_, _) => { lock (_output) Monitor.PulseAll(_output); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public string CommandLine { get; }

    public bool HasExited => _process.HasExited;

    public int Id => _process.Id;

    /// <summary>Waits, boundedly, for the process to end; the exit code when it did, else null.</summary>
    public int? WaitForExit(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout)) return null;
        // Once exited, this overload also waits for the last output lines to be delivered.
        _process.WaitForExit();
        return _process.ExitCode;
    }

    /// <summary>Everything printed so far on stdout and stderr, interleaved.</summary>
    public string Output
    {
        get { lock (_output) return _output.ToString(); }
    }

    private void Append(string? line)
    {
        if (line is null) return;
        lock (_output)
        {
            _output.AppendLine(line);
            Monitor.PulseAll(_output);
        }
    }

    /// <summary>
    /// Waits until the output contains <paramref name="text"/> (true), the process exits or
    /// <paramref name="timeout"/> passes (false). Woken by each line printed, not by polling.
    /// </summary>
    public bool WaitForOutput(string text, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        lock (_output)
        {
            while (true)
            {
                if (_output.ToString().Contains(text, StringComparison.Ordinal)) return true;
                var left = deadline - DateTime.UtcNow;
                if (_process.HasExited || left <= TimeSpan.Zero) return false;
                Monitor.Wait(_output, left);
            }
        }
    }

    public void Dispose()
    {
        ExternalProcess.KillQuietly(_process);
        _process.Dispose();
    }
}
