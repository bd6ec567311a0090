using System.Net.WebSockets;
using System.Text.Json;

namespace OrleansChat.Client;

/// <summary>Something the client delivers: a stored room event, presence, typing, read, a removal, or a change of
/// the connection.</summary>
public abstract record ChatEvent;

/// <summary>The kind of a stored room event.</summary>
public enum ChatMessageType
{
    /// <summary>A posted message.</summary>
    Message,

    /// <summary>A new text for the message <see cref="ChatMessage.Target"/>.</summary>
    Edit,

    /// <summary>The message <see cref="ChatMessage.Target"/> was deleted.</summary>
    Delete,
}

/// <summary>A stored event of a room (message, edit or delete), delivered once per client in <see cref="Seq"/> order.</summary>
/// <param name="Room">The room.</param>
/// <param name="Seq">Its position in the room's log.</param>
/// <param name="Type">Message, edit or delete.</param>
/// <param name="User">Who wrote it (for a moderator's delete, the moderator).</param>
/// <param name="Text">The text (a message's or an edit's new text); null for a delete.</param>
/// <param name="Time">When it was stored (UTC).</param>
/// <param name="Id">The sender's client id.</param>
/// <param name="Target">The seq of the message an edit or delete changes; null for a message.</param>
public sealed record ChatMessage(string Room, long Seq, ChatMessageType Type, string User, string? Text, DateTimeOffset Time, string Id, long? Target) : ChatEvent
{
    internal static ChatMessage Parse(JsonElement e)
    {
        var type = e.TryGetProperty("type", out var t) ? t.GetString() : "message";
        return new ChatMessage(
            e.GetProperty("room").GetString()!,
            e.GetProperty("seq").GetInt64(),
            type switch { "edit" => ChatMessageType.Edit, "delete" => ChatMessageType.Delete, _ => ChatMessageType.Message },
            e.GetProperty("user").GetString()!,
            e.TryGetProperty("text", out var text) ? text.GetString() : null,
            e.TryGetProperty("time", out var time) ? time.GetDateTimeOffset() : default,
            e.TryGetProperty("id", out var id) ? id.GetString() ?? "" : "",
            e.TryGetProperty("target", out var target) && target.ValueKind == JsonValueKind.Number ? target.GetInt64() : null);
    }
}

/// <summary>A user came into a room (<paramref name="Joined"/> true) or left it.</summary>
/// <param name="Room">The room.</param>
/// <param name="User">The user.</param>
/// <param name="Joined">True for the first connection in, false for the last one out.</param>
public sealed record Presence(string Room, string User, bool Joined) : ChatEvent;

/// <summary>Another user is typing in a room (best effort: show it for about 6 s or until their next message).</summary>
/// <param name="Room">The room.</param>
/// <param name="User">The user who types.</param>
public sealed record Typing(string Room, string User) : ChatEvent;

/// <summary>This user read a room up to <paramref name="Seq"/> on another connection.</summary>
/// <param name="Room">The room.</param>
/// <param name="Seq">The new read seq.</param>
public sealed record Read(string Room, long Seq) : ChatEvent;

/// <summary>The client was removed from a room by the server (<paramref name="Reason"/> <c>kicked</c>); it does not rejoin it.</summary>
/// <param name="Room">The room.</param>
/// <param name="Reason">The server's reason, if any.</param>
public sealed record Left(string Room, string? Reason) : ChatEvent;

/// <summary>A connection to a gateway is up and every room is rejoined (and caught up).</summary>
/// <param name="User">The user name the gateway knows this client by.</param>
/// <param name="Gateway">The gateway's node name.</param>
/// <param name="Reconnect">False for the first connection.</param>
public sealed record Connected(string User, string Gateway, bool Reconnect) : ChatEvent;

/// <summary>The connection was lost. With <paramref name="WillReconnect"/> false this is the last event (closed with
/// 1008 by the server, or the client was disposed).</summary>
/// <param name="Status">The close code, when the gateway sent one.</param>
/// <param name="Reason">The close reason or the error.</param>
/// <param name="WillReconnect">Whether the client reconnects.</param>
public sealed record Disconnected(WebSocketCloseStatus? Status, string? Reason, bool WillReconnect) : ChatEvent;

/// <summary>The answer to <see cref="OrleansChatClient.JoinAsync"/>.</summary>
/// <param name="Room">The room.</param>
/// <param name="Seq">The room's latest seq at the join.</param>
/// <param name="Members">User names now in the room, this user included.</param>
/// <param name="History">The stored events the gateway sent with the join, oldest first; later ones come as events.</param>
/// <param name="Read">This user's read seq in the room.</param>
public sealed record JoinedRoom(string Room, long Seq, IReadOnlyList<string> Members, IReadOnlyList<ChatMessage> History, long Read);
