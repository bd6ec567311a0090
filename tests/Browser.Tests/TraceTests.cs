namespace OrleansChat.Browser.Tests;

/// <summary>
/// Traces across processes (issue 10): the fixture's silo and gateways export over OTLP to a receiver in this test
/// process, as to any OpenTelemetry backend. One post is one trace: the gateway's <c>chat.post</c>, the grain call,
/// the silo's <c>chat.store</c>, and the notification's <c>chat.deliver</c> back on a gateway.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class TraceTests(ChatClusterFixture cluster)
{
    [Fact]
    public async Task A_post_is_one_trace_from_gateway_through_the_room_to_the_store()
    {
        var room = $"traced-{Guid.NewGuid():N}"[..20];
        await SeedClient.SendAsync(cluster.UrlB, "tracer", room, ["follow me"]);

        ExportedSpan? store = null;
        ExportedSpan? post = null;
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (DateTime.UtcNow < deadline)
        {
            var spans = cluster.Otlp.Spans;
            // This room's commit, and in its trace the gateway's post and the delivery of the room's notification.
            foreach (var candidate in spans.Where(span => span.Name == "chat.store" && span.Service == "orleanschat-silo" && InRoom(span)))
            {
                post = spans.FirstOrDefault(span => span.Name == "chat.post" && span.Service == "orleanschat-gateway" && InRoom(span) && span.TraceId == candidate.TraceId);
                if (post is not null && spans.Any(span => span.Name == "chat.deliver" && InRoom(span) && span.TraceId == candidate.TraceId))
                {
                    store = candidate;
                    break;
                }
            }

            if (store is not null)
            {
                break;
            }

            await Task.Delay(200);
        }

        var names = string.Join(", ", cluster.Otlp.Spans.Select(span => $"{span.Service}/{span.Name}").Distinct());
        Assert.True(store is not null, $"a chat.store span in the same trace as a gateway's chat.post and chat.deliver; spans seen: {names}");
        // Between them, Orleans' own spans of the grain call (client and server side) in the same trace.
        var trace = cluster.Otlp.Spans.Where(span => span.TraceId == store!.TraceId).ToArray();
        Assert.Contains(trace, span => span.Service == "orleanschat-silo" && span.Name != "chat.store");
        Assert.All(trace, span => Assert.Equal(32, span.TraceId.Length));

        bool InRoom(ExportedSpan span) => span.Attributes.GetValueOrDefault("chat.room") == room;
    }
}
