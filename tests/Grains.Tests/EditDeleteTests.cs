namespace OrleansChat.Grains.Tests;

/// <summary>Edits and deletions are stored events of the room's log: they take seqs, are checked against their
/// target at the grain, and share the dedupe ids of sends.</summary>
[Collection(ClusterCollection.Name)]
public sealed class EditDeleteTests(ChatClusterFixture fixture)
{
    [Fact]
    public async Task Seq_counts_messages_edits_and_deletions_alike_and_gateways_get_them_in_order()
    {
        var roomName = Rooms.Unique("events");
        var room = fixture.Room(roomName);
        var gateway = await TestGateway.SubscribedAsync(fixture.Client, room);

        await room.Post(Rooms.Post("ana", "m1", "helo"));
        var edit = await room.Post(Edit("ana", "e1", 1, "hello"));
        await room.Post(Rooms.Post("ana", "m2", "bye"));
        var delete = await room.Post(Delete("ana", "d1", 3));

        Assert.Equal((2L, ChatEventKind.Edit, 1L, "hello"), (edit.Message!.Seq, edit.Message.Kind, edit.Message.Target, edit.Message.Text));
        Assert.Equal((4L, ChatEventKind.Delete, 3L, ""), (delete.Message!.Seq, delete.Message.Kind, delete.Message.Target, delete.Message.Text));
        var stored = await fixture.Store.AllAsync(roomName);
        Assert.Equal([ChatEventKind.Message, ChatEventKind.Edit, ChatEventKind.Message, ChatEventKind.Delete], stored.Select(e => e.Kind));
        await gateway.AssertReceivedAsync(stored);
        var history = await room.History(new HistoryQuery(null, 1, 10));
        Assert.Equal(stored.Skip(1), history.Messages);
    }

    [Fact]
    public async Task The_target_must_be_a_live_message_of_the_same_user()
    {
        var room = fixture.Room(Rooms.Unique("targets"));
        await room.Post(Rooms.Post("ana", "m1"));
        await room.Post(Edit("ana", "e1", 1, "edited"));
        await room.Post(Rooms.Post("ana", "m2"));
        await room.Post(Delete("ana", "d1", 3));

        Assert.Equal(RoomError.Forbidden, (await room.Post(Edit("ben", "x1", 1, "mine"))).Error);
        Assert.Equal(RoomError.Forbidden, (await room.Post(Delete("ben", "x2", 1))).Error);
        Assert.Equal(RoomError.NotFound, (await room.Post(Edit("ana", "x3", 2, "an edit is no target"))).Error);
        Assert.Equal(RoomError.NotFound, (await room.Post(Edit("ana", "x4", 3, "deleted"))).Error);
        Assert.Equal(RoomError.NotFound, (await room.Post(Delete("ben", "x5", 3))).Error);
        Assert.Equal(RoomError.NotFound, (await room.Post(Edit("ana", "x6", 5, "not yet"))).Error);
        Assert.Equal(RoomError.NotFound, (await room.Post(Delete("ana", "x7", 0))).Error);
        // Shape: a deletion carries no text, a change no negative target.
        Assert.Equal(RoomError.BadRequest, (await room.Post(Delete("ana", "x8", 1) with { Text = "text" })).Error);
        Assert.Equal(RoomError.BadRequest, (await room.Post(Edit("ana", "x9", -1, "x"))).Error);
        Assert.Equal(RoomError.BadRequest, (await room.Post(Edit("ana", "x10", 1, ""))).Error);
        Assert.Equal(RoomError.TooLarge, (await room.Post(Edit("ana", "x11", 1, new string('x', 4097)))).Error);

        Assert.Equal(5, (await room.Post(Rooms.Post("ana", "m3"))).Message!.Seq);
    }

    [Fact]
    public async Task Two_deletions_of_one_message_in_one_write_store_only_the_first()
    {
        var roomName = Rooms.Unique("twice");
        var room = fixture.Room(roomName);
        await room.Post(Rooms.Post("ana", "m1"));

        var batch = await room.PostBatch(new PostBatchRequest("ana", null,
        [
            new PostItem("d1", "", ChatEventKind.Delete, 1),
            new PostItem("e1", "too late", ChatEventKind.Edit, 1),
            new PostItem("d2", "", ChatEventKind.Delete, 1),
            new PostItem("m2", "still stored"),
        ]));

        Assert.Equal([RoomError.None, RoomError.NotFound, RoomError.NotFound, RoomError.None], batch.Acks.Select(ack => ack.Error));
        Assert.Equal([2L, 3L], batch.Acks.Where(ack => ack.Error == RoomError.None).Select(ack => ack.Seq));
        Assert.Equal([ChatEventKind.Message, ChatEventKind.Delete, ChatEventKind.Message], (await fixture.Store.AllAsync(roomName)).Select(e => e.Kind));
    }

    [Fact]
    public async Task Ids_are_shared_with_send_and_a_resend_is_answered_before_its_target_is_checked()
    {
        var room = fixture.Room(Rooms.Unique("changeids"));
        var message = await room.Post(Rooms.Post("ana", "m1", "first"));
        var edit = await room.Post(Edit("ana", "e1", 1, "first!"));
        await room.Post(Delete("ana", "d1", 1));

        var resentEdit = await room.Post(Edit("ana", "e1", 1, "first!"));
        Assert.True(resentEdit.Duplicate);
        Assert.Equal(edit.Message, resentEdit.Message);
        var editWithSendId = await room.Post(Edit("ana", "m1", 1, "other"));
        Assert.True(editWithSendId.Duplicate);
        Assert.Equal(message.Message, editWithSendId.Message);
        var sendWithEditId = await room.Post(Rooms.Post("ana", "e1", "new text"));
        Assert.Equal(edit.Message, sendWithEditId.Message);
        Assert.Equal(4, (await room.Post(Rooms.Post("ana", "m2"))).Message!.Seq);
    }

    [Fact]
    public async Task After_reactivation_targets_older_than_what_the_room_loads_are_checked_in_the_store()
    {
        var roomName = Rooms.Unique("oldtarget");
        var room = fixture.Room(roomName);
        await room.Post(Rooms.Post("ana", "old-1", "oldest"));
        await room.Post(Rooms.Post("ana", "old-2", "second oldest"));
        await room.Post(Rooms.Post("ana", "old-3", "third oldest"));
        await room.Post(Delete("ana", "d-old-3", 3));

        // Push them out of what a new activation loads (the last DedupeMessages events).
        const int Fillers = ChatClusterFixture.DedupeMessages + 50;
        await Rooms.Concurrently(10, async caller =>
        {
            for (var i = 0; i < Fillers / 10; i++)
            {
                Assert.Equal(RoomError.None, (await room.Post(Rooms.Post($"filler{caller}", $"f{i}", "x"))).Error);
            }
        });

        await Task.Delay(200);
        await fixture.Client.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.FromMilliseconds(100));
        var readsBefore = fixture.Store.For(roomName).Reads;

        Assert.Equal(RoomError.Forbidden, (await room.Post(Edit("ben", "b1", 1, "not yours"))).Error);
        Assert.True(fixture.Store.For(roomName).Reads > readsBefore, "the target was not looked up in the store");
        Assert.Equal(RoomError.NotFound, (await room.Post(Edit("ana", "a0", 3, "deleted long ago"))).Error);
        Assert.Equal(RoomError.NotFound, (await room.Post(Edit("ana", "a1", 4, "a deletion"))).Error);
        var edit = await room.Post(Edit("ana", "a2", 1, "the oldest, edited"));
        Assert.Equal(RoomError.None, edit.Error);
        var delete = await room.Post(Delete("ana", "a3", 2));
        Assert.Equal(RoomError.None, delete.Error);
        Assert.Equal(RoomError.NotFound, (await room.Post(Delete("ana", "a4", 2))).Error);
        Assert.Equal(Fillers + 6, delete.Message!.Seq);
    }

    private static PostRequest Edit(string user, string id, long target, string text)
        => new(user, id, text, null, ChatEventKind.Edit, target);

    private static PostRequest Delete(string user, string id, long target)
        => new(user, id, "", null, ChatEventKind.Delete, target);
}
