using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using Orleans.Configuration;

namespace OrleansChat.Grains;

/// <summary>Wires a silo that hosts chat rooms. Used by the Silo host, by the Gateway in embedded mode
/// and by test clusters, so every mode reads the same configuration keys.</summary>
public static class ChatSiloHosting
{
    public const string DefaultClusterId = "orleanschat";
    public const string DefaultServiceId = "OrleansChat";

    /// <summary>Room grains and their message store (in memory unless <c>ConnectionStrings:Messages</c> is set).</summary>
    public static ISiloBuilder AddChatRooms(this ISiloBuilder silo, IConfiguration configuration)
    {
        ChatDiagnostics.Register();
        silo.Services.AddOptions<RoomOptions>()
            .Configure(options => options.MaxTextBytes = configuration.GetValue("Gateway:MaxTextBytes", options.MaxTextBytes))
            .Validate(options => options.MaxTextBytes > 0, "Gateway:MaxTextBytes must be positive.")
            .ValidateOnStart();
        if (configuration.GetConnectionString("Messages") is { Length: > 0 } messages)
        {
            silo.AddPostgresMessageStore(messages);
        }

        silo.Services.TryAddSingleton<IMessageStore, InMemoryMessageStore>();
        silo.Services.TryAddSingleton<IReadStateStore, InMemoryReadStateStore>();
        silo.Services.TryAddSingleton<IBanStore, InMemoryBanStore>();
        return silo;
    }

    /// <summary>The PostgreSQL message store on one pooled data source; the silo migrates the schema before
    /// it accepts grain calls, and does not start if it cannot.</summary>
    public static ISiloBuilder AddPostgresMessageStore(this ISiloBuilder silo, string connectionString)
    {
        silo.Services.TryAddSingleton(services =>
        {
            var builder = new NpgsqlDataSourceBuilder(connectionString);
            var settings = builder.ConnectionStringBuilder;
            // The store runs a handful of statements thousands of times a second: prepared once per pooled
            // connection, PostgreSQL skips parsing and planning them (a profile under load showed its parser
            // near the top). It sets no session state, so a connection going back to the pool needs no reset
            // (DISCARD ALL) either. A connection string that sets Max Auto Prepare keeps its value.
            if (settings.MaxAutoPrepare == 0)
            {
                settings.MaxAutoPrepare = 16;
            }

            settings.NoResetOnClose = true;

            return builder.UseLoggerFactory(services.GetRequiredService<ILoggerFactory>()).Build();
        });
        silo.Services.TryAddSingleton<IMessageStore, PostgresMessageStore>();
        silo.Services.TryAddSingleton<IReadStateStore, PostgresReadStateStore>();
        silo.Services.TryAddSingleton<IBanStore, PostgresBanStore>();
        silo.Services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>, PostgresSchemaMigration>();
        return silo;
    }

    /// <summary>
    /// Clustering from configuration: with <c>Orleans:Clustering:ProviderType</c> set (Redis), Orleans reads its
    /// own keys; otherwise localhost clustering on <c>Orleans:Endpoints:SiloPort</c>/<c>GatewayPort</c> with
    /// the primary silo at <c>Cluster:PrimarySiloPort</c>. With <paramref name="freePortsByDefault"/> (the
    /// embedded silo) unset ports are chosen free, so several embedded gateways run side by side.
    /// </summary>
    public static ISiloBuilder UseChatClustering(this ISiloBuilder silo, IConfiguration configuration, bool freePortsByDefault)
    {
        if (!string.IsNullOrEmpty(configuration["Orleans:Clustering:ProviderType"]))
        {
            return silo;
        }

        var siloPort = configuration.GetValue<int?>("Orleans:Endpoints:SiloPort") ?? (freePortsByDefault ? FreeTcpPort() : 11111);
        var gatewayPort = configuration.GetValue<int?>("Orleans:Endpoints:GatewayPort") ?? (freePortsByDefault ? FreeTcpPort() : 30000);
        var primaryPort = configuration.GetValue<int?>("Cluster:PrimarySiloPort") ?? siloPort;
        return silo.UseLocalhostClustering(
            siloPort,
            gatewayPort,
            new IPEndPoint(IPAddress.Loopback, primaryPort),
            configuration["Orleans:ServiceId"] ?? DefaultServiceId,
            configuration["Orleans:ClusterId"] ?? DefaultClusterId);
    }

    /// <summary>Adds a chat silo to a host (the Silo process, or the Gateway in embedded mode).</summary>
    public static IHostApplicationBuilder AddChatSilo(this IHostApplicationBuilder builder, bool freePortsByDefault = false)
    {
        builder.UseOrleans(silo =>
        {
            silo.UseChatClustering(builder.Configuration, freePortsByDefault).AddChatRooms(builder.Configuration);
            silo.Configure<ClusterMembershipOptions>(membership =>
            {
                // Failover (docs/operations.md): with Orleans' defaults a silo killed with -9 was declared dead
                // (and its rooms re-activated elsewhere) 5-11 s later. Probes every 2 s (Orleans adapts each
                // silo's timeout between 1 and 8 s to the probe times it sees) and 2 missed probes, confirmed by
                // an indirect probe and voted by 2 silos, bring that to about 3-4 s without false suspicions on
                // a loaded 2-core machine (measured: docs/operations.md). Orleans:Membership:* overrides.
                membership.ProbeTimeout = TimeSpan.FromSeconds(2);
                membership.NumMissedProbesLimit = 2;
            });
            silo.Configure<ClusterMembershipOptions>(builder.Configuration.GetSection("Orleans:Membership"));
            // How long an idle room stays activated (Orleans' default: 15 minutes); the soak shortens it to see
            // activations go (bench/soak.sh).
            silo.Configure<GrainCollectionOptions>(builder.Configuration.GetSection("Orleans:GrainCollection"));
            if (ChatDiagnostics.TracingEnabled(builder.Configuration))
            {
                silo.AddActivityPropagation();
            }
        });
        return builder;
    }

    private static int FreeTcpPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

/// <summary>Migrates the message store's schema while the silo starts, before grains can be activated.</summary>
internal sealed class PostgresSchemaMigration(NpgsqlDataSource dataSource, ILogger<PostgresSchemaMigration> logger)
    : ILifecycleParticipant<ISiloLifecycle>
{
    public void Participate(ISiloLifecycle lifecycle)
        => lifecycle.Subscribe(nameof(PostgresSchemaMigration), ServiceLifecycleStage.RuntimeStorageServices,
            cancellationToken => PostgresSchema.MigrateAsync(dataSource, logger, cancellationToken));
}
