using System.Buffers.Binary;
using System.Diagnostics;
using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.Tsig;
using Portcullis.Protocol.Wire;
using Portcullis.Protocol.Zones;
using Portcullis.Server.Authoritative;
using Portcullis.Transport;

namespace Portcullis.Server.Transfer;

/// <summary>
/// One outgoing zone transfer (AXFR, RFC 5936; or the whole zone in answer to IXFR, which RFC
/// 1995 §4 allows when no increment is available), made one message at a time as the transport
/// pulls it. It walks the zone snapshot it was given, which is immutable: a reload swaps in a new
/// one and this transfer goes on sending the version it began with, whole and consistent.
/// <para>
/// RFC 5936 §2.2: the SOA first, then every RRset of the zone (glue, delegation NS and DS, RRSIG
/// and NSEC included: the records below cuts too, as loaded), the SOA again last. Messages are up
/// to 65,535 octets, less <see cref="IMessageSigner.Reserve"/> and an OPT record when the query had
/// EDNS; an RRset that does not fit the rest of a message is split across messages (§2.2 allows
/// it: an RRset need not be in one message). The first message carries the question (§2.2.1);
/// the others have none. Every message has the query's ID and opcode, AA set, RCODE 0.
/// </para>
/// <para>
/// Names are compressed within each message (RFC 1035 §4.1.4) against two targets that cover
/// nearly all of a zone's names: the zone's origin, written once per message (the question in
/// the first), and the previous owner, so records of one node after the first cost two octets of
/// owner. Names in RDATA are compressed only for the types RFC 3597 §4 allows.
/// </para>
/// </summary>
public sealed class AxfrStream : IMessageStream
{
    private enum Phase : byte { FirstSoa, Body, LastSoa, Done }

    private readonly TransferFraming _framing;
    private readonly ZoneData _data;
    private readonly RecordSet _soa;

    private Phase _phase;
    private int _node;
    private int _set;
    private int _record;     // records of the current RRset already sent (an RRset split across messages)

    /// <param name="owner">The server's transfers: the place this transfer took there (<see cref="ZoneTransfers.TryBegin"/>) is given back on Dispose.</param>
    /// <param name="zone">The snapshot to send, held for the whole transfer.</param>
    /// <param name="query">The query's header (ID, opcode, RD and CD are copied).</param>
    /// <param name="qname">The question's name as the query spelt it (copied into the first message).</param>
    /// <param name="qtype">AXFR, or IXFR answered with the whole zone.</param>
    /// <param name="edns">The query had EDNS: each message gets an OPT record (RFC 6891 §7).</param>
    /// <param name="signer">TSIG for every message (RFC 8945 §5.3.1), or null.</param>
    /// <param name="client">The client's address (4 or 16 octets), for the log line.</param>
    public AxfrStream(ZoneTransfers owner, Zone zone, DnsHeader query, ReadOnlySpan<byte> qname, RecordType qtype, RecordClass qclass,
        bool edns, bool dnssecOk, ushort payloadSize, IMessageSigner? signer, ReadOnlySpan<byte> client)
    {
        _data = zone.Data;
        _soa = zone.Soa;
        _framing = new TransferFraming(owner, zone.Origin, zone.Serial, qtype == RecordType.IXFR ? "IXFR (whole zone)" : "AXFR",
            query, qname, qtype, qclass, edns, dnssecOk, payloadSize, signer, client);
    }

    /// <summary>Messages made so far.</summary>
    public long Messages => _framing.Messages;
    /// <summary>Records sent so far (the SOA twice).</summary>
    public long Records => _framing.Records;

    public int Next(Span<byte> buffer)
    {
        if (_phase == Phase.Done) return 0;
        var m = _framing.Begin(buffer);

        if (_phase == Phase.FirstSoa)
        {
            if (!WriteSet(_soa, ref m)) return _framing.Full(ref m);
            _phase = Phase.Body;
        }
        if (_phase == Phase.Body)
        {
            int nodes = _data.NodeCount;
            while (_node < nodes)
            {
                var sets = _data[_node].Sets;
                if (_set >= sets.Count)
                {
                    _node++;
                    _set = 0;
                    continue;
                }
                var set = sets[_set];
                // The apex SOA opens and closes the transfer and is not sent in between.
                if (!set.Equals(_soa) && !WriteSet(set, ref m)) return _framing.Full(ref m);
                _set++;
            }
            _phase = Phase.LastSoa;
        }
        if (!WriteSet(_soa, ref m)) return _framing.Full(ref m);
        _phase = Phase.Done;
        return _framing.Finish(ref m);
    }

    /// <summary>Writes the current RRset's records from <see cref="_record"/> on; false when the message filled first.</summary>
    private bool WriteSet(RecordSet set, ref TransferMessage m)
    {
        var owner = set.Owner;
        int node = set.Node.Index;
        var type = set.Type;
        bool compress = DnsMessageWriter.CompressesRdata(type);
        int skip = _record;
        foreach (var rdata in set.Rdata)
        {
            if (skip > 0)
            {
                skip--;
                continue;
            }
            if (!m.TryWriteRecord(owner, node, type, _data.Class, set.Ttl, rdata, compress, _framing.Origin))
                return false;
            _record++;
        }
        _record = 0;
        return true;
    }

    public void Dispose() => _framing.End(_phase == Phase.Done);
}

/// <summary>
/// What every outgoing transfer stream (<see cref="AxfrStream"/>, <see cref="IxfrStream"/>) shares:
/// the question, the header of each message, the OPT record and TSIG, the counts and the log line.
/// RFC 5936 §2.2: messages up to 65,535 octets, less <see cref="IMessageSigner.Reserve"/> and an OPT
/// record when the query had EDNS; the first carries the question (§2.2.1), the others none; every
/// message has the query's ID and opcode, AA set, RCODE 0.
/// </summary>
internal sealed class TransferFraming
{
    private const int OptSize = 11;     // root owner, TYPE, CLASS, TTL, RDLENGTH 0

    private readonly ZoneTransfers _owner;
    private readonly DnsName _zone;
    private readonly uint _serial;
    private readonly string _kind;
    private readonly byte[] _origin;
    private readonly byte[] _question;      // QNAME, QTYPE, QCLASS as the query had them
    private readonly bool _questionIsOrigin;
    private readonly ushort _id;
    private readonly ushort _flags;
    private readonly bool _edns;
    private readonly bool _dnssecOk;
    private readonly ushort _payloadSize;
    private readonly IMessageSigner? _signer;
    private readonly byte[] _client;
    private readonly long _started = Stopwatch.GetTimestamp();
    private long _messages, _records, _bytes;
    private bool _disposed;

    public TransferFraming(ZoneTransfers owner, DnsName zone, uint serial, string kind, DnsHeader query, ReadOnlySpan<byte> qname,
        RecordType qtype, RecordClass qclass, bool edns, bool dnssecOk, ushort payloadSize, IMessageSigner? signer, ReadOnlySpan<byte> client)
    {
        _owner = owner;
        _zone = zone;
        _serial = serial;
        _kind = kind;
        _origin = zone.Wire.ToArray();
        _question = new byte[qname.Length + 4];
        qname.CopyTo(_question);
        BinaryPrimitives.WriteUInt16BigEndian(_question.AsSpan(qname.Length), (ushort)qtype);
        BinaryPrimitives.WriteUInt16BigEndian(_question.AsSpan(qname.Length + 2), (ushort)qclass);
        // The question's name can serve as the origin's compression target only when it has the
        // zone's spelling too, or the owners pointing at it would change case.
        _questionIsOrigin = qname.SequenceEqual(_origin);
        _id = query.Id;
        var h = new DnsHeader
        {
            IsResponse = true,
            Opcode = query.Opcode,
            AuthoritativeAnswer = true,
            RecursionDesired = query.RecursionDesired,
            CheckingDisabled = query.CheckingDisabled,
        };
        _flags = h.Flags;
        _edns = edns;
        _dnssecOk = dnssecOk;
        _payloadSize = payloadSize;
        _signer = signer;
        _client = client.ToArray();
    }

    /// <summary>The zone's origin in wire form: the target names are compressed against.</summary>
    public ReadOnlySpan<byte> Origin => _origin;
    public long Messages => _messages;
    public long Records => _records;

    /// <summary>A new message in <paramref name="buffer"/>: room for the OPT and TSIG records kept, the question written in the first.</summary>
    public TransferMessage Begin(Span<byte> buffer)
    {
        int end = Math.Min(buffer.Length, 65535) - (_edns ? OptSize : 0) - (_signer?.Reserve ?? 0);
        var m = new TransferMessage(buffer, end);
        if (_messages == 0)
        {
            _question.CopyTo(buffer[DnsHeader.Size..]);
            m.Position += _question.Length;
            if (_questionIsOrigin) m.OriginOffset = DnsHeader.Size;
        }
        m.HeaderEnd = m.Position;
        return m;
    }

    /// <summary>The message is full: send it, unless not even one record fitted (a record larger than a message).</summary>
    public int Full(ref TransferMessage m)
    {
        if (m.Position == m.HeaderEnd)
            throw new InvalidOperationException($"a record of zone {_zone} does not fit in a 65,535-octet message");
        return Finish(ref m);
    }

    /// <summary>The header's fields, the OPT record and the signature: the message's length.</summary>
    public int Finish(ref TransferMessage m)
    {
        var buffer = m.Buffer;
        bool first = _messages == 0;
        BinaryPrimitives.WriteUInt16BigEndian(buffer, _id);
        BinaryPrimitives.WriteUInt16BigEndian(buffer[2..], _flags);
        BinaryPrimitives.WriteUInt16BigEndian(buffer[4..], (ushort)(first ? 1 : 0));
        BinaryPrimitives.WriteUInt16BigEndian(buffer[6..], (ushort)m.Count);
        BinaryPrimitives.WriteUInt32BigEndian(buffer[8..], 0);     // NSCOUNT, ARCOUNT
        int length = m.Position;
        if (_edns)
        {
            // RFC 6891 §6.1.2: our payload size, extended RCODE 0, version 0, DO echoed, no options.
            var opt = buffer[length..];
            opt[0] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(opt[1..], (ushort)RecordType.OPT);
            BinaryPrimitives.WriteUInt16BigEndian(opt[3..], _payloadSize);
            BinaryPrimitives.WriteUInt32BigEndian(opt[5..], _dnssecOk ? 0x8000u : 0u);
            BinaryPrimitives.WriteUInt16BigEndian(opt[9..], 0);
            BinaryPrimitives.WriteUInt16BigEndian(buffer[10..], 1);
            length += OptSize;
        }
        if (_signer is not null) length = _signer.Sign(buffer, length);
        _messages++;
        _records += m.Count;
        _bytes += length;
        return length;
    }

    /// <summary>Gives back the transfer's place and logs its line, once.</summary>
    public void End(bool completed)
    {
        if (_disposed) return;
        _disposed = true;
        _owner.End(new TransferStats(_kind, _zone.ToString(), _serial, _client, completed,
            _messages, _records, _bytes, Stopwatch.GetElapsedTime(_started)));
    }
}

/// <summary>
/// The message being written: position, room, and the two compression targets (RFC 1035 §4.1.4):
/// the zone's origin and the previous owner, so records of one owner after the first cost two
/// octets of owner. Names in RDATA are compressed only for the types RFC 3597 §4 allows.
/// </summary>
internal ref struct TransferMessage(Span<byte> buffer, int end)
{
    private const int MaxPointerOffset = 0x3FFF;

    public readonly Span<byte> Buffer = buffer;
    public readonly int End = end;
    public int Position = DnsHeader.Size;
    public int Count;
    /// <summary>Where the records begin (after the question, if any): nothing written yet when Position is here.</summary>
    public int HeaderEnd;
    /// <summary>Where the origin's labels are in this message, or -1 before it is written.</summary>
    public int OriginOffset = -1;
    /// <summary>The owner (a zone node, or any number a stream gives one spelling of an owner) whose name is at <see cref="OwnerOffset"/>, or -1.</summary>
    public int OwnerNode = -1;
    public int OwnerOffset = -1;

    public bool TryWriteRecord(ReadOnlySpan<byte> owner, int node, RecordType type, RecordClass @class, uint ttl,
        ReadOnlySpan<byte> rdata, bool compress, ReadOnlySpan<byte> origin)
    {
        int start = Position, originOffset = OriginOffset, ownerNode = OwnerNode, ownerOffset = OwnerOffset;
        if (TryWriteOwner(owner, node, origin) && Position + 10 <= End)
        {
            var fixedPart = Buffer[Position..];
            BinaryPrimitives.WriteUInt16BigEndian(fixedPart, (ushort)type);
            BinaryPrimitives.WriteUInt16BigEndian(fixedPart[2..], (ushort)@class);
            BinaryPrimitives.WriteUInt32BigEndian(fixedPart[4..], ttl);
            int rdlengthAt = Position + 8;
            Position += 10;
            if (TryWriteRdata(type, rdata, compress, origin))
            {
                BinaryPrimitives.WriteUInt16BigEndian(Buffer[rdlengthAt..], (ushort)(Position - rdlengthAt - 2));
                Count++;
                return true;
            }
        }
        // Did not fit: the message is as it was, compression targets included.
        Position = start;
        OriginOffset = originOffset;
        OwnerNode = ownerNode;
        OwnerOffset = ownerOffset;
        return false;
    }

    private bool TryWriteOwner(ReadOnlySpan<byte> owner, int node, ReadOnlySpan<byte> origin)
    {
        if (node == OwnerNode)
        {
            if (Position + 2 > End) return false;
            BinaryPrimitives.WriteUInt16BigEndian(Buffer[Position..], (ushort)(0xC000 | OwnerOffset));
            Position += 2;
            return true;
        }
        int at = Position;
        if (!TryWriteName(owner, origin)) return false;
        if (at <= MaxPointerOffset && Buffer[at] != 0xC0 && (Buffer[at] & 0xC0) == 0)
        {
            OwnerNode = node;
            OwnerOffset = at;
        }
        return true;
    }

    private bool TryWriteRdata(RecordType type, ReadOnlySpan<byte> rdata, bool compress, ReadOnlySpan<byte> origin)
    {
        if (!compress) return TryCopy(rdata);
        var fields = RdataSchema.Get(type)!;
        int pos = 0;
        foreach (var f in fields)
        {
            if (pos >= rdata.Length) break;
            if (!RdataWire.TryMeasureField(f, rdata[pos..], rdata[..pos], out int len, out _)) break;
            bool ok = f == RdataField.CompressibleName ? TryWriteName(rdata.Slice(pos, len), origin) : TryCopy(rdata.Slice(pos, len));
            if (!ok) return false;
            pos += len;
        }
        return TryCopy(rdata[pos..]);
    }

    /// <summary>
    /// Writes an uncompressed wire name: a name at or below the origin as its labels above the
    /// origin and a pointer to the origin (the origin itself written the first time); any
    /// other name as it is.
    /// </summary>
    private bool TryWriteName(ReadOnlySpan<byte> name, ReadOnlySpan<byte> origin)
    {
        int prefix = 0;
        while (name.Length - prefix > origin.Length) prefix += 1 + name[prefix];
        if (name.Length - prefix != origin.Length || !DnsName.EqualsIgnoreCase(name[prefix..], origin)) return TryCopy(name);
        if (OriginOffset >= 0)
        {
            if (Position + prefix + 2 > End) return false;
            name[..prefix].CopyTo(Buffer[Position..]);
            Position += prefix;
            BinaryPrimitives.WriteUInt16BigEndian(Buffer[Position..], (ushort)(0xC000 | OriginOffset));
            Position += 2;
            return true;
        }
        if (Position + name.Length > End) return false;
        name.CopyTo(Buffer[Position..]);
        if (Position + prefix <= MaxPointerOffset) OriginOffset = Position + prefix;
        Position += name.Length;
        return true;
    }

    private bool TryCopy(ReadOnlySpan<byte> bytes)
    {
        if (Position + bytes.Length > End) return false;
        bytes.CopyTo(Buffer[Position..]);
        Position += bytes.Length;
        return true;
    }
}
