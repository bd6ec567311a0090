using System.Collections.Concurrent;
using OrleansChat.Grains.Interfaces;

namespace OrleansChat.Grains.Tests;

/// <summary>What the next appends to a room do.</summary>
public enum AppendFault
{
    None,

    /// <summary>Nothing is stored and the write throws (the database is down).</summary>
    Throw,

    /// <summary>The write is stored, then throws (the commit reply was lost): the caller cannot tell.</summary>
    CommitThenThrow,
}

/// <summary>Test seam around the shared durable store: per room it can fail writes, hold writes in flight,
/// and count reads, so tests can tell what the grain asked the store for.</summary>
public sealed class FaultInjectingStore(IMessageStore inner) : IMessageStore
{
    private readonly ConcurrentDictionary<string, RoomFaults> _rooms = new(StringComparer.Ordinal);

    public IMessageStore Inner => inner;

    public RoomFaults For(string room) => _rooms.GetOrAdd(room, _ => new RoomFaults());

    public async Task AppendAsync(string room, IReadOnlyList<ChatMessage> messages, CancellationToken cancellationToken = default)
    {
        var faults = For(room);
        faults.CountAppend();
        if (faults.Gate is { } gate)
        {
            await gate.Task;
        }

        switch (faults.Append)
        {
            case AppendFault.Throw:
                throw new InvalidOperationException("injected: store unavailable");
            case AppendFault.CommitThenThrow:
                await inner.AppendAsync(room, messages, cancellationToken);
                throw new TimeoutException("injected: commit reply lost");
            default:
                await inner.AppendAsync(room, messages, cancellationToken);
                break;
        }
    }

    public Task<IReadOnlyList<ChatMessage>> ReadLatestAsync(string room, int limit, CancellationToken cancellationToken = default)
    {
        For(room).CountRead();
        return inner.ReadLatestAsync(room, limit, cancellationToken);
    }

    public Task<IReadOnlyList<ChatMessage>> ReadBeforeAsync(string room, long beforeSeq, int limit, CancellationToken cancellationToken = default)
    {
        For(room).CountRead();
        return inner.ReadBeforeAsync(room, beforeSeq, limit, cancellationToken);
    }

    public Task<IReadOnlyList<ChatMessage>> ReadAfterAsync(string room, long afterSeq, int limit, CancellationToken cancellationToken = default)
    {
        For(room).CountRead();
        return inner.ReadAfterAsync(room, afterSeq, limit, cancellationToken);
    }

    public Task<IReadOnlyList<ChatMessage>> FindByClientIdsAsync(string room, IReadOnlyCollection<DedupeKey> keys, DateTime since, CancellationToken cancellationToken = default)
    {
        For(room).CountRead();
        return inner.FindByClientIdsAsync(room, keys, since, cancellationToken);
    }

    public Task<IReadOnlyList<StoredTarget>> ReadTargetsAsync(string room, IReadOnlyCollection<long> seqs, CancellationToken cancellationToken = default)
    {
        For(room).CountRead();
        return inner.ReadTargetsAsync(room, seqs, cancellationToken);
    }

    /// <summary>Everything stored for a room, oldest first (reads the inner store, not counted).</summary>
    public async Task<IReadOnlyList<ChatMessage>> AllAsync(string room)
        => await inner.ReadAfterAsync(room, 0, int.MaxValue);
}

public sealed class RoomFaults
{
    private int _reads;
    private int _appends;

    public volatile AppendFault Append;

    /// <summary>When set, appends wait for it: the write stays in flight until the test completes it.</summary>
    public volatile TaskCompletionSource? Gate;

    public int Reads => Volatile.Read(ref _reads);

    /// <summary>Append calls started (including those held by <see cref="Gate"/> or failed).</summary>
    public int Appends => Volatile.Read(ref _appends);

    /// <summary>When set, reads throw (the database is down for reads too).</summary>
    public volatile bool FailReads;

    public void CountRead()
    {
        Interlocked.Increment(ref _reads);
        if (FailReads)
        {
            throw new InvalidOperationException("injected: store unavailable for reads");
        }
    }

    public void CountAppend() => Interlocked.Increment(ref _appends);
}
