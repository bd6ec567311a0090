using System.Collections.Immutable;

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

    [Fact]
    public async Task Members_restored_after_a_reactivation_are_not_announced_even_if_the_gateway_joined_first()
    {
        // A fresh activation: gateways re-registering their members now are restoring, not joining.
        var room = fixture.Room(Rooms.Unique("restore"));
        var east = new TestGateway(fixture.Client, "east");
        var west = new TestGateway(fixture.Client, "west");
        await east.SubscribeAsync(room, members: Members(("carol", "c1")));

        // West's join reaches the room before its renewal does (as when a user joins right after a silo loss).
        var bob = await room.Join(Rooms.Join("bob", west, "b1"));
        Assert.False(bob.GatewaySubscribed);
        await west.SubscribeAsync(room, members: Members(("bob", "b1"), ("dave", "d1")));

        await east.WaitUntilAsync(g => g.PresenceChanges.Length >= 1, "bob's join");
        await Task.Delay(300);
        Assert.Equal([new PresenceChange("bob", true, "b1")], east.PresenceChanges);
        var members = await room.Join(Rooms.Join("erin", east, "e1"));
        Assert.Equal(["bob", "carol", "dave", "erin"], members.Members.Order());
    }

    [Fact]
    public async Task A_renewal_announces_no_joiner_and_removes_connections_it_no_longer_lists()
    {
        var room = fixture.Room(Rooms.Unique("renewal"));
        var east = new TestGateway(fixture.Client, "east");
        var west = new TestGateway(fixture.Client, "west");
        await east.SubscribeAsync(room);
        await west.SubscribeAsync(room);

        // West's renewal already lists zoe, whose join is still on its way: only the join announces her.
        await west.SubscribeAsync(room, members: Members(("zoe", "z1")));
        await room.Join(Rooms.Join("zoe", west, "z1"));
        // Her tab closed and the Leave call was lost: the next renewal no longer lists her.
        await west.SubscribeAsync(room, members: GatewayMembers.Empty);

        await east.WaitUntilAsync(g => g.PresenceChanges.Length >= 2, "zoe's join and leave");
        await Task.Delay(200);
        Assert.Equal([new PresenceChange("zoe", true, "z1"), new PresenceChange("zoe", false, null)], east.PresenceChanges);
    }

    [Fact]
    public async Task A_renewal_taken_before_a_join_does_not_remove_that_joiner()
    {
        var room = fixture.Room(Rooms.Unique("stale"));
        var west = new TestGateway(fixture.Client, "west");
        await west.SubscribeAsync(room);

        // The gateway took its snapshot (4 joins so far) just before zoe's join (its 5th), and the snapshot reached
        // the room after the join: it does not list her, and must not remove her.
        await room.Join(Rooms.Join("zoe", west, "z1") with { Version = 5 });
        await west.SubscribeAsync(room, members: GatewayMembers.Empty with { Version = 4 });
        Assert.Equal(["zoe"], (await room.Info()).Members.ToArray());

        // A snapshot taken after her join that no longer lists her: her leave was lost, she goes.
        await west.SubscribeAsync(room, members: GatewayMembers.Empty with { Version = 5 });
        Assert.Empty((await room.Info()).Members);
    }

    private static GatewayMembers Members(params (string User, string Connection)[] members)
        => new(members.ToImmutableDictionary(m => m.User, m => ImmutableArray.Create(m.Connection)));
}
