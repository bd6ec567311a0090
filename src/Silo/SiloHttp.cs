using Microsoft.Extensions.Diagnostics.HealthChecks;
using Orleans.Runtime;
using OrleansChat.Hosting;

namespace OrleansChat.Silo;

/// <summary>The silo's small HTTP endpoint: <c>/metrics</c>, <c>/healthz</c>, <c>/readyz</c> (and the dashboard
/// when enabled) on <c>Silo:HttpPort</c>, at localhost unless <c>--urls</c> says otherwise.</summary>
public static class SiloHttp
{
    public const string PortKey = "Silo:HttpPort";
    public const int DefaultPort = 8090;

    /// <summary>Null when the setting is good; otherwise a line naming the key.</summary>
    public static string? Configure(WebApplicationBuilder builder)
    {
        var configuration = builder.Configuration;
        if (ChatHttp.HasConfiguredUrls(configuration))
        {
            return null;
        }

        var value = configuration[PortKey];
        var port = DefaultPort;
        if (value is not null && (!int.TryParse(value, out port) || port is < 1 or > 65535))
        {
            return $"{PortKey} must be a TCP port between 1 and 65535 (got '{value}').";
        }

        builder.WebHost.UseUrls($"http://localhost:{port}");
        return null;
    }
}

/// <summary>Ready while this silo is an active member of the cluster and not shutting down.</summary>
internal sealed class SiloReadiness(IClusterMembershipService membership, ILocalSiloDetails silo, IHostApplicationLifetime lifetime) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (lifetime.ApplicationStopping.IsCancellationRequested)
        {
            return Task.FromResult(HealthCheckResult.Unhealthy("shutting down"));
        }

        var status = membership.CurrentSnapshot.GetSiloStatus(silo.SiloAddress);
        return Task.FromResult(status == SiloStatus.Active
            ? HealthCheckResult.Healthy($"active member {silo.SiloAddress.Endpoint}")
            : HealthCheckResult.Unhealthy($"membership status {status}"));
    }
}
