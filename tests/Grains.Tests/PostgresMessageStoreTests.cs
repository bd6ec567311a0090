using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using OrleansChat.Grains.Interfaces;

namespace OrleansChat.Grains.Tests;

[Collection(PostgresCollection.Name)]
public sealed class PostgresMessageStoreTests(PostgresFixture postgres) : IAsyncLifetime
{
    private static readonly DateTime Start = new(2026, 1, 2, 3, 4, 5, 678, DateTimeKind.Utc);

    private NpgsqlDataSource _dataSource = null!;
    private PostgresMessageStore _store = null!;

    public async Task InitializeAsync()
    {
        _dataSource = NpgsqlDataSource.Create(postgres.ConnectionString);
        await PostgresSchema.MigrateAsync(_dataSource, NullLogger.Instance);
        _store = new PostgresMessageStore(_dataSource);
    }

    public async Task DisposeAsync() => await _dataSource.DisposeAsync();

    [Fact]
    public async Task Appended_messages_are_read_back_oldest_first_within_limits()
    {
        var room = NewRoom();
        await _store.AppendAsync(room, Messages(room, 1, 3));
        await _store.AppendAsync(room, Messages(room, 4, 7));

        Assert.Equal(Messages(room, 1, 10), await _store.ReadLatestAsync(room, 100));
        Assert.Equal(Seqs(8, 10), SeqsOf(await _store.ReadLatestAsync(room, 3)));
        Assert.Equal(Seqs(3, 4), SeqsOf(await _store.ReadBeforeAsync(room, 5, 2)));
        Assert.Equal(Seqs(1, 4), SeqsOf(await _store.ReadBeforeAsync(room, 5, 50)));
        Assert.Empty(await _store.ReadBeforeAsync(room, 1, 50));
        Assert.Equal(Seqs(9, 10), SeqsOf(await _store.ReadAfterAsync(room, 8, 5)));
        Assert.Equal(Seqs(1, 3), SeqsOf(await _store.ReadAfterAsync(room, 0, 3)));
        Assert.Empty(await _store.ReadAfterAsync(room, 10, 5));
        Assert.Empty(await _store.ReadLatestAsync(NewRoom(), 5));
    }

    [Fact]
    public async Task Client_ids_are_found_by_user_and_id_within_the_time_window()
    {
        var room = NewRoom();
        await _store.AppendAsync(room, Messages(room, 1, 10));

        // id-4 was sent by user1 (4 % 3), id-8 by user2; id-3 is older than the window's start.
        var found = await _store.FindByClientIdsAsync(
            room, [new("user1", "id-4"), new("user2", "id-4"), new("user2", "id-8"), new("user0", "id-3")], Start.AddSeconds(4));
        Assert.Equal([4L, 8L], SeqsOf(found));
        Assert.Empty(await _store.FindByClientIdsAsync(NewRoom(), [new("user1", "id-4")], Start));
    }

    [Fact]
    public async Task Fields_round_trip_exactly()
    {
        var room = NewRoom();
        var message = new ChatMessage(room, 1, "ana", "héllo 👋 'quoted' \"double\" \\ back", Start, "c-1");
        await _store.AppendAsync(room, [message]);

        var read = Assert.Single(await _store.ReadLatestAsync(room, 1));
        Assert.Equal(message, read);
        Assert.Equal(DateTimeKind.Utc, read.Time.Kind);
    }

    [Fact]
    public async Task A_failing_batch_stores_none_of_its_messages_and_burns_no_seq()
    {
        var room = NewRoom();
        await _store.AppendAsync(room, Messages(room, 1, 2));

        // PostgreSQL rejects a NUL character in text: the third message spoils the whole batch.
        var batch = Messages(room, 3, 3);
        batch[2] = batch[2] with { Text = "bad\0text" };
        await Assert.ThrowsAnyAsync<Exception>(() => _store.AppendAsync(room, batch));
        Assert.Equal(Seqs(1, 2), SeqsOf(await _store.ReadLatestAsync(room, 100)));

        // A stale writer (seqs already taken) and a gap are refused whole too.
        await Assert.ThrowsAnyAsync<Exception>(() => _store.AppendAsync(room, Messages(room, 2, 2)));
        await Assert.ThrowsAnyAsync<Exception>(() => _store.AppendAsync(room, Messages(room, 4, 2)));
        Assert.Equal(Seqs(1, 2), SeqsOf(await _store.ReadLatestAsync(room, 100)));

        await _store.AppendAsync(room, Messages(room, 3, 3));
        Assert.Equal(Seqs(1, 5), SeqsOf(await _store.ReadLatestAsync(room, 100)));
    }

    [Fact]
    public async Task Rooms_appending_at_once_each_store_exactly_their_own_messages()
    {
        var rooms = Enumerable.Range(0, 40).Select(_ => NewRoom()).ToArray();

        // Forty rooms, three writes each, all at once: the writers group them into shared statements.
        await Task.WhenAll(rooms.Select(async room =>
        {
            await _store.AppendAsync(room, Messages(room, 1, 2));
            await _store.AppendAsync(room, Messages(room, 3, 1));
            await _store.AppendAsync(room, Messages(room, 4, 3));
        }));

        foreach (var room in rooms)
        {
            Assert.Equal(Messages(room, 1, 6), await _store.ReadLatestAsync(room, 100));
        }
    }

    [Fact]
    public async Task One_rooms_bad_write_fails_only_that_room_when_rooms_share_a_statement()
    {
        var good = Enumerable.Range(0, 20).Select(_ => NewRoom()).ToArray();
        var stale = NewRoom();
        var refused = NewRoom();
        await _store.AppendAsync(stale, Messages(stale, 1, 2));
        var poisoned = Messages(refused, 1, 2);
        poisoned[1] = poisoned[1] with { Text = "bad\0text" };

        var goodWrites = good.Select(room => _store.AppendAsync(room, Messages(room, 1, 3))).ToArray();
        // A stale writer (its seqs are taken) inserts nothing; a text PostgreSQL refuses fails its statement.
        var staleWrite = _store.AppendAsync(stale, Messages(stale, 2, 2));
        var refusedWrite = _store.AppendAsync(refused, poisoned);

        await Task.WhenAll(goodWrites);
        await Assert.ThrowsAnyAsync<Exception>(() => staleWrite);
        await Assert.ThrowsAnyAsync<Exception>(() => refusedWrite);
        foreach (var room in good)
        {
            Assert.Equal(Messages(room, 1, 3), await _store.ReadLatestAsync(room, 100));
        }

        Assert.Equal(Seqs(1, 2), SeqsOf(await _store.ReadLatestAsync(stale, 100)));
        Assert.Empty(await _store.ReadLatestAsync(refused, 100));
    }

    [Fact]
    public async Task Edits_and_deletions_round_trip_and_their_targets_are_found_with_whether_they_were_deleted()
    {
        var room = NewRoom();
        await _store.AppendAsync(room, Messages(room, 1, 3));
        await _store.AppendAsync(room,
        [
            new ChatMessage(room, 4, "user1", "text 1, edited", Start, "e-1", ChatEventKind.Edit, 1),
            new ChatMessage(room, 5, "user2", "", Start, "d-2", ChatEventKind.Delete, 2),
        ]);

        var stored = await _store.ReadAfterAsync(room, 3, 10);
        Assert.Equal((ChatEventKind.Edit, 1L, "text 1, edited"), (stored[0].Kind, stored[0].Target, stored[0].Text));
        Assert.Equal((ChatEventKind.Delete, 2L, ""), (stored[1].Kind, stored[1].Target, stored[1].Text));
        Assert.Equal(0, (await _store.ReadLatestAsync(room, 5))[0].Target);
        Assert.Equal(["e-1", "d-2"], (await _store.FindByClientIdsAsync(room, [new("user1", "e-1"), new("user2", "d-2")], Start)).Select(e => e.ClientId));

        var targets = await _store.ReadTargetsAsync(room, [1, 2, 4, 99]);
        Assert.Equal(
            [new StoredTarget(1, "user1", ChatEventKind.Message, false), new StoredTarget(2, "user2", ChatEventKind.Message, true), new StoredTarget(4, "user1", ChatEventKind.Edit, false)],
            targets.OrderBy(target => target.Seq));
    }

    [Fact]
    public async Task Messages_stored_before_the_events_migration_stay_valid_messages()
    {
        await using var dataSource = NpgsqlDataSource.Create(await postgres.CreateDatabaseAsync());
        await PostgresSchema.MigrateAsync(dataSource, NullLogger.Instance, toVersion: 2);
        await using (var insert = dataSource.CreateCommand("""
            INSERT INTO messages (room, seq, sender, client_id, body, sent_at)
            VALUES ('old', 1, 'ana', 'c-1', 'from before', now()), ('old', 2, 'ben', 'c-2', 'also', now())
            """))
        {
            await insert.ExecuteNonQueryAsync();
        }

        Assert.Equal(2, await PostgresSchema.MigrateAsync(dataSource, NullLogger.Instance));
        var store = new PostgresMessageStore(dataSource);
        var old = await store.ReadLatestAsync("old", 10);
        Assert.Equal([(1L, ChatEventKind.Message, 0L, "from before"), (2L, ChatEventKind.Message, 0L, "also")], old.Select(m => (m.Seq, m.Kind, m.Target, m.Text)));
        await store.AppendAsync("old", [new ChatMessage("old", 3, "ana", "", Start, "d-1", ChatEventKind.Delete, 1)]);
        Assert.Equal([true, false], (await store.ReadTargetsAsync("old", [1, 2])).OrderBy(t => t.Seq).Select(t => t.Deleted));
    }

    [Fact]
    public async Task Read_state_only_rises_and_is_kept_per_user_and_room()
    {
        var readState = new PostgresReadStateStore(_dataSource);
        var user = $"u-{Guid.NewGuid():N}"[..20];
        await readState.RaiseAsync(user, "a", 5);
        await readState.RaiseAsync(user, "a", 3);
        await readState.RaiseAsync(user, "b", 1);
        await readState.RaiseAsync("someone-else", "a", 9);

        var rooms = await readState.LoadAsync(user);
        Assert.Equal(new Dictionary<string, long> { ["a"] = 5, ["b"] = 1 }, rooms);
        Assert.Empty(await readState.LoadAsync($"u-{Guid.NewGuid():N}"[..20]));
    }

    [Fact]
    public async Task Creating_the_schema_twice_is_harmless()
    {
        await using var dataSource = NpgsqlDataSource.Create(await postgres.CreateDatabaseAsync());

        Assert.Equal(0, await PostgresSchema.MigrateAsync(dataSource, NullLogger.Instance));
        Assert.Equal(PostgresSchema.LatestVersion, await PostgresSchema.MigrateAsync(dataSource, NullLogger.Instance));
        Assert.Equal(PostgresSchema.LatestVersion, await CountVersionsAsync(dataSource));
    }

    [Fact]
    public async Task Silos_migrating_at_the_same_time_apply_each_migration_once()
    {
        var connectionString = await postgres.CreateDatabaseAsync();
        var dataSources = Enumerable.Range(0, 4).Select(_ => NpgsqlDataSource.Create(connectionString)).ToArray();
        try
        {
            var found = await Task.WhenAll(dataSources.Select(d => Task.Run(() => PostgresSchema.MigrateAsync(d, NullLogger.Instance))));

            Assert.Single(found, version => version == 0);
            Assert.Equal(3, found.Count(version => version == PostgresSchema.LatestVersion));
            Assert.Equal(PostgresSchema.LatestVersion, await CountVersionsAsync(dataSources[0]));
            var store = new PostgresMessageStore(dataSources[1]);
            await store.AppendAsync("r", Messages("r", 1, 1));
        }
        finally
        {
            foreach (var dataSource in dataSources)
            {
                await dataSource.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task An_outage_makes_the_store_throw_and_it_recovers_when_PostgreSQL_is_back()
    {
        var room = NewRoom();
        await _store.AppendAsync(room, Messages(room, 1, 1));
        // Four idle connections in the pool, all of which the outage breaks.
        var connections = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => _dataSource.OpenConnectionAsync().AsTask()));
        foreach (var connection in connections)
        {
            await connection.DisposeAsync();
        }

        await postgres.StopAsync();
        try
        {
            await Assert.ThrowsAnyAsync<NpgsqlException>(() => _store.AppendAsync(room, Messages(room, 2, 1)));
            await Assert.ThrowsAnyAsync<NpgsqlException>(() => _store.ReadLatestAsync(room, 10));
        }
        finally
        {
            await postgres.StartAsync();
        }

        // The same data source, no retry: the first write after the outage succeeds (Npgsql drops the
        // pool's idle connections when one of them turns out to be broken).
        await _store.AppendAsync(room, Messages(room, 2, 1));
        await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => _store.ReadLatestAsync(room, 10)));
        Assert.Equal(Seqs(1, 2), SeqsOf(await _store.ReadLatestAsync(room, 10)));
    }

    internal static ChatMessage[] Messages(string room, long firstSeq, int count)
        => [.. Enumerable.Range(0, count).Select(i => new ChatMessage(
            room, firstSeq + i, $"user{(firstSeq + i) % 3}", $"text {firstSeq + i}", Start.AddSeconds(firstSeq + i), $"id-{firstSeq + i}"))];

    private static string NewRoom() => $"room-{Guid.NewGuid():N}";

    private static long[] Seqs(long first, long last) => [.. Enumerable.Range((int)first, (int)(last - first + 1)).Select(i => (long)i)];

    private static long[] SeqsOf(IReadOnlyList<ChatMessage> messages) => [.. messages.Select(m => m.Seq)];

    private static async Task<long> CountVersionsAsync(NpgsqlDataSource dataSource)
    {
        await using var command = dataSource.CreateCommand("SELECT count(*) FROM schema_version");
        return (long)(await command.ExecuteScalarAsync())!;
    }
}
