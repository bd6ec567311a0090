using StackExchange.Redis;

namespace OrleansChat.Bench.SignalRChat;

/// <summary>Wiring of the baseline: default SignalR options, an optional Redis backplane, quiet logging.</summary>
public static class SignalRChatHosting
{
    /// <summary>
    /// <c>--redis host:port</c> (configuration key <c>Redis</c>) turns on the Redis backplane: a group then spans
    /// every node, as in a scaled-out SignalR deployment (each message goes through Redis to every node).
    /// </summary>
    public static IHostApplicationBuilder AddSignalRChat(this IHostApplicationBuilder builder)
    {
        builder.Logging.SetMinimumLevel(LogLevel.Warning);

        var signalR = builder.Services.AddSignalR();
        if (builder.Configuration["Redis"] is { Length: > 0 } redis)
        {
            // Every node of one deployment must use the same prefix; a different one keeps a second
            // deployment on the same Redis apart (RedisChannelPrefix, default "signalrchat").
            signalR.AddStackExchangeRedis(redis, options =>
                options.Configuration.ChannelPrefix = RedisChannel.Literal(builder.Configuration["RedisChannelPrefix"] ?? "signalrchat"));
        }

        return builder;
    }

    public static WebApplication MapSignalRChat(this WebApplication app)
    {
        app.MapHub<ChatHub>("/chat");
        app.MapGet("/healthz", () => Results.Text("ok\n"));
        return app;
    }
}
