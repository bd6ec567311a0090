using OrleansChat.LoadTool;
using Xunit.Abstractions;

namespace OrleansChat.Gateway.Tests;

/// <summary>The benchmark's load generator, in-process against a real embedded gateway (its own silo and
/// in-memory store, as `bench/run.sh` runs it): the CI smoke scenario must deliver every message to every
/// member once and in order. In the gateway collection so it does not run beside the cluster tests.</summary>
[Collection(ClusterCollection.Name)]
public sealed class LoadSmokeTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Smoke_scenario_delivers_every_message_once_in_order()
    {
        await using var gateway = new GatewayFactory(new Dictionary<string, string?>
        {
            ["Cluster:Mode"] = "Embedded",
            ["Gateway:NodeName"] = "gw-embedded",
            ["Gateway:RateLimit:PerSecond"] = "1000000",
            ["Gateway:RateLimit:Burst"] = "1000000",
            ["Gateway:Limits:HandshakesPerSecond"] = "1000000",
            ["Gateway:Limits:HandshakeBurst"] = "1000000",
            ["Gateway:Limits:ConnectionsPerAddress"] = "1000000",
        }).Start();
        var settings = LoadSettings.ForScenario(LoadScenario.Smoke, LoadProtocol.OrleansChat, [gateway.WsAddress.ToString()], "embedded");
        using var log = new StringWriter();

        var result = await LoadRunner.RunAsync(settings, log);
        output.WriteLine(log.ToString());

        Assert.Equal(20, result.Connections);
        Assert.Equal(0, result.ConnectionsFailed);
        Assert.True(result.DeliveriesInWindow > 0, "no deliveries in the measured window");
        Assert.Equal(0, result.Missing);
        Assert.Equal(0, result.Duplicates);
        Assert.Equal(0, result.OutOfOrder);
        Assert.True(result.Passed);
    }
}
