using Microsoft.AspNetCore.HttpOverrides;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using OrleansChat.Gateway.Connections;
using OrleansChat.Gateway.Http;
using OrleansChat.Gateway.Rooms;
using OrleansChat.Grains;
using OrleansChat.Hosting;

namespace OrleansChat.Gateway;

/// <summary>Wires the gateway: options, the Orleans side (embedded silo or client), the room hub and the
/// connection registry. Configuration keys are those of docs/architecture.md.</summary>
public static class GatewayHosting
{
    public const string DefaultUrl = "http://localhost:8080";

    public static WebApplicationBuilder AddChatGateway(this WebApplicationBuilder builder)
    {
        var configuration = builder.Configuration;
        builder.Services.AddOptions<GatewayOptions>().Bind(configuration.GetSection(GatewayOptions.Section)).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<GatewayOptions>, GatewayOptionsValidator>();

        if (!ChatHttp.HasConfiguredUrls(configuration))
        {
            builder.WebHost.UseUrls(DefaultUrl);
        }

        if (configuration.GetValue<int>($"{GatewayOptions.Section}:{nameof(GatewayOptions.SocketSendBufferBytes)}") is > 0 and var sendBuffer)
        {
            // Accepted sockets inherit the listening socket's send buffer (Linux): it caps what a client that
            // stops reading absorbs in the kernel before its outbound queue (and flow control) sees it.
            builder.WebHost.UseSockets(sockets => sockets.CreateBoundListenSocket = endpoint =>
            {
                var socket = SocketTransportOptions.CreateDefaultBoundListenSocket(endpoint);
                socket.SendBufferSize = sendBuffer;
                return socket;
            });
        }

        var mode = configuration["Cluster:Mode"] ?? "Embedded";
        var embedded = string.Equals(mode, "Embedded", StringComparison.OrdinalIgnoreCase);
        if (embedded)
        {
            // A silo in this process: the one-command chat. Free ports unless configured, so several
            // embedded gateways can run side by side (each its own single-silo cluster).
            builder.AddChatSilo(freePortsByDefault: true);
        }
        else if (string.Equals(mode, "Client", StringComparison.OrdinalIgnoreCase))
        {
            builder.UseOrleansClient(client =>
            {
                if (string.IsNullOrEmpty(configuration["Orleans:Clustering:ProviderType"]))
                {
                    client.UseLocalhostClustering(
                        ParsePorts(configuration["Cluster:GatewayPorts"] ?? "30000"),
                        configuration["Orleans:ServiceId"] ?? ChatSiloHosting.DefaultServiceId,
                        configuration["Orleans:ClusterId"] ?? ChatSiloHosting.DefaultClusterId);
                }

                // A call in flight when its silo dies only fails at the response timeout: keep it short so
                // the sender hears "unavailable" (and retries) within seconds, not half a minute.
                client.Configure<ClientMessagingOptions>(messaging => messaging.ResponseTimeout = TimeSpan.FromSeconds(10));
                if (ChatDiagnostics.TracingEnabled(configuration))
                {
                    client.AddActivityPropagation();
                }
            });
        }
        else
        {
            throw new GatewayConfigurationException($"Cluster:Mode must be 'Embedded' or 'Client' (got '{mode}').");
        }

        builder.Services.AddOptions<ForwardedHeadersOptions>().Configure<IOptions<GatewayOptions>>((forwarded, gateway) =>
        {
            forwarded.ForwardedHeaders = ForwardedHeaders.XForwardedFor | ForwardedHeaders.XForwardedProto | ForwardedHeaders.XForwardedHost;
            // Loopback stays trusted (ASP.NET Core's default); compose adds the proxy's network.
            foreach (var proxy in gateway.Value.TrustedProxies)
            {
                forwarded.KnownIPNetworks.Add(GatewayOptions.ParseProxy(proxy)!.Value);
            }
        });
        builder.Services.AddOptions<KestrelServerOptions>().Configure<IOptions<GatewayOptions>>((kestrel, gateway) =>
            kestrel.Limits.RequestHeadersTimeout = TimeSpan.FromSeconds(gateway.Value.Limits.HandshakeSeconds));
        builder.Services.AddSingleton<ConnectionLimits>();
        builder.Services.AddChatRateLimits();
        builder.Services.AddSingleton<GatewayMetrics>();
        builder.AddChatTelemetry("orleanschat-gateway");
        builder.AddChatHealthChecks(usesStore: embedded).AddCheck<GatewayReadiness>("gateway", tags: [ChatHealth.ReadyTag]);
        // The host's stop (connections drained, rooms unsubscribed, cluster client closed) fits in the drain time.
        builder.Services.AddOptions<HostOptions>().Configure<IOptions<GatewayOptions>>((host, gateway) => host.ShutdownTimeout = gateway.Value.DrainTime);
        builder.Services.AddSingleton<AccessPolicy>();
        // Registered after Orleans so they stop before it (reverse order): connections close with 1001 and
        // leave their rooms, then the hub unsubscribes, then the cluster client goes.
        builder.Services.AddSingleton<RoomHub>();
        builder.Services.AddHostedService(services => services.GetRequiredService<RoomHub>());
        builder.Services.AddSingleton<ConnectionRegistry>();
        builder.Services.AddHostedService(services => services.GetRequiredService<ConnectionRegistry>());
        builder.Services.AddOpenApi();
        return builder;
    }

    public static WebApplication UseChatGateway(this WebApplication app)
    {
        // Behind a trusted proxy (loopback by default), scheme and host come from X-Forwarded-*: the
        // origin check compares against what the browser used.
        app.UseForwardedHeaders();
        app.UseRateLimiter();
        app.UseWebSockets();
        app.Lifetime.ApplicationStarted.Register(() =>
        {
            var addresses = app.Urls.Count > 0 ? string.Join(", ", app.Urls) : DefaultUrl;
            app.Logger.LogInformation("OrleansChat gateway ready: open {Urls}", addresses);
        });
        return app;
    }

    /// <summary>Checks Redis (and PostgreSQL in embedded mode) before starting: a wrong address or a server
    /// that is down gives one line naming the setting, not a stack trace. False when the process must exit.</summary>
    public static async Task<bool> PassesStartupChecksAsync(this WebApplication app)
    {
        if (await ChatStartupChecks.FindProblemAsync(app.Services, app.Configuration) is not { } problem)
        {
            return true;
        }

        await Console.Error.WriteLineAsync($"OrleansChat.Gateway: {problem}");
        return false;
    }

    private static int[] ParsePorts(string ports)
    {
        try
        {
            return [.. ports.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(int.Parse)];
        }
        catch (FormatException)
        {
            throw new GatewayConfigurationException($"Cluster:GatewayPorts must be a comma-separated list of ports (got '{ports}').");
        }
    }
}

/// <summary>A configuration value the gateway cannot start with; the message names the key.</summary>
public sealed class GatewayConfigurationException(string message) : Exception(message);
