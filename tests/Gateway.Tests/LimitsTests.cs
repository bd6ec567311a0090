using System.Net.WebSockets;
using System.Text.RegularExpressions;

namespace OrleansChat.Gateway.Tests;

/// <summary>Rate limits, room limit, heartbeats and slow consumers, on gateways with strict settings
/// (protocol default rate limit, 2 s heartbeat, 5 rooms; a 256-event outbound queue).</summary>
[Collection(ClusterCollection.Name)]
public sealed partial class LimitsTests(ClusterFixture fixture)
{
    [Fact]
    public async Task Sends_over_the_rate_get_rate_limited_with_their_id_and_are_not_stored()
    {
        var room = ProtocolTests.NewRoom();
        await using var client = await ChatClient.ConnectAsync(fixture.Strict, "gina");
        await client.JoinAsync(room);
        for (var i = 0; i < 60; i++)
        {
            await client.SendAsync(new { type = "send", room, text = $"n{i}", id = $"r-{i}" });
        }

        var acked = new HashSet<string>();
        var limited = new HashSet<string>();
        while (acked.Count + limited.Count < 60)
        {
            var e = await client.NextAsync();
            var id = e.GetProperty("id").GetString()!;
            if (e.GetProperty("type").GetString() == "message")
            {
                acked.Add(id);
            }
            else
            {
                Assert.Equal("rate_limited", e.GetProperty("code").GetString());
                limited.Add(id);
            }
        }

        // Burst 40 plus what refilled at 20/s while the frames arrived.
        Assert.InRange(acked.Count, 40, 50);
        Assert.Contains("r-59", limited);

        using var http = fixture.Strict.Http();
        var stored = await http.GetStringAsync($"/api/rooms/{room}/messages?limit=200");
        Assert.Equal(acked.Count, Regex.Matches(stored, "\"seq\":").Count);
        Assert.Equal(WebSocketState.Open, client.Socket.State);
    }

    [Fact]
    public async Task More_than_100_refusals_in_10_seconds_close_with_1008()
    {
        var room = ProtocolTests.NewRoom();
        await using var client = await ChatClient.ConnectAsync(fixture.Strict, "hank");
        await client.JoinAsync(room);
        try
        {
            for (var i = 0; i < 160; i++)
            {
                await client.SendAsync(new { type = "send", room, text = "spam", id = $"s-{i}" });
            }
        }
        catch (WebSocketException)
        {
            // The gateway may close before the last frames are out: pipelined sends answer fast.
        }

        var refusals = 0;
        try
        {
            while (true)
            {
                var e = await client.NextAsync(TimeSpan.FromSeconds(30));
                if (e.GetProperty("type").GetString() == "error")
                {
                    refusals++;
                }
            }
        }
        catch (InvalidOperationException)
        {
            // Closed.
        }

        Assert.Equal(WebSocketCloseStatus.PolicyViolation, client.CloseStatus);
        // The reply to the send that crossed the line arrives before the close.
        Assert.Equal(101, refusals);
    }

    [Fact]
    public async Task Joining_more_rooms_than_allowed_gets_bad_request()
    {
        await using var client = await ChatClient.ConnectAsync(fixture.Strict, "ivan");
        for (var i = 0; i < 5; i++)
        {
            await client.JoinAsync(ProtocolTests.NewRoom());
        }

        await client.SendAsync(new { type = "join", room = ProtocolTests.NewRoom() });
        var error = await client.NextAsync();
        Assert.Equal("bad_request", error.GetProperty("code").GetString());
    }

    [Fact]
    public async Task A_peer_that_does_not_answer_pings_is_closed_within_two_intervals()
    {
        using var silent = await RawWebSocket.ConnectAsync(fixture.Strict, "silent");
        var started = DateTime.UtcNow;
        var (_, pings, _) = await silent.ReadUntilClosedAsync(TimeSpan.FromSeconds(10));
        var elapsed = DateTime.UtcNow - started;
        Assert.True(pings >= 1, "the gateway sent no ping");
        Assert.InRange(elapsed, TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task A_peer_that_answers_pings_stays_connected()
    {
        await using var client = await ChatClient.ConnectAsync(fixture.Strict, "lively");
        await Task.Delay(TimeSpan.FromSeconds(6.5));
        Assert.Equal(WebSocketState.Open, client.Socket.State);
        var joined = await client.JoinAsync(ProtocolTests.NewRoom());
        Assert.Equal("joined", joined.GetProperty("type").GetString());
    }

    [Fact]
    public async Task A_slow_consumer_is_closed_with_1013_and_the_others_get_everything()
    {
        var room = ProtocolTests.NewRoom();
        using var slow = await RawWebSocket.ConnectAsync(fixture.Tiny, "slow");
        await slow.SendTextAsync($"{{\"type\":\"join\",\"room\":\"{room}\"}}");
        // Healthy members on the slow one's gateway and on another gateway.
        await using var neighbour = await ChatClient.ConnectAsync(fixture.Tiny, "neighbour");
        await neighbour.JoinAsync(room);
        await using var healthy = await ChatClient.ConnectAsync(fixture.A, "healthy");
        await healthy.JoinAsync(room);
        await using var sender = await ChatClient.ConnectAsync(fixture.A, "flood");
        await sender.JoinAsync(room);

        const int Count = 1500;
        var text = new string('z', 4000);
        var sending = Task.Run(async () =>
        {
            for (var i = 0; i < Count; i++)
            {
                await sender.SendAsync(new { type = "send", room, text, id = $"f-{i}" });
            }
        });

        foreach (var member in new[] { neighbour, healthy })
        {
            var seqs = new List<long>();
            while (seqs.Count < Count)
            {
                var e = await member.WaitForAsync("message", timeout: TimeSpan.FromSeconds(60));
                seqs.Add(e.GetProperty("seq").GetInt64());
            }

            Assert.Equal(Enumerable.Range(1, Count).Select(i => (long)i), seqs);
        }

        await sending;

        var (status, _, _) = await slow.ReadUntilClosedAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(1013, status);
    }

    [Fact]
    public async Task Gateway_shutdown_closes_connections_with_1001()
    {
        var gateway = fixture.StartGateway("gw-temp", []);
        await using var client = await ChatClient.ConnectAsync(gateway, "judy");
        await client.JoinAsync(ProtocolTests.NewRoom());
        var stopping = Task.Run(async () => await gateway.DisposeAsync());
        Assert.Equal(WebSocketCloseStatus.EndpointUnavailable, await client.WaitForCloseAsync(TimeSpan.FromSeconds(20)));
        await stopping.WaitAsync(TimeSpan.FromSeconds(30));
    }
}
