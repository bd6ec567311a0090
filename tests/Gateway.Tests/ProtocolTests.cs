using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.RegularExpressions;
using OrleansChat.Tests;

namespace OrleansChat.Gateway.Tests;

/// <summary>The happy paths of protocol v1: every event type and its fields, presence across gateways,
/// since/history, dedupe and ordering.</summary>
[Collection(ClusterCollection.Name)]
public sealed partial class ProtocolTests(ClusterFixture fixture)
{
    public static string NewRoom() => $"room-{Guid.NewGuid():N}"[..20];

    [Fact]
    public async Task Welcome_names_user_gateway_and_heartbeat()
    {
        await using var client = await ChatClient.ConnectAsync(fixture.A, "alice");
        // ConnectAsync consumed the welcome; connect raw to see it.
        using var socket = new System.Net.WebSockets.ClientWebSocket();
        await socket.ConnectAsync(new Uri($"{fixture.Strict.WsAddress}?user=bob"), CancellationToken.None);
        var buffer = new byte[4096];
        var result = await socket.ReceiveAsync(buffer, CancellationToken.None);
        using var welcome = JsonDocument.Parse(buffer.AsMemory(0, result.Count));
        Assert.Equal("welcome", welcome.RootElement.GetProperty("type").GetString());
        Assert.Equal("bob", welcome.RootElement.GetProperty("user").GetString());
        Assert.Equal("gw-strict", welcome.RootElement.GetProperty("gateway").GetString());
        Assert.Equal(2, welcome.RootElement.GetProperty("heartbeat").GetInt32());
    }

    [Fact]
    public async Task Join_send_leave_round_trip_with_every_field()
    {
        var room = NewRoom();
        await using var alice = await ChatClient.ConnectAsync(fixture.A, "alice");
        var joined = await alice.JoinAsync(room);
        Assert.Equal(0, joined.GetProperty("seq").GetInt64());
        Assert.Equal(["alice"], joined.GetProperty("members").EnumerateArray().Select(m => m.GetString()));
        Assert.Empty(joined.GetProperty("history").EnumerateArray());
        Assert.False(joined.GetProperty("more").GetBoolean());

        var message = await alice.PostAsync(room, "hello, world", "m-1");
        Assert.Equal(room, message.GetProperty("room").GetString());
        Assert.Equal(1, message.GetProperty("seq").GetInt64());
        Assert.Equal("alice", message.GetProperty("user").GetString());
        Assert.Equal("hello, world", message.GetProperty("text").GetString());
        Assert.Equal("m-1", message.GetProperty("id").GetString());
        var time = message.GetProperty("time").GetString()!;
        Assert.Matches(TimeFormat(), time);
        Assert.InRange(DateTime.Parse(time, null, System.Globalization.DateTimeStyles.RoundtripKind), DateTime.UtcNow.AddMinutes(-1), DateTime.UtcNow.AddMinutes(1));

        await alice.SendAsync(new { type = "leave", room });
        var left = await alice.NextAsync();
        Assert.Equal("left", left.GetProperty("type").GetString());
        Assert.Equal(room, left.GetProperty("room").GetString());
    }

    [Fact]
    public async Task Members_see_each_others_messages_and_presence_across_gateways()
    {
        var room = NewRoom();
        await using var alice = await ChatClient.ConnectAsync(fixture.A, "alice");
        await alice.JoinAsync(room);

        await using var bob = await ChatClient.ConnectAsync(fixture.B, "bob");
        var joined = await bob.JoinAsync(room);
        Assert.Equal(["alice", "bob"], joined.GetProperty("members").EnumerateArray().Select(m => m.GetString()).Order());

        var presence = await alice.WaitForAsync("presence");
        Assert.Equal(room, presence.GetProperty("room").GetString());
        Assert.Equal("bob", presence.GetProperty("user").GetString());
        Assert.Equal("join", presence.GetProperty("event").GetString());

        await bob.PostAsync(room, "hi alice");
        var received = await alice.WaitForAsync("message");
        Assert.Equal("hi alice", received.GetProperty("text").GetString());
        Assert.Equal("bob", received.GetProperty("user").GetString());

        // Bob's own join caused the presence event: he does not get it.
        Assert.Null(await bob.TryNextAsync(TimeSpan.FromMilliseconds(300)));

        await bob.DisposeAsync();
        var leave = await alice.WaitForAsync("presence");
        Assert.Equal("bob", leave.GetProperty("user").GetString());
        Assert.Equal("leave", leave.GetProperty("event").GetString());
    }

    [Fact]
    public async Task Presence_counts_connections_of_one_user_across_gateways()
    {
        var room = NewRoom();
        await using var watcher = await ChatClient.ConnectAsync(fixture.A, "watcher");
        await watcher.JoinAsync(room);

        var tab1 = await ChatClient.ConnectAsync(fixture.A, "carol");
        var tab2 = await ChatClient.ConnectAsync(fixture.B, "carol");
        await tab1.JoinAsync(room);
        Assert.Equal("join", (await watcher.WaitForAsync("presence")).GetProperty("event").GetString());
        var second = await tab2.JoinAsync(room);
        Assert.Equal(["carol", "watcher"], second.GetProperty("members").EnumerateArray().Select(m => m.GetString()).Order());
        // The first tab hears nothing about its own user's second connection.
        Assert.Null(await tab1.TryNextAsync(TimeSpan.FromMilliseconds(300)));

        await tab1.DisposeAsync();
        Assert.Null(await watcher.TryNextAsync(TimeSpan.FromMilliseconds(500)));

        await tab2.SendAsync(new { type = "leave", room });
        await tab2.WaitForAsync("left");
        var leave = await watcher.WaitForAsync("presence");
        Assert.Equal(("carol", "leave"), (leave.GetProperty("user").GetString(), leave.GetProperty("event").GetString()));
        await tab2.DisposeAsync();
    }

    [Fact]
    public async Task Join_twice_answers_joined_again_and_one_leave_undoes_it()
    {
        var room = NewRoom();
        await using var alice = await ChatClient.ConnectAsync(fixture.A, "alice");
        await alice.JoinAsync(room);
        await alice.PostAsync(room, "one");
        var again = await alice.JoinAsync(room);
        Assert.Equal(1, again.GetProperty("seq").GetInt64());
        Assert.Single(again.GetProperty("history").EnumerateArray());

        await alice.SendAsync(new { type = "leave", room });
        await alice.WaitForAsync("left");
        await alice.SendAsync(new { type = "history", room });
        var error = await alice.WaitForAsync("error");
        Assert.Equal("not_joined", error.GetProperty("code").GetString());
    }

    [Fact]
    public async Task Join_with_since_on_another_gateway_returns_what_was_missed()
    {
        var room = NewRoom();
        await using var alice = await ChatClient.ConnectAsync(fixture.A, "alice");
        await alice.JoinAsync(room);
        for (var i = 1; i <= 5; i++)
        {
            await alice.PostAsync(room, $"m{i}");
        }

        await using var bob = await ChatClient.ConnectAsync(fixture.B, "bob");
        var joined = await bob.JoinAsync(room, since: 2);
        Assert.Equal(5, joined.GetProperty("seq").GetInt64());
        Assert.Equal([3L, 4L, 5L], joined.GetProperty("history").EnumerateArray().Select(m => m.GetProperty("seq").GetInt64()));
        Assert.False(joined.GetProperty("more").GetBoolean());

        var beyond = await bob.JoinAsync(room, since: 99);
        Assert.Empty(beyond.GetProperty("history").EnumerateArray());

        var latest = await bob.JoinAsync(room);
        Assert.Equal(5, latest.GetProperty("history").GetArrayLength());

        // Live from here: seq 6 arrives once.
        await alice.PostAsync(room, "m6");
        var live = await bob.WaitForAsync("message");
        Assert.Equal(6, live.GetProperty("seq").GetInt64());
        Assert.Null(await bob.TryNextAsync(TimeSpan.FromMilliseconds(300)));
    }

    [Fact]
    public async Task Since_reply_is_cut_at_200_with_more_and_history_pages_by_before_and_after()
    {
        var room = NewRoom();
        await using var alice = await ChatClient.ConnectAsync(fixture.A, "alice");
        await alice.JoinAsync(room);
        var ids = Enumerable.Range(1, 230).Select(i => $"bulk-{i}").ToArray();
        foreach (var id in ids)
        {
            await alice.SendAsync(new { type = "send", room, text = id, id });
        }

        await alice.WaitForAsync("message", e => e.GetProperty("seq").GetInt64() == 230, TimeSpan.FromSeconds(60));

        await using var bob = await ChatClient.ConnectAsync(fixture.B, "bob");
        var joined = await bob.JoinAsync(room, since: 0);
        var history = joined.GetProperty("history").EnumerateArray().Select(m => m.GetProperty("seq").GetInt64()).ToArray();
        Assert.Equal(Enumerable.Range(1, 200).Select(i => (long)i), history);
        Assert.True(joined.GetProperty("more").GetBoolean());
        Assert.Equal(230, joined.GetProperty("seq").GetInt64());

        await bob.SendAsync(new { type = "history", room, after = 200, limit = 50 });
        var after = await bob.WaitForAsync("history");
        Assert.Equal(Enumerable.Range(201, 30).Select(i => (long)i), after.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("seq").GetInt64()));

        await bob.SendAsync(new { type = "history", room, before = 101, limit = 10 });
        var before = await bob.WaitForAsync("history");
        Assert.Equal(Enumerable.Range(91, 10).Select(i => (long)i), before.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("seq").GetInt64()));

        await bob.SendAsync(new { type = "history", room, before = (long?)null, after = (long?)null });
        var latest = await bob.WaitForAsync("history");
        Assert.Equal(Enumerable.Range(181, 50).Select(i => (long)i), latest.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("seq").GetInt64()));

        using var http = fixture.B.Http();
        using var rest = await http.GetAsync($"/api/rooms/{room}/messages?before=&after=225&limit=");
        Assert.Equal(HttpStatusCode.OK, rest.StatusCode);
        using var body = JsonDocument.Parse(await rest.Content.ReadAsStringAsync());
        Assert.Equal(room, body.RootElement.GetProperty("room").GetString());
        Assert.Equal([226L, 227L, 228L, 229L, 230L], body.RootElement.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("seq").GetInt64()));
    }

    [Fact]
    public async Task A_resend_is_acknowledged_with_the_original_and_not_broadcast_again()
    {
        var room = NewRoom();
        await using var alice = await ChatClient.ConnectAsync(fixture.A, "alice");
        await using var bob = await ChatClient.ConnectAsync(fixture.B, "bob");
        await alice.JoinAsync(room);
        await bob.JoinAsync(room);
        await alice.WaitForAsync("presence");

        var first = await alice.PostAsync(room, "once", "dup-1");
        var again = await alice.PostAsync(room, "once (resent)", "dup-1");
        Assert.Equal(first.GetProperty("seq").GetInt64(), again.GetProperty("seq").GetInt64());
        Assert.Equal("once", again.GetProperty("text").GetString());

        Assert.Equal(1, (await bob.WaitForAsync("message")).GetProperty("seq").GetInt64());
        Assert.Null(await bob.TryNextAsync(TimeSpan.FromMilliseconds(500)));

        // The same id from another user is another message.
        var bobs = await bob.PostAsync(room, "mine", "dup-1");
        Assert.Equal(2, bobs.GetProperty("seq").GetInt64());
    }

    [Fact]
    public async Task Concurrent_senders_every_member_sees_every_seq_once_in_order()
    {
        var room = NewRoom();
        var members = new List<ChatClient>();
        foreach (var (gateway, user) in new[] { (fixture.A, "s1"), (fixture.B, "s2"), (fixture.A, "s3"), (fixture.B, "r1"), (fixture.A, "r2") })
        {
            var client = await ChatClient.ConnectAsync(gateway, user);
            await client.JoinAsync(room);
            members.Add(client);
        }

        try
        {
            var senders = members.Take(3).Select(sender => Task.Run(async () =>
            {
                for (var i = 0; i < 50; i++)
                {
                    await sender.SendAsync(new { type = "send", room, text = $"{sender.User} #{i}", id = sender.NextId() });
                }
            }));
            await Task.WhenAll(senders);

            foreach (var member in members)
            {
                var seqs = new List<long>();
                while (seqs.Count < 150)
                {
                    var message = await member.WaitForAsync("message", timeout: TimeSpan.FromSeconds(30));
                    seqs.Add(message.GetProperty("seq").GetInt64());
                }

                Assert.Equal(Enumerable.Range(1, 150).Select(i => (long)i), seqs);
                var extra = await member.TryNextAsync(TimeSpan.FromMilliseconds(200));
                Assert.True(extra is null || extra.Value.GetProperty("type").GetString() != "message", $"{member.User} got an extra message");
            }
        }
        finally
        {
            foreach (var member in members)
            {
                await member.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task Health_and_readiness_answer()
    {
        using var http = fixture.A.Http();
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/healthz")).StatusCode);
        var ready = await http.GetAsync("/readyz");
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        Assert.StartsWith("ready\n", await ready.Content.ReadAsStringAsync());
    }

    /// <summary>/metrics is OpenTelemetry's Prometheus text: our series (prefix orleanschat_) move with traffic, and
    /// Orleans', the runtime's and Kestrel's are there. Gateways of this fixture share the process (and so the
    /// counters' totals): the checks are on increases of plain counters, which only grow; observable series
    /// report one process-wide value, so here they are only checked to exist.</summary>
    [Fact]
    public async Task Metrics_count_connections_posts_errors_and_latencies()
    {
        using var http = fixture.A.Http();
        var before = PrometheusText.Parse(await http.GetStringAsync("/metrics"));
        var room = NewRoom();
        await using (var alice = await ChatClient.ConnectAsync(fixture.A, "alice"))
        {
            await alice.JoinAsync(room);
            await alice.PostAsync(room, "counted", "m-1");
            await alice.SendAsync(new { type = "send", room = NewRoom(), text = "not joined", id = "m-2" });
            Assert.Equal("not_joined", (await alice.WaitForAsync("error")).GetProperty("code").GetString());
        }

        var after = await WaitForMetricsAsync(http, samples => samples.Sum("orleanschat_connections_closed_total") > before.Sum("orleanschat_connections_closed_total"));
        Assert.True(after.Sum("orleanschat_connections_opened_total") >= before.Sum("orleanschat_connections_opened_total") + 1);
        Assert.True(after.Sum("orleanschat_errors_total", "code=not_joined") >= before.Sum("orleanschat_errors_total", "code=not_joined") + 1);
        Assert.True(after.Sum("orleanschat_post_duration_seconds_count") >= before.Sum("orleanschat_post_duration_seconds_count") + 1);
        Assert.True(after.Sum("orleanschat_join_duration_seconds_count") >= before.Sum("orleanschat_join_duration_seconds_count") + 1);
        Assert.True(after.Sum("orleanschat_delivery_latency_seconds_count") >= before.Sum("orleanschat_delivery_latency_seconds_count") + 1);
        // Observable series (one value per gateway process; the cluster test checks them per node).
        foreach (var series in new[] { "orleanschat_frames_in_total", "orleanschat_events_out_total", "orleanschat_messages_posted_total", "orleanschat_connections", "orleanschat_outbound_queued", "orleanschat_gateway_rooms", "dotnet_process_cpu_time_seconds_total", "kestrel_active_connections" })
        {
            Assert.True(after.Has(series), $"/metrics has {series}");
        }

        Assert.Contains(after, sample => sample.Name.StartsWith("orleans_", StringComparison.Ordinal));
    }

    private static async Task<IReadOnlyList<PrometheusSample>> WaitForMetricsAsync(HttpClient http, Func<IReadOnlyList<PrometheusSample>, bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            var samples = PrometheusText.Parse(await http.GetStringAsync("/metrics"));
            if (condition(samples) || DateTime.UtcNow > deadline)
            {
                return samples;
            }

            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task Rest_history_validates_its_parameters()
    {
        using var http = fixture.A.Http();
        Assert.Equal(HttpStatusCode.BadRequest, (await http.GetAsync("/api/rooms/bad%20room/messages")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await http.GetAsync("/api/rooms/ok/messages?limit=0")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await http.GetAsync("/api/rooms/ok/messages?limit=201")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await http.GetAsync("/api/rooms/ok/messages?before=-1")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await http.GetAsync("/api/rooms/ok/messages?before=1.5")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await http.GetAsync("/api/rooms/ok/messages?before=3&after=1")).StatusCode);
        var reason = await (await http.GetAsync("/api/rooms/ok/messages?limit=abc")).Content.ReadAsStringAsync();
        Assert.Contains("limit", reason);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/api/rooms/ok/messages?limit=200")).StatusCode);
    }

    [Fact]
    public async Task Jwt_mode_takes_the_user_from_the_token_and_refuses_bad_tokens()
    {
        var token = Tokens.Create("dana", ClusterFixture.SigningKey, "orleanschat-tests", DateTime.UtcNow.AddMinutes(5));
        using var socket = new System.Net.WebSockets.ClientWebSocket();
        await socket.ConnectAsync(new Uri($"{fixture.Jwt.WsAddress}?access_token={token}&user=mallory"), CancellationToken.None);
        var buffer = new byte[4096];
        var result = await socket.ReceiveAsync(buffer, CancellationToken.None);
        using var welcome = JsonDocument.Parse(buffer.AsMemory(0, result.Count));
        Assert.Equal("dana", welcome.RootElement.GetProperty("user").GetString());

        Assert.Equal(HttpStatusCode.Unauthorized, await Handshake.StatusAsync(fixture.Jwt, "?user=dana"));
        var expired = Tokens.Create("dana", ClusterFixture.SigningKey, "orleanschat-tests", DateTime.UtcNow.AddMinutes(-5));
        Assert.Equal(HttpStatusCode.Unauthorized, await Handshake.StatusAsync(fixture.Jwt, $"?access_token={expired}"));
        var wrongKey = Tokens.Create("dana", "another-signing-key-that-is-long-enough-987654321", "orleanschat-tests", DateTime.UtcNow.AddMinutes(5));
        Assert.Equal(HttpStatusCode.Unauthorized, await Handshake.StatusAsync(fixture.Jwt, $"?access_token={wrongKey}"));
        var unsigned = string.Join('.', token.Split('.')[..2]) + ".";
        Assert.Equal(HttpStatusCode.Unauthorized, await Handshake.StatusAsync(fixture.Jwt, $"?access_token={unsigned}"));

        using var http = fixture.Jwt.Http();
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync("/api/rooms/lobby/messages")).StatusCode);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/rooms/lobby/messages");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(request)).StatusCode);
    }

    [GeneratedRegex(@"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")]
    private static partial Regex TimeFormat();
}
