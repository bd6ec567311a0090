namespace OrleansChat.Grains.Tests;

[Collection(ClusterCollection.Name)]
public sealed class BroadcastTests(ChatClusterFixture fixture)
{
    [Fact]
    public async Task Every_subscribed_gateway_receives_every_message_once_in_seq_order_batched_under_load()
    {
        const int callers = 10;
        const int postsEach = 30;
        const int total = callers * postsEach;
        var room = fixture.Room(Rooms.Unique("fanout"));
        TestGateway[] gateways =
        [
            await TestGateway.SubscribedAsync(fixture.Client, room),
            await TestGateway.SubscribedAsync(fixture.Client, room),
            await TestGateway.SubscribedAsync(fixture.Client, room),
        ];

        await Rooms.Concurrently(callers, async caller =>
        {
            for (var i = 0; i < postsEach; i++)
            {
                Assert.Equal(RoomError.None, (await room.Post(Rooms.Post($"u{caller}", $"{caller}-{i}"))).Error);
            }
        });

        foreach (var gateway in gateways)
        {
            await gateway.WaitUntilAsync(g => g.Messages.Length >= total, $"{total} messages at {gateway.Id}");
        }

        // Anything sent twice would have arrived by now: the last message came after it on the same path.
        await Task.Delay(100);
        foreach (var gateway in gateways)
        {
            // On failure, shows the seqs as they arrived, one group per call.
            Assert.True(
                Rooms.Range(1, total).SequenceEqual(gateway.Messages.Seqs()),
                $"{gateway.Id} received: " + string.Join(" | ", gateway.Calls.Select(call => string.Join(",", call.Messages.Seqs()))));
            Assert.All(gateway.Calls, call => Assert.Empty(call.Presence));
        }

        // Group commit: posts that arrive during a write go out together, one call per gateway per write.
        Assert.Contains(gateways[0].Calls, call => call.Messages.Length > 1);
    }
}

[Collection(ClusterCollection.Name)]
public sealed class OwnMessageTests(ChatClusterFixture fixture)
{
    [Fact]
    public async Task A_gateway_is_not_notified_of_what_it_posted_when_nothing_else_is_pending_and_others_are()
    {
        var room = fixture.Room(Rooms.Unique("own"));
        var poster = await TestGateway.SubscribedAsync(fixture.Client, room);
        var other = await TestGateway.SubscribedAsync(fixture.Client, room);

        // The poster delivers its own message from the post's answer: a notification would be a copy.
        var mine = await room.Post(Rooms.Post("alice", "a1", gatewayId: poster.Id));
        await other.AssertReceivedAsync([mine.Message!]);
        Assert.Empty(poster.Messages);

        // A message posted through another gateway reaches the poster as usual.
        var theirs = await room.Post(Rooms.Post("bob", "b1", gatewayId: other.Id));
        await poster.AssertReceivedAsync([theirs.Message!]);
        Assert.Equal([mine.Message!], other.Messages);
    }
}
