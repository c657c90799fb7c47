using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Records;

namespace Portcullis.Client;

/// <summary>What the printers need besides the replies.</summary>
public sealed record QueryContext(IPEndPoint Server, bool OverTcp, TimeSpan QueryTime, DateTimeOffset When, long Size);

/// <summary>
/// Presentation of replies: dig's layout (so operators and their scripts feel at home), `--short`
/// (answer RDATA only) and JSON written with <see cref="Utf8JsonWriter"/> (no reflection, so the
/// Native AOT build keeps working). The schema is docs/query.schema.json.
/// </summary>
public static class QueryOutput
{
    public static string RcodeText(Rcode rcode) => (ushort)rcode switch
    {
        0 => "NOERROR", 1 => "FORMERR", 2 => "SERVFAIL", 3 => "NXDOMAIN", 4 => "NOTIMP", 5 => "REFUSED",
        6 => "YXDOMAIN", 7 => "YXRRSET", 8 => "NXRRSET", 9 => "NOTAUTH", 10 => "NOTZONE", 11 => "DSOTYPENI",
        16 => "BADVERS", 23 => "BADCOOKIE",
        var n => "RESERVED" + n.ToString(CultureInfo.InvariantCulture),
    };

    public static string OpcodeText(Opcode opcode) => opcode switch
    {
        Opcode.Query => "QUERY", Opcode.IQuery => "IQUERY", Opcode.Status => "STATUS", Opcode.Notify => "NOTIFY",
        Opcode.Update => "UPDATE", Opcode.DSO => "DSO",
        _ => "RESERVED" + ((int)opcode).ToString(CultureInfo.InvariantCulture),
    };

    /// <summary>The header flags in dig's order, as (name, set) pairs.</summary>
    private static (string Name, bool Set)[] Flags(DnsHeader h) =>
    [
        ("qr", h.IsResponse), ("aa", h.AuthoritativeAnswer), ("tc", h.Truncated), ("rd", h.RecursionDesired),
        ("ra", h.RecursionAvailable), ("z", h.Z), ("ad", h.AuthenticData), ("cd", h.CheckingDisabled),
    ];

    private static string Proto(bool tcp) => tcp ? "TCP" : "UDP";

    // ---------------------------------------------------------------- dig-like text

    public static void WriteText(TextWriter output, IReadOnlyList<DnsMessage> replies, QueryContext context, string queryLine)
    {
        var sb = new StringBuilder();
        sb.Append("; <<>> portcullis query <<>> ").Append(queryLine).Append('\n');
        var first = replies[0];
        bool transfer = replies.Count > 1 || first.Questions.Count == 1 && first.Questions[0].Type is RecordType.AXFR or RecordType.IXFR;
        if (transfer)
        {
            // As dig prints a transfer: the records only, then totals; a refusal says so, with its
            // Extended DNS Error when the server gave one.
            foreach (var m in replies)
                foreach (var r in m.Answers) AppendRecord(sb, r);
            var refusal = replies.FirstOrDefault(m => m.Rcode != Rcode.NoError);
            if (refusal is not null)
            {
                sb.Append("; Transfer failed: ").Append(RcodeText(refusal.Rcode));
                foreach (var option in refusal.Edns?.Options ?? []) if (option is ExtendedDnsErrorOption) sb.Append(" (").Append(OptionText(option)).Append(')');
                sb.Append('\n');
            }
        }
        else
        {
            AppendMessage(sb, first);
        }
        sb.Append(";; Query time: ").Append((long)context.QueryTime.TotalMilliseconds).Append(" msec\n");
        sb.Append(";; SERVER: ").Append(context.Server.Address).Append('#').Append(context.Server.Port)
          .Append('(').Append(Proto(context.OverTcp)).Append(")\n");
        sb.Append(";; WHEN: ").Append(context.When.ToString("ddd MMM dd HH:mm:ss 'UTC' yyyy", CultureInfo.InvariantCulture)).Append('\n');
        if (transfer)
        {
            int records = 0;
            foreach (var m in replies) records += m.Answers.Count;
            sb.Append(";; XFR size: ").Append(records).Append(" records (messages ").Append(replies.Count)
              .Append(", bytes ").Append(context.Size).Append(")\n");
        }
        else
        {
            sb.Append(";; MSG SIZE  rcvd: ").Append(context.Size).Append('\n');
        }
        sb.Append('\n');
        output.Write(sb.ToString());
    }

    private static void AppendMessage(StringBuilder sb, DnsMessage m)
    {
        var h = m.Header;
        sb.Append(";; Got answer:\n");
        sb.Append(";; ->>HEADER<<- opcode: ").Append(OpcodeText(h.Opcode)).Append(", status: ").Append(RcodeText(m.Rcode))
          .Append(", id: ").Append(h.Id).Append('\n');
        sb.Append(";; flags:");
        foreach (var (name, set) in Flags(h)) if (set) sb.Append(' ').Append(name);
        sb.Append("; QUERY: ").Append(h.QuestionCount).Append(", ANSWER: ").Append(h.AnswerCount)
          .Append(", AUTHORITY: ").Append(h.AuthorityCount).Append(", ADDITIONAL: ").Append(h.AdditionalCount).Append("\n\n");
        if (m.Edns is { } edns)
        {
            sb.Append(";; OPT PSEUDOSECTION:\n; EDNS: version: ").Append(edns.Version).Append(", flags:");
            if (edns.DnssecOk) sb.Append(" do");
            int mbz = edns.Flags & ~Edns.DnssecOkFlag;
            if (mbz != 0) sb.Append("; MBZ: 0x").Append(mbz.ToString("x4", CultureInfo.InvariantCulture));
            sb.Append("; udp: ").Append(edns.UdpPayloadSize).Append('\n');
            foreach (var option in edns.Options) sb.Append("; ").Append(OptionText(option)).Append('\n');
        }
        sb.Append(";; QUESTION SECTION:\n");
        foreach (var q in m.Questions)
            sb.Append(';').Append(q.Name).Append("\t\t").Append(RecordClasses.ToText(q.Class)).Append('\t').Append(RecordTypes.ToText(q.Type)).Append('\n');
        sb.Append('\n');
        AppendSection(sb, "ANSWER", m.Answers);
        AppendSection(sb, "AUTHORITY", m.Authority);
        // dig prints the TSIG record (RFC 8945) apart, as a pseudosection, after the additional section.
        var tsig = m.Additional.Count > 0 && m.Additional[^1].Type == RecordType.TSIG ? m.Additional[^1] : null;
        AppendSection(sb, "ADDITIONAL", tsig is null ? m.Additional : m.Additional[..^1]);
        if (tsig is not null)
        {
            sb.Append(";; TSIG PSEUDOSECTION:\n");
            AppendRecord(sb, tsig);
            sb.Append('\n');
        }
    }

    private static void AppendSection(StringBuilder sb, string name, List<ResourceRecord> records)
    {
        if (records.Count == 0) return;
        sb.Append(";; ").Append(name).Append(" SECTION:\n");
        foreach (var r in records) AppendRecord(sb, r);
        sb.Append('\n');
    }

    private static void AppendRecord(StringBuilder sb, ResourceRecord r) =>
        sb.Append(r.Owner).Append('\t').Append(r.Ttl).Append('\t').Append(RecordClasses.ToText(r.Class)).Append('\t')
          .Append(RecordTypes.ToText(r.Type)).Append('\t').Append(RdataText.Format(r.Type, r.Data)).Append('\n');

    /// <summary>One option, decoded as dig decodes it.</summary>
    public static string OptionText(EdnsOption option) => option switch
    {
        CookieOption c => $"COOKIE: {Hex(c.ClientCookie)}{Hex(c.ServerCookie)}",
        // dig 9.18: the octets in hex, one space between, then the printable rendering.
        NsidOption n => $"NSID: {string.Join(' ', n.Data.ToArray().Select(b => b.ToString("x2", System.Globalization.CultureInfo.InvariantCulture)))} (\"{Printable(n.Data)}\")",
        ClientSubnetOption s => $"CLIENT-SUBNET: {s.Address}/{s.SourcePrefixLength}/{s.ScopePrefixLength}",
        ExtendedDnsErrorOption e => $"EDE: {(ushort)e.InfoCode} ({ExtendedDnsErrors.ToText(e.InfoCode)}){(e.ExtraText.Length > 0 ? $": ({e.ExtraText})" : "")}",
        _ => option.ToString(),
    };

    private static string Hex(ReadOnlySpan<byte> data) => Convert.ToHexStringLower(data);

    /// <summary>NSID is opaque octets; show printable ASCII and dots for the rest, as dig does.</summary>
    private static string Printable(ReadOnlySpan<byte> data)
    {
        var sb = new StringBuilder(data.Length);
        foreach (byte b in data) sb.Append(b is >= 0x20 and < 0x7F and not (byte)'"' and not (byte)'\\' ? (char)b : '.');
        return sb.ToString();
    }

    // ---------------------------------------------------------------- --short

    public static void WriteShort(TextWriter output, IReadOnlyList<DnsMessage> replies)
    {
        var sb = new StringBuilder();
        foreach (var m in replies)
            foreach (var r in m.Answers) sb.Append(RdataText.Format(r.Type, r.Data)).Append('\n');
        output.Write(sb.ToString());
    }

    // ---------------------------------------------------------------- JSON

    public static void WriteJson(Stream output, IReadOnlyList<DnsMessage> replies, QueryContext context)
    {
        var first = replies[0];
        var h = first.Header;
        using (var json = new Utf8JsonWriter(output, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            json.WriteString("server", context.Server.Address.ToString());
            json.WriteNumber("port", context.Server.Port);
            json.WriteString("protocol", context.OverTcp ? "tcp" : "udp");
            json.WriteNumber("query_time_ms", (long)context.QueryTime.TotalMilliseconds);
            json.WriteString("when", context.When.ToString("yyyy-MM-dd'T'HH:mm:ss.fffK", CultureInfo.InvariantCulture));
            json.WriteNumber("size", context.Size);
            json.WriteNumber("messages", replies.Count);

            json.WriteStartObject("header");
            json.WriteNumber("id", h.Id);
            json.WriteString("opcode", OpcodeText(h.Opcode));
            json.WriteString("rcode", RcodeText(first.Rcode));
            json.WriteNumber("rcode_value", (ushort)first.Rcode);
            json.WriteStartObject("flags");
            foreach (var (name, set) in Flags(h)) json.WriteBoolean(name, set);
            json.WriteEndObject();
            json.WriteNumber("qdcount", h.QuestionCount);
            json.WriteNumber("ancount", h.AnswerCount);
            json.WriteNumber("nscount", h.AuthorityCount);
            json.WriteNumber("arcount", h.AdditionalCount);
            json.WriteEndObject();

            if (first.Edns is { } edns)
            {
                json.WriteStartObject("edns");
                json.WriteNumber("version", edns.Version);
                json.WriteNumber("udp", edns.UdpPayloadSize);
                json.WriteBoolean("do", edns.DnssecOk);
                json.WriteNumber("flags", edns.Flags);
                json.WriteStartArray("options");
                foreach (var option in edns.Options) WriteOption(json, option);
                json.WriteEndArray();
                json.WriteEndObject();
            }
            else
            {
                json.WriteNull("edns");
            }

            json.WriteStartArray("question");
            foreach (var q in first.Questions)
            {
                json.WriteStartObject();
                json.WriteString("name", q.Name.ToString());
                json.WriteString("class", RecordClasses.ToText(q.Class));
                json.WriteString("type", RecordTypes.ToText(q.Type));
                json.WriteEndObject();
            }
            json.WriteEndArray();

            // A transfer's records are the answer sections of all its messages, in order.
            json.WriteStartArray("answer");
            foreach (var m in replies) foreach (var r in m.Answers) WriteRecord(json, r);
            json.WriteEndArray();
            json.WriteStartArray("authority");
            foreach (var m in replies) foreach (var r in m.Authority) WriteRecord(json, r);
            json.WriteEndArray();
            json.WriteStartArray("additional");
            foreach (var m in replies) foreach (var r in m.Additional) WriteRecord(json, r);
            json.WriteEndArray();
            json.WriteEndObject();
        }
        output.WriteByte((byte)'\n');
    }

    private static void WriteRecord(Utf8JsonWriter json, ResourceRecord r)
    {
        json.WriteStartObject();
        json.WriteString("name", r.Owner.ToString());
        json.WriteNumber("ttl", r.Ttl);
        json.WriteString("class", RecordClasses.ToText(r.Class));
        json.WriteString("type", RecordTypes.ToText(r.Type));
        json.WriteString("data", RdataText.Format(r.Type, r.Data));
        json.WriteEndObject();
    }

    private static void WriteOption(Utf8JsonWriter json, EdnsOption option)
    {
        json.WriteStartObject();
        json.WriteNumber("code", (ushort)option.Code);
        json.WriteString("name", option.Code switch
        {
            EdnsOptionCode.Cookie => "COOKIE", EdnsOptionCode.Nsid => "NSID", EdnsOptionCode.ClientSubnet => "ECS",
            EdnsOptionCode.ExtendedDnsError => "EDE", EdnsOptionCode.TcpKeepalive => "TCP-KEEPALIVE",
            EdnsOptionCode.Padding => "PADDING", EdnsOptionCode.Expire => "EXPIRE",
            var c => "OPT" + ((ushort)c).ToString(CultureInfo.InvariantCulture),
        });
        json.WriteString("data", Hex(option.GetData()));
        switch (option)
        {
            case CookieOption c:
                json.WriteString("client", Hex(c.ClientCookie));
                if (c.ServerCookie.Length > 0) json.WriteString("server", Hex(c.ServerCookie)); else json.WriteNull("server");
                break;
            case NsidOption n:
                json.WriteString("text", Printable(n.Data));
                break;
            case ClientSubnetOption s:
                json.WriteNumber("family", s.Family);
                json.WriteString("address", s.Address.ToString());
                json.WriteNumber("source_prefix", s.SourcePrefixLength);
                json.WriteNumber("scope_prefix", s.ScopePrefixLength);
                break;
            case ExtendedDnsErrorOption e:
                json.WriteNumber("info_code", (ushort)e.InfoCode);
                json.WriteString("purpose", ExtendedDnsErrors.ToText(e.InfoCode));
                json.WriteString("extra_text", e.ExtraText);
                break;
            case TcpKeepaliveOption k:
                if (k.Timeout is { } t) json.WriteNumber("timeout", t); else json.WriteNull("timeout");
                break;
        }
        json.WriteEndObject();
    }
}
