using OrleansChat.Client;
using Xunit.Abstractions;

namespace OrleansChat.Cluster.Tests;

/// <summary>OrleansChat.Client on the real multi-process cluster: a conversation survives a gateway restart.</summary>
[Collection(ChaosCollection.Name)]
public sealed class ClientRecoveryTests(LocalCluster cluster, ITestOutputHelper output) : IAsyncLifetime
{
    public Task InitializeAsync() => cluster.RestoreAsync();

    public Task DisposeAsync() => Task.CompletedTask;

    /// <summary>A sender and a listener, both on gateway1 with gateway2 to fail over to, while the sender posts
    /// steadily and gateway1 restarts: both end with every message exactly once, in seq order, and every send was
    /// acknowledged once, with the seq PostgreSQL stored.</summary>
    [Fact]
    public async Task The_client_recovers_a_conversation_across_a_gateway_restart_with_nothing_missing_or_doubled()
    {
        var room = $"lib-{Guid.NewGuid():N}"[..20];
        await using var sender = Client("lib-sender");
        await using var listener = Client("lib-listener");
        var received = new Dictionary<OrleansChatClient, List<ChatMessage>> { [sender] = [], [listener] = [] };
        foreach (var (client, messages) in received)
        {
            client.MessageReceived += m =>
            {
                lock (messages)
                {
                    messages.Add(m);
                }
            };
            await client.ConnectAsync();
            await client.JoinAsync(room);
        }

        var acks = new List<ChatMessage>();
        using var stop = new CancellationTokenSource();
        var posting = Task.Run(async () =>
        {
            for (var i = 0; !stop.IsCancellationRequested; i++)
            {
                acks.Add(await sender.SendAsync(room, $"message {i}", id: $"m-{i}"));
                await Task.Delay(100);
            }
        });

        await Task.Delay(TimeSpan.FromSeconds(2));
        var before = acks.Count;
        await cluster.RestartAsync("gateway1");
        await LocalCluster.WaitUntilAsync(() => sender.Reconnects > 0 && listener.Reconnects > 0, TimeSpan.FromSeconds(60), "both clients to reconnect");
        var afterRestart = acks.Count;
        await LocalCluster.WaitUntilAsync(() => acks.Count >= afterRestart + 20, TimeSpan.FromSeconds(60), "20 more acknowledged sends");
        await stop.CancelAsync();
        await posting;

        var sent = acks.Count;
        output.WriteLine($"{sent} sends ({before} before the restart), reconnects: sender {sender.Reconnects} ({sender.Gateway}), listener {listener.Reconnects} ({listener.Gateway})");
        Assert.Equal(Enumerable.Range(0, sent).Select(i => $"m-{i}"), acks.Select(a => a.Id));
        var first = acks[0].Seq;
        Assert.Equal(Enumerable.Range(0, sent).Select(i => first + i), acks.Select(a => a.Seq));

        foreach (var (client, messages) in received)
        {
            await LocalCluster.WaitUntilAsync(() => { lock (messages) { return messages.Count >= sent; } }, TimeSpan.FromSeconds(30), "every message delivered");
            await Task.Delay(500);
            lock (messages)
            {
                Assert.Equal(acks, messages);
            }
        }

        var stored = await cluster.StoredAsync([room]);
        Assert.Equal(acks.Select(a => (a.Seq, a.Id)), stored.OrderBy(s => s.Seq).Select(s => (s.Seq, s.ClientId)));
    }

    private OrleansChatClient Client(string user) => new(new ChatClientOptions
    {
        Gateways = [cluster.Gateway1, cluster.Gateway2],
        User = user,
        RequestTimeout = TimeSpan.FromSeconds(60),
    });
}
