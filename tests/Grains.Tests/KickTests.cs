namespace OrleansChat.Grains.Tests;

/// <summary>The server API's room calls at the grain: info, kick (presence, the gateways told), bans.</summary>
[Collection(ClusterCollection.Name)]
public sealed class KickTests(ChatClusterFixture fixture)
{
    [Fact]
    public async Task A_kick_takes_the_user_out_of_presence_tells_their_gateways_and_the_others_hear_a_leave()
    {
        var room = fixture.Room(Rooms.Unique("kick"));
        var a = await TestGateway.SubscribedAsync(fixture.Client, room);
        var b = await TestGateway.SubscribedAsync(fixture.Client, room);
        await room.Join(Rooms.Join("troll", a, "t1"));
        await room.Join(Rooms.Join("troll", a, "t2"));
        await room.Join(Rooms.Join("ok", b, "o1"));

        var result = await room.Kick(new KickRequest("troll", 0));

        Assert.Equal((RoomError.None, 2), (result.Error, result.Connections));
        Assert.Equal(["ok"], (await room.Info()).Members.ToArray());
        await b.WaitUntilAsync(g => g.PresenceChanges.Any(change => change is { User: "troll", Joined: false }), "the leave at b");
        await a.WaitUntilAsync(g => g.Calls.Any(call => !call.Kicked.IsDefaultOrEmpty), "the kick at a");
        Assert.Equal(["troll"], a.Calls.SelectMany(call => call.Kicked));
        Assert.Empty(b.Calls.SelectMany(call => call.Kicked));
        // No ban: the user may come back.
        Assert.Equal(RoomError.None, (await room.Join(Rooms.Join("troll", a, "t3"))).Error);
    }

    [Fact]
    public async Task A_ban_refuses_joins_until_it_ends_and_survives_a_reactivation()
    {
        var room = fixture.Room(Rooms.Unique("ban"));
        var gateway = await TestGateway.SubscribedAsync(fixture.Client, room);
        Assert.Equal(RoomError.None, (await room.Kick(new KickRequest("short", 1))).Error);
        Assert.Equal(RoomError.None, (await room.Kick(new KickRequest("long", 3600))).Error);
        Assert.Equal(RoomError.Banned, (await room.Join(Rooms.Join("short", gateway, "s1"))).Error);

        await fixture.Client.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero);
        Assert.Equal(RoomError.Banned, (await room.Join(Rooms.Join("long", gateway, "l1"))).Error);
        await Eventually.WaitAsync(async () => (await room.Join(Rooms.Join("short", gateway, "s2"))).Error == RoomError.None, "the short ban to end");
        Assert.Equal(RoomError.BadRequest, (await room.Kick(new KickRequest("long", -1))).Error);
        Assert.Equal(RoomError.BadRequest, (await room.Kick(new KickRequest("not valid", 0))).Error);
    }

    [Fact]
    public async Task Info_reports_the_seq_and_members()
    {
        var room = fixture.Room(Rooms.Unique("info"));
        var gateway = await TestGateway.SubscribedAsync(fixture.Client, room);
        await room.Join(Rooms.Join("ann", gateway, "a1"));
        await room.Post(Rooms.Post("ann", "m1"));
        var info = await room.Info();
        Assert.Equal((RoomError.None, 1L), (info.Error, info.Seq));
        Assert.Equal(["ann"], info.Members.ToArray());
        Assert.Equal(RoomError.BadRoom, (await fixture.Room("no good").Info()).Error);
    }
}
