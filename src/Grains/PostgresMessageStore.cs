using Npgsql;
using NpgsqlTypes;
using OrleansChat.Grains.Interfaces;

namespace OrleansChat.Grains;

/// <summary>
/// The durable message log in PostgreSQL: one row per message in <c>messages</c>, keyed by (room, seq), so
/// every history query is a range scan of the primary key. Connections come from one pooled
/// <see cref="NpgsqlDataSource"/>. A failure throws (the grain answers <c>Unavailable</c>); after an outage
/// no restart is needed: when a pooled connection turns out broken, Npgsql drops the idle ones and the
/// next request opens a fresh connection.
/// </summary>
public sealed class PostgresMessageStore(NpgsqlDataSource dataSource) : IMessageStore
{
    // The guard makes a write that does not continue the room's stored tail insert nothing: a stale
    // activation (or a retry of a write that did commit) fails instead of leaving a gap. The primary key
    // catches two writers racing for the same seqs. The uncorrelated sub-select runs once per statement.
    private const string AppendSql = """
        INSERT INTO messages (room, seq, sender, client_id, body, sent_at)
        SELECT $1, m.seq, m.sender, m.client_id, m.body, m.sent_at
        FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[], $7::timestamptz[]) AS m(seq, sender, client_id, body, sent_at)
        WHERE (SELECT coalesce(max(seq), 0) FROM messages WHERE room = $1) = $2 - 1
        """;

    private const string Columns = "seq, sender, client_id, body, sent_at";

    public async Task AppendAsync(string room, IReadOnlyList<ChatMessage> messages, CancellationToken cancellationToken = default)
    {
        if (messages.Count == 0)
        {
            return;
        }

        var seqs = new long[messages.Count];
        var senders = new string[messages.Count];
        var clientIds = new string[messages.Count];
        var bodies = new string[messages.Count];
        var times = new DateTime[messages.Count];
        for (var i = 0; i < messages.Count; i++)
        {
            var message = messages[i];
            if (message.Seq != messages[0].Seq + i)
            {
                throw new ArgumentException($"Room '{room}': seq {message.Seq} breaks the batch's sequence.", nameof(messages));
            }

            seqs[i] = message.Seq;
            senders[i] = message.User;
            clientIds[i] = message.ClientId;
            bodies[i] = message.Text;
            times[i] = DateTime.SpecifyKind(message.Time, DateTimeKind.Utc);
        }

        // One statement is one implicit transaction and one round trip: the whole batch or nothing.
        await using var command = dataSource.CreateCommand(AppendSql);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = room });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = seqs[0] });
        command.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = seqs });
        command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = senders });
        command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = clientIds });
        command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = bodies });
        command.Parameters.Add(new NpgsqlParameter<DateTime[]> { TypedValue = times, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz });
        var inserted = await command.ExecuteNonQueryAsync(cancellationToken);
        if (inserted != messages.Count)
        {
            throw new InvalidOperationException(
                $"Room '{room}': seq {seqs[0]} does not follow the stored tail; nothing was stored.");
        }
    }

    public Task<IReadOnlyList<ChatMessage>> ReadLatestAsync(string room, int limit, CancellationToken cancellationToken = default)
        => ReadAsync(room, $"SELECT {Columns} FROM messages WHERE room = $1 ORDER BY seq DESC LIMIT $2", null, limit, newestFirst: true, cancellationToken);

    public Task<IReadOnlyList<ChatMessage>> ReadBeforeAsync(string room, long beforeSeq, int limit, CancellationToken cancellationToken = default)
        => ReadAsync(room, $"SELECT {Columns} FROM messages WHERE room = $1 AND seq < $3 ORDER BY seq DESC LIMIT $2", beforeSeq, limit, newestFirst: true, cancellationToken);

    public Task<IReadOnlyList<ChatMessage>> ReadAfterAsync(string room, long afterSeq, int limit, CancellationToken cancellationToken = default)
        => ReadAsync(room, $"SELECT {Columns} FROM messages WHERE room = $1 AND seq > $3 ORDER BY seq LIMIT $2", afterSeq, limit, newestFirst: false, cancellationToken);

    public async Task<IReadOnlyList<ChatMessage>> FindByClientIdsAsync(string room, IReadOnlyCollection<DedupeKey> keys, DateTime since, CancellationToken cancellationToken = default)
    {
        if (keys.Count == 0)
        {
            return [];
        }

        await using var command = dataSource.CreateCommand($"""
            SELECT {Columns} FROM messages
            WHERE room = $1 AND sent_at >= $2
              AND (sender, client_id) IN (SELECT * FROM unnest($3::text[], $4::text[]))
            ORDER BY seq
            """);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = room });
        command.Parameters.Add(new NpgsqlParameter<DateTime> { TypedValue = DateTime.SpecifyKind(since, DateTimeKind.Utc), NpgsqlDbType = NpgsqlDbType.TimestampTz });
        command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = [.. keys.Select(key => key.User)] });
        command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = [.. keys.Select(key => key.ClientId)] });
        var messages = new List<ChatMessage>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            messages.Add(ReadMessage(room, reader));
        }

        return messages;
    }

    private static ChatMessage ReadMessage(string room, NpgsqlDataReader reader)
        => new(room, reader.GetInt64(0), reader.GetString(1), reader.GetString(3), reader.GetFieldValue<DateTime>(4), reader.GetString(2));

    private async Task<IReadOnlyList<ChatMessage>> ReadAsync(
        string room, string sql, long? bound, int limit, bool newestFirst, CancellationToken cancellationToken)
    {
        if (limit <= 0)
        {
            return [];
        }

        await using var command = dataSource.CreateCommand(sql);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = room });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = limit });
        if (bound is { } seq)
        {
            command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = seq });
        }

        var messages = new List<ChatMessage>(Math.Min(limit, 256));
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                messages.Add(ReadMessage(room, reader));
            }
        }

        if (newestFirst)
        {
            messages.Reverse();
        }

        return messages;
    }
}
