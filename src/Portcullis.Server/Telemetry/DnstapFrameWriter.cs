using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;

namespace Portcullis.Server.Telemetry;

/// <summary>
/// Frame Streams (fstrm), the transport of dnstap: data frames are a 4-octet big-endian length
/// and the payload; a control frame starts with a zero length (the escape), then its own length,
/// its type and its fields (field type CONTENT_TYPE = 1, length, bytes).
/// </summary>
public static class FrameStreams
{
    public const string DnstapContentType = "protobuf:dnstap.Dnstap";
    public const uint Accept = 1, Start = 2, Stop = 3, Ready = 4, Finish = 5;
    public const uint FieldContentType = 1;
    /// <summary>fstrm's bound on a control frame's length.</summary>
    public const int MaxControlLength = 512;

    /// <summary>Writes a control frame, with the dnstap content type when <paramref name="withContentType"/>.</summary>
    public static void WriteControl(Stream stream, uint type, bool withContentType)
    {
        var contentType = Encoding.ASCII.GetBytes(DnstapContentType);
        int length = 4 + (withContentType ? 8 + contentType.Length : 0);
        var frame = new byte[8 + length];
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(0), 0);   // escape
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(4), (uint)length);
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(8), type);
        if (withContentType)
        {
            BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(12), FieldContentType);
            BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(16), (uint)contentType.Length);
            contentType.CopyTo(frame, 20);
        }
        stream.Write(frame);
    }

    /// <summary>Reads a control frame: its type and the content types it names. Throws IOException on anything else.</summary>
    public static (uint Type, List<string> ContentTypes) ReadControl(Stream stream)
    {
        Span<byte> head = stackalloc byte[8];
        stream.ReadExactly(head);
        if (BinaryPrimitives.ReadUInt32BigEndian(head) != 0)
            throw new IOException("frame streams: expected a control frame");
        int length = (int)BinaryPrimitives.ReadUInt32BigEndian(head[4..]);
        if (length < 4 || length > MaxControlLength)
            throw new IOException($"frame streams: control frame length {length}");
        var body = new byte[length];
        stream.ReadExactly(body);
        uint type = BinaryPrimitives.ReadUInt32BigEndian(body);
        var types = new List<string>();
        for (int at = 4; at < length;)
        {
            if (length - at < 8) throw new IOException("frame streams: truncated control field");
            uint field = BinaryPrimitives.ReadUInt32BigEndian(body.AsSpan(at));
            int fieldLength = (int)BinaryPrimitives.ReadUInt32BigEndian(body.AsSpan(at + 4));
            at += 8;
            if (fieldLength < 0 || fieldLength > length - at) throw new IOException("frame streams: truncated control field");
            if (field == FieldContentType) types.Add(Encoding.ASCII.GetString(body, at, fieldLength));
            at += fieldLength;
        }
        return (type, types);
    }
}

/// <summary>
/// Writes dnstap payloads as Frame Streams to a file (unidirectional: START, data frames, STOP)
/// or a Unix socket (bidirectional: READY → ACCEPT, START, data frames, STOP → FINISH), as
/// BIND's dnstap-output and fstrm_capture expect. Not thread-safe: one writer task owns it.
/// </summary>
public sealed class DnstapFrameWriter : IDisposable
{
    readonly Stream _raw;
    readonly BufferedStream _out;
    readonly bool _bidirectional;
    readonly byte[] _length = new byte[4];
    bool _disposed;

    DnstapFrameWriter(Stream raw, bool bidirectional)
    {
        _raw = raw;
        _bidirectional = bidirectional;
        _out = new BufferedStream(raw, 64 * 1024);
    }

    /// <summary>Creates (or truncates) a dnstap file and writes its START frame.</summary>
    public static DnstapFrameWriter CreateFile(string path) =>
        Unidirectional(new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.Read));

    /// <summary>A unidirectional stream over any stream (START written now); the writer owns the stream.</summary>
    public static DnstapFrameWriter Unidirectional(Stream stream)
    {
        var writer = new DnstapFrameWriter(stream, bidirectional: false);
        FrameStreams.WriteControl(writer._out, FrameStreams.Start, withContentType: true);
        writer._out.Flush();
        return writer;
    }

    /// <summary>
    /// Connects to a collector's Unix socket and runs the handshake: READY with our content type,
    /// the collector's ACCEPT naming it, then START. Throws IOException when the collector refuses.
    /// </summary>
    public static DnstapFrameWriter ConnectUnix(string path, TimeSpan timeout)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Connect(new UnixDomainSocketEndPoint(path));
            socket.ReceiveTimeout = (int)timeout.TotalMilliseconds;
            socket.SendTimeout = (int)timeout.TotalMilliseconds;
            var stream = new NetworkStream(socket, ownsSocket: true);
            FrameStreams.WriteControl(stream, FrameStreams.Ready, withContentType: true);
            var (type, types) = FrameStreams.ReadControl(stream);
            if (type != FrameStreams.Accept || !types.Contains(FrameStreams.DnstapContentType))
                throw new IOException($"dnstap collector at {path} did not accept {FrameStreams.DnstapContentType}");
            var writer = new DnstapFrameWriter(stream, bidirectional: true);
            FrameStreams.WriteControl(writer._out, FrameStreams.Start, withContentType: true);
            writer._out.Flush();
            return writer;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Appends one data frame (buffered; see <see cref="Flush"/>).</summary>
    public void WriteFrame(ReadOnlySpan<byte> payload)
    {
        // A zero length would read as the control-frame escape.
        if (payload.IsEmpty) return;
        BinaryPrimitives.WriteUInt32BigEndian(_length, (uint)payload.Length);
        _out.Write(_length);
        _out.Write(payload);
    }

    public void Flush() => _out.Flush();

    /// <summary>Writes STOP; on a socket, waits for the collector's FINISH (bounded by the socket's timeout).</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        try
        {
            FrameStreams.WriteControl(_out, FrameStreams.Stop, withContentType: false);
            _out.Flush();
            if (_bidirectional) FrameStreams.ReadControl(_raw);   // FINISH; what it says changes nothing
        }
        catch (IOException) { }
        catch (SocketException) { }
        finally
        {
            _out.Dispose();
        }
    }
}
