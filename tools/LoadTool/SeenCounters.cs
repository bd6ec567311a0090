namespace OrleansChat.LoadTool;

internal enum Arrival
{
    InOrder,
    OutOfOrder,
    Duplicate,

    /// <summary>A counter so far ahead it cannot be one of ours.</summary>
    Implausible,
}

/// <summary>The counters one receiver has seen from one sender. Memory is one bit per counter between the lowest
/// counter not yet seen and the highest seen: in-order delivery keeps one word, and a message that never
/// arrives costs one bit per later message (a ring of words that grows on demand).</summary>
internal struct SeenCounters
{
    // 2^26 bits = 8 MB per sender: a gap that wide is not a chat benchmark any more.
    private const long MaxWords = 1 << 20;

    private ulong[]? _ring;
    private int _head;
    private int _used;

    // Every counter below _origin has been seen; a multiple of 64 (the first counter of _ring[_head]).
    private long _origin;
    private long _highestPlusOne;

    /// <summary>Distinct counters seen.</summary>
    public long Unique { get; private set; }

    public Arrival Add(long counter)
    {
        if (counter < _origin)
        {
            return Arrival.Duplicate;
        }

        var offset = counter - _origin;
        var word = offset >> 6;
        if (word >= MaxWords)
        {
            return Arrival.Implausible;
        }

        if (word >= _used)
        {
            Extend((int)word + 1);
        }

        var ring = _ring!;
        var mask = ring.Length - 1;
        ref var bits = ref ring[(_head + (int)word) & mask];
        var bit = 1UL << (int)(offset & 63);
        if ((bits & bit) != 0)
        {
            return Arrival.Duplicate;
        }

        bits |= bit;
        Unique++;
        var arrival = counter + 1 < _highestPlusOne ? Arrival.OutOfOrder : Arrival.InOrder;
        _highestPlusOne = Math.Max(_highestPlusOne, counter + 1);

        // Release words that are complete: everything below the new origin has been seen.
        while (_used > 0 && ring[_head] == ulong.MaxValue)
        {
            ring[_head] = 0;
            _head = (_head + 1) & mask;
            _used--;
            _origin += 64;
        }

        return arrival;
    }

    private void Extend(int words)
    {
        _ring ??= new ulong[4];
        if (words > _ring.Length)
        {
            var size = _ring.Length;
            while (size < words)
            {
                size *= 2;
            }

            var grown = new ulong[size];
            for (var i = 0; i < _used; i++)
            {
                grown[i] = _ring[(_head + i) & (_ring.Length - 1)];
            }

            _ring = grown;
            _head = 0;
        }

        // Words past _used are zero: released words are cleared, new ones start cleared.
        _used = words;
    }
}
