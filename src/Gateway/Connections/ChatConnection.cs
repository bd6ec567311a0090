using System.Buffers;
using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text.Unicode;
using System.Threading.Channels;
using OrleansChat.Gateway.Http;
using OrleansChat.Gateway.Protocol;
using OrleansChat.Gateway.Rooms;
using OrleansChat.Grains.Interfaces;

namespace OrleansChat.Gateway.Connections;

/// <summary>
/// One browser WebSocket. Three loops, each with one job:
/// the <b>read pump</b> reassembles frames, enforces size/UTF-8/rate limits and hands requests on;
/// the <b>request loop</b> handles them one at a time (grain calls), so the read pump keeps reading
/// (and answering pings) while a grain call is slow;
/// the <b>write pump</b> is the only code that writes to the socket: it drains the bounded outbound queue,
/// packing queued events into one frame when the client is behind.
/// Flow control: a connection whose queue is above the high-water mark holds back the rooms that feed it
/// (<see cref="LocalRoom"/> waits for it to drain, and their senders wait); one that does not drain in time
/// is stuck and closed with 1013, as is one whose queue fills up regardless.
/// </summary>
public sealed partial class ChatConnection
{
    private const int MaxPackedFrameBytes = 64 * 1024;
    private const int InitialReceiveBuffer = 4096;
    private const int PendingRequests = 64;

    /// <summary>Most queued sends of one connection posted in one grain call (all it may have queued).</summary>
    private const int MaxSendBatch = PendingRequests;
    private static readonly TimeSpan CloseHandshakeTimeout = TimeSpan.FromSeconds(10);
    private static long s_nextId;

    /// <summary>1013 "try again later": not in <see cref="WebSocketCloseStatus"/>.</summary>
    public const WebSocketCloseStatus SlowConsumerStatus = (WebSocketCloseStatus)1013;

    private const int AbnormalClosure = 1006;

    private readonly WebSocket _socket;
    private readonly GatewayOptions _options;
    private readonly RoomHub _hub;
    private readonly GatewayMetrics _metrics;
    private readonly ILogger _logger;
    private readonly Channel<byte[]> _outbound;
    private readonly Channel<ClientRequest> _requests;
    private readonly RateLimiter _rateLimiter;
    private readonly RoomAccess _access;

    /// <summary>Joined rooms. Changed by the request loop, and by the room hub when the server API kicks the user.</summary>
    private readonly ConcurrentDictionary<string, byte> _rooms = new(StringComparer.Ordinal);

    /// <summary>When this connection last forwarded a <c>typing</c> per room (<see cref="Environment.TickCount64"/>).</summary>
    private readonly Dictionary<string, long> _typingSent = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _aborted = new();
    private readonly CancellationTokenSource _firstFrame = new();
    private readonly Lock _closeLock = new();

    private WebSocketCloseStatus? _closeStatus;
    private int? _closeCode;
    private string _closeReason = "";
    private volatile bool _discardQueued;
    private TaskCompletionSource? _drained;
    private long _framesWritten;

    public ChatConnection(WebSocket socket, Identity identity, GatewayOptions options, RoomHub hub, GatewayMetrics metrics, ILogger logger)
    {
        _socket = socket;
        User = identity.User;
        _access = identity.Rooms;
        _options = options;
        _hub = hub;
        _metrics = metrics;
        _logger = logger;
        Id = $"{hub.GatewayId}/{Interlocked.Increment(ref s_nextId)}";
        _outbound = Channel.CreateBounded<byte[]>(new BoundedChannelOptions(options.OutboundQueue)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        _requests = Channel.CreateBounded<ClientRequest>(new BoundedChannelOptions(PendingRequests) { SingleReader = true, SingleWriter = true });
        _rateLimiter = new RateLimiter(options.RateLimit.PerSecond, options.RateLimit.Burst);
    }

    /// <summary>Unique per gateway process; carried to the grain so presence is counted per connection.</summary>
    public string Id { get; }

    public string User { get; }

    /// <summary>The close code once <see cref="RunAsync"/> returned: ours when we closed, the peer's when it did,
    /// 1006 when the connection dropped without a close handshake.</summary>
    public int CloseCode => _closeCode ?? AbnormalClosure;

    /// <summary>Events queued and not yet taken by the write pump.</summary>
    public int Backlog => _outbound.Reader.Count;

    /// <summary>Frames the socket has accepted so far: a connection whose count stands still is stuck.</summary>
    public long FramesWritten => Volatile.Read(ref _framesWritten);

    /// <summary>Closing: its queue holds nobody back any more.</summary>
    public bool IsClosing => _closeStatus is not null;

    /// <summary>Completes once the queue is down to the low-water mark or the connection is closing.</summary>
    public Task DrainedAsync()
    {
        if (IsDrained)
        {
            return Task.CompletedTask;
        }

        var waiter = Volatile.Read(ref _drained);
        if (waiter is null)
        {
            var created = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            waiter = Interlocked.CompareExchange(ref _drained, created, null) ?? created;
        }

        // The write pump may have drained it between the check and the registration.
        if (IsDrained)
        {
            SignalDrained();
        }

        return waiter.Task;
    }

    private bool IsDrained => IsClosing || _outbound.Reader.Count <= _options.LowWater;

    private void SignalDrained()
    {
        if (Volatile.Read(ref _drained) is { } waiter && Interlocked.CompareExchange(ref _drained, null, waiter) == waiter)
        {
            waiter.TrySetResult();
        }
    }

    /// <summary>Held a room back and wrote nothing for <c>Gateway:FlowControl:StuckMilliseconds</c>: close with 1013.</summary>
    public void CloseStuck()
    {
        if (_closeStatus is null)
        {
            _metrics.SlowConsumerClosed("stuck");
            LogStuck(_logger, Id, User, _options.FlowControl.StuckMilliseconds);
        }

        RequestClose(SlowConsumerStatus, "slow consumer", discardQueued: true);
    }

    /// <summary>Runs the connection until it closes. Never throws for a client's fault.</summary>
    public async Task RunAsync()
    {
        Enqueue(Events.Welcome(User, _hub.NodeName, _options.HeartbeatSeconds));
        var writer = Task.Run(WritePumpAsync);
        var requests = Task.Run(RequestLoopAsync);
        _ = CloseIfSilentAsync();
        try
        {
            await ReadPumpAsync();
        }
        finally
        {
            _requests.Writer.TryComplete();
            await requests;
            await _hub.LeaveAllAsync(this, _rooms.Keys);
            RequestClose(WebSocketCloseStatus.NormalClosure, "", discardQueued: false);
            await writer;
            _aborted.Cancel();
            _firstFrame.Cancel();
            _socket.Abort();
            _socket.Dispose();
        }
    }

    /// <summary>Queues an event for this client. Never blocks: a full queue closes the connection (1013).</summary>
    public void Enqueue(byte[] frame)
    {
        if (_outbound.Writer.TryWrite(frame))
        {
            return;
        }

        if (_closeStatus is null)
        {
            _metrics.SlowConsumerClosed("queue_full");
            LogSlowConsumer(_logger, Id, User);
        }

        RequestClose(SlowConsumerStatus, "slow consumer", discardQueued: true);
    }

    /// <summary>The server API removed this connection's user from <paramref name="room"/> (the room hub has taken it
    /// out of the room already): it is out, exactly as after its own leave, and told why.</summary>
    public void Kicked(string room)
    {
        if (_rooms.TryRemove(room, out _))
        {
            Enqueue(Events.Left(room, "kicked"));
        }
    }

    /// <summary>Queues a best-effort event (typing) only while this client keeps up: one whose queue is above the
    /// low-water mark misses it, and it never makes a connection a slow consumer.</summary>
    public void EnqueueLossy(byte[] frame)
    {
        if (_outbound.Reader.Count <= _options.LowWater)
        {
            _outbound.Writer.TryWrite(frame);
        }
    }

    /// <summary>Starts closing: the write pump sends what is queued (unless discarded), then the Close frame.
    /// The first reason wins.</summary>
    public void RequestClose(WebSocketCloseStatus status, string reason, bool discardQueued)
    {
        lock (_closeLock)
        {
            if (_closeStatus is not null)
            {
                return;
            }

            _closeStatus = status;
            _closeCode ??= (int)status;
            _closeReason = reason;
            _discardQueued = discardQueued;
        }

        _outbound.Writer.TryComplete();
        SignalDrained();
        // A peer that neither reads nor answers our Close must not hold the socket forever.
        _ = AbortAfterAsync(CloseHandshakeTimeout);
    }

    /// <summary>The first to close decides the code that is counted and logged.</summary>
    private void NoteCloseCode(int code)
    {
        lock (_closeLock)
        {
            _closeCode ??= code;
        }
    }

    private async Task AbortAfterAsync(TimeSpan delay)
    {
        try
        {
            await Task.Delay(delay, _aborted.Token);
            _socket.Abort();
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>
    /// Reads frames until the peer closes. An idle connection (most of them, most of the time) holds no
    /// receive buffer: it waits for the next frame's header with a zero-byte read, and only then rents a
    /// buffer from the pool, which goes back as soon as the frame is handled.
    /// </summary>
    private async Task ReadPumpAsync()
    {
        byte[]? buffer = null;
        var length = 0;
        var skipping = false;
        try
        {
            while (true)
            {
                ValueWebSocketReceiveResult result;
                if (length == 0 && !skipping)
                {
                    result = await _socket.ReceiveAsync(Memory<byte>.Empty, CancellationToken.None);
                    if (result.MessageType != WebSocketMessageType.Close && !result.EndOfMessage)
                    {
                        buffer ??= ArrayPool<byte>.Shared.Rent(InitialReceiveBuffer);
                        result = await _socket.ReceiveAsync(buffer.AsMemory(), CancellationToken.None);
                    }
                }
                else
                {
                    if (buffer is null || length == buffer.Length)
                    {
                        buffer = Grow(buffer, length);
                    }

                    result = await _socket.ReceiveAsync(buffer.AsMemory(length), CancellationToken.None);
                }

                if (result.MessageType == WebSocketMessageType.Close)
                {
                    // The peer closed first (unless we had asked to): its code counts.
                    NoteCloseCode((int)(_socket.CloseStatus ?? WebSocketCloseStatus.Empty));
                    RequestClose(WebSocketCloseStatus.NormalClosure, "", discardQueued: false);
                    return;
                }

                if (_closeStatus is not null || skipping)
                {
                    // Closing: read on only to see the peer's Close frame.
                    skipping = skipping && !result.EndOfMessage;
                    length = 0;
                    continue;
                }

                length += result.Count;
                if (length > _options.MaxMessageBytes)
                {
                    RequestClose(WebSocketCloseStatus.MessageTooBig, "message too large", discardQueued: false);
                    skipping = !result.EndOfMessage;
                    length = 0;
                    continue;
                }

                if (!result.EndOfMessage)
                {
                    continue;
                }

                var frame = buffer is null ? ReadOnlyMemory<byte>.Empty : buffer.AsMemory(0, length);
                length = 0;
                await HandleFrameAsync(result.MessageType, frame);
                if (buffer is not null)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = null;
                }
            }
        }
        catch (Exception)
        {
            // The peer vanished, sent garbage at the WebSocket layer, or the heartbeat timed out.
            NoteCloseCode(AbnormalClosure);
            RequestClose(WebSocketCloseStatus.EndpointUnavailable, "", discardQueued: true);
        }
        finally
        {
            if (buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
    }

    /// <summary>A frame that does not fit: a buffer twice the size (at most one byte over the limit, which is
    /// enough to see that a frame is too large), holding what was read so far.</summary>
    private byte[] Grow(byte[]? buffer, int length)
    {
        var size = buffer is null ? InitialReceiveBuffer : Math.Min(buffer.Length * 2, _options.MaxMessageBytes + 1);
        var larger = ArrayPool<byte>.Shared.Rent(Math.Max(size, length + 1));
        if (buffer is not null)
        {
            buffer.AsSpan(0, length).CopyTo(larger);
            ArrayPool<byte>.Shared.Return(buffer);
        }

        return larger;
    }

    /// <summary>A client that upgrades and then sends nothing within <c>Gateway:Limits:FirstFrameSeconds</c> holds
    /// a socket for nothing (slowloris): close it with 1008.</summary>
    private async Task CloseIfSilentAsync()
    {
        try
        {
            await Task.Delay(_options.Limits.FirstFrameTime, _firstFrame.Token);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        LogSilent(_logger, Id, User, _options.Limits.FirstFrameSeconds);
        RequestClose(WebSocketCloseStatus.PolicyViolation, "no request in time", discardQueued: false);
    }

    private async ValueTask HandleFrameAsync(WebSocketMessageType type, ReadOnlyMemory<byte> frame)
    {
        if (!_firstFrame.IsCancellationRequested)
        {
            _firstFrame.Cancel();
        }

        if (type == WebSocketMessageType.Binary)
        {
            EnqueueError(ErrorCodes.BadRequest, "binary frames are not supported; send text frames");
            return;
        }

        if (!Utf8.IsValid(frame.Span))
        {
            RequestClose(WebSocketCloseStatus.InvalidPayloadData, "invalid UTF-8", discardQueued: false);
            return;
        }

        var request = ClientRequest.Parse(frame);
        _metrics.FrameIn(request.Type);
        // Every send, edit and delete frame takes a token, accepted or not; the refusal is reported only if
        // the post passes every earlier check (the protocol's order).
        if (request.IsPost && !_rateLimiter.TryTake())
        {
            request = request with { RateLimited = true };
        }

        await _requests.Writer.WriteAsync(request);
    }

    /// <summary>
    /// Handles requests in the order they came. Sends are pipelined: the client need not wait for one
    /// acknowledgement before the next send, and the sends queued behind one (same room, all valid) go to
    /// the room in one call, in order. While that call is out, the next frames wait in the bounded request
    /// queue; when it is full, the read pump stops reading, so TCP slows a sender the room holds back.
    /// </summary>
    private async Task RequestLoopAsync()
    {
        var reader = _requests.Reader;
        var batch = new List<ClientRequest>(MaxSendBatch);
        while (await reader.WaitToReadAsync())
        {
            while (reader.TryRead(out var request))
            {
                if (_closeStatus is not null)
                {
                    continue;
                }

                try
                {
                    if (IsPostable(request, request.Room))
                    {
                        batch.Add(request);
                        while (batch.Count < MaxSendBatch && reader.TryPeek(out var next) && IsPostable(next, request.Room))
                        {
                            reader.TryRead(out _);
                            batch.Add(next);
                        }

                        await PostAsync(batch);
                    }
                    else
                    {
                        await HandleAsync(request);
                    }
                }
                catch (Exception ex)
                {
                    LogRequestFailed(_logger, ex, Id, request.Type);
                    EnqueueError(ErrorCodes.Unavailable, "the cluster cannot be reached right now; retry later", request.Id, request.Room);
                }
                finally
                {
                    batch.Clear();
                }
            }
        }
    }

    /// <summary>A send, edit or delete that passes every gateway check, to <paramref name="room"/>. Any other
    /// request is handled alone (and answers its own error).</summary>
    private bool IsPostable(ClientRequest request, string? room)
        => request is { IsPost: true, ErrorCode: null, RateLimited: false }
            && request.Room == room
            && _rooms.ContainsKey(room!)
            && ChatLimits.Utf8Length(request.Text!) <= _options.MaxTextBytes;

    /// <summary>Posts a batch of sends, edits and deletes to one room. A first post is acknowledged by the room's
    /// fan-out (which includes this connection); a resend gets the original back, to this connection only; a
    /// refused one gets its error (the room checks an edit's or a delete's target).</summary>
    private async Task PostAsync(List<ClientRequest> batch)
    {
        _metrics.MessagesPosted(batch.Count);
        var outcomes = await _hub.PostBatchAsync(this, batch[0].Room!, batch);
        for (var i = 0; i < batch.Count; i++)
        {
            var outcome = outcomes[i];
            if (outcome.Error is { } error)
            {
                EnqueueError(error.Code, error.Message, batch[i].Id, batch[i].Room);
            }
            else if (outcome.Duplicate)
            {
                Enqueue(Events.Stored(outcome.Message!));
            }
        }
    }

    private async Task HandleAsync(ClientRequest request)
    {
        if (request.ErrorCode is not null)
        {
            EnqueueError(request.ErrorCode, request.ErrorMessage ?? request.ErrorCode, request.Id, request.Room);
            return;
        }

        var room = request.Room!;
        switch (request.Type)
        {
            case RequestType.Join:
                if (!_access.Allows(room))
                {
                    EnqueueError(ErrorCodes.Forbidden, $"you may not join room \"{room}\"", room: room);
                    return;
                }

                if (!_rooms.ContainsKey(room) && _rooms.Count >= _options.MaxRoomsPerConnection)
                {
                    EnqueueError(ErrorCodes.BadRequest, $"at most {_options.MaxRoomsPerConnection} rooms per connection", room: room);
                    return;
                }

                if (await _hub.JoinAsync(this, room, request.Since) is { } joinError)
                {
                    EnqueueError(joinError.Code, joinError.Message, room: room);
                    return;
                }

                _rooms.TryAdd(room, 0);
                return;

            case RequestType.Leave:
                if (!_rooms.TryRemove(room, out _))
                {
                    EnqueueNotJoined(request);
                    return;
                }

                _typingSent.Remove(room);
                await _hub.LeaveAsync(this, room);
                Enqueue(Events.Left(room));
                return;

            case RequestType.Send:
            case RequestType.Edit:
            case RequestType.Delete:
                RefusePost(request, room);
                return;

            case RequestType.Typing:
                if (!_rooms.ContainsKey(room))
                {
                    EnqueueNotJoined(request);
                    return;
                }

                // At most one per room per second goes on; the client repeats it every 2-3 s while typing.
                var now = Environment.TickCount64;
                if (now - _typingSent.GetValueOrDefault(room, long.MinValue / 2) >= 1000)
                {
                    _typingSent[room] = now;
                    _hub.Typing(this, room);
                }

                return;

            case RequestType.Read:
                if (!_rooms.ContainsKey(room))
                {
                    EnqueueNotJoined(request);
                    return;
                }

                if (await _hub.ReadAsync(this, room, request.Seq) is { } readError)
                {
                    EnqueueError(readError.Code, readError.Message, room: room);
                }

                return;

            case RequestType.History:
                if (!_rooms.ContainsKey(room))
                {
                    EnqueueNotJoined(request);
                    return;
                }

                var history = await _hub.HistoryAsync(room, request.Before, request.After, request.Limit);
                if (history.Error is { } historyError)
                {
                    EnqueueError(historyError.Code, historyError.Message, room: room);
                }
                else
                {
                    Enqueue(Events.History(room, history.Messages));
                }

                return;
        }
    }

    /// <summary>A post that is not postable: answers why (the protocol's order of checks).</summary>
    private void RefusePost(ClientRequest request, string room)
    {
        if (!_rooms.ContainsKey(room))
        {
            EnqueueNotJoined(request);
            return;
        }

        if (ChatLimits.Utf8Length(request.Text!) > _options.MaxTextBytes)
        {
            EnqueueError(ErrorCodes.TooLarge, $"text is over {_options.MaxTextBytes} bytes", request.Id, room);
            return;
        }

        EnqueueError(ErrorCodes.RateLimited, "too many messages; slow down", request.Id, room);
        if (_rateLimiter.RecordRefusal())
        {
            RequestClose(WebSocketCloseStatus.PolicyViolation, "rate limit exceeded repeatedly", discardQueued: false);
        }
    }

    private void EnqueueNotJoined(ClientRequest request)
        => EnqueueError(ErrorCodes.NotJoined, $"join room \"{request.Room}\" first", request.Id, request.Room);

    /// <summary>Queues an error event (and counts it by code).</summary>
    private void EnqueueError(string code, string message, string? id = null, string? room = null)
    {
        _metrics.Error(code);
        Enqueue(Events.Error(code, message, id, room));
    }

    private async Task WritePumpAsync()
    {
        var packed = new PackedFrame(this);
        try
        {
            var reader = _outbound.Reader;
            while (await reader.WaitToReadAsync())
            {
                while (!_discardQueued && reader.TryRead(out var frame))
                {
                    _metrics.EventOut(frame);
                    if (!reader.TryRead(out var next))
                    {
                        await SendFrameAsync(frame);
                        continue;
                    }

                    // Behind: pack what is queued into as few frames as possible, events separated by '\n'.
                    await packed.AddAsync(frame);
                    do
                    {
                        _metrics.EventOut(next);
                        await packed.AddAsync(next);
                    }
                    while (!_discardQueued && reader.TryRead(out next));

                    await packed.FlushAsync();
                }

                if (_discardQueued)
                {
                    break;
                }
            }

            if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                await _socket.CloseOutputAsync(_closeStatus ?? WebSocketCloseStatus.NormalClosure, _closeReason, _aborted.Token);
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or ObjectDisposedException or IOException)
        {
            // The socket died under us; the read pump sees it too.
            _socket.Abort();
        }
        finally
        {
            packed.Dispose();
        }
    }

    private void NotifyIfDrained()
    {
        if (Volatile.Read(ref _drained) is not null && IsDrained)
        {
            SignalDrained();
        }
    }

    private async ValueTask SendFrameAsync(ReadOnlyMemory<byte> frame)
    {
        // Whatever is taken from the queue counts as drained (a room waiting for it can go on) before the
        // socket accepts it.
        NotifyIfDrained();
        await _socket.SendAsync(frame, WebSocketMessageType.Text, endOfMessage: true, _aborted.Token);
        Volatile.Write(ref _framesWritten, _framesWritten + 1);
    }

    /// <summary>Packs events into one frame up to <see cref="MaxPackedFrameBytes"/>.</summary>
    private sealed class PackedFrame(ChatConnection connection) : IDisposable
    {
        private byte[]? _buffer;
        private int _length;

        public async ValueTask AddAsync(byte[] frame)
        {
            if (frame.Length >= MaxPackedFrameBytes)
            {
                await FlushAsync();
                await connection.SendFrameAsync(frame);
                return;
            }

            if (_length + 1 + frame.Length > MaxPackedFrameBytes)
            {
                await FlushAsync();
            }

            _buffer ??= ArrayPool<byte>.Shared.Rent(MaxPackedFrameBytes);
            if (_length > 0)
            {
                _buffer[_length++] = (byte)'\n';
            }

            frame.CopyTo(_buffer, _length);
            _length += frame.Length;
        }

        public async ValueTask FlushAsync()
        {
            if (_length > 0)
            {
                var length = _length;
                _length = 0;
                await connection.SendFrameAsync(_buffer.AsMemory(0, length));
            }
        }

        public void Dispose()
        {
            if (_buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(_buffer);
                _buffer = null;
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Connection {Connection} ({User}) sent nothing within {Seconds} s: closing with 1008")]
    private static partial void LogSilent(ILogger logger, string connection, string user, int seconds);

    [LoggerMessage(Level = LogLevel.Information, Message = "Connection {Connection} ({User}) is a slow consumer: closing with 1013")]
    private static partial void LogSlowConsumer(ILogger logger, string connection, string user);

    [LoggerMessage(Level = LogLevel.Information, Message = "Connection {Connection} ({User}) held its rooms back and wrote nothing for {Milliseconds} ms: closing with 1013")]
    private static partial void LogStuck(ILogger logger, string connection, string user, int milliseconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Connection {Connection}: {Type} failed")]
    private static partial void LogRequestFailed(ILogger logger, Exception exception, string connection, RequestType type);
}
