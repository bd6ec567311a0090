using System.Net.WebSockets;
using System.Text;
using System.Text.Json;

namespace OrleansChat.Browser.Tests;

/// <summary>A plain protocol client (no browser) that fills a room with messages quickly.</summary>
public static class SeedClient
{
    public static async Task SendAsync(string gatewayUrl, string user, string room, IReadOnlyList<string> texts)
    {
        using var socket = new ClientWebSocket();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await socket.ConnectAsync(new Uri($"{gatewayUrl.Replace("http", "ws", StringComparison.Ordinal)}/ws?user={user}"), timeout.Token);
        await SendFrameAsync(socket, new { type = "join", room }, timeout.Token);
        await ReadUntilAsync(socket, e => e.GetProperty("type").GetString() == "joined", _ => { }, timeout.Token);
        for (var i = 0; i < texts.Count; i++)
        {
            await SendFrameAsync(socket, new { type = "send", room, text = texts[i], id = $"seed-{i}" }, timeout.Token);
        }

        var acked = 0;
        await ReadUntilAsync(socket, _ => acked == texts.Count, e =>
        {
            var type = e.GetProperty("type").GetString();
            if (type == "error")
            {
                throw new InvalidOperationException($"seeding failed: {e}");
            }

            if (type == "message" && e.GetProperty("user").GetString() == user)
            {
                acked++;
            }
        }, timeout.Token);
        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", timeout.Token);
    }

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
