using System.Text.Json;
using System.Text.Json.Serialization;

namespace OrleansChat.LoadTool;

/// <summary>Everything one run measured; written as JSON by <c>run --out</c> and read back by <c>report</c>.
/// A value that could not be measured (no --pids, no samples, no /proc) is null.</summary>
public sealed record LoadResult
{
    public string Schema { get; init; } = "orleanschat-load/1";

    /// <summary>When the run started.</summary>
    public DateTime Utc { get; init; }

    public required string Target { get; init; }

    public LoadScenario Scenario { get; init; }

    public LoadProtocol Protocol { get; init; }

    public required LoadSettings Settings { get; init; }

    // ---- connections ----
    public int Connections { get; init; }

    /// <summary>Joined and still open when the run closed them.</summary>
    public int ConnectionsOk { get; init; }

    /// <summary>Never joined, or closed before the end (<see cref="ConnectionsDropped"/> of them).</summary>
    public int ConnectionsFailed { get; init; }

    public int ConnectionsDropped { get; init; }

    /// <summary>Why connections failed or dropped: one line each, with how many.</summary>
    public Dictionary<string, int> FailureReasons { get; init; } = [];

    public double? ConnectP50Ms { get; init; }

    public double? ConnectP99Ms { get; init; }

    public double? ConnectMaxMs { get; init; }

    // ---- throughput over the measured window ----
    public double MeasuredSeconds { get; init; }

    public long SentTotal { get; init; }

    public long SentInWindow { get; init; }

    public double SentPerSecond { get; init; }

    public long DeliveriesInWindow { get; init; }

    public double DeliveriesPerSecond { get; init; }

    /// <summary>Frames in the window that carried at least one delivery.</summary>
    public long FramesInWindow { get; init; }

    public double? MessagesPerFrame { get; init; }

    // ---- correctness over the whole run ----

    /// <summary>Σ over members of (messages their room's senders sent − those answered with an error).</summary>
    public long Expected { get; init; }

    /// <summary>Distinct messages received (in order or not).</summary>
    public long Received { get; init; }

    public long Missing { get; init; }

    public long Duplicates { get; init; }

    public long OutOfOrder { get; init; }

    public long Errors { get; init; }

    public Dictionary<string, long> ErrorCodes { get; init; } = [];

    /// <summary>Messages that were not this run's (should be 0) and server records that were not JSON.</summary>
    public long Foreign { get; init; }

    public long Unreadable { get; init; }

    // ---- latency: send stamp to arrival, every delivery in the window ----
    public long LatencyCount { get; init; }

    public double? LatencyP50Ms { get; init; }

    public double? LatencyP90Ms { get; init; }

    public double? LatencyP99Ms { get; init; }

    public double? LatencyP999Ms { get; init; }

    public double? LatencyMaxMs { get; init; }

    // ---- resources over the window (% of one core) ----
    public int? ServerProcesses { get; init; }

    public double? ServerCpuPercent { get; init; }

    public double? ServerCpuSecondsPerMillionDeliveries { get; init; }

    /// <summary>At the end of the window.</summary>
    public double? ServerRssMb { get; init; }

    /// <summary>Just before connecting.</summary>
    public double? ServerRssBeforeMb { get; init; }

    /// <summary>(RSS at the end of the window − RSS before connecting) / connections ok.</summary>
    public double? ServerKbPerConnection { get; init; }

    public double LoadToolCpuPercent { get; init; }

    /// <summary>The machine's busy time minus the server's and the load tool's: a disturbance check.</summary>
    public double? OtherCpuPercent { get; init; }

    public double? MachineCpuPercent { get; init; }

    public int Cores { get; init; }

    /// <summary>No missing, duplicate or out-of-order message and no failed connection.</summary>
    public bool Passed { get; init; }

    public string ToJson() => JsonSerializer.Serialize(this, LoadJson.Default.LoadResult);

    public static LoadResult FromJson(string json)
        => JsonSerializer.Deserialize(json, LoadJson.Default.LoadResult) ?? throw new JsonException("empty result");
}

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(LoadResult))]
internal sealed partial class LoadJson : JsonSerializerContext;
