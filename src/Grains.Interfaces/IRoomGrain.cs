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

    [Alias("History"), ReadOnly]
    Task<HistoryResult> History(HistoryQuery query);

    /// <summary>The silo that hosts this activation (tests use it to stop exactly that silo).</summary>
    [Alias("GetRuntimeIdentity"), ReadOnly]
    Task<string> GetRuntimeIdentity();
}

/// <summary>One per gateway process, for all its rooms. One-way: the grain never waits on a gateway,
/// so a slow or dead gateway cannot stall a room; lost calls are repaired by the gateway's gap fetch.</summary>
[Alias("OrleansChat.IRoomObserver")]
public interface IRoomObserver : IGrainObserver
{
    [OneWay, Alias("OnEvents")]
    Task OnEvents(RoomEvents events);
}
