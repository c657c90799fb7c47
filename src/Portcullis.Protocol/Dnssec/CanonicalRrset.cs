using System.Buffers;
using System.Buffers.Binary;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;

namespace Portcullis.Protocol.Dnssec;

/// <summary>
/// The octets an RRSIG signs (RFC 4034 §3.1.8.1): the RRSIG RDATA without its signature (signer's
/// name lowered) followed by the RRset in canonical form (§6.2) and canonical order (§6.3):
/// <code>
/// signature = sign(RRSIG_RDATA | RR(1) | RR(2) | ...)
/// RR(i) = owner | type | class | Original TTL | RDATA length | RDATA
/// </code>
/// Used by verification, and by signing later. Scratch space comes from the array pool: a
/// validator calling this per answer allocates nothing in the steady state.
/// </summary>
public static class CanonicalRrset
{
    /// <summary>
    /// The owner as it was signed, lowered (RFC 4034 §6.2 item 2). When the RRSIG's labels field is
    /// smaller than the owner's label count the RRset was synthesised from a wildcard, and the
    /// signed owner is "*." plus the rightmost <paramref name="labels"/> labels (RFC 4035 §5.3.2).
    /// Returns the length written to <paramref name="destination"/> (at least 255 octets), or -1
    /// when <paramref name="labels"/> exceeds the owner's labels.
    /// </summary>
    public static int WriteSignedOwner(DnsName owner, int labels, Span<byte> destination)
    {
        if (labels > owner.LabelCount) return -1;
        ReadOnlySpan<byte> wire = owner.Wire;
        int written;
        if (labels < owner.LabelCount)
        {
            int pos = 0;
            for (int i = 0; i < owner.LabelCount - labels; i++) pos += 1 + wire[pos];
            destination[0] = 1;
            destination[1] = (byte)'*';
            wire[pos..].CopyTo(destination[2..]);
            written = 2 + wire.Length - pos;
        }
        else
        {
            wire.CopyTo(destination);
            written = wire.Length;
        }
        DnsName.LowerLabels(destination[..written]);
        return written;
    }

    /// <summary>
    /// The size of the signed data for <paramref name="rrset"/> under the RRSIG whose RDATA (the
    /// signature may be absent) is <paramref name="rrsigRdata"/>; -1 when the RRSIG cannot be read,
    /// the RRset is empty or its owner has fewer labels than the RRSIG says. An upper bound when the
    /// RRset holds duplicates (they are written once).
    /// </summary>
    public static int Measure(ReadOnlySpan<byte> rrsigRdata, IReadOnlyList<ResourceRecord> rrset)
    {
        if (!Rrsig.TryRead(rrsigRdata, out var rrsig) || rrset.Count == 0) return -1;
        var owner = rrset[0].Owner;
        if (rrsig.Labels > owner.LabelCount) return -1;
        int ownerLength = rrsig.Labels < owner.LabelCount ? SignedOwnerLength(owner, rrsig.Labels) : owner.WireLength;
        long total = rrsig.SignedFields.Length;
        for (int i = 0; i < rrset.Count; i++) total += ownerLength + 10 + rrset[i].Data.Length;
        return total > int.MaxValue / 2 ? -1 : (int)total;
    }

    private static int SignedOwnerLength(DnsName owner, int labels)
    {
        ReadOnlySpan<byte> wire = owner.Wire;
        int pos = 0;
        for (int i = 0; i < owner.LabelCount - labels; i++) pos += 1 + wire[pos];
        return 2 + wire.Length - pos;
    }

    /// <summary>
    /// Writes the signed data into <paramref name="destination"/> (sized with <see cref="Measure"/>).
    /// The records' own TTLs are ignored: the RRSIG's original TTL is used (RFC 4035 §5.3.2). Owner,
    /// type and class are taken from the first record; the caller has checked that all agree.
    /// </summary>
    public static bool TryWrite(ReadOnlySpan<byte> rrsigRdata, IReadOnlyList<ResourceRecord> rrset, Span<byte> destination, out int written)
    {
        written = 0;
        int size = Measure(rrsigRdata, rrset);
        if (size < 0 || destination.Length < size) return false;
        Rrsig.TryRead(rrsigRdata, out var rrsig);

        // RRSIG RDATA without the signature, signer's name lowered (RFC 4034 §3.1.8.1, §6.2 item 3;
        // RFC 6840 §5.1 keeps RRSIG on the list of types whose names are lowered).
        var fields = rrsig.SignedFields;
        fields.CopyTo(destination);
        DnsName.LowerLabels(destination[Rrsig.FixedLength..fields.Length]);
        int pos = fields.Length;

        Span<byte> owner = stackalloc byte[DnsName.MaxLength + 2];
        int ownerLength = WriteSignedOwner(rrset[0].Owner, rrsig.Labels, owner);
        owner = owner[..ownerLength];
        Span<byte> fixedPart = stackalloc byte[10];
        var type = rrset[0].Type;
        BinaryPrimitives.WriteUInt16BigEndian(fixedPart, (ushort)type);
        BinaryPrimitives.WriteUInt16BigEndian(fixedPart[2..], (ushort)rrset[0].Class);
        BinaryPrimitives.WriteUInt32BigEndian(fixedPart[4..], rrsig.OriginalTtl);

        // Canonical RDATA of every record in one pooled buffer, then the records' order sorted by it.
        int n = rrset.Count;
        int rdataTotal = 0;
        for (int i = 0; i < n; i++) rdataTotal += rrset[i].Data.Length;
        byte[] scratch = ArrayPool<byte>.Shared.Rent(Math.Max(rdataTotal, 1));
        int[] slots = ArrayPool<int>.Shared.Rent(n * 3);
        try
        {
            bool lower = RdataSchema.LowersNamesInCanonicalForm(type);
            int at = 0;
            for (int i = 0; i < n; i++)
            {
                var data = rrset[i].Data;
                data.CopyTo(scratch, at);
                if (lower) RdataWire.ForEachName(type, scratch.AsSpan(at, data.Length), static span => DnsName.LowerLabels(span));
                slots[n + i] = at;          // offsets
                slots[2 * n + i] = data.Length;   // lengths
                slots[i] = i;               // order
                at += data.Length;
            }
            var comparer = new RdataOrder(scratch, slots, n);
            slots.AsSpan(0, n).Sort(comparer);

            for (int k = 0; k < n; k++)
            {
                int i = slots[k];
                var rdata = scratch.AsSpan(slots[n + i], slots[2 * n + i]);
                // RFC 4034 §6.3: an RRset holds no duplicates; equal canonical RDATA is signed once.
                if (k > 0 && comparer.Compare(slots[k - 1], i) == 0) continue;
                owner.CopyTo(destination[pos..]);
                pos += owner.Length;
                BinaryPrimitives.WriteUInt16BigEndian(fixedPart[8..], (ushort)rdata.Length);
                fixedPart.CopyTo(destination[pos..]);
                pos += 10;
                rdata.CopyTo(destination[pos..]);
                pos += rdata.Length;
            }
        }
        finally
        {
            ArrayPool<int>.Shared.Return(slots);
            ArrayPool<byte>.Shared.Return(scratch);
        }
        written = pos;
        return true;
    }

    /// <summary>The signed data as a new array (tools, tests, the signer); null when the inputs cannot be read.</summary>
    public static byte[]? ToArray(ReadOnlySpan<byte> rrsigRdata, IReadOnlyList<ResourceRecord> rrset)
    {
        int size = Measure(rrsigRdata, rrset);
        if (size < 0) return null;
        var buffer = new byte[size];
        return TryWrite(rrsigRdata, rrset, buffer, out int written) ? buffer[..written] : null;
    }

    /// <summary>
    /// Canonical RR order inside an RRset (RFC 4034 §6.3): RDATA as left-justified unsigned octet
    /// strings, a missing octet sorting before a zero octet — exactly a span's SequenceCompareTo.
    /// A struct so that sorting needs no delegate or closure.
    /// </summary>
    private readonly struct RdataOrder(byte[] scratch, int[] slots, int n) : IComparer<int>
    {
        public int Compare(int x, int y) =>
            scratch.AsSpan(slots[n + x], slots[2 * n + x]).SequenceCompareTo(scratch.AsSpan(slots[n + y], slots[2 * n + y]));
    }
}
