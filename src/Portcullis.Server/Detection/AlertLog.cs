using System.Text.Encodings.Web;
using System.Text.Json;

namespace Portcullis.Server.Detection;

/// <summary>
/// The detector's alert log: one JSON object per line, appended to a file, written on the
/// detector's thread (never the query path) and flushed when the event queue runs dry.
/// <code>{"time":"2026-11-30T06:01:02.1234567Z","kind":"domain","domain":"t.evil.example.","client":"192.0.2.7","score":7.1,...,"action":"block","until":"..."}</code>
/// </summary>
public sealed class AlertLog : IDisposable
{
    private readonly Stream _stream;
    private readonly Utf8JsonWriter _writer;
    private static readonly JsonWriterOptions Options = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, SkipValidation = true };

    public string? Path { get; }

    public AlertLog(Stream stream)
    {
        _stream = stream;
        _writer = new Utf8JsonWriter(stream, Options);
    }

    /// <summary>Opens (appends to) the file; errors name the file.</summary>
    public static AlertLog Open(string path)
    {
        try
        {
            var dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path));
            if (dir is not null) Directory.CreateDirectory(dir);
            return new AlertLog(new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read, 4096));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"detection: alert-log {path}: {e.Message}", e);
        }
    }

    public void Write(DetectorAlert a)
    {
        _writer.Reset(_stream);
        _writer.WriteStartObject();
        _writer.WriteString("time", a.Time.ToString("yyyy-MM-ddTHH:mm:ss.ffffffZ", System.Globalization.CultureInfo.InvariantCulture));
        _writer.WriteString("kind", a.Kind);
        if (a.Domain is not null) _writer.WriteString("domain", a.Domain);
        if (a.Client is not null) _writer.WriteString("client", a.Client);
        _writer.WriteNumber("score", a.Score);
        _writer.WriteNumber("queries", a.Queries);
        _writer.WriteNumber("unique_names", a.UniqueNames);
        _writer.WriteNumber("suspicion", a.MeanSuspicion);
        _writer.WriteNumber("info_bytes", a.InfoBytes);
        _writer.WriteNumber("odd_type_share", a.TypeShare);
        _writer.WriteNumber("clients", a.Clients);
        _writer.WriteNumber("mean_sub_length", a.MeanNameLength);
        _writer.WriteNumber("bytes", a.Bytes);
        _writer.WriteString("action", a.Action switch { DetectorAction.Block => "block", DetectorAction.RateLimit => "rate-limit", _ => "alert" });
        if (a.Until is { } u) _writer.WriteString("until", u.ToString("yyyy-MM-ddTHH:mm:ss.ffffffZ", System.Globalization.CultureInfo.InvariantCulture));
        _writer.WriteEndObject();
        _writer.Flush();
        _stream.WriteByte((byte)'\n');
    }

    public void Flush()
    {
        try { _stream.Flush(); }
        catch (IOException) { }
    }

    public void Dispose()
    {
        Flush();
        _writer.Dispose();
        _stream.Dispose();
    }
}
