using System.Collections.Concurrent;

namespace OrleansChat.Grains.Tests;

/// <summary>The in-memory read state store, with a gate per user: a test holds a user grain's activation (its load)
/// to see what a room does meanwhile.</summary>
public sealed class GatedReadStateStore : IReadStateStore
{
    private readonly InMemoryReadStateStore _inner = new();
    private readonly ConcurrentDictionary<string, Task> _gates = new(StringComparer.Ordinal);

    /// <summary>Loads of <paramref name="user"/> wait for <paramref name="gate"/>.</summary>
    public void Hold(string user, Task gate) => _gates[user] = gate;

    public async Task<IReadOnlyDictionary<string, long>> LoadAsync(string user, CancellationToken cancellationToken = default)
    {
        if (_gates.TryGetValue(user, out var gate))
        {
            await gate;
        }

        return await _inner.LoadAsync(user, cancellationToken);
    }

    public Task RaiseAsync(string user, string room, long seq, CancellationToken cancellationToken = default)
        => _inner.RaiseAsync(user, room, seq, cancellationToken);
}
