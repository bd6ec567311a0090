using Npgsql;

namespace OrleansChat.Grains;

/// <summary>Read state in PostgreSQL: one row per (user, room) in <c>read_state</c>. A write only ever raises the
/// stored seq (GREATEST), so a late or repeated write cannot lower it.</summary>
public sealed class PostgresReadStateStore(NpgsqlDataSource dataSource) : IReadStateStore
{
    public async Task<IReadOnlyDictionary<string, long>> LoadAsync(string user, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand("SELECT room, seq FROM read_state WHERE user_name = $1");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = user });
        var rooms = new Dictionary<string, long>(StringComparer.Ordinal);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            rooms[reader.GetString(0)] = reader.GetInt64(1);
        }

        return rooms;
    }

    public async Task RaiseAsync(string user, string room, long seq, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand("""
            INSERT INTO read_state (user_name, room, seq) VALUES ($1, $2, $3)
            ON CONFLICT (user_name, room) DO UPDATE SET seq = GREATEST(read_state.seq, EXCLUDED.seq)
            """);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = user });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = room });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = seq });
        await command.ExecuteNonQueryAsync(cancellationToken);
    }
}
