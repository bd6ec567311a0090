using Npgsql;
using NpgsqlTypes;

namespace OrleansChat.Grains;

/// <summary>Bans per room and user, until a time: a ban outlives the room's activation and a cluster restart (with
/// PostgreSQL). In memory (embedded mode, tests) or PostgreSQL.</summary>
public interface IBanStore
{
    /// <summary>The room's bans that have not ended at <paramref name="now"/>, by user.</summary>
    Task<IReadOnlyDictionary<string, DateTime>> LoadAsync(string room, DateTime now, CancellationToken cancellationToken = default);

    /// <summary>Bans <paramref name="user"/> from <paramref name="room"/> until <paramref name="until"/> (replacing an earlier ban).</summary>
    Task BanAsync(string room, string user, DateTime until, CancellationToken cancellationToken = default);
}

public sealed class InMemoryBanStore : IBanStore
{
    private readonly Dictionary<(string Room, string User), DateTime> _bans = [];
    private readonly Lock _lock = new();

    public Task<IReadOnlyDictionary<string, DateTime>> LoadAsync(string room, DateTime now, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            IReadOnlyDictionary<string, DateTime> bans = _bans.Where(ban => ban.Key.Room == room && ban.Value > now)
                .ToDictionary(ban => ban.Key.User, ban => ban.Value, StringComparer.Ordinal);
            return Task.FromResult(bans);
        }
    }

    public Task BanAsync(string room, string user, DateTime until, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            _bans[(room, user)] = until;
        }

        return Task.CompletedTask;
    }
}

/// <summary>Table <c>bans</c>, one row per (room, user).</summary>
public sealed class PostgresBanStore(NpgsqlDataSource dataSource) : IBanStore
{
    public async Task<IReadOnlyDictionary<string, DateTime>> LoadAsync(string room, DateTime now, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand("SELECT user_name, until FROM bans WHERE room = $1 AND until > $2");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = room });
        command.Parameters.Add(new NpgsqlParameter<DateTime> { TypedValue = DateTime.SpecifyKind(now, DateTimeKind.Utc), NpgsqlDbType = NpgsqlDbType.TimestampTz });
        var bans = new Dictionary<string, DateTime>(StringComparer.Ordinal);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            bans[reader.GetString(0)] = reader.GetFieldValue<DateTime>(1);
        }

        return bans;
    }

    public async Task BanAsync(string room, string user, DateTime until, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand("""
            INSERT INTO bans (room, user_name, until) VALUES ($1, $2, $3)
            ON CONFLICT (room, user_name) DO UPDATE SET until = EXCLUDED.until
            """);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = room });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = user });
        command.Parameters.Add(new NpgsqlParameter<DateTime> { TypedValue = DateTime.SpecifyKind(until, DateTimeKind.Utc), NpgsqlDbType = NpgsqlDbType.TimestampTz });
        await command.ExecuteNonQueryAsync(cancellationToken);
    }
}
