using System.Collections.Immutable;
using System.Diagnostics;
using OrleansChat.Gateway.Connections;
using OrleansChat.Gateway.Protocol;
using OrleansChat.Grains.Interfaces;

namespace OrleansChat.Gateway.Rooms;

/// <summary>
/// This gateway's view of one room: the local connections in it and the last seq delivered to them.
/// Messages reach it from the grain's one-way notifications, from our own post results and from gap
/// fetches; whatever the source, they are delivered strictly in seq order, each once. A gap (a lost
/// notification, a grain that re-activated without our subscription) is filled from the grain's history.
/// <para>Flow control: when a member's outbound queue goes above the high-water mark, the room here holds
/// (<see cref="HoldAsync"/>): local senders wait before their next post, and the grain is asked (through the
/// receipt of its notifications) to send nothing more until the members drained to the low-water mark.
/// A member whose socket takes nothing for the stuck bound meanwhile is closed with 1013 and holds nobody
/// back.</para>
/// </summary>
internal sealed class LocalRoom(string name, IRoomGrain grain, RoomHub hub)
{
    private const int GapPage = ChatLimits.MaxHistory;

    private readonly Lock _lock = new();
    private readonly Dictionary<ChatConnection, Member> _members = [];
    private readonly SemaphoreSlim _subscribing = new(1, 1);

    private bool _initialized;
    private long _lastSeq;
    private long _knownSeq;
    private bool _repairing;
    private long _holdId;

    /// <summary>Counts joins registered here; a members snapshot carries the count it was taken at (the room must not
    /// let an older snapshot remove a later joiner).</summary>
    private long _joins;
    private bool _holdReported;
    private TaskCompletionSource? _holding;

    public string Name { get; } = name;

    public IRoomGrain Grain { get; } = grain;

    public DateTime EmptySince { get; private set; } = DateTime.UtcNow;

    public DateTime NextRenewal { get; set; }

    public bool IsEmpty
    {
        get
        {
            lock (_lock)
            {
                return _members.Count == 0;
            }
        }
    }

    /// <summary>Completes at once unless this room holds (a member's queue is behind): then when it is not.</summary>
    public Task WhenFlowingAsync()
    {
        lock (_lock)
        {
            return _holding?.Task ?? Task.CompletedTask;
        }
    }

    /// <summary>The answer to the grain's notification: hold (with this hold's id) or go on.</summary>
    public DeliveryReceipt Receipt()
    {
        lock (_lock)
        {
            if (_holding is null)
            {
                return DeliveryReceipt.Flowing;
            }

            _holdReported = true;
            return new DeliveryReceipt(_holdId);
        }
    }

    /// <summary>Subscribes (or renews) this gateway at the grain with the members it holds here, and repairs
    /// any gap the answer reveals. Throws when the grain cannot be reached.</summary>
    public async Task SubscribeAsync(bool onlyIfNew)
    {
        await _subscribing.WaitAsync();
        try
        {
            if (onlyIfNew && _initialized)
            {
                return;
            }

            // The first subscription carries no members: the grain treats members of a gateway it does not
            // know as restored (silently), which is right after a re-activation and wrong for a first join.
            var members = _initialized ? SnapshotMembers() : GatewayMembers.Empty;
            var result = await Grain.Subscribe(new SubscribeRequest(hub.GatewayId, hub.ObserverReference, hub.SubscriptionLifetime, members));
            NextRenewal = DateTime.UtcNow + hub.RenewInterval;
            lock (_lock)
            {
                if (!_initialized)
                {
                    // Nothing was delivered here before: start live from the room's current seq.
                    _initialized = true;
                    _lastSeq = result.Seq;
                }

                _knownSeq = Math.Max(_knownSeq, result.Seq);
            }

            RepairIfBehind();
        }
        finally
        {
            _subscribing.Release();
        }
    }

    /// <summary>Registers a joining connection before the grain call, so every message the grain fans out
    /// after its join turn is caught (buffered until the <c>joined</c> reply is queued). Returns the join's
    /// version, which the join call carries.</summary>
    public long BeginJoin(ChatConnection connection)
    {
        lock (_lock)
        {
            if (_members.TryGetValue(connection, out var member))
            {
                member.Pending ??= [];
            }
            else
            {
                _members[connection] = new Member { Pending = [] };
            }

            return ++_joins;
        }
    }

    /// <summary>Queues <c>joined</c>, then everything buffered above its seq, and goes live.</summary>
    public void CompleteJoin(ChatConnection connection, JoinResult result)
    {
        var joined = Events.Joined(Name, result);
        lock (_lock)
        {
            if (!_members.TryGetValue(connection, out var member))
            {
                return;
            }

            connection.Enqueue(joined);
            member.Floor = result.Seq;
            foreach (var (seq, frame, origin) in member.Pending ?? [])
            {
                if (seq > result.Seq || (seq == 0 && origin != connection.Id))
                {
                    connection.Enqueue(frame);
                }
            }

            member.Pending = null;
            _knownSeq = Math.Max(_knownSeq, result.Seq);
        }

        RepairIfBehind();
    }

    /// <summary>Undoes <see cref="BeginJoin"/> after a failed join: a new member is removed, a rejoining
    /// one goes back to live with its old floor.</summary>
    public void AbortJoin(ChatConnection connection, bool wasMember)
    {
        lock (_lock)
        {
            if (!_members.TryGetValue(connection, out var member))
            {
                return;
            }

            if (!wasMember)
            {
                Remove(connection);
                return;
            }

            foreach (var (seq, frame, origin) in member.Pending ?? [])
            {
                if (seq > member.Floor || (seq == 0 && origin != connection.Id))
                {
                    connection.Enqueue(frame);
                }
            }

            member.Pending = null;
        }
    }

    public bool Contains(ChatConnection connection)
    {
        lock (_lock)
        {
            return _members.ContainsKey(connection);
        }
    }

    public void RemoveMember(ChatConnection connection)
    {
        lock (_lock)
        {
            Remove(connection);
        }
    }

    /// <summary>Delivers messages to local members in seq order. Already delivered seqs are skipped; a gap
    /// stops delivery at the gap and starts a fetch of the missing messages.</summary>
    public void Deliver(ImmutableArray<ChatMessage> messages)
    {
        if (messages.IsEmpty)
        {
            return;
        }

        // The same message usually reaches us twice (our own post's result and the grain's notification):
        // skip what was delivered before serializing, then serialize once for all local connections,
        // outside the lock.
        int first;
        lock (_lock)
        {
            if (!_initialized)
            {
                // Our subscription answer (with the starting seq) is still on its way; anything lost here is
                // above that seq and comes back through the gap fetch.
                return;
            }

            _knownSeq = Math.Max(_knownSeq, messages[^1].Seq);
            first = 0;
            while (first < messages.Length && messages[first].Seq <= _lastSeq)
            {
                first++;
            }
        }

        if (first == messages.Length)
        {
            return;
        }

        var frames = new byte[messages.Length][];
        for (var i = first; i < messages.Length; i++)
        {
            frames[i] = Events.Stored(messages[i]);
        }

        lock (_lock)
        {
            for (var i = first; i < messages.Length; i++)
            {
                var seq = messages[i].Seq;
                if (seq <= _lastSeq)
                {
                    continue;
                }

                if (seq > _lastSeq + 1)
                {
                    break;
                }

                _lastSeq = seq;
                foreach (var (connection, member) in _members)
                {
                    if (member.Pending is { } pending)
                    {
                        pending.Add((seq, frames[i], null));
                    }
                    else if (seq > member.Floor)
                    {
                        connection.Enqueue(frames[i]);
                    }
                }
            }

            HoldIfBehind();
        }

        hub.Metrics.MessagesReceived(messages.Length - first);
        var now = DateTime.UtcNow;
        for (var i = first; i < messages.Length; i++)
        {
            hub.Metrics.Delivered(messages[i].Time, now);
        }

        RepairIfBehind();
    }

    public void DeliverPresence(ImmutableArray<PresenceChange> changes)
    {
        foreach (var change in changes)
        {
            var frame = Events.Presence(Name, change.User, change.Joined);
            lock (_lock)
            {
                foreach (var (connection, member) in _members)
                {
                    if (member.Pending is { } pending)
                    {
                        pending.Add((0, frame, change.OriginConnection));
                    }
                    else if (connection.Id != change.OriginConnection)
                    {
                        connection.Enqueue(frame);
                    }
                }
            }
        }
    }

    /// <summary>The server API removed these users from the room: their connections here are out (and told so)
    /// before anything after this reaches the room's members.</summary>
    public void DeliverKicks(ImmutableArray<string> users)
    {
        List<ChatConnection>? kicked = null;
        lock (_lock)
        {
            foreach (var connection in _members.Keys)
            {
                if (users.Contains(connection.User))
                {
                    (kicked ??= []).Add(connection);
                }
            }

            foreach (var connection in kicked ?? [])
            {
                Remove(connection);
                connection.Kicked(Name);
            }
        }
    }

    /// <summary>Typing notices: to every member but the typist's own connections, and only to those not behind
    /// (<see cref="ChatConnection.EnqueueLossy"/>). A connection still joining misses them: they are repeated.</summary>
    public void DeliverTyping(ImmutableArray<string> users)
    {
        foreach (var user in users)
        {
            var frame = Events.Typing(Name, user);
            lock (_lock)
            {
                foreach (var (connection, member) in _members)
                {
                    if (member.Pending is null && connection.User != user)
                    {
                        connection.EnqueueLossy(frame);
                    }
                }
            }
        }
    }

    /// <summary>A user's read seq rose: their other connections in the room are told.</summary>
    public void DeliverReads(ImmutableArray<ReadChange> changes)
    {
        foreach (var change in changes)
        {
            var frame = Events.Read(Name, change.Seq);
            lock (_lock)
            {
                foreach (var (connection, member) in _members)
                {
                    if (connection.User != change.User)
                    {
                        continue;
                    }

                    if (member.Pending is { } pending)
                    {
                        pending.Add((0, frame, change.OriginConnection));
                    }
                    else if (connection.Id != change.OriginConnection)
                    {
                        connection.Enqueue(frame);
                    }
                }
            }
        }
    }

    public GatewayMembers SnapshotMembers()
    {
        lock (_lock)
        {
            var byUser = new Dictionary<string, ImmutableArray<string>.Builder>(StringComparer.Ordinal);
            foreach (var connection in _members.Keys)
            {
                if (!byUser.TryGetValue(connection.User, out var ids))
                {
                    byUser[connection.User] = ids = ImmutableArray.CreateBuilder<string>();
                }

                ids.Add(connection.Id);
            }

            return new GatewayMembers(byUser.ToImmutableDictionary(pair => pair.Key, pair => pair.Value.ToImmutable(), StringComparer.Ordinal), _joins);
        }
    }

    /// <summary>Seen a seq above what we delivered (in an answer or a later notification): fetch the gap
    /// from the grain. One fetch at a time per room; it pages until caught up.</summary>
    private void RepairIfBehind()
    {
        lock (_lock)
        {
            if (_repairing || !_initialized || _knownSeq <= _lastSeq)
            {
                return;
            }

            _repairing = true;
        }

        hub.Metrics.GapDetected();
        _ = Task.Run(RepairAsync);
    }

    private async Task RepairAsync()
    {
        try
        {
            while (true)
            {
                long from;
                lock (_lock)
                {
                    if (_knownSeq <= _lastSeq)
                    {
                        return;
                    }

                    from = _lastSeq;
                }

                var page = await Grain.History(new HistoryQuery(null, from, GapPage));
                if (page.Error != RoomError.None)
                {
                    return;
                }

                hub.Metrics.Backfilled(page.Messages.Length);
                if (page.Messages.IsEmpty)
                {
                    return;
                }

                Deliver(page.Messages);
            }
        }
        catch (Exception ex)
        {
            hub.OnGrainCallFailed(this, ex);
        }
        finally
        {
            lock (_lock)
            {
                _repairing = false;
            }
        }
    }

    /// <summary>Under the lock: starts a hold if a member's queue is above the high-water mark.</summary>
    private void HoldIfBehind()
    {
        if (_holding is not null)
        {
            return;
        }

        var highWater = hub.Options.HighWater;
        foreach (var connection in _members.Keys)
        {
            if (connection.Backlog > highWater && !connection.IsClosing)
            {
                _holding = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _holdReported = false;
                var holdId = ++_holdId;
                _ = Task.Run(() => HoldAsync(holdId));
                return;
            }
        }
    }

    /// <summary>Waits until every member is down to the low-water mark. A member slower than the senders
    /// holds them at its pace; one whose socket takes nothing for <c>Gateway:FlowControl:StuckMilliseconds</c>
    /// is stuck: closed with 1013, it holds nobody back. Then local senders go on, and the grain, if it was
    /// told to hold, is told to resume.</summary>
    private async Task HoldAsync(long holdId)
    {
        hub.Metrics.FlowControlHold();
        List<Task>? waits = null;
        lock (_lock)
        {
            foreach (var connection in _members.Keys)
            {
                if (connection.DrainedAsync() is { IsCompleted: false } drained)
                {
                    (waits ??= []).Add(WaitUnlessStuckAsync(connection, drained, hub.Options.FlowControl.StuckAfter));
                }
            }
        }

        if (waits is not null)
        {
            await Task.WhenAll(waits);
        }

        TaskCompletionSource holding;
        bool reported;
        lock (_lock)
        {
            holding = _holding!;
            _holding = null;
            reported = _holdReported;
        }

        holding.TrySetResult();
        if (reported)
        {
            try
            {
                await Grain.Resume(hub.GatewayId, holdId);
            }
            catch (Exception ex)
            {
                // Unanswered, the room stops waiting for us after RoomOptions.MaxHold anyway.
                hub.OnGrainCallFailed(this, ex);
            }
        }
    }

    private static async Task WaitUnlessStuckAsync(ChatConnection connection, Task drained, TimeSpan stuckAfter)
    {
        var written = connection.FramesWritten;
        while (!drained.IsCompleted)
        {
            var started = Stopwatch.GetTimestamp();
            try
            {
                await drained.WaitAsync(stuckAfter);
            }
            catch (TimeoutException)
            {
                var now = connection.FramesWritten;
                // A check that comes late (a GC pause, a starved thread pool) saw this process stand still,
                // its write pump included: that is no evidence against the client. Look again.
                var late = Stopwatch.GetElapsedTime(started) > stuckAfter * 1.5;
                if (now == written && !late)
                {
                    connection.CloseStuck();
                    return;
                }

                written = now;
            }
        }
    }

    private void Remove(ChatConnection connection)
    {
        if (_members.Remove(connection) && _members.Count == 0)
        {
            EmptySince = DateTime.UtcNow;
        }
    }

    private sealed class Member
    {
        /// <summary>Seq of the connection's <c>joined</c> reply: it gets live only what is above.</summary>
        public long Floor { get; set; }

        /// <summary>While the join is in flight: events to replay after <c>joined</c> (seq 0: presence).</summary>
        public List<(long Seq, byte[] Frame, string? Origin)>? Pending { get; set; }
    }
}
