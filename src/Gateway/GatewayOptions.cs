using System.Net;
using Microsoft.Extensions.Options;

namespace OrleansChat.Gateway;

/// <summary>Every limit and interval of the gateway, bound from the <c>Gateway</c> section. Defaults are the
/// protocol's. A bad value stops the process at start-up with a message naming the key.</summary>
public sealed class GatewayOptions
{
    public const string Section = "Gateway";

    /// <summary>Seconds between WebSocket pings; a peer silent for two intervals is closed. Default 15.</summary>
    public int HeartbeatSeconds { get; set; } = 15;

    public RateLimitOptions RateLimit { get; set; } = new();

    /// <summary>Largest client frame after reassembly, in bytes; larger: close 1009. Default 16 KiB.</summary>
    public int MaxMessageBytes { get; set; } = 16 * 1024;

    /// <summary>Largest message text in UTF-8 bytes; larger: <c>too_large</c>. Default 4096.</summary>
    public int MaxTextBytes { get; set; } = 4096;

    /// <summary>Rooms one connection may have joined at once. Default 50.</summary>
    public int MaxRoomsPerConnection { get; set; } = 50;

    /// <summary>Events queued per connection before it is a slow consumer (close 1013). Default 1024.</summary>
    public int OutboundQueue { get; set; } = 1024;

    public FlowControlOptions FlowControl { get; set; } = new();

    public LimitsOptions Limits { get; set; } = new();

    /// <summary>Reverse proxies (IP addresses or CIDR networks) whose <c>X-Forwarded-*</c> headers are believed:
    /// the client address that limits count comes from them. Loopback is always trusted.</summary>
    public string[] TrustedProxies { get; set; } = [];

    /// <summary>A <see cref="TrustedProxies"/> entry as a network (a single address is its own /32 or /128), or
    /// null when it is neither.</summary>
    public static IPNetwork? ParseProxy(string proxy)
        => IPNetwork.TryParse(proxy, out var network) ? network
            : IPAddress.TryParse(proxy, out var address) ? new IPNetwork(address, address.GetAddressBytes().Length * 8)
            : null;

    /// <summary>Kernel send buffer of each client socket, in bytes; 0 (default): the kernel's autotuning (up to
    /// 4 MiB on Linux). What a client that stops reading absorbs before its queue fills and it holds its
    /// rooms back; a small fixed buffer also bounds kernel memory per connection.</summary>
    public int SocketSendBufferBytes { get; set; }

    /// <summary>Origins allowed besides the request's own (and localhost in Development).</summary>
    public string[] AllowedOrigins { get; set; } = [];

    public AuthOptions Auth { get; set; } = new();

    public ApiOptions Api { get; set; } = new();

    /// <summary>Name of this gateway in <c>welcome</c>. Default: host name and process id.</summary>
    public string? NodeName { get; set; }

    /// <summary>Seconds between renewals of this gateway's room subscriptions. A re-activated room grain has
    /// forgotten its subscribers, so this bounds how long a room can go without pushing to us. Default 5.</summary>
    public int SubscriptionRenewSeconds { get; set; } = 5;

    /// <summary>Seconds a stopping gateway (SIGTERM) takes at most: <c>/readyz</c> answers 503 at once, sockets
    /// are closed with 1001 after a short grace, and the process exits within this time. Default 10.</summary>
    public int DrainSeconds { get; set; } = 10;

    public TimeSpan HeartbeatInterval => TimeSpan.FromSeconds(HeartbeatSeconds);

    public int HighWater => FlowControl.HighWater ?? Math.Max(1, OutboundQueue / 4);

    public int LowWater => FlowControl.LowWater ?? HighWater / 4;

    public TimeSpan DrainTime => TimeSpan.FromSeconds(DrainSeconds);

    public TimeSpan RenewInterval => TimeSpan.FromSeconds(SubscriptionRenewSeconds);
}

public sealed class RateLimitOptions
{
    /// <summary><c>send</c> frames per second per connection. Default 20.</summary>
    public double PerSecond { get; set; } = 20;

    /// <summary>Bucket size. Default 40.</summary>
    public int Burst { get; set; } = 40;
}

/// <summary>Flow control (docs/architecture.md): a connection whose outbound queue is above the high-water
/// mark holds back the rooms that feed it (their senders wait) until it drains to the low-water mark; one
/// whose socket takes nothing for <see cref="StuckMilliseconds"/> meanwhile is stuck and closed with 1013.</summary>
public sealed class FlowControlOptions
{
    /// <summary>Queued events above which a connection holds its rooms back. Default: a quarter of
    /// <c>Gateway:OutboundQueue</c> (256).</summary>
    public int? HighWater { get; set; }

    /// <summary>Queued events a connection must drain to before its rooms go on. Default: a quarter of the
    /// high-water mark (64).</summary>
    public int? LowWater { get; set; }

    /// <summary>How long a connection that holds a room back may write nothing to its socket before it is
    /// closed with 1013 (stuck). Bounds how long a stuck client holds its rooms back. Default 500.</summary>
    public int StuckMilliseconds { get; set; } = 500;

    public TimeSpan StuckAfter => TimeSpan.FromMilliseconds(StuckMilliseconds);
}

/// <summary>What one client address or one user may open (SECURITY.md). Refusals before the upgrade are HTTP 429
/// with a reason (and <c>Retry-After</c> for rates); a connection that sends nothing is closed with 1008.</summary>
public sealed class LimitsOptions
{
    /// <summary>Open connections of one user on this gateway. Default 100.</summary>
    public int ConnectionsPerUser { get; set; } = 100;

    /// <summary>Open connections from one client address on this gateway. Default 1000 (an office behind NAT).</summary>
    public int ConnectionsPerAddress { get; set; } = 1000;

    /// <summary>WebSocket handshakes (requests to <c>/ws</c>) per client address per second. Default 100.</summary>
    public int HandshakesPerSecond { get; set; } = 100;

    /// <summary>Handshakes one address may make at once before the rate applies: by default as many as it may
    /// hold open (1000), so reconnecting everyone after a gateway restart is not refused.</summary>
    public int HandshakeBurst { get; set; } = 1000;

    /// <summary>Seconds a client has to send its request headers (the upgrade request). Default 10.</summary>
    public int HandshakeSeconds { get; set; } = 10;

    /// <summary>Seconds after the upgrade within which the first frame must arrive; else close 1008. Default 30.</summary>
    public int FirstFrameSeconds { get; set; } = 30;

    public TimeSpan FirstFrameTime => TimeSpan.FromSeconds(FirstFrameSeconds);

    /// <summary>History REST requests per client address per second (burst twice that). Default 50.</summary>
    public int HistoryPerSecond { get; set; } = 50;
}

public sealed class AuthOptions
{
    /// <summary><c>open</c> (user from <c>?user=</c>) or <c>jwt</c> (user from the token's <c>sub</c>).</summary>
    public string Mode { get; set; } = "open";

    public string? SigningKey { get; set; }

    public string? Issuer { get; set; }

    public string? Audience { get; set; }

    public bool IsJwt => string.Equals(Mode, "jwt", StringComparison.OrdinalIgnoreCase);
}

/// <summary>The server API (<c>/api/...</c> for the application's backend): on only when a key is set.</summary>
public sealed class ApiOptions
{
    /// <summary>The bearer key every server API call must carry. Unset (default): the server API answers 404.</summary>
    public string? Key { get; set; }

    public bool Enabled => !string.IsNullOrEmpty(Key);
}

/// <summary>Start-up validation: each failure names the configuration key and the rule.</summary>
internal sealed class GatewayOptionsValidator : IValidateOptions<GatewayOptions>
{
    public ValidateOptionsResult Validate(string? name, GatewayOptions o)
    {
        var errors = new List<string>();
        Check(o.HeartbeatSeconds is >= 1 and <= 3600, "Gateway:HeartbeatSeconds must be between 1 and 3600");
        Check(o.RateLimit.PerSecond is > 0 and <= 1_000_000, "Gateway:RateLimit:PerSecond must be greater than 0");
        Check(o.RateLimit.Burst is >= 1 and <= 1_000_000, "Gateway:RateLimit:Burst must be at least 1");
        Check(o.MaxMessageBytes is >= 256 and <= 16 * 1024 * 1024, "Gateway:MaxMessageBytes must be between 256 and 16777216");
        Check(o.MaxTextBytes is >= 1 and <= 1024 * 1024, "Gateway:MaxTextBytes must be between 1 and 1048576");
        Check(o.MaxRoomsPerConnection >= 1, "Gateway:MaxRoomsPerConnection must be at least 1");
        Check(o.OutboundQueue >= 4, "Gateway:OutboundQueue must be at least 4");
        Check(o.HighWater >= 1 && o.HighWater < o.OutboundQueue, "Gateway:FlowControl:HighWater must be at least 1 and below Gateway:OutboundQueue");
        Check(o.LowWater >= 0 && o.LowWater < o.HighWater, "Gateway:FlowControl:LowWater must be at least 0 and below Gateway:FlowControl:HighWater");
        Check(o.FlowControl.StuckMilliseconds is >= 10 and <= 600_000, "Gateway:FlowControl:StuckMilliseconds must be between 10 and 600000");
        Check(o.SocketSendBufferBytes is >= 0 and <= 64 * 1024 * 1024, "Gateway:SocketSendBufferBytes must be between 0 (the kernel's default) and 67108864");
        Check(o.SubscriptionRenewSeconds is >= 1 and <= 3600, "Gateway:SubscriptionRenewSeconds must be between 1 and 3600");
        Check(o.DrainSeconds is >= 1 and <= 300, "Gateway:DrainSeconds must be between 1 and 300");
        Check(o.Limits.ConnectionsPerUser >= 1, "Gateway:Limits:ConnectionsPerUser must be at least 1");
        Check(o.Limits.ConnectionsPerAddress >= 1, "Gateway:Limits:ConnectionsPerAddress must be at least 1");
        Check(o.Limits.HandshakesPerSecond >= 1, "Gateway:Limits:HandshakesPerSecond must be at least 1");
        Check(o.Limits.HandshakeBurst >= 1, "Gateway:Limits:HandshakeBurst must be at least 1");
        Check(o.Limits.HandshakeSeconds is >= 1 and <= 600, "Gateway:Limits:HandshakeSeconds must be between 1 and 600");
        Check(o.Limits.FirstFrameSeconds is >= 1 and <= 3600, "Gateway:Limits:FirstFrameSeconds must be between 1 and 3600");
        Check(o.Limits.HistoryPerSecond >= 1, "Gateway:Limits:HistoryPerSecond must be at least 1");
        Check(o.TrustedProxies.All(proxy => GatewayOptions.ParseProxy(proxy) is not null),
            $"Gateway:TrustedProxies must be IP addresses or CIDR networks (got '{string.Join(", ", o.TrustedProxies)}')");
        Check(o.Auth.IsJwt || string.Equals(o.Auth.Mode, "open", StringComparison.OrdinalIgnoreCase), $"Gateway:Auth:Mode must be 'open' or 'jwt' (got '{o.Auth.Mode}')");
        Check(!o.Auth.IsJwt || o.Auth.SigningKey is { Length: >= 32 }, "Gateway:Auth:SigningKey must be set to at least 32 characters when Gateway:Auth:Mode is 'jwt'");
        Check(o.Api.Key is null || o.Api.Key.Length >= 16, "Gateway:Api:Key must be at least 16 characters when set");
        foreach (var origin in o.AllowedOrigins)
        {
            Check(Uri.TryCreate(origin, UriKind.Absolute, out _), $"Gateway:AllowedOrigins has '{origin}', which is not an absolute origin such as https://chat.example.com");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);

        void Check(bool ok, string message)
        {
            if (!ok)
            {
                errors.Add(message);
            }
        }
    }
}
