using System.Net;
using System.Text;

namespace Portcullis.Testing;

/// <summary>
/// Unbound as a validating resolver (<c>module-config: "validator iterator"</c>) that needs no
/// Internet: it holds one trust anchor (a DNSKEY or DS in zone-file syntax, <c>trust-anchor:</c>),
/// resolves the stub zones by asking the given authoritative servers on loopback (<c>stub-zone</c>
/// with <c>stub-addr: ADDRESS@PORT</c>; <c>do-not-query-localhost: no</c>, or Unbound never asks
/// 127.0.0.0/8) and refuses every other name. The hardening options keep their defaults (DNSSEC
/// stripping is caught), no name is declared insecure, and <c>val-log-level: 2</c> puts the reason of
/// every validation failure in <see cref="PeerServer.Log"/>. QNAME minimisation is off so the
/// queries the authoritative server sees are the questions themselves.
/// </summary>
public sealed class ValidatingUnbound : PeerServer
{
    /// <param name="trustAnchor">e.g. <c>example.test. DNSKEY 257 3 13 base64</c> or <c>example.test. DS 12345 13 2 hex</c>.</param>
    /// <param name="stubs">Zones and the authoritative server (address and port) that serves each.</param>
    public ValidatingUnbound(string trustAnchor, IReadOnlyList<(string Zone, IPEndPoint Server)> stubs, int? port = null)
        : base("unbound", [], port)
    {
        _trustAnchor = trustAnchor;
        _stubs = stubs;
        string config = Path.Combine(Directory, "unbound.conf");
        File.WriteAllText(config, Configuration());
        Start("unbound", ["-d", "-c", config], ["start of service"]);
    }

    private readonly string _trustAnchor;
    private readonly IReadOnlyList<(string Zone, IPEndPoint Server)> _stubs;

    /// <summary>". SOA" is refused (local-zone "." refuse): any reply means Unbound is up.</summary>
    protected override IEnumerable<string> ReadinessNames => ["."];

    protected override bool IsReady(ReadOnlySpan<byte> response, ushort id) => IsAnyReply(response, id);

    private string Configuration() => UnboundConfig.Finish(UnboundConfig.Server("127.0.0.1", Directory, "127.0.0.0/8 allow", "validator iterator",
        $"port: {Port}", "val-log-level: 2", "qname-minimisation: no", $"trust-anchor: \"{_trustAnchor}\"", "local-zone: \".\" refuse"), _stubs);

    /// <summary>What <c>dig +dnssec</c> (RD set) reported: the RCODE, the header flags and the whole text.</summary>
    public DigResult Dig(string name, string type)
    {
        var r = ExternalProcess.Run("dig", [$"@{EndPoint.Address}", "-p", Port.ToString(), "+dnssec", "+tries=1", "+time=5", name, type]);
        return DigResult.Parse(r.Stdout + r.Stderr);
    }
}

/// <summary>The header of a dig answer: <c>status: NOERROR</c> and <c>flags: qr rd ra ad</c>.</summary>
public sealed record DigResult(string Status, IReadOnlySet<string> Flags, string Text)
{
    public bool AuthenticatedData => Flags.Contains("ad");

    public static DigResult Parse(string text)
    {
        string status = "", flags = "";
        foreach (var line in text.Split('\n'))
        {
            int at = line.IndexOf("status: ", StringComparison.Ordinal);
            if (at >= 0 && status == "") status = line[(at + 8)..].Split(',')[0].Trim();
            at = line.IndexOf(";; flags: ", StringComparison.Ordinal);
            if (at >= 0 && flags == "") flags = line[(at + 10)..].Split(';')[0];
        }
        return new DigResult(status, flags.Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet(), text);
    }
}
