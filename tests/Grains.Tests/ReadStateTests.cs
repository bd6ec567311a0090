namespace OrleansChat.Grains.Tests;

/// <summary>Read state per user and room: it only rises, is capped at the room's seq, survives a re-activation,
/// and a rise reaches exactly the gateways holding the user's connections in the room.</summary>
[Collection(ClusterCollection.Name)]
public sealed class ReadStateTests(ChatClusterFixture fixture)
{
    [Fact]
    public async Task A_read_seq_only_rises_and_is_capped_at_the_rooms_seq()
    {
        var roomName = Rooms.Unique("read");
        var user = fixture.Client.GetGrain<IUserGrain>(Rooms.Unique("u")[..20]);
        Assert.Equal(5, await user.MarkRead(roomName, 5));
        Assert.Equal(0, await user.MarkRead(roomName, 5));
        Assert.Equal(0, await user.MarkRead(roomName, 2));
        Assert.Equal(5, await user.GetRead(roomName));
        Assert.Equal(0, await user.GetRead("another-room"));

        // Through the room: what is above its seq counts as its seq.
        var room = fixture.Room(roomName);
        var gateway = await TestGateway.SubscribedAsync(fixture.Client, room);
        var name = user.GetPrimaryKeyString();
        await room.Join(Rooms.Join(name, gateway, "c1"));
        for (var i = 0; i < 8; i++)
        {
            await room.Post(Rooms.Post("poster", $"p{i}"));
        }

        await room.Read(new ReadRequest(name, 100, gateway.Id, "c1"));
        Assert.Equal(8, await user.GetRead(roomName));
        Assert.Equal(8, (await room.Join(Rooms.Join(name, gateway, "c2"))).Read);
    }

    [Fact]
    public async Task A_join_waiting_for_the_users_read_state_still_gets_every_message_in_history_or_above_its_seq()
    {
        var room = fixture.Room(Rooms.Unique("slowread"));
        var gateway = await TestGateway.SubscribedAsync(fixture.Client, room);
        await room.Post(Rooms.Post("poster", "before"));
        var user = Rooms.Unique("slow")[..20];
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        fixture.ReadState.Hold(user, gate.Task);

        // The user grain's activation is held while the join waits for it; messages are stored meanwhile.
        var join = room.Join(Rooms.Join(user, gateway, "c1"));
        for (var i = 0; i < 5; i++)
        {
            await room.Post(Rooms.Post("poster", $"during-{i}"));
        }

        gate.SetResult();
        var joined = await join;

        // Everything up to the joined seq is in the history (what is above it comes live): nothing falls between.
        Assert.Equal(RoomError.None, joined.Error);
        Assert.Equal(6, joined.Seq);
        Assert.Equal(Rooms.Range(1, 6), joined.History.Seqs());
    }

    [Fact]
    public async Task A_rise_is_announced_to_the_gateways_of_the_users_connections_only()
    {
        var room = fixture.Room(Rooms.Unique("announce"));
        var a = await TestGateway.SubscribedAsync(fixture.Client, room);
        var b = await TestGateway.SubscribedAsync(fixture.Client, room);
        var c = await TestGateway.SubscribedAsync(fixture.Client, room);
        var user = Rooms.Unique("dev")[..20];
        await room.Join(Rooms.Join(user, a, "phone"));
        await room.Join(Rooms.Join(user, b, "laptop"));
        await room.Join(Rooms.Join("someone-else", c, "c1"));
        await room.Post(Rooms.Post("someone-else", "m1"));
        await room.Post(Rooms.Post("someone-else", "m2"));

        await room.Read(new ReadRequest(user, 2, a.Id, "phone"));
        await room.Read(new ReadRequest(user, 1, b.Id, "laptop"));
        await b.WaitUntilAsync(g => g.Calls.Any(call => !call.Reads.IsDefaultOrEmpty), "the read at gateway b");
        await Task.Delay(200);

        Assert.Equal([new ReadChange(user, 2, "phone")], b.Calls.SelectMany(call => call.Reads));
        Assert.Equal([new ReadChange(user, 2, "phone")], a.Calls.SelectMany(call => call.Reads));
        Assert.Empty(c.Calls.SelectMany(call => call.Reads));
    }

    [Fact]
    public async Task Read_state_survives_the_user_grains_reactivation()
    {
        var roomName = Rooms.Unique("durable");
        var name = Rooms.Unique("re")[..20];
        Assert.Equal(7, await fixture.Client.GetGrain<IUserGrain>(name).MarkRead(roomName, 7));

        await fixture.Client.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero);
        await Eventually.WaitAsync(async () => (await fixture.ReadState.LoadAsync(name)).GetValueOrDefault(roomName) == 7, "the stored read seq");

        Assert.Equal(7, await fixture.Client.GetGrain<IUserGrain>(name).GetRead(roomName));
        Assert.Equal(0, await fixture.Client.GetGrain<IUserGrain>(name).MarkRead(roomName, 6));
    }

    [Fact]
    public async Task Typing_goes_to_every_other_subscribed_gateway_and_is_never_stored()
    {
        var roomName = Rooms.Unique("typing");
        var room = fixture.Room(roomName);
        var origin = await TestGateway.SubscribedAsync(fixture.Client, room);
        var other = await TestGateway.SubscribedAsync(fixture.Client, room);

        await room.Typing(new TypingRequest("ana", origin.Id));
        await other.WaitUntilAsync(g => g.Calls.Any(call => !call.Typing.IsDefaultOrEmpty), "typing at the other gateway");
        await Task.Delay(200);

        Assert.Equal(["ana"], other.Calls.SelectMany(call => call.Typing));
        Assert.Empty(origin.Calls.SelectMany(call => call.Typing));
        Assert.Empty(await fixture.Store.AllAsync(roomName));
        Assert.Equal(1, (await room.Post(Rooms.Post("ana", "m1"))).Message!.Seq);
    }

    [Fact]
    public async Task Typing_is_dropped_for_a_gateway_that_asked_the_room_to_hold()
    {
        var room = fixture.Room(Rooms.Unique("typinghold"));
        var typist = await TestGateway.SubscribedAsync(fixture.Client, room);
        var witness = await TestGateway.SubscribedAsync(fixture.Client, room);
        var held = new TestGateway(fixture.Client) { HoldId = 1 };
        await held.SubscribeAsync(room);
        await room.Post(Rooms.Post("ana", "m1"));
        await held.WaitUntilAsync(g => g.Messages.Length == 1, "the message that earns the hold");
        // The hold is in the answer to that call: give it the moment it takes to reach the room.
        await Task.Delay(200);

        await room.Typing(new TypingRequest("ana", typist.Id));
        // A one-way call may be overtaken by the next call: the witness getting it shows the room handled it.
        await witness.WaitUntilAsync(g => g.Calls.Any(call => !call.Typing.IsDefaultOrEmpty), "typing at the witness");
        await room.Resume(held.Id, 1);
        held.HoldId = 0;
        await room.Post(Rooms.Post("ana", "m2"));
        await held.WaitUntilAsync(g => g.Messages.Length == 2, "the next message after resuming");

        Assert.Empty(held.Calls.SelectMany(call => call.Typing));
    }
}
