using System.Buffers.Binary;
using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Portcullis.Client;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.Tsig;

namespace Portcullis.Cli;

/// <summary>
/// `portcullis query [@server] name [type] [class] [options]`: a dig-like client (docs/query.md).
/// Exit codes as dig's: 0 a reply came back (whatever its RCODE), 9 no reply, 1 a malformed reply,
/// 2 a usage error.
/// </summary>
public static class QueryCommand
{
    public const int NoReply = 9;

    /// <summary>Everything the command line asked for, after checking.</summary>
    public sealed record Request(
        string? Server, int Port, AddressFamily? Family, DnsName Name, RecordType Type, RecordClass Class, uint? IxfrSerial,
        bool Tcp, bool IgnoreTc, int BufSize, bool NoEdns, bool Dnssec, byte[]? Cookie, bool Nsid, ClientSubnetOption? Subnet,
        bool Rd, TimeSpan Timeout, int Retries, bool Short, bool Json)
    {
        /// <summary>The TSIG key to sign with, or null.</summary>
        public TsigKey? Key { get; init; }
    }

    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var words = new Argument<string[]>("ARGS") { Description = "[@server] name [type] [class], in dig's order; type may be IXFR=SERIAL.", Arity = ArgumentArity.ZeroOrMore };
        var port = new Option<int>("--port", "-p") { Description = "Server port.", DefaultValueFactory = _ => 53 };
        var ipv4 = new Option<bool>("-4") { Description = "Use IPv4 only." };
        var ipv6 = new Option<bool>("-6") { Description = "Use IPv6 only." };
        var tcp = new Option<bool>("--tcp") { Description = "Query over TCP (AXFR and IXFR always are)." };
        var ignoreTc = new Option<bool>("--ignore-tc") { Description = "Show a truncated UDP reply instead of retrying over TCP (dig +ignore)." };
        var bufsize = new Option<int>("--bufsize") { Description = "EDNS UDP payload size to advertise.", DefaultValueFactory = _ => Edns.DefaultUdpPayloadSize };
        var noEdns = new Option<bool>("--no-edns") { Description = "Send no OPT record." };
        var dnssec = new Option<bool>("--dnssec") { Description = "Set the DO bit (RFC 3225)." };
        var cookie = new Option<string?>("--cookie") { Description = "Send a DNS cookie (RFC 7873): random, or the given hex (client cookie, optionally followed by a server cookie).", Arity = ArgumentArity.ZeroOrOne };
        var nsid = new Option<bool>("--nsid") { Description = "Ask for the server's NSID (RFC 5001)." };
        var subnet = new Option<string?>("--subnet") { Description = "EDNS Client Subnet ADDR/LEN (RFC 7871)." };
        var rd = new Option<bool>("--rd") { Description = "Set RD (the default)." };
        var noRd = new Option<bool>("--no-rd") { Description = "Clear RD." };
        var timeout = new Option<double>("--timeout") { Description = "Seconds to wait for each reply.", DefaultValueFactory = _ => 5 };
        var retries = new Option<int>("--retries") { Description = "UDP retries after the first try.", DefaultValueFactory = _ => 2 };
        var tsig = new Option<string?>("--tsig", "-y") { Description = "Sign with a TSIG key (RFC 8945): name:algorithm:secret, or dig's algorithm:name:secret; the replies must be signed by it." };
        var shortOut = new Option<bool>("--short") { Description = "Print only the answer RDATA, one per line." };
        var json = new Option<bool>("--json") { Description = "Print one JSON object (docs/query.schema.json)." };
        var command = new Command("query", "Send a DNS query and print the reply, like dig.")
        {
            words, port, ipv4, ipv6, tcp, ignoreTc, bufsize, noEdns, dnssec, cookie, nsid, subnet, rd, noRd, timeout, retries, tsig, shortOut, json,
        };
        command.SetAction(result =>
        {
            TsigKey? key = null;
            if (result.GetValue(tsig) is { } spec && !TsigKey.TryParseSpec(spec, out key, out string? keyError))
            {
                stderr.WriteLine($"portcullis: --tsig {keyError}");
                return CommandLine.UsageError;
            }
            string? error = null;
            var request = Build(result.GetValue(words) ?? [], result.GetValue(port), result.GetValue(ipv4), result.GetValue(ipv6),
                result.GetValue(tcp), result.GetValue(ignoreTc), result.GetValue(bufsize), result.GetValue(noEdns), result.GetValue(dnssec),
                result.GetResult(cookie) is not null, result.GetValue(cookie), result.GetValue(nsid), result.GetValue(subnet),
                result.GetValue(rd), result.GetValue(noRd), result.GetValue(timeout), result.GetValue(retries),
                result.GetValue(shortOut), result.GetValue(json), ref error);
            if (request is null)
            {
                stderr.WriteLine($"portcullis: {error}");
                return CommandLine.UsageError;
            }
            request = request with { Key = key };
            try
            {
                return Run(request, string.Join(' ', result.GetValue(words) ?? []), stdout, stderr);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // The last guard of "never a stack trace": a reply that passed parsing but that some
                // later step could not handle is still one line on stderr (exit 1, as malformed).
                stderr.WriteLine($"portcullis: cannot handle the reply: {e.Message.ReplaceLineEndings(" ")}");
                return CommandLine.Problems;
            }
        });
        return command;
    }

    private static Request? Build(string[] words, int port, bool v4, bool v6, bool tcp, bool ignoreTc, int bufsize, bool noEdns,
        bool dnssec, bool cookieGiven, string? cookieHex, bool nsid, string? subnet, bool rd, bool noRd, double timeout, int retries,
        bool shortOut, bool json, ref string? error)
    {
        string? server = null, nameText = null;
        RecordType? type = null;
        RecordClass? @class = null;
        uint? ixfrSerial = null;
        foreach (var word in words)
        {
            if (word.Length > 1 && word[0] == '-') { error = $"unknown option '{word}'"; return null; }
            if (word.StartsWith('@'))
            {
                if (server is not null || word.Length == 1) { error = $"'{word}': one @server only"; return null; }
                server = word[1..];
            }
            else if (type is null && word.StartsWith("IXFR=", StringComparison.OrdinalIgnoreCase))
            {
                if (!uint.TryParse(word.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture, out uint serial))
                { error = $"'{word}': IXFR=SERIAL needs a serial number"; return null; }
                (type, ixfrSerial) = (RecordType.IXFR, serial);
            }
            // As dig: a word that reads as a type (then a class) is one, unless that slot is taken.
            else if (type is null && RecordTypes.TryParse(word, out var t)) type = t;
            else if (@class is null && RecordClasses.TryParse(word, out var c)) @class = c;
            else if (nameText is null) nameText = word;
            else { error = $"'{word}': more than one name"; return null; }
        }
        if (type == RecordType.IXFR && ixfrSerial is null) { error = "IXFR needs the serial the client has: IXFR=SERIAL"; return null; }
        if (v4 && v6) { error = "-4 and -6 exclude each other"; return null; }
        if (port is < 1 or > 65535) { error = $"--port {port}: not a port"; return null; }
        if (bufsize is < 0 or > 65535) { error = $"--bufsize {bufsize}: 0..65535"; return null; }
        if (!(timeout > 0 && timeout <= 3600)) { error = $"--timeout {timeout}: seconds, above 0 and at most 3600"; return null; }
        if (retries is < 0 or > 100) { error = $"--retries {retries}: 0..100"; return null; }
        if (rd && noRd) { error = "--rd and --no-rd exclude each other"; return null; }
        if (shortOut && json) { error = "--short and --json exclude each other"; return null; }
        if (noEdns && (dnssec || cookieGiven || nsid || subnet is not null))
        { error = "--dnssec, --cookie, --nsid and --subnet need EDNS (drop --no-edns)"; return null; }

        DnsName name;
        if (nameText is null) { name = DnsName.Root; type ??= RecordType.NS; }   // dig with no name: ". NS"
        else if (!DnsName.TryParse(nameText.EndsWith('.') ? nameText : nameText + ".", null, out var parsed, out var nameError))
        { error = $"'{nameText}': {nameError}"; return null; }
        else name = parsed!;

        byte[]? cookie = null;
        if (cookieGiven)
        {
            if (string.IsNullOrEmpty(cookieHex)) cookie = RandomNumberGenerator.GetBytes(8);
            else
            {
                // RFC 7873 §4: client cookie 8 octets, server cookie 8..32 octets.
                try { cookie = Convert.FromHexString(cookieHex); } catch (FormatException) { cookie = null; }
                if (cookie is null || !(cookie.Length == 8 || cookie.Length is >= 16 and <= 40))
                { error = $"--cookie {cookieHex}: 16 hex digits (client cookie), optionally followed by 16 to 64 (server cookie)"; return null; }
            }
        }

        ClientSubnetOption? ecs = null;
        if (subnet is not null)
        {
            int slash = subnet.IndexOf('/');
            if (!IPAddress.TryParse(slash < 0 ? subnet : subnet[..slash], out var address))
            { error = $"--subnet {subnet}: ADDR/LEN"; return null; }
            int max = address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
            int length = max;
            if (slash >= 0 && !(int.TryParse(subnet.AsSpan(slash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out length) && length <= max))
            { error = $"--subnet {subnet}: prefix length 0..{max}"; return null; }
            ecs = new ClientSubnetOption(address, length);
        }

        return new Request(server, port, v4 ? AddressFamily.InterNetwork : v6 ? AddressFamily.InterNetworkV6 : null,
            name, type ?? RecordType.A, @class ?? RecordClass.IN, ixfrSerial, tcp, ignoreTc, bufsize, noEdns, dnssec, cookie, nsid, ecs,
            !noRd, TimeSpan.FromSeconds(timeout), retries, shortOut, json);
    }

    /// <summary>The query message for <paramref name="request"/>, with a random ID.</summary>
    public static DnsMessage BuildQuery(Request request)
    {
        ushort id = BinaryPrimitives.ReadUInt16BigEndian(RandomNumberGenerator.GetBytes(2));
        var query = DnsMessage.CreateQuery(request.Name, request.Type, request.Class, id, request.Rd);
        if (request.IxfrSerial is { } serial)
        {
            // RFC 1995 §3: the authority section carries the client's SOA; only the serial matters.
            var rdata = new byte[22];   // root MNAME, root RNAME, SERIAL REFRESH RETRY EXPIRE MINIMUM
            BinaryPrimitives.WriteUInt32BigEndian(rdata.AsSpan(2), serial);
            query.Authority.Add(new ResourceRecord(request.Name, RecordType.SOA, request.Class, 0, rdata));
        }
        if (!request.NoEdns)
        {
            var edns = new Edns { UdpPayloadSize = (ushort)request.BufSize, Flags = request.Dnssec ? Edns.DnssecOkFlag : (ushort)0 };
            if (request.Nsid) edns.Options.Add(new NsidOption());
            if (request.Cookie is { } c) edns.Options.Add(new CookieOption(c[..8], c.Length > 8 ? c[8..] : null));
            if (request.Subnet is { } s) edns.Options.Add(s);
            query.Edns = edns;
        }
        return query;
    }

    public static int Run(Request request, string queryLine, TextWriter stdout, TextWriter stderr)
    {
        var server = ResolveServer(request, out string? error, out bool usage);
        if (server is null)
        {
            stderr.WriteLine($"portcullis: {error}");
            return usage ? CommandLine.UsageError : NoReply;
        }
        var query = BuildQuery(request);
        byte[] wire = query.ToWire();
        var question = query.Questions[0];
        byte[] requestMac = [];
        if (request.Key is { } key)
        {
            // RFC 8945 §5.1: the TSIG record goes last, after the OPT record.
            var signed = new byte[wire.Length + Tsig.MaxRecordSize(key)];
            wire.CopyTo(signed, 0);
            var mac = new byte[TsigAlgorithms.MaxMacSize];
            int length = Tsig.Sign(signed, wire.Length, key, default, hasPrior: false, DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
                Tsig.DefaultFudge, TsigError.NoError, default, timersOnly: false, mac, out int macLength);
            wire = signed[..length];
            requestMac = mac[..macLength];
        }
        var when = DateTimeOffset.UtcNow;
        bool transfer = request.Type is RecordType.AXFR or RecordType.IXFR;
        ExchangeResult result;
        if (request.Tcp || transfer)
        {
            result = DnsExchange.Tcp(server, wire, question, request.Timeout, request.IxfrSerial);
        }
        else
        {
            result = DnsExchange.Udp(server, wire, question, request.Timeout, request.Retries);
            if (result.Status == ExchangeStatus.Answered && result.Replies[0].Header.Truncated && !request.IgnoreTc)
            {
                // RFC 7766 §5 / RFC 1035 §4.2.1: a truncated reply is asked again over TCP.
                var udpTime = result.Elapsed;
                if (!request.Short && !request.Json) stdout.WriteLine(";; Truncated, retrying in TCP mode.");
                result = DnsExchange.Tcp(server, wire, question, request.Timeout);
                result.Elapsed += udpTime;
            }
        }
        if (result.Replies.Count == 0)
        {
            stderr.WriteLine($"portcullis: {result.Error}");
            return result.Status == ExchangeStatus.Malformed ? CommandLine.Problems : NoReply;
        }
        string? tsigProblem = request.Key is { } k ? CheckTsig(k, requestMac, result) : null;
        var context = new QueryContext(server, result.OverTcp, result.Elapsed, when, result.Size);
        if (request.Json)
        {
            using var buffer = new MemoryStream();
            QueryOutput.WriteJson(buffer, result.Replies, context);
            stdout.Write(Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length));
        }
        else if (request.Short) QueryOutput.WriteShort(stdout, result.Replies);
        else QueryOutput.WriteText(stdout, result.Replies, context, queryLine);
        if (result.Status != ExchangeStatus.Answered)
        {
            // A transfer that broke off: what came is printed, then the error.
            stderr.WriteLine($"portcullis: {result.Error}");
            return result.Status == ExchangeStatus.Malformed ? CommandLine.Problems : NoReply;
        }
        if (tsigProblem is not null)
        {
            // dig prints the reply and "Couldn't verify signature"; a script must see it too: exit 1.
            stderr.WriteLine($"portcullis: TSIG: {tsigProblem}");
            return CommandLine.Problems;
        }
        return CommandLine.Success;
    }

    /// <summary>
    /// Checks the replies to a signed query (RFC 8945 §5.3): each must verify with our key over our
    /// request's MAC (a transfer may leave up to 99 messages in a row unsigned; the last must be
    /// signed). Null when all is well, else what is wrong, in one line.
    /// </summary>
    private static string? CheckTsig(TsigKey key, byte[] requestMac, ExchangeResult result)
    {
        var verifier = new TsigResponseVerifier(key, requestMac, DateTimeOffset.UtcNow.ToUnixTimeSeconds());
        for (int i = 0; i < result.Wire.Count; i++)
        {
            if (verifier.Describe(verifier.Check(result.Wire[i])) is { } problem)
                return result.Wire.Count > 1 ? $"message {i + 1}: {problem}" : problem;
        }
        return verifier.EndedSigned ? null : "the last message of the reply is not signed";
    }

    /// <summary>@server (an address or a host name), else the first resolv.conf nameserver, else 127.0.0.1.</summary>
    /// <summary>A literal address of the other family than -4/-6 asked for is a usage error (as dig's "address family not supported").</summary>
    private static IPEndPoint? ResolveServer(Request request, out string? error, out bool usage)
    {
        error = null;
        usage = false;
        string text = request.Server ?? FirstNameserver() ?? "127.0.0.1";
        if (text.StartsWith('[') && text.EndsWith(']')) text = text[1..^1];
        if (IPAddress.TryParse(text, out var address))
        {
            if (request.Family is { } f && address.AddressFamily != f)
            {
                error = $"{text}: not an {(f == AddressFamily.InterNetwork ? "IPv4" : "IPv6")} address ({(f == AddressFamily.InterNetwork ? "-4" : "-6")} given)";
                usage = true;
                return null;
            }
            return new IPEndPoint(address, request.Port);
        }
        try
        {
            foreach (var candidate in Dns.GetHostAddresses(text))
                if (request.Family is null ? candidate.AddressFamily is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6 : candidate.AddressFamily == request.Family)
                    return new IPEndPoint(candidate, request.Port);
            error = $"{text}: no {(request.Family == AddressFamily.InterNetworkV6 ? "IPv6 " : request.Family == AddressFamily.InterNetwork ? "IPv4 " : "")}address";
        }
        catch (SocketException e)
        {
            error = $"{text}: {e.Message}";
        }
        return null;
    }

    private static string? FirstNameserver()
    {
        try
        {
            foreach (var line in File.ReadLines("/etc/resolv.conf"))
            {
                var parts = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
                if (parts.Length >= 2 && parts[0] == "nameserver") return parts[1];
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // No resolv.conf: 127.0.0.1, as dig falls back.
        }
        return null;
    }
}
