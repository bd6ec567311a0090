using Microsoft.Extensions.Diagnostics.HealthChecks;
using OrleansChat.Gateway.Connections;
using OrleansChat.Gateway.Rooms;

namespace OrleansChat.Gateway.Http;

/// <summary>Readiness of the gateway itself: it reaches the cluster (its last grain call went through) and it is
/// not draining (a stopping gateway answers 503 at once, before it closes its sockets).</summary>
internal sealed class GatewayReadiness(RoomHub hub, ConnectionRegistry connections) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        => Task.FromResult(
            connections.Draining ? HealthCheckResult.Unhealthy("draining: the gateway is shutting down")
            : hub.ClusterReachable ? HealthCheckResult.Healthy($"{connections.Count} connections, {hub.RoomCount} rooms")
            : HealthCheckResult.Unhealthy("the cluster cannot be reached"));
}
