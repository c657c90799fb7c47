using Portcullis.Protocol.Messages;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.Tsig;
using Portcullis.Protocol.Wire;
using Portcullis.Server.Authoritative;
using Portcullis.Server.Replication;
using Portcullis.Transport;

namespace Portcullis.Server.Transfer;

/// <summary>
/// One outgoing incremental zone transfer (RFC 1995 §4), made one message at a time as the
/// transport pulls it, from the steps of the zone's journal between the client's serial and ours
/// (<see cref="ZoneJournal.DiffsFrom(uint, uint)"/>). The answer is: our (newest) SOA; then for
/// each step, oldest first, the step's old SOA, the records it deleted, its new SOA, the records it
/// added; then our SOA again, which ends the transfer.
/// <para>
/// The framing is an AXFR's (<see cref="TransferFraming"/>): messages up to 65,535 octets less the
/// TSIG and OPT room, the question in the first only, the query's ID and opcode, AA, RCODE 0, every
/// message signed when the request was (RFC 8945 §5.3.1), the transfer counted and logged in
/// <see cref="ZoneTransfers"/>. Names are compressed against the origin and the previous record's
/// owner (RFC 1035 §4.1.4). The steps are immutable (the journal publishes new arrays), so a
/// change appended during the transfer does not disturb it.
/// </para>
/// </summary>
public sealed class IxfrStream : IMessageStream
{
    private enum Phase : byte { FirstSoa, OldSoa, Deleted, NewSoa, Added, LastSoa, Done }

    private readonly TransferFraming _framing;
    private readonly IReadOnlyList<IxfrDiff> _steps;
    private readonly ResourceRecord _newest;

    private Phase _phase;
    private int _step;
    private int _index;
    // The previous record's owner and the number standing for it in the message's compression
    // state: records with the same owner spelling share the number, so the second costs 2 octets.
    private DnsName? _previousOwner;
    private int _ownerId;

    /// <param name="owner">The server's transfers: the place this transfer took there (<see cref="ZoneTransfers.TryBegin"/>) is given back on Dispose.</param>
    /// <param name="zone">The zone served: its origin and serial (the last step must end at that serial).</param>
    /// <param name="steps">The steps from the client's serial to the zone's, oldest first, at least one (<see cref="ZoneJournal.DiffsFrom(uint, uint)"/>).</param>
    /// <param name="query">The query's header (ID, opcode, RD and CD are copied).</param>
    /// <param name="qname">The question's name as the query spelt it (copied into the first message).</param>
    /// <param name="edns">The query had EDNS: each message gets an OPT record (RFC 6891 §7).</param>
    /// <param name="signer">TSIG for every message (RFC 8945 §5.3.1), or null.</param>
    /// <param name="client">The client's address (4 or 16 octets), for the log line.</param>
    /// <exception cref="ArgumentException">No steps, or they do not end at the zone's serial.</exception>
    public IxfrStream(ZoneTransfers owner, Zone zone, IReadOnlyList<IxfrDiff> steps, DnsHeader query, ReadOnlySpan<byte> qname,
        RecordClass qclass, bool edns, bool dnssecOk, ushort payloadSize, IMessageSigner? signer, ReadOnlySpan<byte> client)
    {
        if (steps.Count == 0) throw new ArgumentException("an incremental transfer needs at least one step (an up-to-date client gets the SOA alone)", nameof(steps));
        _newest = steps[^1].NewSoa;
        if (SerialNumber.Of(_newest) != zone.Serial)
            throw new ArgumentException($"the steps end at serial {SerialNumber.Of(_newest)}, not at the zone's {zone.Serial}", nameof(steps));
        _steps = steps;
        _framing = new TransferFraming(owner, zone.Origin, zone.Serial, "IXFR", query, qname, RecordType.IXFR, qclass,
            edns, dnssecOk, payloadSize, signer, client);
    }

    /// <summary>Messages made so far.</summary>
    public long Messages => _framing.Messages;
    /// <summary>Records sent so far (SOAs included).</summary>
    public long Records => _framing.Records;

    public int Next(Span<byte> buffer)
    {
        if (_phase == Phase.Done) return 0;
        var m = _framing.Begin(buffer);
        while (_phase != Phase.Done)
        {
            switch (_phase)
            {
                case Phase.FirstSoa:
                    if (!Write(_newest, ref m)) return _framing.Full(ref m);
                    _phase = Phase.OldSoa;
                    break;
                case Phase.OldSoa:
                    if (!Write(_steps[_step].OldSoa, ref m)) return _framing.Full(ref m);
                    _phase = Phase.Deleted;
                    break;
                case Phase.Deleted:
                    var deleted = _steps[_step].Deleted;
                    for (; _index < deleted.Count; _index++)
                        if (!Write(deleted[_index], ref m)) return _framing.Full(ref m);
                    _index = 0;
                    _phase = Phase.NewSoa;
                    break;
                case Phase.NewSoa:
                    if (!Write(_steps[_step].NewSoa, ref m)) return _framing.Full(ref m);
                    _phase = Phase.Added;
                    break;
                case Phase.Added:
                    var added = _steps[_step].Added;
                    for (; _index < added.Count; _index++)
                        if (!Write(added[_index], ref m)) return _framing.Full(ref m);
                    _index = 0;
                    _phase = ++_step < _steps.Count ? Phase.OldSoa : Phase.LastSoa;
                    break;
                case Phase.LastSoa:
                    if (!Write(_newest, ref m)) return _framing.Full(ref m);
                    _phase = Phase.Done;
                    break;
            }
        }
        return _framing.Finish(ref m);
    }

    /// <summary>One record into the message; false when it does not fit (the message is as it was).</summary>
    private bool Write(ResourceRecord r, ref TransferMessage m)
    {
        // Same spelling (octet for octet, so compression never changes an owner's case): same number.
        if (_previousOwner is null || !r.Owner.Wire.SequenceEqual(_previousOwner.Wire))
        {
            _previousOwner = r.Owner;
            _ownerId++;
        }
        return m.TryWriteRecord(r.Owner.Wire, _ownerId, r.Type, r.Class, r.Ttl, r.Data, DnsMessageWriter.CompressesRdata(r.Type), _framing.Origin);
    }

    public void Dispose() => _framing.End(_phase == Phase.Done);
}
