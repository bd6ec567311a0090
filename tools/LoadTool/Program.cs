using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;

// OrleansChat load tool: N connections in one room (spread over one or more gateway URLs), S of them sending.
// Measures end-to-end delivery latency (send -> each member's socket), deliveries/s and acknowledgements.
//
//   dotnet run -c Release --project tools/LoadTool -- --url ws://127.0.0.1:8080/ws --connections 100 --senders 5 --rate 10 --seconds 20
//
// --rate is messages/s per sender (the protocol's default limit is 20/s per connection); --rate 0 sends
// closed-loop: each sender keeps --window sends in flight (needs a gateway with a raised rate limit).
var options = LoadOptions.Parse(args);
if (options is null)
{
    Console.Error.WriteLine("usage: LoadTool --url ws://host:port/ws[,ws://…] [--connections 100] [--senders 5] [--rate 10] [--window 8] [--seconds 20] [--warmup 3] [--size 64] [--room NAME]");
    return 2;
}

return await LoadRun.RunAsync(options);

internal sealed record LoadOptions(string[] Urls, int Connections, int Senders, double Rate, int Window, int Seconds, int Warmup, int Size, string Room)
{
    public static LoadOptions? Parse(string[] args)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i + 1 < args.Length; i += 2)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal))
            {
                return null;
            }

            values[args[i][2..]] = args[i + 1];
        }

        if (args.Length % 2 != 0 || !values.TryGetValue("url", out var url))
        {
            return null;
        }

        int Int(string key, int fallback) => values.TryGetValue(key, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;
        var rate = values.TryGetValue("rate", out var r) ? double.Parse(r, CultureInfo.InvariantCulture) : 10;
        var options = new LoadOptions(
            url.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
            Int("connections", 100), Int("senders", 5), rate, Int("window", 8), Int("seconds", 20), Int("warmup", 3), Int("size", 64),
            values.GetValueOrDefault("room") ?? $"load-{Guid.NewGuid():N}"[..17]);
        return options.Senders <= options.Connections && options.Connections > 0 && options.Seconds > 0 ? options : null;
    }
}

internal sealed class LoadRun
{
    private readonly LoadOptions _options;
    private readonly ConcurrentDictionary<string, long> _sentAt = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<int, SemaphoreSlim> _windows = new();
    private readonly List<double>[] _latencies;
    private readonly List<double>[] _ackLatencies;
    private long _deliveries;
    private long _acks;
    private long _sent;
    private long _errors;
    private long _duplicateDeliveries;
    private volatile bool _measuring;
    private volatile bool _stopping;

    private LoadRun(LoadOptions options)
    {
        _options = options;
        _latencies = Enumerable.Range(0, options.Connections).Select(_ => new List<double>()).ToArray();
        _ackLatencies = Enumerable.Range(0, options.Connections).Select(_ => new List<double>()).ToArray();
    }

    public static async Task<int> RunAsync(LoadOptions options)
    {
        var run = new LoadRun(options);
        return await run.RunAsync();
    }

    private async Task<int> RunAsync()
    {
        Console.WriteLine($"room {_options.Room}: {_options.Connections} connections over {_options.Urls.Length} URL(s), {_options.Senders} senders, " +
                          (_options.Rate > 0 ? $"{_options.Rate}/s each" : $"closed loop, window {_options.Window}") + $", {_options.Size}-byte texts");
        var sockets = new ClientWebSocket[_options.Connections];
        for (var i = 0; i < sockets.Length; i++)
        {
            sockets[i] = new ClientWebSocket();
            var url = _options.Urls[i % _options.Urls.Length];
            await sockets[i].ConnectAsync(new Uri($"{url}?user=load{i}"), CancellationToken.None);
        }

        var joined = new TaskCompletionSource[sockets.Length];
        var receivers = new Task[sockets.Length];
        for (var i = 0; i < sockets.Length; i++)
        {
            joined[i] = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var index = i;
            receivers[i] = Task.Run(() => ReceiveAsync(index, sockets[index], joined[index]));
            await SendAsync(sockets[i], $"{{\"type\":\"join\",\"room\":\"{_options.Room}\"}}");
        }

        await Task.WhenAll(joined.Select(j => j.Task)).WaitAsync(TimeSpan.FromSeconds(60));
        Console.WriteLine("all joined; warming up");

        var text = new string('x', Math.Max(1, _options.Size));
        var senders = Enumerable.Range(0, _options.Senders).Select(i => Task.Run(() => SenderAsync(i, sockets[i], text))).ToArray();
        await Task.Delay(TimeSpan.FromSeconds(_options.Warmup));
        var (deliveries0, acks0, sent0) = (Interlocked.Read(ref _deliveries), Interlocked.Read(ref _acks), Interlocked.Read(ref _sent));
        _measuring = true;
        var clock = Stopwatch.StartNew();
        await Task.Delay(TimeSpan.FromSeconds(_options.Seconds));
        _measuring = false;
        var elapsed = clock.Elapsed.TotalSeconds;
        var (deliveries, acks, sent) = (Interlocked.Read(ref _deliveries) - deliveries0, Interlocked.Read(ref _acks) - acks0, Interlocked.Read(ref _sent) - sent0);
        _stopping = true;
        await Task.WhenAll(senders);

        foreach (var socket in sockets)
        {
            try
            {
                using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                // Output only: each socket's receive loop is still reading.
                await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "done", cancel.Token);
            }
            catch (Exception)
            {
                socket.Abort();
            }
        }

        var latencies = _latencies.SelectMany(l => l).Order().ToArray();
        var ackLatencies = _ackLatencies.SelectMany(l => l).Order().ToArray();
        Console.WriteLine($"measured {elapsed:F1} s");
        Console.WriteLine($"sent {sent} ({sent / elapsed:F0}/s), acknowledged {acks} ({acks / elapsed:F0}/s), errors {Interlocked.Read(ref _errors)}, duplicate deliveries {Interlocked.Read(ref _duplicateDeliveries)}");
        Console.WriteLine($"deliveries {deliveries} ({deliveries / elapsed:F0}/s)");
        Console.WriteLine($"delivery latency ms: p50 {Percentile(latencies, 0.50):F2}  p90 {Percentile(latencies, 0.90):F2}  p99 {Percentile(latencies, 0.99):F2}  max {Percentile(latencies, 1):F2}  (n={latencies.Length})");
        Console.WriteLine($"ack latency ms:      p50 {Percentile(ackLatencies, 0.50):F2}  p90 {Percentile(ackLatencies, 0.90):F2}  p99 {Percentile(ackLatencies, 0.99):F2}  max {Percentile(ackLatencies, 1):F2}  (n={ackLatencies.Length})");
        return Interlocked.Read(ref _duplicateDeliveries) == 0 ? 0 : 1;
    }

    private async Task SenderAsync(int index, ClientWebSocket socket, string text)
    {
        var interval = _options.Rate > 0 ? TimeSpan.FromSeconds(1 / _options.Rate) : TimeSpan.Zero;
        var next = Stopwatch.GetTimestamp();
        var counter = 0;
        using var window = new SemaphoreSlim(_options.Window);
        _windows[index] = window;
        while (!_stopping)
        {
            if (_options.Rate > 0)
            {
                next += (long)(interval.TotalSeconds * Stopwatch.Frequency);
                var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), next);
                if (wait > TimeSpan.Zero)
                {
                    await Task.Delay(wait);
                }
            }
            else
            {
                await window.WaitAsync();
            }

            var id = $"s{index}-{counter++}";
            _sentAt[id] = Stopwatch.GetTimestamp();
            Interlocked.Increment(ref _sent);
            await SendAsync(socket, $"{{\"type\":\"send\",\"room\":\"{_options.Room}\",\"id\":\"{id}\",\"text\":\"{text}\"}}");
        }
    }

    private async Task ReceiveAsync(int index, ClientWebSocket socket, TaskCompletionSource joined)
    {
        var buffer = new byte[256 * 1024];
        var lastSeq = 0L;
        var user = $"load{index}";
        try
        {
            while (socket.State == WebSocketState.Open)
            {
                var count = 0;
                ValueWebSocketReceiveResult result;
                do
                {
                    result = await socket.ReceiveAsync(buffer.AsMemory(count), CancellationToken.None);
                    count += result.Count;
                }
                while (!result.EndOfMessage);

                if (result.MessageType == WebSocketMessageType.Close)
                {
                    return;
                }

                var now = Stopwatch.GetTimestamp();
                foreach (var line in Encoding.UTF8.GetString(buffer, 0, count).Split('\n'))
                {
                    using var document = JsonDocument.Parse(line);
                    var root = document.RootElement;
                    switch (root.GetProperty("type").GetString())
                    {
                        case "joined":
                            lastSeq = root.GetProperty("seq").GetInt64();
                            joined.TrySetResult();
                            break;
                        case "message":
                            var seq = root.GetProperty("seq").GetInt64();
                            if (seq <= lastSeq)
                            {
                                Interlocked.Increment(ref _duplicateDeliveries);
                                break;
                            }

                            lastSeq = seq;
                            Interlocked.Increment(ref _deliveries);
                            var id = root.GetProperty("id").GetString()!;
                            if (_measuring && _sentAt.TryGetValue(id, out var sentAt))
                            {
                                var ms = Stopwatch.GetElapsedTime(sentAt, now).TotalMilliseconds;
                                _latencies[index].Add(ms);
                                if (root.GetProperty("user").GetString() == user)
                                {
                                    _ackLatencies[index].Add(ms);
                                }
                            }

                            if (root.GetProperty("user").GetString() == user)
                            {
                                Interlocked.Increment(ref _acks);
                                if (_windows.TryGetValue(index, out var window))
                                {
                                    window.Release();
                                }
                            }

                            break;
                        case "error":
                            Interlocked.Increment(ref _errors);
                            if (_windows.TryGetValue(index, out var w) && root.TryGetProperty("id", out _))
                            {
                                w.Release();
                            }

                            break;
                    }
                }
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException)
        {
            // Closed at the end of the run.
        }
    }

    private static Task SendAsync(ClientWebSocket socket, string json)
        => socket.SendAsync(Encoding.UTF8.GetBytes(json), WebSocketMessageType.Text, true, CancellationToken.None);

    private static double Percentile(double[] sorted, double p)
        => sorted.Length == 0 ? double.NaN : sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];
}
