using OrleansChat.Grains.Interfaces;

namespace OrleansChat.Grains;

/// <summary>Process-wide in-memory store for embedded mode and tests. It outlives grain activations
/// (it is a singleton of the silo host), so a re-activated room reloads what it stored.</summary>
public sealed class InMemoryMessageStore : IMessageStore
{
    private readonly Dictionary<string, List<ChatMessage>> _rooms = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    public Task AppendAsync(string room, IReadOnlyList<ChatMessage> messages, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            if (!_rooms.TryGetValue(room, out var log))
            {
                _rooms[room] = log = [];
            }

            var next = log.Count == 0 ? 1 : log[^1].Seq + 1;
            foreach (var message in messages)
            {
                if (message.Seq != next++)
                {
                    throw new InvalidOperationException($"Room '{room}': seq {message.Seq} breaks the sequence (expected {next - 1}).");
                }
            }

            log.AddRange(messages);
        }

        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<ChatMessage>> ReadLatestAsync(string room, int limit, CancellationToken cancellationToken = default)
        => Read(room, log => Slice(log, Math.Max(0, log.Count - limit), limit));

    public Task<IReadOnlyList<ChatMessage>> ReadBeforeAsync(string room, long beforeSeq, int limit, CancellationToken cancellationToken = default)
        => Read(room, log =>
        {
            // Seqs are 1..Count at indexes 0..Count-1.
            var end = (int)Math.Clamp(beforeSeq - 1, 0, log.Count);
            var start = Math.Max(0, end - limit);
            return Slice(log, start, end - start);
        });

    public Task<IReadOnlyList<ChatMessage>> ReadAfterAsync(string room, long afterSeq, int limit, CancellationToken cancellationToken = default)
        => Read(room, log => Slice(log, (int)Math.Clamp(afterSeq, 0, log.Count), limit));

    public Task<IReadOnlyList<ChatMessage>> FindByClientIdsAsync(string room, IReadOnlyCollection<DedupeKey> keys, DateTime since, CancellationToken cancellationToken = default)
        => Read(room, log =>
        {
            var wanted = keys.ToHashSet();
            var found = new List<ChatMessage>();
            for (var i = log.Count - 1; i >= 0 && log[i].Time >= since; i--)
            {
                if (wanted.Contains(new DedupeKey(log[i].User, log[i].ClientId)))
                {
                    found.Add(log[i]);
                }
            }

            found.Reverse();
            return [.. found];
        });

    public Task<IReadOnlyList<StoredTarget>> ReadTargetsAsync(string room, IReadOnlyCollection<long> seqs, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            if (!_rooms.TryGetValue(room, out var log))
            {
                return Task.FromResult<IReadOnlyList<StoredTarget>>([]);
            }

            var targets = new List<StoredTarget>();
            foreach (var seq in seqs.Where(seq => seq >= 1 && seq <= log.Count))
            {
                var stored = log[(int)seq - 1];
                var deleted = log.Skip((int)seq).Any(later => later.Kind == ChatEventKind.Delete && later.Target == seq);
                targets.Add(new StoredTarget(seq, stored.User, stored.Kind, deleted));
            }

            return Task.FromResult<IReadOnlyList<StoredTarget>>(targets);
        }
    }

    private Task<IReadOnlyList<ChatMessage>> Read(string room, Func<List<ChatMessage>, ChatMessage[]> read)
    {
        lock (_lock)
        {
            IReadOnlyList<ChatMessage> result = _rooms.TryGetValue(room, out var log) ? read(log) : [];
            return Task.FromResult(result);
        }
    }

    private static ChatMessage[] Slice(List<ChatMessage> log, int start, int count)
        => log.GetRange(start, Math.Min(count, log.Count - start)).ToArray();
}
