using System.Collections.Immutable;
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Concurrency;
using OrleansChat.Grains.Interfaces;

namespace OrleansChat.Grains;

/// <summary>
/// One chat room. Reentrant on purpose: posts keep arriving while a store write is in flight and are
/// grouped into the next write (group commit). Every piece of state is only touched between awaits on
/// the grain's single-threaded scheduler, and only <see cref="FlushAsync"/> advances <c>_seq</c>.
/// </summary>
[Reentrant]
public sealed partial class RoomGrain : Grain, IRoomGrain
{
    private readonly IMessageStore _store;
    private readonly IBanStore _banStore;
    private Dictionary<string, DateTime> _bans = new(StringComparer.Ordinal);
    private readonly RoomOptions _options;
    private readonly ILogger<RoomGrain> _logger;

    private readonly RecentMessages _recent;
    private readonly DedupeIndex _dedupe;
    private readonly TargetIndex _targets;
    private readonly Presence _presence = new();
    /// <summary>The read seq last announced per user present: a slower answer of the user grain never announces a
    /// lower one after a higher one.</summary>
    private readonly Dictionary<string, long> _readsAnnounced = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Subscription> _subscriptions = new(StringComparer.Ordinal);
    private readonly Dictionary<DedupeKey, PendingPost> _inFlight = [];
    private List<PendingPost> _queue = [];

    private string _room = "";
    private bool _validRoom;
    private long _seq;
    private bool _flushing;
    private TaskCompletionSource? _progress;
    private bool _tailUncertain;
    private DateTime _storeDedupeUntil;
    private DateTime _activatedAt;

    public RoomGrain(IMessageStore store, IBanStore banStore, IOptions<RoomOptions> options, ILogger<RoomGrain> logger)
    {
        _store = store;
        _banStore = banStore;
        _options = options.Value;
        _logger = logger;
        _recent = new RecentMessages(_options.RecentMessages);
        _dedupe = new DedupeIndex(_options.DedupeMessages, _options.DedupeWindow);
        // Edits and deletes mostly concern what people still see: the recent messages. Older targets cost a query.
        _targets = new TargetIndex(_options.RecentMessages);
    }

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _room = this.GetPrimaryKeyString();
        _validRoom = ChatLimits.IsValidRoom(_room);
        _activatedAt = DateTime.UtcNow;
        if (_validRoom)
        {
            // The store is the truth for seq: a re-activated room continues after what was stored,
            // and remembers the client ids of its recent messages so resends stay deduplicated.
            var limit = Math.Max(_options.RecentMessages, _options.DedupeMessages);
            var tail = await _store.ReadLatestAsync(_room, limit, cancellationToken);
            foreach (var message in tail)
            {
                Remember(message);
            }

            _bans = new Dictionary<string, DateTime>(await _banStore.LoadAsync(_room, DateTime.UtcNow, cancellationToken), StringComparer.Ordinal);

            // Older messages than these exist: their client ids are still within the dedupe window until the
            // oldest loaded one leaves it, so until then new posts are also checked against the store.
            _storeDedupeUntil = tail.Count == limit ? tail[0].Time + _options.DedupeWindow : DateTime.MinValue;

            LogActivated(_logger, _room, _seq);
        }

        ChatDiagnostics.RoomActivated();

        this.RegisterGrainTimer(DropExpiredSubscriptions, new GrainTimerCreationOptions
        {
            DueTime = _options.ExpiryCheckInterval,
            Period = _options.ExpiryCheckInterval,
            Interleave = true,
            KeepAlive = false,
        });
    }

    public Task<DateTime> ActivatedAt() => Task.FromResult(_activatedAt);

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        ChatDiagnostics.RoomDeactivated();
        return Task.CompletedTask;
    }

    public Task<SubscribeResult> Subscribe(SubscribeRequest request)
    {
        if (!_validRoom)
        {
            throw new ArgumentException($"Invalid room name '{_room}'.");
        }

        // A provisional entry (the gateway joined someone before subscribing, as after a re-activation)
        // does not count as known: its first real subscription may still be restoring members.
        var known = _subscriptions.TryGetValue(request.GatewayId, out var subscription) && subscription.Observer is not null;
        if (subscription is null)
        {
            _subscriptions[request.GatewayId] = subscription = new Subscription();
        }

        subscription.Observer = request.Observer;
        subscription.ExpiresAt = DateTime.UtcNow + request.Lifetime;

        // A known gateway's report only repairs lost leaves: its joins reach the room as Join calls, and a
        // report that overtakes one must not announce that joiner (to everyone, itself included).
        // An unknown gateway is restoring what a previous activation (or an expired subscription) had.
        var changes = known
            ? _presence.RemoveMissing(request.GatewayId, request.Members)
            : _presence.ReplaceGateway(request.GatewayId, request.Members);
        // A gateway re-registering right after this activation started is restoring members the previous
        // activation had: they never left, so nobody is told they joined again.
        var restoring = !known && DateTime.UtcNow - _activatedAt < _options.PresenceRestoreWindow;
        if (!restoring)
        {
            Broadcast([], changes);
        }

        return Task.FromResult(new SubscribeResult(_seq));
    }

    public Task Unsubscribe(string gatewayId)
    {
        DropGateway(gatewayId);
        return Task.CompletedTask;
    }

    public async Task<JoinResult> Join(JoinRequest request)
    {
        if (!_validRoom)
        {
            return new JoinResult(RoomError.BadRoom, 0, [], [], false, false);
        }

        if (!ChatLimits.IsValidUser(request.User) || request.Since < 0)
        {
            return new JoinResult(RoomError.BadRequest, 0, [], [], false, false);
        }

        if (IsBanned(request.User))
        {
            return new JoinResult(RoomError.Banned, 0, [], [], false, false);
        }

        // The user's read seq comes from their grain, asked before the history: the history read must be the last
        // await of a join (below, _seq and the history must agree, or messages stored during a later await would be
        // neither in the history nor above the joined seq). A join that fails leaves no trace (no member, no
        // presence event): the gateway sends no leave for it.
        if (await ReadStateAsync(request.User) is not { } readSeq)
        {
            return new JoinResult(RoomError.Unavailable, 0, [], [], false, IsSubscribed(request.GatewayId));
        }

        var read = request.Since is { } since
            ? ReadAfterAsync(since, ChatLimits.MaxHistory + 1)
            : ReadLatestAsync(ChatLimits.DefaultHistory);
        if (await TryReadAsync(read) is not { } history)
        {
            return new JoinResult(RoomError.Unavailable, 0, [], [], false, IsSubscribed(request.GatewayId));
        }

        var more = history.Length > ChatLimits.MaxHistory;
        if (more)
        {
            history = history[..ChatLimits.MaxHistory];
        }

        var subscribed = TouchGateway(request.GatewayId);
        if (_presence.Add(request.GatewayId, request.User, request.ConnectionId, request.Version))
        {
            Broadcast([], [new PresenceChange(request.User, true, request.ConnectionId)]);
        }

        // No await between here and the return: _seq and the history agree, and every message above
        // _seq reaches the gateway later through the observer.
        var seq = more ? _seq : Math.Max(_seq, history.IsEmpty ? 0 : history[^1].Seq);
        return new JoinResult(RoomError.None, seq, _presence.Users(), history, more, subscribed, readSeq);
    }

    public Task Leave(LeaveRequest request)
    {
        if (_presence.Remove(request.GatewayId, request.User, request.ConnectionId))
        {
            Broadcast([], [new PresenceChange(request.User, false, request.ConnectionId)]);
        }

        return Task.CompletedTask;
    }

    public async Task<PostResult> Post(PostRequest request)
    {
        var subscribed = request.GatewayId is null || IsSubscribed(request.GatewayId);
        var result = Accept(request);
        StartFlush();
        return await result with { GatewaySubscribed = subscribed };
    }

    public async Task<PostBatchResult> PostBatch(PostBatchRequest request)
    {
        var subscribed = request.GatewayId is null || IsSubscribed(request.GatewayId);
        // Accepted in the order sent, before the first await: they take seqs in this order, and posts of
        // other connections arriving meanwhile do not come between them and the queue.
        var accepted = new Task<PostResult>[request.Posts.Length];
        for (var i = 0; i < accepted.Length; i++)
        {
            var post = request.Posts[i];
            accepted[i] = Accept(new PostRequest(request.User, post.ClientId, post.Text, request.GatewayId, post.Kind, post.Target));
        }

        StartFlush();
        var acks = ImmutableArray.CreateBuilder<PostAck>(accepted.Length);
        foreach (var accept in accepted)
        {
            var result = await accept;
            acks.Add(result switch
            {
                { Error: not RoomError.None } => new PostAck(result.Error, 0, default, null),
                { Duplicate: true, Message: { } original } => new PostAck(RoomError.None, original.Seq, original.Time, original),
                { Message: { } stored } => new PostAck(RoomError.None, stored.Seq, stored.Time, null),
                _ => new PostAck(RoomError.Unavailable, 0, default, null),
            });
        }

        return new PostBatchResult(acks.MoveToImmutable(), subscribed);
    }

    public Task Typing(TypingRequest request)
    {
        if (!_validRoom || !ChatLimits.IsValidUser(request.User))
        {
            return Task.CompletedTask;
        }

        // The typist's gateway has told its own members; every other gateway gets it unless it is behind.
        foreach (var (gatewayId, subscription) in _subscriptions)
        {
            if (gatewayId != request.GatewayId && subscription.Observer is not null
                && subscription.TryEnqueueTyping(request.User, _options.MaxBatch) && !subscription.Delivering)
            {
                _ = DeliverAsync(gatewayId, subscription);
            }
        }

        return Task.CompletedTask;
    }

    public async Task Read(ReadRequest request)
    {
        if (!_validRoom || !ChatLimits.IsValidUser(request.User) || request.Seq < 0)
        {
            return;
        }

        // A seq above the room's counts as the room's: nobody can have read what is not there yet.
        var risen = await GrainFactory.GetGrain<IUserGrain>(request.User).MarkRead(_room, Math.Min(request.Seq, _seq));
        if (risen == 0 || risen <= _readsAnnounced.GetValueOrDefault(request.User))
        {
            return;
        }

        _readsAnnounced[request.User] = risen;
        var change = new ReadChange(request.User, risen, request.ConnectionId);
        foreach (var gatewayId in _presence.GatewaysOf(request.User))
        {
            if (_subscriptions.TryGetValue(gatewayId, out var subscription) && subscription.Observer is not null)
            {
                subscription.EnqueueRead(change);
                if (!subscription.Delivering)
                {
                    _ = DeliverAsync(gatewayId, subscription);
                }
            }
        }
    }

    public Task<RoomInfo> Info()
        => Task.FromResult(_validRoom ? new RoomInfo(RoomError.None, _seq, _presence.Users()) : new RoomInfo(RoomError.BadRoom, 0, []));

    public async Task<KickResult> Kick(KickRequest request)
    {
        if (!_validRoom)
        {
            return new KickResult(RoomError.BadRoom, 0);
        }

        if (!ChatLimits.IsValidUser(request.User) || request.BanSeconds < 0)
        {
            return new KickResult(RoomError.BadRequest, 0);
        }

        if (request.BanSeconds > 0)
        {
            // Stored before it is answered: a ban holds on every gateway, after a re-activation, after a restart.
            var until = DateTime.UtcNow + TimeSpan.FromSeconds(Math.Min(request.BanSeconds, MaxBanSeconds));
            try
            {
                await _banStore.BanAsync(_room, request.User, until);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogStoreFailed(_logger, ex, _room);
                return new KickResult(RoomError.Unavailable, 0);
            }

            _bans[request.User] = until;
        }

        // Out of presence now; the user's gateways take the connections out (and tell them) before the others
        // hear that the user left, in the same notification order.
        var (connections, gateways) = _presence.RemoveUser(request.User);
        foreach (var gatewayId in gateways)
        {
            if (_subscriptions.TryGetValue(gatewayId, out var subscription) && subscription.Observer is not null)
            {
                subscription.EnqueueKick(request.User);
                if (!subscription.Delivering)
                {
                    _ = DeliverAsync(gatewayId, subscription);
                }
            }
        }

        if (connections > 0)
        {
            Broadcast([], [new PresenceChange(request.User, false, null)]);
        }

        return new KickResult(RoomError.None, connections);
    }

    private bool IsBanned(string user) => _bans.Count > 0 && _bans.TryGetValue(user, out var until) && until > DateTime.UtcNow;

    /// <summary>About a hundred years: "until further notice" without overflowing a date.</summary>
    private const long MaxBanSeconds = 100L * 365 * 24 * 3600;

    /// <summary>The user's read seq, or null when their grain cannot tell (the join then answers unavailable).</summary>
    private async Task<long?> ReadStateAsync(string user)
    {
        try
        {
            return await GrainFactory.GetGrain<IUserGrain>(user).GetRead(_room);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogReadStateFailed(_logger, ex, _room, user);
            return null;
        }
    }

    public Task Resume(string gatewayId, long holdId)
    {
        if (_subscriptions.TryGetValue(gatewayId, out var subscription))
        {
            subscription.Resume(holdId);
        }

        return Task.CompletedTask;
    }

    /// <summary>Validates a post and queues it for the next store write, or answers it at once: an error, a
    /// resend of a stored message (the original), or a resend of one still in flight (its result).</summary>
    private Task<PostResult> Accept(PostRequest request)
    {
        var error = Validate(request);
        if (error != RoomError.None)
        {
            return Task.FromResult(new PostResult(error, null, false, true));
        }

        var key = new DedupeKey(request.User, request.ClientId);
        if (_dedupe.TryGetSeq(key, out var storedSeq))
        {
            return ReadOriginalAsync(storedSeq);
        }

        if (_inFlight.TryGetValue(key, out var pending))
        {
            return SameAsFirstAsync(pending);
        }

        // A banned user cannot join, so cannot send; the server API posting as them is refused the same way.
        if (IsBanned(request.User))
        {
            return Task.FromResult(new PostResult(RoomError.Banned, null, false, true));
        }

        pending = new PendingPost(request);
        _inFlight[key] = pending;
        _queue.Add(pending);
        return pending.Completion.Task;
    }

    private async Task<PostResult> ReadOriginalAsync(long seq)
        => await TryReadAsync(ReadAfterAsync(seq - 1, 1)) is { } original
            ? new PostResult(RoomError.None, original[0], true, true)
            : new PostResult(RoomError.Unavailable, null, false, true);

    private static async Task<PostResult> SameAsFirstAsync(PendingPost first)
    {
        var result = await first.Completion.Task;
        return result with { Duplicate = result.Error == RoomError.None };
    }

    private void StartFlush()
    {
        if (!_flushing && _queue.Count > 0)
        {
            _ = FlushAsync();
        }
    }

    public async Task<HistoryResult> History(HistoryQuery query)
    {
        if (!_validRoom)
        {
            return new HistoryResult(RoomError.BadRoom, []);
        }

        if (query.Limit is < 1 or > ChatLimits.MaxHistory || query.Before < 0 || query.After < 0
            || (query.Before is not null && query.After is not null))
        {
            return new HistoryResult(RoomError.BadRequest, []);
        }

        var read = query switch
        {
            { Before: { } before } => ReadBeforeAsync(before, query.Limit),
            { After: { } after } => ReadAfterAsync(after, query.Limit),
            _ => ReadLatestAsync(query.Limit),
        };
        return await TryReadAsync(read) is { } messages
            ? new HistoryResult(RoomError.None, messages)
            : new HistoryResult(RoomError.Unavailable, []);
    }

    public Task<string> GetRuntimeIdentity() => Task.FromResult(RuntimeIdentity);

    private RoomError Validate(PostRequest request)
    {
        // A message and an edit carry a text; a deletion none. Only a change has a target (0 is a seq that is
        // never stored: not_found when the write looks it up).
        var wellFormed = request.Kind switch
        {
            ChatEventKind.Message => !string.IsNullOrEmpty(request.Text) && request.Target == 0,
            ChatEventKind.Edit => !string.IsNullOrEmpty(request.Text) && request.Target >= 0,
            ChatEventKind.Delete => request.Text is "" && request.Target >= 0,
            _ => false,
        };
        if (!wellFormed || !ChatLimits.IsValidUser(request.User) || !ChatLimits.IsValidClientId(request.ClientId)
            || !IsStorable(request.Text) || !IsStorable(request.ClientId))
        {
            return RoomError.BadRequest;
        }

        if (!_validRoom)
        {
            return RoomError.BadRoom;
        }

        return ChatLimits.Utf8Length(request.Text) > _options.MaxTextBytes ? RoomError.TooLarge : RoomError.None;
    }

    /// <summary>
    /// Group commit: one write at a time; posts that arrive meanwhile wait in <c>_queue</c> and go into the
    /// next write. A post is acknowledged only after its write committed. A failed write fails its posts
    /// (unavailable) and assigns nothing, so seq stays gap-free; because a failed write may still have
    /// committed, the room re-reads the store's tail before it writes again.
    /// </summary>
    private async Task FlushAsync()
    {
        _flushing = true;
        try
        {
            while (_queue.Count > 0)
            {
                await WhileGatewaysBehindAsync();
                var batch = TakeBatch();
                try
                {
                    if (_tailUncertain)
                    {
                        await CatchUpWithStoreAsync();
                        // Resends of messages that turned out to be stored were answered by the catch-up.
                        batch.RemoveAll(pending => pending.Completion.Task.IsCompleted);
                        if (batch.Count == 0)
                        {
                            continue;
                        }
                    }

                    if (DateTime.UtcNow < _storeDedupeUntil)
                    {
                        await AnswerStoredResendsAsync(batch);
                        batch.RemoveAll(pending => pending.Completion.Task.IsCompleted);
                        if (batch.Count == 0)
                        {
                            continue;
                        }
                    }

                    if (batch.Exists(pending => pending.Request.Kind != ChatEventKind.Message))
                    {
                        await RefuseBadChangesAsync(batch);
                        batch.RemoveAll(pending => pending.Completion.Task.IsCompleted);
                        if (batch.Count == 0)
                        {
                            continue;
                        }
                    }

                    var messages = new ChatMessage[batch.Count];
                    var time = TruncateToMilliseconds(DateTime.UtcNow);
                    for (var i = 0; i < batch.Count; i++)
                    {
                        var post = batch[i].Request;
                        messages[i] = new ChatMessage(_room, _seq + 1 + i, post.User, post.Text, time, post.ClientId, post.Kind, post.Target);
                    }

                    using (var activity = ChatDiagnostics.Source.StartActivity("chat.store"))
                    {
                        activity?.SetTag("chat.room", _room);
                        activity?.SetTag("chat.messages", messages.Length);
                        var started = Stopwatch.GetTimestamp();
                        await _store.AppendAsync(_room, messages);
                        ChatDiagnostics.Stored(messages.Length, Stopwatch.GetElapsedTime(started));
                    }

                    _tailUncertain = false;
                    foreach (var message in messages)
                    {
                        Remember(message);
                    }

                    for (var i = 0; i < batch.Count; i++)
                    {
                        Complete(batch[i], new PostResult(RoomError.None, messages[i], false, true));
                    }

                    Broadcast(ImmutableArray.Create(messages), [], SoleGateway(batch));
                }
                catch (Exception ex)
                {
                    _tailUncertain = true;
                    ChatDiagnostics.StoreFailed();
                    LogStoreFailed(_logger, ex, _room);
                    foreach (var pending in batch)
                    {
                        Complete(pending, new PostResult(RoomError.Unavailable, null, false, true));
                    }
                }
            }
        }
        finally
        {
            _flushing = false;
        }
    }

    /// <summary>
    /// Flow control: while a gateway has <see cref="RoomOptions.GatewayBacklog"/> messages waiting (it asked
    /// the room to hold, or its calls are slow), nothing new is stored, so posts wait for their answers and
    /// the gateways stop reading their senders' sockets. A gateway holds the room back at most
    /// <see cref="RoomOptions.MaxHold"/>; after that the room goes on without waiting for it.
    /// </summary>
    private async ValueTask WhileGatewaysBehindAsync()
    {
        while (HeldUntil() is { } until)
        {
            _progress ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            try
            {
                await _progress.Task.WaitAsync(until - DateTime.UtcNow);
            }
            catch (TimeoutException)
            {
                // HeldUntil no longer counts the gateway that held us this long.
            }
        }
    }

    /// <summary>When the longest current hold expires, or null if no gateway holds the room back.</summary>
    private DateTime? HeldUntil()
    {
        var now = DateTime.UtcNow;
        DateTime? until = null;
        foreach (var subscription in _subscriptions.Values)
        {
            if (subscription.Observer is null || subscription.PendingMessages < _options.GatewayBacklog)
            {
                subscription.BehindSince = null;
                continue;
            }

            subscription.BehindSince ??= now;
            var expires = subscription.BehindSince.Value + _options.MaxHold;
            if (expires > now && (until is null || expires > until))
            {
                until = expires;
            }
        }

        return until;
    }

    /// <summary>A gateway's backlog shrank or it went away: a held flush looks again.</summary>
    private void OnGatewayProgress()
    {
        if (_progress is { } progress)
        {
            _progress = null;
            progress.TrySetResult();
        }
    }

    private List<PendingPost> TakeBatch()
    {
        if (_queue.Count <= _options.MaxBatch)
        {
            var all = _queue;
            _queue = [];
            return all;
        }

        var batch = _queue.GetRange(0, _options.MaxBatch);
        _queue.RemoveRange(0, _options.MaxBatch);
        return batch;
    }

    private void Complete(PendingPost pending, PostResult result)
    {
        _inFlight.Remove(new DedupeKey(pending.Request.User, pending.Request.ClientId));
        pending.Completion.TrySetResult(result);
    }

    /// <summary>Resends of messages older than what this activation loaded: one store query for the whole
    /// batch (not one per post), answered with the stored originals.</summary>
    private async Task AnswerStoredResendsAsync(List<PendingPost> batch)
    {
        var keys = batch.Select(pending => new DedupeKey(pending.Request.User, pending.Request.ClientId)).ToArray();
        var stored = await _store.FindByClientIdsAsync(_room, keys, DateTime.UtcNow - _options.DedupeWindow);
        foreach (var message in stored)
        {
            var key = new DedupeKey(message.User, message.ClientId);
            if (_inFlight.TryGetValue(key, out var pending))
            {
                Complete(pending, new PostResult(RoomError.None, message, true, true));
            }
        }
    }

    /// <summary>
    /// Checks the edits and deletes of a write against what is stored, in the order they take seqs, and answers the
    /// ones that fail (<c>not_found</c>: no such live message; <c>forbidden</c>: someone else's). Runs inside the
    /// write, so no other write changes the room meanwhile; a deletion earlier in the same write counts. Targets
    /// the room does not hold in memory are read from the store in one query.
    /// </summary>
    private async Task RefuseBadChangesAsync(List<PendingPost> batch)
    {
        var unknown = new HashSet<long>();
        foreach (var pending in batch)
        {
            var target = pending.Request.Target;
            if (pending.Request.Kind != ChatEventKind.Message && target >= 1 && target <= _seq && !_targets.TryGet(target, out _))
            {
                unknown.Add(target);
            }
        }

        if (unknown.Count > 0)
        {
            foreach (var found in await _store.ReadTargetsAsync(_room, unknown))
            {
                _targets.Add(found);
            }
        }

        HashSet<long>? deletedHere = null;
        foreach (var pending in batch)
        {
            var request = pending.Request;
            if (request.Kind == ChatEventKind.Message)
            {
                continue;
            }

            var error = !_targets.TryGet(request.Target, out var target) || target.Kind != ChatEventKind.Message
                || target.Deleted || deletedHere?.Contains(request.Target) == true
                ? RoomError.NotFound
                : target.User != request.User && !request.Moderator ? RoomError.Forbidden : RoomError.None;
            if (error != RoomError.None)
            {
                Complete(pending, new PostResult(error, null, false, true));
            }
            else if (request.Kind == ChatEventKind.Delete)
            {
                (deletedHere ??= []).Add(request.Target);
            }
        }
    }

    /// <summary>Adopts messages a failed-looking write did commit, so their seqs are not reused and their
    /// senders' resends are answered with them; gateways get them like any other message.</summary>
    private async Task CatchUpWithStoreAsync()
    {
        while (true)
        {
            var committed = await _store.ReadAfterAsync(_room, _seq, _options.MaxBatch);
            if (committed.Count == 0)
            {
                return;
            }

            foreach (var message in committed)
            {
                Remember(message);
                if (_inFlight.Remove(new DedupeKey(message.User, message.ClientId), out var waiting))
                {
                    _queue.Remove(waiting);
                    waiting.Completion.TrySetResult(new PostResult(RoomError.None, message, false, true));
                }
            }

            Broadcast([.. committed], []);
        }
    }

    private void Remember(ChatMessage message)
    {
        _seq = message.Seq;
        _recent.Add(message);
        _dedupe.Add(new DedupeKey(message.User, message.ClientId), message.Seq, message.Time);
        _targets.Remember(message);
    }

    /// <summary>A store read at the grain boundary: null when the store failed, so the caller answers
    /// Unavailable (retry later) instead of faulting the call.</summary>
    private async Task<ImmutableArray<ChatMessage>?> TryReadAsync(Task<ImmutableArray<ChatMessage>> read)
    {
        try
        {
            return await read;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogStoreFailed(_logger, ex, _room);
            return null;
        }
    }

    private async Task<ImmutableArray<ChatMessage>> ReadLatestAsync(int limit)
    {
        if (_recent.CoversLatest(limit, _seq))
        {
            return _recent.Latest(limit);
        }

        var stored = await _store.ReadLatestAsync(_room, limit);
        return TopUp(stored, limit);
    }

    private async Task<ImmutableArray<ChatMessage>> ReadBeforeAsync(long before, int limit)
    {
        if (_recent.CoversBefore(before, limit))
        {
            return _recent.Before(before, limit);
        }

        return [.. await _store.ReadBeforeAsync(_room, before, limit)];
    }

    private async Task<ImmutableArray<ChatMessage>> ReadAfterAsync(long after, int limit)
    {
        if (_recent.CoversAfter(after, _seq))
        {
            return _recent.After(after, limit);
        }

        var stored = await _store.ReadAfterAsync(_room, after, limit);
        return TopUp(stored, limit);
    }

    /// <summary>Messages committed while a store read was in flight are in memory: append them so a
    /// result never ends before the room's current seq when it is not full.</summary>
    private ImmutableArray<ChatMessage> TopUp(IReadOnlyList<ChatMessage> stored, int limit)
    {
        var builder = ImmutableArray.CreateBuilder<ChatMessage>(limit);
        builder.AddRange(stored);
        if (builder.Count < limit)
        {
            var last = builder.Count == 0 ? 0 : builder[^1].Seq;
            if (last < _seq && _recent.CoversAfter(last, _seq))
            {
                builder.AddRange(_recent.After(last, limit - builder.Count));
            }
        }

        return builder.ToImmutable();
    }

    /// <summary>False for a gateway known only provisionally (it joined but has not subscribed since this
    /// activation started): it gets no events until it subscribes.</summary>
    private bool IsSubscribed(string gatewayId)
        => _subscriptions.TryGetValue(gatewayId, out var subscription) && subscription.Observer is not null;

    private bool TouchGateway(string gatewayId)
    {
        if (_subscriptions.ContainsKey(gatewayId))
        {
            return IsSubscribed(gatewayId);
        }

        // A join from a gateway this activation does not know (it re-activated since the gateway last
        // subscribed): keep the member, and tell the gateway to subscribe again now.
        _subscriptions[gatewayId] = new Subscription { ExpiresAt = DateTime.UtcNow + _options.ProvisionalLifetime };
        return false;
    }

    private Task DropExpiredSubscriptions(CancellationToken cancellationToken)
    {
        var now = DateTime.UtcNow;
        foreach (var (gatewayId, subscription) in _subscriptions.ToArray())
        {
            if (subscription.ExpiresAt < now)
            {
                ChatDiagnostics.SubscriptionExpired();
                LogSubscriptionExpired(_logger, _room, gatewayId);
                DropGateway(gatewayId);
            }
        }

        return Task.CompletedTask;
    }

    private void DropGateway(string gatewayId)
    {
        if (_subscriptions.Remove(gatewayId, out var dropped))
        {
            dropped.Resume(long.MaxValue);
            OnGatewayProgress();
        }

        Broadcast([], _presence.ReplaceGateway(gatewayId, GatewayMembers.Empty));
    }

    /// <summary>Queues the events for every subscribed gateway and starts its delivery if none is running.
    /// The room never waits here: each gateway's calls run in <see cref="DeliverAsync"/>.
    /// <paramref name="postedVia"/> is the gateway every one of <paramref name="messages"/> was posted
    /// through: it delivers them from its posts' answers, so when nothing else is pending or in flight for
    /// it (nothing can arrive after them out of order) it gets no notification of its own messages. In a
    /// room whose senders sit on one gateway that saves a call and its answer per write.</summary>
    private void Broadcast(ImmutableArray<ChatMessage> messages, ImmutableArray<PresenceChange> presence, string? postedVia = null)
    {
        if (messages.IsEmpty && presence.IsEmpty)
        {
            return;
        }

        foreach (var change in presence)
        {
            if (!change.Joined)
            {
                _readsAnnounced.Remove(change.User);
            }
        }

        foreach (var (gatewayId, subscription) in _subscriptions)
        {
            if (subscription.Observer is null
                || (presence.IsEmpty && gatewayId == postedVia && !subscription.Delivering && subscription.IsEmpty))
            {
                continue;
            }

            subscription.Enqueue(messages, presence, _options.MaxPendingMessagesPerGateway);
            if (!subscription.Delivering)
            {
                _ = DeliverAsync(gatewayId, subscription);
            }
        }
    }

    /// <summary>The gateway all posts of a write came through, or null (several, or the server API).</summary>
    private static string? SoleGateway(List<PendingPost> batch)
    {
        var gateway = batch[0].Request.GatewayId;
        for (var i = 1; i < batch.Count && gateway is not null; i++)
        {
            if (batch[i].Request.GatewayId != gateway)
            {
                gateway = null;
            }
        }

        return gateway;
    }

    /// <summary>PostgreSQL text cannot hold NUL and UTF-8 cannot encode a lone surrogate. Such a post would fail
    /// the whole group-commit batch it lands in, on every resend: refuse it here, whatever the store. (A remote
    /// caller's lone surrogate arrives as U+FFFD already, Orleans sends strings as UTF-8; an embedded one does not.)</summary>
    private static bool IsStorable(string text)
    {
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (c == '\0')
            {
                return false;
            }

            if (char.IsSurrogate(c))
            {
                if (!char.IsHighSurrogate(c) || i + 1 == text.Length || !char.IsLowSurrogate(text[i + 1]))
                {
                    return false;
                }

                i++;
            }
        }

        return true;
    }

    /// <summary>
    /// One call at a time per gateway, so it sees messages in seq order (Orleans does not order one-way
    /// calls); whatever piled up during a call goes out in the next one, which is how a busy room batches.
    /// A call that gets no answer within <see cref="RoomOptions.NotificationTimeout"/> (lost on the way, or
    /// its answer lost) must not hold the gateway's later events: its events go back in front of the queue
    /// and the next call carries them with whatever came since. The gateway skips seqs it already has, so a
    /// late original costs nothing. A gateway that fails outright (gone, refused) is dropped like an expired
    /// one: it renews its subscription and fetches the gap.
    /// </summary>
    private async Task DeliverAsync(string gatewayId, Subscription subscription)
    {
        subscription.Delivering = true;
        try
        {
            while (IsCurrent(gatewayId, subscription) && subscription.Observer is { } observer)
            {
                if (subscription.Held)
                {
                    await WaitForResumeAsync(gatewayId, subscription);
                    continue;
                }

                if (subscription.TakeEvents(_room, _options.MaxBatch) is not { } events)
                {
                    break;
                }

                OnGatewayProgress();
                try
                {
                    var receipt = await observer.OnEvents(events).WaitAsync(_options.NotificationTimeout);
                    subscription.Unanswered = false;
                    subscription.Hold(receipt.HoldId);
                }
                catch (TimeoutException)
                {
                    // Once per silence, not once a second while a dying gateway waits for its expiry.
                    if (!subscription.Unanswered)
                    {
                        subscription.Unanswered = true;
                        ChatDiagnostics.NotificationTimedOut();
                        LogNotifyTimedOut(_logger, _room, gatewayId, events.Messages.Length);
                    }

                    subscription.Requeue(events, _options.MaxPendingMessagesPerGateway);
                }
            }
        }
        catch (Exception ex)
        {
            LogNotifyFailed(_logger, ex, _room, gatewayId);
            if (IsCurrent(gatewayId, subscription))
            {
                DropGateway(gatewayId);
            }
        }
        finally
        {
            subscription.Delivering = false;
        }
    }

    /// <summary>The gateway said its sockets are behind: its events wait (and pile up, which in time holds
    /// the room's writes) until it resumes, for at most <see cref="RoomOptions.MaxHold"/>.</summary>
    private async Task WaitForResumeAsync(string gatewayId, Subscription subscription)
    {
        try
        {
            await subscription.Resumed.WaitAsync(_options.MaxHold);
        }
        catch (TimeoutException)
        {
            ChatDiagnostics.HoldExpired();
            LogHoldExpired(_logger, _room, gatewayId, _options.MaxHold.TotalMilliseconds);
            subscription.Resume(subscription.HoldId);
        }
    }

    private bool IsCurrent(string gatewayId, Subscription subscription)
        => _subscriptions.TryGetValue(gatewayId, out var current) && ReferenceEquals(current, subscription);

    private static DateTime TruncateToMilliseconds(DateTime time)
        => new(time.Ticks - (time.Ticks % TimeSpan.TicksPerMillisecond), DateTimeKind.Utc);

    private sealed class Subscription
    {
        private readonly List<ChatMessage> _messages = [];
        private readonly List<PresenceChange> _presence = [];
        private readonly List<string> _typing = [];
        private readonly List<ReadChange> _reads = [];
        private readonly List<string> _kicked = [];

        public IRoomObserver? Observer { get; set; }

        public DateTime ExpiresAt { get; set; }

        /// <summary>A call to this gateway is in flight; new events wait for the next one.</summary>
        public bool Delivering { get; set; }

        /// <summary>The last call to this gateway went unanswered (its events were sent again).</summary>
        public bool Unanswered { get; set; }

        public bool IsEmpty => _messages.Count == 0 && _presence.Count == 0 && _typing.Count == 0 && _reads.Count == 0 && _kicked.Count == 0;

        public int PendingMessages => _messages.Count;

        /// <summary>Since when this gateway's backlog holds the room's writes (flow control).</summary>
        public DateTime? BehindSince { get; set; }

        private long _resumedUpTo;
        private TaskCompletionSource? _resumed;

        public long HoldId { get; private set; }

        /// <summary>The gateway asked to hold (its sockets are behind) and has not resumed since.</summary>
        public bool Held => HoldId > _resumedUpTo;

        /// <summary>Completes when the gateway resumes. Only while <see cref="Held"/>.</summary>
        public Task Resumed => (_resumed ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;

        /// <summary>A receipt's hold id. A Resume may overtake the receipt it answers: ids let it count.</summary>
        public void Hold(long holdId) => HoldId = Math.Max(HoldId, holdId);

        public void Resume(long holdId)
        {
            _resumedUpTo = Math.Max(_resumedUpTo, holdId);
            if (!Held && _resumed is { } resumed)
            {
                _resumed = null;
                resumed.TrySetResult();
            }
        }

        public void Enqueue(ImmutableArray<ChatMessage> messages, ImmutableArray<PresenceChange> presence, int maxMessages)
        {
            _messages.AddRange(messages);
            _presence.AddRange(presence);
            Trim(maxMessages);
        }

        /// <summary>Typing is the first thing dropped: not for a gateway that asked to hold, nor for one a full
        /// call behind; and once per user per call.</summary>
        public bool TryEnqueueTyping(string user, int behind)
        {
            if (Held || _messages.Count >= behind || _typing.Contains(user))
            {
                return false;
            }

            _typing.Add(user);
            return true;
        }

        public void EnqueueRead(ReadChange change) => _reads.Add(change);

        public void EnqueueKick(string user) => _kicked.Add(user);

        /// <summary>Puts the events of an unanswered call back in front of what is pending, in order. Typing
        /// notices are not sent again: late, they would be wrong.</summary>
        public void Requeue(RoomEvents events, int maxMessages)
        {
            _messages.InsertRange(0, events.Messages);
            _presence.InsertRange(0, events.Presence);
            _reads.InsertRange(0, events.Reads);
            _kicked.InsertRange(0, events.Kicked);
            Trim(maxMessages);
        }

        /// <summary>A gateway this far behind is stuck: forget its oldest messages; it fetches them by seq.</summary>
        private void Trim(int maxMessages)
        {
            if (_messages.Count > maxMessages)
            {
                _messages.RemoveRange(0, _messages.Count - maxMessages);
            }
        }

        /// <summary>The oldest pending messages (at most <paramref name="maxMessages"/>) and all pending
        /// presence in one call, or null when nothing is pending.</summary>
        public RoomEvents? TakeEvents(string room, int maxMessages)
        {
            if (IsEmpty)
            {
                return null;
            }

            var count = Math.Min(maxMessages, _messages.Count);
            var events = new RoomEvents(room, [.. _messages.GetRange(0, count)], [.. _presence], [.. _typing], [.. _reads], [.. _kicked]);
            _messages.RemoveRange(0, count);
            _presence.Clear();
            _typing.Clear();
            _reads.Clear();
            _kicked.Clear();
            return events;
        }
    }

    private sealed class PendingPost(PostRequest request)
    {
        public PostRequest Request { get; } = request;

        public TaskCompletionSource<PostResult> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Room {Room} activated at seq {Seq}")]
    private static partial void LogActivated(ILogger logger, string room, long seq);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Room {Room}: message store failed")]
    private static partial void LogStoreFailed(ILogger logger, Exception exception, string room);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Room {Room}: the read state of {User} could not be read")]
    private static partial void LogReadStateFailed(ILogger logger, Exception exception, string room, string user);

    [LoggerMessage(Level = LogLevel.Information, Message = "Room {Room}: subscription of gateway {Gateway} expired")]
    private static partial void LogSubscriptionExpired(ILogger logger, string room, string gateway);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Room {Room}: gateway {Gateway} did not answer a notification of {Count} messages in time; sending it again with what came since")]
    private static partial void LogNotifyTimedOut(ILogger logger, string room, string gateway, int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Room {Room}: gateway {Gateway} asked to hold and did not resume within {Milliseconds} ms; sending again")]
    private static partial void LogHoldExpired(ILogger logger, string room, string gateway, double milliseconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Room {Room}: notifying gateway {Gateway} failed")]
    private static partial void LogNotifyFailed(ILogger logger, Exception exception, string room, string gateway);
}
