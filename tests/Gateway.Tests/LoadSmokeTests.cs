using OrleansChat.LoadTool;
using Xunit.Abstractions;

namespace OrleansChat.Gateway.Tests;

/// <summary>The benchmark's load generator, in-process against a real gateway: the CI smoke scenario must
/// deliver every message to every member once and in order.</summary>
[Collection(ClusterCollection.Name)]
public sealed class LoadSmokeTests(ClusterFixture fixture, ITestOutputHelper output)
{
    [Fact]
    public async Task Smoke_scenario_delivers_every_message_once_in_order()
    {
        var settings = LoadSettings.ForScenario(LoadScenario.Smoke, LoadProtocol.OrleansChat, [fixture.A.WsAddress.ToString()], "gw-a");
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
