namespace OrleansChat.Cluster.Tests;

/// <summary>The protocol additions across the two gateways of the local multi-process cluster (3 silos, Redis
/// membership, PostgreSQL store), with the gateways' default limits.</summary>
[Collection(ChaosCollection.Name)]
public sealed class AdditionsTests(LocalCluster cluster) : AdditionsContract, IAsyncLifetime
{
    protected override Uri GatewayA => cluster.Gateway1;

    protected override Uri GatewayB => cluster.Gateway2;

    protected override Uri RateLimitedGateway => cluster.Gateway1;

    /// <summary>An earlier test may have stopped a node.</summary>
    public Task InitializeAsync() => cluster.RestoreAsync();

    public Task DisposeAsync() => Task.CompletedTask;
}
