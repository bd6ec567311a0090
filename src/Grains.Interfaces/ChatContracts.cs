using System.Collections.Immutable;

namespace OrleansChat.Grains.Interfaces;

/// <summary>What a stored event of a room's log is: a message, or an edit or a deletion of one.</summary>
[GenerateSerializer, Alias("OrleansChat.ChatEventKind")]
public enum ChatEventKind : byte
{
    Message = 0,
    Edit = 1,
    Delete = 2,
}

/// <summary>One stored event of a room's log, numbered by <see cref="Seq"/>: a message, or (by <see cref="Kind"/>)
/// an edit or a deletion of the message <see cref="Target"/> (0 for a message). <see cref="ClientId"/> is the id the
/// sender chose (used for dedupe, one namespace per user and room for all kinds). A deletion's text is empty.</summary>
[GenerateSerializer, Immutable, Alias("OrleansChat.ChatMessage")]
public sealed record ChatMessage(
    [property: Id(0)] string Room,
    [property: Id(1)] long Seq,
    [property: Id(2)] string User,
    [property: Id(3)] string Text,
    [property: Id(4)] DateTime Time,
    [property: Id(5)] string ClientId,
    [property: Id(6)] ChatEventKind Kind = ChatEventKind.Message,
    [property: Id(7)] long Target = 0);

/// <summary>A user's read seq in a room rose. <see cref="OriginConnection"/> sent it: it is not told.</summary>
[GenerateSerializer, Immutable, Alias("OrleansChat.ReadChange")]
public sealed record ReadChange(
    [property: Id(0)] string User,
    [property: Id(1)] long Seq,
    [property: Id(2)] string? OriginConnection);

/// <summary>Presence change of a user in a room. <see cref="OriginConnection"/> is the connection whose
/// join or leave caused it (the gateway does not echo the event to that connection); null when the
/// change was caused by the cluster (an expired gateway).</summary>
[GenerateSerializer, Immutable, Alias("OrleansChat.PresenceChange")]
public sealed record PresenceChange(
    [property: Id(0)] string User,
    [property: Id(1)] bool Joined,
    [property: Id(2)] string? OriginConnection);

/// <summary>Events of one room sent to one gateway in one call: stored events in seq order, users removed from the
/// room by the server API (<see cref="Kicked"/>: the gateway takes their connections out before it delivers the
/// presence that follows), presence, then the lossy ones: users typing (not stored, dropped first when the gateway
/// is behind) and read changes for the gateway's connections of those users. An older sender may leave the last
/// ones out: read a default array as empty.</summary>
[GenerateSerializer, Immutable, Alias("OrleansChat.RoomEvents")]
public sealed record RoomEvents(
    [property: Id(0)] string Room,
    [property: Id(1)] ImmutableArray<ChatMessage> Messages,
    [property: Id(2)] ImmutableArray<PresenceChange> Presence,
    [property: Id(3)] ImmutableArray<string> Typing,
    [property: Id(4)] ImmutableArray<ReadChange> Reads,
    [property: Id(5)] ImmutableArray<string> Kicked = default);

/// <summary>The connections one gateway holds in a room, per user. Sent on every subscription renewal so a
/// re-activated grain (silo loss, idle collection) recovers presence without anyone rejoining.
/// <see cref="Version"/> counts the gateway's joins in the room when the snapshot was taken: a snapshot that reaches
/// the room after a later join (it was taken before) must not remove that joiner.</summary>
[GenerateSerializer, Immutable, Alias("OrleansChat.GatewayMembers")]
public sealed record GatewayMembers(
    [property: Id(0)] ImmutableDictionary<string, ImmutableArray<string>> ConnectionsByUser,
    [property: Id(1)] long Version = 0)
{
    public static GatewayMembers Empty { get; } = new(ImmutableDictionary<string, ImmutableArray<string>>.Empty);
}

[GenerateSerializer, Immutable, Alias("OrleansChat.SubscribeRequest")]
public sealed record SubscribeRequest(
    [property: Id(0)] string GatewayId,
    [property: Id(1)] IRoomObserver Observer,
    [property: Id(2)] TimeSpan Lifetime,
    [property: Id(3)] GatewayMembers Members);

/// <summary>Answer to a subscription: the room's latest seq, so the gateway can fetch any gap it missed.</summary>
[GenerateSerializer, Immutable, Alias("OrleansChat.SubscribeResult")]
public sealed record SubscribeResult([property: Id(0)] long Seq);

[GenerateSerializer, Immutable, Alias("OrleansChat.JoinRequest")]
public sealed record JoinRequest(
    [property: Id(0)] string User,
    [property: Id(1)] string GatewayId,
    [property: Id(2)] string ConnectionId,
    [property: Id(3)] long? Since,
    [property: Id(4)] long Version = 0);

/// <summary><see cref="GatewaySubscribed"/> false tells the gateway its subscription is gone (the grain
/// re-activated): it re-subscribes at once instead of waiting for its renewal timer.</summary>
[GenerateSerializer, Immutable, Alias("OrleansChat.JoinResult")]
public sealed record JoinResult(
    [property: Id(0)] RoomError Error,
    [property: Id(1)] long Seq,
    [property: Id(2)] ImmutableArray<string> Members,
    [property: Id(3)] ImmutableArray<ChatMessage> History,
    [property: Id(4)] bool More,
    [property: Id(5)] bool GatewaySubscribed,
    [property: Id(6)] long Read = 0);

[GenerateSerializer, Immutable, Alias("OrleansChat.LeaveRequest")]
public sealed record LeaveRequest(
    [property: Id(0)] string User,
    [property: Id(1)] string GatewayId,
    [property: Id(2)] string ConnectionId);

/// <summary>A post: a message, or (by <see cref="Kind"/>) an edit or a deletion of the user's own message
/// <see cref="Target"/> (a deletion's text is empty). A <see cref="Moderator"/> deletion (the server API) may
/// remove anyone's message.</summary>
[GenerateSerializer, Immutable, Alias("OrleansChat.PostRequest")]
public sealed record PostRequest(
    [property: Id(0)] string User,
    [property: Id(1)] string ClientId,
    [property: Id(2)] string Text,
    [property: Id(3)] string? GatewayId,
    [property: Id(4)] ChatEventKind Kind = ChatEventKind.Message,
    [property: Id(5)] long Target = 0,
    [property: Id(6)] bool Moderator = false);

/// <summary>One post of a <see cref="PostBatchRequest"/>.</summary>
[GenerateSerializer, Immutable, Alias("OrleansChat.PostItem")]
public sealed record PostItem(
    [property: Id(0)] string ClientId,
    [property: Id(1)] string Text,
    [property: Id(2)] ChatEventKind Kind = ChatEventKind.Message,
    [property: Id(3)] long Target = 0);

/// <summary>A user typing in a room, sent by the gateway of the typing connection (which tells its own members).</summary>
[GenerateSerializer, Immutable, Alias("OrleansChat.TypingRequest")]
public sealed record TypingRequest(
    [property: Id(0)] string User,
    [property: Id(1)] string GatewayId);

/// <summary>A connection's <c>read</c>: the user read the room up to <see cref="Seq"/>.</summary>
[GenerateSerializer, Immutable, Alias("OrleansChat.ReadRequest")]
public sealed record ReadRequest(
    [property: Id(0)] string User,
    [property: Id(1)] long Seq,
    [property: Id(2)] string GatewayId,
    [property: Id(3)] string ConnectionId);

/// <summary>Several posts of one connection, in the order it sent them: they take seqs in this order.</summary>
[GenerateSerializer, Immutable, Alias("OrleansChat.PostBatchRequest")]
public sealed record PostBatchRequest(
    [property: Id(0)] string User,
    [property: Id(1)] string? GatewayId,
    [property: Id(2)] ImmutableArray<PostItem> Posts);

/// <summary>The answer to one post of a batch. A first post is stored as its <see cref="Seq"/> and
/// <see cref="Time"/> only (the gateway has the rest of it: the answer stays small); a resend carries the
/// stored <see cref="Original"/>; a refused post only its <see cref="Error"/>.</summary>
[GenerateSerializer, Immutable, Alias("OrleansChat.PostAck")]
public readonly record struct PostAck(
    [property: Id(0)] RoomError Error,
    [property: Id(1)] long Seq,
    [property: Id(2)] DateTime Time,
    [property: Id(3)] ChatMessage? Original);

/// <summary>One answer per post of a <see cref="PostBatchRequest"/>, in its order.</summary>
[GenerateSerializer, Immutable, Alias("OrleansChat.PostBatchResult")]
public sealed record PostBatchResult(
    [property: Id(0)] ImmutableArray<PostAck> Acks,
    [property: Id(1)] bool GatewaySubscribed);

/// <summary>A gateway's answer to a notification. <see cref="HoldId"/> 0: send on. Otherwise the gateway's
/// sockets are behind: the room sends it nothing more until it calls <c>Resume</c> with this id (or a
/// later one), or until <c>RoomOptions.MaxHold</c> passes.</summary>
[GenerateSerializer, Immutable, Alias("OrleansChat.DeliveryReceipt")]
public sealed record DeliveryReceipt([property: Id(0)] long HoldId)
{
    public static DeliveryReceipt Flowing { get; } = new(0);
}

/// <summary>Either <see cref="Message"/> (stored; for a resend, the original) or an <see cref="Error"/>.</summary>
[GenerateSerializer, Immutable, Alias("OrleansChat.PostResult")]
public sealed record PostResult(
    [property: Id(0)] RoomError Error,
    [property: Id(1)] ChatMessage? Message,
    [property: Id(2)] bool Duplicate,
    [property: Id(3)] bool GatewaySubscribed);

[GenerateSerializer, Immutable, Alias("OrleansChat.HistoryQuery")]
public sealed record HistoryQuery(
    [property: Id(0)] long? Before,
    [property: Id(1)] long? After,
    [property: Id(2)] int Limit);

[GenerateSerializer, Immutable, Alias("OrleansChat.HistoryResult")]
public sealed record HistoryResult(
    [property: Id(0)] RoomError Error,
    [property: Id(1)] ImmutableArray<ChatMessage> Messages);

/// <summary>The server API's view of a room.</summary>
[GenerateSerializer, Immutable, Alias("OrleansChat.RoomInfo")]
public sealed record RoomInfo(
    [property: Id(0)] RoomError Error,
    [property: Id(1)] long Seq,
    [property: Id(2)] ImmutableArray<string> Members);

/// <summary>Removes every connection of <see cref="User"/> from the room; <see cref="BanSeconds"/> &gt; 0 also
/// refuses the user's joins for that long (0 sets no ban and lifts none).</summary>
[GenerateSerializer, Immutable, Alias("OrleansChat.KickRequest")]
public sealed record KickRequest(
    [property: Id(0)] string User,
    [property: Id(1)] long BanSeconds);

[GenerateSerializer, Immutable, Alias("OrleansChat.KickResult")]
public sealed record KickResult(
    [property: Id(0)] RoomError Error,
    [property: Id(1)] int Connections);

/// <summary>Typed failures at the grain boundary; the gateway maps them to protocol error codes.</summary>
[GenerateSerializer, Alias("OrleansChat.RoomError")]
public enum RoomError
{
    None = 0,
    BadRequest = 1,
    BadRoom = 2,
    TooLarge = 3,
    /// <summary>The message store failed: the post may be retried with the same client id.</summary>
    Unavailable = 4,
    /// <summary>An edit or delete whose target is not a live message of the room.</summary>
    NotFound = 5,
    /// <summary>An edit or delete of someone else's message.</summary>
    Forbidden = 6,
    /// <summary>The user is banned from the room: no join, no post (the protocol's <c>forbidden</c>).</summary>
    Banned = 7,
}
