namespace Portcullis.Server.Telemetry;

/// <summary>
/// A bounded queue of preallocated slots for many producers and one consumer (Dmitry Vyukov's
/// bounded MPMC queue, used here with a single consumer): each slot has a byte area of fixed size
/// and a <typeparamref name="TMeta"/> record. A producer claims a slot with one compare-and-swap
/// on the tail, fills it and publishes it by writing the slot's sequence number; the consumer reads
/// slots in order and frees each by moving its sequence one lap on. Claiming never blocks and never
/// allocates: a full ring says so and the caller drops (and counts) the item.
/// </summary>
public sealed class SlotRing<TMeta> where TMeta : struct
{
    readonly long[] _sequence;
    readonly TMeta[] _meta;
    readonly byte[] _data;
    readonly int _mask;
    long _tail;     // next position to claim (producers)
    long _head;     // next position to read (the consumer)

    public SlotRing(int capacity, int slotSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(capacity, 1 << 22);
        ArgumentOutOfRangeException.ThrowIfLessThan(slotSize, 0);
        Capacity = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)capacity);
        _mask = Capacity - 1;
        SlotSize = slotSize;
        _sequence = new long[Capacity];
        for (int i = 0; i < Capacity; i++) _sequence[i] = i;
        _meta = new TMeta[Capacity];
        _data = new byte[(long)Capacity * slotSize];
    }

    /// <summary>Slots (the capacity asked for, rounded up to a power of two).</summary>
    public int Capacity { get; }
    public int SlotSize { get; }
    /// <summary>Positions claimed so far (published or about to be).</summary>
    public long Tail => Volatile.Read(ref _tail);
    /// <summary>Positions the consumer has freed.</summary>
    public long Head => Volatile.Read(ref _head);

    /// <summary>Claims the next slot; false when the ring is full. Fill it, then <see cref="Publish"/>.</summary>
    public bool TryClaim(out int index, out long position)
    {
        long pos = Volatile.Read(ref _tail);
        while (true)
        {
            index = (int)(pos & _mask);
            long diff = Volatile.Read(ref _sequence[index]) - pos;
            if (diff == 0)
            {
                long seen = Interlocked.CompareExchange(ref _tail, pos + 1, pos);
                if (seen == pos) { position = pos; return true; }
                pos = seen;
            }
            else if (diff < 0)
            {
                position = 0;
                return false;   // the consumer has not freed this slot yet
            }
            else pos = Volatile.Read(ref _tail);
        }
    }

    public Span<byte> Slot(int index) => _data.AsSpan(index * SlotSize, SlotSize);
    public ref TMeta Meta(int index) => ref _meta[index];

    /// <summary>Makes a claimed and filled slot visible to the consumer.</summary>
    public void Publish(int index, long position) => Volatile.Write(ref _sequence[index], position + 1);

    /// <summary>The consumer's next slot, when it has been published.</summary>
    public bool TryPeek(out int index)
    {
        long pos = _head;
        index = (int)(pos & _mask);
        return Volatile.Read(ref _sequence[index]) == pos + 1;
    }

    /// <summary>The consumer is done with the slot <see cref="TryPeek"/> gave: it is free for producers again.</summary>
    public void Free(int index)
    {
        long pos = _head;
        Volatile.Write(ref _sequence[index], pos + Capacity);
        Volatile.Write(ref _head, pos + 1);
    }
}
