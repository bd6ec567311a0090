using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text.Json;

namespace OrleansChat.Gateway.Tests;

/// <summary>Pipelined sends and flow control (docs/architecture.md, "Flow control"), end to end over real
/// sockets on two gateways of one cluster. Gateways A and B run the default flow-control settings
/// (high water 256 of a 1024-event queue, low water 64, stuck after 500 ms) and a 64 KiB socket send buffer.</summary>
[Collection(ClusterCollection.Name)]
public sealed class FlowControlTests(ClusterFixture fixture)
{
    private const int StuckMilliseconds = 500;

    [Fact]
    public async Task Sends_pipelined_by_one_connection_reach_every_member_in_send_order_each_once()
    {
        const int Count = 500;
        var room = ProtocolTests.NewRoom();
        await using var near = await ChatClient.ConnectAsync(fixture.A, "near");
        await near.JoinAsync(room);
        await using var far = await ChatClient.ConnectAsync(fixture.B, "far");
        await far.JoinAsync(room);
        await using var sender = await ChatClient.ConnectAsync(fixture.A, "piper");
        await sender.JoinAsync(room);

        // All 500 frames go out before the first acknowledgement is read.
        for (var i = 0; i < Count; i++)
        {
            await sender.SendAsync(new { type = "send", room, text = $"p{i}", id = $"p-{i}" });
        }

        foreach (var member in new[] { sender, near, far })
        {
            var messages = await MessagesAsync(member, Count);
            Assert.Equal(Enumerable.Range(0, Count).Select(i => $"p-{i}"), messages.Select(m => m.Id));
            Assert.Equal(Enumerable.Range(1, Count).Select(i => (long)i), messages.Select(m => m.Seq));
            await AssertNoMoreMessagesAsync(member, TimeSpan.FromMilliseconds(300));
        }
    }

    [Fact]
    public async Task A_reader_slower_than_the_senders_slows_them_and_nobody_is_closed_or_misses_anything()
    {
        const int PerSender = 1500;
        const int Total = 2 * PerSender;
        var room = ProtocolTests.NewRoom();
        var text = new string('s', 1000);

        // About 900 events/s: far slower than two pipelining senders, fast enough never to look stuck.
        using var slow = await RawWebSocket.ConnectAsync(fixture.A, "slowpoke");
        await slow.SendTextAsync($"{{\"type\":\"join\",\"room\":\"{room}\"}}");
        var slowSeqs = new List<long>();
        var slowRead = 0;
        var reading = Task.Run(() => slow.ReadEventsPacedAsync(1_000_000, json =>
        {
            using var e = JsonDocument.Parse(json);
            if (e.RootElement.GetProperty("type").GetString() == "message")
            {
                slowSeqs.Add(e.RootElement.GetProperty("seq").GetInt64());
                Volatile.Write(ref slowRead, slowSeqs.Count);
            }

            return slowSeqs.Count < Total;
        }, TimeSpan.FromSeconds(90)));

        await using var fast = await ChatClient.ConnectAsync(fixture.B, "fast");
        await fast.JoinAsync(room);
        await using var localSender = await ChatClient.ConnectAsync(fixture.A, "flood-a");
        await localSender.JoinAsync(room);
        await using var remoteSender = await ChatClient.ConnectAsync(fixture.B, "flood-b");
        await remoteSender.JoinAsync(room);

        // Each sender pipelines everything; while the slow reader is behind, the room must hold the
        // senders back, so an acknowledgement never runs further ahead of the slow reader than its queue.
        var maxLead = 0;
        async Task FloodAsync(ChatClient sender)
        {
            var sending = Task.Run(async () =>
            {
                for (var i = 0; i < PerSender; i++)
                {
                    await sender.SendAsync(new { type = "send", room, text, id = $"{sender.User}-{i}" });
                }
            });

            var acked = 0;
            while (acked < PerSender)
            {
                var e = await sender.NextAsync(TimeSpan.FromSeconds(60));
                if (e.GetProperty("type").GetString() == "message" && e.GetProperty("user").GetString() == sender.User)
                {
                    acked++;
                    var seq = (int)e.GetProperty("seq").GetInt64();
                    InterlockedMax(ref maxLead, seq - Volatile.Read(ref slowRead));
                }
            }

            await sending;
        }

        await Task.WhenAll(FloodAsync(localSender), FloodAsync(remoteSender));
        var fastMessages = await MessagesAsync(fast, Total, TimeSpan.FromSeconds(60));
        Assert.Equal(Enumerable.Range(1, Total).Select(i => (long)i), fastMessages.Select(m => m.Seq));

        Assert.Null(await reading.WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Equal(Enumerable.Range(1, Total).Select(i => (long)i), slowSeqs);
        // At most the queue (1024) plus what is on its way: the write pump's packed frame and Kestrel's output
        // (64 KiB each), the socket buffers (64 KiB sent, 8 KiB received): ~200 events. Without flow control
        // the senders finish while the reader is a few hundred messages in.
        Assert.True(
            maxLead < 1024 + 300,
            $"an acknowledgement ran {maxLead} messages ahead of the slow reader: the senders were not held back");
        foreach (var client in new[] { fast, localSender, remoteSender })
        {
            Assert.Equal(WebSocketState.Open, client.Socket.State);
        }
    }

    [Fact]
    public async Task A_stuck_member_is_closed_with_1013_within_the_bound_and_holds_nobody_back_longer()
    {
        const int PerSender = 600;
        const int Rate = 100;
        var room = ProtocolTests.NewRoom();
        var text = new string('k', 2000);

        // Never reads: the kernel buffers fill, then its queue, then its room holds until it is closed.
        using var stuck = await RawWebSocket.ConnectAsync(fixture.A, "stuck");
        await stuck.SendTextAsync($"{{\"type\":\"join\",\"room\":\"{room}\"}}");
        await using var near = await ChatClient.ConnectAsync(fixture.A, "near");
        await near.JoinAsync(room);
        await using var far = await ChatClient.ConnectAsync(fixture.B, "far");
        await far.JoinAsync(room);
        await using var senderA = await ChatClient.ConnectAsync(fixture.A, "pace-a");
        await senderA.JoinAsync(room);
        await using var senderB = await ChatClient.ConnectAsync(fixture.B, "pace-b");
        await senderB.JoinAsync(room);

        var sentAt = new ConcurrentDictionary<string, long>();
        async Task PaceAsync(ChatClient sender)
        {
            var clock = Stopwatch.StartNew();
            for (var i = 0; i < PerSender; i++)
            {
                var id = $"{sender.User}-{i}";
                sentAt[id] = Stopwatch.GetTimestamp();
                await sender.SendAsync(new { type = "send", room, text, id });
                var due = TimeSpan.FromSeconds((i + 1.0) / Rate) - clock.Elapsed;
                if (due > TimeSpan.Zero)
                {
                    await Task.Delay(due);
                }
            }
        }

        async Task<List<double>> LatenciesAsync(ChatClient member)
        {
            var latencies = new List<double>();
            var seqs = new List<long>();
            while (latencies.Count < 2 * PerSender)
            {
                var e = await member.NextAsync(TimeSpan.FromSeconds(30));
                if (e.GetProperty("type").GetString() == "message")
                {
                    var now = Stopwatch.GetTimestamp();
                    latencies.Add(Stopwatch.GetElapsedTime(sentAt[e.GetProperty("id").GetString()!], now).TotalMilliseconds);
                    seqs.Add(e.GetProperty("seq").GetInt64());
                }
            }

            Assert.Equal(Enumerable.Range(1, 2 * PerSender).Select(i => (long)i), seqs);
            return latencies;
        }

        var receiving = new[] { LatenciesAsync(near), LatenciesAsync(far) };
        await Task.WhenAll(PaceAsync(senderA), PaceAsync(senderB));
        var latencies = await Task.WhenAll(receiving);

        // The stuck one holds its room back at most StuckMilliseconds, once; everyone else is live.
        foreach (var member in latencies)
        {
            member.Sort();
            var p99 = member[(int)(member.Count * 0.99)];
            Assert.True(p99 < 1000, $"p99 {p99:F0} ms");
            Assert.True(member[^1] < StuckMilliseconds + 1000, $"max {member[^1]:F0} ms");
        }

        var (status, _, _) = await stuck.ReadUntilClosedAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(1013, status);
    }

    [Fact]
    public async Task A_sender_dropped_with_sends_in_flight_resends_them_and_nothing_is_stored_twice()
    {
        const int Count = 300;
        var room = ProtocolTests.NewRoom();
        await using var watcher = await ChatClient.ConnectAsync(fixture.B, "watcher");
        await watcher.JoinAsync(room);

        var acked = new Dictionary<string, long>();
        var first = await ChatClient.ConnectAsync(fixture.A, "dropper");
        await first.JoinAsync(room);
        for (var i = 0; i < Count; i++)
        {
            await first.SendAsync(new { type = "send", room, text = $"d{i}", id = $"d-{i}" });
        }

        // Drop the connection with most sends still in flight.
        while (acked.Count < 20)
        {
            var e = await first.WaitForAsync("message");
            acked[e.GetProperty("id").GetString()!] = e.GetProperty("seq").GetInt64();
        }

        first.Socket.Abort();
        await first.DisposeAsync();

        // Reconnect (the other gateway), catch up, and resend everything under the same ids.
        await using var second = await ChatClient.ConnectAsync(fixture.B, "dropper");
        await second.JoinAsync(room, since: 0);
        for (var i = 0; i < Count; i++)
        {
            await second.SendAsync(new { type = "send", room, text = $"d{i}", id = $"d-{i}" });
        }

        var answers = new Dictionary<string, long>();
        while (answers.Count < Count)
        {
            var e = await second.WaitForAsync("message", m => m.GetProperty("user").GetString() == "dropper");
            answers.TryAdd(e.GetProperty("id").GetString()!, e.GetProperty("seq").GetInt64());
        }

        // What was acknowledged before the drop keeps its seq; everything is stored exactly once.
        Assert.All(acked, pair => Assert.Equal(pair.Value, answers[pair.Key]));
        var seen = await MessagesAsync(watcher, Count);
        Assert.Equal(Enumerable.Range(1, Count).Select(i => (long)i), seen.Select(m => m.Seq));
        Assert.Equal(Count, seen.Select(m => m.Id).Distinct().Count());
        await AssertNoMoreMessagesAsync(watcher, TimeSpan.FromMilliseconds(500));

        using var http = fixture.A.Http();
        var tail = await http.GetFromJsonAsync<JsonElement>($"/api/rooms/{room}/messages?after={Count - 100}&limit=200");
        Assert.Equal(
            Enumerable.Range(Count - 99, 100).Select(i => (long)i),
            tail.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("seq").GetInt64()));
    }

    private static async Task<List<(long Seq, string Id)>> MessagesAsync(ChatClient member, int count, TimeSpan? timeout = null)
    {
        var messages = new List<(long, string)>();
        while (messages.Count < count)
        {
            var e = await member.WaitForAsync("message", timeout: timeout ?? TimeSpan.FromSeconds(30));
            messages.Add((e.GetProperty("seq").GetInt64(), e.GetProperty("id").GetString()!));
        }

        return messages;
    }

    /// <summary>Nothing but presence (the dropped connection's leave may come late) within <paramref name="quiet"/>.</summary>
    private static async Task AssertNoMoreMessagesAsync(ChatClient member, TimeSpan quiet)
    {
        while (await member.TryNextAsync(quiet) is { } next)
        {
            Assert.Equal("presence", next.GetProperty("type").GetString());
        }
    }

    private static void InterlockedMax(ref int target, int value)
    {
        var current = Volatile.Read(ref target);
        while (value > current)
        {
            var seen = Interlocked.CompareExchange(ref target, value, current);
            if (seen == current)
            {
                return;
            }

            current = seen;
        }
    }
}
