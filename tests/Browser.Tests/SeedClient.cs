using System.Net.WebSockets;
using System.Text;
using System.Text.Json;

namespace OrleansChat.Browser.Tests;

/// <summary>A plain protocol client (no browser) that fills a room with messages quickly.</summary>
public static class SeedClient
{
    public static Task SendAsync(string gatewayUrl, string user, string room, IReadOnlyList<string> texts)
        => PostAsync(gatewayUrl, user, room, [.. texts.Select(text => Send(text))]);

    private static int s_ids;

    /// <summary>A <c>send</c> frame with a fresh id.</summary>
    public static Dictionary<string, object> Send(string text) => Frame("send", ("text", text));

    /// <summary>An <c>edit</c> frame of one's own message <paramref name="seq"/>, with a fresh id.</summary>
    public static Dictionary<string, object> Edit(long seq, string text) => Frame("edit", ("seq", seq), ("text", text));

    /// <summary>A <c>delete</c> frame of one's own message <paramref name="seq"/>, with a fresh id.</summary>
    public static Dictionary<string, object> Delete(long seq) => Frame("delete", ("seq", seq));

    /// <summary>Joins <paramref name="room"/> as <paramref name="user"/>, posts the frames (send, edit, delete) in order
    /// and waits until each is acknowledged: they are stored with consecutive seqs.</summary>
    public static async Task PostAsync(string gatewayUrl, string user, string room, IReadOnlyList<Dictionary<string, object>> frames)
    {
        using var socket = new ClientWebSocket();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await socket.ConnectAsync(WsUri(gatewayUrl, user), timeout.Token);
        await SendFrameAsync(socket, new { type = "join", room }, timeout.Token);
        await ReadUntilAsync(socket, e => e.GetProperty("type").GetString() == "joined", _ => { }, timeout.Token);
        foreach (var frame in frames)
        {
            frame["room"] = room;
            await SendFrameAsync(socket, frame, timeout.Token);
        }

        var ids = frames.Select(frame => (string)frame["id"]).ToHashSet();
        await ReadUntilAsync(socket, _ => ids.Count == 0, e =>
        {
            if (e.GetProperty("type").GetString() == "error")
            {
                throw new InvalidOperationException($"seeding failed: {e}");
            }

            if (e.TryGetProperty("id", out var id) && e.GetProperty("user").GetString() == user)
            {
                ids.Remove(id.GetString()!);
            }
        }, timeout.Token);
        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", timeout.Token);
    }

    /// <summary>The read seq the server holds for <paramref name="user"/> in <paramref name="room"/> (from <c>joined</c>).</summary>
    public static async Task<long> ReadMarkAsync(string gatewayUrl, string user, string room)
    {
        using var socket = new ClientWebSocket();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await socket.ConnectAsync(WsUri(gatewayUrl, user), timeout.Token);
        await SendFrameAsync(socket, new { type = "join", room }, timeout.Token);
        long read = -1;
        await ReadUntilAsync(socket, e => e.GetProperty("type").GetString() == "joined", e =>
        {
            if (e.GetProperty("type").GetString() == "joined")
            {
                read = e.GetProperty("read").GetInt64();
            }
        }, timeout.Token);
        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", timeout.Token);
        return read;
    }

    private static Dictionary<string, object> Frame(string type, params (string Name, object Value)[] fields)
    {
        var frame = new Dictionary<string, object> { ["type"] = type, ["id"] = $"seed-{Interlocked.Increment(ref s_ids)}" };
        foreach (var (name, value) in fields)
        {
            frame[name] = value;
        }

        return frame;
    }

    private static Uri WsUri(string gatewayUrl, string user) => new($"{gatewayUrl.Replace("http", "ws", StringComparison.Ordinal)}/ws?user={user}");

    private static Task SendFrameAsync(ClientWebSocket socket, object frame, CancellationToken cancellation) =>
        socket.SendAsync(JsonSerializer.SerializeToUtf8Bytes(frame), WebSocketMessageType.Text, true, cancellation);

    private static async Task ReadUntilAsync(ClientWebSocket socket, Func<JsonElement, bool> done, Action<JsonElement> seen, CancellationToken cancellation)
    {
        var buffer = new byte[64 * 1024];
        while (true)
        {
            using var frame = new MemoryStream();
            WebSocketReceiveResult result;
            do
            {
                result = await socket.ReceiveAsync(buffer, cancellation);
                frame.Write(buffer, 0, result.Count);
            }
            while (!result.EndOfMessage);

            foreach (var line in Encoding.UTF8.GetString(frame.ToArray()).Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                using var document = JsonDocument.Parse(line);
                seen(document.RootElement);
                if (done(document.RootElement))
                {
                    return;
                }
            }
        }
    }
}
