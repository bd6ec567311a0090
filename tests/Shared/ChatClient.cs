using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;

namespace OrleansChat.Tests;

/// <summary>A protocol v1 client over a real ClientWebSocket: splits server frames on '\n' into events. Shared by
/// the in-process gateway tests and the local-cluster tests.</summary>
public sealed partial class ChatClient : IAsyncDisposable
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(15);

    private readonly Channel<JsonElement> _events = Channel.CreateUnbounded<JsonElement>();
    private readonly Task _receiving;
    private int _idCounter;

    private ChatClient(ClientWebSocket socket, string user)
    {
        Socket = socket;
        User = user;
        _receiving = Task.Run(ReceiveLoopAsync);
    }

    public ClientWebSocket Socket { get; }

    public string User { get; }

    public WebSocketCloseStatus? CloseStatus => Socket.CloseStatus;

    /// <summary>Server frames that carried more than one event.</summary>
    public int PackedFrames { get; private set; }

    /// <summary>Connects to a gateway's <c>/ws</c> address as <paramref name="user"/> and takes the welcome.</summary>
    public static async Task<ChatClient> ConnectAsync(Uri wsAddress, string user, Action<ClientWebSocketOptions>? configure = null)
    {
        var socket = new ClientWebSocket();
        configure?.Invoke(socket.Options);
        await socket.ConnectAsync(new Uri($"{wsAddress}?user={Uri.EscapeDataString(user)}"), CancellationToken.None);
        var client = new ChatClient(socket, user);
        var welcome = await client.NextAsync();
        Assert.Equal("welcome", welcome.GetProperty("type").GetString());
        return client;
    }

    public static async Task<ChatClient> ConnectUriAsync(Uri uri, string user)
    {
        var socket = new ClientWebSocket();
        await socket.ConnectAsync(uri, CancellationToken.None);
        return new ChatClient(socket, user);
    }

    public string NextId() => $"{User}-{Interlocked.Increment(ref _idCounter)}";

    public Task SendAsync(object request) => SendRawAsync(JsonSerializer.Serialize(request));

    public Task SendRawAsync(string text) => SendBytesAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text);

    public async Task SendBytesAsync(byte[] bytes, WebSocketMessageType type)
        => await Socket.SendAsync(bytes, type, endOfMessage: true, CancellationToken.None);

    /// <summary>The next event, whatever it is.</summary>
    public async Task<JsonElement> NextAsync(TimeSpan? timeout = null)
    {
        using var cancel = new CancellationTokenSource(timeout ?? DefaultTimeout);
        try
        {
            return await _events.Reader.ReadAsync(cancel.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"{User}: no event within {timeout ?? DefaultTimeout}");
        }
        catch (ChannelClosedException)
        {
            throw new InvalidOperationException($"{User}: connection closed ({CloseStatus} {Socket.CloseStatusDescription}) while waiting for an event");
        }
    }

    /// <summary>Skips events until one of <paramref name="type"/> matches.</summary>
    public async Task<JsonElement> WaitForAsync(string type, Func<JsonElement, bool>? match = null, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? DefaultTimeout);
        while (true)
        {
            var remaining = deadline - DateTime.UtcNow;
            if (remaining <= TimeSpan.Zero)
            {
                throw new TimeoutException($"{User}: no '{type}' event in time");
            }

            var next = await NextAsync(remaining);
            if (next.GetProperty("type").GetString() == type && (match is null || match(next)))
            {
                return next;
            }
        }
    }

    /// <summary>True when no event arrives within <paramref name="quiet"/>.</summary>
    public async Task<JsonElement?> TryNextAsync(TimeSpan quiet)
    {
        try
        {
            return await NextAsync(quiet);
        }
        catch (TimeoutException)
        {
            return null;
        }
    }

    public async Task<JsonElement> JoinAsync(string room, long? since = null)
    {
        await SendAsync(since is null ? new { type = "join", room } : new { type = "join", room, since });
        return await WaitForAsync("joined", e => e.GetProperty("room").GetString() == room);
    }

    /// <summary>Sends and waits for its acknowledgement (the own <c>message</c> copy) or an error with its id.</summary>
    public async Task<JsonElement> PostAsync(string room, string text, string? id = null)
    {
        id ??= NextId();
        await SendAsync(new { type = "send", room, text, id });
        return await WaitForAsync("message", e => e.GetProperty("id").GetString() == id && e.GetProperty("user").GetString() == User);
    }

    /// <summary>Waits until the server closes the connection; returns its close status.</summary>
    public async Task<WebSocketCloseStatus?> WaitForCloseAsync(TimeSpan? timeout = null)
    {
        await _receiving.WaitAsync(timeout ?? DefaultTimeout);
        return Socket.CloseStatus;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (Socket.State == WebSocketState.Open)
            {
                // The receive loop is still reading: send our Close and let it see the answer (CloseAsync
                // would read concurrently with it).
                using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                await Socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "bye", cancel.Token);
                await _receiving.WaitAsync(TimeSpan.FromSeconds(5));
            }
        }
        catch (Exception)
        {
            // Already gone.
        }

        Socket.Abort();
        Socket.Dispose();
    }

    private async Task ReceiveLoopAsync()
    {
        var buffer = new byte[64 * 1024];
        var message = new MemoryStream();
        try
        {
            while (true)
            {
                var result = await Socket.ReceiveAsync(buffer, CancellationToken.None);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    if (Socket.State == WebSocketState.CloseReceived)
                    {
                        await Socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "", CancellationToken.None);
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
                var parts = text.Split('\n');
                if (parts.Length > 1)
                {
                    PackedFrames++;
                }

                foreach (var part in parts)
                {
                    using var document = JsonDocument.Parse(part);
                    _events.Writer.TryWrite(document.RootElement.Clone());
                }
            }
        }
        catch (Exception)
        {
            // Aborted.
        }
        finally
        {
            _events.Writer.TryComplete();
        }
    }
}
