using OrleansChat.Grains.Interfaces;

namespace OrleansChat.Benchmarks;

internal sealed record BenchmarkOptions(int Callers, int Seconds, int Silos, int Gateways)
{
    public static BenchmarkOptions? Parse(string[] args)
    {
        var options = new BenchmarkOptions(32, 10, 1, 1);
        for (var i = 0; i < args.Length; i += 2)
        {
            if (i + 1 >= args.Length || !int.TryParse(args[i + 1], out var value) || value < 1)
            {
                return null;
            }

            options = args[i] switch
            {
                "--callers" => options with { Callers = value },
                "--seconds" => options with { Seconds = value },
                "--silos" => options with { Silos = value },
                "--gateways" => options with { Gateways = value },
                _ => null,
            };
            if (options is null)
            {
                return null;
            }
        }

        return options;
    }
}

/// <summary>A gateway that only counts what it receives (the real one enqueues and returns, too).</summary>
internal sealed class CountingGateway : IRoomObserver
{
    private long _calls;
    private long _messages;

    public long Calls => Interlocked.Read(ref _calls);

    public long Messages => Interlocked.Read(ref _messages);

    public Task<DeliveryReceipt> OnEvents(RoomEvents events)
    {
        Interlocked.Increment(ref _calls);
        Interlocked.Add(ref _messages, events.Messages.Length);
        return Task.FromResult(DeliveryReceipt.Flowing);
    }
}
