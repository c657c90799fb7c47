using System.Globalization;
using System.Text;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Server.Security;
using Portcullis.Transport;

namespace Portcullis.Server.Telemetry;

/// <summary>
/// query-log: one JSON line per query and what became of it (docs/watching.md has the format).
/// Off when <see cref="File"/> is not set.
/// </summary>
public sealed class QueryLogConfig
{
    /// <summary>The log file, appended to; rotated to FILE.1 … FILE.N when it passes <see cref="MaxSize"/>.</summary>
    public string? File { get; set; }
    /// <summary>Log one query in N (1: all). Counted per query, so 10 logs every tenth.</summary>
    public int Sample { get; set; } = 1;
    /// <summary>Only these clients (access-list elements: addresses, prefixes, "!" negation, acl names).</summary>
    public List<string>? Clients { get; set; }
    /// <summary>Only responses with these RCODEs (mnemonics; "DROPPED" for no response).</summary>
    public List<string>? Rcodes { get; set; }
    /// <summary>Only queries of these types.</summary>
    public List<string>? Qtypes { get; set; }
    /// <summary>Only queries some policy acted on (RRL, an ACL, RPZ, the detector).</summary>
    public bool PolicyOnly { get; set; }
    /// <summary>Rotate when the file passes this size ("100M", "1G", "512K", or bytes); 0: never.</summary>
    public string MaxSize { get; set; } = "100M";
    /// <summary>Rotated files kept (FILE.1 the newest).</summary>
    public int Keep { get; set; } = 5;
    /// <summary>Queries waiting for the writer (shared with the other observers); beyond it they are dropped and counted.</summary>
    public int QueueSize { get; set; } = QueryEventHub.DefaultCapacity;

    public bool Enabled => File is not null;

    public static long ParseSize(string text)
    {
        text = text.Trim();
        long unit = 1;
        if (text.Length > 0 && char.ToUpperInvariant(text[^1]) is 'K' or 'M' or 'G')
        {
            unit = char.ToUpperInvariant(text[^1]) switch { 'K' => 1L << 10, 'M' => 1L << 20, _ => 1L << 30 };
            text = text[..^1];
        }
        if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long n) || n > long.MaxValue / unit)
            throw new FormatException($"'{text}' is not a size (e.g. 100M, 1G, 512K)");
        return n * unit;
    }

    /// <summary>One line naming what is wrong, or null.</summary>
    public string? Validate()
    {
        if (Sample < 1) return "query-log: sample must be at least 1 (one query in N)";
        if (Keep < 0 || Keep > 1000) return "query-log: keep must be between 0 and 1000";
        if (QueueSize < 1) return "query-log: queue-size must be at least 1";
        try { ParseSize(MaxSize); }
        catch (FormatException e) { return $"query-log: max-size: {e.Message}"; }
        foreach (var r in Rcodes ?? [])
            if (!QueryLog.TryParseRcode(r, out _)) return $"query-log: rcodes: '{r}' is not an RCODE mnemonic";
        foreach (var t in Qtypes ?? [])
            if (!RecordTypes.TryParse(t, out _)) return $"query-log: qtypes: '{t}' is not a record type";
        return null;
    }
}

/// <summary>
/// The JSON-lines query log, an observer of the <see cref="QueryEventHub"/>: it runs on the hub's
/// thread, so the query path only posts. Each line is formatted into a reused buffer and written
/// through a buffered stream, flushed whenever the hub's queue runs dry; the file is rotated by size
/// (FILE → FILE.1 → … → FILE.keep). A failed write stops the log (counted), never the server.
/// </summary>
public sealed class QueryLog : IQueryObserver, IDisposable
{
    readonly string _path;
    readonly int _sample;
    readonly AccessList? _clients;
    readonly bool[]? _rcodes;     // by RCODE 0..15, [16] = dropped
    readonly HashSet<RecordType>? _qtypes;
    readonly bool _policyOnly;
    readonly long _maxSize;
    readonly int _keep;
    readonly StringBuilder _line = new(256);
    byte[] _bytes = new byte[1024];
    FileStream? _stream;
    long _size, _seen, _written, _failed;

    public QueryLog(QueryLogConfig config, AccessList? clients = null)
    {
        _path = config.File ?? throw new ArgumentException("query-log: no file");
        _sample = config.Sample;
        _clients = clients;
        if (config.Rcodes is { Count: > 0 } rcodes)
        {
            _rcodes = new bool[17];
            foreach (var r in rcodes)
                if (TryParseRcode(r, out int code)) _rcodes[code] = true;
        }
        if (config.Qtypes is { Count: > 0 } qtypes)
        {
            _qtypes = [];
            foreach (var t in qtypes)
                if (RecordTypes.TryParse(t, out var type)) _qtypes.Add(type);
        }
        _policyOnly = config.PolicyOnly;
        _maxSize = QueryLogConfig.ParseSize(config.MaxSize);
        _keep = config.Keep;
        Open();
    }

    /// <summary>Lines written.</summary>
    public long Written => Interlocked.Read(ref _written);
    /// <summary>Lines lost to a failed write.</summary>
    public long Failed => Interlocked.Read(ref _failed);

    void Open()
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(_path));
        if (directory is not null) Directory.CreateDirectory(directory);
        _stream = new FileStream(_path, FileMode.Append, FileAccess.Write, FileShare.Read, 1 << 16);
        _size = _stream.Length;
    }

    public void Observe(in QueryEvent e)
    {
        if (_stream is null) { Interlocked.Increment(ref _failed); return; }
        if (_policyOnly && e.Policy == QueryPolicy.None) return;
        if (_rcodes is not null && !_rcodes[e.ResponseSize == 0 ? 16 : (int)e.Rcode & 0xF]) return;
        if (_qtypes is not null && !_qtypes.Contains(e.QType)) return;
        if (_clients is not null && !_clients.Allows(e.Client)) return;
        if (_sample > 1 && _seen++ % _sample != 0) return;

        Format(e, _line);
        int max = Encoding.UTF8.GetMaxByteCount(_line.Length);
        if (_bytes.Length < max) _bytes = new byte[Math.Max(max, _bytes.Length * 2)];
        int length = 0;
        foreach (var chunk in _line.GetChunks())
            length += Encoding.UTF8.GetBytes(chunk.Span, _bytes.AsSpan(length));
        try
        {
            if (_maxSize > 0 && _size > 0 && _size + length > _maxSize) Rotate();
            _stream!.Write(_bytes, 0, length);
            _size += length;
            Interlocked.Increment(ref _written);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ObjectDisposedException)
        {
            Interlocked.Increment(ref _failed);
            try { _stream?.Dispose(); } catch (IOException) { }
            _stream = null;
        }
    }

    void Rotate()
    {
        _stream!.Dispose();
        _stream = null;
        if (_keep == 0) System.IO.File.Delete(_path);
        else
        {
            System.IO.File.Delete($"{_path}.{_keep}");
            for (int i = _keep - 1; i >= 1; i--)
                if (System.IO.File.Exists($"{_path}.{i}")) System.IO.File.Move($"{_path}.{i}", $"{_path}.{i + 1}");
            System.IO.File.Move(_path, $"{_path}.1");
        }
        Open();
    }

    public void Flush()
    {
        try { _stream?.Flush(); }
        catch (IOException) { Interlocked.Increment(ref _failed); }
    }

    public void Dispose()
    {
        try { _stream?.Dispose(); } catch (IOException) { }
        _stream = null;
    }

    /// <summary>Writes one line (with its newline) for the event: the format of docs/watching.md.</summary>
    public static void Format(in QueryEvent e, StringBuilder sb)
    {
        sb.Clear();
        sb.Append("{\"time\":\"");
        Span<char> time = stackalloc char[32];
        if (e.Time.TryFormat(time, out int timeLength, "yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture))
            sb.Append(time[..timeLength]);
        sb.Append("\",\"client\":\"");
        AppendAddress(sb, e.Client);
        sb.Append("\",\"port\":").Append(e.ClientPort);
        sb.Append(",\"proto\":\"").Append(e.Transport == TransportKind.Tcp ? "tcp" : "udp");
        sb.Append("\",\"qname\":\"");
        AppendQname(sb, e.Qname);
        sb.Append("\",\"qtype\":\"").Append(RecordTypes.ToText(e.QType));
        sb.Append("\",\"qclass\":\"").Append(RecordClasses.ToText(e.QClass));
        sb.Append("\",\"rcode\":\"").Append(e.ResponseSize == 0 ? "DROPPED" : RcodeText((int)e.Rcode & 0xF));
        sb.Append("\",\"flags\":\"");
        AppendFlags(sb, e.Flags);
        sb.Append("\",\"qsize\":").Append(e.QuerySize);
        sb.Append(",\"rsize\":").Append(e.ResponseSize);
        sb.Append(",\"latency_us\":").Append((long)(e.Latency.Ticks / 10));
        sb.Append(",\"policy\":\"").Append(PolicyText(e.Policy)).Append('"');
        if (e.PolicyName is { } name)
        {
            sb.Append(",\"policy_name\":\"");
            foreach (char c in name) AppendJsonChar(sb, c);
            sb.Append('"');
        }
        sb.Append("}\n");
    }

    public static string PolicyText(QueryPolicy p) => p switch
    {
        QueryPolicy.None => "none",
        QueryPolicy.RrlDrop => "rrl-drop",
        QueryPolicy.RrlSlip => "rrl-slip",
        QueryPolicy.ClientBlocked => "client-blocked",
        QueryPolicy.AclRefused => "acl-refused",
        QueryPolicy.RpzNxdomain => "rpz-nxdomain",
        QueryPolicy.RpzNodata => "rpz-nodata",
        QueryPolicy.RpzDrop => "rpz-drop",
        QueryPolicy.RpzPassthru => "rpz-passthru",
        QueryPolicy.RpzLocalData => "rpz-local-data",
        QueryPolicy.RpzTcpOnly => "rpz-tcp-only",
        QueryPolicy.DetectorBlocked => "detector-blocked",
        _ => "other",
    };

    static readonly string[] Rcodes = ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
        "NXRRSET", "NOTAUTH", "NOTZONE", "DSOTYPENI", "RCODE12", "RCODE13", "RCODE14", "RCODE15"];

    public static string RcodeText(int rcode) => Rcodes[rcode & 0xF];

    public static bool TryParseRcode(string text, out int code)
    {
        if (text.Equals("DROPPED", StringComparison.OrdinalIgnoreCase)) { code = 16; return true; }
        code = Array.FindIndex(Rcodes, r => r.Equals(text, StringComparison.OrdinalIgnoreCase));
        return code >= 0;
    }

    static void AppendFlags(StringBuilder sb, ushort flags)
    {
        int n = sb.Length;
        if ((flags & 0x8000) != 0) sb.Append("qr ");
        if ((flags & 0x0400) != 0) sb.Append("aa ");
        if ((flags & 0x0200) != 0) sb.Append("tc ");
        if ((flags & 0x0100) != 0) sb.Append("rd ");
        if ((flags & 0x0080) != 0) sb.Append("ra ");
        if ((flags & 0x0020) != 0) sb.Append("ad ");
        if ((flags & 0x0010) != 0) sb.Append("cd ");
        if (sb.Length > n) sb.Length--;
    }

    static void AppendAddress(StringBuilder sb, ReadOnlySpan<byte> a)
    {
        if (a.Length == 4)
        {
            sb.Append(a[0]).Append('.').Append(a[1]).Append('.').Append(a[2]).Append('.').Append(a[3]);
            return;
        }
        if (a.Length != 16) return;
        Span<char> text = stackalloc char[46];
        if (new System.Net.IPAddress(a).TryFormat(text, out int written)) sb.Append(text[..written]);
    }

    /// <summary>The name in presentation form (RFC 1035 §5.1 escapes), then JSON-escaped.</summary>
    static void AppendQname(StringBuilder sb, ReadOnlySpan<byte> wire)
    {
        int pos = 0;
        bool first = true;
        while (pos < wire.Length && wire[pos] != 0)
        {
            int len = wire[pos];
            if (!first) sb.Append('.');
            first = false;
            int end = Math.Min(pos + 1 + len, wire.Length);
            for (int i = pos + 1; i < end; i++)
            {
                byte b = wire[i];
                switch (b)
                {
                    case (byte)'.' or (byte)';' or (byte)'(' or (byte)')' or (byte)'@' or (byte)'$':
                        sb.Append("\\\\").Append((char)b);
                        break;
                    case (byte)'\\':
                        sb.Append("\\\\\\\\");
                        break;
                    case (byte)'"':
                        sb.Append("\\\\\\\"");
                        break;
                    default:
                        if (b <= 0x20 || b >= 0x7F)
                            sb.Append("\\\\").Append((char)('0' + b / 100)).Append((char)('0' + b / 10 % 10)).Append((char)('0' + b % 10));
                        else sb.Append((char)b);
                        break;
                }
            }
            pos += 1 + len;
        }
        sb.Append('.');
    }

    static void AppendJsonChar(StringBuilder sb, char c)
    {
        if (c == '"' || c == '\\') sb.Append('\\').Append(c);
        else if (c < 0x20) sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
        else sb.Append(c);
    }
}
