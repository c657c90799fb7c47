using System.CommandLine;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Tsig;

namespace Portcullis.Cli;

/// <summary>
/// `portcullis tsig-keygen NAME [-a ALGORITHM] [--format yaml|bind|knot|nsd]`: a new TSIG key with a
/// random secret as long as the algorithm's MAC (as BIND's tsig-keygen and Knot's keymgr -t make
/// them), printed for Portcullis's configuration or for the peer that shares it.
/// </summary>
public static class TsigKeygenCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var name = new Argument<string>("NAME") { Description = "The key's name, a domain name (e.g. transfer.example.com)." };
        var algorithm = new Option<string>("--algorithm", "-a")
        {
            Description = "hmac-sha256 (default), hmac-sha384, hmac-sha512, or hmac-sha1 for old peers.",
            DefaultValueFactory = _ => TsigAlgorithms.Name(TsigAlgorithms.Default),
        };
        var format = new Option<string>("--format")
        {
            Description = "yaml (Portcullis's keys: list, default), bind (named.conf), knot (knot.conf) or nsd (nsd.conf).",
            DefaultValueFactory = _ => "yaml",
        };
        var command = new Command("tsig-keygen", "Make a TSIG key (RFC 8945) for transfers, NOTIFY and updates.") { name, algorithm, format };
        command.SetAction(result =>
        {
            string text = result.GetValue(name) ?? "";
            if (!DnsName.TryParse(text.EndsWith('.') ? text : text + ".", null, out var keyName, out string? error) || keyName!.IsRoot)
                return Usage(stderr, $"'{text}': not a key name{(error is null ? "" : ": " + error)}");
            if (!TsigAlgorithms.TryParse(result.GetValue(algorithm), out var alg))
                return Usage(stderr, $"--algorithm {result.GetValue(algorithm)}: not one of hmac-sha1, hmac-sha256, hmac-sha384, hmac-sha512");
            var key = TsigKey.Generate(keyName, alg);
            string shortName = key.Name.ToString().TrimEnd('.'), algName = TsigAlgorithms.Name(alg);
            switch (result.GetValue(format))
            {
                case "yaml":
                    stdout.WriteLine("keys:");
                    stdout.WriteLine($"  - name: {shortName}");
                    stdout.WriteLine($"    algorithm: {algName}");
                    stdout.WriteLine($"    secret: {key.SecretBase64}");
                    break;
                case "bind":
                    stdout.WriteLine($"key \"{shortName}\" {{\n\talgorithm {algName};\n\tsecret \"{key.SecretBase64}\";\n}};");
                    break;
                case "knot":
                    stdout.WriteLine($"key:\n  - id: {shortName}\n    algorithm: {algName}\n    secret: {key.SecretBase64}");
                    break;
                case "nsd":
                    stdout.WriteLine($"key:\n\tname: \"{shortName}\"\n\talgorithm: {algName}\n\tsecret: \"{key.SecretBase64}\"");
                    break;
                default:
                    return Usage(stderr, $"--format {result.GetValue(format)}: yaml, bind, knot or nsd");
            }
            return CommandLine.Success;
        });
        return command;
    }

    private static int Usage(TextWriter stderr, string message)
    {
        stderr.WriteLine($"portcullis: {message}");
        return CommandLine.UsageError;
    }
}
