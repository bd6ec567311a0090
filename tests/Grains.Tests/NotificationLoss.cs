using System.Collections.Concurrent;

namespace OrleansChat.Grains.Tests;

/// <summary>
/// A silo-side outgoing call filter that makes chosen <see cref="IRoomObserver.OnEvents"/> calls go wrong the
/// way the real cluster was seen to: the call is lost (never reaches the gateway, never answered), or it is
/// delivered but its answer never comes back. Off for every observer nobody asked about.
/// </summary>
public sealed class NotificationLoss : IOutgoingGrainCallFilter
{
    private static readonly ConcurrentDictionary<GrainId, Fault> Faults = new();

    public enum Fault
    {
        /// <summary>The call vanishes: the observer never sees it and the room gets no answer.</summary>
        Lose,

        /// <summary>The observer gets the call, but the room never gets the answer.</summary>
        Unanswered,
    }

    /// <summary>The next OnEvents call to <paramref name="observer"/> suffers <paramref name="fault"/>.</summary>
    public static void Next(IRoomObserver observer, Fault fault) => Faults[observer.GetGrainId()] = fault;

    public async Task Invoke(IOutgoingGrainCallContext context)
    {
        if (context.InterfaceMethod?.Name != nameof(IRoomObserver.OnEvents) || !Faults.TryRemove(context.TargetId, out var fault))
        {
            await context.Invoke();
            return;
        }

        if (fault == Fault.Unanswered)
        {
            await context.Invoke();
        }

        await new TaskCompletionSource().Task;
    }
}
