using Orleans.Concurrency;

namespace OrleansChat.Grains.Interfaces;

/// <summary>One chat room, keyed by its name. Owns the seq counter, members, gateway subscriptions,
/// recent history and dedupe of client ids.</summary>
[Alias("OrleansChat.IRoomGrain")]
public interface IRoomGrain : IGrainWithStringKey
{
    /// <summary>Adds or renews a gateway's subscription and replaces the members it holds.</summary>
    [Alias("Subscribe")]
    Task<SubscribeResult> Subscribe(SubscribeRequest request);

    [Alias("Unsubscribe")]
    Task Unsubscribe(string gatewayId);

    [Alias("Join")]
    Task<JoinResult> Join(JoinRequest request);

    [Alias("Leave")]
    Task Leave(LeaveRequest request);

    [Alias("Post")]
    Task<PostResult> Post(PostRequest request);

    /// <summary>Posts of one connection in send order (pipelined sends): one call, one result per post.</summary>
    [Alias("PostBatch")]
    Task<PostBatchResult> PostBatch(PostBatchRequest request);

    /// <summary>Flow control: the gateway's sockets caught up after it answered a notification with
    /// <paramref name="holdId"/>; the room sends it events again.</summary>
    [Alias("Resume")]
    Task Resume(string gatewayId, long holdId);

    /// <summary>The lossy lane: not stored, not sequenced, not awaited. One-way because nobody waits for a typing
    /// notice and a lost one costs nothing (the client repeats it every 2-3 s while the user types).</summary>
    [Alias("Typing"), OneWay]
    Task Typing(TypingRequest request);

    /// <summary>Raises the user's stored read seq in this room (capped at the room's seq) and, when it rose, tells
    /// the user's other connections in the room.</summary>
    [Alias("Read")]
    Task Read(ReadRequest request);

    /// <summary>Seq and members, for the server API.</summary>
    [Alias("Info"), ReadOnly]
    Task<RoomInfo> Info();

    /// <summary>The server API removes a user from the room (every connection, on every gateway) and may ban them.</summary>
    [Alias("Kick")]
    Task<KickResult> Kick(KickRequest request);

    [Alias("History"), ReadOnly]
    Task<HistoryResult> History(HistoryQuery query);

    /// <summary>When this activation of the room started. Cheap and answered at once, even while posts wait (the
    /// grain is reentrant): a gateway whose post is slow asks it, to tell a busy room from one whose silo died.</summary>
    [Alias("ActivatedAt"), ReadOnly]
    Task<DateTime> ActivatedAt();

    /// <summary>The silo that hosts this activation (tests use it to stop exactly that silo).</summary>
    [Alias("GetRuntimeIdentity"), ReadOnly]
    Task<string> GetRuntimeIdentity();
}

/// <summary>One per gateway process, for all its rooms.</summary>
[Alias("OrleansChat.IRoomObserver")]
public interface IRoomObserver : IGrainObserver
{
    /// <summary>
    /// Not one-way: Orleans does not keep one-way calls in order (a room posting 1..300 was observed
    /// to arrive as 1,2,3,11,12,…,5,6), so a room sends each gateway one call at a time, in seq order,
    /// and packs the events that pile up meanwhile into the next call. The room never waits on this
    /// call (a slow gateway only delays its own events); a call that fails drops the gateway's
    /// subscription until it renews. Implementations must only enqueue and return: the receipt says
    /// whether the gateway's sockets are behind (flow control), it never waits for them.
    /// </summary>
    [Alias("OnEvents")]
    Task<DeliveryReceipt> OnEvents(RoomEvents events);
}
