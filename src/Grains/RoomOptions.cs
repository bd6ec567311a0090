namespace OrleansChat.Grains;

/// <summary>Tuning of <see cref="RoomGrain"/>. Defaults follow the protocol.</summary>
public sealed class RoomOptions
{
    /// <summary>Messages kept in memory for history and joins (older ones are read from the store).</summary>
    public int RecentMessages { get; set; } = 1000;

    /// <summary>Client ids remembered for dedupe: at least this many of the room's last messages...</summary>
    public int DedupeMessages { get; set; } = 10_000;

    /// <summary>...and at least this long, whichever keeps more.</summary>
    public TimeSpan DedupeWindow { get; set; } = TimeSpan.FromHours(24);

    /// <summary>Largest text in UTF-8 bytes (bound from <c>Gateway:MaxTextBytes</c>, the same key as the gateway).</summary>
    public int MaxTextBytes { get; set; } = 4096;

    /// <summary>Most posts grouped into one store write.</summary>
    public int MaxBatch { get; set; } = 256;

    /// <summary>Messages queued for one gateway while its previous call is in flight; beyond this the oldest
    /// are dropped (the gateway fetches them by seq).</summary>
    public int MaxPendingMessagesPerGateway { get; set; } = 10_000;

    /// <summary>Flow control: while this many messages wait for one gateway (it asked the room to hold, or its
    /// calls are slow), the room stores no new posts, so senders wait for their acknowledgements instead of
    /// queues overflowing. Default 512.</summary>
    public int GatewayBacklog { get; set; } = 512;

    /// <summary>Flow control: the longest one gateway holds the room back, whether it asked to hold and never
    /// resumed or its backlog does not shrink. After that the room goes on without waiting for it (its
    /// backlog is trimmed at <see cref="MaxPendingMessagesPerGateway"/>; it fetches what it missed by seq).
    /// A gateway closes a stuck socket well before this (<c>Gateway:FlowControl:StuckMilliseconds</c>):
    /// this only bounds a gateway that misbehaves. Default 2 s.</summary>
    public TimeSpan MaxHold { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How long a room waits for a gateway to answer a notification before it sends the events again
    /// (with whatever came since). Bounds what a lost notification costs that gateway's delivery.</summary>
    public TimeSpan NotificationTimeout { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How often expired gateway subscriptions are dropped.</summary>
    public TimeSpan ExpiryCheckInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Lifetime given to a gateway that joins before subscribing (e.g. right after re-activation).</summary>
    public TimeSpan ProvisionalLifetime { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>After activation, gateways re-registering their members within this window restore presence
    /// silently (those users never left; the grain only forgot them when it re-activated).</summary>
    public TimeSpan PresenceRestoreWindow { get; set; } = TimeSpan.FromSeconds(30);
}
