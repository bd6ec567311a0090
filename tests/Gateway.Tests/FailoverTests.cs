using Orleans.TestingHost;
using OrleansChat.Grains.Interfaces;

namespace OrleansChat.Gateway.Tests;

/// <summary>A cluster of its own (these tests stop silos) with two gateways.</summary>
public sealed class FailoverFixture : ClusterFixture
{
    protected override void StartMoreGateways()
    {
    }
}

[CollectionDefinition(Name)]
public sealed class FailoverCollection : ICollectionFixture<FailoverFixture>
{
    public const string Name = "gateway failover";
}

/// <summary>A silo dies mid-conversation: connected clients lose nothing and see nothing twice.</summary>
[Collection(FailoverCollection.Name)]
public sealed class FailoverTests(FailoverFixture fixture)
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Silo_lost_mid_conversation_loses_no_message_for_connected_clients(bool kill)
    {
        var (room, host) = await RoomOnSecondarySiloAsync();
        var clients = new List<ChatClient>();
        foreach (var (gateway, user) in new[] { (fixture.A, "sam"), (fixture.B, "sue"), (fixture.A, "ann"), (fixture.B, "ben"), (fixture.A, "cat"), (fixture.B, "dan") })
        {
            var client = await ChatClient.ConnectAsync(gateway, user);
            await client.JoinAsync(room);
            clients.Add(client);
        }

        // Two senders (they read their own acknowledgements) and four listeners, two on each gateway.
        var members = clients.Skip(2).ToArray();

        try
        {
            const int PerSender = 40;
            var halfway = new CountdownEvent(2);
            var senders = clients.Take(2).Select(sender => Task.Run(async () =>
            {
                for (var i = 0; i < PerSender; i++)
                {
                    if (i == PerSender / 2)
                    {
                        halfway.Signal();
                    }

                    await SendUntilAcknowledgedAsync(sender, room, $"{sender.User} #{i}", $"{sender.User}-{i}");
                    await Task.Delay(20);
                }
            })).ToArray();

            await Task.Run(() => halfway.Wait(TimeSpan.FromSeconds(60)));
            if (kill)
            {
                await fixture.Cluster.KillSiloAsync(host);
            }
            else
            {
                await fixture.Cluster.StopSiloAsync(host);
            }

            await Task.WhenAll(senders).WaitAsync(TimeSpan.FromSeconds(120));

            // Every id was acknowledged once and stored once: seqs 1..80, and every member, on either gateway,
            // receives each of them once, in order.
            const int Total = 2 * PerSender;
            foreach (var member in members)
            {
                var seqs = new List<long>();
                var ids = new HashSet<string>();
                while (seqs.Count < Total)
                {
                    var message = await member.WaitForAsync("message", timeout: TimeSpan.FromSeconds(60));
                    seqs.Add(message.GetProperty("seq").GetInt64());
                    ids.Add(message.GetProperty("id").GetString()!);
                }

                Assert.Equal(Enumerable.Range(1, Total).Select(i => (long)i), seqs);
                Assert.Equal(Total, ids.Count);
                var extra = await member.TryNextAsync(TimeSpan.FromMilliseconds(500));
                Assert.True(extra is null || extra.Value.GetProperty("type").GetString() != "message", $"{member.User} got a message twice");
            }

            var newHost = await fixture.Cluster.Client.GetGrain<IRoomGrain>(room).GetRuntimeIdentity();
            Assert.NotEqual(host.SiloAddress.ToString(), newHost);
        }
        finally
        {
            foreach (var client in clients)
            {
                await client.DisposeAsync();
            }

            await fixture.Cluster.StartAdditionalSiloAsync();
            await fixture.Cluster.WaitForLivenessToStabilizeAsync();
        }
    }

    /// <summary>Sends until the own copy arrives, resending with the same id after <c>unavailable</c>:
    /// what a client does, and what the protocol says is always safe.</summary>
    private static async Task SendUntilAcknowledgedAsync(ChatClient sender, string room, string text, string id)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            await sender.SendAsync(new { type = "send", room, text, id });
            while (true)
            {
                var e = await sender.NextAsync(TimeSpan.FromSeconds(30));
                var type = e.GetProperty("type").GetString();
                if (type == "message" && e.GetProperty("id").GetString() == id && e.GetProperty("user").GetString() == sender.User)
                {
                    return;
                }

                if (type == "error" && e.GetProperty("id").GetString() == id)
                {
                    Assert.Equal("unavailable", e.GetProperty("code").GetString());
                    Assert.True(DateTime.UtcNow < deadline, "the room did not come back");
                    await Task.Delay(200);
                    break;
                }
            }
        }
    }

    /// <summary>A fresh room hosted on a silo other than the primary (which holds the test cluster's
    /// membership and must stay up).</summary>
    private async Task<(string Room, SiloHandle Host)> RoomOnSecondarySiloAsync()
    {
        for (var attempt = 0; attempt < 100; attempt++)
        {
            var room = ProtocolTests.NewRoom();
            var identity = await fixture.Cluster.Client.GetGrain<IRoomGrain>(room).GetRuntimeIdentity();
            var host = fixture.Cluster.Silos.Single(silo => silo.SiloAddress.ToString() == identity);
            if (host != fixture.Cluster.Primary)
            {
                return (room, host);
            }
        }

        throw new InvalidOperationException("no room landed on a secondary silo");
    }
}
