using Microsoft.Extensions.Logging;
using Npgsql;

namespace OrleansChat.Grains;

/// <summary>
/// Our own schema, created by the application: numbered migrations recorded in <c>schema_version</c>.
/// Every silo runs <see cref="MigrateAsync"/> at start-up; all of it happens in one transaction under a
/// transaction-scoped advisory lock, so silos starting together apply each migration exactly once, the
/// others wait and then find nothing to do, and a crash half-way leaves the previous version intact.
/// </summary>
public static partial class PostgresSchema
{
    /// <summary>Arbitrary but fixed: every OrleansChat process must use the same key ("OrChat" in ASCII).</summary>
    private const long MigrationLockKey = 0x4F72_4368_6174;

    /// <summary>Migration N is at index N-1. Never edit one that has shipped: append the next.</summary>
    private static readonly (string Description, string Sql)[] Migrations =
    [
        ("messages table keyed by (room, seq)", """
            CREATE TABLE messages (
                room      text        NOT NULL,
                seq       bigint      NOT NULL CHECK (seq > 0),
                sender    text        NOT NULL,
                client_id text        NOT NULL,
                body      text        NOT NULL,
                sent_at   timestamptz NOT NULL,
                PRIMARY KEY (room, seq)
            );
            """),
        ("index for dedupe by (room, sender, client_id)", """
            CREATE INDEX messages_dedupe ON messages (room, sender, client_id);
            """),
        // Existing rows are messages: kind 0, no target. ADD COLUMN with a constant default rewrites nothing.
        ("edits and deletions: kind and target of every event", """
            ALTER TABLE messages
                ADD COLUMN kind   smallint NOT NULL DEFAULT 0 CHECK (kind IN (0, 1, 2)),
                ADD COLUMN target bigint,
                ADD CONSTRAINT messages_target_of_change CHECK ((kind = 0) = (target IS NULL));
            CREATE INDEX messages_targets ON messages (room, target) WHERE target IS NOT NULL;
            """),
        ("read state per user and room", """
            CREATE TABLE read_state (
                user_name text   NOT NULL,
                room      text   NOT NULL,
                seq       bigint NOT NULL CHECK (seq >= 0),
                PRIMARY KEY (user_name, room)
            );
            """),
        ("bans per room and user", """
            CREATE TABLE bans (
                room      text        NOT NULL,
                user_name text        NOT NULL,
                until     timestamptz NOT NULL,
                PRIMARY KEY (room, user_name)
            );
            """),
    ];

    public static int LatestVersion => Migrations.Length;

    /// <summary>Brings the database to <see cref="LatestVersion"/>; returns the version found before.</summary>
    public static Task<int> MigrateAsync(NpgsqlDataSource dataSource, ILogger logger, CancellationToken cancellationToken = default)
        => MigrateAsync(dataSource, logger, LatestVersion, cancellationToken);

    /// <summary>Brings the database to <paramref name="toVersion"/> (tests of a migration start from the version
    /// before it); returns the version found before.</summary>
    public static async Task<int> MigrateAsync(NpgsqlDataSource dataSource, ILogger logger, int toVersion, CancellationToken cancellationToken = default)
    {
        var target = Math.Min(toVersion, LatestVersion);
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);

        // Released by commit or rollback, and by the server if this process dies: never left behind.
        await ExecuteAsync(connection, "SELECT pg_advisory_xact_lock($1)", cancellationToken, MigrationLockKey);
        await ExecuteAsync(connection, """
            CREATE TABLE IF NOT EXISTS schema_version (
                version     integer     PRIMARY KEY,
                description text        NOT NULL,
                applied_at  timestamptz NOT NULL DEFAULT now()
            )
            """, cancellationToken);

        await using (var read = new NpgsqlCommand("SELECT coalesce(max(version), 0) FROM schema_version", connection))
        {
            var found = (int)(await read.ExecuteScalarAsync(cancellationToken))!;
            if (found > LatestVersion)
            {
                // A newer release migrated already; migrations only add, so this one can still run.
                LogNewerSchema(logger, found, LatestVersion);
            }

            for (var version = found + 1; version <= target; version++)
            {
                var (description, sql) = Migrations[version - 1];
                await ExecuteAsync(connection, sql, cancellationToken);
                await ExecuteAsync(connection, "INSERT INTO schema_version (version, description) VALUES ($1, $2)", cancellationToken, version, description);
                LogApplied(logger, version, description);
            }

            await transaction.CommitAsync(cancellationToken);
            return found;
        }
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql, CancellationToken cancellationToken, params object[] parameters)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        foreach (var value in parameters)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = value });
        }

        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Message store schema: applied migration {Version} ({Description})")]
    private static partial void LogApplied(ILogger logger, int version, string description);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Message store schema is at version {Found}, newer than this build's {Latest}; continuing")]
    private static partial void LogNewerSchema(ILogger logger, int found, int latest);
}
