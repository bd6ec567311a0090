using System.Collections.Immutable;
using OrleansChat.Grains.Interfaces;

namespace OrleansChat.Grains.Tests;

/// <summary>Pipelined posts (<see cref="IRoomGrain.PostBatch"/>) and the room's side of flow control: a
/// gateway that answers a notification with a hold gets nothing more until it resumes, its backlog holds the
/// room's writes, and no gateway holds the room back longer than <see cref="RoomOptions.MaxHold"/>.</summary>
[Collection(ClusterCollection.Name)]
public sealed class FlowControlTests(ChatClusterFixture fixture)
{
    private static readonly TimeSpan MaxHold = new RoomOptions().MaxHold;
    private static readonly int GatewayBacklog = new RoomOptions().GatewayBacklog;

    /// <summary>Enough for the held gateway to be behind by more than the backlog: the first call (before it
    /// held) carries up to MaxBatch messages.</summary>
    private static readonly int Behind = GatewayBacklog + new RoomOptions().MaxBatch + 100;

    [Fact]
    public async Task A_batch_takes_consecutive_seqs_in_its_order_and_resends_in_it_get_the_originals()
    {
        var room = fixture.Room(Rooms.Unique("batch"));
        var first = await room.PostBatch(Batch("alice", Enumerable.Range(0, 50).Select(i => ($"a{i}", $"text {i}"))));
        Assert.Equal(Rooms.Range(1, 50), first.Acks.Select(a => a.Seq));
        Assert.All(first.Acks, a => Assert.Equal((RoomError.None, null), (a.Error, a.Original)));

        // A first post is answered with its seq only; a resend with the stored original.
        var second = await room.PostBatch(Batch("alice", [("a10", "changed"), ("new", "fresh"), ("new", "fresh"), ("", "no id")]));
        Assert.Equal((11L, "text 10", "a10"), (second.Acks[0].Seq, second.Acks[0].Original!.Text, second.Acks[0].Original!.ClientId));
        Assert.Equal((51L, null), (second.Acks[1].Seq, second.Acks[1].Original));
        Assert.Equal((51L, "fresh"), (second.Acks[2].Seq, second.Acks[2].Original!.Text));
        Assert.Equal(RoomError.BadRequest, second.Acks[3].Error);
        Assert.Equal(Rooms.Range(1, 51), (await room.History(new HistoryQuery(null, 0, 100))).Messages.Seqs());
    }

    [Fact]
    public async Task Concurrent_batches_each_take_a_run_of_consecutive_seqs_in_their_order()
    {
        var room = fixture.Room(Rooms.Unique("batches"));
        var results = await Task.WhenAll(Enumerable.Range(0, 6).Select(caller =>
            room.PostBatch(Batch($"u{caller}", Enumerable.Range(0, 100).Select(i => ($"{caller}-{i}", $"m{i}"))))));

        foreach (var batch in results)
        {
            var seqs = batch.Acks.Select(a => a.Seq).ToArray();
            Assert.Equal(Rooms.Range(seqs[0], seqs[0] + 99), seqs);
        }

        Assert.Equal(Rooms.Range(1, 600), results.SelectMany(b => b.Acks).Select(a => a.Seq).Order());
    }

    [Fact]
    public async Task A_gateway_that_holds_gets_nothing_until_it_resumes_then_everything_in_order()
    {
        var room = fixture.Room(Rooms.Unique("hold"));
        var held = await TestGateway.SubscribedAsync(fixture.Client, room);
        var other = await TestGateway.SubscribedAsync(fixture.Client, room);
        held.HoldId = 1;

        await room.Post(Rooms.Post("alice", "m1"));
        await held.WaitUntilAsync(g => g.Messages.Length == 1, "the first message");
        for (var i = 2; i <= 6; i++)
        {
            await room.Post(Rooms.Post("alice", $"m{i}"));
        }

        await other.WaitUntilAsync(g => g.Messages.Length == 6, "six messages at the other gateway");
        await Task.Delay(200);
        Assert.Single(held.Messages);

        held.HoldId = 0;
        await room.Resume(held.Id, 1);
        await held.WaitUntilAsync(g => g.Messages.Length == 6, "the held messages after resuming");
        Assert.Equal(Rooms.Range(1, 6), held.Messages.Seqs());
    }

    [Fact]
    public async Task A_resume_that_overtakes_its_hold_does_not_stall_the_gateway()
    {
        var room = fixture.Room(Rooms.Unique("overtake"));
        var gateway = await TestGateway.SubscribedAsync(fixture.Client, room);
        gateway.HoldId = 7;
        await room.Resume(gateway.Id, 7);

        await room.Post(Rooms.Post("alice", "m1"));
        await gateway.WaitUntilAsync(g => g.Messages.Length == 1, "the first message");
        gateway.HoldId = 0;
        await room.Post(Rooms.Post("alice", "m2"));
        await gateway.WaitUntilAsync(g => g.Messages.Length == 2, "the second message, well before MaxHold");
    }

    [Fact]
    public async Task A_held_gateways_backlog_holds_the_rooms_writes_until_it_resumes()
    {
        var room = fixture.Room(Rooms.Unique("backlog"));
        var held = await TestGateway.SubscribedAsync(fixture.Client, room);
        held.HoldId = 1;

        // The gateway falls behind by more than the backlog part way through: the rest waits for it.
        var posting = room.PostBatch(Batch("alice", Enumerable.Range(0, Behind).Select(i => ($"a{i}", "x"))));
        await Task.Delay(MaxHold / 4);
        Assert.False(posting.IsCompleted, "every post was stored while a gateway was behind by more than the backlog");

        held.HoldId = 0;
        await room.Resume(held.Id, 1);
        var posted = await posting.WaitAsync(MaxHold / 2);
        Assert.Equal(Rooms.Range(1, Behind), posted.Acks.Select(a => a.Seq));
        await held.WaitUntilAsync(g => g.Messages.Length == Behind, "every message after resuming");
        Assert.Equal(Rooms.Range(1, Behind), held.Messages.Seqs());
    }

    [Fact]
    public async Task A_gateway_that_never_resumes_holds_the_room_back_at_most_MaxHold()
    {
        var room = fixture.Room(Rooms.Unique("nohurry"));
        var held = await TestGateway.SubscribedAsync(fixture.Client, room);
        var other = await TestGateway.SubscribedAsync(fixture.Client, room);
        held.HoldId = 1;

        var started = DateTime.UtcNow;
        await room.PostBatch(Batch("alice", Enumerable.Range(0, Behind).Select(i => ($"a{i}", "x")))).WaitAsync(MaxHold * 3);
        Assert.True(DateTime.UtcNow - started >= MaxHold / 2, "the writes did not wait for the held gateway at all");
        await other.WaitUntilAsync(g => g.Messages.Length == Behind, "every message at the other gateway");

        // The room sends to the held gateway again (its repeated hold id counts as resumed).
        await held.WaitUntilAsync(g => g.Messages.Length == Behind, "every message after its hold expired");
    }

    private static PostBatchRequest Batch(string user, IEnumerable<(string Id, string Text)> posts)
        => new(user, null, [.. posts.Select(post => new PostItem(post.Id, post.Text))]);
}
