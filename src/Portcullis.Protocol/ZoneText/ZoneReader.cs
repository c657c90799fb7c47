using System.Buffers.Binary;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;

namespace Portcullis.Protocol.ZoneText;

/// <summary>
/// Reads a master file (RFC 1035 §5) as operators write it, one entry at a time: $ORIGIN, $TTL
/// (RFC 2308 §4), $INCLUDE, BIND's $GENERATE, parentheses, comments, quoted strings, "@", relative
/// names, omitted owner, TTL and class (TTL and class in either order), TTL units and RFC 3597
/// TYPEnnn/CLASSnnn/\# forms. RDATA is parsed by <see cref="RdataText"/>.
/// <para>
/// TTL rules, as BIND's: a record without a TTL takes the $TTL in force; without a $TTL it takes
/// the last TTL seen in the file (RFC 1035 semantics, with a warning); an SOA with neither takes
/// its own MINIMUM field (with a warning); any other record with neither is an error. TTLs above
/// 2^31 - 1 are read as 0 with a warning (RFC 2181 §8).
/// </para>
/// <para>
/// $INCLUDE paths are relative to the directory of the including file; the included file starts
/// with the including file's origin (or the one given) and owner, and both are restored after it
/// (RFC 1035 §5.1). As in BIND, a record that inherits its owner right after a $ORIGIN, or at the
/// start of a file included with an origin, is an error.
/// </para>
/// </summary>
public sealed class ZoneReader : IDisposable
{
    private sealed class Source
    {
        public required ZoneTokenizer Tokenizer;
        public required TextReader Reader;
        public required bool OwnsReader;
        public required string? File;
        public required string? FullPath;
        public required string Directory;
        public required DnsName Origin;
        public DnsName? LastOwner;
        /// <summary>The text LastOwner was parsed from (relative to the same origin), to skip parsing it again.</summary>
        public string? LastOwnerText;
        /// <summary>The owner was cleared by $ORIGIN or by an $INCLUDE with an origin.</summary>
        public bool OwnerClearedByOrigin;
    }

    private sealed class Generator
    {
        public required Source Source;
        public required DnsName Origin;
        public required ZoneToken Lhs;
        public required ZoneToken Rhs;
        public required uint? Ttl;
        public required RecordClass Class;
        public required RecordType Type;
        public required long Next;
        public required long Stop;
        public required int Step;
    }

    /// <summary>A view of the RDATA tokens of the current entry, reused so that parsing allocates no list.</summary>
    private sealed class TokenSlice : IReadOnlyList<ZoneToken>
    {
        public IReadOnlyList<ZoneToken> List = Array.Empty<ZoneToken>();
        public int Start;
        public int Length;
        public ZoneToken this[int index] =>
            (uint)index < (uint)Length ? List[Start + index] : throw new ArgumentOutOfRangeException(nameof(index));
        public int Count => Length;
        public IEnumerator<ZoneToken> GetEnumerator()
        {
            for (int i = 0; i < Length; i++) yield return List[Start + i];
        }
        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }

    private const int MaxWarnings = 1000;

    private readonly ZoneReaderOptions _options;
    private readonly List<Source> _sources = new();
    private readonly List<ZoneFormatException> _errors = new();
    private readonly List<ZoneWarning> _warnings = new();
    private readonly ZoneEntry _entry = new();
    private readonly TokenSlice _slice = new();
    private Generator? _generator;
    private uint? _defaultTtl;
    private uint? _lastTtl;
    private bool _warnedRfc1035Ttl;
    private bool _started;
    private bool _stopped;

    public ZoneReader(TextReader text, DnsName origin, string? fileName = null, ZoneReaderOptions? options = null)
        : this(text, ownsReader: false, origin, fileName, options)
    {
    }

    private ZoneReader(TextReader text, bool ownsReader, DnsName origin, string? fileName, ZoneReaderOptions? options)
    {
        _options = options ?? new ZoneReaderOptions();
        _defaultTtl = _options.DefaultTtl;
        string? fullPath = fileName is null ? null : Path.GetFullPath(fileName, _options.BaseDirectory ?? System.IO.Directory.GetCurrentDirectory());
        string directory = fullPath is not null
            ? Path.GetDirectoryName(fullPath) ?? System.IO.Directory.GetCurrentDirectory()
            : _options.BaseDirectory ?? System.IO.Directory.GetCurrentDirectory();
        _sources.Add(new Source
        {
            Tokenizer = new ZoneTokenizer(text, fileName),
            Reader = text,
            OwnsReader = ownsReader,
            File = fileName,
            FullPath = fullPath,
            Directory = directory,
            Origin = origin,
        });
    }

    /// <summary>Opens the zone file at <paramref name="path"/>; errors name it as given.</summary>
    public static ZoneReader Open(string path, DnsName origin, ZoneReaderOptions? options = null)
    {
        var reader = new StreamReader(path, System.Text.Encoding.UTF8, detectEncodingFromByteOrderMarks: true,
            new FileStreamOptions { Access = FileAccess.Read, Mode = FileMode.Open, Share = FileShare.Read, BufferSize = 65536 });
        return new ZoneReader(reader, ownsReader: true, origin, path, options);
    }

    /// <summary>Every error met so far (with CollectErrors, each skipped entry; without, the one thrown).</summary>
    public IReadOnlyList<ZoneFormatException> Errors => _errors;

    /// <summary>Things BIND would warn about: TTL taken from the SOA or the previous record, TTL above 2^31 - 1.</summary>
    public IReadOnlyList<ZoneWarning> Warnings => _warnings;

    /// <summary>Where the record last returned by <see cref="ReadRecords"/> was written.</summary>
    public ZonePosition Position { get; private set; }

    /// <summary>
    /// The records of the zone in file order, streamed. Without CollectErrors the first error is
    /// thrown as a <see cref="ZoneFormatException"/>; with it, bad entries are skipped and listed in
    /// <see cref="Errors"/>. May be enumerated once.
    /// </summary>
    public IEnumerable<ResourceRecord> ReadRecords()
    {
        if (_started) throw new InvalidOperationException("ReadRecords can be enumerated only once");
        _started = true;
        return Enumerate();
    }

    private IEnumerable<ResourceRecord> Enumerate()
    {
        while (!_stopped)
        {
            ResourceRecord? record;
            try
            {
                record = Next();
            }
            catch (ZoneFormatException e)
            {
                _generator = null;
                _errors.Add(e);
                if (!_options.CollectErrors) throw;
                if (_errors.Count >= _options.MaxErrors)
                {
                    _errors.Add(new ZoneFormatException(e.File, e.Line, e.Column, $"too many errors ({_options.MaxErrors}); giving up"));
                    _stopped = true;
                }
                continue;
            }
            if (record is null) yield break;
            yield return record;
        }
    }

    private ResourceRecord? Next()
    {
        while (true)
        {
            if (_generator is not null)
            {
                var generated = NextGenerated(_generator);
                if (generated is not null) return generated;
                _generator = null;
            }
            if (_sources.Count == 0) return null;
            var source = _sources[^1];
            if (!source.Tokenizer.ReadEntry(_entry))
            {
                PopSource();
                continue;
            }
            if (_entry.Error is not null) throw _entry.Error;
            var first = _entry.Tokens[0];
            if (!_entry.OwnerOmitted && !first.Quoted && first.Text.StartsWith('$'))
            {
                Directive(source, _entry);
                continue;
            }
            return Record(source, _entry);
        }
    }

    private void PopSource()
    {
        var source = _sources[^1];
        _sources.RemoveAt(_sources.Count - 1);
        if (source.OwnsReader) source.Reader.Dispose();
    }

    private static ZoneFormatException Error(Source source, ZoneToken at, string problem) =>
        new(source.File, at.Line, at.Column, problem);

    private static ZoneFormatException ErrorAtEnd(Source source, ZoneEntry entry, string problem) =>
        new(source.File, entry.EndLine, entry.EndColumn, problem);

    private void Warn(string? file, int line, int column, string problem)
    {
        if (_warnings.Count < MaxWarnings) _warnings.Add(new ZoneWarning(new ZonePosition(file, line, column), problem));
    }

    // ----- directives -------------------------------------------------------------------------

    private void Directive(Source source, ZoneEntry entry)
    {
        var tokens = entry.Tokens;
        var name = tokens[0];
        switch (name.Text.ToUpperInvariant())
        {
            case "$ORIGIN":
                ExpectArguments(source, entry, 1, 1, "a domain name");
                source.Origin = ParseName(source, tokens[1], source.Origin, "origin");
                source.LastOwner = null;
                source.OwnerClearedByOrigin = true;
                break;
            case "$TTL":
                // RFC 2308 §4: the default TTL of the records that follow.
                ExpectArguments(source, entry, 1, 1, "a TTL");
                _defaultTtl = ParseTtl(source, tokens[1]);
                break;
            case "$INCLUDE":
                ExpectArguments(source, entry, 1, 2, "a file name");
                Include(source, tokens);
                break;
            case "$GENERATE":
                Generate(source, entry);
                break;
            default:
                throw Error(source, name, $"unknown directive '{name.Text}': expected $ORIGIN, $TTL, $INCLUDE or $GENERATE");
        }
    }

    private static void ExpectArguments(Source source, ZoneEntry entry, int min, int max, string what)
    {
        var tokens = entry.Tokens;
        if (tokens.Count - 1 < min)
            throw ErrorAtEnd(source, entry, $"expected {what} after {tokens[0].Text}, found the end of the line");
        if (tokens.Count - 1 > max)
            throw Error(source, tokens[max + 1], $"expected the end of the line after {tokens[0].Text}, found '{tokens[max + 1].Text}'");
    }

    private void Include(Source source, IReadOnlyList<ZoneToken> tokens)
    {
        var fileToken = tokens[1];
        string file = Unescape(fileToken.Text);
        DnsName origin = tokens.Count > 2 ? ParseName(source, tokens[2], source.Origin, "origin") : source.Origin;
        if (_sources.Count > _options.MaxIncludeDepth)
            throw Error(source, fileToken, $"$INCLUDE nested more than {_options.MaxIncludeDepth} deep");
        string fullPath = Path.GetFullPath(file, source.Directory);
        foreach (var s in _sources)
            if (s.FullPath is not null && string.Equals(s.FullPath, fullPath, StringComparison.Ordinal))
                throw Error(source, fileToken, $"$INCLUDE loop: '{file}' is already being read");
        StreamReader reader;
        try
        {
            reader = new StreamReader(fullPath, System.Text.Encoding.UTF8, detectEncodingFromByteOrderMarks: true,
                new FileStreamOptions { Access = FileAccess.Read, Mode = FileMode.Open, Share = FileShare.Read, BufferSize = 65536 });
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw Error(source, fileToken, $"cannot open $INCLUDE file '{file}': {e.Message}");
        }
        // Errors name the included file as the operator would find it: relative to the including file's name.
        string display = source.File is not null && !Path.IsPathRooted(file)
            ? Path.Combine(Path.GetDirectoryName(source.File) ?? "", file)
            : file;
        _sources.Add(new Source
        {
            Tokenizer = new ZoneTokenizer(reader, display),
            Reader = reader,
            OwnsReader = true,
            File = display,
            FullPath = fullPath,
            Directory = Path.GetDirectoryName(fullPath) ?? source.Directory,
            Origin = origin,
            // BIND: the owner carries into an included file unless the include sets an origin.
            LastOwner = tokens.Count > 2 ? null : source.LastOwner,
            OwnerClearedByOrigin = tokens.Count > 2,
        });
    }

    private static string Unescape(string text)
    {
        if (!text.Contains('\\')) return text;
        var sb = new System.Text.StringBuilder(text.Length);
        for (int i = 0; i < text.Length; i++)
        {
            if (text[i] == '\\' && i + 1 < text.Length) i++;
            sb.Append(text[i]);
        }
        return sb.ToString();
    }

    private void Generate(Source source, ZoneEntry entry)
    {
        var tokens = entry.Tokens;
        if (tokens.Count < 2)
            throw ErrorAtEnd(source, entry, "expected a range after $GENERATE, found the end of the line");
        if (!ZoneGenerate.TryParseRange(tokens[1].Text, out int start, out int stop, out int step, out string? error))
            throw Error(source, tokens[1], error!);
        if (tokens.Count < 3)
            throw ErrorAtEnd(source, entry, "expected an owner template after the $GENERATE range, found the end of the line");
        int i = 3;
        var (ttl, cls, type) = TtlClassType(source, entry, tokens, ref i);
        if (i >= tokens.Count)
            throw ErrorAtEnd(source, entry, $"expected the RDATA template of the $GENERATE {RecordTypes.ToText(type)}, found the end of the line");
        if (i + 1 < tokens.Count)
            throw Error(source, tokens[i + 1], $"expected the end of the $GENERATE line, found '{tokens[i + 1].Text}' (quote an RDATA template with blanks)");
        long count = ((long)stop - start) / step + 1;
        if (count > _options.MaxGenerateRecords)
            throw Error(source, tokens[1], $"$GENERATE range '{tokens[1].Text}' makes {count} records; at most {_options.MaxGenerateRecords} are allowed");
        _generator = new Generator
        {
            Source = source,
            Origin = source.Origin,
            Lhs = tokens[2],
            Rhs = tokens[i],
            Ttl = ttl,
            Class = cls,
            Type = type,
            Next = start,
            Stop = stop,
            Step = step,
        };
    }

    private ResourceRecord? NextGenerated(Generator g)
    {
        if (g.Next > g.Stop) return null;
        long value = g.Next;
        g.Next += g.Step;
        var source = g.Source;

        if (!ZoneGenerate.TryExpand(g.Lhs.Text, value, out string lhs, out string? error))
            throw Error(source, g.Lhs, error!);
        var owner = lhs == "@" ? g.Origin : ParseName(source, g.Lhs with { Text = lhs }, g.Origin, "owner name");

        if (!ZoneGenerate.TryExpand(g.Rhs.Text, value, out string rhs, out error))
            throw Error(source, g.Rhs, error!);
        // BIND re-reads the expanded RDATA template as zone text ("10 mail$" becomes two fields).
        var tokenizer = new ZoneTokenizer(new StringReader(rhs), source.File);
        var entry = new ZoneEntry();
        var rdataTokens = new List<ZoneToken>();
        while (tokenizer.ReadEntry(entry))
        {
            if (entry.Error is not null)
                throw Error(source, g.Rhs, $"in the expanded $GENERATE RDATA '{rhs}': {entry.Error.Problem}");
            foreach (var t in entry.Tokens) rdataTokens.Add(t with { Line = g.Rhs.Line, Column = g.Rhs.Column });
        }
        Position = new ZonePosition(source.File, g.Lhs.Line, g.Lhs.Column);
        var data = ParseRdata(source, g.Type, rdataTokens, g.Origin, g.Rhs);
        uint ttl = ResolveTtl(source, g.Ttl, g.Type, data, g.Lhs);
        return new ResourceRecord(owner, g.Type, g.Class, ttl, data);
    }

    // ----- records ----------------------------------------------------------------------------

    private ResourceRecord Record(Source source, ZoneEntry entry)
    {
        var tokens = entry.Tokens;
        int i = 0;
        DnsName owner;
        if (entry.OwnerOmitted)
        {
            owner = source.LastOwner ?? throw Error(source, tokens[0],
                source.OwnerClearedByOrigin
                    ? "the owner is omitted right after a change of origin ($ORIGIN or $INCLUDE with an origin): write the owner name"
                    : "the owner is omitted (the line starts with a blank) but no record came before");
        }
        else
        {
            var t = tokens[0];
            if (t.Quoted) throw Error(source, t, $"expected an owner name, found the quoted string \"{t.Text}\"");
            // Zone files repeat an owner on consecutive lines ("www A", "www AAAA"): the same text
            // under the same origin is the same name, so the parsed name (and its identity, which
            // the zone compiler uses to skip hashing) is reused.
            if (source.LastOwner is not null && string.Equals(t.Text, source.LastOwnerText, StringComparison.Ordinal))
                owner = source.LastOwner;
            else
            {
                owner = t.Text == "@" ? source.Origin : ParseName(source, t, source.Origin, "owner name");
                source.LastOwnerText = t.Text;
            }
            source.LastOwner = owner;
            i = 1;
        }
        var start = tokens[0];
        Position = new ZonePosition(source.File, start.Line, start.Column);
        var (ttl, cls, type) = TtlClassType(source, entry, tokens, ref i);
        _slice.List = tokens;
        _slice.Start = i;
        _slice.Length = tokens.Count - i;
        var at = i < tokens.Count ? tokens[i] : new ZoneToken("", false, entry.EndLine, entry.EndColumn);
        var data = ParseRdata(source, type, _slice, source.Origin, at);
        uint resolved = ResolveTtl(source, ttl, type, data, start);
        return new ResourceRecord(owner, type, cls, resolved, data);
    }

    private (uint? Ttl, RecordClass Class, RecordType Type) TtlClassType(Source source, ZoneEntry entry, IReadOnlyList<ZoneToken> tokens, ref int i)
    {
        uint? ttl = null;
        RecordClass? cls = null;
        while (true)
        {
            if (i >= tokens.Count)
                throw ErrorAtEnd(source, entry, $"expected {Expected(ttl, cls)}, found the end of the line");
            var t = tokens[i++];
            if (t.Quoted)
                throw Error(source, t, $"expected {Expected(ttl, cls)}, found the quoted string \"{t.Text}\"");
            if (ttl is null && t.Text.Length > 0 && char.IsAsciiDigit(t.Text[0]))
            {
                ttl = ParseTtl(source, t);
                continue;
            }
            if (cls is null && RecordClasses.TryParse(t.Text, out var c))
            {
                if (c != _options.Class)
                    throw Error(source, t, $"class {RecordClasses.ToText(c)} does not match the zone's class {RecordClasses.ToText(_options.Class)}");
                cls = c;
                continue;
            }
            if (RecordTypes.TryParse(t.Text, out var type))
            {
                if (RecordTypes.IsMetaType(type))
                    throw Error(source, t, $"type {RecordTypes.ToText(type)} is a query type and cannot be in a zone");
                return (ttl, cls ?? _options.Class, type);
            }
            throw Error(source, t, $"expected {Expected(ttl, cls)}, found '{t.Text}'");
        }
    }

    private static string Expected(uint? ttl, RecordClass? cls) => (ttl, cls) switch
    {
        (null, null) => "a TTL, class or type",
        (null, _) => "a TTL or type",
        (_, null) => "a class or type",
        _ => "a type",
    };

    private uint ParseTtl(Source source, ZoneToken t)
    {
        if (t.Quoted) throw Error(source, t, $"expected a TTL, found the quoted string \"{t.Text}\"");
        if (!ZoneTtl.TryParse(t.Text, out uint ttl, out string? error))
            throw Error(source, t, $"bad TTL '{t.Text}': {error}");
        if (ttl > ZoneTtl.MaxTtl)
        {
            Warn(source.File, t.Line, t.Column, $"TTL {ttl} is above 2147483647 and is read as 0 (RFC 2181 §8)");
            ttl = 0;
        }
        return ttl;
    }

    private uint ResolveTtl(Source source, uint? ttl, RecordType type, byte[] data, ZoneToken at)
    {
        if (ttl is uint explicitTtl)
        {
            _lastTtl = explicitTtl;
            return explicitTtl;
        }
        if (_defaultTtl is uint defaultTtl) return defaultTtl;
        if (_lastTtl is uint lastTtl)
        {
            if (!_warnedRfc1035Ttl)
            {
                _warnedRfc1035Ttl = true;
                Warn(source.File, at.Line, at.Column, $"no $TTL: using the previous record's TTL {lastTtl} (RFC 1035 semantics)");
            }
            return lastTtl;
        }
        if (type == RecordType.SOA && data.Length >= 20)
        {
            // BIND's fallback for zones written before RFC 2308: the SOA takes its MINIMUM field.
            uint minimum = BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(data.Length - 4));
            if (minimum > ZoneTtl.MaxTtl) minimum = 0;
            Warn(source.File, at.Line, at.Column, $"no $TTL and no TTL on the SOA: using the SOA minimum {minimum}");
            _lastTtl = minimum;
            return minimum;
        }
        throw Error(source, at, "no TTL: give the record a TTL or put a $TTL directive before it");
    }

    private static DnsName ParseName(Source source, ZoneToken t, DnsName origin, string what)
    {
        if (t.Quoted) throw Error(source, t, $"expected {what}, found the quoted string \"{t.Text}\"");
        if (t.Text == "@") return origin;
        if (!DnsName.TryParse(t.Text, origin, out var name, out string? error))
            throw Error(source, t, $"bad {what} '{t.Text}': {error}");
        return name!;
    }

    private static byte[] ParseRdata(Source source, RecordType type, IReadOnlyList<ZoneToken> tokens, DnsName origin, ZoneToken at)
    {
        try
        {
            return RdataText.Parse(type, tokens, origin, source.File);
        }
        catch (ZoneFormatException e)
        {
            if (e.File == source.File && e.Line > 0) throw;
            int line = e.Line > 0 ? e.Line : at.Line;
            int column = e.Line > 0 ? e.Column : at.Column;
            throw new ZoneFormatException(source.File, line, column, e.Problem);
        }
        catch (DnsFormatException e)
        {
            throw new ZoneFormatException(source.File, at.Line, at.Column, $"bad {RecordTypes.ToText(type)} RDATA: {e.Message}");
        }
    }

    public void Dispose()
    {
        while (_sources.Count > 0) PopSource();
    }
}
