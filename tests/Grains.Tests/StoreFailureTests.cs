namespace OrleansChat.Grains.Tests;

[Collection(ClusterCollection.Name)]
public sealed class StoreFailureTests(ChatClusterFixture fixture)
{
    [Fact]
    public async Task While_the_store_fails_posts_are_Unavailable_and_after_recovery_seq_continues_without_gap_or_reuse()
    {
        var roomName = Rooms.Unique("storedown");
        var room = fixture.Room(roomName);
        var gateway = await TestGateway.SubscribedAsync(fixture.Client, room);
        for (var i = 1; i <= 3; i++)
        {
            await room.Post(Rooms.Post("alice", $"ok{i}"));
        }

        fixture.Store.For(roomName).Append = AppendFault.Throw;
        var failed = await Task.WhenAll(Enumerable.Range(1, 5).Select(i => room.Post(Rooms.Post("bob", $"down{i}"))));
        fixture.Store.For(roomName).Append = AppendFault.None;

        Assert.All(failed, result =>
        {
            Assert.Equal(RoomError.Unavailable, result.Error);
            Assert.Null(result.Message);
        });
        Assert.Equal(Rooms.Range(1, 3), (await fixture.Store.AllAsync(roomName)).Seqs());

        // The client retries with the same ids once the store is back.
        var retried = new List<PostResult>();
        for (var i = 1; i <= 5; i++)
        {
            retried.Add(await room.Post(Rooms.Post("bob", $"down{i}")));
        }

        Assert.Equal(Rooms.Range(4, 8), retried.Select(r => r.Message!.Seq));
        Assert.All(retried, result => Assert.False(result.Duplicate));
        var stored = await fixture.Store.AllAsync(roomName);
        Assert.Equal(Rooms.Range(1, 8), stored.Seqs());
        await gateway.AssertReceivedAsync(stored);
    }

    [Fact]
    public async Task Write_that_failed_but_committed_is_adopted_by_the_resend_without_a_duplicate_seq()
    {
        var roomName = Rooms.Unique("lostack");
        var room = fixture.Room(roomName);
        var gateway = await TestGateway.SubscribedAsync(fixture.Client, room);
        await room.Post(Rooms.Post("alice", "before"));

        fixture.Store.For(roomName).Append = AppendFault.CommitThenThrow;
        var lost = await room.Post(Rooms.Post("alice", "lost"));
        fixture.Store.For(roomName).Append = AppendFault.None;
        var resend = await room.Post(Rooms.Post("alice", "lost"));
        var after = await room.Post(Rooms.Post("alice", "after"));

        Assert.Equal(RoomError.Unavailable, lost.Error);
        Assert.Equal(RoomError.None, resend.Error);
        Assert.Equal(2, resend.Message!.Seq);
        Assert.Equal("lost", resend.Message.ClientId);
        Assert.Equal(3, after.Message!.Seq);
        var stored = await fixture.Store.AllAsync(roomName);
        Assert.Equal(["before", "lost", "after"], stored.Select(m => m.ClientId));
        Assert.Equal(stored[1], resend.Message);
        await gateway.AssertReceivedAsync(stored);
    }

    [Fact]
    public async Task Write_that_failed_but_committed_is_adopted_by_the_next_post_and_the_resend_is_a_duplicate()
    {
        var roomName = Rooms.Unique("adopt");
        var room = fixture.Room(roomName);

        fixture.Store.For(roomName).Append = AppendFault.CommitThenThrow;
        var lost = await room.Post(Rooms.Post("alice", "lost"));
        fixture.Store.For(roomName).Append = AppendFault.None;
        var other = await room.Post(Rooms.Post("bob", "other"));
        var resend = await room.Post(Rooms.Post("alice", "lost"));

        Assert.Equal(RoomError.Unavailable, lost.Error);
        Assert.Equal(2, other.Message!.Seq);
        Assert.True(resend.Duplicate);
        Assert.Equal(1, resend.Message!.Seq);
        Assert.Equal(["lost", "other"], (await fixture.Store.AllAsync(roomName)).Select(m => m.ClientId));
    }

    [Fact]
    public async Task Store_reads_failing_make_join_history_and_old_resends_Unavailable_without_side_effects()
    {
        var roomName = Rooms.Unique("readsdown");
        var room = fixture.Room(roomName);
        var watcher = await TestGateway.SubscribedAsync(fixture.Client, room);
        for (var i = 1; i <= 250; i++)
        {
            await room.Post(Rooms.Post("alice", $"m{i}"));
        }

        var faults = fixture.Store.For(roomName);
        faults.FailReads = true;
        var join = await room.Join(Rooms.Join("bob", watcher, "b1", since: 1));
        var history = await room.History(new HistoryQuery(10, null, 5));
        var oldResend = await room.Post(Rooms.Post("alice", "m1"));
        faults.FailReads = false;

        Assert.Equal(RoomError.Unavailable, join.Error);
        Assert.Equal(RoomError.Unavailable, history.Error);
        Assert.Equal(RoomError.Unavailable, oldResend.Error);
        // The failed join did not make bob a member: a later join is his first.
        var retry = await room.Join(Rooms.Join("bob", watcher, "b1", since: 1));
        Assert.Equal(RoomError.None, retry.Error);
        await watcher.WaitUntilAsync(g => g.PresenceChanges.Length >= 1, "bob's join");
        Assert.Equal([new PresenceChange("bob", true, "b1")], watcher.PresenceChanges);
        Assert.True((await room.Post(Rooms.Post("alice", "m1"))).Duplicate);
    }
}
