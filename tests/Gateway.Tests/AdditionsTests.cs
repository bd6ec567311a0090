namespace OrleansChat.Gateway.Tests;

/// <summary>The protocol additions across two gateways (client mode) of an in-process cluster.</summary>
[Collection(ClusterCollection.Name)]
public sealed class AdditionsTests(ClusterFixture fixture) : AdditionsContract
{
    protected override Uri GatewayA => fixture.A.WsAddress;

    protected override Uri GatewayB => fixture.B.WsAddress;

    protected override Uri RateLimitedGateway => fixture.Strict.WsAddress;
}

/// <summary>The protocol additions against the embedded gateway (its own silo, in-memory stores), as
/// <c>dotnet run</c> starts it, with its default limits. In the gateway collection so it does not run beside it.</summary>
[Collection(ClusterCollection.Name)]
public sealed class EmbeddedAdditionsTests(EmbeddedGateway embedded) : AdditionsContract, IClassFixture<EmbeddedGateway>
{
    protected override Uri GatewayA => embedded.Gateway.WsAddress;

    protected override Uri GatewayB => embedded.Gateway.WsAddress;

    protected override Uri RateLimitedGateway => embedded.Gateway.WsAddress;
}

public sealed class EmbeddedGateway : IAsyncLifetime
{
    public GatewayFactory Gateway { get; private set; } = null!;

    public Task InitializeAsync()
    {
        Gateway = new GatewayFactory(new Dictionary<string, string?>
        {
            ["Cluster:Mode"] = "Embedded",
            ["Gateway:NodeName"] = "gw-embedded",
        }).Start();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await Gateway.DisposeAsync();
}
