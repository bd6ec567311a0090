using System.Text.Json;
using OrleansChat.Gateway.Protocol;
using OrleansChat.Grains.Interfaces;

namespace OrleansChat.Gateway.Tests;

/// <summary>The metrics count events by type from the serialized bytes: every event the gateway sends is
/// classified as the type its JSON says.</summary>
public sealed class EventTypeTests
{
    public static TheoryData<string> Frames() =>
    [
        "welcome", "joined", "left", "message", "presence", "history", "error", "edit", "delete", "typing", "read",
    ];

    [Theory]
    [MemberData(nameof(Frames))]
    public void Each_event_is_counted_as_its_type(string type)
    {
        var message = new ChatMessage("r", 1, "u", "t", DateTime.UtcNow, "c");
        var frame = type switch
        {
            "welcome" => Events.Welcome("u", "g", 15),
            "joined" => Events.Joined("r", new JoinResult(RoomError.None, 1, ["u"], [message], false, true)),
            "left" => Events.Left("r"),
            "message" => Events.Stored(message),
            "presence" => Events.Presence("r", "u", joined: true),
            "history" => Events.History("r", [message]),
            "edit" => Events.Stored(message with { Seq = 2, Kind = ChatEventKind.Edit, Target = 1 }),
            "delete" => Events.Stored(message with { Seq = 2, Kind = ChatEventKind.Delete, Target = 1, Text = "" }),
            "typing" => Events.Typing("r", "u"),
            "read" => Events.Read("r", 1),
            _ => Events.Error(ErrorCodes.BadRequest, "no"),
        };

        Assert.Equal(type, JsonDocument.Parse(frame).RootElement.GetProperty("type").GetString());
        Assert.Equal(type, Events.Types[Events.TypeOf(frame)]);
    }

    [Fact]
    public void Anything_else_is_other()
    {
        Assert.Equal("other", Events.Types[Events.TypeOf("{}"u8.ToArray())]);
        Assert.Equal("other", Events.Types[Events.TypeOf("{\"type\":\"zzz\"}"u8.ToArray())]);
    }
}
