using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;

namespace OrleansChat.Gateway.Tests;

/// <summary>The server API (protocol.md, "Server API"): every call, its auth, its answers and errors, on one gateway
/// and across two (a kick or disconnect through A reaches connections on B; a ban set through B refuses a join on A).</summary>
[Collection(ClusterCollection.Name)]
public sealed class ServerApiTests(ClusterFixture fixture)
{
    [Fact]
    public async Task Without_a_key_configured_every_call_is_404_and_with_one_a_missing_or_wrong_key_is_401()
    {
        using var off = fixture.Strict.Http();
        Assert.Equal(HttpStatusCode.NotFound, (await off.GetAsync("/api/rooms/lobby")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await off.PostAsync("/api/users/alice/disconnect", null)).StatusCode);
        off.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", ClusterFixture.ApiKey);
        Assert.Equal(HttpStatusCode.NotFound, (await off.GetAsync("/api/rooms/lobby")).StatusCode);

        using var anonymous = fixture.A.Http();
        var missing = await anonymous.GetAsync("/api/rooms/lobby");
        Assert.Equal(HttpStatusCode.Unauthorized, missing.StatusCode);
        Assert.Contains(missing.Headers.WwwAuthenticate, header => header.Scheme == "Bearer");
        using var wrong = Api(fixture.A, ClusterFixture.ApiKey + "x");
        Assert.Equal(HttpStatusCode.Unauthorized, (await wrong.GetAsync("/api/rooms/lobby")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await wrong.PostAsJsonAsync("/api/rooms/lobby/messages", new { user = "bot", text = "x", id = "1" })).StatusCode);
        using var basic = fixture.A.Http();
        basic.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", ClusterFixture.ApiKey);
        Assert.Equal(HttpStatusCode.Unauthorized, (await basic.GetAsync("/api/rooms/lobby")).StatusCode);
        using var right = Api(fixture.A);
        Assert.Equal(HttpStatusCode.OK, (await right.GetAsync("/api/rooms/lobby")).StatusCode);
    }

    [Fact]
    public async Task Posting_as_a_user_stores_a_message_members_receive_and_a_resend_answers_the_original()
    {
        var room = ProtocolTests.NewRoom();
        await using var member = await ChatClient.ConnectAsync(fixture.B, "member");
        await member.JoinAsync(room);
        using var api = Api(fixture.A);

        var created = await api.PostAsJsonAsync($"/api/rooms/{room}/messages", new { user = "deploy-bot", text = "v2.3 is live", id = "deploy-1" });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        using var stored = JsonDocument.Parse(await created.Content.ReadAsStringAsync());
        Assert.Equal("message", stored.RootElement.GetProperty("type").GetString());
        Assert.Equal(1, stored.RootElement.GetProperty("seq").GetInt64());
        Assert.Equal("deploy-bot", stored.RootElement.GetProperty("user").GetString());
        Assert.Equal("deploy-1", stored.RootElement.GetProperty("id").GetString());
        var received = await member.WaitForAsync("message");
        Assert.Equal(stored.RootElement.GetRawText(), received.GetRawText());

        var resent = await api.PostAsJsonAsync($"/api/rooms/{room}/messages", new { user = "deploy-bot", text = "v2.3 is live", id = "deploy-1" });
        Assert.Equal(HttpStatusCode.OK, resent.StatusCode);
        Assert.Equal(stored.RootElement.GetRawText(), await resent.Content.ReadAsStringAsync());
        Assert.Null(await member.TryNextAsync(TimeSpan.FromMilliseconds(500)));

        // The same ids per user and room as a connection's sends.
        await using var bot = await ChatClient.ConnectAsync(fixture.B, "deploy-bot");
        await bot.JoinAsync(room);
        await bot.PostAsync(room, "from the socket", "shared-id");
        var viaApi = await api.PostAsJsonAsync($"/api/rooms/{room}/messages", new { user = "deploy-bot", text = "again", id = "shared-id" });
        Assert.Equal(HttpStatusCode.OK, viaApi.StatusCode);
        Assert.Contains("from the socket", await viaApi.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_bad_room_user_or_body_is_400_with_the_protocols_code()
    {
        using var api = Api(fixture.A);
        await AssertErrorAsync(await api.PostAsJsonAsync("/api/rooms/bad%20room/messages", new { user = "bot", text = "x", id = "1" }), 400, "bad_room");
        await AssertErrorAsync(await api.PostAsJsonAsync("/api/rooms/ok/messages", new { user = "no spaces", text = "x", id = "1" }), 400, "bad_request");
        await AssertErrorAsync(await api.PostAsJsonAsync("/api/rooms/ok/messages", new { user = "bot", text = "", id = "1" }), 400, "bad_request");
        await AssertErrorAsync(await api.PostAsJsonAsync("/api/rooms/ok/messages", new { user = "bot", text = "x" }), 400, "bad_request");
        await AssertErrorAsync(await api.PostAsJsonAsync("/api/rooms/ok/messages", new { user = "bot", text = new string('x', 4097), id = "1" }), 400, "too_large");
        await AssertErrorAsync(await api.PostAsync("/api/rooms/ok/messages", new StringContent("{not json", Encoding.UTF8, "application/json")), 400, "bad_request");
        await AssertErrorAsync(await api.PostAsync("/api/rooms/ok/messages", new StringContent("[1]", Encoding.UTF8, "application/json")), 400, "bad_request");
        await AssertErrorAsync(await api.GetAsync("/api/rooms/bad%20room"), 400, "bad_room");
        await AssertErrorAsync(await api.PostAsJsonAsync("/api/rooms/ok/kick", new { user = "alice", ban_seconds = -1 }), 400, "bad_request");
        await AssertErrorAsync(await api.PostAsJsonAsync("/api/rooms/ok/kick", new { user = "alice", ban_seconds = "60" }), 400, "bad_request");
        await AssertErrorAsync(await api.PostAsJsonAsync("/api/rooms/ok/kick", new { ban_seconds = 1 }), 400, "bad_request");
        await AssertErrorAsync(await api.PostAsync("/api/users/bad%20user/disconnect", null), 400, "bad_request");
        await AssertErrorAsync(await api.DeleteAsync("/api/rooms/ok/messages/1"), 400, "bad_request");
        await AssertErrorAsync(await api.DeleteAsync("/api/rooms/ok/messages/x?moderator=mod"), 400, "bad_request");
    }

    [Fact]
    public async Task A_moderator_deletes_anyones_message_and_a_missing_one_is_404()
    {
        var room = ProtocolTests.NewRoom();
        await using var alice = await ChatClient.ConnectAsync(fixture.B, "alice");
        await alice.JoinAsync(room);
        await alice.PostAsync(room, "something regrettable", "m-1");
        await alice.SendAsync(new { type = "edit", room, seq = 1, text = "something still regrettable", id = "e-1" });
        await alice.WaitForAsync("edit");
        using var api = Api(fixture.A);

        var deleted = await api.DeleteAsync($"/api/rooms/{room}/messages/1?moderator=mod-ann");
        Assert.Equal(HttpStatusCode.OK, deleted.StatusCode);
        using var body = JsonDocument.Parse(await deleted.Content.ReadAsStringAsync());
        Assert.Equal("delete", body.RootElement.GetProperty("type").GetString());
        Assert.Equal(3, body.RootElement.GetProperty("seq").GetInt64());
        Assert.Equal(1, body.RootElement.GetProperty("target").GetInt64());
        Assert.Equal("mod-ann", body.RootElement.GetProperty("user").GetString());
        Assert.False(string.IsNullOrEmpty(body.RootElement.GetProperty("id").GetString()));
        Assert.Equal(body.RootElement.GetRawText(), (await alice.WaitForAsync("delete")).GetRawText());

        await AssertErrorAsync(await api.DeleteAsync($"/api/rooms/{room}/messages/1?moderator=mod-ann"), 404, "not_found");
        await AssertErrorAsync(await api.DeleteAsync($"/api/rooms/{room}/messages/2?moderator=mod-ann"), 404, "not_found");
        await AssertErrorAsync(await api.DeleteAsync($"/api/rooms/{room}/messages/99?moderator=mod-ann"), 404, "not_found");
    }

    [Fact]
    public async Task Room_info_gives_the_seq_and_the_members_as_joined_does()
    {
        var room = ProtocolTests.NewRoom();
        await using var alice = await ChatClient.ConnectAsync(fixture.A, "alice");
        await using var bob = await ChatClient.ConnectAsync(fixture.B, "bob");
        await alice.JoinAsync(room);
        await bob.JoinAsync(room);
        await alice.PostAsync(room, "one");
        await bob.PostAsync(room, "two");
        using var api = Api(fixture.B);

        using var info = JsonDocument.Parse(await api.GetStringAsync($"/api/rooms/{room}"));
        Assert.Equal(room, info.RootElement.GetProperty("room").GetString());
        Assert.Equal(2, info.RootElement.GetProperty("seq").GetInt64());
        Assert.Equal(["alice", "bob"], info.RootElement.GetProperty("members").EnumerateArray().Select(m => m.GetString()).Order());
        using var empty = JsonDocument.Parse(await api.GetStringAsync($"/api/rooms/{ProtocolTests.NewRoom()}"));
        Assert.Equal(0, empty.RootElement.GetProperty("seq").GetInt64());
        Assert.Empty(empty.RootElement.GetProperty("members").EnumerateArray());
    }

    [Fact]
    public async Task A_kick_removes_every_connection_of_the_user_on_every_gateway_and_tells_the_others()
    {
        var room = ProtocolTests.NewRoom();
        await using var aliceA = await ChatClient.ConnectAsync(fixture.A, "alice");
        await using var aliceB = await ChatClient.ConnectAsync(fixture.B, "alice");
        await using var bob = await ChatClient.ConnectAsync(fixture.B, "bob");
        foreach (var client in new[] { aliceA, aliceB, bob })
        {
            await client.JoinAsync(room);
        }

        using var api = Api(fixture.A);
        var kicked = await api.PostAsJsonAsync($"/api/rooms/{room}/kick", new { user = "alice" });
        Assert.Equal(HttpStatusCode.OK, kicked.StatusCode);
        Assert.Equal(2, (await kicked.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("connections").GetInt32());

        foreach (var alice in new[] { aliceA, aliceB })
        {
            var left = await alice.WaitForAsync("left");
            Assert.Equal(room, left.GetProperty("room").GetString());
            Assert.Equal("kicked", left.GetProperty("reason").GetString());
        }

        var presence = await bob.WaitForAsync("presence", e => e.GetProperty("event").GetString() == "leave");
        Assert.Equal("alice", presence.GetProperty("user").GetString());

        // Out of the room exactly as after a leave: no messages, sends refused; without a ban she may come back.
        await bob.PostAsync(room, "she is gone");
        Assert.Null(await aliceA.TryNextAsync(TimeSpan.FromMilliseconds(500)));
        await aliceB.SendAsync(new { type = "send", room, text = "hey", id = "k-1" });
        Assert.Equal("not_joined", (await aliceB.WaitForAsync("error")).GetProperty("code").GetString());
        Assert.Equal(1, (await aliceA.JoinAsync(room)).GetProperty("seq").GetInt64());
        using var nobody = await api.PostAsJsonAsync($"/api/rooms/{room}/kick", new { user = "nobody-here" });
        Assert.Equal(0, (await nobody.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("connections").GetInt32());
    }

    [Fact]
    public async Task A_ban_refuses_joins_on_every_gateway_and_survives_the_rooms_reactivation()
    {
        var room = ProtocolTests.NewRoom();
        await using var carol = await ChatClient.ConnectAsync(fixture.A, "carol");
        await carol.JoinAsync(room);
        using var api = Api(fixture.B);
        var kicked = await api.PostAsJsonAsync($"/api/rooms/{room}/kick", new { user = "carol", ban_seconds = 3600 });
        Assert.Equal(1, (await kicked.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("connections").GetInt32());
        await carol.WaitForAsync("left");

        await AssertJoinForbiddenAsync(carol, room);
        await using var carolOnB = await ChatClient.ConnectAsync(fixture.B, "carol");
        await AssertJoinForbiddenAsync(carolOnB, room);

        await fixture.Cluster.Client.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero);
        await AssertJoinForbiddenAsync(carol, room);
        // Nor may the server API post as a banned user (the same rules as a send).
        await AssertErrorAsync(await api.PostAsJsonAsync($"/api/rooms/{room}/messages", new { user = "carol", text = "let me in", id = "b-1" }), 403, "forbidden");
        // Others are not affected, and a kick without ban_seconds lifts nothing.
        await using var dave = await ChatClient.ConnectAsync(fixture.A, "dave");
        await dave.JoinAsync(room);
        await api.PostAsJsonAsync($"/api/rooms/{room}/kick", new { user = "carol", ban_seconds = 0 });
        await AssertJoinForbiddenAsync(carolOnB, room);
    }

    [Fact]
    public async Task Disconnect_closes_every_connection_of_the_user_on_every_gateway_with_1008()
    {
        var user = $"erin-{Guid.NewGuid():N}"[..12];
        await using var onA = await ChatClient.ConnectAsync(fixture.A, user);
        await using var onB = await ChatClient.ConnectAsync(fixture.B, user);
        await using var other = await ChatClient.ConnectAsync(fixture.B, "frank");
        using var api = Api(fixture.A);

        // A gateway registers within its renewal interval of starting (1 s here): until then it is not reached; and a
        // gateway that answers the registry after its timeout still closes the connections, uncounted. So: call until
        // both connections are closed, and count what the answers reported.
        var reported = 0;
        for (var attempt = 0; attempt < 20 && !(IsClosed(onA) && IsClosed(onB)); attempt++)
        {
            using var response = await api.PostAsync($"/api/users/{user}/disconnect", null);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            reported += (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("connections").GetInt32();
            await Task.WhenAny(Task.WhenAll(onA.WaitForCloseAsync(), onB.WaitForCloseAsync()), Task.Delay(500));
        }

        Assert.InRange(reported, 1, 2);
        foreach (var client in new[] { onA, onB })
        {
            Assert.Equal(WebSocketCloseStatus.PolicyViolation, await client.WaitForCloseAsync());
            Assert.Equal("disconnected by the server", client.Socket.CloseStatusDescription);
        }

        // Nothing of the user is left to close.
        using var again = await api.PostAsync($"/api/users/{user}/disconnect", null);
        Assert.Equal(0, (await again.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("connections").GetInt32());
        Assert.Equal(WebSocketState.Open, other.Socket.State);
    }

    [Fact]
    public async Task The_api_key_also_reads_history_in_jwt_mode_and_the_openapi_document_describes_the_api()
    {
        using var anonymous = fixture.Jwt.Http();
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/api/rooms/lobby/messages")).StatusCode);
        using var api = Api(fixture.Jwt);
        Assert.Equal(HttpStatusCode.OK, (await api.GetAsync("/api/rooms/lobby/messages")).StatusCode);

        using var document = JsonDocument.Parse(await anonymous.GetStringAsync("/openapi/v1.json"));
        var paths = document.RootElement.GetProperty("paths");
        Assert.True(paths.GetProperty("/api/rooms/{room}/messages").TryGetProperty("post", out _));
        Assert.True(paths.GetProperty("/api/rooms/{room}/messages/{seq}").TryGetProperty("delete", out _));
        Assert.True(paths.GetProperty("/api/rooms/{room}").TryGetProperty("get", out _));
        Assert.True(paths.GetProperty("/api/rooms/{room}/kick").TryGetProperty("post", out _));
        Assert.True(paths.GetProperty("/api/users/{user}/disconnect").TryGetProperty("post", out _));
    }

    private static bool IsClosed(ChatClient client) => client.Socket.State is WebSocketState.Closed or WebSocketState.CloseReceived or WebSocketState.Aborted;

    private static async Task AssertJoinForbiddenAsync(ChatClient client, string room)
    {
        await client.SendAsync(new { type = "join", room });
        var error = await client.WaitForAsync("error");
        Assert.Equal("forbidden", error.GetProperty("code").GetString());
        Assert.Equal(room, error.GetProperty("room").GetString());
    }

    private static async Task AssertErrorAsync(HttpResponseMessage response, int status, string code)
    {
        Assert.Equal(status, (int)response.StatusCode);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal(code, body.RootElement.GetProperty("error").GetString());
        Assert.False(string.IsNullOrEmpty(body.RootElement.GetProperty("message").GetString()));
    }

    private static HttpClient Api(GatewayFactory gateway, string key = ClusterFixture.ApiKey)
    {
        var http = gateway.Http();
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return http;
    }
}
