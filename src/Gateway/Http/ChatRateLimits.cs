using System.Globalization;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Options;

namespace OrleansChat.Gateway.Http;

/// <summary>
/// Request rates per client address, with ASP.NET Core's rate limiter: WebSocket handshakes
/// (<c>Gateway:Limits:HandshakesPerSecond</c>, <c>HandshakeBurst</c>) and history REST requests
/// (<c>Gateway:Limits:HistoryPerSecond</c>). Token buckets per address; a refusal is 429 with <c>Retry-After</c>
/// and a one-line reason. The address is the client's as a trusted proxy forwarded it.
/// </summary>
public static class ChatRateLimits
{
    public const string Handshakes = "handshakes";
    public const string History = "history";

    public static IServiceCollection AddChatRateLimits(this IServiceCollection services)
    {
        services.AddRateLimiter(_ => { });
        services.AddOptions<RateLimiterOptions>().Configure<IOptions<GatewayOptions>>((limiter, gateway) =>
        {
            var limits = gateway.Value.Limits;
            limiter.AddPolicy(Handshakes, context => PerAddress(context, limits.HandshakesPerSecond, limits.HandshakeBurst));
            limiter.AddPolicy(History, context => PerAddress(context, limits.HistoryPerSecond, limits.HistoryPerSecond * 2));
            limiter.OnRejected = RejectAsync;
        });
        return services;
    }

    private static RateLimitPartition<string> PerAddress(HttpContext context, int perSecond, int burst)
        => RateLimitPartition.GetTokenBucketLimiter(context.Connection.RemoteIpAddress?.ToString() ?? "unknown", _ => new TokenBucketRateLimiterOptions
        {
            TokenLimit = burst,
            TokensPerPeriod = perSecond,
            ReplenishmentPeriod = TimeSpan.FromSeconds(1),
            QueueLimit = 0,
            AutoReplenishment = true,
        });

    private static async ValueTask RejectAsync(OnRejectedContext rejected, CancellationToken cancellationToken)
    {
        var response = rejected.HttpContext.Response;
        var retryAfter = rejected.Lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds)) : 1;
        response.StatusCode = StatusCodes.Status429TooManyRequests;
        response.Headers.RetryAfter = retryAfter.ToString(CultureInfo.InvariantCulture);
        response.ContentType = "text/plain; charset=utf-8";
        var handshake = rejected.HttpContext.Request.Path.StartsWithSegments("/ws");
        if (handshake)
        {
            rejected.HttpContext.RequestServices.GetService<GatewayMetrics>()?.Refused("handshake_rate");
        }

        var what = handshake ? "connection attempts" : "requests";
        await response.WriteAsync($"too many {what} from this address; retry after {retryAfter} s\n", cancellationToken);
    }
}
