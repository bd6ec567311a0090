namespace OrleansChat.Grains.Tests;

[Collection(ClusterCollection.Name)]
public sealed class ValidationTests(ChatClusterFixture fixture)
{
    [Theory]
    [InlineData("has space")]
    [InlineData("slash/room")]
    [InlineData("ünïcode")]
    public async Task Bad_room_name_is_BadRoom_for_post_join_and_history(string badRoom)
    {
        var room = fixture.Room(badRoom);
        var gateway = new TestGateway(fixture.Client);

        Assert.Equal(RoomError.BadRoom, (await room.Post(Rooms.Post("alice", "1"))).Error);
        Assert.Equal(RoomError.BadRoom, (await room.Join(Rooms.Join("alice", gateway, "c1"))).Error);
        Assert.Equal(RoomError.BadRoom, (await room.History(new HistoryQuery(null, null, 10))).Error);
        Assert.Empty(await fixture.Store.AllAsync(badRoom));
    }

    [Fact]
    public async Task Room_name_of_65_characters_is_BadRoom_and_64_is_accepted()
    {
        var sixtyFour = Rooms.Unique("len").PadRight(64, 'x');
        Assert.Equal(RoomError.None, (await fixture.Room(sixtyFour).Post(Rooms.Post("alice", "1"))).Error);
        Assert.Equal(RoomError.BadRoom, (await fixture.Room(sixtyFour + "x").Post(Rooms.Post("alice", "1"))).Error);
    }

    [Fact]
    public async Task Text_over_4096_utf8_bytes_is_TooLarge_and_exactly_4096_is_accepted()
    {
        var roomName = Rooms.Unique("size");
        var room = fixture.Room(roomName);

        // 2048 two-byte characters: 4096 bytes; one more is 4098 bytes but only 2049 characters.
        var atLimit = await room.Post(Rooms.Post("alice", "ok", new string('é', 2048)));
        var overByBytes = await room.Post(Rooms.Post("alice", "big", new string('é', 2049)));
        var overAscii = await room.Post(Rooms.Post("alice", "big2", new string('a', 4097)));

        Assert.Equal(RoomError.None, atLimit.Error);
        Assert.Equal(RoomError.TooLarge, overByBytes.Error);
        Assert.Equal(RoomError.TooLarge, overAscii.Error);
        Assert.Null(overByBytes.Message);
        Assert.Equal(["ok"], (await fixture.Store.AllAsync(roomName)).Select(m => m.ClientId));
    }

    [Theory]
    [InlineData("alice", "id", "")]
    [InlineData("alice", "", "text")]
    [InlineData("alice", "65", "text")]
    [InlineData("", "id", "text")]
    [InlineData("bad user", "id", "text")]
    public async Task Malformed_post_is_BadRequest_and_not_stored(string user, string clientId, string text)
    {
        var roomName = Rooms.Unique("malformed");
        var id = clientId == "65" ? new string('i', 65) : clientId;

        var result = await fixture.Room(roomName).Post(Rooms.Post(user, id, text));

        Assert.Equal(RoomError.BadRequest, result.Error);
        Assert.Null(result.Message);
        Assert.Empty(await fixture.Store.AllAsync(roomName));
    }

    [Fact]
    public async Task Client_id_of_64_characters_is_accepted()
    {
        var result = await fixture.Room(Rooms.Unique("id64")).Post(Rooms.Post("alice", new string('i', 64)));
        Assert.Equal(RoomError.None, result.Error);
    }

    [Fact]
    public async Task Malformed_post_to_a_bad_room_is_BadRequest_first()
    {
        // The protocol's order: well-formed before room name.
        var result = await fixture.Room("bad room").Post(Rooms.Post("alice", "", "text"));
        Assert.Equal(RoomError.BadRequest, result.Error);
    }
}
