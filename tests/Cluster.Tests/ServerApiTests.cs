using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text.Json;

namespace OrleansChat.Cluster.Tests;

/// <summary>The server API across the two gateways of the local multi-process cluster (Redis, PostgreSQL): a kick and
/// a disconnect through one gateway reach a user connected to the other; a ban set through one refuses a join on the
/// other, and holds after the whole cluster restarted.</summary>
[Collection(ChaosCollection.Name)]
public sealed class ServerApiTests(LocalCluster cluster) : IAsyncLifetime
{
    public Task InitializeAsync() => cluster.RestoreAsync();

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task Kick_and_disconnect_through_one_gateway_reach_the_user_on_the_other()
    {
        var room = $"api-{Guid.NewGuid():N}"[..16];
        var user = $"u-{Guid.NewGuid():N}"[..12];
        await using var onGateway2 = await ChatClient.ConnectAsync(cluster.Gateway2, user);
        await using var bystander = await ChatClient.ConnectAsync(cluster.Gateway1, "bystander");
        await onGateway2.JoinAsync(room);
        await bystander.JoinAsync(room);
        using var api = Api(1);

        var kicked = await api.PostAsJsonAsync($"/api/rooms/{room}/kick", new { user });
        Assert.Equal(HttpStatusCode.OK, kicked.StatusCode);
        Assert.Equal(1, (await kicked.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("connections").GetInt32());
        Assert.Equal("kicked", (await onGateway2.WaitForAsync("left")).GetProperty("reason").GetString());
        Assert.Equal("leave", (await bystander.WaitForAsync("presence", e => e.GetProperty("user").GetString() == user)).GetProperty("event").GetString());

        var closed = 0;
        for (var attempt = 0; attempt < 40 && closed == 0; attempt++)
        {
            // A gateway is reached once it registered (within its renewal interval of starting).
            using var response = await api.PostAsync($"/api/users/{user}/disconnect", null);
            closed = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("connections").GetInt32();
            await Task.Delay(closed == 0 ? 250 : 0);
        }

        Assert.Equal(1, closed);
        Assert.Equal(WebSocketCloseStatus.PolicyViolation, await onGateway2.WaitForCloseAsync());
        Assert.Equal(WebSocketState.Open, bystander.Socket.State);
    }

    [Fact]
    public async Task A_ban_set_on_one_gateway_refuses_joins_on_the_other_and_survives_a_whole_cluster_restart()
    {
        var room = $"ban-{Guid.NewGuid():N}"[..16];
        using (var api = Api(1))
        {
            var banned = await api.PostAsJsonAsync($"/api/rooms/{room}/kick", new { user = "mallory", ban_seconds = 3600 });
            Assert.Equal(HttpStatusCode.OK, banned.StatusCode);
        }

        await AssertForbiddenAsync(cluster.Gateway2, room);
        await cluster.DownAsync();
        await cluster.RestoreAsync();
        await AssertForbiddenAsync(cluster.Gateway1, room);
        await AssertForbiddenAsync(cluster.Gateway2, room);
        await using var other = await ChatClient.ConnectAsync(cluster.Gateway2, "trent");
        Assert.Equal(room, (await other.JoinAsync(room)).GetProperty("room").GetString());
    }

    private static async Task AssertForbiddenAsync(Uri gateway, string room)
    {
        await using var mallory = await ChatClient.ConnectAsync(gateway, "mallory");
        string? code = null;
        for (var attempt = 0; attempt < 10 && code is null or "unavailable"; attempt++)
        {
            // Right after a restart the cluster may answer "unavailable" (retry later) before it answers at all.
            await mallory.SendAsync(new { type = "join", room });
            code = (await mallory.WaitForAsync("error", timeout: TimeSpan.FromSeconds(30))).GetProperty("code").GetString();
        }

        Assert.Equal("forbidden", code);
    }

    private HttpClient Api(int gateway)
    {
        var http = new HttpClient { BaseAddress = cluster.GatewayHttp(gateway), Timeout = TimeSpan.FromSeconds(30) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", LocalCluster.ApiKey);
        return http;
    }
}
