using System.Globalization;
using System.Text;

namespace OrleansChat.Gateway;

/// <summary>Counters and latency histograms of one gateway, rendered as Prometheus text at <c>/metrics</c>.</summary>
public sealed class GatewayMetrics
{
    private long _connectionsOpened;
    private long _connections;
    private long _framesIn;
    private long _messagesIn;
    private long _messagesDelivered;
    private long _eventsOut;
    private long _slowConsumers;
    private long _gapMessages;
    private long _holds;
    private readonly Histogram _postLatency = new();
    private readonly Histogram _joinLatency = new();

    public long Connections => Interlocked.Read(ref _connections);

    public void ConnectionOpened()
    {
        Interlocked.Increment(ref _connectionsOpened);
        Interlocked.Increment(ref _connections);
    }

    public void ConnectionClosed() => Interlocked.Decrement(ref _connections);

    public void FrameIn() => Interlocked.Increment(ref _framesIn);

    public void MessagesIn(int count) => Interlocked.Add(ref _messagesIn, count);

    public void MessagesDelivered(int count) => Interlocked.Add(ref _messagesDelivered, count);

    public void EventsOut(int count) => Interlocked.Add(ref _eventsOut, count);

    public void SlowConsumerClosed() => Interlocked.Increment(ref _slowConsumers);

    public void FlowControlHold() => Interlocked.Increment(ref _holds);

    public void GapFetched(int count) => Interlocked.Add(ref _gapMessages, count);

    public void PostLatency(TimeSpan elapsed) => _postLatency.Observe(elapsed.TotalSeconds);

    public void JoinLatency(TimeSpan elapsed) => _joinLatency.Observe(elapsed.TotalSeconds);

    public string Render(int rooms)
    {
        var text = new StringBuilder();
        Gauge(text, "orleanschat_connections", "Open WebSocket connections.", Connections);
        Counter(text, "orleanschat_connections_opened_total", "WebSocket connections accepted.", _connectionsOpened);
        Gauge(text, "orleanschat_rooms", "Rooms this gateway is subscribed to.", rooms);
        Counter(text, "orleanschat_frames_in_total", "Client frames received.", _framesIn);
        Counter(text, "orleanschat_messages_in_total", "send requests passed to a room.", _messagesIn);
        Counter(text, "orleanschat_room_messages_total", "Room messages received by this gateway (before local fan-out).", _messagesDelivered);
        Counter(text, "orleanschat_events_out_total", "Events written to client sockets.", _eventsOut);
        Counter(text, "orleanschat_queue_drops_total", "Connections closed as slow consumers (stuck in a flow-control hold, or outbound queue full).", _slowConsumers);
        Counter(text, "orleanschat_flow_control_holds_total", "Times a room held its senders because a member's outbound queue was above the high-water mark.", _holds);
        Counter(text, "orleanschat_gap_messages_total", "Messages fetched from rooms to fill delivery gaps.", _gapMessages);
        _postLatency.Render(text, "orleanschat_post_seconds", "Latency of a post: grain call until stored.");
        _joinLatency.Render(text, "orleanschat_join_seconds", "Latency of a join.");
        return text.ToString();
    }

    private static void Gauge(StringBuilder text, string name, string help, long value)
        => text.Append("# HELP ").Append(name).Append(' ').Append(help).Append("\n# TYPE ").Append(name).Append(" gauge\n")
            .Append(name).Append(' ').Append(value).Append('\n');

    private static void Counter(StringBuilder text, string name, string help, long value)
        => text.Append("# HELP ").Append(name).Append(' ').Append(help).Append("\n# TYPE ").Append(name).Append(" counter\n")
            .Append(name).Append(' ').Append(Interlocked.Read(ref value)).Append('\n');

    private sealed class Histogram
    {
        private static readonly double[] Bounds = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
        private readonly long[] _buckets = new long[Bounds.Length + 1];
        private long _count;
        private long _sumMicros;

        public void Observe(double seconds)
        {
            var index = Array.BinarySearch(Bounds, seconds);
            Interlocked.Increment(ref _buckets[index >= 0 ? index : ~index]);
            Interlocked.Increment(ref _count);
            Interlocked.Add(ref _sumMicros, (long)(seconds * 1_000_000));
        }

        public void Render(StringBuilder text, string name, string help)
        {
            text.Append("# HELP ").Append(name).Append(' ').Append(help).Append("\n# TYPE ").Append(name).Append(" histogram\n");
            long cumulative = 0;
            for (var i = 0; i < Bounds.Length; i++)
            {
                cumulative += Interlocked.Read(ref _buckets[i]);
                text.Append(name).Append("_bucket{le=\"").Append(Bounds[i].ToString(CultureInfo.InvariantCulture)).Append("\"} ").Append(cumulative).Append('\n');
            }

            text.Append(name).Append("_bucket{le=\"+Inf\"} ").Append(Interlocked.Read(ref _count)).Append('\n');
            text.Append(name).Append("_sum ").Append((Interlocked.Read(ref _sumMicros) / 1e6).ToString(CultureInfo.InvariantCulture)).Append('\n');
            text.Append(name).Append("_count ").Append(Interlocked.Read(ref _count)).Append('\n');
        }
    }
}
