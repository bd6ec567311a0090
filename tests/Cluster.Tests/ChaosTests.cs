using Xunit.Abstractions;

namespace OrleansChat.Cluster.Tests;

/// <summary>
/// Failures of the real cluster under continuous traffic (issue 5): clients post to several rooms through both
/// gateways and nginx while a silo, a gateway, the whole cluster or PostgreSQL goes down. Each test ends with
/// every acknowledged message stored once and delivered once, in seq order, to every client, and reports its
/// figures (test output and .ci-out/chaos-report.txt). Before each test, whatever the previous one killed is
/// started again.
/// </summary>
[Collection(ChaosCollection.Name)]
public sealed class ChaosTests(LocalCluster cluster, ITestOutputHelper output) : IAsyncLifetime
{
    private static readonly TimeSpan Traffic = TimeSpan.FromSeconds(3);

    public Task InitializeAsync() => cluster.RestoreAsync();

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task Killing_the_silo_of_a_busy_room_loses_and_duplicates_nothing()
    {
        await using var run = new ChaosRun(cluster, output, "silo");
        await run.StartAsync();
        await Task.Delay(Traffic);

        var busy = run.Rooms[0];
        var silo = await cluster.SiloOfRoomAsync(busy);
        var killedAt = await cluster.KillAsync("silo", silo);
        var recovery = await run.WaitForPostingAsync(killedAt, TimeSpan.FromSeconds(60), busy);
        await Task.Delay(Traffic);
        await run.FinishAsync();

        await run.VerifyAsync($"{recovery.TotalSeconds:0.0}s (kill -9 of the silo hosting the room until a post to it is acknowledged)");
    }

    [Fact]
    public async Task Killing_a_gateway_moves_its_clients_to_the_other_one_without_loss()
    {
        await using var run = new ChaosRun(cluster, output, "gateway");
        await run.StartAsync();
        await Task.Delay(Traffic);

        var killedAt = await cluster.KillAsync("gateway", cluster.Gateway1.Authority);
        await LocalCluster.WaitUntilAsync(() => run.Clients.Count(c => c.Reconnects > 0) >= 2, TimeSpan.FromSeconds(30), "the killed gateway's clients to reconnect");
        // Every client that lost its gateway is posting again: the slowest of them is the recovery time.
        var recoveries = new List<TimeSpan>();
        foreach (var client in run.Clients.Where(c => c.Reconnects > 0))
        {
            recoveries.Add(await run.WaitForPostingAsync(killedAt, TimeSpan.FromSeconds(30), clients: c => c == client));
        }

        await Task.Delay(Traffic);
        await run.FinishAsync();

        var figures = await run.VerifyAsync($"{recoveries.Max().TotalSeconds:0.0}s (kill -9 of a gateway until each of its {recoveries.Count} clients has a post acknowledged through nginx)");
        Assert.True(figures.Reconnects >= 2);
    }

    [Fact]
    public async Task Restarting_the_whole_cluster_keeps_history()
    {
        await using var run = new ChaosRun(cluster, output, "restart");
        await run.StartAsync();
        await Task.Delay(Traffic);

        var before = await cluster.StoredAsync(run.Rooms);
        await cluster.DownAsync();
        var downAt = DateTime.UtcNow;
        await cluster.RestoreAsync();
        var upTook = DateTime.UtcNow - downAt;
        var recovery = await run.WaitForPostingAsync(downAt, TimeSpan.FromSeconds(60));
        await Task.Delay(Traffic);
        await run.FinishAsync();

        var figures = await run.VerifyAsync(
            $"{recovery.TotalSeconds:0.0}s (from everything stopped until a post is acknowledged; `up` took {upTook.TotalSeconds:0.0}s)");
        var after = await cluster.StoredAsync(run.Rooms);
        Assert.True(before.Count > 0, "messages were stored before the restart");
        foreach (var room in run.Rooms)
        {
            var kept = before.Where(m => m.Room == room).ToList();
            Assert.Equal(kept, after.Where(m => m.Room == room).Take(kept.Count));
        }

        Assert.True(figures.Reconnects >= run.Clients.Count, "every client reconnected after the restart");
    }

    [Fact]
    public async Task Stopping_PostgreSQL_makes_posts_unavailable_until_it_is_back()
    {
        await using var run = new ChaosRun(cluster, output, "postgres");
        await run.StartAsync();
        await Task.Delay(Traffic);

        var stoppedAt = DateTime.UtcNow;
        await cluster.StopAsync("postgres");
        await Task.Delay(TimeSpan.FromSeconds(4));
        var restartAt = DateTime.UtcNow;
        await cluster.RestoreAsync();
        var recovery = await run.WaitForPostingAsync(restartAt, TimeSpan.FromSeconds(30));
        await Task.Delay(Traffic);
        await run.FinishAsync();

        var figures = await run.VerifyAsync(
            $"{recovery.TotalSeconds:0.0}s (from starting PostgreSQL again until a post is acknowledged; it was stopped for {(restartAt - stoppedAt).TotalSeconds:0.0}s)");
        Assert.True(figures.Unavailable > 0, "posts were answered unavailable while PostgreSQL was down");
    }
}
