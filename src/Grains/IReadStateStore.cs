namespace OrleansChat.Grains;

/// <summary>Durable read state: one read seq per user and room, that only rises. In memory (embedded mode, tests)
/// or PostgreSQL, beside the messages.</summary>
public interface IReadStateStore
{
    /// <summary>Every room the user has a read seq in.</summary>
    Task<IReadOnlyDictionary<string, long>> LoadAsync(string user, CancellationToken cancellationToken = default);

    /// <summary>Stores <paramref name="seq"/> unless the stored value is already at least that high.</summary>
    Task RaiseAsync(string user, string room, long seq, CancellationToken cancellationToken = default);
}

/// <summary>Process-wide, like <see cref="InMemoryMessageStore"/>: a re-activated user grain finds what it stored.</summary>
public sealed class InMemoryReadStateStore : IReadStateStore
{
    private readonly Dictionary<(string User, string Room), long> _seqs = [];
    private readonly Lock _lock = new();

    public Task<IReadOnlyDictionary<string, long>> LoadAsync(string user, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            IReadOnlyDictionary<string, long> rooms = _seqs.Where(pair => pair.Key.User == user)
                .ToDictionary(pair => pair.Key.Room, pair => pair.Value, StringComparer.Ordinal);
            return Task.FromResult(rooms);
        }
    }

    public Task RaiseAsync(string user, string room, long seq, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            _seqs[(user, room)] = Math.Max(seq, _seqs.GetValueOrDefault((user, room)));
        }

        return Task.CompletedTask;
    }
}
