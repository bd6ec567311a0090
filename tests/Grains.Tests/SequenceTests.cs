using System.Collections.Concurrent;

namespace OrleansChat.Grains.Tests;

[Collection(ClusterCollection.Name)]
public sealed class SequenceTests(ChatClusterFixture fixture)
{
    [Fact]
    public async Task Concurrent_posts_from_many_callers_get_contiguous_seqs_each_exactly_once()
    {
        const int callers = 20;
        const int postsEach = 50;
        var roomName = Rooms.Unique("seq");
        var room = fixture.Room(roomName);
        var acked = new ConcurrentBag<ChatMessage>();

        await Rooms.Concurrently(callers, async caller =>
        {
            for (var i = 0; i < postsEach; i++)
            {
                var result = await room.Post(Rooms.Post($"user{caller}", $"c{caller}-{i}"));
                Assert.Equal(RoomError.None, result.Error);
                Assert.False(result.Duplicate);
                acked.Add(result.Message!);
            }
        });

        const int total = callers * postsEach;
        Assert.Equal(Rooms.Range(1, total), acked.Seqs().Order());
        var stored = await fixture.Store.AllAsync(roomName);
        Assert.Equal(Rooms.Range(1, total), stored.Seqs());
        // The acknowledgement names the stored message, not just its seq.
        Assert.Equal(acked.OrderBy(m => m.Seq), stored);
        // Each caller's posts were stored in the order it sent them.
        foreach (var caller in stored.GroupBy(m => m.User))
        {
            Assert.Equal(Enumerable.Range(0, postsEach).Select(i => $"c{caller.Key[4..]}-{i}"), caller.Select(m => m.ClientId));
        }
    }
}
