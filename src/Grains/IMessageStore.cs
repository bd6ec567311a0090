using OrleansChat.Grains.Interfaces;

namespace OrleansChat.Grains;

/// <summary>Durable message log, one sequence per room: in memory (embedded mode, tests) or PostgreSQL.</summary>
public interface IMessageStore
{
    /// <summary>Appends messages with consecutive seqs in one atomic write. Throws when nothing was stored
    /// (or when the store cannot tell: the grain then re-reads the room's tail before its next write).</summary>
    Task AppendAsync(string room, IReadOnlyList<ChatMessage> messages, CancellationToken cancellationToken = default);

    /// <summary>The newest <paramref name="limit"/> messages, oldest first.</summary>
    Task<IReadOnlyList<ChatMessage>> ReadLatestAsync(string room, int limit, CancellationToken cancellationToken = default);

    /// <summary>The newest <paramref name="limit"/> messages with seq &lt; <paramref name="beforeSeq"/>, oldest first.</summary>
    Task<IReadOnlyList<ChatMessage>> ReadBeforeAsync(string room, long beforeSeq, int limit, CancellationToken cancellationToken = default);

    /// <summary>The oldest <paramref name="limit"/> messages with seq &gt; <paramref name="afterSeq"/>, oldest first.</summary>
    Task<IReadOnlyList<ChatMessage>> ReadAfterAsync(string room, long afterSeq, int limit, CancellationToken cancellationToken = default);

    /// <summary>Stored messages sent at or after <paramref name="since"/> whose (user, client id) is one of
    /// <paramref name="keys"/>: dedupe beyond what a room holds in memory.</summary>
    Task<IReadOnlyList<ChatMessage>> FindByClientIdsAsync(string room, IReadOnlyCollection<DedupeKey> keys, DateTime since, CancellationToken cancellationToken = default);
}
