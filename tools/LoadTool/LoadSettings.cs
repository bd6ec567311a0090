using System.Globalization;
using System.Text.Json.Serialization;

namespace OrleansChat.LoadTool;

[JsonConverter(typeof(JsonStringEnumConverter<LoadProtocol>))]
public enum LoadProtocol
{
    /// <summary>Our protocol v1 (docs/protocol.md).</summary>
    [JsonStringEnumMemberName("orleanschat")]
    OrleansChat,

    /// <summary>ASP.NET Core SignalR's JSON hub protocol over a WebSocket, without negotiation.</summary>
    [JsonStringEnumMemberName("signalr")]
    SignalR,
}

[JsonConverter(typeof(JsonStringEnumConverter<LoadScenario>))]
public enum LoadScenario
{
    [JsonStringEnumMemberName("fanout")]
    Fanout,

    [JsonStringEnumMemberName("rooms")]
    Rooms,

    [JsonStringEnumMemberName("max")]
    Max,

    [JsonStringEnumMemberName("idle")]
    Idle,

    [JsonStringEnumMemberName("smoke")]
    Smoke,

    /// <summary>Posts/s one room stores: every client sends flat out (the room's members are its senders).</summary>
    [JsonStringEnumMemberName("durable")]
    Durable,
}

/// <summary>What one run does. <see cref="ForScenario"/> gives a scenario's defaults; change any of them with
/// <c>with { … }</c>.</summary>
public sealed record LoadSettings
{
    /// <summary>The text starts with a Stopwatch timestamp (up to 19 digits) and a separator.</summary>
    public const int MinSize = 24;

    public const int MaxSize = 65536;

    public required LoadScenario Scenario { get; init; }

    public required LoadProtocol Protocol { get; init; }

    /// <summary>WebSocket URLs (our <c>/ws</c>, or a SignalR hub); client i uses URL i % count.</summary>
    public required IReadOnlyList<string> Urls { get; init; }

    /// <summary>The name of the system under test, as the report's column header.</summary>
    public required string Target { get; init; }

    /// <summary>The server's processes; their descendants are measured with them.</summary>
    public IReadOnlyList<int> Pids { get; init; } = [];

    public int Rooms { get; init; } = 1;

    public int ClientsPerRoom { get; init; } = 1;

    /// <summary>The first <see cref="SendersPerRoom"/> clients of each room send.</summary>
    public int SendersPerRoom { get; init; }

    /// <summary>Messages per second per sender; 0 = closed loop (as fast as the window allows).</summary>
    public double Rate { get; init; }

    /// <summary>Most unacknowledged messages a sender keeps in flight.</summary>
    public int Window { get; init; } = 64;

    public double WarmupSeconds { get; init; }

    /// <summary>The measured window (for idle: how long the connections are held).</summary>
    public double Seconds { get; init; }

    /// <summary>Bytes of message text.</summary>
    public int Size { get; init; } = 100;

    /// <summary>Connections opened per second.</summary>
    public double Ramp { get; init; } = 500;

    [JsonIgnore]
    public int Connections => Rooms * ClientsPerRoom;

    public static LoadSettings ForScenario(LoadScenario scenario, LoadProtocol protocol, IReadOnlyList<string> urls, string target)
    {
        var settings = new LoadSettings { Scenario = scenario, Protocol = protocol, Urls = urls, Target = target };
        return scenario switch
        {
            LoadScenario.Fanout => settings with { Rooms = 1, ClientsPerRoom = 500, SendersPerRoom = 5, Rate = 20, WarmupSeconds = 5, Seconds = 20 },
            LoadScenario.Rooms => settings with { Rooms = 100, ClientsPerRoom = 10, SendersPerRoom = 1, Rate = 5, WarmupSeconds = 5, Seconds = 20 },
            LoadScenario.Max => settings with { Rooms = 1, ClientsPerRoom = 100, SendersPerRoom = 4, Rate = 0, Window = 64, WarmupSeconds = 5, Seconds = 20 },
            LoadScenario.Idle => settings with { Rooms = 100, ClientsPerRoom = 50, SendersPerRoom = 0, WarmupSeconds = 0, Seconds = 10 },
            LoadScenario.Durable => settings with { Rooms = 1, ClientsPerRoom = 10, SendersPerRoom = 10, Rate = 0, Window = 64, WarmupSeconds = 5, Seconds = 20 },
            LoadScenario.Smoke => settings with { Rooms = 1, ClientsPerRoom = 20, SendersPerRoom = 2, Rate = 20, WarmupSeconds = 1, Seconds = 3 },
            _ => throw new ArgumentOutOfRangeException(nameof(scenario), scenario, null),
        };
    }

    /// <summary>What is wrong with these settings, in one line; null when nothing is.</summary>
    public string? Validate()
    {
        if (Urls.Count == 0)
        {
            return "--url: at least one URL";
        }

        foreach (var url in Urls)
        {
            if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || (uri.Scheme != "ws" && uri.Scheme != "wss"))
            {
                return $"--url: '{url}' is not a ws:// or wss:// URL";
            }
        }

        return (this switch
        {
            { Target.Length: 0 } => "--target: must not be empty",
            { Rooms: < 1 } => "--rooms: at least 1",
            { ClientsPerRoom: < 1 } => "--clients: at least 1 per room",
            { Connections: > 1_000_000 } => "--rooms × --clients: at most 1,000,000 connections",
            _ when SendersPerRoom < 0 || SendersPerRoom > ClientsPerRoom => "--senders: between 0 and --clients",
            _ when !(Rate >= 0) || double.IsInfinity(Rate) => "--rate: a number >= 0",
            { Window: < 1 } => "--window: at least 1",
            _ when !(Seconds > 0) => "--seconds/--hold: a number > 0",
            _ when !(WarmupSeconds >= 0) => "--warmup: a number >= 0",
            { Size: < MinSize or > MaxSize } => $"--size: between {MinSize} and {MaxSize} bytes (the text starts with a timestamp)",
            _ when !(Ramp > 0) => "--ramp: a number > 0",
            _ => null,
        });
    }

    /// <summary>One line: what the scenario does.</summary>
    public string Describe()
    {
        var sending = SendersPerRoom == 0
            ? "no senders"
            : string.Create(CultureInfo.InvariantCulture, $"{SendersPerRoom} sender{(SendersPerRoom == 1 ? "" : "s")}/room × ") +
              (Rate > 0 ? string.Create(CultureInfo.InvariantCulture, $"{Rate:0.##} msg/s") : $"closed loop (window {Window})");
        return string.Create(CultureInfo.InvariantCulture, $"{Rooms:N0} room{(Rooms == 1 ? "" : "s")} × {ClientsPerRoom:N0} clients, {sending}, ") +
               string.Create(CultureInfo.InvariantCulture, $"{Size}-byte texts, {WarmupSeconds:0.##} s warm-up, {Seconds:0.##} s measured");
    }
}
