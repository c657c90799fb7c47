using System.CommandLine;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Portcullis.Check;
using Portcullis.Protocol.Names;

namespace Portcullis.Cli;

/// <summary>
/// `portcullis check TARGET [-p PORT] [--zone Z] [--json] [--burst N] [--no-burst]`: audits one
/// server (docs/check.md). Exit codes: 0 nothing above info, 1 a warning or critical finding,
/// 2 a usage error, 9 the target did not answer over UDP or TCP (as `query`).
/// </summary>
public static class CheckCommand
{
    public const int DefaultBurst = 200;
    /// <summary>The most queries one run may send in its burst: the load stays small and known.</summary>
    public const int MaxBurst = 1000;

    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var target = new Argument<string>("TARGET") { Description = "The server: one IP address (or a host name with exactly one address)." };
        var port = new Option<int>("--port", "-p") { Description = "Server port.", DefaultValueFactory = _ => 53 };
        var zone = new Option<string?>("--zone") { Description = "The zone to audit (default: found from a SOA answer for \".\")." };
        var json = new Option<bool>("--json") { Description = "Print the findings as one JSON object." };
        var burst = new Option<int>("--burst") { Description = $"Queries in the rate-limiting burst (at most {MaxBurst}).", DefaultValueFactory = _ => DefaultBurst };
        var noBurst = new Option<bool>("--no-burst") { Description = "Send no burst (skip the rate-limiting check)." };
        var ds = new Option<string?>("--ds") { Description = "The zone's DS record (text, or a file of DS records) to validate the chain from." };
        var trustAnchor = new Option<string?>("--trust-anchor") { Description = "A file of DS or DNSKEY records (zone-file format), or one such record, to validate the chain from." };
        var timeout = new Option<double>("--timeout") { Description = "Seconds to wait for each reply.", DefaultValueFactory = _ => 2 };
        var command = new Command("check", "Audit one DNS server: reachability, open recursion, transfers, EDNS, amplification, rate limiting, cookies, disclosure.")
        {
            target, port, zone, json, burst, noBurst, timeout, ds, trustAnchor,
        };
        command.SetAction(result =>
        {
            int p = result.GetValue(port), n = result.GetValue(burst);
            double t = result.GetValue(timeout);
            string? zoneText = result.GetValue(zone);
            if (p is < 1 or > 65535) return Usage(stderr, $"--port {p}: not a port");
            if (n is < 1 or > MaxBurst) return Usage(stderr, $"--burst {n}: 1..{MaxBurst}");
            if (!(t > 0 && t <= 60)) return Usage(stderr, $"--timeout {t}: seconds, above 0 and at most 60");
            DnsName? zoneName = null;
            if (zoneText is not null && !DnsName.TryParse(zoneText.EndsWith('.') ? zoneText : zoneText + ".", null, out zoneName, out var zoneError))
                return Usage(stderr, $"--zone {zoneText}: {zoneError}");
            var anchor = new List<Portcullis.Protocol.Records.ResourceRecord>();
            foreach (var (name, text) in (ReadOnlySpan<(string, string?)>)[("--ds", result.GetValue(ds)), ("--trust-anchor", result.GetValue(trustAnchor))])
            {
                if (text is null) continue;
                var records = DnssecAudit.ParseTrustAnchor(text, out var anchorError);
                if (records is null) return Usage(stderr, $"{name}: {anchorError}");
                anchor.AddRange(records);
            }
            var address = ResolveTarget(result.GetValue(target) ?? "", out string? error, out bool usage);
            if (address is null)
            {
                stderr.WriteLine($"portcullis: {error}");
                return usage ? CommandLine.UsageError : QueryCommand.NoReply;
            }
            var options = new AuditOptions(new IPEndPoint(address, p), zoneName, result.GetValue(noBurst) ? 0 : n, TimeSpan.FromSeconds(t), anchor.Count > 0 ? anchor : null);
            var audit = new ServerAudit(options, stderr);
            try
            {
                audit.Run();
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // The last guard of "never a stack trace": the report so far is still printed.
                stderr.WriteLine($"portcullis: the audit stopped: {e.Message.ReplaceLineEndings(" ")}");
            }
            if (result.GetValue(json)) WriteJson(stdout, options, audit);
            else WriteTable(stdout, options, audit);
            if (!audit.Reachable) return QueryCommand.NoReply;
            return audit.Findings.Any(f => f.Severity >= Severity.Warning) ? CommandLine.Problems : CommandLine.Success;
        });
        return command;
    }

    private static int Usage(TextWriter stderr, string message)
    {
        stderr.WriteLine($"portcullis: {message}");
        return CommandLine.UsageError;
    }

    /// <summary>
    /// One address per run: a literal, or a host name with exactly one address. A name with several
    /// is refused (a usage error) so that the burst can never be aimed at more than one server.
    /// </summary>
    private static IPAddress? ResolveTarget(string text, out string? error, out bool usage)
    {
        error = null;
        usage = false;
        if (text.StartsWith('[') && text.EndsWith(']')) text = text[1..^1];
        if (IPAddress.TryParse(text, out var address)) return address;
        try
        {
            var addresses = Dns.GetHostAddresses(text).Where(a => a.AddressFamily is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6).ToArray();
            if (addresses.Length == 1) return addresses[0];
            usage = addresses.Length > 1;
            error = addresses.Length == 0 ? $"{text}: no address"
                : $"{text} has {addresses.Length} addresses ({string.Join(", ", addresses.Select(a => a.ToString()))}): check audits one address per run; give one";
        }
        catch (SocketException e)
        {
            error = $"{text}: {e.Message}";
        }
        return null;
    }

    private static string Label(Severity s) => s switch
    {
        Severity.Ok => "ok", Severity.Info => "info", Severity.Warning => "warning", _ => "critical",
    };

    private static void WriteTable(TextWriter stdout, AuditOptions options, ServerAudit audit)
    {
        stdout.WriteLine($"portcullis check {Client.DnsExchange.Format(options.Target)}{(audit.Zone is { } z ? $" zone {z}" : "")}");
        int checkWidth = Math.Max(5, audit.Findings.Max(f => f.Check.Length));
        stdout.WriteLine($"{"SEVERITY",-9} {"CHECK".PadRight(checkWidth)} FINDING");
        foreach (var f in audit.Findings)
        {
            stdout.WriteLine($"{Label(f.Severity),-9} {f.Check.PadRight(checkWidth)} {f.Text}");
            if (f.Fix.Length > 0 && f.Severity != Severity.Ok) stdout.WriteLine($"{"",-9} {"".PadRight(checkWidth)}   fix: {f.Fix}");
        }
        stdout.WriteLine(Summary(audit));
    }

    private static string Summary(ServerAudit audit) =>
        $"{audit.Findings.Count(f => f.Severity == Severity.Critical)} critical, {audit.Findings.Count(f => f.Severity == Severity.Warning)} warning(s), "
        + $"{audit.Findings.Count(f => f.Severity == Severity.Info)} info, {audit.Findings.Count(f => f.Severity == Severity.Ok)} ok";

    private static void WriteJson(TextWriter stdout, AuditOptions options, ServerAudit audit)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("target", options.Target.Address.ToString());
            w.WriteNumber("port", options.Target.Port);
            if (audit.Zone is { } z) w.WriteString("zone", z.ToString()); else w.WriteNull("zone");
            w.WriteBoolean("reachable", audit.Reachable);
            w.WriteNumber("burst", options.Burst);
            w.WriteStartArray("findings");
            foreach (var f in audit.Findings)
            {
                w.WriteStartObject();
                w.WriteString("severity", Label(f.Severity));
                w.WriteString("check", f.Check);
                w.WriteString("finding", f.Text);
                w.WriteString("fix", f.Fix);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartObject("summary");
            foreach (var s in (ReadOnlySpan<Severity>)[Severity.Critical, Severity.Warning, Severity.Info, Severity.Ok])
                w.WriteNumber(Label(s), audit.Findings.Count(f => f.Severity == s));
            w.WriteEndObject();
            w.WriteEndObject();
        }
        stdout.WriteLine(Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length));
    }
}
