using Microsoft.Extensions.Logging;
using Orleans.Concurrency;
using OrleansChat.Grains.Interfaces;

namespace OrleansChat.Grains;

/// <summary>
/// The gateways of the cluster, each with an observer and an expiry it renews. Reentrant: a disconnect waits for
/// every gateway's answer, and registrations must not queue behind it. After a re-activation (its silo died) the
/// registry is empty until the gateways renew (within their renewal interval); a disconnect in that window reaches
/// only the gateways registered again.
/// </summary>
[Reentrant]
public sealed partial class GatewayRegistryGrain(ILogger<GatewayRegistryGrain> logger) : Grain, IGatewayRegistryGrain
{
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(5);

    private readonly Dictionary<string, (IGatewayObserver Observer, DateTime ExpiresAt)> _gateways = new(StringComparer.Ordinal);

    public Task Register(string gatewayId, IGatewayObserver observer, TimeSpan lifetime)
    {
        _gateways[gatewayId] = (observer, DateTime.UtcNow + lifetime);
        return Task.CompletedTask;
    }

    public Task Unregister(string gatewayId)
    {
        _gateways.Remove(gatewayId);
        return Task.CompletedTask;
    }

    public async Task<int> DisconnectUser(string user)
    {
        var now = DateTime.UtcNow;
        foreach (var (gatewayId, gateway) in _gateways.ToArray())
        {
            if (gateway.ExpiresAt < now)
            {
                _gateways.Remove(gatewayId);
            }
        }

        var calls = _gateways.Select(async pair =>
        {
            try
            {
                return await pair.Value.Observer.DisconnectUser(user).WaitAsync(CallTimeout);
            }
            catch (Exception ex)
            {
                // Gone or stuck: it renews if it is alive, and its connections die with it if it is not.
                LogGatewayFailed(logger, ex, pair.Key);
                return 0;
            }
        });
        return (await Task.WhenAll(calls)).Sum();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Gateway {Gateway} did not answer a disconnect")]
    private static partial void LogGatewayFailed(ILogger logger, Exception exception, string gateway);
}
