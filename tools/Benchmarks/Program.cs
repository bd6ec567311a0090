using System.Diagnostics;
using Orleans.TestingHost;
using OrleansChat.Benchmarks;
using OrleansChat.Grains;
using OrleansChat.Grains.Interfaces;

// Posts per second that ONE room grain sustains with the in-memory store: N callers post to one room
// in a closed loop (each waits for its acknowledgement before the next post) for a fixed time.
// Usage: dotnet run -c Release --project tools/Benchmarks -- [--callers N] [--seconds S] [--silos K] [--gateways G]
var options = BenchmarkOptions.Parse(args);
if (options is null)
{
    Console.Error.WriteLine("usage: [--callers N (32)] [--seconds S (10)] [--silos K (1)] [--gateways G (1)]");
    return 2;
}

var builder = new InProcessTestClusterBuilder((short)options.Silos);
builder.Options.ConfigureFileLogging = false;
builder.ConfigureSilo((_, silo) => silo.AddChatRooms(silo.Configuration));
await using var cluster = builder.Build();
await cluster.DeployAsync();

var room = cluster.Client.GetGrain<IRoomGrain>("bench");
var gateways = Enumerable.Range(0, options.Gateways).Select(_ => new CountingGateway()).ToArray();
var references = gateways.Select(g => cluster.Client.CreateObjectReference<IRoomObserver>(g)).ToArray();
for (var i = 0; i < gateways.Length; i++)
{
    await room.Subscribe(new SubscribeRequest($"gw{i}", references[i], TimeSpan.FromHours(1), GatewayMembers.Empty));
}

Console.WriteLine($"one room, {options.Callers} callers, {options.Silos} silo(s), {options.Gateways} subscribed gateway(s), " +
    $"in-memory store, {options.Seconds} s measured after 2 s warm-up, {Environment.ProcessorCount} cores");

await RunAsync(room, options.Callers, TimeSpan.FromSeconds(2), "warm");
var result = await RunAsync(room, options.Callers, TimeSpan.FromSeconds(options.Seconds), "run");
await Task.Delay(500);

var latencies = result.Latencies;
Array.Sort(latencies);
Console.WriteLine($"posts:        {latencies.Length}");
Console.WriteLine($"posts/s:      {latencies.Length / result.Elapsed.TotalSeconds:F0}");
Console.WriteLine($"latency ms:   p50 {Percentile(latencies, 0.50):F3}  p99 {Percentile(latencies, 0.99):F3}  max {Percentile(latencies, 1):F3}");
Console.WriteLine($"gateway calls: {gateways[0].Calls} for {gateways[0].Messages} messages " +
    $"({(double)gateways[0].Messages / Math.Max(1, gateways[0].Calls):F1} per call, warm-up included)");
GC.KeepAlive(gateways);
return 0;

static double Percentile(long[] sorted, double p)
    => sorted.Length == 0 ? 0 : Stopwatch.GetElapsedTime(0, sorted[(int)Math.Min(sorted.Length - 1, p * sorted.Length)]).TotalMilliseconds;

static async Task<(long[] Latencies, TimeSpan Elapsed)> RunAsync(IRoomGrain room, int callers, TimeSpan duration, string phase)
{
    var stopAt = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
    var started = Stopwatch.GetTimestamp();
    var perCaller = await Task.WhenAll(Enumerable.Range(0, callers).Select(caller => Task.Run(async () =>
    {
        var latencies = new List<long>(4096);
        for (var i = 0; Stopwatch.GetTimestamp() < stopAt; i++)
        {
            var sent = Stopwatch.GetTimestamp();
            var posted = await room.Post(new PostRequest($"user{caller}", $"{phase}-{caller}-{i}", "benchmark message text", null));
            if (posted.Error != RoomError.None)
            {
                throw new InvalidOperationException($"post failed: {posted.Error}");
            }

            latencies.Add(Stopwatch.GetTimestamp() - sent);
        }

        return latencies;
    })));
    return ([.. perCaller.SelectMany(l => l)], Stopwatch.GetElapsedTime(started));
}
