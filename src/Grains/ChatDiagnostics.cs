using System.Diagnostics;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Configuration;

namespace OrleansChat.Grains;

/// <summary>
/// The names under which OrleansChat reports itself to OpenTelemetry (docs/operations.md lists every series),
/// and the silo's own instruments. Instruments that count something on every message are observable: the hot
/// path increments a field, and the exporter reads the field when it collects.
/// </summary>
public static class ChatDiagnostics
{
    /// <summary>Our meter and activity source; in Prometheus every series of ours starts with <c>orleanschat_</c>.</summary>
    public const string Name = "OrleansChat";

    /// <summary>The standard OpenTelemetry variable: when set, traces are recorded and exported over OTLP.</summary>
    public const string OtlpEndpointKey = "OTEL_EXPORTER_OTLP_ENDPOINT";

    /// <summary>Traces are exported: grain calls then carry the trace context across processes (it costs a
    /// filter on every call, so only then).</summary>
    public static bool TracingEnabled(IConfiguration configuration) => !string.IsNullOrWhiteSpace(configuration[OtlpEndpointKey]);

    /// <summary>Spans of join, post, store and delivery, across gateway and silo.</summary>
    public static readonly ActivitySource Source = new(Name);

    private static readonly Meter Meter = new(Name);
    private static long s_roomsActive;
    private static long s_messagesStored;

    private static readonly Histogram<int> StoreBatch = Meter.CreateHistogram<int>(
        "orleanschat.store.batch.size", "{message}", "Messages a room wrote to the store in one commit (its group-commit batch).",
        advice: new InstrumentAdvice<int> { HistogramBucketBoundaries = [1, 2, 4, 8, 16, 32, 64, 128, 256] });

    private static readonly Histogram<double> StoreCommit = Meter.CreateHistogram<double>(
        "orleanschat.store.commit.duration", "s", "Time a room's batch took to be committed by the store.",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] });

    private static readonly Histogram<int> StoreStatement = Meter.CreateHistogram<int>(
        "orleanschat.store.statement.rows", "{message}", "Rows of one PostgreSQL statement (the group commit across the rooms of a silo).",
        advice: new InstrumentAdvice<int> { HistogramBucketBoundaries = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024] });

    private static readonly Counter<long> StoreFailures = Meter.CreateCounter<long>(
        "orleanschat.store.failures", "{batch}", "Batches the store failed to write (their posts were answered unavailable).");

    private static readonly Counter<long> NotificationTimeouts = Meter.CreateCounter<long>(
        "orleanschat.notification.timeouts", "{notification}", "Room notifications a gateway did not answer in time (sent again).");

    private static readonly Counter<long> HoldExpiries = Meter.CreateCounter<long>(
        "orleanschat.flow_control.hold_expiries", "{hold}", "Flow-control holds a gateway did not end in time (the room went on).");

    private static readonly Counter<long> SubscriptionsExpired = Meter.CreateCounter<long>(
        "orleanschat.subscriptions.expired", "{subscription}", "Gateway subscriptions a room dropped because they were not renewed.");

    static ChatDiagnostics()
    {
        Meter.CreateObservableUpDownCounter("orleanschat.rooms.active", () => Volatile.Read(ref s_roomsActive), "{room}",
            "Room grains active on this silo.");
        Meter.CreateObservableCounter("orleanschat.messages.stored", () => Volatile.Read(ref s_messagesStored), "{message}",
            "Messages rooms on this silo stored (each once; a resend that was stored before is not counted).");
    }

    /// <summary>Creates the silo's instruments now, so a silo that has hosted nothing yet reports zeros.</summary>
    public static void Register()
    {
        // Running the static constructor is the point.
    }

    internal static void RoomActivated() => Interlocked.Increment(ref s_roomsActive);

    internal static void RoomDeactivated() => Interlocked.Decrement(ref s_roomsActive);

    internal static void Stored(int messages, TimeSpan commit)
    {
        Interlocked.Add(ref s_messagesStored, messages);
        StoreBatch.Record(messages);
        StoreCommit.Record(commit.TotalSeconds);
    }

    internal static void StoreFailed() => StoreFailures.Add(1);

    internal static void StatementWritten(int rows) => StoreStatement.Record(rows);

    internal static void NotificationTimedOut() => NotificationTimeouts.Add(1);

    internal static void HoldExpired() => HoldExpiries.Add(1);

    internal static void SubscriptionExpired() => SubscriptionsExpired.Add(1);
}
