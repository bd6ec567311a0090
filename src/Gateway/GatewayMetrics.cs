using System.Diagnostics.Metrics;
using OrleansChat.Gateway.Protocol;
using OrleansChat.Grains;

namespace OrleansChat.Gateway;

/// <summary>
/// The gateway's instruments on the <c>OrleansChat</c> meter, exported by OpenTelemetry (Prometheus at
/// <c>/metrics</c>, OTLP when configured). What happens once per frame or per message (frames in, events out,
/// messages posted and received) is counted in fields and read by observable instruments when the exporter
/// collects: the hot path pays one interlocked add. Rarer events are plain counters with tags.
/// </summary>
public sealed class GatewayMetrics
{
    private static readonly string[] FrameTypes = Enum.GetNames<RequestType>().Select(name => name.ToLowerInvariant()).ToArray();

    private readonly long[] _framesIn = new long[FrameTypes.Length];
    private readonly long[] _eventsOut = new long[Events.Types.Length];
    private long _connections;
    private long _messagesPosted;
    private long _roomMessages;

    private readonly Meter _meter;
    private readonly Counter<long> _connectionsOpened;
    private readonly Counter<long> _connectionsClosed;
    private readonly Counter<long> _errors;
    private readonly Counter<long> _refused;
    private readonly Counter<long> _slowConsumerCloses;
    private readonly Counter<long> _holds;
    private readonly Counter<long> _senderWaits;
    private readonly Counter<long> _renewals;
    private readonly Counter<long> _gaps;
    private readonly Counter<long> _backfilled;
    private readonly Histogram<double> _postDuration;
    private readonly Histogram<double> _joinDuration;
    private readonly Histogram<double> _deliveryLatency;

    public GatewayMetrics(IMeterFactory meters)
    {
        var meter = _meter = meters.Create(ChatDiagnostics.Name);
        meter.CreateObservableUpDownCounter("orleanschat.connections", () => Volatile.Read(ref _connections), "{connection}",
            "Open WebSocket connections.");
        meter.CreateObservableCounter("orleanschat.frames.in", () => Measure(_framesIn, FrameTypes), "{frame}",
            "Client frames received, by request type (invalid: not a request).");
        meter.CreateObservableCounter("orleanschat.events.out", () => Measure(_eventsOut, Events.Types), "{event}",
            "Events taken from outbound queues for the socket, by event type.");
        meter.CreateObservableCounter("orleanschat.messages.posted", () => Volatile.Read(ref _messagesPosted), "{message}",
            "Sends passed to a room (each post and resend once).");
        meter.CreateObservableCounter("orleanschat.messages.received", () => Volatile.Read(ref _roomMessages), "{message}",
            "Room messages this gateway received to deliver (each once, before local fan-out).");
        meter.CreateObservableCounter("orleanschat.messages.delivered", () => Volatile.Read(ref _eventsOut[Events.MessageType]), "{message}",
            "Message events taken for client sockets (one per message and recipient).");

        _connectionsOpened = meter.CreateCounter<long>("orleanschat.connections.opened", "{connection}", "WebSocket connections accepted.");
        _connectionsClosed = meter.CreateCounter<long>("orleanschat.connections.closed", "{connection}",
            "WebSocket connections closed, by close code (1006: no close handshake).");
        _refused = meter.CreateCounter<long>("orleanschat.connections.refused", "{connection}",
            "WebSocket handshakes refused before the upgrade by a limit, by reason (connection_limit, handshake_rate).");
        _errors = meter.CreateCounter<long>("orleanschat.errors", "{error}", "Error events sent to clients, by protocol error code.");
        _slowConsumerCloses = meter.CreateCounter<long>("orleanschat.slow_consumer.closes", "{connection}",
            "Connections closed with 1013: stuck in a flow-control hold, or outbound queue full.");
        _holds = meter.CreateCounter<long>("orleanschat.flow_control.holds", "{hold}",
            "Times a room held its senders because a member's outbound queue was above the high-water mark.");
        _senderWaits = meter.CreateCounter<long>("orleanschat.flow_control.sender_waits", "{wait}",
            "Posts that waited for a held room to flow again before going to the grain.");
        _renewals = meter.CreateCounter<long>("orleanschat.subscriptions.renewals", "{renewal}",
            "Subscriptions of this gateway renewed at room grains.");
        _gaps = meter.CreateCounter<long>("orleanschat.gaps.detected", "{gap}",
            "Delivery gaps detected (a seq above the next expected one): lost or late notifications.");
        _backfilled = meter.CreateCounter<long>("orleanschat.messages.backfilled", "{message}",
            "Messages fetched from rooms to fill delivery gaps.");
        _postDuration = meter.CreateHistogram<double>("orleanschat.post.duration", "s", "A post: grain call until stored and acknowledged.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBuckets });
        _joinDuration = meter.CreateHistogram<double>("orleanschat.join.duration", "s", "A join: grain call until the room answered.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBuckets });
        _deliveryLatency = meter.CreateHistogram<double>("orleanschat.delivery.latency", "s",
            "From the room timestamping a message (just before its commit) to its event queued on this gateway's sockets.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBuckets });
    }

    private static readonly double[] LatencyBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    /// <summary>Reports the rooms this gateway is subscribed to.</summary>
    public void ObserveRooms(Func<int> rooms)
        => _meter.CreateObservableGauge("orleanschat.gateway.rooms", rooms, "{room}", "Rooms this gateway is subscribed to (has members in).");

    public long Connections => Volatile.Read(ref _connections);

    /// <summary>Client frames handled so far, of every type.</summary>
    public long FramesIn => _framesIn.Sum(count => Volatile.Read(ref count));

    public void ConnectionOpened()
    {
        _connectionsOpened.Add(1);
        Interlocked.Increment(ref _connections);
    }

    public void ConnectionClosed(int closeCode)
    {
        Interlocked.Decrement(ref _connections);
        _connectionsClosed.Add(1, new KeyValuePair<string, object?>("code", closeCode));
    }

    public void FrameIn(RequestType type) => Interlocked.Increment(ref _framesIn[(int)type]);

    public void EventOut(byte[] frame) => Interlocked.Increment(ref _eventsOut[Events.TypeOf(frame)]);

    public void Refused(string reason) => _refused.Add(1, new KeyValuePair<string, object?>("reason", reason));

    public void Error(string code) => _errors.Add(1, new KeyValuePair<string, object?>("code", code));

    public void MessagesPosted(int count) => Interlocked.Add(ref _messagesPosted, count);

    public void MessagesReceived(int count) => Interlocked.Add(ref _roomMessages, count);

    public void SlowConsumerClosed(string reason) => _slowConsumerCloses.Add(1, new KeyValuePair<string, object?>("reason", reason));

    public void FlowControlHold() => _holds.Add(1);

    public void SenderWaited() => _senderWaits.Add(1);

    public void SubscriptionRenewed() => _renewals.Add(1);

    public void GapDetected() => _gaps.Add(1);

    public void Backfilled(int count) => _backfilled.Add(count);

    public void PostLatency(TimeSpan elapsed) => _postDuration.Record(elapsed.TotalSeconds);

    public void JoinLatency(TimeSpan elapsed) => _joinDuration.Record(elapsed.TotalSeconds);

    public void Delivered(DateTime stamped, DateTime now) => _deliveryLatency.Record(Math.Max(0, (now - stamped).TotalSeconds));

    private static IEnumerable<Measurement<long>> Measure(long[] counts, string[] names)
    {
        for (var i = 0; i < counts.Length; i++)
        {
            yield return new Measurement<long>(Volatile.Read(ref counts[i]), new KeyValuePair<string, object?>("type", names[i]));
        }
    }
}
