using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using OrleansChat.Gateway.Connections;

namespace OrleansChat.Gateway.Tests;

/// <summary>
/// Issue 11: what one user or one client address may open, crossed one limit at a time on a gateway of its own.
/// The client address is the one a trusted proxy forwards (loopback is trusted): each test speaks for its own
/// made-up address, as nginx would for a remote client.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class AddressLimitsTests(ClusterFixture fixture)
{
    private static string NewAddress() => $"203.0.113.{Random.Shared.Next(1, 255)}";

    [Fact]
    public async Task A_user_over_the_connection_limit_is_refused_with_429_until_one_closes()
    {
        await using var gateway = fixture.StartGateway("gw-user-limit", new() { ["Gateway:Limits:ConnectionsPerUser"] = "2" });
        var first = await ChatClient.ConnectAsync(gateway, "ivan");
        await using var second = await ChatClient.ConnectAsync(gateway, "ivan");

        var refused = await HandshakeAsync(gateway, "ivan");
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Contains("too many connections for this user (at most 2)", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        // Other users are not affected.
        await using (await ChatClient.ConnectAsync(gateway, "jane"))
        {
        }

        await first.DisposeAsync();
        await WaitUntilAsync(() => Registry(gateway).Count == 1);
        await using var third = await ChatClient.ConnectAsync(gateway, "ivan");
        Assert.Equal(2, Registry(gateway).Count);
    }

    [Fact]
    public async Task An_address_over_the_connection_limit_is_refused_and_other_addresses_are_not()
    {
        await using var gateway = fixture.StartGateway("gw-address-limit", new() { ["Gateway:Limits:ConnectionsPerAddress"] = "3" });
        var crowded = NewAddress();
        var clients = new List<ChatClient>();
        for (var i = 0; i < 3; i++)
        {
            clients.Add(await ChatClient.ConnectAsync(gateway, $"user{i}", options => options.SetRequestHeader("X-Forwarded-For", crowded)));
        }

        var refused = await HandshakeAsync(gateway, "user9", crowded);
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Contains("too many connections from this address (at most 3)", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        await using (await ChatClient.ConnectAsync(gateway, "user9", options => options.SetRequestHeader("X-Forwarded-For", "198.51.100.7")))
        {
        }

        foreach (var client in clients)
        {
            await client.DisposeAsync();
        }

        // Every slot is given back: nobody holds one once all have left.
        await WaitUntilAsync(() => gateway.Services.GetRequiredService<ConnectionLimits>().Holders == (0, 0));
    }

    [Fact]
    public async Task Handshakes_over_the_rate_get_429_with_retry_after()
    {
        await using var gateway = fixture.StartGateway("gw-handshake-rate", new()
        {
            ["Gateway:Limits:HandshakesPerSecond"] = "1",
            ["Gateway:Limits:HandshakeBurst"] = "2",
        });
        var address = NewAddress();
        Assert.Equal(HttpStatusCode.SwitchingProtocols, (await HandshakeAsync(gateway, "kim", address)).StatusCode);
        Assert.Equal(HttpStatusCode.SwitchingProtocols, (await HandshakeAsync(gateway, "kim", address)).StatusCode);
        var refused = await HandshakeAsync(gateway, "kim", address);
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.True(refused.Headers.RetryAfter?.Delta is { TotalSeconds: >= 1 }, "Retry-After in seconds");
        Assert.Contains("too many connection attempts from this address", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        // Another address has its own bucket.
        Assert.Equal(HttpStatusCode.SwitchingProtocols, (await HandshakeAsync(gateway, "kim", NewAddress())).StatusCode);
    }

    [Fact]
    public async Task History_requests_over_the_rate_get_429_with_retry_after()
    {
        await using var gateway = fixture.StartGateway("gw-history-rate", new() { ["Gateway:Limits:HistoryPerSecond"] = "1" });
        using var http = gateway.Http();
        var address = NewAddress();
        var statuses = new List<HttpStatusCode>();
        HttpResponseMessage? refused = null;
        for (var i = 0; i < 3; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/api/rooms/lobby/messages");
            request.Headers.Add("X-Forwarded-For", address);
            var response = await http.SendAsync(request);
            statuses.Add(response.StatusCode);
            refused = response;
        }

        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.TooManyRequests], statuses);
        Assert.True(refused!.Headers.RetryAfter?.Delta is { TotalSeconds: >= 1 }, "Retry-After in seconds");
    }

    [Fact]
    public async Task A_client_that_never_finishes_its_upgrade_request_is_dropped()
    {
        await using var gateway = fixture.StartGateway("gw-slow-headers", new() { ["Gateway:Limits:HandshakeSeconds"] = "1" });
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, gateway.HttpAddress.Port);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes("GET /ws?user=slow HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"));
        // ... and never the rest. Kestrel answers 408 and closes within its heartbeat after the timeout.
        var started = DateTime.UtcNow;
        var buffer = new byte[4096];
        var received = new StringBuilder();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        int read;
        while ((read = await stream.ReadAsync(buffer, timeout.Token)) > 0)
        {
            received.Append(Encoding.ASCII.GetString(buffer, 0, read));
        }

        Assert.InRange(DateTime.UtcNow - started, TimeSpan.Zero, TimeSpan.FromSeconds(5));
        Assert.StartsWith("HTTP/1.1 408", received.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_client_that_upgrades_and_sends_nothing_is_closed_with_1008_and_released()
    {
        await using var gateway = fixture.StartGateway("gw-first-frame", new() { ["Gateway:Limits:FirstFrameSeconds"] = "1" });
        await using var silent = await ChatClient.ConnectAsync(gateway, "silent");
        // A client that sends something in time stays.
        await using var talker = await ChatClient.ConnectAsync(gateway, "talker");
        await talker.JoinAsync(ProtocolTests.NewRoom());

        Assert.Equal(WebSocketCloseStatus.PolicyViolation, await silent.WaitForCloseAsync(TimeSpan.FromSeconds(10)));
        await WaitUntilAsync(() => Registry(gateway).Count == 1);
        Assert.Equal(WebSocketState.Open, talker.Socket.State);
    }

    /// <summary>A WebSocket handshake as raw HTTP (the status is what matters, not the socket).</summary>
    private static async Task<HttpResponseMessage> HandshakeAsync(GatewayFactory gateway, string user, string? forwardedFor = null)
    {
        using var http = new HttpClient { BaseAddress = gateway.HttpAddress, Timeout = TimeSpan.FromSeconds(10) };
        var request = new HttpRequestMessage(HttpMethod.Get, $"/ws?user={user}");
        request.Headers.Add("Connection", "Upgrade");
        request.Headers.Add("Upgrade", "websocket");
        request.Headers.Add("Sec-WebSocket-Version", "13");
        request.Headers.Add("Sec-WebSocket-Key", Convert.ToBase64String(Guid.NewGuid().ToByteArray()));
        if (forwardedFor is not null)
        {
            request.Headers.Add("X-Forwarded-For", forwardedFor);
        }

        return await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
    }

    private static ConnectionRegistry Registry(GatewayFactory gateway) => gateway.Services.GetRequiredService<ConnectionRegistry>();

    private static async Task WaitUntilAsync(Func<bool> condition)
        => Assert.True(await Eventually.HoldsAsync(condition), "condition not met within 10 s");
}
