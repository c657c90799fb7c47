using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Portcullis.Protocol.Records;
using Portcullis.Server.Telemetry;

namespace Portcullis.Server.Detection;

/// <summary>One line of the query log (the format of src/Portcullis.Server/Telemetry/QueryLog.cs), parsed.</summary>
public sealed record QueryLogRecord(
    DateTime Time, byte[] Client, int Port, string Proto, byte[] Qname, RecordType QType, RecordClass QClass,
    string Rcode, string Flags, int QuerySize, int ResponseSize, long LatencyMicroseconds, string Policy, string? PolicyName)
{
    /// <summary>Hands the record to an observer as the hub would (for replays).</summary>
    public void ReplayTo(IQueryObserver observer)
    {
        var e = new QueryEvent
        {
            Time = Time,
            Client = Client,
            ClientPort = Port,
            Transport = Proto == "tcp" ? Transport.TransportKind.Tcp : Transport.TransportKind.Udp,
            Qname = Qname,
            QType = QType,
            QClass = QClass,
            QuerySize = QuerySize,
            ResponseSize = ResponseSize,
            Latency = TimeSpan.FromTicks(LatencyMicroseconds * 10),
            Policy = Policy == "detector-blocked" ? QueryPolicy.DetectorBlocked : QueryPolicy.None,
            PolicyName = PolicyName,
        };
        observer.Observe(in e);
    }
}

/// <summary>
/// Reads and writes the query log's JSON lines (one object per line: time, client, port, proto,
/// qname in presentation form, qtype, qclass, rcode, flags, qsize, rsize, latency_us, policy[,
/// policy_name]), so captured traffic replays into the detector exactly as the server saw it.
/// </summary>
public static class QueryLogFormat
{
    /// <summary>Reads a file; a bad line throws <see cref="FormatException"/> naming the file and line.</summary>
    public static IEnumerable<QueryLogRecord> ReadFile(string path)
    {
        int number = 0;
        foreach (var line in File.ReadLines(path))
        {
            number++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            QueryLogRecord record;
            try { record = Parse(line); }
            catch (Exception e) when (e is FormatException or JsonException or KeyNotFoundException or InvalidOperationException)
            {
                throw new FormatException($"{path}:{number}: {e.Message}");
            }
            yield return record;
        }
    }

    public static QueryLogRecord Parse(string line)
    {
        using var doc = JsonDocument.Parse(line);
        var r = doc.RootElement;
        string S(string key) => r.GetProperty(key).GetString() ?? throw new FormatException($"{key} is null");
        int I(string key, int fallback = 0) => r.TryGetProperty(key, out var v) ? v.GetInt32() : fallback;
        var time = DateTime.Parse(S("time"), CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal);
        if (!IPAddress.TryParse(S("client"), out var address)) throw new FormatException($"bad client '{S("client")}'");
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        var qtypeText = S("qtype");
        if (!RecordTypes.TryParse(qtypeText, out var qtype)) throw new FormatException($"bad qtype '{qtypeText}'");
        var qclassText = r.TryGetProperty("qclass", out var qc) ? qc.GetString() ?? "IN" : "IN";
        if (!RecordClasses.TryParse(qclassText, out var qclass)) throw new FormatException($"bad qclass '{qclassText}'");
        return new QueryLogRecord(time, address.GetAddressBytes(), I("port"), r.TryGetProperty("proto", out var p) ? p.GetString() ?? "udp" : "udp",
            NameToWire(S("qname")), qtype, qclass, r.TryGetProperty("rcode", out var rc) ? rc.GetString() ?? "" : "",
            r.TryGetProperty("flags", out var fl) ? fl.GetString() ?? "" : "", I("qsize"), I("rsize"),
            r.TryGetProperty("latency_us", out var l) ? l.GetInt64() : 0,
            r.TryGetProperty("policy", out var po) ? po.GetString() ?? "none" : "none",
            r.TryGetProperty("policy_name", out var pn) ? pn.GetString() : null);
    }

    /// <summary>A presentation-form name (RFC 1035 §5.1: \DDD and \c escapes, final dot optional) in wire form with the root label.</summary>
    public static byte[] NameToWire(string text)
    {
        var wire = new List<byte>(text.Length + 2);
        if (text is "." or "") { wire.Add(0); return [.. wire]; }
        int labelStart = wire.Count;
        wire.Add(0);
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (c == '.')
            {
                int len = wire.Count - labelStart - 1;
                if (len == 0) throw new FormatException($"empty label in '{text}'");
                if (len > 63) throw new FormatException($"label longer than 63 octets in '{text}'");
                wire[labelStart] = (byte)len;
                labelStart = wire.Count;
                wire.Add(0);
                continue;
            }
            if (c == '\\')
            {
                if (i + 3 < text.Length + 0 && char.IsAsciiDigit(text[i + 1]) && char.IsAsciiDigit(text[i + 2]) && char.IsAsciiDigit(text[i + 3]))
                {
                    int v = (text[i + 1] - '0') * 100 + (text[i + 2] - '0') * 10 + (text[i + 3] - '0');
                    if (v > 255) throw new FormatException($"bad escape in '{text}'");
                    wire.Add((byte)v);
                    i += 3;
                    continue;
                }
                if (i + 1 >= text.Length) throw new FormatException($"dangling backslash in '{text}'");
                c = text[++i];
            }
            if (c > 255) throw new FormatException($"non-ASCII character in '{text}'");
            wire.Add((byte)c);
        }
        int last = wire.Count - labelStart - 1;
        if (last > 63) throw new FormatException($"label longer than 63 octets in '{text}'");
        if (last > 0) { wire[labelStart] = (byte)last; wire.Add(0); }
        if (wire.Count > 255) throw new FormatException($"name longer than 255 octets: '{text}'");
        return [.. wire];
    }

    /// <summary>Presentation form of a wire name, case kept, with the final dot (the query log's qname).</summary>
    public static string WireToName(ReadOnlySpan<byte> wire)
    {
        var sb = new StringBuilder();
        int i = 0;
        while (i < wire.Length && wire[i] != 0)
        {
            int len = wire[i];
            for (int j = i + 1; j <= i + len && j < wire.Length; j++)
            {
                byte c = wire[j];
                if (c is (byte)'.' or (byte)'\\' or (byte)'"' or (byte)'(' or (byte)')' or (byte)';' or (byte)'@' or (byte)'$') sb.Append('\\').Append((char)c);
                else if (c < 33 || c > 126) sb.Append('\\').Append(((int)c).ToString("D3", CultureInfo.InvariantCulture));
                else sb.Append((char)c);
            }
            sb.Append('.');
            i += len + 1;
        }
        return sb.Length == 0 ? "." : sb.ToString();
    }

    /// <summary>One line in the query log's format (keys in its order, no spaces).</summary>
    public static string Format(QueryLogRecord r)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("time", r.Time.ToString("yyyy-MM-ddTHH:mm:ss.ffffffZ", CultureInfo.InvariantCulture));
            w.WriteString("client", new IPAddress(r.Client).ToString());
            w.WriteNumber("port", r.Port);
            w.WriteString("proto", r.Proto);
            w.WriteString("qname", WireToName(r.Qname));
            w.WriteString("qtype", RecordTypes.ToText(r.QType));
            w.WriteString("qclass", RecordClasses.ToText(r.QClass));
            w.WriteString("rcode", r.Rcode);
            w.WriteString("flags", r.Flags);
            w.WriteNumber("qsize", r.QuerySize);
            w.WriteNumber("rsize", r.ResponseSize);
            w.WriteNumber("latency_us", r.LatencyMicroseconds);
            w.WriteString("policy", r.Policy);
            if (r.PolicyName is not null) w.WriteString("policy_name", r.PolicyName);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray());
    }
}
