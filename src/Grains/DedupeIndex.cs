namespace OrleansChat.Grains;

/// <summary>A message's identity for dedupe: its sender and the id the sender chose.</summary>
public readonly record struct DedupeKey(string User, string ClientId);

/// <summary>Client ids of the room's recent messages: at least the last <c>minMessages</c> and at least
/// those younger than <c>minAge</c>, whichever keeps more.</summary>
internal sealed class DedupeIndex(int minMessages, TimeSpan minAge)
{
    private readonly Dictionary<DedupeKey, long> _seqByKey = [];
    private readonly Queue<(DedupeKey Key, long Seq, DateTime Time)> _order = new();

    public bool TryGetSeq(DedupeKey key, out long seq) => _seqByKey.TryGetValue(key, out seq);

    public void Add(DedupeKey key, long seq, DateTime time)
    {
        _seqByKey[key] = seq;
        _order.Enqueue((key, seq, time));
        var horizon = time - minAge;
        while (_order.Count > minMessages && _order.Peek().Time < horizon)
        {
            var (oldKey, oldSeq, _) = _order.Dequeue();
            // The same key may have been re-used later (not by a well-behaved client); keep the newer entry.
            if (_seqByKey.TryGetValue(oldKey, out var current) && current == oldSeq)
            {
                _seqByKey.Remove(oldKey);
            }
        }
    }
}
