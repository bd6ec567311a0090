using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Orleans.TestingHost;
using OrleansChat.Grains;

namespace OrleansChat.Gateway.Tests;

/// <summary>A 3-silo test cluster on real TCP (so gateways connect as separate Orleans clients would) and
/// gateways in client mode in front of it. Started once per collection.</summary>
public class ClusterFixture : IAsyncLifetime
{
    public const string SigningKey = "test-signing-key-that-is-long-enough-0123456789";

    /// <summary>The server API's key on gateways A, B and Jwt (Strict and Tiny have none: their API is off).</summary>
    public const string ApiKey = "server-api-key-for-tests-0123456789";

    public TestCluster Cluster { get; private set; } = null!;

    /// <summary>Two ordinary gateways (generous rate limit so ordering tests are not throttled).</summary>
    public GatewayFactory A { get; private set; } = null!;

    public GatewayFactory B { get; private set; } = null!;

    /// <summary>Protocol defaults for rate limits, a 2 s heartbeat, 5 rooms.</summary>
    public GatewayFactory Strict { get; private set; } = null!;

    /// <summary>A 256-event outbound queue (a quarter of the default), to make slow consumers sooner.</summary>
    public GatewayFactory Tiny { get; private set; } = null!;

    /// <summary>Auth mode jwt.</summary>
    public GatewayFactory Jwt { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var builder = new TestClusterBuilder(3);
        builder.Options.ConnectionTransport = ConnectionTransportType.TcpSocket;
        builder.AddSiloBuilderConfigurator<SiloConfigurator>();
        Cluster = builder.Build();
        await Cluster.DeployAsync();

        A = StartGateway("gw-a", WithApiKey(Fast));
        B = StartGateway("gw-b", WithApiKey(Fast));
        StartMoreGateways();
    }

    protected virtual void StartMoreGateways()
    {
        Strict = StartGateway("gw-strict", new()
        {
            ["Gateway:HeartbeatSeconds"] = "2",
            ["Gateway:MaxRoomsPerConnection"] = "5",
        });
        Tiny = StartGateway("gw-tiny", new() { ["Gateway:OutboundQueue"] = "256" });
        Jwt = StartGateway("gw-jwt", WithApiKey(new()
        {
            ["Gateway:Auth:Mode"] = "jwt",
            ["Gateway:Auth:SigningKey"] = SigningKey,
            ["Gateway:Auth:Issuer"] = "orleanschat-tests",
        }));
    }

    /// <summary>A 64 KiB socket send buffer, so that a client that stops reading reaches its outbound queue
    /// (and flow control) after 64 KiB rather than the kernel's autotuned megabytes.</summary>
    protected static Dictionary<string, string?> Fast => new()
    {
        ["Gateway:RateLimit:PerSecond"] = "100000",
        ["Gateway:RateLimit:Burst"] = "100000",
        // Tests connect hundreds of clients from 127.0.0.1 in a burst; LimitsTests has its own gateways.
        ["Gateway:Limits:HandshakesPerSecond"] = "100000",
        ["Gateway:Limits:HandshakeBurst"] = "100000",
        ["Gateway:Limits:ConnectionsPerAddress"] = "100000",
        ["Gateway:SocketSendBufferBytes"] = "65536",
    };

    private static Dictionary<string, string?> WithApiKey(Dictionary<string, string?> settings)
    {
        settings["Gateway:Api:Key"] = ApiKey;
        return settings;
    }

    public GatewayFactory StartGateway(string name, Dictionary<string, string?> settings)
    {
        settings["Cluster:Mode"] = "Client";
        settings["Cluster:GatewayPorts"] = string.Join(",", Cluster.Silos.Select(silo => silo.GatewayAddress.Endpoint.Port));
        settings["Orleans:ClusterId"] = Cluster.Options.ClusterId;
        settings["Orleans:ServiceId"] = Cluster.Options.ServiceId;
        settings["Gateway:NodeName"] = name;
        settings["Gateway:SubscriptionRenewSeconds"] = "1";
        return new GatewayFactory(settings).Start();
    }

    public async Task DisposeAsync()
    {
        foreach (var gateway in new GatewayFactory?[] { A, B, Strict, Tiny, Jwt })
        {
            if (gateway is not null)
            {
                await gateway.DisposeAsync();
            }
        }

        if (Cluster is not null)
        {
            await Cluster.StopAllSilosAsync();
            await Cluster.DisposeAsync();
        }
    }

    /// <summary>All silos of the process share one store (and one read state store): it stands in for a durable database, so a room
    /// re-activated on another silo continues from what was stored.</summary>
    public sealed class SiloConfigurator : ISiloConfigurator
    {
        public static readonly InMemoryMessageStore Store = new();

        public static readonly InMemoryReadStateStore ReadState = new();

        public static readonly InMemoryBanStore Bans = new();

        public void Configure(ISiloBuilder siloBuilder)
        {
            siloBuilder.Services.AddSingleton<IMessageStore>(Store);
            siloBuilder.Services.AddSingleton<IReadStateStore>(ReadState);
            siloBuilder.Services.AddSingleton<IBanStore>(Bans);
            siloBuilder.AddChatRooms(new ConfigurationBuilder().Build());
        }
    }
}

[CollectionDefinition(Name)]
public sealed class ClusterCollection : ICollectionFixture<ClusterFixture>
{
    public const string Name = "gateway cluster";
}
