using Xunit.Abstractions;

namespace OrleansChat.Cluster.Tests;

/// <summary>
/// One chaos scenario's workload and its verdict: clients on gateway 1, gateway 2 and nginx, each joined to every
/// room and posting continuously; at the end, what was acknowledged, stored and delivered is compared.
/// </summary>
public sealed class ChaosRun : IAsyncDisposable
{
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(80);
    private readonly LocalCluster _cluster;
    private readonly ITestOutputHelper _output;
    private readonly CancellationTokenSource _end = new();
    private readonly List<Task> _running = [];

    public ChaosRun(LocalCluster cluster, ITestOutputHelper output, string scenario, int clientsPerEndpoint = 2, int roomCount = 3)
    {
        _cluster = cluster;
        _output = output;
        Scenario = scenario;
        var run = Guid.NewGuid().ToString("N")[..6];
        Rooms = [.. Enumerable.Range(1, roomCount).Select(i => $"chaos-{scenario}-{run}-{i}")];
        Uri[] endpoints = [cluster.Gateway1, cluster.Gateway2, cluster.Nginx];
        Clients = [.. Enumerable.Range(0, endpoints.Length * clientsPerEndpoint)
            .Select(i => new ChaosClient($"{scenario}-{run}-{i}", endpoints[i % endpoints.Length], cluster.Nginx, Rooms, Interval))];
    }

    public string Scenario { get; }

    public string[] Rooms { get; }

    public IReadOnlyList<ChaosClient> Clients { get; }

    /// <summary>Connects every client and waits until each has joined every room.</summary>
    public async Task StartAsync()
    {
        foreach (var client in Clients)
        {
            _running.Add(Task.Run(() => client.RunAsync(_end.Token)));
        }

        await LocalCluster.WaitUntilAsync(() => Clients.All(c => c.Started), TimeSpan.FromSeconds(30), "every client to join every room");
    }

    /// <summary>Waits until some message of <paramref name="room"/> (any room when null) first sent after
    /// <paramref name="since"/> is acknowledged; returns the time from <paramref name="since"/> to that acknowledgement.</summary>
    public async Task<TimeSpan> WaitForPostingAsync(DateTime since, TimeSpan timeout, string? room = null, Func<ChaosClient, bool>? clients = null)
    {
        TimeSpan? First() => Clients.Where(clients ?? (_ => true))
            .SelectMany(c => c.Acks)
            .Where(a => (room is null || a.Room == room) && a.LastSentAt >= since)
            .Select(a => (TimeSpan?)(a.AckedAt - since))
            .Min();
        await LocalCluster.WaitUntilAsync(() => First() is not null, timeout, $"a post {(room is null ? "" : $"to {room} ")}acknowledged after the failure");
        return First()!.Value;
    }

    /// <summary>Stops new posts, lets every client get its outstanding ones acknowledged, and waits until every
    /// client has received every stored message of every room; then disconnects them.</summary>
    public async Task FinishAsync()
    {
        foreach (var client in Clients)
        {
            client.StopSending();
        }

        await LocalCluster.WaitUntilAsync(() => Clients.All(c => c.PendingCount == 0), TimeSpan.FromSeconds(40),
            $"every post to be acknowledged ({Clients.Sum(c => c.PendingCount)} outstanding)");
        var stored = await _cluster.StoredAsync(Rooms);
        var top = Rooms.ToDictionary(room => room, room => stored.Where(m => m.Room == room).Select(m => m.Seq).DefaultIfEmpty(0).Max());
        await LocalCluster.WaitUntilAsync(() => Clients.All(c => Rooms.All(room => c.LastSeq(room) >= top[room])), TimeSpan.FromSeconds(20),
            "every client to receive every stored message");
        await _end.CancelAsync();
        await Task.WhenAll(_running);
    }

    /// <summary>Compares clients and store, reports the figures (test output and .ci-out/chaos-report.txt) and
    /// asserts: nothing acknowledged lost, nothing duplicated, seqs gap-free, every message delivered once in order
    /// to every client.</summary>
    public async Task<Figures> VerifyAsync(string recovery)
    {
        var stored = await _cluster.StoredAsync(Rooms);
        var problems = new List<string>();
        var byId = stored.GroupBy(m => (m.Room, m.Sender, m.ClientId)).ToList();
        var storedTwice = byId.Sum(g => g.Count() - 1);
        foreach (var twice in byId.Where(g => g.Count() > 1).Take(10))
        {
            problems.Add($"{twice.Key} stored {twice.Count()} times");
        }

        foreach (var room in Rooms)
        {
            var seqs = stored.Where(m => m.Room == room).Select(m => m.Seq).ToList();
            if (!seqs.SequenceEqual(Enumerable.Range(1, seqs.Count).Select(i => (long)i)))
            {
                problems.Add($"{room}: stored seqs are not 1..{seqs.Count}");
            }
        }

        var storedAt = stored.ToDictionary(m => (m.Room, m.Seq));
        var lost = 0;
        foreach (var client in Clients)
        {
            foreach (var ack in client.Acks)
            {
                if (!storedAt.TryGetValue((ack.Room, ack.Seq), out var m) || m.Sender != client.User || m.ClientId != ack.Id)
                {
                    lost++;
                    problems.Add($"{client.User}: {ack.Id} acknowledged as {ack.Room} seq {ack.Seq} but not stored there");
                }
            }

            foreach (var room in Rooms)
            {
                var delivered = client.DeliveredIn(room);
                foreach (var m in stored.Where(m => m.Room == room))
                {
                    if (!delivered.TryGetValue(m.Seq, out var id) || id != m.ClientId)
                    {
                        lost++;
                        if (lost < 20)
                        {
                            problems.Add($"{client.User}: {room} seq {m.Seq} ({m.ClientId}) not delivered");
                        }
                    }
                }
            }

            problems.AddRange(client.Problems);
        }

        var figures = new Figures(
            Sent: Clients.Sum(c => c.Sent),
            Sends: Clients.Sum(c => c.Sends),
            Acknowledged: Clients.Sum(c => c.Acks.Count),
            Stored: stored.Count,
            Delivered: Clients.Sum(c => c.Delivered),
            Lost: lost,
            Duplicated: storedTwice + Clients.Sum(c => c.Duplicates),
            OutOfOrder: Clients.Sum(c => c.OutOfOrder),
            Unavailable: Clients.Sum(c => c.Unavailable),
            Reconnects: Clients.Sum(c => c.Reconnects));
        var line = $"chaos {Scenario}: sent={figures.Sent} acknowledged={figures.Acknowledged} stored={figures.Stored} delivered={figures.Delivered} "
            + $"lost={figures.Lost} duplicated={figures.Duplicated} out-of-order={figures.OutOfOrder} recovery={recovery} "
            + $"(sends incl. retries={figures.Sends}, unavailable={figures.Unavailable}, reconnects={figures.Reconnects}, "
            + $"clients={Clients.Count}, rooms={Rooms.Length})";
        _output.WriteLine(line);
        _cluster.Report(line);
        foreach (var problem in problems.Take(30))
        {
            _output.WriteLine(problem);
        }

        Assert.True(problems.Count == 0, $"{line}\n{string.Join('\n', problems.Take(30))}");
        Assert.Equal(figures.Sent, figures.Acknowledged);
        Assert.Equal(figures.Acknowledged, figures.Stored);
        return figures;
    }

    public async ValueTask DisposeAsync()
    {
        await _end.CancelAsync();
        await Task.WhenAll(_running);
        _end.Dispose();
    }
}

public sealed record Figures(int Sent, int Sends, int Acknowledged, int Stored, int Delivered, int Lost, int Duplicated, int OutOfOrder, int Unavailable, int Reconnects);
