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
        if (QueueSize is < 1 or > 1 << 22) return "query-log: queue-size must be between 1 and 4194304";
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
    byte[] _bytes = new byte[4096];
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

        int max = MaxLineLength(e);
        if (_bytes.Length < max) _bytes = new byte[max];
        int length = Format(e, _bytes);
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

    /// <summary>An upper bound of the octets <see cref="Format(in QueryEvent, Span{byte})"/> writes for the event.</summary>
    public static int MaxLineLength(in QueryEvent e) =>
        // Fixed fields and numbers stay under 400; a name octet takes at most 5 ("\\DDD"), a
        // policy-name character at most 6 ("\u00XX") in UTF-8 or JSON escapes.
        400 + 5 * e.Qname.Length + 6 * (e.PolicyName?.Length ?? 0);

    /// <summary>
    /// Writes one line (with its newline) for the event in UTF-8, the format of docs/watching.md,
    /// into <paramref name="into"/> (at least <see cref="MaxLineLength"/> long); returns its length.
    /// Allocates nothing.
    /// </summary>
    public static int Format(in QueryEvent e, Span<byte> into)
    {
        var w = new Utf8Line(into);
        w.Ascii("{\"time\":\""u8);
        w.Time(e.Time);
        w.Ascii("\",\"client\":\""u8);
        w.Address(e.Client);
        w.Ascii("\",\"port\":"u8);
        w.Number(e.ClientPort);
        w.Ascii(e.Transport == TransportKind.Tcp ? ",\"proto\":\"tcp"u8 : ",\"proto\":\"udp"u8);
        w.Ascii("\",\"qname\":\""u8);
        w.Qname(e.Qname);
        w.Ascii("\",\"qtype\":\""u8);
        w.Text(RecordTypes.ToText(e.QType));
        w.Ascii("\",\"qclass\":\""u8);
        w.Text(RecordClasses.ToText(e.QClass));
        w.Ascii("\",\"rcode\":\""u8);
        w.Text(e.ResponseSize == 0 ? "DROPPED" : RcodeText((int)e.Rcode & 0xF));
        w.Ascii("\",\"flags\":\""u8);
        w.Flags(e.Flags);
        w.Ascii("\",\"qsize\":"u8);
        w.Number(e.QuerySize);
        w.Ascii(",\"rsize\":"u8);
        w.Number(e.ResponseSize);
        w.Ascii(",\"latency_us\":"u8);
        w.Number(e.Latency.Ticks / 10);
        w.Ascii(",\"policy\":\""u8);
        w.Text(PolicyText(e.Policy));
        w.Ascii("\""u8);
        if (e.PolicyName is { } name)
        {
            w.Ascii(",\"policy_name\":\""u8);
            w.JsonString(name);
            w.Ascii("\""u8);
        }
        w.Ascii("}\n"u8);
        return w.Length;
    }

    /// <summary>The line as a string (for tests and tools; allocates).</summary>
    public static string FormatLine(in QueryEvent e)
    {
        var buffer = new byte[MaxLineLength(e)];
        return Encoding.UTF8.GetString(buffer, 0, Format(e, buffer));
    }

    /// <summary>Appends ASCII and UTF-8 into a span; the caller sized it.</summary>
    ref struct Utf8Line(Span<byte> into)
    {
        readonly Span<byte> _into = into;
        public int Length;

        public void Ascii(ReadOnlySpan<byte> text)
        {
            text.CopyTo(_into[Length..]);
            Length += text.Length;
        }

        /// <summary>Text known to be ASCII without JSON specials (mnemonics).</summary>
        public void Text(string text)
        {
            foreach (char c in text) _into[Length++] = (byte)c;
        }

        public void Number(long v)
        {
            System.Buffers.Text.Utf8Formatter.TryFormat(v, _into[Length..], out int written);
            Length += written;
        }

        public void Time(DateTime t)
        {
            t.TryFormat(_into[Length..], out int written, "yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture);
            Length += written;
        }

        public void Address(ReadOnlySpan<byte> a)
        {
            Span<char> text = stackalloc char[AddressText.MaxLength];
            int n = AddressText.Format(a, text);
            for (int i = 0; i < n; i++) _into[Length++] = (byte)text[i];
        }

        public void Flags(ushort flags)
        {
            int start = Length;
            if ((flags & 0x8000) != 0) Ascii("qr "u8);
            if ((flags & 0x0400) != 0) Ascii("aa "u8);
            if ((flags & 0x0200) != 0) Ascii("tc "u8);
            if ((flags & 0x0100) != 0) Ascii("rd "u8);
            if ((flags & 0x0080) != 0) Ascii("ra "u8);
            if ((flags & 0x0020) != 0) Ascii("ad "u8);
            if ((flags & 0x0010) != 0) Ascii("cd "u8);
            if (Length > start) Length--;
        }

        /// <summary>The name in presentation form (RFC 1035 §5.1 escapes), then JSON-escaped (a backslash doubled, a quote escaped).</summary>
        public void Qname(ReadOnlySpan<byte> wire)
        {
            int pos = 0;
            bool first = true;
            while (pos < wire.Length && wire[pos] != 0)
            {
                int len = wire[pos];
                if (!first) _into[Length++] = (byte)'.';
                first = false;
                int end = Math.Min(pos + 1 + len, wire.Length);
                for (int i = pos + 1; i < end; i++)
                {
                    byte b = wire[i];
                    switch (b)
                    {
                        case (byte)'.' or (byte)';' or (byte)'(' or (byte)')' or (byte)'@' or (byte)'$':
                            Ascii("\\\\"u8);
                            _into[Length++] = b;
                            break;
                        case (byte)'\\':
                            Ascii("\\\\\\\\"u8);
                            break;
                        case (byte)'"':
                            Ascii("\\\\\\\""u8);
                            break;
                        default:
                            if (b <= 0x20 || b >= 0x7F)
                            {
                                Ascii("\\\\"u8);
                                _into[Length++] = (byte)('0' + b / 100);
                                _into[Length++] = (byte)('0' + b / 10 % 10);
                                _into[Length++] = (byte)('0' + b % 10);
                            }
                            else _into[Length++] = b;
                            break;
                    }
                }
                pos += 1 + len;
            }
            _into[Length++] = (byte)'.';
        }

        /// <summary>A string as JSON string content: quote and backslash escaped, controls as \u00XX, the rest UTF-8.</summary>
        public void JsonString(string s)
        {
            foreach (char c in s)
            {
                if (c == '"' || c == '\\') { _into[Length++] = (byte)'\\'; _into[Length++] = (byte)c; }
                else if (c < 0x20)
                {
                    Ascii("\\u00"u8);
                    _into[Length++] = (byte)"0123456789abcdef"[c >> 4];
                    _into[Length++] = (byte)"0123456789abcdef"[c & 0xF];
                }
                else if (c < 0x80) _into[Length++] = (byte)c;
                else Length += Encoding.UTF8.GetBytes([c], _into[Length..]);
            }
        }
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




}
