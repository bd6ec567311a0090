using System.Net.WebSockets;
using System.Text;
using System.Text.Json;

namespace OrleansChat.Cluster.Tests;

/// <summary>A message this client posted and got its own copy of (the protocol's acknowledgement).</summary>
public sealed record Ack(string Id, string Room, long Seq, DateTime AckedAt, DateTime LastSentAt);

/// <summary>
/// A chat user that behaves as the protocol asks of a client under failure: it posts continuously to its rooms,
/// each message with its own id; on <c>unavailable</c> (or <c>rate_limited</c>) it resends with the same id; when the
/// connection drops it reconnects (through nginx), rejoins every room with <c>since</c> = the last seq it got, and
/// resends whatever is unacknowledged. It records what it sent, what was acknowledged and, per room, every seq
/// delivered to it, and flags a seq delivered twice or out of order.
/// </summary>
public sealed class ChaosClient
{
    private const int Window = 10;
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan JoinTimeout = TimeSpan.FromSeconds(20);
    private static readonly TimeSpan AnswerTimeout = TimeSpan.FromSeconds(20);

    private readonly Lock _lock = new();
    private readonly Uri _reconnectUri;
    private readonly string[] _rooms;
    private readonly TimeSpan _interval;
    private readonly Dictionary<string, long> _last = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Dictionary<long, string>> _delivered = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Pending> _pending = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Ack> _acked = new(StringComparer.Ordinal);
    // A resend of a stored id is answered with the original message again, to us only: that many extra copies
    // of our own message are answers, not duplicate deliveries.
    private readonly Dictionary<string, int> _resendAnswers = new(StringComparer.Ordinal);
    private readonly List<string> _problems = [];
    private readonly List<int> _closeCodes = [];
    private Uri _uri;
    private int _nextId;
    private int _nextRoom;
    private volatile bool _sending = true;

    public ChaosClient(string user, Uri uri, Uri reconnectUri, string[] rooms, TimeSpan interval)
    {
        User = user;
        _uri = uri;
        _reconnectUri = reconnectUri;
        _rooms = rooms;
        _interval = interval;
        foreach (var room in rooms)
        {
            _last[room] = 0;
            _delivered[room] = [];
        }
    }

    public string User { get; }

    /// <summary>Distinct message ids posted.</summary>
    public int Sent { get; private set; }

    /// <summary>Send frames, resends included.</summary>
    public int Sends { get; private set; }

    public int Delivered { get; private set; }

    public int Duplicates { get; private set; }

    public int OutOfOrder { get; private set; }

    public int Unavailable { get; private set; }

    public int RateLimited { get; private set; }

    /// <summary>Connections opened after the first.</summary>
    public int Reconnects { get; private set; }

    /// <summary>True once every room was joined on the first connection.</summary>
    public bool Started { get; private set; }

    public int PendingCount
    {
        get
        {
            lock (_lock)
            {
                return _pending.Count;
            }
        }
    }

    /// <summary>Close codes of the Close frames the server sent (a draining gateway: 1001).</summary>
    public IReadOnlyList<int> CloseCodes
    {
        get
        {
            lock (_lock)
            {
                return [.. _closeCodes];
            }
        }
    }

    public IReadOnlyList<Ack> Acks
    {
        get
        {
            lock (_lock)
            {
                return [.. _acked.Values];
            }
        }
    }

    public IReadOnlyList<string> Problems
    {
        get
        {
            lock (_lock)
            {
                return [.. _problems];
            }
        }
    }

    public long LastSeq(string room)
    {
        lock (_lock)
        {
            return _last[room];
        }
    }

    /// <summary>seq → message id, as delivered to this client in the room.</summary>
    public IReadOnlyDictionary<long, string> DeliveredIn(string room)
    {
        lock (_lock)
        {
            return new Dictionary<long, string>(_delivered[room]);
        }
    }

    /// <summary>No new messages from now on; unacknowledged ones are still resent until acknowledged.</summary>
    public void StopSending() => _sending = false;

    /// <summary>Connects, joins and posts until <paramref name="end"/>; reconnects whenever the connection is lost.</summary>
    public async Task RunAsync(CancellationToken end)
    {
        var first = true;
        while (!end.IsCancellationRequested)
        {
            using var socket = new ClientWebSocket();
            try
            {
                using var connect = CancellationTokenSource.CreateLinkedTokenSource(end);
                connect.CancelAfter(ConnectTimeout);
                await socket.ConnectAsync(new Uri($"{_uri}?user={User}"), connect.Token);
            }
            catch (Exception) when (!end.IsCancellationRequested)
            {
                // Nothing listens there (a killed gateway, a cluster restarting): try again through nginx.
                _uri = _reconnectUri;
                await Delay(TimeSpan.FromMilliseconds(300), end);
                continue;
            }
            catch (Exception)
            {
                return;
            }

            if (!first)
            {
                Reconnects++;
            }

            first = false;
            await RunSessionAsync(socket, end);
            // The connection is gone (or we are done): later connections go through nginx, to any gateway.
            _uri = _reconnectUri;
            socket.Abort();
        }
    }

    private async Task RunSessionAsync(ClientWebSocket socket, CancellationToken end)
    {
        var session = new Session();
        var receiving = Task.Run(() => ReceiveLoopAsync(socket, session));
        var connectedAt = DateTime.UtcNow;
        var nextSend = DateTime.UtcNow;
        lock (_lock)
        {
            // Whatever was in flight on the previous connection may never be answered: resend it once joined.
            foreach (var pending in _pending.Values)
            {
                pending.DueAt = DateTime.MinValue;
            }
        }

        try
        {
            while (!end.IsCancellationRequested && !receiving.IsCompleted)
            {
                var now = DateTime.UtcNow;
                var frames = new List<string>();
                lock (_lock)
                {
                    if (session.Joined.Count < _rooms.Length && now - connectedAt > JoinTimeout)
                    {
                        _problems.Add($"{User}: rooms not joined {JoinTimeout.TotalSeconds:0} s after connecting; reconnecting");
                        break;
                    }

                    foreach (var room in _rooms)
                    {
                        // One join per room per connection (a second one would replay history we already have),
                        // unless the first was refused.
                        if (!session.Joined.Contains(room) && session.JoinDue.GetValueOrDefault(room) <= now)
                        {
                            session.JoinDue[room] = DateTime.MaxValue;
                            frames.Add(JsonSerializer.Serialize(new { type = "join", room, since = _last[room] }));
                        }
                    }

                    foreach (var pending in _pending.Values)
                    {
                        if (pending.DueAt <= now && session.Joined.Contains(pending.Room))
                        {
                            frames.Add(Send(pending, now));
                        }
                    }

                    if (_sending && now >= nextSend && _pending.Count < Window && session.Joined.Count == _rooms.Length)
                    {
                        var id = $"{User}-{++_nextId}";
                        var pending = new Pending(id, _rooms[_nextRoom++ % _rooms.Length], now);
                        _pending[id] = pending;
                        Sent++;
                        frames.Add(Send(pending, now));
                        nextSend = now + (_interval * (0.8 + (0.4 * Random.Shared.NextDouble())));
                    }

                    if (session.Joined.Count == _rooms.Length)
                    {
                        Started = true;
                    }
                }

                foreach (var frame in frames)
                {
                    await socket.SendAsync(Encoding.UTF8.GetBytes(frame), WebSocketMessageType.Text, endOfMessage: true, end);
                }

                await Delay(TimeSpan.FromMilliseconds(10), end);
            }
        }
        catch (Exception ex) when (ex is WebSocketException or IOException
            || receiving.IsCompleted || end.IsCancellationRequested || socket.State != WebSocketState.Open)
        {
            // The connection dropped under a send (the socket may not know it yet): reconnect.
        }

        if (end.IsCancellationRequested && socket.State == WebSocketState.Open)
        {
            try
            {
                // CloseOutputAsync, not CloseAsync: the receive loop is still reading, and CloseAsync would
                // read concurrently with it (one reader at a time per WebSocket).
                using var close = new CancellationTokenSource(TimeSpan.FromSeconds(3));
                await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "done", close.Token);
                await receiving.WaitAsync(TimeSpan.FromSeconds(3));
            }
            catch (Exception)
            {
                // Gone already.
            }
        }

        socket.Abort();
        await receiving;
    }

    private string Send(Pending pending, DateTime now)
    {
        if (pending.Sends > 0)
        {
            _resendAnswers[pending.Id] = _resendAnswers.GetValueOrDefault(pending.Id) + 1;
        }

        pending.Sends++;
        pending.LastSentAt = now;
        pending.DueAt = now + AnswerTimeout;
        Sends++;
        return JsonSerializer.Serialize(new { type = "send", room = pending.Room, text = $"chaos {pending.Id}", id = pending.Id });
    }

    private async Task ReceiveLoopAsync(ClientWebSocket socket, Session session)
    {
        var buffer = new byte[64 * 1024];
        var message = new MemoryStream();
        try
        {
            while (true)
            {
                var result = await socket.ReceiveAsync(buffer, CancellationToken.None);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    lock (_lock)
                    {
                        _closeCodes.Add((int)(result.CloseStatus ?? WebSocketCloseStatus.Empty));
                    }

                    return;
                }

                message.Write(buffer, 0, result.Count);
                if (!result.EndOfMessage)
                {
                    continue;
                }

                var text = Encoding.UTF8.GetString(message.GetBuffer(), 0, (int)message.Length);
                message.SetLength(0);
                foreach (var part in text.Split('\n'))
                {
                    using var document = JsonDocument.Parse(part);
                    OnEvent(document.RootElement, session);
                }
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or ObjectDisposedException or IOException)
        {
            // The connection is gone.
        }
    }

    private void OnEvent(JsonElement e, Session session)
    {
        var now = DateTime.UtcNow;
        lock (_lock)
        {
            switch (e.GetProperty("type").GetString())
            {
                case "joined":
                    var room = e.GetProperty("room").GetString()!;
                    foreach (var message in e.GetProperty("history").EnumerateArray())
                    {
                        OnMessage(message, now);
                    }

                    if (e.GetProperty("more").GetBoolean())
                    {
                        _problems.Add($"{User}: joined {room} with more history than one reply holds (unexpected in these tests)");
                    }

                    session.Joined.Add(room);
                    break;

                case "message":
                    OnMessage(e, now);
                    break;

                case "error":
                    OnError(e, session, now);
                    break;
            }
        }
    }

    private void OnMessage(JsonElement e, DateTime now)
    {
        var room = e.GetProperty("room").GetString()!;
        var seq = e.GetProperty("seq").GetInt64();
        var id = e.GetProperty("id").GetString()!;
        var mine = e.GetProperty("user").GetString() == User;
        var last = _last[room];
        if (seq == last + 1)
        {
            Deliver(room, seq, id);
        }
        else if (mine && _resendAnswers.GetValueOrDefault(id) > 0)
        {
            _resendAnswers[id]--;
        }
        else if (seq <= last)
        {
            Duplicates++;
            Problem($"{User}: {room} seq {seq} ({id}) delivered again after seq {last}");
        }
        else
        {
            OutOfOrder++;
            Problem($"{User}: {room} seq {seq} ({id}) delivered after seq {last}: out of order");
            Deliver(room, seq, id);
        }

        if (mine)
        {
            if (_pending.Remove(id, out var pending))
            {
                _acked[id] = new Ack(id, room, seq, now, pending.LastSentAt);
            }
            else if (_acked.TryGetValue(id, out var ack) && ack.Seq != seq)
            {
                Problem($"{User}: {id} acknowledged as seq {ack.Seq} and again as seq {seq}");
            }
        }
    }

    private void Deliver(string room, long seq, string id)
    {
        _last[room] = seq;
        _delivered[room][seq] = id;
        Delivered++;
    }

    private void OnError(JsonElement e, Session session, DateTime now)
    {
        var code = e.GetProperty("code").GetString();
        var id = e.TryGetProperty("id", out var idElement) && idElement.ValueKind == JsonValueKind.String ? idElement.GetString() : null;
        var room = e.TryGetProperty("room", out var roomElement) && roomElement.ValueKind == JsonValueKind.String ? roomElement.GetString() : null;
        if (id is not null)
        {
            if (!_pending.TryGetValue(id, out var pending))
            {
                return; // acknowledged meanwhile (another copy of it answered first)
            }

            switch (code)
            {
                case "unavailable":
                    Unavailable++;
                    pending.DueAt = now + TimeSpan.FromMilliseconds(250);
                    return;
                case "rate_limited":
                    RateLimited++;
                    pending.DueAt = now + TimeSpan.FromSeconds(1);
                    return;
            }
        }
        else if (room is not null && code == "unavailable" && !session.Joined.Contains(room))
        {
            // The join was refused for now: try it again shortly.
            Unavailable++;
            session.JoinDue[room] = now + TimeSpan.FromMilliseconds(500);
            return;
        }

        Problem($"{User}: unexpected error {e.GetRawText()}");
    }

    private void Problem(string text)
    {
        if (_problems.Count < 50)
        {
            _problems.Add(text);
        }
    }

    private static async Task Delay(TimeSpan delay, CancellationToken end)
    {
        try
        {
            await Task.Delay(delay, end);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private sealed class Pending(string id, string room, DateTime now)
    {
        public string Id { get; } = id;

        public string Room { get; } = room;

        public int Sends { get; set; }

        public DateTime LastSentAt { get; set; } = now;

        public DateTime DueAt { get; set; } = now;
    }

    /// <summary>One connection's state: which rooms its joins were answered for.</summary>
    private sealed class Session
    {
        public HashSet<string> Joined { get; } = new(StringComparer.Ordinal);

        public Dictionary<string, DateTime> JoinDue { get; } = new(StringComparer.Ordinal);
    }
}
