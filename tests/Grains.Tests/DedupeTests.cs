namespace OrleansChat.Grains.Tests;

[Collection(ClusterCollection.Name)]
public sealed class DedupeTests(ChatClusterFixture fixture)
{
    [Fact]
    public async Task Resend_with_same_user_and_client_id_returns_the_original_and_is_not_stored_or_broadcast_again()
    {
        var roomName = Rooms.Unique("dedupe");
        var room = fixture.Room(roomName);
        var gateway = await TestGateway.SubscribedAsync(fixture.Client, room);

        var first = await room.Post(Rooms.Post("alice", "m1", "hello"));
        var resend = await room.Post(Rooms.Post("alice", "m1", "hello again"));
        var next = await room.Post(Rooms.Post("alice", "m2", "second"));

        Assert.Equal(RoomError.None, first.Error);
        Assert.False(first.Duplicate);
        Assert.Equal(RoomError.None, resend.Error);
        Assert.True(resend.Duplicate);
        Assert.Equal(first.Message, resend.Message);
        Assert.Equal(2, next.Message!.Seq);
        var stored = await fixture.Store.AllAsync(roomName);
        Assert.Equal([1L, 2L], stored.Seqs());
        await gateway.AssertReceivedAsync(stored);
    }

    [Fact]
    public async Task Resend_while_the_first_is_still_being_written_waits_for_it_and_dedupes()
    {
        var roomName = Rooms.Unique("inflight");
        var room = fixture.Room(roomName);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        fixture.Store.For(roomName).Gate = gate;

        var first = room.Post(Rooms.Post("bob", "x"));
        await Eventually.WaitAsync(() => fixture.Store.For(roomName).Appends == 1, "the first write to start");
        var resend = room.Post(Rooms.Post("bob", "x"));
        await Task.Delay(100);
        Assert.False(first.IsCompleted, "acknowledged before the write committed");
        Assert.False(resend.IsCompleted, "resend answered before the first write committed");

        fixture.Store.For(roomName).Gate = null;
        gate.SetResult();

        var (a, b) = (await first, await resend);
        Assert.Equal(RoomError.None, a.Error);
        Assert.False(a.Duplicate);
        Assert.True(b.Duplicate);
        Assert.Equal(a.Message, b.Message);
        Assert.Single(await fixture.Store.AllAsync(roomName));
        Assert.Equal(1, fixture.Store.For(roomName).Appends);
    }

    [Fact]
    public async Task Different_users_may_use_the_same_client_id()
    {
        var roomName = Rooms.Unique("sameid");
        var room = fixture.Room(roomName);

        var alice = await room.Post(Rooms.Post("alice", "1"));
        var bob = await room.Post(Rooms.Post("bob", "1"));

        Assert.False(bob.Duplicate);
        Assert.Equal([1L, 2L], [alice.Message!.Seq, bob.Message!.Seq]);
        Assert.Equal(["alice", "bob"], (await fixture.Store.AllAsync(roomName)).Select(m => m.User));
    }

    [Fact]
    public async Task After_reactivation_a_resend_older_than_the_loaded_ids_is_found_in_the_store()
    {
        var roomName = Rooms.Unique("olddedupe");
        var room = fixture.Room(roomName);
        var first = await room.Post(Rooms.Post("carol", "oldest", "the first"));

        // Push it out of the client ids a new activation loads (the last DedupeMessages).
        const int Fillers = ChatClusterFixture.DedupeMessages + 100;
        await Task.WhenAll(Enumerable.Range(0, 10).Select(async caller =>
        {
            for (var i = 0; i < Fillers / 10; i++)
            {
                Assert.Equal(RoomError.None, (await room.Post(Rooms.Post($"filler{caller}", $"f{i}", "x"))).Error);
            }
        }));

        var readsBefore = fixture.Store.For(roomName).Reads;
        await Task.Delay(200);
        await fixture.Client.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.FromMilliseconds(100));

        var resend = await room.Post(Rooms.Post("carol", "oldest", "the first, resent"));
        Assert.True(fixture.Store.For(roomName).Reads > readsBefore, "the room was not re-activated");
        Assert.Equal(RoomError.None, resend.Error);
        Assert.True(resend.Duplicate);
        Assert.Equal(first.Message, resend.Message);

        var next = await room.Post(Rooms.Post("carol", "newer", "after"));
        Assert.False(next.Duplicate);
        Assert.Equal(Fillers + 2, next.Message!.Seq);
        Assert.Equal(Fillers + 2, (await fixture.Store.AllAsync(roomName)).Count);
    }
}
