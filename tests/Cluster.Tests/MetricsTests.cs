using OrleansChat.Tests;
using Xunit.Abstractions;

namespace OrleansChat.Cluster.Tests;

/// <summary>
/// Every node of the real cluster serves OpenTelemetry's Prometheus text at /metrics: under load (the chaos
/// workload, through both gateways and nginx) our series move on a gateway and on the silos, and Orleans' own
/// series are there. Each node is its own process, so every figure is that node's.
/// </summary>
[Collection(ChaosCollection.Name)]
public sealed class MetricsTests(LocalCluster cluster, ITestOutputHelper output) : IAsyncLifetime
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(10) };

    public Task InitializeAsync() => cluster.RestoreAsync();

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task Gateway_and_silo_metrics_move_under_load()
    {
        await using var run = new ChaosRun(cluster, output, "metrics");
        await run.StartAsync();
        await Task.Delay(TimeSpan.FromSeconds(2));
        var gatewayBefore = await ScrapeAsync(cluster.GatewayHttp(1));
        var silosBefore = await ScrapeSilosAsync();
        await Task.Delay(TimeSpan.FromSeconds(3));
        var gateway = await ScrapeAsync(cluster.GatewayHttp(1));
        var silos = await ScrapeSilosAsync();
        await run.FinishAsync();
        await run.VerifyAsync("- (no failure: metrics scraped under load)");

        // A gateway: connections open, posts and deliveries counted, latencies observed.
        Assert.True(gateway.Sum("orleanschat_connections") >= 2, "clients are connected to gateway 1");
        Assert.True(Increase("orleanschat_messages_posted_total", gatewayBefore, gateway) > 0, "posts counted");
        Assert.True(Increase("orleanschat_messages_delivered_total", gatewayBefore, gateway) > 0, "deliveries counted");
        Assert.True(Increase("orleanschat_events_out_total", gatewayBefore, gateway, "type=message") > 0, "message events counted");
        Assert.True(Increase("orleanschat_delivery_latency_seconds_count", gatewayBefore, gateway) > 0, "post-to-delivery latency observed");
        Assert.True(Increase("orleanschat_post_duration_seconds_count", gatewayBefore, gateway) > 0, "post latency observed");
        Assert.True(gateway.Sum("orleanschat_gateway_rooms") >= run.Rooms.Length);

        // The silos: the rooms are active somewhere, their messages are stored, batches and commits observed.
        Assert.True(silos.Sum(s => s.Sum("orleanschat_rooms_active")) >= run.Rooms.Length, "the rooms are active on the silos");
        Assert.True(silos.Zip(silosBefore).Sum(pair => Increase("orleanschat_messages_stored_total", pair.Second, pair.First)) > 0, "messages stored");
        Assert.True(silos.Zip(silosBefore).Sum(pair => Increase("orleanschat_store_commit_duration_seconds_count", pair.Second, pair.First)) > 0, "commits timed");

        // Orleans', the runtime's and ASP.NET Core's series, on both kinds of node.
        foreach (var node in silos.Append(gateway))
        {
            Assert.True(node.Any(sample => sample.Name.StartsWith("orleans_", StringComparison.Ordinal)), "Orleans' meter is exported");
            Assert.True(node.Has("dotnet_process_cpu_time_seconds_total"), "the runtime's meter is exported");
        }

        Assert.True(silos.All(node => node.Any(sample => sample.Name.StartsWith("orleans_catalog_", StringComparison.Ordinal))), "every silo reports its catalog");
        Assert.True(gateway.Has("kestrel_active_connections"));
        Assert.All(gateway.Concat(silos.SelectMany(node => node)).Where(sample => sample.Labels.TryGetValue("otel_scope_name", out var scope) && scope == "OrleansChat"),
            sample => Assert.StartsWith("orleanschat_", sample.Name, StringComparison.Ordinal));
        output.WriteLine($"gateway 1: {gateway.Sum("orleanschat_messages_posted_total")} posted, {gateway.Sum("orleanschat_messages_delivered_total")} delivered; " +
            $"silos: {string.Join(", ", silos.Select(node => $"{node.Sum("orleanschat_rooms_active")} rooms/{node.Sum("orleanschat_messages_stored_total")} stored"))}");
    }

    /// <summary>A plain start of the local cluster (3 silos, 2 gateways, JSON logs) logs no warning.</summary>
    [Fact]
    public void Starting_the_cluster_logs_no_warning()
        => Assert.True(cluster.StartupWarnings.Count == 0, "warnings while the cluster started:\n" + string.Join('\n', cluster.StartupWarnings));

    private static double Increase(string name, IReadOnlyList<PrometheusSample> before, IReadOnlyList<PrometheusSample> after, params string[] labels)
        => after.Sum(name, labels) - before.Sum(name, labels);

    private async Task<IReadOnlyList<PrometheusSample>[]> ScrapeSilosAsync()
        => await Task.WhenAll(Enumerable.Range(1, LocalCluster.Silos).Select(i => ScrapeAsync(cluster.SiloHttp(i))));

    private static async Task<IReadOnlyList<PrometheusSample>> ScrapeAsync(Uri node)
    {
        using var response = await Http.GetAsync(new Uri(node, "/metrics"));
        response.EnsureSuccessStatusCode();
        Assert.StartsWith("text/plain", response.Content.Headers.ContentType?.MediaType);
        return PrometheusText.Parse(await response.Content.ReadAsStringAsync());
    }
}
