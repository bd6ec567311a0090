namespace OrleansChat.Grains.Tests;

[Collection(ClusterCollection.Name)]
public sealed class PresenceTests(ChatClusterFixture fixture)
{
    [Fact]
    public async Task User_joins_on_first_connection_across_gateways_and_leaves_on_the_last()
    {
        var room = fixture.Room(Rooms.Unique("presence"));
        var east = new TestGateway(fixture.Client, "east");
        var west = new TestGateway(fixture.Client, "west");
        await east.SubscribeAsync(room);
        await west.SubscribeAsync(room);

        var aliceFirst = await room.Join(Rooms.Join("alice", east, "a1"));
        var aliceSecond = await room.Join(Rooms.Join("alice", west, "a2"));
        var aliceAgain = await room.Join(Rooms.Join("alice", west, "a2"));
        var bob = await room.Join(Rooms.Join("bob", west, "b1"));
        await room.Leave(new LeaveRequest("alice", "east", "a1"));
        await room.Leave(new LeaveRequest("alice", "east", "never-joined"));
        await room.Leave(new LeaveRequest("alice", "west", "a2"));

        Assert.Equal(["alice"], aliceFirst.Members.Order());
        Assert.Equal(["alice"], aliceSecond.Members.Order());
        Assert.Equal(["alice"], aliceAgain.Members.Order());
        Assert.Equal(["alice", "bob"], bob.Members.Order());
        Assert.All([aliceFirst, aliceSecond, bob], join => Assert.True(join.GatewaySubscribed));

        PresenceChange[] expected =
        [
            new("alice", true, "a1"),
            new("bob", true, "b1"),
            new("alice", false, "a2"),
        ];
        foreach (var gateway in new[] { east, west })
        {
            await gateway.WaitUntilAsync(g => g.PresenceChanges.Length >= expected.Length, "three presence changes");
        }

        // Calls arrive in order: anything extra would have come before alice's leave.
        Assert.Equal(expected, east.PresenceChanges);
        Assert.Equal(expected, west.PresenceChanges);
        var last = await room.Join(Rooms.Join("carol", east, "c1"));
        Assert.Equal(["bob", "carol"], last.Members.Order());
    }

    [Fact]
    public async Task Join_from_a_gateway_that_never_subscribed_tells_it_to_subscribe()
    {
        var room = fixture.Room(Rooms.Unique("unsubscribed"));
        var gateway = new TestGateway(fixture.Client);

        var join = await room.Join(Rooms.Join("alice", gateway, "a1"));
        var post = await room.Post(Rooms.Post("alice", "1", gatewayId: gateway.Id));

        Assert.Equal(RoomError.None, join.Error);
        Assert.False(join.GatewaySubscribed);
        Assert.False(post.GatewaySubscribed);
        await gateway.SubscribeAsync(room);
        Assert.True((await room.Post(Rooms.Post("alice", "2", gatewayId: gateway.Id))).GatewaySubscribed);
    }
}
