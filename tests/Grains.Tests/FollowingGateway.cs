namespace OrleansChat.Grains.Tests;

/// <summary>
/// The gateway's recovery logic in miniature: it delivers a room's messages strictly in seq order from
/// its last seq, ignores what it already has, holds back nothing past a gap, and fetches what it missed
/// with History after its last seq whenever it (re-)subscribes.
/// </summary>
public sealed class FollowingGateway : IRoomObserver
{
    private readonly Lock _lock = new();
    private readonly List<ChatMessage> _delivered = [];
    public FollowingGateway(IClusterClient client) => Reference = client.CreateObjectReference<IRoomObserver>(this);

    public IRoomObserver Reference { get; }

    public string Id { get; } = "follower-" + Guid.NewGuid().ToString("N")[..8];

    /// <summary>Messages that came through History rather than the observer (they were missed live).</summary>
    public int Fetched { get; private set; }

    public ChatMessage[] Delivered
    {
        get
        {
            lock (_lock)
            {
                return [.. _delivered];
            }
        }
    }

    public long LastSeq
    {
        get
        {
            lock (_lock)
            {
                return _delivered.Count == 0 ? 0 : _delivered[^1].Seq;
            }
        }
    }

    public Task<DeliveryReceipt> OnEvents(RoomEvents events)
    {
        Deliver(events.Messages);
        return Task.FromResult(DeliveryReceipt.Flowing);
    }

    /// <summary>Subscribes (first time or renewal) and fetches whatever came since its last seq.</summary>
    public async Task RenewAsync(IRoomGrain room)
    {
        await room.Subscribe(new SubscribeRequest(Id, Reference, TimeSpan.FromMinutes(5), GatewayMembers.Empty));
        await CatchUpAsync(room);
    }

    public async Task CatchUpAsync(IRoomGrain room)
    {
        while (true)
        {
            var page = await room.History(new HistoryQuery(null, LastSeq, ChatLimits.MaxHistory));
            Assert.Equal(RoomError.None, page.Error);
            Fetched += Deliver(page.Messages);
            if (page.Messages.Length < ChatLimits.MaxHistory)
            {
                return;
            }
        }
    }

    /// <summary>Delivers what continues the sequence; returns how many.</summary>
    private int Deliver(IEnumerable<ChatMessage> messages)
    {
        lock (_lock)
        {
            var count = _delivered.Count;
            foreach (var message in messages)
            {
                var last = _delivered.Count == 0 ? 0 : _delivered[^1].Seq;
                // Older: already delivered. Newer than next: a gap, filled by the next catch-up.
                if (message.Seq == last + 1)
                {
                    _delivered.Add(message);
                }
            }

            return _delivered.Count - count;
        }
    }
}
