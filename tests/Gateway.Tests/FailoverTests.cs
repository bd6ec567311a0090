using Orleans.TestingHost;
using OrleansChat.Client;
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
        // Two senders of the client library (it resends under the same id after `unavailable`, as the protocol
        // says is always safe) and four raw listeners, two on each gateway, that check the wire.
        var senders = new List<OrleansChatClient>();
        var members = new List<ChatClient>();
        foreach (var (gateway, user) in new[] { (fixture.A, "sam"), (fixture.B, "sue") })
        {
            var sender = new OrleansChatClient(new ChatClientOptions { Gateways = [gateway.WsAddress], User = user, RequestTimeout = TimeSpan.FromSeconds(60) });
            senders.Add(sender);
            await sender.ConnectAsync();
            await sender.JoinAsync(room);
        }

        foreach (var (gateway, user) in new[] { (fixture.A, "ann"), (fixture.B, "ben"), (fixture.A, "cat"), (fixture.B, "dan") })
        {
            var member = await ChatClient.ConnectAsync(gateway, user);
            members.Add(member);
            await member.JoinAsync(room);
        }

        try
        {
            const int PerSender = 40;
            var halfway = new CountdownEvent(2);
            var sending = senders.Select(sender => Task.Run(async () =>
            {
                for (var i = 0; i < PerSender; i++)
                {
                    if (i == PerSender / 2)
                    {
                        halfway.Signal();
                    }

                    await sender.SendAsync(room, $"{sender.User} #{i}", $"{sender.User}-{i}");
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

            await Task.WhenAll(sending).WaitAsync(TimeSpan.FromSeconds(120));

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
            foreach (var sender in senders)
            {
                await sender.DisposeAsync();
            }

            foreach (var member in members)
            {
                await member.DisposeAsync();
            }

            await fixture.Cluster.StartAdditionalSiloAsync();
            await fixture.Cluster.WaitForLivenessToStabilizeAsync();
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
