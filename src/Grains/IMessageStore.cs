using OrleansChat.Grains.Interfaces;

namespace OrleansChat.Grains;

/// <summary>What an edit or a delete needs to know of its target: who wrote the event, what it is, and whether a
/// later deletion removed it.</summary>
public readonly record struct StoredTarget(long Seq, string User, ChatEventKind Kind, bool Deleted);

/// <summary>Durable event log (messages, edits, deletions), one sequence per room: in memory (embedded mode,
/// tests) or PostgreSQL.</summary>
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

    /// <summary>The stored events among <paramref name="seqs"/> (a seq not stored is left out), each with whether a
    /// stored deletion targets it: validation of edits and deletes beyond what a room holds in memory.</summary>
    Task<IReadOnlyList<StoredTarget>> ReadTargetsAsync(string room, IReadOnlyCollection<long> seqs, CancellationToken cancellationToken = default);
}
