using Npgsql;
using System.Threading.Channels;
using NpgsqlTypes;
using OrleansChat.Grains.Interfaces;

namespace OrleansChat.Grains;

/// <summary>
/// The durable message log in PostgreSQL: one row per message in <c>messages</c>, keyed by (room, seq), so
/// every history query is a range scan of the primary key. Connections come from one pooled
/// <see cref="NpgsqlDataSource"/>. A failure throws (the grain answers <c>Unavailable</c>); after an outage
/// no restart is needed: when a pooled connection turns out broken, Npgsql drops the idle ones and the
/// next request opens a fresh connection.
/// <para>
/// Appends are grouped across rooms: every room grain of the silo hands its batch to a few writers, and a
/// writer puts whatever is waiting into one statement (one transaction, one WAL flush). A hundred quiet
/// rooms posting at once cost a few commits instead of a hundred, on a few connections instead of a
/// hundred backends. Each room still gets all of its batch or none of it.
/// </para>
/// </summary>
public sealed class PostgresMessageStore : IMessageStore, IDisposable
{
    /// <summary>Statements in flight at once: while one commits, the next batch is already on its way.</summary>
    private const int Writers = 1;

    /// <summary>Most rows in one statement (a single room brings at most its own group-commit batch).</summary>
    private const int MaxRowsPerStatement = 2048;

    // The guard makes a room's rows insert nothing unless they continue that room's stored tail: a stale
    // activation (or a retry of a write that did commit) fails instead of leaving a gap. The primary key
    // catches two writers racing for the same seqs (and fails the whole statement). The guard runs once
    // per room of the statement, not once per row.
    private const string AppendSql = """
        WITH batch AS (
            SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::smallint[], $8::bigint[])
                AS m(room, seq, sender, client_id, body, sent_at, kind, target)),
        continuing AS (
            SELECT b.room FROM (SELECT room, min(seq) AS first FROM batch GROUP BY room) AS b
            WHERE (SELECT coalesce(max(seq), 0) FROM messages WHERE room = b.room) = b.first - 1)
        INSERT INTO messages (room, seq, sender, client_id, body, sent_at, kind, target)
        SELECT batch.room, batch.seq, batch.sender, batch.client_id, batch.body, batch.sent_at, batch.kind, nullif(batch.target, 0)
        FROM batch JOIN continuing ON continuing.room = batch.room
        RETURNING room
        """;

    private const string Columns = "seq, sender, client_id, body, sent_at, kind, coalesce(target, 0)";

    private readonly NpgsqlDataSource _dataSource;
    private readonly Channel<PendingAppend> _appends = Channel.CreateUnbounded<PendingAppend>(new UnboundedChannelOptions { SingleReader = false });
    private readonly Lazy<Task[]> _writers;

    public PostgresMessageStore(NpgsqlDataSource dataSource)
    {
        _dataSource = dataSource;
        _writers = new Lazy<Task[]>(() => [.. Enumerable.Range(0, Writers).Select(_ => Task.Run(WriteLoopAsync))]);
    }

    public Task AppendAsync(string room, IReadOnlyList<ChatMessage> messages, CancellationToken cancellationToken = default)
    {
        if (messages.Count == 0)
        {
            return Task.CompletedTask;
        }

        for (var i = 1; i < messages.Count; i++)
        {
            if (messages[i].Seq != messages[0].Seq + i)
            {
                throw new ArgumentException($"Room '{room}': seq {messages[i].Seq} breaks the batch's sequence.", nameof(messages));
            }
        }

        var append = new PendingAppend(room, messages);
        if (!_appends.Writer.TryWrite(append))
        {
            throw new ObjectDisposedException(nameof(PostgresMessageStore));
        }

        _ = _writers.Value;
        return append.Stored.Task.WaitAsync(cancellationToken);
    }

    public void Dispose() => _appends.Writer.TryComplete();

    /// <summary>Takes whatever appends are waiting (up to a statement's worth) and writes them together.</summary>
    private async Task WriteLoopAsync()
    {
        var reader = _appends.Reader;
        var batch = new List<PendingAppend>();
        while (await reader.WaitToReadAsync())
        {
            var rows = 0;
            while (rows < MaxRowsPerStatement && reader.TryRead(out var append))
            {
                batch.Add(append);
                rows += append.Messages.Count;
            }

            if (batch.Count == 0)
            {
                continue;
            }

            try
            {
                await WriteAsync(batch);
            }
            catch (Exception) when (batch.Count > 1)
            {
                // The statement failed as a whole (nothing of it committed, or the commit's fate is unknown:
                // the guard then refuses a repeat). One room's fault (a stale activation racing a new one, a
                // text PostgreSQL refuses) must not fail the others: write each room on its own.
                foreach (var append in batch)
                {
                    await WriteOrFailAsync([append]);
                }
            }
            catch (Exception ex)
            {
                batch[0].Stored.TrySetException(ex);
            }

            batch.Clear();
        }
    }

    private async Task WriteOrFailAsync(List<PendingAppend> appends)
    {
        try
        {
            await WriteAsync(appends);
        }
        catch (Exception ex)
        {
            foreach (var append in appends)
            {
                append.Stored.TrySetException(ex);
            }
        }
    }

    /// <summary>One statement for every append of the batch; each append completes (or fails, when its room's
    /// rows did not continue the stored tail) once the statement committed.</summary>
    private async Task WriteAsync(List<PendingAppend> appends)
    {
        var count = appends.Sum(append => append.Messages.Count);
        var rooms = new string[count];
        var seqs = new long[count];
        var senders = new string[count];
        var clientIds = new string[count];
        var bodies = new string[count];
        var times = new DateTime[count];
        var kinds = new short[count];
        var targets = new long[count];
        var row = 0;
        foreach (var append in appends)
        {
            foreach (var message in append.Messages)
            {
                rooms[row] = append.Room;
                seqs[row] = message.Seq;
                senders[row] = message.User;
                clientIds[row] = message.ClientId;
                bodies[row] = message.Text;
                times[row] = DateTime.SpecifyKind(message.Time, DateTimeKind.Utc);
                kinds[row] = (short)message.Kind;
                targets[row] = message.Target;
                row++;
            }
        }

        // One statement is one implicit transaction and one round trip: all of it or nothing.
        var inserted = new Dictionary<string, int>(appends.Count, StringComparer.Ordinal);
        await using (var command = _dataSource.CreateCommand(AppendSql))
        {
            command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = rooms });
            command.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = seqs });
            command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = senders });
            command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = clientIds });
            command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = bodies });
            command.Parameters.Add(new NpgsqlParameter<DateTime[]> { TypedValue = times, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz });
            command.Parameters.Add(new NpgsqlParameter<short[]> { TypedValue = kinds });
            command.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = targets });
            ChatDiagnostics.StatementWritten(count);
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                var room = reader.GetString(0);
                inserted[room] = inserted.GetValueOrDefault(room) + 1;
            }
        }

        foreach (var append in appends)
        {
            if (inserted.GetValueOrDefault(append.Room) == append.Messages.Count)
            {
                append.Stored.TrySetResult();
            }
            else
            {
                append.Stored.TrySetException(new InvalidOperationException(
                    $"Room '{append.Room}': seq {append.Messages[0].Seq} does not follow the stored tail; nothing was stored."));
            }
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

        await using var command = _dataSource.CreateCommand($"""
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

    public async Task<IReadOnlyList<StoredTarget>> ReadTargetsAsync(string room, IReadOnlyCollection<long> seqs, CancellationToken cancellationToken = default)
    {
        if (seqs.Count == 0)
        {
            return [];
        }

        // Both lookups are index scans: the primary key for the targets, messages_targets for their deletions.
        await using var command = _dataSource.CreateCommand("""
            SELECT m.seq, m.sender, m.kind,
                   EXISTS (SELECT 1 FROM messages d WHERE d.room = m.room AND d.target = m.seq AND d.kind = 2)
            FROM messages m
            WHERE m.room = $1 AND m.seq = ANY($2)
            """);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = room });
        command.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = [.. seqs] });
        var targets = new List<StoredTarget>(seqs.Count);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            targets.Add(new StoredTarget(reader.GetInt64(0), reader.GetString(1), (ChatEventKind)reader.GetInt16(2), reader.GetBoolean(3)));
        }

        return targets;
    }

    private sealed class PendingAppend(string room, IReadOnlyList<ChatMessage> messages)
    {
        public string Room { get; } = room;

        public IReadOnlyList<ChatMessage> Messages { get; } = messages;

        public TaskCompletionSource Stored { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private static ChatMessage ReadMessage(string room, NpgsqlDataReader reader)
        => new(room, reader.GetInt64(0), reader.GetString(1), reader.GetString(3), reader.GetFieldValue<DateTime>(4), reader.GetString(2),
            (ChatEventKind)reader.GetInt16(5), reader.GetInt64(6));

    private async Task<IReadOnlyList<ChatMessage>> ReadAsync(
        string room, string sql, long? bound, int limit, bool newestFirst, CancellationToken cancellationToken)
    {
        if (limit <= 0)
        {
            return [];
        }

        await using var command = _dataSource.CreateCommand(sql);
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
