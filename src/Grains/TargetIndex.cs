using OrleansChat.Grains.Interfaces;

namespace OrleansChat.Grains;

/// <summary>
/// What edits and deletes need to know about the room's recent events, without the store: per seq, who wrote
/// it, its kind, and whether a deletion removed it. Bounded (oldest seqs leave first); a target it does not
/// hold is looked up in the store. An entry is authoritative: every stored event passes through
/// <see cref="Remember"/>, so a deletion stored after an entry was made always updates it.
/// </summary>
internal sealed class TargetIndex(int capacity)
{
    private readonly Dictionary<long, StoredTarget> _bySeq = [];
    private readonly Queue<long> _order = new();

    public bool TryGet(long seq, out StoredTarget target) => _bySeq.TryGetValue(seq, out target);

    public void Remember(ChatMessage stored)
    {
        Add(new StoredTarget(stored.Seq, stored.User, stored.Kind, Deleted: false));
        if (stored.Kind == ChatEventKind.Delete)
        {
            // A target older than what the index holds is remembered as deleted: that is all anyone asks of it.
            Add(_bySeq.TryGetValue(stored.Target, out var target)
                ? target with { Deleted = true }
                : new StoredTarget(stored.Target, "", ChatEventKind.Message, Deleted: true));
        }
    }

    /// <summary>Store answers for targets the index did not hold.</summary>
    public void Add(StoredTarget target)
    {
        if (_bySeq.TryAdd(target.Seq, target))
        {
            _order.Enqueue(target.Seq);
            while (_order.Count > capacity)
            {
                _bySeq.Remove(_order.Dequeue());
            }
        }
        else
        {
            _bySeq[target.Seq] = target;
        }
    }
}
