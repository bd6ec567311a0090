using System.Buffers;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;

namespace OrleansChat.Client;

/// <summary>
/// A client of the OrleansChat WebSocket protocol v1. It keeps one connection to a gateway; when that connection is
/// lost (or closed with 1001/1013) it reconnects, to the next gateway of <see cref="ChatClientOptions.Gateways"/>,
/// rejoins every room with <c>since</c> = the last seq it delivered, and resends every unacknowledged send under
/// its id. Each stored event of a joined room is delivered exactly once, in seq order. A close with 1008 (abuse,
/// or the server API disconnected the user) ends the client: the last event is a <see cref="Disconnected"/>.
/// </summary>
/// <remarks>Events are delivered from the one receiving loop: callbacks run on it, so keep them short (an exception
/// they throw is ignored). <see cref="Events"/> is meant for one reader at a time.</remarks>
public sealed class OrleansChatClient : IAsyncDisposable
{
    private const int CatchUpPage = 200;

    private readonly ChatClientOptions _options;
    private readonly Lock _lock = new();
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly CancellationTokenSource _stopping = new();
    private readonly Channel<ChatEvent> _events = Channel.CreateUnbounded<ChatEvent>();

    // Everything below is guarded by _lock.
    private readonly Dictionary<string, RoomState> _rooms = [];
    private readonly Dictionary<string, PendingPost> _posts = [];
    private readonly List<PendingRequest> _requests = [];
    private TaskCompletionSource _connected = NewSignal();
    private TaskCompletionSource<JsonElement> _welcome = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private ClientWebSocket? _socket;
    private bool _isConnected;
    private ChatException? _ended;

    private Task? _running;
    private int _gatewayIndex;

    /// <summary>A client with <paramref name="options"/>; nothing happens until <see cref="ConnectAsync"/>.</summary>
    public OrleansChatClient(ChatClientOptions options)
    {
        options.Validate();
        _options = options;
    }

    /// <summary>Every delivered event (the typed callbacks below run first).</summary>
    public event Action<ChatEvent>? EventReceived;

    /// <summary>A stored message, edit or delete of a joined room, once each, in seq order per room.</summary>
    public event Action<ChatMessage>? MessageReceived;

    /// <summary>A user came into or left a joined room.</summary>
    public event Action<Presence>? PresenceChanged;

    /// <summary>Another user types in a joined room.</summary>
    public event Action<Typing>? TypingReceived;

    /// <summary>This user read a room on another connection.</summary>
    public event Action<Read>? ReadReceived;

    /// <summary>The server removed this client from a room.</summary>
    public event Action<Left>? LeftRoom;

    /// <summary>The user name the gateway knows this client by (the <c>sub</c> of the token in jwt mode); null before
    /// the first connection.</summary>
    public string? User { get; private set; }

    /// <summary>The node name of the gateway of the current (or last) connection.</summary>
    public string? Gateway { get; private set; }

    /// <summary>How many times the client has reconnected.</summary>
    public int Reconnects { get; private set; }

    /// <summary>Connects to the first gateway that answers and takes its <c>welcome</c>; after that the client
    /// reconnects by itself. Fails (HTTP 400/401/403 refusals included) when no gateway can be reached.</summary>
    public async Task ConnectAsync(CancellationToken cancellationToken = default)
    {
        if (_running is not null)
        {
            throw new InvalidOperationException("already connected");
        }

        Exception? last = null;
        for (var attempt = 0; attempt < _options.Gateways.Count; attempt++)
        {
            try
            {
                var reading = await OpenAsync(cancellationToken);
                lock (_lock)
                {
                    _isConnected = true;
                    _connected.TrySetResult();
                }

                Deliver(new Connected(User!, Gateway!, Reconnect: false));
                _running = Task.Run(() => RunAsync(reading));
                return;
            }
            catch (Exception ex) when (ex is WebSocketException or TimeoutException or IOException)
            {
                last = ex;
                _gatewayIndex++;
            }
        }

        throw last!;
    }

    /// <summary>The delivered events, in order, from the first connection on (see
    /// <see cref="ChatClientOptions.EnableEventStream"/>). Ends after the final <see cref="Disconnected"/>.</summary>
    public IAsyncEnumerable<ChatEvent> Events(CancellationToken cancellationToken = default)
        => _events.Reader.ReadAllAsync(cancellationToken);

    /// <summary>Joins <paramref name="room"/>. Its stored events after <see cref="JoinedRoom.Seq"/> then come as
    /// events; after a reconnect the client rejoins it with <c>since</c> by itself.</summary>
    public async Task<JoinedRoom> JoinAsync(string room, CancellationToken cancellationToken = default)
        => (JoinedRoom)await RequestAsync(RequestKind.Join, room, Frame(w =>
        {
            w.WriteString("type", "join");
            w.WriteString("room", room);
        }), cancellationToken);

    /// <summary>Leaves <paramref name="room"/>: no more events of it, and no rejoin after a reconnect.</summary>
    public async Task LeaveAsync(string room, CancellationToken cancellationToken = default)
    {
        await RequestAsync(RequestKind.Leave, room, Frame(w =>
        {
            w.WriteString("type", "leave");
            w.WriteString("room", room);
        }), cancellationToken);
    }

    /// <summary>Stored events of a joined room, oldest first: with <paramref name="before"/> the newest
    /// <paramref name="limit"/> below it, with <paramref name="after"/> the oldest above it, else the newest.</summary>
    public async Task<IReadOnlyList<ChatMessage>> HistoryAsync(string room, long? before = null, long? after = null, int limit = 50, CancellationToken cancellationToken = default)
        => (IReadOnlyList<ChatMessage>)await RequestAsync(RequestKind.History, room, Frame(w =>
        {
            w.WriteString("type", "history");
            w.WriteString("room", room);
            if (before is { } b)
            {
                w.WriteNumber("before", b);
            }

            if (after is { } a)
            {
                w.WriteNumber("after", a);
            }

            w.WriteNumber("limit", limit);
        }), cancellationToken);

    /// <summary>Posts <paramref name="text"/> to a joined room and returns the stored message (its acknowledgement).
    /// Until acknowledged it is resent under the same <paramref name="id"/> after a reconnect or an
    /// <c>unavailable</c> answer, which never stores it twice. Other refusals throw <see cref="ChatException"/>;
    /// no acknowledgement within <see cref="ChatClientOptions.RequestTimeout"/> throws <see cref="TimeoutException"/>
    /// (the message may be stored: call again with the same id to find out).</summary>
    public Task<ChatMessage> SendAsync(string room, string text, string? id = null, CancellationToken cancellationToken = default)
        => PostAsync("send", room, seq: null, text, id, cancellationToken);

    /// <summary>Replaces the text of this user's message <paramref name="seq"/>; returns the stored <c>edit</c>.
    /// Resent like <see cref="SendAsync"/>.</summary>
    public Task<ChatMessage> EditAsync(string room, long seq, string text, string? id = null, CancellationToken cancellationToken = default)
        => PostAsync("edit", room, seq, text, id, cancellationToken);

    /// <summary>Deletes this user's message <paramref name="seq"/>; returns the stored <c>delete</c>. Resent like
    /// <see cref="SendAsync"/>.</summary>
    public Task<ChatMessage> DeleteAsync(string room, long seq, string? id = null, CancellationToken cancellationToken = default)
        => PostAsync("delete", room, seq, text: null, id, cancellationToken);

    /// <summary>Tells the room's other members this user types (repeat every 2–3 s while typing). Best effort:
    /// nothing is sent while disconnected.</summary>
    public Task TypingAsync(string room, CancellationToken cancellationToken = default)
        => WriteIfConnectedAsync(Frame(w =>
        {
            w.WriteString("type", "typing");
            w.WriteString("room", room);
        }), cancellationToken);

    /// <summary>Stores that this user read <paramref name="room"/> up to <paramref name="seq"/>; the user's other
    /// connections get a <see cref="Read"/>. Nothing is sent while disconnected (mark again later).</summary>
    public Task MarkReadAsync(string room, long seq, CancellationToken cancellationToken = default)
        => WriteIfConnectedAsync(Frame(w =>
        {
            w.WriteString("type", "read");
            w.WriteString("room", room);
            w.WriteNumber("seq", seq);
        }), cancellationToken);

    /// <summary>Closes the connection (1000) and ends the event stream. Unacknowledged sends fail.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_stopping.IsCancellationRequested)
        {
            return;
        }

        _stopping.Cancel();
        ClientWebSocket? socket;
        lock (_lock)
        {
            socket = _socket;
        }

        if (socket is { State: WebSocketState.Open })
        {
            try
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "bye", timeout.Token);
            }
            catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or ObjectDisposedException)
            {
                // Already gone.
            }
        }

        if (_running is not null)
        {
            await _running.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        End(new ChatException("disposed", "the client was disposed"), new Disconnected(WebSocketCloseStatus.NormalClosure, "disposed", WillReconnect: false));
        socket?.Abort();
        socket?.Dispose();
    }

    /// <summary>Keeps the client connected: waits for the connection to end, then reconnects with backoff, rejoins
    /// every room from its last delivered seq and resends what is unacknowledged.</summary>
    private async Task RunAsync(Task<(WebSocketCloseStatus? Status, string? Reason)> reading)
    {
        var token = _stopping.Token;
        while (true)
        {
            var (status, reason) = await reading;
            if (token.IsCancellationRequested)
            {
                return;
            }

            if (status == WebSocketCloseStatus.PolicyViolation)
            {
                End(new ChatException("disconnected", reason ?? "closed by the server"), new Disconnected(status, reason, WillReconnect: false));
                return;
            }

            Lost();
            Deliver(new Disconnected(status, reason, WillReconnect: true));
            _gatewayIndex++;

            var delay = _options.ReconnectDelay;
            while (true)
            {
                try
                {
                    await Task.Delay(Jitter(delay), token);
                    reading = await OpenAsync(token);
                    await RejoinAsync(token);
                    break;
                }
                catch (OperationCanceledException) when (token.IsCancellationRequested)
                {
                    return;
                }
                catch (Exception ex) when (ex is WebSocketException or TimeoutException or IOException or OperationCanceledException or ChatConnectionLostException)
                {
                    // A connection that failed its rejoin must not keep delivering beside the next one.
                    lock (_lock)
                    {
                        _socket?.Abort();
                    }

                    Lost();
                    _gatewayIndex++;
                    delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, _options.MaxReconnectDelay.Ticks));
                }
            }

            Reconnects++;
            Deliver(new Connected(User!, Gateway!, Reconnect: true));
        }
    }

    /// <summary>Opens a socket to the next gateway, starts its receiving loop and waits for the welcome.</summary>
    private async Task<Task<(WebSocketCloseStatus?, string?)>> OpenAsync(CancellationToken cancellationToken)
    {
        var gateway = _options.Gateways[_gatewayIndex % _options.Gateways.Count];
        var query = _options.TokenProvider is { } tokens
            ? $"access_token={Uri.EscapeDataString(await tokens(cancellationToken))}"
            : $"user={Uri.EscapeDataString(_options.User!)}";
        var socket = new ClientWebSocket();
        socket.Options.KeepAliveInterval = _options.KeepAliveInterval;
        socket.Options.KeepAliveTimeout = _options.KeepAliveInterval;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.ConnectTimeout);
        TaskCompletionSource<JsonElement> welcome;
        try
        {
            await socket.ConnectAsync(new UriBuilder(gateway) { Query = query }.Uri, timeout.Token);
            lock (_lock)
            {
                _socket = socket;
                welcome = _welcome = new(TaskCreationOptions.RunContinuationsAsynchronously);
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            socket.Dispose();
            throw new TimeoutException($"no connection to {gateway} within {_options.ConnectTimeout}");
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        var reading = Task.Run(() => ReceiveAsync(socket));
        try
        {
            var hello = await welcome.Task.WaitAsync(_options.ConnectTimeout, cancellationToken);
            User = hello.GetProperty("user").GetString();
            Gateway = hello.TryGetProperty("gateway", out var name) ? name.GetString() : gateway.Authority;
            return reading;
        }
        catch
        {
            socket.Abort();
            throw;
        }
    }

    /// <summary>Rejoins every room with <c>since</c> (the gap in between comes as events), then resends every
    /// unacknowledged post, then lets requests through again.</summary>
    private async Task RejoinAsync(CancellationToken cancellationToken)
    {
        List<(string Room, Task<object> Joined)> joins = [];
        lock (_lock)
        {
            foreach (var (room, state) in _rooms)
            {
                joins.Add((room, Enqueue(RequestKind.Rejoin, room)));
            }
        }

        foreach (var (room, _) in joins)
        {
            long since;
            lock (_lock)
            {
                since = _rooms[room].Cursor;
            }

            await WriteAsync(Frame(w =>
            {
                w.WriteString("type", "join");
                w.WriteString("room", room);
                w.WriteNumber("since", since);
            }), cancellationToken);
        }

        foreach (var (room, joined) in joins)
        {
            try
            {
                await joined.WaitAsync(_options.RequestTimeout, cancellationToken);
            }
            catch (ChatException ex) when (ex.Code == "unavailable")
            {
                // The cluster is not there yet: try the whole reconnect again after the backoff.
                throw new ChatConnectionLostException();
            }
            catch (ChatException ex)
            {
                // Banned or no longer allowed: the room is gone for this client.
                lock (_lock)
                {
                    _rooms.Remove(room);
                }

                Deliver(new Left(room, ex.Code));
            }
        }

        List<string> frames;
        lock (_lock)
        {
            frames = [.. _posts.Values.Select(p => p.Frame)];
            _isConnected = true;
            _connected.TrySetResult();
        }

        foreach (var frame in frames)
        {
            await WriteAsync(frame, cancellationToken);
        }
    }

    /// <summary>The connection is gone: requests in flight fail over to the next connection.</summary>
    private void Lost()
    {
        List<PendingRequest> failed;
        lock (_lock)
        {
            if (_isConnected)
            {
                _isConnected = false;
                _connected = NewSignal();
            }

            failed = [.. _requests];
            _requests.Clear();
            foreach (var state in _rooms.Values)
            {
                // The rejoin with since recovers whatever the catch-up had not fetched yet.
                state.CatchUpTarget = null;
                state.Held.Clear();
            }
        }

        foreach (var request in failed)
        {
            request.Reply.TrySetException(new ChatConnectionLostException());
        }
    }

    private async Task<object> RequestAsync(RequestKind kind, string room, string frame, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stopping.Token);
        timeout.CancelAfter(_options.RequestTimeout);
        try
        {
            while (true)
            {
                Task<object> reply;
                Task connected;
                lock (_lock)
                {
                    ThrowIfEnded();
                    connected = _connected.Task;
                    reply = connected.IsCompleted ? Enqueue(kind, room) : Task.FromException<object>(new ChatConnectionLostException());
                }

                if (!connected.IsCompleted)
                {
                    await connected.WaitAsync(timeout.Token);
                    continue;
                }

                try
                {
                    await WriteAsync(frame, timeout.Token);
                    return await reply.WaitAsync(timeout.Token);
                }
                catch (Exception ex) when (ex is ChatConnectionLostException or WebSocketException or IOException)
                {
                    // Retried on the next connection.
                }
                catch (ChatException ex) when (ex.Code == "unavailable")
                {
                    await Task.Delay(_options.UnavailableRetryDelay, timeout.Token);
                }
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            lock (_lock)
            {
                ThrowIfEnded();
            }

            throw new TimeoutException($"no answer to {kind} {room} within {_options.RequestTimeout}");
        }
    }

    /// <summary>A send, edit or delete: kept until its acknowledgement, resent under its id until then.</summary>
    private async Task<ChatMessage> PostAsync(string type, string room, long? seq, string? text, string? id, CancellationToken cancellationToken)
    {
        id ??= NewId();
        var post = new PendingPost(room, Frame(w =>
        {
            w.WriteString("type", type);
            w.WriteString("room", room);
            if (seq is { } target)
            {
                w.WriteNumber("seq", target);
            }

            if (text is not null)
            {
                w.WriteString("text", text);
            }

            w.WriteString("id", id);
        }));
        bool connected;
        lock (_lock)
        {
            ThrowIfEnded();
            if (!_posts.TryAdd(id, post))
            {
                throw new InvalidOperationException($"a post with id {id} is already in flight");
            }

            // Under the lock RejoinAsync takes its snapshot of _posts: a post is written either there or here.
            connected = _isConnected;
        }

        try
        {
            if (connected)
            {
                await WriteIfConnectedAsync(post.Frame, cancellationToken);
            }

            return await post.Reply.Task.WaitAsync(_options.RequestTimeout, cancellationToken);
        }
        finally
        {
            lock (_lock)
            {
                if (_posts.TryGetValue(id, out var current) && current == post)
                {
                    _posts.Remove(id);
                }
            }
        }
    }

    private Task<object> Enqueue(RequestKind kind, string room)
    {
        var request = new PendingRequest(kind, room);
        _requests.Add(request);
        return request.Reply.Task;
    }

    /// <summary>The oldest request in flight for <paramref name="room"/> that <paramref name="answers"/> accepts.</summary>
    private PendingRequest? Dequeue(string room, Func<RequestKind, bool> answers)
    {
        var index = _requests.FindIndex(r => r.Room == room && answers(r.Kind));
        if (index < 0)
        {
            return null;
        }

        var request = _requests[index];
        _requests.RemoveAt(index);
        return request;
    }

    private async Task WriteIfConnectedAsync(string frame, CancellationToken cancellationToken)
    {
        try
        {
            await WriteAsync(frame, cancellationToken);
        }
        catch (Exception ex) when (ex is WebSocketException or IOException or ObjectDisposedException or ChatConnectionLostException)
        {
            // The connection is going; posts are resent after the reconnect.
        }
    }

    /// <summary>The one way frames go out: one at a time (a WebSocket allows one send in flight).</summary>
    private async Task WriteAsync(string frame, CancellationToken cancellationToken)
    {
        ClientWebSocket? socket;
        lock (_lock)
        {
            socket = _socket;
        }

        if (socket is not { State: WebSocketState.Open })
        {
            throw new ChatConnectionLostException();
        }

        var bytes = Encoding.UTF8.GetBytes(frame);
        await _writeLock.WaitAsync(cancellationToken);
        try
        {
            await socket.SendAsync(bytes, WebSocketMessageType.Text, endOfMessage: true, cancellationToken);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    /// <summary>The receiving loop of one connection: splits every frame on <c>\n</c> and handles each event.</summary>
    private async Task<(WebSocketCloseStatus?, string?)> ReceiveAsync(ClientWebSocket socket)
    {
        var buffer = new ArrayBufferWriter<byte>(16 * 1024);
        try
        {
            while (true)
            {
                var result = await socket.ReceiveAsync(buffer.GetMemory(8 * 1024), CancellationToken.None);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    return (socket.CloseStatus, socket.CloseStatusDescription);
                }

                buffer.Advance(result.Count);
                if (!result.EndOfMessage)
                {
                    continue;
                }

                var frame = buffer.WrittenMemory;
                while (!frame.IsEmpty)
                {
                    var end = frame.Span.IndexOf((byte)'\n');
                    var part = end < 0 ? frame : frame[..end];
                    frame = end < 0 ? ReadOnlyMemory<byte>.Empty : frame[(end + 1)..];
                    using var document = JsonDocument.Parse(part);
                    try
                    {
                        await HandleAsync(document.RootElement);
                    }
                    catch (Exception ex) when (ex is KeyNotFoundException or InvalidOperationException or FormatException)
                    {
                        // An event this client does not understand: ignored, like an unknown type.
                    }
                }

                buffer.ResetWrittenCount();
            }
        }
        catch (Exception ex) when (ex is WebSocketException or JsonException or OperationCanceledException or ObjectDisposedException or IOException)
        {
            socket.Abort();
            return (socket.CloseStatus, ex.Message);
        }
    }

    private async Task HandleAsync(JsonElement e)
    {
        switch (e.GetProperty("type").GetString())
        {
            case "welcome":
                _welcome.TrySetResult(e.Clone());
                break;
            case "message" or "edit" or "delete":
                Stored(ChatMessage.Parse(e), live: true);
                break;
            case "joined":
                await JoinedAsync(e);
                break;
            case "history":
                await HistoryAsync(e);
                break;
            case "left":
                LeftReply(e.GetProperty("room").GetString()!, e.TryGetProperty("reason", out var reason) ? reason.GetString() : null);
                break;
            case "presence":
                Deliver(new Presence(e.GetProperty("room").GetString()!, e.GetProperty("user").GetString()!, e.GetProperty("event").GetString() == "join"));
                break;
            case "typing":
                Deliver(new Typing(e.GetProperty("room").GetString()!, e.GetProperty("user").GetString()!));
                break;
            case "read":
                Deliver(new Read(e.GetProperty("room").GetString()!, e.GetProperty("seq").GetInt64()));
                break;
            case "error":
                Error(e);
                break;
        }
    }

    /// <summary>A stored event: the acknowledgement of an own post if it answers one, and delivered unless this
    /// client delivered its seq already (a resend's answer, a rejoin's overlap). While a room catches up with
    /// <c>history after</c>, live events wait until the gap is filled.</summary>
    private void Stored(ChatMessage message, bool live)
    {
        PendingPost? acknowledged = null;
        var deliver = false;
        lock (_lock)
        {
            if (message.User == User && _posts.TryGetValue(message.Id, out var post) && post.Room == message.Room)
            {
                _posts.Remove(message.Id);
                acknowledged = post;
            }

            if (_rooms.TryGetValue(message.Room, out var state))
            {
                if (live && state.CatchUpTarget is not null)
                {
                    state.Held.Add(message);
                }
                else if (message.Seq > state.Cursor)
                {
                    state.Cursor = message.Seq;
                    deliver = true;
                }
            }
        }

        // Delivered before the sender's await resumes (continuations run asynchronously): a reply to an own message
        // never overtakes it.
        if (deliver)
        {
            Deliver(message);
        }

        acknowledged?.Reply.TrySetResult(message);
    }

    private async Task JoinedAsync(JsonElement e)
    {
        var room = e.GetProperty("room").GetString()!;
        var seq = e.GetProperty("seq").GetInt64();
        var history = e.GetProperty("history").EnumerateArray().Select(ChatMessage.Parse).ToArray();
        var joined = new JoinedRoom(
            room,
            seq,
            [.. e.GetProperty("members").EnumerateArray().Select(m => m.GetString()!)],
            history,
            e.TryGetProperty("read", out var read) ? read.GetInt64() : 0);
        var more = e.TryGetProperty("more", out var m) && m.GetBoolean();

        PendingRequest? request;
        lock (_lock)
        {
            request = Dequeue(room, k => k is RequestKind.Join or RequestKind.Rejoin);
            if (request?.Kind == RequestKind.Join && !_rooms.ContainsKey(room))
            {
                _rooms[room] = new RoomState { Cursor = seq };
            }
        }

        if (request?.Kind == RequestKind.Rejoin)
        {
            foreach (var message in history)
            {
                Stored(message, live: false);
            }

            long? cursor = null;
            lock (_lock)
            {
                if (more && _rooms.TryGetValue(room, out var state) && state.Cursor < seq)
                {
                    state.CatchUpTarget = seq;
                    cursor = state.Cursor;
                }
            }

            if (cursor is { } after)
            {
                await CatchUpAsync(room, after);
            }
        }
        else
        {
            // An own post may be in a first join's history (the client joined again with it in flight).
            foreach (var message in history)
            {
                AcknowledgeOnly(message);
            }
        }

        request?.Reply.TrySetResult(joined);
    }

    private void AcknowledgeOnly(ChatMessage message)
    {
        PendingPost? post = null;
        lock (_lock)
        {
            if (message.User == User && _posts.TryGetValue(message.Id, out var found) && found.Room == message.Room)
            {
                _posts.Remove(message.Id);
                post = found;
            }
        }

        post?.Reply.TrySetResult(message);
    }

    private async Task CatchUpAsync(string room, long after)
    {
        lock (_lock)
        {
            Enqueue(RequestKind.CatchUp, room);
        }

        await WriteIfConnectedAsync(Frame(w =>
        {
            w.WriteString("type", "history");
            w.WriteString("room", room);
            w.WriteNumber("after", after);
            w.WriteNumber("limit", CatchUpPage);
        }), CancellationToken.None);
    }

    private async Task HistoryAsync(JsonElement e)
    {
        var room = e.GetProperty("room").GetString()!;
        var messages = e.GetProperty("messages").EnumerateArray().Select(ChatMessage.Parse).ToArray();
        PendingRequest? request;
        lock (_lock)
        {
            request = Dequeue(room, k => k is RequestKind.History or RequestKind.CatchUp);
        }

        if (request?.Kind != RequestKind.CatchUp)
        {
            request?.Reply.TrySetResult(messages);
            return;
        }

        foreach (var message in messages)
        {
            Stored(message, live: false);
        }

        long? next = null;
        List<ChatMessage> held = [];
        lock (_lock)
        {
            if (_rooms.TryGetValue(room, out var state) && state.CatchUpTarget is { } target)
            {
                if (messages.Length == CatchUpPage && state.Cursor < target)
                {
                    next = state.Cursor;
                }
                else
                {
                    state.CatchUpTarget = null;
                    held = [.. state.Held.OrderBy(h => h.Seq)];
                    state.Held.Clear();
                }
            }
        }

        foreach (var message in held)
        {
            Stored(message, live: false);
        }

        if (next is { } after)
        {
            await CatchUpAsync(room, after);
        }

        request.Reply.TrySetResult(messages);
    }

    private void LeftReply(string room, string? reason)
    {
        PendingRequest? request;
        lock (_lock)
        {
            request = reason is null ? Dequeue(room, k => k is RequestKind.Leave) : null;
            _rooms.Remove(room);
        }

        if (request is null)
        {
            Deliver(new Left(room, reason));
        }
        else
        {
            request.Reply.TrySetResult(room);
        }
    }

    private void Error(JsonElement e)
    {
        var code = e.GetProperty("code").GetString()!;
        var text = e.TryGetProperty("message", out var m) ? m.GetString() ?? "" : "";
        var id = e.TryGetProperty("id", out var i) ? i.GetString() : null;
        var room = e.TryGetProperty("room", out var r) ? r.GetString() : null;
        PendingPost? post = null;
        PendingRequest? request = null;
        lock (_lock)
        {
            if (id is not null && _posts.TryGetValue(id, out post))
            {
                if (code != "unavailable")
                {
                    _posts.Remove(id);
                }
            }
            else if (room is not null)
            {
                request = Dequeue(room, k => k is not RequestKind.CatchUp);
            }
        }

        if (post is not null && code == "unavailable")
        {
            // Maybe stored, maybe not: the same id again is always safe.
            _ = ResendLaterAsync(id!, post);
        }
        else
        {
            var error = new ChatException(code, text, room, id);
            post?.Reply.TrySetException(error);
            request?.Reply.TrySetException(error);
        }
    }

    private async Task ResendLaterAsync(string id, PendingPost post)
    {
        try
        {
            await Task.Delay(_options.UnavailableRetryDelay, _stopping.Token);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        lock (_lock)
        {
            if (!_isConnected || !_posts.TryGetValue(id, out var current) || current != post)
            {
                return;
            }
        }

        await WriteIfConnectedAsync(post.Frame, CancellationToken.None);
    }

    /// <summary>The client is finished: every waiting call fails with <paramref name="error"/>, the stream ends.</summary>
    private void End(ChatException error, Disconnected last)
    {
        List<PendingPost> posts;
        List<PendingRequest> requests;
        lock (_lock)
        {
            if (_ended is not null)
            {
                return;
            }

            _ended = error;
            _isConnected = false;
            posts = [.. _posts.Values];
            _posts.Clear();
            requests = [.. _requests];
            _requests.Clear();
            _connected.TrySetException(error);
        }

        foreach (var post in posts)
        {
            post.Reply.TrySetException(error);
        }

        foreach (var request in requests)
        {
            request.Reply.TrySetException(error);
        }

        Deliver(last);
        _events.Writer.TryComplete();
    }

    private void ThrowIfEnded()
    {
        if (_ended is not null)
        {
            throw new ChatException(_ended.Code, _ended.Message);
        }
    }

    private void Deliver(ChatEvent e)
    {
        try
        {
            switch (e)
            {
                case ChatMessage message:
                    MessageReceived?.Invoke(message);
                    break;
                case Presence presence:
                    PresenceChanged?.Invoke(presence);
                    break;
                case Typing typing:
                    TypingReceived?.Invoke(typing);
                    break;
                case Read read:
                    ReadReceived?.Invoke(read);
                    break;
                case Left left:
                    LeftRoom?.Invoke(left);
                    break;
            }

            EventReceived?.Invoke(e);
        }
        catch (Exception)
        {
            // A failing callback must not stop the delivery of the events after it.
        }

        if (_options.EnableEventStream)
        {
            _events.Writer.TryWrite(e);
        }
    }

    private static string Frame(Action<Utf8JsonWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            write(writer);
            writer.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private TimeSpan Jitter(TimeSpan delay) => delay * (0.5 + Random.Shared.NextDouble() / 2);

    private static string NewId() => Guid.NewGuid().ToString("N");

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private enum RequestKind
    {
        Join,
        Rejoin,
        Leave,
        History,
        CatchUp,
    }

    private sealed class RoomState
    {
        /// <summary>The last seq delivered (or covered by the join's answer).</summary>
        public long Cursor { get; set; }

        /// <summary>Set while a rejoin cut with <c>more</c> is filled with <c>history after</c>, up to this seq.</summary>
        public long? CatchUpTarget { get; set; }

        public List<ChatMessage> Held { get; } = [];
    }

    private sealed class PendingRequest(RequestKind kind, string room)
    {
        public RequestKind Kind { get; } = kind;

        public string Room { get; } = room;

        public TaskCompletionSource<object> Reply { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private sealed class PendingPost(string room, string frame)
    {
        public string Room { get; } = room;

        public string Frame { get; } = frame;

        public TaskCompletionSource<ChatMessage> Reply { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private sealed class ChatConnectionLostException() : Exception("the connection to the gateway was lost");
}
