using System.Text.Json;
using System.Text.RegularExpressions;

namespace OrleansChat.Tests;

/// <summary>
/// The protocol's "Additions to version 1" end to end, as a client sees them: every stored event takes a seq, edit and
/// delete of one's own messages, typing, and read state across connections. One contract, run against two gateways
/// of an in-process cluster, against the embedded gateway (both "gateways" the same) and against two gateways of
/// the local multi-process cluster with PostgreSQL.
/// </summary>
public abstract partial class AdditionsContract
{
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(700);

    /// <summary>The <c>/ws</c> address of one gateway.</summary>
    protected abstract Uri GatewayA { get; }

    /// <summary>The <c>/ws</c> address of another gateway of the same cluster (or the same one).</summary>
    protected abstract Uri GatewayB { get; }

    /// <summary>A gateway with the default rate limit (20 posts/s, burst 40).</summary>
    protected abstract Uri RateLimitedGateway { get; }

    private static string NewRoom() => $"room-{Guid.NewGuid():N}"[..20];

    private static HttpClient Http(Uri gateway)
        => new() { BaseAddress = new Uri($"http://{gateway.Authority}"), Timeout = TimeSpan.FromSeconds(30) };

    [GeneratedRegex(@"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")]
    private static partial Regex TimeFormat();

    [Fact]
    public async Task Edits_and_deletes_are_stored_events_with_the_next_seq_delivered_in_order_to_every_member()
    {
        await using var members = await AliceAndBobAsync();
        var (room, alice, bob) = (members.Room, members.Alice, members.Bob);

        var first = await alice.PostAsync(room, "helo", "m-1");
        var edit = await ChangeAsync(alice, new { type = "edit", room, seq = 1, text = "hello", id = "e-1" });
        Assert.Equal("edit", edit.GetProperty("type").GetString());
        Assert.Equal(room, edit.GetProperty("room").GetString());
        Assert.Equal(2, edit.GetProperty("seq").GetInt64());
        Assert.Equal("alice", edit.GetProperty("user").GetString());
        Assert.Equal(1, edit.GetProperty("target").GetInt64());
        Assert.Equal("hello", edit.GetProperty("text").GetString());
        Assert.Equal("e-1", edit.GetProperty("id").GetString());
        Assert.Matches(TimeFormat(), edit.GetProperty("time").GetString()!);

        // Any number of edits.
        await ChangeAsync(alice, new { type = "edit", room, seq = 1, text = "hello, bob", id = "e-2" });
        await alice.PostAsync(room, "second", "m-2");
        var delete = await ChangeAsync(alice, new { type = "delete", room, seq = 4, id = "d-1" });
        Assert.Equal("delete", delete.GetProperty("type").GetString());
        Assert.Equal(5, delete.GetProperty("seq").GetInt64());
        Assert.Equal(4, delete.GetProperty("target").GetInt64());
        Assert.Equal("alice", delete.GetProperty("user").GetString());
        Assert.Equal("d-1", delete.GetProperty("id").GetString());
        Assert.False(delete.TryGetProperty("text", out _));

        // Bob, on the other gateway, gets every stored event once, in seq order, as it was delivered to alice.
        var seen = new List<JsonElement>();
        while (seen.Count < 5)
        {
            var next = await bob.NextAsync();
            if (next.TryGetProperty("seq", out _))
            {
                seen.Add(next);
            }
        }

        Assert.Equal(["message", "edit", "edit", "message", "delete"], seen.Select(e => e.GetProperty("type").GetString()));
        Assert.Equal([1L, 2, 3, 4, 5], seen.Select(e => e.GetProperty("seq").GetInt64()));
        Assert.Equal(delete.GetRawText(), seen[4].GetRawText());
        Assert.Equal(first.GetProperty("time").GetString(), seen[0].GetProperty("time").GetString());

        // Every history carries the stored events, type included: joined (with and without since), history, REST.
        await using var carol = await ChatClient.ConnectAsync(GatewayB, "carol");
        var joined = await carol.JoinAsync(room);
        Assert.Equal(5, joined.GetProperty("seq").GetInt64());
        AssertSameEvents(seen, joined.GetProperty("history"));
        var recovered = await carol.JoinAsync(room, since: 2);
        AssertSameEvents(seen[2..], recovered.GetProperty("history"));
        await carol.SendAsync(new { type = "history", room, after = 1, limit = 3 });
        AssertSameEvents(seen[1..4], (await carol.WaitForAsync("history")).GetProperty("messages"));
        using var http = Http(GatewayA);
        using var rest = JsonDocument.Parse(await http.GetStringAsync($"/api/rooms/{room}/messages"));
        AssertSameEvents(seen, rest.RootElement.GetProperty("messages"));
    }

    [Fact]
    public async Task Only_a_live_message_of_ones_own_can_be_changed()
    {
        await using var members = await AliceAndBobAsync();
        var (room, alice, bob) = (members.Room, members.Alice, members.Bob);
        await alice.PostAsync(room, "alice's", "m-1");
        await ChangeAsync(alice, new { type = "edit", room, seq = 1, text = "alice's, edited", id = "e-1" });
        await alice.PostAsync(room, "to be deleted", "m-2");
        await ChangeAsync(alice, new { type = "delete", room, seq = 3, id = "d-1" });

        // Someone else's message: forbidden.
        await AssertRefusedAsync(bob, "forbidden", new { type = "edit", room, seq = 1, text = "mine now", id = "b-1" });
        await AssertRefusedAsync(bob, "forbidden", new { type = "delete", room, seq = 1, id = "b-2" });
        // No such seq, an edit event, a deletion, a deleted message: not_found (before forbidden).
        await AssertRefusedAsync(alice, "not_found", new { type = "edit", room, seq = 99, text = "x", id = "a-1" });
        await AssertRefusedAsync(alice, "not_found", new { type = "edit", room, seq = 0, text = "x", id = "a-2" });
        await AssertRefusedAsync(alice, "not_found", new { type = "edit", room, seq = 2, text = "x", id = "a-3" });
        await AssertRefusedAsync(alice, "not_found", new { type = "delete", room, seq = 4, id = "a-4" });
        await AssertRefusedAsync(alice, "not_found", new { type = "edit", room, seq = 3, text = "back", id = "a-5" });
        await AssertRefusedAsync(alice, "not_found", new { type = "delete", room, seq = 3, id = "a-6" });
        await AssertRefusedAsync(bob, "not_found", new { type = "delete", room, seq = 3, id = "b-3" });

        // Nothing of it was stored: the next post continues the seq.
        Assert.Equal(5, (await alice.PostAsync(room, "still 5")).GetProperty("seq").GetInt64());
    }

    [Fact]
    public async Task Changes_are_checked_like_a_send_in_the_protocols_order()
    {
        var room = NewRoom();
        await using var alice = await ChatClient.ConnectAsync(GatewayA, "alice");
        await alice.JoinAsync(room);
        await alice.PostAsync(room, "original", "m-1");

        // Well-formed first: a missing, negative, fractional or string seq, a missing id, an empty text.
        await AssertRefusedAsync(alice, "bad_request", new { type = "edit", room, text = "x", id = "x-1" });
        await AssertRefusedAsync(alice, "bad_request", new { type = "edit", room, seq = -1, text = "x", id = "x-2" });
        await AssertRefusedAsync(alice, "bad_request", new { type = "edit", room, seq = 1.5, text = "x", id = "x-3" });
        await AssertRefusedAsync(alice, "bad_request", new { type = "delete", room, seq = "1", id = "x-4" });
        await AssertRefusedAsync(alice, "bad_request", new { type = "edit", room, seq = 1, text = "", id = "x-5" });
        await alice.SendAsync(new { type = "delete", room, seq = 1 });
        Assert.Equal("bad_request", (await alice.WaitForAsync("error")).GetProperty("code").GetString());
        // Then the room name, then joined, then the size of an edit's text.
        await AssertRefusedAsync(alice, "bad_room", new { type = "edit", room = "bad room", seq = 1, text = "x", id = "x-6" });
        await AssertRefusedAsync(alice, "not_joined", new { type = "delete", room = NewRoom(), seq = 1, id = "x-7" });
        await AssertRefusedAsync(alice, "too_large", new { type = "edit", room, seq = 1, text = new string('x', 4097), id = "x-8" });
        // Well-formed beats a bad room; a bad room beats not joined.
        await AssertRefusedAsync(alice, "bad_request", new { type = "edit", room = "bad room", seq = -3, text = "x", id = "x-9" });
    }

    [Fact]
    public async Task Edits_and_deletes_take_tokens_from_the_send_bucket()
    {
        var room = NewRoom();
        await using var client = await ChatClient.ConnectAsync(RateLimitedGateway, "hank");
        await client.JoinAsync(room);
        await client.PostAsync(room, "target", "m-0");
        // Burst 40, one taken by the send: deletes of a message that does not exist take the rest (each answered
        // not_found), and an edit right behind them is refused for the rate, with its id.
        for (var i = 0; i < 45; i++)
        {
            await client.SendAsync(new { type = "delete", room, seq = 999, id = $"d-{i}" });
        }

        await client.SendAsync(new { type = "edit", room, seq = 1, text = "x", id = "late" });
        var errors = new List<JsonElement>();
        while (errors.Count < 46)
        {
            errors.Add(await client.WaitForAsync("error"));
        }

        Assert.InRange(errors.Count(e => e.GetProperty("code").GetString() == "not_found"), 39, 44);
        Assert.Equal("rate_limited", errors[^1].GetProperty("code").GetString());
        Assert.Equal("late", errors[^1].GetProperty("id").GetString());
    }

    [Fact]
    public async Task A_resend_gets_the_original_event_even_after_its_target_was_deleted_and_ids_are_shared_with_send()
    {
        await using var members = await AliceAndBobAsync();
        var (room, alice, bob) = (members.Room, members.Alice, members.Bob);
        await alice.PostAsync(room, "first", "m-1");
        var edit = await ChangeAsync(alice, new { type = "edit", room, seq = 1, text = "first!", id = "e-1" });
        var delete = await ChangeAsync(alice, new { type = "delete", room, seq = 1, id = "d-1" });

        // The edit's id again, after its target is gone: the original edit, to the resender only.
        await alice.SendAsync(new { type = "edit", room, seq = 1, text = "first!", id = "e-1" });
        Assert.Equal(edit.GetRawText(), (await alice.WaitForAsync("edit")).GetRawText());
        await alice.SendAsync(new { type = "delete", room, seq = 1, id = "d-1" });
        Assert.Equal(delete.GetRawText(), (await alice.WaitForAsync("delete")).GetRawText());
        // A send's id used by an edit: the send's message, not an edit.
        await alice.SendAsync(new { type = "edit", room, seq = 1, text = "other", id = "m-1" });
        var original = await alice.WaitForAsync("message");
        Assert.Equal(1, original.GetProperty("seq").GetInt64());
        Assert.Equal("first", original.GetProperty("text").GetString());

        // Bob got each event once; nothing was stored again.
        var bobSeqs = new List<long>();
        while (await bob.TryNextAsync(Quiet) is { } e)
        {
            if (e.TryGetProperty("seq", out var seq))
            {
                bobSeqs.Add(seq.GetInt64());
            }
        }

        Assert.Equal([1L, 2, 3], bobSeqs);
        Assert.Equal(4, (await alice.PostAsync(room, "next")).GetProperty("seq").GetInt64());
    }

    [Fact]
    public async Task Typing_reaches_the_other_members_on_every_gateway_once_a_second_and_is_never_stored()
    {
        var room = NewRoom();
        await using var alice = await ChatClient.ConnectAsync(GatewayA, "alice");
        await using var aliceTab = await ChatClient.ConnectAsync(GatewayB, "alice");
        await using var bob = await ChatClient.ConnectAsync(GatewayA, "bob");
        await using var carol = await ChatClient.ConnectAsync(GatewayB, "carol");
        foreach (var client in new[] { alice, aliceTab, bob, carol })
        {
            await client.JoinAsync(room);
        }

        await Drain(alice, aliceTab, bob, carol);
        // Five in a burst: one goes on, the rest are dropped silently (no error).
        for (var i = 0; i < 5; i++)
        {
            await alice.SendAsync(new { type = "typing", room });
        }

        foreach (var other in new[] { bob, carol })
        {
            var typing = await other.WaitForAsync("typing");
            Assert.Equal(room, typing.GetProperty("room").GetString());
            Assert.Equal("alice", typing.GetProperty("user").GetString());
            Assert.Null(await other.TryNextAsync(Quiet));
        }

        // Not to the typist's own connections, on either gateway; and no answer to the typist.
        Assert.Null(await alice.TryNextAsync(TimeSpan.FromMilliseconds(100)));
        Assert.Null(await aliceTab.TryNextAsync(TimeSpan.FromMilliseconds(100)));

        // A second later the next one goes on.
        await Task.Delay(TimeSpan.FromSeconds(1.1));
        await alice.SendAsync(new { type = "typing", room });
        Assert.Equal("alice", (await carol.WaitForAsync("typing")).GetProperty("user").GetString());

        // Not stored, no seq.
        Assert.Equal(1, (await bob.PostAsync(room, "first stored event")).GetProperty("seq").GetInt64());
    }

    [Fact]
    public async Task Typing_needs_a_valid_joined_room_and_takes_no_send_tokens()
    {
        var room = NewRoom();
        await using var client = await ChatClient.ConnectAsync(RateLimitedGateway, "ivy");
        await AssertErrorAsync(client, "bad_room", new { type = "typing", room = "no good" });
        await AssertErrorAsync(client, "not_joined", new { type = "typing", room });
        await client.SendAsync(new { type = "typing" });
        Assert.Equal("bad_request", (await client.WaitForAsync("error")).GetProperty("code").GetString());

        await client.JoinAsync(room);
        for (var i = 0; i < 100; i++)
        {
            await client.SendAsync(new { type = "typing", room });
        }

        // The whole burst of 40 sends is still there.
        for (var i = 0; i < 40; i++)
        {
            await client.SendAsync(new { type = "send", room, text = $"t{i}", id = $"t-{i}" });
        }

        for (var i = 0; i < 40; i++)
        {
            Assert.Equal("message", (await client.NextAsync()).GetProperty("type").GetString());
        }
    }

    [Fact]
    public async Task Read_state_rises_only_reaches_the_users_other_connections_and_comes_back_in_joined()
    {
        var room = NewRoom();
        var user = $"reader-{Guid.NewGuid():N}"[..16];
        await using var phone = await ChatClient.ConnectAsync(GatewayA, user);
        await using var laptop = await ChatClient.ConnectAsync(GatewayB, user);
        await using var bob = await ChatClient.ConnectAsync(GatewayB, "bob");
        Assert.Equal(0, (await phone.JoinAsync(room)).GetProperty("read").GetInt64());
        await laptop.JoinAsync(room);
        await bob.JoinAsync(room);
        for (var i = 0; i < 5; i++)
        {
            await bob.PostAsync(room, $"news {i}");
        }

        await Drain(phone, laptop, bob);
        await phone.SendAsync(new { type = "read", room, seq = 3 });
        var read = await laptop.WaitForAsync("read");
        Assert.Equal(room, read.GetProperty("room").GetString());
        Assert.Equal(3, read.GetProperty("seq").GetInt64());
        // Not to the connection that sent it, nor to anyone else.
        Assert.Null(await phone.TryNextAsync(Quiet));
        Assert.Null(await bob.TryNextAsync(TimeSpan.FromMilliseconds(100)));

        // Not above the stored value: nothing changes, nobody is told.
        await laptop.SendAsync(new { type = "read", room, seq = 3 });
        await laptop.SendAsync(new { type = "read", room, seq = 1 });
        Assert.Null(await phone.TryNextAsync(Quiet));

        // Above the room's latest seq: counts as the latest.
        await laptop.SendAsync(new { type = "read", room, seq = 1000 });
        Assert.Equal(5, (await phone.WaitForAsync("read")).GetProperty("seq").GetInt64());

        // Every join carries it, on any gateway; another user's is their own.
        await using var tablet = await ChatClient.ConnectAsync(GatewayA, user);
        Assert.Equal(5, (await tablet.JoinAsync(room)).GetProperty("read").GetInt64());
        Assert.Equal(0, (await bob.JoinAsync(room)).GetProperty("read").GetInt64());
    }

    [Fact]
    public async Task Read_is_checked_for_shape_room_and_joined()
    {
        var room = NewRoom();
        await using var client = await ChatClient.ConnectAsync(GatewayA, "jill");
        await AssertErrorAsync(client, "not_joined", new { type = "read", room, seq = 1 });
        await AssertErrorAsync(client, "bad_room", new { type = "read", room = "no good", seq = 1 });
        await client.JoinAsync(room);
        await AssertErrorAsync(client, "bad_request", new { type = "read", room, seq = -1 });
        await AssertErrorAsync(client, "bad_request", new { type = "read", room, seq = "2" });
        await AssertErrorAsync(client, "bad_request", new { type = "read", room });
        // Zero is a valid seq that is never above a stored one: no answer at all.
        await client.SendAsync(new { type = "read", room, seq = 0 });
        Assert.Null(await client.TryNextAsync(Quiet));
    }

    /// <summary>A new room with alice (gateway A) and bob (gateway B) in it.</summary>
    private async Task<TwoMembers> AliceAndBobAsync()
    {
        var room = NewRoom();
        var alice = await ChatClient.ConnectAsync(GatewayA, "alice");
        var bob = await ChatClient.ConnectAsync(GatewayB, "bob");
        await alice.JoinAsync(room);
        await bob.JoinAsync(room);
        return new TwoMembers(room, alice, bob);
    }

    private sealed record TwoMembers(string Room, ChatClient Alice, ChatClient Bob) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await Alice.DisposeAsync();
            await Bob.DisposeAsync();
        }
    }

    /// <summary>Sends an edit or delete and waits for its acknowledgement (the sender's copy of the stored event).</summary>
    private static async Task<JsonElement> ChangeAsync(ChatClient client, object request)
    {
        using var sent = JsonDocument.Parse(JsonSerializer.Serialize(request));
        var id = sent.RootElement.GetProperty("id").GetString();
        var type = sent.RootElement.GetProperty("type").GetString()!;
        await client.SendAsync(request);
        return await client.WaitForAsync(type, e => e.GetProperty("id").GetString() == id);
    }

    /// <summary>A change refused with <paramref name="code"/>: the error carries the change's id and room.</summary>
    private static async Task AssertRefusedAsync(ChatClient client, string code, object request)
    {
        using var sent = JsonDocument.Parse(JsonSerializer.Serialize(request));
        await client.SendAsync(request);
        var error = await client.WaitForAsync("error");
        Assert.Equal(code, error.GetProperty("code").GetString());
        Assert.Equal(sent.RootElement.GetProperty("id").GetString(), error.GetProperty("id").GetString());
        Assert.Equal(sent.RootElement.GetProperty("room").GetString(), error.GetProperty("room").GetString());
    }

    private static async Task AssertErrorAsync(ChatClient client, string code, object request)
    {
        using var sent = JsonDocument.Parse(JsonSerializer.Serialize(request));
        await client.SendAsync(request);
        var error = await client.WaitForAsync("error");
        Assert.Equal(code, error.GetProperty("code").GetString());
        Assert.Equal(sent.RootElement.GetProperty("room").GetString(), error.GetProperty("room").GetString());
    }

    private static void AssertSameEvents(IReadOnlyList<JsonElement> expected, JsonElement items)
        => Assert.Equal(expected.Select(e => e.GetRawText()), items.EnumerateArray().Select(e => e.GetRawText()));

    /// <summary>Takes every event that is on its way (presence of later joiners, own acknowledgements).</summary>
    private static async Task Drain(params ChatClient[] clients)
    {
        foreach (var client in clients)
        {
            while (await client.TryNextAsync(TimeSpan.FromMilliseconds(300)) is not null)
            {
            }
        }
    }
}
