namespace OrleansChat.Grains.Tests;

/// <summary>A room of 250 messages; the grain keeps about the newest 100–200 in memory
/// (<see cref="ChatClusterFixture.RecentMessages"/>), so older pages come from the store.</summary>
[Collection(ClusterCollection.Name)]
public sealed class HistoryTests(ChatClusterFixture fixture)
{
    private const int Count = 250;

    private async Task<(string Name, IRoomGrain Room)> SeedAsync(int count = Count)
    {
        var name = Rooms.Unique("history");
        var room = fixture.Room(name);
        for (var i = 1; i <= count; i++)
        {
            Assert.Equal(i, (await room.Post(Rooms.Post("alice", $"m{i}"))).Message!.Seq);
        }

        return (name, room);
    }

    private static async Task<long[]> SeqsAsync(IRoomGrain room, long? before, long? after, int limit)
    {
        var result = await room.History(new HistoryQuery(before, after, limit));
        Assert.Equal(RoomError.None, result.Error);
        return [.. result.Messages.Seqs()];
    }

    [Fact]
    public async Task Latest_before_and_after_return_the_right_pages_oldest_first()
    {
        var (_, room) = await SeedAsync();

        Assert.Equal(Rooms.Range(241, 250), await SeqsAsync(room, null, null, 10));
        Assert.Equal(Rooms.Range(51, 250), await SeqsAsync(room, null, null, 200));
        Assert.Equal(Rooms.Range(220, 239), await SeqsAsync(room, 240, null, 20));
        Assert.Equal(Rooms.Range(70, 99), await SeqsAsync(room, 100, null, 30));
        Assert.Equal(Rooms.Range(1, 4), await SeqsAsync(room, 5, null, 10));
        Assert.Empty(await SeqsAsync(room, 1, null, 10));
        Assert.Equal(Rooms.Range(201, 250), await SeqsAsync(room, 1000, null, 50));
        Assert.Equal(Rooms.Range(11, 30), await SeqsAsync(room, null, 10, 20));
        Assert.Equal(Rooms.Range(1, 200), await SeqsAsync(room, null, 0, 200));
        Assert.Equal(Rooms.Range(241, 250), await SeqsAsync(room, null, 240, 50));
        Assert.Empty(await SeqsAsync(room, null, 250, 50));
        Assert.Empty(await SeqsAsync(room, null, 1L << 32, 200));
    }

    [Fact]
    public async Task History_older_than_the_memory_window_is_read_from_the_store()
    {
        var (name, room) = await SeedAsync();
        var faults = fixture.Store.For(name);
        var stored = await fixture.Store.AllAsync(name);

        var readsBefore = faults.Reads;
        var recent = await room.History(new HistoryQuery(240, null, 20));
        Assert.Equal(readsBefore, faults.Reads);

        var old = await room.History(new HistoryQuery(50, null, 20));
        Assert.Equal(readsBefore + 1, faults.Reads);

        Assert.Equal(stored.Skip(219).Take(20), recent.Messages);
        Assert.Equal(stored.Skip(29).Take(20), old.Messages);
    }

    [Fact]
    public async Task Join_answers_latest_50_or_those_after_since_with_more_when_cut_at_200()
    {
        var (_, room) = await SeedAsync();
        var gateway = new TestGateway(fixture.Client);

        var plain = await room.Join(Rooms.Join("bob", gateway, "b1"));
        var cut = await room.Join(Rooms.Join("bob", gateway, "b2", since: 10));
        var exactly200 = await room.Join(Rooms.Join("bob", gateway, "b3", since: 50));
        var recent = await room.Join(Rooms.Join("bob", gateway, "b4", since: 245));
        var current = await room.Join(Rooms.Join("bob", gateway, "b5", since: 250));
        var ahead = await room.Join(Rooms.Join("bob", gateway, "b6", since: 1L << 32));

        Assert.All([plain, cut, exactly200, recent, current, ahead], join =>
        {
            Assert.Equal(RoomError.None, join.Error);
            Assert.Equal(Count, join.Seq);
        });
        Assert.Equal(Rooms.Range(201, 250), plain.History.Seqs());
        Assert.Equal(Rooms.Range(11, 210), cut.History.Seqs());
        Assert.True(cut.More);
        Assert.Equal(Rooms.Range(51, 250), exactly200.History.Seqs());
        Assert.Equal(Rooms.Range(246, 250), recent.History.Seqs());
        Assert.Empty(current.History);
        Assert.Empty(ahead.History);
        Assert.All([plain, exactly200, recent, current, ahead], join => Assert.False(join.More));
    }

    [Fact]
    public async Task Empty_room_has_seq_0_and_no_history()
    {
        var room = fixture.Room(Rooms.Unique("empty"));
        var join = await room.Join(Rooms.Join("bob", new TestGateway(fixture.Client), "b1", since: 0));

        Assert.Equal(0, join.Seq);
        Assert.Empty(join.History);
        Assert.Empty(await SeqsAsync(room, null, null, 50));
        Assert.Empty(await SeqsAsync(room, 10, null, 50));
    }

    [Theory]
    [InlineData(null, null, 0)]
    [InlineData(null, null, 201)]
    [InlineData(10L, null, 0)]
    [InlineData(10L, null, 201)]
    [InlineData(null, 10L, 0)]
    [InlineData(null, 10L, 201)]
    [InlineData(null, null, -1)]
    [InlineData(-1L, null, 10)]
    [InlineData(null, -1L, 10)]
    [InlineData(5L, 1L, 10)]
    public async Task Invalid_query_is_BadRequest(long? before, long? after, int limit)
    {
        var (_, room) = await SeedAsync(3);

        var result = await room.History(new HistoryQuery(before, after, limit));

        Assert.Equal(RoomError.BadRequest, result.Error);
        Assert.Empty(result.Messages);
    }

    [Fact]
    public async Task Limits_1_and_200_are_valid_and_negative_since_is_BadRequest()
    {
        var (_, room) = await SeedAsync(3);

        Assert.Equal(Rooms.Range(3, 3), await SeqsAsync(room, null, null, 1));
        Assert.Equal(Rooms.Range(1, 3), await SeqsAsync(room, null, null, 200));
        var join = await room.Join(Rooms.Join("bob", new TestGateway(fixture.Client), "b1", since: -1));
        Assert.Equal(RoomError.BadRequest, join.Error);
    }
}
