using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Diagnostics;
using Microsoft.Extensions.Options;
using OrleansChat.Gateway.Connections;
using OrleansChat.Gateway.Protocol;
using OrleansChat.Grains;
using OrleansChat.Grains.Interfaces;

namespace OrleansChat.Gateway.Rooms;

/// <summary>A request failure to report to the client.</summary>
public sealed record RequestError(string Code, string Message)
{
    public static readonly RequestError Unavailable = new(ErrorCodes.Unavailable, "the cluster cannot be reached right now; retry later");

    public static RequestError From(RoomError error) => error switch
    {
        RoomError.BadRoom => new(ErrorCodes.BadRoom, "invalid room name"),
        RoomError.TooLarge => new(ErrorCodes.TooLarge, "text too large"),
        RoomError.BadRequest => new(ErrorCodes.BadRequest, "the request was refused by the room"),
        RoomError.NotFound => new(ErrorCodes.NotFound, "no such message in this room (or it was deleted)"),
        RoomError.Forbidden => new(ErrorCodes.Forbidden, "only the author can change a message"),
        RoomError.Banned => new(ErrorCodes.Forbidden, "you are banned from this room"),
        _ => Unavailable,
    };
}

public sealed record PostOutcome(RequestError? Error, ChatMessage? Message, bool Duplicate);

public sealed record HistoryOutcome(RequestError? Error, ImmutableArray<ChatMessage> Messages);

/// <summary>
/// The gateway's single room observer and its local fan-out. One observer object per gateway process
/// (not per browser connection) is subscribed to every room that has local members; each event is
/// serialized once and queued to every local connection in the room.
/// Subscriptions live in grain memory and vanish when a room grain re-activates (silo loss, idle
/// collection, rebalancing), silently. So they are renewed on a timer, and at once after any failed
/// grain call or when a grain says it does not know us; each renewal reports the room's seq, and any
/// gap is fetched from the grain, so connected clients miss nothing.
/// The hub also keeps this gateway's entry in the gateway registry (an <see cref="IGatewayObserver"/>), renewed on the
/// same loop, so that the server API's "disconnect a user" on any gateway reaches the user's connections here.
/// </summary>
public sealed partial class RoomHub : IRoomObserver, IHostedService, IDisposable
{
    private static readonly TimeSpan EmptyRoomLinger = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan RetryAfterFailure = TimeSpan.FromSeconds(1);

    /// <summary>A post normally answers in milliseconds; one still out after this is checked on (below).</summary>
    private static readonly TimeSpan SuspectAfter = TimeSpan.FromSeconds(1);

    /// <summary>A room that does not say when it was activated within this is taken for lost.</summary>
    private static readonly TimeSpan CheckTimeout = TimeSpan.FromSeconds(1);

    /// <summary>An activation this much newer than a call cannot have received it (after a silo dies, the room
    /// re-activates only once the silo is declared dead, seconds later); the margin covers clock differences.</summary>
    private static readonly TimeSpan ClockSlack = TimeSpan.FromSeconds(1);

    private static readonly Task<DeliveryReceipt> s_flowing = Task.FromResult(DeliveryReceipt.Flowing);

    private readonly IGrainFactory _grains;
    private readonly ILogger<RoomHub> _logger;
    private readonly ConcurrentDictionary<string, LocalRoom> _rooms = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stopping = new();
    private IRoomObserver? _reference;
    private readonly GatewayEntry _gatewayEntry;
    private IGatewayObserver? _gatewayReference;
    private Task? _renewals;

    public RoomHub(IGrainFactory grains, ConnectionRegistry connections, IOptions<GatewayOptions> options, GatewayMetrics metrics, ILogger<RoomHub> logger)
    {
        _grains = grains;
        _gatewayEntry = new GatewayEntry(connections);
        _logger = logger;
        Metrics = metrics;
        metrics.ObserveRooms(() => _rooms.Count);
        var settings = options.Value;
        NodeName = settings.NodeName ?? $"{Environment.MachineName}-{Environment.ProcessId}";
        GatewayId = $"{NodeName}-{Guid.NewGuid():N}"[..Math.Min(NodeName.Length + 9, 80)];
        RenewInterval = settings.RenewInterval;
        Options = settings;
        SubscriptionLifetime = settings.RenewInterval * 3;
    }

    /// <summary>Shown to clients in <c>welcome</c>.</summary>
    public string NodeName { get; }

    /// <summary>Unique per process lifetime: a restarted gateway is a new subscriber.</summary>
    public string GatewayId { get; }

    public TimeSpan RenewInterval { get; }

    public TimeSpan SubscriptionLifetime { get; }

    internal GatewayMetrics Metrics { get; }

    internal GatewayOptions Options { get; }

    internal IRoomObserver ObserverReference => _reference ?? throw new InvalidOperationException("The room hub has not started.");

    /// <summary>True while the last cluster probe succeeded.</summary>
    public bool ClusterReachable { get; private set; }

    public int RoomCount => _rooms.Count;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        // The runtime holds the observers only weakly: this hub (a singleton) keeps them alive.
        _reference = _grains.CreateObjectReference<IRoomObserver>(this);
        _gatewayReference = _grains.CreateObjectReference<IGatewayObserver>(_gatewayEntry);
        _renewals = Task.Run(RenewLoopAsync, CancellationToken.None);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync();
        if (_renewals is not null)
        {
            await _renewals;
        }

        var unregister = UnregisterAsync(cancellationToken);
        await Task.WhenAll(_rooms.Values.Select(async room =>
        {
            try
            {
                await room.Grain.Unsubscribe(GatewayId).WaitAsync(TimeSpan.FromSeconds(2), cancellationToken);
            }
            catch (Exception ex)
            {
                LogUnsubscribeFailed(_logger, ex, room.Name);
            }
        }));
        await unregister;

        try
        {
            if (_reference is not null)
            {
                _grains.DeleteObjectReference<IRoomObserver>(_reference);
            }

            if (_gatewayReference is not null)
            {
                _grains.DeleteObjectReference<IGatewayObserver>(_gatewayReference);
            }
        }
        catch (ArgumentException)
        {
            // The client already released its local objects (it is stopping too).
        }
    }

    public void Dispose() => _stopping.Dispose();

    /// <summary>The server API disconnects a user: this gateway's connections of theirs are closed with 1008. (Its own
    /// object: one grain observer reference per object.)</summary>
    private sealed class GatewayEntry(ConnectionRegistry connections) : IGatewayObserver
    {
        public Task<int> DisconnectUser(string user) => Task.FromResult(connections.DisconnectUser(user));
    }

    private IGatewayRegistryGrain Registry => _grains.GetGrain<IGatewayRegistryGrain>(0);

    /// <summary>Well within the registration's lifetime, so one lost renewal (or the registry's re-activation on
    /// another silo, which forgets every gateway) costs at most one interval.</summary>
    private async Task RegisterAsync()
    {
        try
        {
            await Registry.Register(GatewayId, _gatewayReference!, SubscriptionLifetime);
        }
        catch (Exception ex)
        {
            LogRegistryFailed(_logger, ex);
        }
    }

    private async Task UnregisterAsync(CancellationToken cancellationToken)
    {
        try
        {
            await Registry.Unregister(GatewayId).WaitAsync(TimeSpan.FromSeconds(2), cancellationToken);
        }
        catch (Exception ex)
        {
            // It expires on its own.
            LogRegistryFailed(_logger, ex);
        }
    }

    /// <summary>Called by the runtime, one call at a time: only hands bytes to queues, never waits on a socket.
    /// The receipt asks the room to hold while a member's queue is above the high-water mark.</summary>
    public Task<DeliveryReceipt> OnEvents(RoomEvents events)
    {
        if (!_rooms.TryGetValue(events.Room, out var room))
        {
            return s_flowing;
        }

        using (var activity = ChatDiagnostics.Source.StartActivity("chat.deliver"))
        {
            activity?.SetTag("chat.room", events.Room);
            activity?.SetTag("chat.messages", events.Messages.Length);
            room.Deliver(events.Messages);
            if (!events.Kicked.IsDefaultOrEmpty)
            {
                room.DeliverKicks(events.Kicked);
            }

            room.DeliverPresence(events.Presence);
            // Left out by a sender that predates them (a rolling upgrade): nothing to deliver.
            if (!events.Typing.IsDefaultOrEmpty)
            {
                room.DeliverTyping(events.Typing);
            }

            if (!events.Reads.IsDefaultOrEmpty)
            {
                room.DeliverReads(events.Reads);
            }
        }

        return room.Receipt() is { HoldId: not 0 } hold ? Task.FromResult(hold) : s_flowing;
    }

    /// <summary>Joins a connection to a room; null on success (the <c>joined</c> reply is queued).</summary>
    public async Task<RequestError?> JoinAsync(ChatConnection connection, string roomName, long? since)
    {
        LocalRoom room;
        bool wasMember;
        long version;
        while (true)
        {
            room = _rooms.GetOrAdd(roomName, name => new LocalRoom(name, _grains.GetGrain<IRoomGrain>(name), this));
            wasMember = room.Contains(connection);
            version = room.BeginJoin(connection);
            if (_rooms.TryGetValue(roomName, out var current) && current == room)
            {
                break;
            }

            // The renewal loop dropped this (empty) room just now: join the one that replaces it.
            room.AbortJoin(connection, wasMember);
        }

        using var activity = ChatDiagnostics.Source.StartActivity("chat.join", ActivityKind.Client);
        activity?.SetTag("chat.room", roomName);
        var started = Stopwatch.GetTimestamp();
        try
        {
            await room.SubscribeAsync(onlyIfNew: true);
            var result = await room.Grain.Join(new JoinRequest(connection.User, GatewayId, connection.Id, since, version));
            if (result.Error != RoomError.None)
            {
                room.AbortJoin(connection, wasMember);
                return RequestError.From(result.Error);
            }

            room.CompleteJoin(connection, result);
            if (!result.GatewaySubscribed)
            {
                RenewSoon(room);
            }

            Metrics.JoinLatency(Stopwatch.GetElapsedTime(started));
            return null;
        }
        catch (Exception ex)
        {
            activity?.SetStatus(ActivityStatusCode.Error, ex.GetType().Name);
            room.AbortJoin(connection, wasMember);
            OnGrainCallFailed(room, ex);
            return RequestError.Unavailable;
        }
    }

    public async Task LeaveAsync(ChatConnection connection, string roomName)
    {
        if (!_rooms.TryGetValue(roomName, out var room))
        {
            return;
        }

        room.RemoveMember(connection);
        try
        {
            await room.Grain.Leave(new LeaveRequest(connection.User, GatewayId, connection.Id));
        }
        catch (Exception ex)
        {
            // The next renewal replaces our members at the grain, which completes the leave.
            OnGrainCallFailed(room, ex);
        }
    }

    public Task LeaveAllAsync(ChatConnection connection, IEnumerable<string> rooms)
        => Task.WhenAll(rooms.ToArray().Select(room => LeaveAsync(connection, room)));

    /// <summary>Posts one connection's queued sends to a room in one call, in send order: one outcome per
    /// send. Waits first while this gateway holds the room back (its sockets are behind).</summary>
    public async Task<PostOutcome[]> PostBatchAsync(ChatConnection connection, string roomName, IReadOnlyList<ClientRequest> sends)
    {
        var room = _rooms[roomName];
        if (room.WhenFlowingAsync() is { IsCompleted: false } held)
        {
            Metrics.SenderWaited();
            await held;
        }

        using var activity = ChatDiagnostics.Source.StartActivity("chat.post", ActivityKind.Client);
        activity?.SetTag("chat.room", roomName);
        activity?.SetTag("chat.messages", sends.Count);
        var posts = ImmutableArray.CreateBuilder<PostItem>(sends.Count);
        foreach (var send in sends)
        {
            posts.Add(new PostItem(send.Id!, send.Text!, send.Kind, send.Seq));
        }

        var outcomes = new PostOutcome[sends.Count];
        var started = Stopwatch.GetTimestamp();
        try
        {
            var batch = await UnlessRoomLostAsync(room, room.Grain.PostBatch(new PostBatchRequest(connection.User, GatewayId, posts.MoveToImmutable())));
            Metrics.PostLatency(Stopwatch.GetElapsedTime(started));
            if (!batch.GatewaySubscribed)
            {
                RenewSoon(room);
            }

            var stored = ImmutableArray.CreateBuilder<ChatMessage>(outcomes.Length);
            for (var i = 0; i < outcomes.Length; i++)
            {
                var ack = batch.Acks[i];
                if (ack.Error != RoomError.None)
                {
                    outcomes[i] = new PostOutcome(RequestError.From(ack.Error), null, false);
                }
                else if (ack.Original is { } original)
                {
                    outcomes[i] = new PostOutcome(null, original, true);
                }
                else
                {
                    var send = sends[i];
                    var message = new ChatMessage(roomName, ack.Seq, connection.User, send.Text!, ack.Time, send.Id!, send.Kind, send.Seq);
                    outcomes[i] = new PostOutcome(null, message, false);
                    stored.Add(message);
                }
            }

            // Our own results are a source of the messages too: the senders' acknowledgements do not wait for
            // the notification, and a lost notification is covered. (A batch takes consecutive seqs.)
            room.Deliver(stored.DrainToImmutable());
        }
        catch (Exception ex)
        {
            activity?.SetStatus(ActivityStatusCode.Error, ex.GetType().Name);
            OnGrainCallFailed(room, ex);
            Array.Fill(outcomes, new PostOutcome(RequestError.Unavailable, null, false));
        }

        return outcomes;
    }

    /// <summary>
    /// Waits for a grain call to a room, unless the room is lost under it. When the silo hosting the room dies, Orleans
    /// fails a call in flight only at the response timeout, and a connection waits for its post before it sends the
    /// next: its client would stall that long. So a call still out after <see cref="SuspectAfter"/> is checked on:
    /// the room is asked when its activation started (answered at once, even while posts wait). No answer (its silo
    /// is gone) or a newer activation than the call (it re-activated elsewhere and the call went to the old one): the
    /// call is given up as unavailable, and the client resends (same id: a post that was stored is not stored twice).
    /// A room that answers is busy, not lost: the call goes on.
    /// </summary>
    private async Task<T> UnlessRoomLostAsync<T>(LocalRoom room, Task<T> call)
    {
        var sent = DateTime.UtcNow;
        while (await Task.WhenAny(call, Task.Delay(SuspectAfter)) != call)
        {
            DateTime activated;
            try
            {
                activated = await room.Grain.ActivatedAt().WaitAsync(CheckTimeout);
            }
            catch (Exception ex)
            {
                IgnoreFailure(call);
                throw new RoomLostException(room.Name, ex);
            }

            if (activated > sent + ClockSlack)
            {
                IgnoreFailure(call);
                throw new RoomLostException(room.Name, null);
            }
        }

        return await call;
    }

    /// <summary>A call nobody waits for: its failure is observed (and dropped) instead of surfacing as unobserved.</summary>
    private static void IgnoreFailure(Task call) => call.ContinueWith(static task => _ = task.Exception, CancellationToken.None,
        TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

    /// <summary>The lossy lane: this gateway's other members of the room are told at once, the other gateways
    /// through the room (a one-way call nobody waits for).</summary>
    public void Typing(ChatConnection connection, string roomName)
    {
        if (!_rooms.TryGetValue(roomName, out var room))
        {
            return;
        }

        room.DeliverTyping([connection.User]);
        // Not worth a renewal when it fails: typing is best effort, and the next post or renewal finds a real problem.
        IgnoreFailure(room.Grain.Typing(new TypingRequest(connection.User, GatewayId)));
    }

    /// <summary>Raises the user's read seq in the room; the room tells the user's other connections.</summary>
    public async Task<RequestError?> ReadAsync(ChatConnection connection, string roomName, long seq)
    {
        try
        {
            await _grains.GetGrain<IRoomGrain>(roomName).Read(new ReadRequest(connection.User, seq, GatewayId, connection.Id));
            return null;
        }
        catch (Exception ex)
        {
            LogGrainCallFailed(_logger, ex, roomName);
            return RequestError.Unavailable;
        }
    }

    public async Task<HistoryOutcome> HistoryAsync(string roomName, long? before, long? after, int limit)
    {
        try
        {
            var result = await _grains.GetGrain<IRoomGrain>(roomName).History(new HistoryQuery(before, after, limit));
            return new HistoryOutcome(result.Error == RoomError.None ? null : RequestError.From(result.Error), result.Messages);
        }
        catch (Exception ex)
        {
            LogGrainCallFailed(_logger, ex, roomName);
            if (_rooms.TryGetValue(roomName, out var room))
            {
                RenewSoon(room);
            }

            return new HistoryOutcome(RequestError.Unavailable, []);
        }
    }

    internal void OnGrainCallFailed(LocalRoom room, Exception exception)
    {
        LogGrainCallFailed(_logger, exception, room.Name);
        RenewSoon(room);
    }

    private static void RenewSoon(LocalRoom room) => room.NextRenewal = DateTime.MinValue;

    private async Task RenewLoopAsync()
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(Math.Min(1000, RenewInterval.TotalMilliseconds)));
        var nextProbe = DateTime.MinValue;
        var nextRegistration = DateTime.MinValue;
        try
        {
            do
            {
                var now = DateTime.UtcNow;
                if (now >= nextProbe)
                {
                    nextProbe = now + TimeSpan.FromSeconds(5);
                    await ProbeClusterAsync();
                }

                if (now >= nextRegistration)
                {
                    nextRegistration = now + RenewInterval;
                    await RegisterAsync();
                }

                await Task.WhenAll(_rooms.Values.Where(room => room.NextRenewal <= now).Select(room => RenewAsync(room, now)));
            }
            while (await timer.WaitForNextTickAsync(_stopping.Token));
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task RenewAsync(LocalRoom room, DateTime now)
    {
        if (room.IsEmpty && now - room.EmptySince > EmptyRoomLinger)
        {
            // Nobody here has been in the room for a while: stop listening to it.
            if (_rooms.TryRemove(new KeyValuePair<string, LocalRoom>(room.Name, room)))
            {
                try
                {
                    await room.Grain.Unsubscribe(GatewayId);
                }
                catch (Exception ex)
                {
                    LogUnsubscribeFailed(_logger, ex, room.Name);
                }

                // A connection may have joined between the check and the removal: put the room back.
                if (!room.IsEmpty)
                {
                    _rooms.TryAdd(room.Name, room);
                    RenewSoon(room);
                }
            }

            return;
        }

        try
        {
            await room.SubscribeAsync(onlyIfNew: false);
            Metrics.SubscriptionRenewed();
        }
        catch (Exception ex)
        {
            LogGrainCallFailed(_logger, ex, room.Name);
            room.NextRenewal = DateTime.UtcNow + RetryAfterFailure;
        }
    }

    private async Task ProbeClusterAsync()
    {
        try
        {
            await _grains.GetGrain<IManagementGrain>(0).GetHosts(onlyActive: true).WaitAsync(TimeSpan.FromSeconds(5));
            ClusterReachable = true;
        }
        catch (Exception ex)
        {
            if (ClusterReachable)
            {
                LogGrainCallFailed(_logger, ex, "(probe)");
            }

            ClusterReachable = false;
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Room {Room}: grain call failed; renewing the subscription")]
    private static partial void LogGrainCallFailed(ILogger logger, Exception exception, string room);

    [LoggerMessage(Level = LogLevel.Debug, Message = "The gateway registry could not be reached; trying again at the next renewal")]
    private static partial void LogRegistryFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Room {Room}: unsubscribe failed")]
    private static partial void LogUnsubscribeFailed(ILogger logger, Exception exception, string room);
}

/// <summary>A grain call given up because its room was lost under it (its silo died, or it re-activated elsewhere).</summary>
public sealed class RoomLostException(string room, Exception? inner)
    : Exception($"Room {room} was lost while a call to it was out", inner);
