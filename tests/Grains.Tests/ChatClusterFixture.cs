using Microsoft.Extensions.DependencyInjection;
using Orleans.Configuration;
using Orleans.TestingHost;

namespace OrleansChat.Grains.Tests;

/// <summary>
/// Three in-process silos and a client, started once per collection. All silos share one message store
/// (registered before <c>AddChatRooms</c>, which only adds its own if none is there), so a room that
/// re-activates on another silo reads what its previous activation stored, as with PostgreSQL.
/// </summary>
public class ChatClusterFixture : IAsyncLifetime
{
    public const int SiloCount = 3;

    /// <summary>Small in-memory window, so history tests reach the store with a few hundred messages.</summary>
    public const int RecentMessages = 100;

    /// <summary>Client ids an activation loads: small, so dedupe beyond it is reachable with ~1,000 posts.</summary>
    public const int DedupeMessages = 1000;

    public FaultInjectingStore Store { get; } = new(new InMemoryMessageStore());

    public GatedReadStateStore ReadState { get; } = new();

    public InMemoryBanStore Bans { get; } = new();

    public InProcessTestCluster Cluster { get; private set; } = null!;

    public IClusterClient Client => Cluster.Client;

    public IRoomGrain Room(string room) => Client.GetGrain<IRoomGrain>(room);

    public async Task InitializeAsync()
    {
        var builder = new InProcessTestClusterBuilder(SiloCount);
        builder.Options.ConfigureFileLogging = false;
        builder.ConfigureSilo((_, silo) =>
        {
            silo.Services.AddSingleton<IMessageStore>(Store);
            silo.Services.AddSingleton<IReadStateStore>(ReadState);
            silo.Services.AddSingleton<IBanStore>(Bans);
            silo.AddChatRooms(silo.Configuration);
            silo.AddOutgoingGrainCallFilter<NotificationLoss>();
            silo.Services.Configure<RoomOptions>(options =>
            {
                options.RecentMessages = RecentMessages;
                options.DedupeMessages = DedupeMessages;
                // Expiry tests use sub-second lifetimes.
                options.ExpiryCheckInterval = TimeSpan.FromMilliseconds(100);
            });
        });
        Configure(builder);
        Cluster = builder.Build();
        await Cluster.DeployAsync();
    }

    public async Task DisposeAsync() => await Cluster.DisposeAsync();

    protected virtual void Configure(InProcessTestClusterBuilder builder)
    {
    }
}

/// <summary>Tests that leave the silos alone share one cluster.</summary>
[CollectionDefinition(Name)]
public sealed class ClusterCollection : ICollectionFixture<ChatClusterFixture>
{
    public const string Name = "cluster";
}

/// <summary>Failover tests stop and kill silos: they get their own cluster so they cannot disturb others.</summary>
public sealed class FailoverClusterFixture : ChatClusterFixture
{
    /// <summary>A call in flight on a killed silo gets no answer: fail it after this instead of the 30 s default,
    /// and let the caller retry with the same client id.</summary>
    public static readonly TimeSpan ResponseTimeout = TimeSpan.FromSeconds(5);

    protected override void Configure(InProcessTestClusterBuilder builder)
        => builder.ConfigureClient(client => client.Configure<ClientMessagingOptions>(options => options.ResponseTimeout = ResponseTimeout));
}

[CollectionDefinition(Name)]
public sealed class FailoverCollection : ICollectionFixture<FailoverClusterFixture>
{
    public const string Name = "failover";
}
