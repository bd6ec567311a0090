namespace OrleansChat.Grains.Tests;

/// <summary>
/// Plays the gateway side of a room: one observer object (kept alive here, the runtime holds it weakly)
/// that records every <see cref="RoomEvents"/> call it receives.
/// </summary>
public sealed class TestGateway : IRoomObserver
{
    private readonly Lock _lock = new();
    private readonly List<RoomEvents> _calls = [];

    public TestGateway(IClusterClient client, string? id = null)
    {
        Id = id ?? "gw-" + Guid.NewGuid().ToString("N")[..8];
        Reference = client.CreateObjectReference<IRoomObserver>(this);
    }

    public string Id { get; }

    public IRoomObserver Reference { get; }

    /// <summary>Non-zero: every notification is answered with this hold id (flow control: "my sockets are
    /// behind; send nothing more until I resume").</summary>
    public long HoldId { get; set; }

    public Task<DeliveryReceipt> OnEvents(RoomEvents events)
    {
        lock (_lock)
        {
            _calls.Add(events);
        }

        return Task.FromResult(HoldId == 0 ? DeliveryReceipt.Flowing : new DeliveryReceipt(HoldId));
    }

    public SubscribeRequest Subscription(TimeSpan lifetime, GatewayMembers? members = null)
        => new(Id, Reference, lifetime, members ?? GatewayMembers.Empty);

    public Task<SubscribeResult> SubscribeAsync(IRoomGrain room, TimeSpan? lifetime = null, GatewayMembers? members = null)
        => room.Subscribe(Subscription(lifetime ?? TimeSpan.FromMinutes(5), members));

    public RoomEvents[] Calls
    {
        get
        {
            lock (_lock)
            {
                return [.. _calls];
            }
        }
    }

    public ChatMessage[] Messages => [.. Calls.SelectMany(call => call.Messages)];

    public PresenceChange[] PresenceChanges => [.. Calls.SelectMany(call => call.Presence)];

    /// <summary>A gateway subscribed to <paramref name="room"/> for the length of a test.</summary>
    public static async Task<TestGateway> SubscribedAsync(IClusterClient client, IRoomGrain room)
    {
        var gateway = new TestGateway(client);
        await gateway.SubscribeAsync(room);
        return gateway;
    }

    /// <summary>Waits for as many messages as expected, then a little longer so an extra or repeated
    /// call would show, and checks they are exactly <paramref name="expected"/> in that order.</summary>
    public async Task AssertReceivedAsync(IReadOnlyList<ChatMessage> expected)
    {
        await WaitUntilAsync(g => g.Messages.Length >= expected.Count, $"{expected.Count} messages at {Id}");
        await Task.Delay(100);
        Assert.Equal(expected, Messages);
    }

    /// <summary>Waits until <paramref name="condition"/> holds on what this gateway received.</summary>
    public Task WaitUntilAsync(Func<TestGateway, bool> condition, string what)
        => Eventually.WaitAsync(() => condition(this), what);
}

public static class Eventually
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);

    public static Task WaitAsync(Func<bool> condition, string what)
        => WaitAsync(() => Task.FromResult(condition()), what);

    public static async Task WaitAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + Timeout;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"Timed out after {Timeout.TotalSeconds} s waiting for: {what}");
            }

            await Task.Delay(20);
        }
    }
}

public static class Rooms
{
    /// <summary>A room name no other test uses (names are at most 64 characters).</summary>
    public static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid():N}";

    public static PostRequest Post(string user, string clientId, string? text = null, string? gatewayId = null)
        => new(user, clientId, text ?? $"text of {clientId}", gatewayId);

    public static JoinRequest Join(string user, TestGateway gateway, string connectionId, long? since = null)
        => new(user, gateway.Id, connectionId, since);

    /// <summary>Runs <paramref name="callers"/> callers at once, each on its own thread-pool task.</summary>
    public static Task Concurrently(int callers, Func<int, Task> caller)
        => Task.WhenAll(Enumerable.Range(0, callers).Select(i => Task.Run(() => caller(i))));

    public static IEnumerable<long> Seqs(this IEnumerable<ChatMessage> messages) => messages.Select(message => message.Seq);

    public static long[] Range(long first, long last) => [.. Enumerable.Range((int)first, (int)(last - first + 1)).Select(i => (long)i)];
}
