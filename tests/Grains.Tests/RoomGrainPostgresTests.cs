using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Orleans.TestingHost;
using OrleansChat.Grains.Interfaces;

namespace OrleansChat.Grains.Tests;

/// <summary>The room grain on the PostgreSQL store, in a two-silo cluster: whatever a silo knew is lost with
/// it, so a room that comes back elsewhere can only know its seq and client ids from the database.</summary>
[Collection(PostgresCollection.Name)]
public sealed class RoomGrainPostgresTests(PostgresFixture postgres)
{
    [Fact]
    public async Task A_room_reactivated_on_another_silo_continues_seq_and_dedupe_from_PostgreSQL()
    {
        var connectionString = await postgres.CreateDatabaseAsync();
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["ConnectionStrings:Messages"] = connectionString })
            .Build();
        var builder = new InProcessTestClusterBuilder(2);
        builder.ConfigureSilo((_, silo) => silo.AddChatRooms(configuration));
        await using var cluster = builder.Build();
        await cluster.DeployAsync();

        var room = cluster.Client.GetGrain<IRoomGrain>("pg-room");
        for (var i = 1; i <= 3; i++)
        {
            var posted = await room.Post(new PostRequest("ana", $"c{i}", $"hello {i}", null));
            Assert.Equal(RoomError.None, posted.Error);
            Assert.Equal(i, posted.Message!.Seq);
        }

        var host = await room.GetRuntimeIdentity();
        await cluster.KillSiloAsync(cluster.Silos.Single(silo => silo.SiloAddress.ToString() == host));

        // The resend of c2 is answered with the stored original, and the next message takes seq 4.
        var resend = await room.Post(new PostRequest("ana", "c2", "hello 2", null));
        Assert.NotEqual(host, await room.GetRuntimeIdentity());
        Assert.True(resend.Duplicate);
        Assert.Equal(2, resend.Message!.Seq);
        var next = await room.Post(new PostRequest("bob", "c1", "hi", null));
        Assert.Equal(4, next.Message!.Seq);

        // Text PostgreSQL cannot store is refused alone instead of failing the batch it would share.
        Assert.Equal(RoomError.BadRequest, (await room.Post(new PostRequest("bob", "c2", "nul\0byte", null))).Error);

        var history = await room.History(new HistoryQuery(null, null, 10));
        Assert.Equal([1L, 2, 3, 4], history.Messages.Select(m => m.Seq));

        await using var dataSource = NpgsqlDataSource.Create(connectionString);
        var stored = await new PostgresMessageStore(dataSource).ReadLatestAsync("pg-room", 10);
        Assert.Equal(["ana", "ana", "ana", "bob"], stored.Select(m => m.User));
    }

    [Fact]
    public async Task Edits_deletions_read_state_and_bans_survive_a_restart_of_the_whole_cluster()
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["ConnectionStrings:Messages"] = await postgres.CreateDatabaseAsync() })
            .Build();
        await using (var cluster = await StartAsync(configuration))
        {
            var room = cluster.Client.GetGrain<IRoomGrain>("pg-events");
            await room.Post(new PostRequest("ana", "m1", "helo", null));
            await room.Post(new PostRequest("ana", "m2", "oops", null));
            await room.Post(new PostRequest("ana", "e1", "hello", null, ChatEventKind.Edit, 1));
            await room.Post(new PostRequest("ana", "d1", "", null, ChatEventKind.Delete, 2));
            Assert.Equal(3, await cluster.Client.GetGrain<IUserGrain>("ana").MarkRead("pg-events", 3));
            Assert.Equal(RoomError.None, (await room.Kick(new KickRequest("troll", 3600))).Error);
            await cluster.StopAllSilosAsync();
        }

        await using (var cluster = await StartAsync(configuration))
        {
            var room = cluster.Client.GetGrain<IRoomGrain>("pg-events");
            var history = await room.History(new HistoryQuery(null, null, 10));
            Assert.Equal([ChatEventKind.Message, ChatEventKind.Message, ChatEventKind.Edit, ChatEventKind.Delete], history.Messages.Select(e => e.Kind));
            // The deletion and the edit's id hold in the new activation, which knows them only from PostgreSQL.
            Assert.Equal(RoomError.NotFound, (await room.Post(new PostRequest("ana", "e2", "back", null, ChatEventKind.Edit, 2))).Error);
            Assert.True((await room.Post(new PostRequest("ana", "e1", "hello", null, ChatEventKind.Edit, 1))).Duplicate);
            Assert.Equal(3, await cluster.Client.GetGrain<IUserGrain>("ana").GetRead("pg-events"));
            Assert.Equal(0, await cluster.Client.GetGrain<IUserGrain>("ana").MarkRead("pg-events", 2));
            var gateway = new TestGateway(cluster.Client);
            Assert.Equal(3, (await room.Join(Rooms.Join("ana", gateway, "c1"))).Read);
            Assert.Equal(RoomError.Banned, (await room.Join(Rooms.Join("troll", gateway, "c2"))).Error);
        }
    }

    private static async Task<InProcessTestCluster> StartAsync(IConfiguration configuration)
    {
        var builder = new InProcessTestClusterBuilder(1);
        builder.ConfigureSilo((_, silo) => silo.AddChatRooms(configuration));
        var cluster = builder.Build();
        await cluster.DeployAsync();
        return cluster;
    }
}
