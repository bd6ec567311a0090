using System.Net.Http.Headers;
using System.Threading.Channels;
using OrleansChat.Client;

namespace OrleansChat.Gateway.Tests;

/// <summary>OrleansChat.Client against the in-process gateways A and B: the library speaks protocol v1 the way
/// the hand-written test client does.</summary>
[Collection(ClusterCollection.Name)]
public sealed class ClientLibraryTests(ClusterFixture fixture)
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);

    [Fact]
    public async Task A_message_sent_through_A_reaches_a_member_on_B_once_and_acknowledges_the_sender()
    {
        var room = Room();
        await using var alice = await ConnectAsync(fixture.A, "alice");
        await using var bob = await ConnectAsync(fixture.B, "bob");
        var bobEvents = Inbox(bob);
        await alice.JoinAsync(room);
        var joined = await bob.JoinAsync(room);
        Assert.Contains("bob", joined.Members);

        var ack = await alice.SendAsync(room, "hello bob");
        Assert.Equal(joined.Seq + 1, ack.Seq);
        Assert.Equal(ChatMessageType.Message, ack.Type);
        Assert.Equal("alice", ack.User);

        var received = await NextAsync<ChatMessage>(bobEvents);
        Assert.Equal(ack, received);
        Assert.Null(await NextOrNullAsync<ChatMessage>(bobEvents, TimeSpan.FromMilliseconds(500)));
    }

    [Fact]
    public async Task A_resend_under_the_same_id_returns_the_original_and_is_not_delivered_twice()
    {
        var room = Room();
        await using var alice = await ConnectAsync(fixture.A, "alice");
        await using var bob = await ConnectAsync(fixture.B, "bob");
        var aliceEvents = Inbox(alice);
        var bobEvents = Inbox(bob);
        await alice.JoinAsync(room);
        await bob.JoinAsync(room);

        var first = await alice.SendAsync(room, "once", id: "same-id");
        var again = await alice.SendAsync(room, "once", id: "same-id");
        var next = await alice.SendAsync(room, "twice");

        Assert.Equal(first, again);
        Assert.Equal(first.Seq + 1, next.Seq);
        foreach (var inbox in new[] { aliceEvents, bobEvents })
        {
            Assert.Equal(first, await NextAsync<ChatMessage>(inbox));
            Assert.Equal(next, await NextAsync<ChatMessage>(inbox));
        }
    }

    [Fact]
    public async Task Edit_delete_typing_and_read_round_trip()
    {
        var room = Room();
        await using var alice = await ConnectAsync(fixture.A, "alice");
        await using var aliceElsewhere = await ConnectAsync(fixture.B, "alice");
        await using var bob = await ConnectAsync(fixture.B, "bob");
        var elsewhereEvents = Inbox(aliceElsewhere);
        var bobEvents = Inbox(bob);
        await alice.JoinAsync(room);
        await aliceElsewhere.JoinAsync(room);
        await bob.JoinAsync(room);

        var message = await alice.SendAsync(room, "draft");
        var edit = await alice.EditAsync(room, message.Seq, "final");
        var delete = await alice.DeleteAsync(room, message.Seq);
        Assert.Equal((ChatMessageType.Edit, message.Seq, "final", message.Seq + 1), (edit.Type, edit.Target, edit.Text, edit.Seq));
        Assert.Equal((ChatMessageType.Delete, message.Seq, message.Seq + 2), (delete.Type, delete.Target, delete.Seq));
        Assert.Equal([message, edit, delete], [await NextAsync<ChatMessage>(bobEvents), await NextAsync<ChatMessage>(bobEvents), await NextAsync<ChatMessage>(bobEvents)]);

        var typed = TaskFor<Typing>(alice);
        await bob.TypingAsync(room);
        Assert.Equal(new Typing(room, "bob"), await typed.WaitAsync(Wait));

        await alice.MarkReadAsync(room, delete.Seq);
        Assert.Equal(new Read(room, delete.Seq), await NextAsync<Read>(elsewhereEvents));
        Assert.Equal(delete.Seq, (await bob.JoinAsync(room)).Seq);
        Assert.Equal(delete.Seq, (await alice.JoinAsync(room)).Read);

        var history = await bob.HistoryAsync(room, after: 0);
        Assert.Equal([message, edit, delete], history);
    }

    [Fact]
    public async Task Refusals_surface_as_ChatException_with_the_protocol_code()
    {
        var room = Room();
        await using var alice = await ConnectAsync(fixture.A, "alice");
        await using var bob = await ConnectAsync(fixture.A, "bob");

        Assert.Equal("not_joined", (await Assert.ThrowsAsync<ChatException>(() => alice.SendAsync(room, "hi"))).Code);
        Assert.Equal("bad_room", (await Assert.ThrowsAsync<ChatException>(() => alice.JoinAsync("no spaces"))).Code);
        Assert.Equal("not_joined", (await Assert.ThrowsAsync<ChatException>(() => alice.LeaveAsync(room))).Code);

        await alice.JoinAsync(room);
        await bob.JoinAsync(room);
        var message = await alice.SendAsync(room, "mine");
        var forbidden = await Assert.ThrowsAsync<ChatException>(() => bob.EditAsync(room, message.Seq, "yours", id: "bob-edit"));
        Assert.Equal(("forbidden", "bob-edit", room), (forbidden.Code, forbidden.Id, forbidden.Room));
        Assert.Equal("not_found", (await Assert.ThrowsAsync<ChatException>(() => alice.DeleteAsync(room, message.Seq + 100))).Code);
        Assert.Equal("too_large", (await Assert.ThrowsAsync<ChatException>(() => alice.SendAsync(room, new string('x', 5000)))).Code);

        await alice.LeaveAsync(room);
        Assert.Equal("not_joined", (await Assert.ThrowsAsync<ChatException>(() => alice.SendAsync(room, "gone"))).Code);
    }

    [Fact]
    public async Task A_jwt_client_is_known_by_its_subject()
    {
        var room = Room();
        await using var client = new OrleansChatClient(new ChatClientOptions
        {
            Gateways = [fixture.Jwt.WsAddress],
            TokenProvider = _ => ValueTask.FromResult(Tokens.Create("jwt-user", ClusterFixture.SigningKey, "orleanschat-tests", DateTime.UtcNow.AddMinutes(10))),
        });
        await client.ConnectAsync();
        Assert.Equal("jwt-user", client.User);
        await client.JoinAsync(room);
        Assert.Equal("jwt-user", (await client.SendAsync(room, "signed")).User);
    }

    [Fact]
    public async Task A_1008_from_the_server_ends_the_event_stream_without_reconnecting()
    {
        var user = $"erin-{Guid.NewGuid():N}"[..12];
        await using var client = await ConnectAsync(fixture.A, user);
        var events = Inbox(client);
        using var api = fixture.A.Http();
        api.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", ClusterFixture.ApiKey);

        Disconnected? last = null;
        for (var attempt = 0; attempt < 20 && last is null; attempt++)
        {
            (await api.PostAsync($"/api/users/{user}/disconnect", null)).EnsureSuccessStatusCode();
            last = await NextOrNullAsync<Disconnected>(events, TimeSpan.FromMilliseconds(500));
        }

        Assert.NotNull(last);
        Assert.False(last.WillReconnect);
        Assert.Equal(System.Net.WebSockets.WebSocketCloseStatus.PolicyViolation, last.Status);
        Assert.False(await events.WaitToReadAsync());
        Assert.Equal("disconnected", (await Assert.ThrowsAsync<ChatException>(() => client.JoinAsync(Room()))).Code);
        Assert.Equal(0, client.Reconnects);
    }

    private static string Room() => $"lib-{Guid.NewGuid():N}";

    private static async Task<OrleansChatClient> ConnectAsync(GatewayFactory gateway, string user)
    {
        var client = new OrleansChatClient(new ChatClientOptions { Gateways = [gateway.WsAddress], User = user });
        await client.ConnectAsync();
        return client;
    }

    /// <summary>The client's event stream, read from now on into a channel the test takes events from.</summary>
    private static ChannelReader<ChatEvent> Inbox(OrleansChatClient client)
    {
        var channel = Channel.CreateUnbounded<ChatEvent>();
        _ = Task.Run(async () =>
        {
            await foreach (var e in client.Events())
            {
                channel.Writer.TryWrite(e);
            }

            channel.Writer.TryComplete();
        });
        return channel.Reader;
    }

    private static Task<T> TaskFor<T>(OrleansChatClient client) where T : ChatEvent
    {
        var seen = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.EventReceived += e =>
        {
            if (e is T match)
            {
                seen.TrySetResult(match);
            }
        };
        return seen.Task;
    }

    private static async Task<T> NextAsync<T>(ChannelReader<ChatEvent> events) where T : ChatEvent
        => await NextOrNullAsync<T>(events, Wait) ?? throw new TimeoutException($"no {typeof(T).Name} within {Wait}");

    /// <summary>The next event of type <typeparamref name="T"/>, skipping others; null when none comes in time.</summary>
    private static async Task<T?> NextOrNullAsync<T>(ChannelReader<ChatEvent> events, TimeSpan timeout) where T : ChatEvent
    {
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            while (true)
            {
                if (await events.ReadAsync(cancel.Token) is T match)
                {
                    return match;
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or ChannelClosedException)
        {
            return null;
        }
    }
}
