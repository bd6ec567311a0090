using System.Collections.Immutable;
using OrleansChat.Grains.Interfaces;

namespace OrleansChat.Grains;

/// <summary>The room's newest messages, contiguous in seq, bounded. Answers history without the store
/// when it covers the request.</summary>
internal sealed class RecentMessages(int capacity)
{
    private readonly List<ChatMessage> _items = [];

    private long FirstSeq => _items.Count == 0 ? long.MaxValue : _items[0].Seq;

    public void Add(ChatMessage message)
    {
        if (_items.Count > 0 && message.Seq != _items[^1].Seq + 1)
        {
            _items.Clear();
        }

        _items.Add(message);
        // Trim in chunks so the copy is amortised over many adds.
        if (_items.Count >= capacity * 2)
        {
            _items.RemoveRange(0, _items.Count - capacity);
        }
    }

    /// <summary>True when every message with seq in (after, roomSeq] is held.</summary>
    public bool CoversAfter(long after, long roomSeq) => after >= roomSeq || FirstSeq <= after + 1;

    public bool CoversLatest(int limit, long roomSeq) => roomSeq == 0 || _items.Count >= limit || FirstSeq == 1;

    public bool CoversBefore(long before, int limit) => FirstSeq == 1 || FirstSeq <= before - limit;

    public ImmutableArray<ChatMessage> Latest(int limit) => Range(_items.Count - limit, limit);

    public ImmutableArray<ChatMessage> After(long after, int limit)
        => _items.Count == 0 ? [] : Range((int)Math.Clamp(after + 1 - FirstSeq, 0, _items.Count), limit);

    public ImmutableArray<ChatMessage> Before(long before, int limit)
    {
        if (_items.Count == 0)
        {
            return [];
        }

        var end = (int)Math.Clamp(before - FirstSeq, 0, _items.Count);
        return Range(end - limit, limit);
    }

    private ImmutableArray<ChatMessage> Range(int start, int count)
    {
        if (start < 0)
        {
            count += start;
            start = 0;
        }

        count = Math.Min(count, _items.Count - start);
        return count <= 0 ? [] : [.. _items.GetRange(start, count)];
    }
}
