using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OrleansChat.Gateway.Connections;
using Xunit.Abstractions;

namespace OrleansChat.Gateway.Tests;

/// <summary>
/// Issue 11: the gateway's frame handling driven over real sockets with many thousands of random and mutated
/// frames (invalid JSON, deep nesting, huge numbers, wrong types, control characters, invalid UTF-8, fragments,
/// binary and oversized frames). The gateway must answer only with protocol events (every error a protocol code)
/// or close with a documented code, log no unhandled exception, and an untouched connection on the same gateway
/// keeps chatting throughout. The seed is printed: a failure can be replayed.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class FuzzTests(ClusterFixture fixture, ITestOutputHelper output)
{
    private const int Fuzzers = 6;
    private const int FramesPerFuzzer = 2000;
    private const int InFlight = 16;

    /// <summary>Close codes of the protocol a client's bad input may earn (1000 when we close first).</summary>
    private static readonly HashSet<int> DocumentedCloses = [1000, 1007, 1008, 1009];

    private static readonly HashSet<string> ProtocolErrors = ["bad_request", "bad_room", "not_joined", "too_large", "rate_limited", "unavailable", "forbidden", "not_found"];

    private const string Punctuation = "{}[]\":,\\ 0e-";

    private static readonly string[] Templates =
    [
        """{"type":"join","room":"fuzz-room"}""",
        """{"type":"join","room":"fuzz-room","since":3}""",
        """{"type":"leave","room":"fuzz-room"}""",
        """{"type":"send","room":"fuzz-room","text":"hello","id":"m-1"}""",
        """{"type":"history","room":"fuzz-room","before":10,"limit":20}""",
        """{"type":"history","room":"fuzz-room","after":1}""",
        """{"type":"edit","room":"fuzz-room","seq":1,"text":"changed","id":"e-1"}""",
        """{"type":"delete","room":"fuzz-room","seq":2,"id":"d-1"}""",
        """{"type":"typing","room":"fuzz-room"}""",
        """{"type":"read","room":"fuzz-room","seq":2}""",
    ];

    [Fact]
    public async Task Thousands_of_hostile_frames_earn_only_protocol_answers_and_leave_others_untouched()
    {
        await using var gateway = fixture.StartGateway("gw-fuzz", new()
        {
            ["Gateway:RateLimit:PerSecond"] = "100000",
            ["Gateway:RateLimit:Burst"] = "100000",
            ["Gateway:MaxMessageBytes"] = "4096",
        });
        var problems = new ConcurrentQueue<string>();
        var logged = new LogCapture();
        gateway.Services.GetRequiredService<ILoggerFactory>().AddProvider(logged);

        var room = ProtocolTests.NewRoom();
        await using var bystander = await ChatClient.ConnectAsync(gateway, "bystander");
        await bystander.JoinAsync(room);

        var seed = Environment.TickCount;
        output.WriteLine($"fuzz seed {seed}");
        var closes = new ConcurrentDictionary<int, int>();
        var sent = 0;
        var fuzzers = Enumerable.Range(0, Fuzzers).Select(i => Task.Run(async () =>
        {
            var random = new Random(seed + i);
            var frames = 0;
            while (frames < FramesPerFuzzer)
            {
                try
                {
                    frames += await FuzzOneConnectionAsync(gateway, $"fuzzer{i}", random, FramesPerFuzzer - frames, closes, problems);
                }
                catch (Exception ex)
                {
                    problems.Enqueue($"fuzzer{i}: {ex}");
                    return;
                }
            }

            Interlocked.Add(ref sent, frames);
        })).ToList();

        // Meanwhile the bystander keeps chatting, and every post comes back.
        var posts = 0;
        while (!fuzzers.All(task => task.IsCompleted))
        {
            var message = await bystander.PostAsync(room, $"still here {posts}", $"b-{posts}");
            Assert.Equal($"still here {posts}", message.GetProperty("text").GetString());
            posts++;
            await Task.Delay(50);
        }

        await Task.WhenAll(fuzzers);
        await bystander.PostAsync(room, "after the storm", "b-last");
        var handled = gateway.Services.GetRequiredService<GatewayMetrics>().FramesIn;
        output.WriteLine($"{sent} hostile frames sent, {handled} handled as complete frames; closes by code: {string.Join(", ", closes.OrderBy(c => c.Key).Select(c => $"{c.Key}×{c.Value}"))}; bystander posted {posts + 1}");

        Assert.True(problems.IsEmpty, string.Join('\n', problems.Take(20)));
        Assert.True(sent >= Fuzzers * FramesPerFuzzer);
        // Most are parsed and answered (the rest: fragments of oversized messages, frames after a fatal one).
        Assert.True(handled >= sent / 2, $"{handled} of {sent} frames reached the request handling");
        Assert.True(problems.IsEmpty, string.Join('\n', problems.Take(20)));
        Assert.True(logged.Unhandled.IsEmpty, "logged:\n" + string.Join('\n', logged.Unhandled.Take(10)));
        using var http = gateway.Http();
        Assert.Equal("ok\n", await http.GetStringAsync("/healthz"));
        // Every fuzz connection is gone, and released what it held.
        await Eventually.HoldsAsync(() => gateway.Services.GetRequiredService<ConnectionRegistry>().Count <= 1);

        Assert.Equal(1, gateway.Services.GetRequiredService<ConnectionRegistry>().Count);
    }

    /// <summary>Sends up to <paramref name="budget"/> hostile frames on one connection until it is closed; returns
    /// how many it sent. Every event that comes back is checked.</summary>
    private static async Task<int> FuzzOneConnectionAsync(GatewayFactory gateway, string user, Random random, int budget,
        ConcurrentDictionary<int, int> closes, ConcurrentQueue<string> problems)
    {
        using var socket = new ClientWebSocket();
        await socket.ConnectAsync(new Uri($"{gateway.WsAddress}?user={user}"), CancellationToken.None);
        var dropped = new ConcurrentQueue<string>();
        var received = new StrongBox<int>();
        var reading = Task.Run(() => ReadAllAsync(socket, problems, dropped, received));
        var sent = 0;
        var failedIt = false;
        try
        {
            while (sent < budget && socket.State == WebSocketState.Open && !reading.IsCompleted)
            {
                var (bytes, type, fragments) = NextFrame(random);
                // RFC 6455: invalid UTF-8 in a text message fails the connection (1007, then the TCP connection is
                // closed); a client that goes on sending may then see a reset that swallows the Close frame.
                failedIt |= type == WebSocketMessageType.Text && !System.Text.Unicode.Utf8.IsValid(bytes);
                await SendAsync(socket, bytes, type, fragments);
                sent++;
                // Nearly every frame earns one answer: keep at most a window of them unanswered, so the frames
                // counted as sent are frames the gateway reads (not ones queued behind a fatal one).
                while (sent - Volatile.Read(ref received.Value) > InFlight && !reading.IsCompleted)
                {
                    await Task.WhenAny(reading, Task.Delay(1));
                }
            }
        }
        catch (Exception ex) when (ex is WebSocketException or IOException or OperationCanceledException)
        {
            // The gateway closed on us mid-send (1007, 1009): the close code tells whether that was right.
        }

        try
        {
            if (socket.State == WebSocketState.Open)
            {
                await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "done", CancellationToken.None);
            }
        }
        catch (Exception ex) when (ex is WebSocketException or IOException or OperationCanceledException)
        {
            // Dropped: the reader reports it.
        }

        var code = await reading.WaitAsync(TimeSpan.FromSeconds(20));
        closes.AddOrUpdate(code ?? -1, 1, (_, n) => n + 1);
        if (code is null ? !failedIt : !DocumentedCloses.Contains(code.Value))
        {
            problems.Enqueue($"{user}: closed with {(code is null ? "no close frame" : code.ToString())} {string.Join(' ', dropped)}");
        }

        return Math.Max(sent, 1);
    }

    /// <summary>Reads until the close; every frame must be newline-separated JSON events of the protocol.</summary>
    private static async Task<int?> ReadAllAsync(ClientWebSocket socket, ConcurrentQueue<string> problems, ConcurrentQueue<string> dropped, StrongBox<int> received)
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
                    return (int?)socket.CloseStatus;
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
                    Check(part, problems);
                    Interlocked.Increment(ref received.Value);
                }
            }
        }
        catch (Exception ex) when (ex is WebSocketException or IOException)
        {
            dropped.Enqueue($"({ex.Message} {ex.InnerException?.Message})");
            return (int?)socket.CloseStatus;
        }
    }

    private static void Check(string eventText, ConcurrentQueue<string> problems)
    {
        try
        {
            using var document = JsonDocument.Parse(eventText);
            var type = document.RootElement.GetProperty("type").GetString();
            if (type == "error" && !ProtocolErrors.Contains(document.RootElement.GetProperty("code").GetString() ?? ""))
            {
                problems.Enqueue($"undocumented error: {eventText}");
            }
            else if (type is not ("welcome" or "joined" or "left" or "message" or "presence" or "history" or "error"
                or "edit" or "delete" or "typing" or "read"))
            {
                problems.Enqueue($"unexpected event: {eventText}");
            }
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            problems.Enqueue($"not a protocol event ({ex.GetType().Name}): {eventText[..Math.Min(200, eventText.Length)]}");
        }
    }

    private static async Task SendAsync(ClientWebSocket socket, byte[] bytes, WebSocketMessageType type, int fragments)
    {
        var size = Math.Max(1, bytes.Length / fragments);
        for (var offset = 0; offset < bytes.Length || offset == 0; offset += size)
        {
            var last = offset + size >= bytes.Length;
            await socket.SendAsync(bytes.AsMemory(offset, Math.Min(size, bytes.Length - offset)), type, last, CancellationToken.None);
            if (last)
            {
                break;
            }
        }
    }

    /// <summary>One hostile frame: its bytes, its type and how many fragments to send it in.</summary>
    private static (byte[] Bytes, WebSocketMessageType Type, int Fragments) NextFrame(Random random)
    {
        var template = Templates[random.Next(Templates.Length)];
        var fragments = random.Next(10) == 0 ? random.Next(2, 6) : 1;
        switch (random.Next(12))
        {
            case 0:
                return (RandomBytes(random, random.Next(0, 300)), WebSocketMessageType.Binary, fragments);
            case 1:
                // Most random bytes are invalid UTF-8: a 1007 close (and a new connection).
                return (random.Next(8) == 0 ? RandomBytes(random, random.Next(1, 100)) : Encoding.UTF8.GetBytes(template), WebSocketMessageType.Text, fragments);
            case 2:
                var depth = random.Next(10, 3000);
                return (Encoding.UTF8.GetBytes(new string('[', depth) + new string(']', depth)), WebSocketMessageType.Text, fragments);
            case 3:
                var nested = random.Next(10, 1500);
                var deep = string.Concat(Enumerable.Repeat("{\"a\":", nested)) + "1" + new string('}', nested);
                return (Encoding.UTF8.GetBytes(template.Replace("\"hello\"", deep, StringComparison.Ordinal)), WebSocketMessageType.Text, fragments);
            case 4:
                string[] numbers = ["1e309", "-1e309", "99999999999999999999999999", "-9223372036854775809", "1.5", "NaN", "0x10", "-0", "1e-400"];
                var number = numbers[random.Next(numbers.Length)];
                return (Encoding.UTF8.GetBytes(template.Replace("3", number, StringComparison.Ordinal).Replace("20", number, StringComparison.Ordinal)
                    .Replace("10", number, StringComparison.Ordinal)), WebSocketMessageType.Text, fragments);
            case 5:
                string[] values = ["null", "true", "[]", "{}", "0", "\"\"", "[\"fuzz-room\"]", "{\"a\":1}"];
                var value = values[random.Next(values.Length)];
                return (Encoding.UTF8.GetBytes(template.Replace("\"fuzz-room\"", value, StringComparison.Ordinal).Replace("\"hello\"", value, StringComparison.Ordinal)
                    .Replace("\"m-1\"", value, StringComparison.Ordinal)), WebSocketMessageType.Text, fragments);
            case 6:
                string[] nasty = ["\\u0000", "\\ud800", "\\udfff\\ud800", "\u0001\u0002", "\\n\\r\\t", "\u202e", "\\\"", "\\", "\"", "\u0000"];
                var insert = nasty[random.Next(nasty.Length)];
                var at = random.Next(template.Length);
                return (Encoding.UTF8.GetBytes(template[..at] + insert + template[at..]), WebSocketMessageType.Text, fragments);
            case 7:
                // Oversized: over Gateway:MaxMessageBytes (4096 here), maybe across fragments: 1009.
                return (Encoding.UTF8.GetBytes(template.Replace("hello", new string('x', random.Next(4000, 20000)), StringComparison.Ordinal)), WebSocketMessageType.Text,
                    random.Next(1, 8));
            case 8:
                return (Array.Empty<byte>(), WebSocketMessageType.Text, 1);
            default:
                return (Mutate(random, Encoding.UTF8.GetBytes(template)), WebSocketMessageType.Text, fragments);
        }
    }

    /// <summary>A few random byte flips, deletions and insertions of JSON punctuation.</summary>
    private static byte[] Mutate(Random random, byte[] bytes)
    {
        var list = bytes.ToList();
        for (var n = random.Next(1, 5); n > 0 && list.Count > 0; n--)
        {
            var at = random.Next(list.Count);
            switch (random.Next(3))
            {
                case 0:
                    list.RemoveAt(at);
                    break;
                case 1:
                    list.Insert(at, (byte)Punctuation[random.Next(Punctuation.Length)]);
                    break;
                default:
                    list[at] = (byte)random.Next(0x20, 0x7F);
                    break;
            }
        }

        return [.. list];
    }

    private static byte[] RandomBytes(Random random, int length)
    {
        var bytes = new byte[length];
        random.NextBytes(bytes);
        return bytes;
    }

    /// <summary>Log entries that mean something escaped: Error or Critical, or anything with an exception.</summary>
    private sealed class LogCapture : ILoggerProvider
    {
        public ConcurrentQueue<string> Unhandled { get; } = new();

        public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

        public void Dispose()
        {
        }

        private sealed class Logger(LogCapture capture, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                if (logLevel >= LogLevel.Error || exception is not null)
                {
                    capture.Unhandled.Enqueue($"{logLevel} {category}: {formatter(state, exception)} {exception}");
                }
            }
        }
    }
}
