using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace OrleansChat.LoadTool;

/// <summary>Parses <c>run</c>'s options (scripts depend on these names).</summary>
internal static class CommandLine
{
    public const string Usage = """
        usage:
          OrleansChat.LoadTool run --protocol orleanschat|signalr --url URL[,URL...] --scenario fanout|rooms|max|idle|smoke|durable --target NAME
                                   [--pids PID,PID,...] [--out FILE.json]
                                   [--rooms N] [--clients N (per room)] [--senders N (per room)] [--rate R (msg/s per sender; 0 = closed loop)]
                                   [--window W] [--seconds S] [--warmup S] [--size BYTES] [--ramp CONN_PER_S] [--hold S (same as --seconds)]
          OrleansChat.LoadTool report FILE.json [FILE.json ...]     prints a markdown table per scenario
        run exits 0 when nothing was missing, duplicated or out of order and every connection succeeded, 1 otherwise, 2 on bad usage.
        """;

    private static readonly HashSet<string> Names =
    [
        "protocol", "url", "scenario", "target", "pids", "out",
        "rooms", "clients", "senders", "rate", "window", "seconds", "warmup", "size", "ramp", "hold",
    ];

    public static bool TryParseRun(ReadOnlySpan<string> args, [NotNullWhen(true)] out LoadSettings? settings, out string? outFile, [NotNullWhen(false)] out string? error)
    {
        settings = null;
        outFile = null;
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < args.Length; i += 2)
        {
            var arg = args[i];
            if (!arg.StartsWith("--", StringComparison.Ordinal) || !Names.Contains(arg[2..]))
            {
                error = $"unknown option '{arg}'";
                return false;
            }

            if (i + 1 >= args.Length)
            {
                error = $"{arg}: missing value";
                return false;
            }

            values[arg[2..]] = args[i + 1];
        }

        foreach (var required in (string[])["protocol", "url", "scenario", "target"])
        {
            if (!values.ContainsKey(required))
            {
                error = $"--{required} is required";
                return false;
            }
        }

        LoadProtocol protocol;
        switch (values["protocol"])
        {
            case "orleanschat": protocol = LoadProtocol.OrleansChat; break;
            case "signalr": protocol = LoadProtocol.SignalR; break;
            default:
                error = $"--protocol: '{values["protocol"]}' is not orleanschat or signalr";
                return false;
        }

        LoadScenario scenario;
        switch (values["scenario"])
        {
            case "fanout": scenario = LoadScenario.Fanout; break;
            case "rooms": scenario = LoadScenario.Rooms; break;
            case "max": scenario = LoadScenario.Max; break;
            case "idle": scenario = LoadScenario.Idle; break;
            case "smoke": scenario = LoadScenario.Smoke; break;
            case "durable": scenario = LoadScenario.Durable; break;
            default:
                error = $"--scenario: '{values["scenario"]}' is not fanout, rooms, max, idle, smoke or durable";
                return false;
        }

        var urls = values["url"].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        settings = LoadSettings.ForScenario(scenario, protocol, urls, values["target"]);
        error = null;

        if (values.TryGetValue("pids", out var pidList))
        {
            var pids = new List<int>();
            foreach (var part in pidList.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (!int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || pid <= 0)
                {
                    error = $"--pids: '{part}' is not a process id";
                    break;
                }

                if (OperatingSystem.IsLinux() && !Directory.Exists($"/proc/{pid}"))
                {
                    error = $"--pids: no process {pid}";
                    break;
                }

                pids.Add(pid);
            }

            settings = settings with { Pids = pids };
        }

        settings = Int("rooms", settings, (s, v) => s with { Rooms = v }, ref error);
        settings = Int("clients", settings, (s, v) => s with { ClientsPerRoom = v }, ref error);
        settings = Int("senders", settings, (s, v) => s with { SendersPerRoom = v }, ref error);
        settings = Int("window", settings, (s, v) => s with { Window = v }, ref error);
        settings = Int("size", settings, (s, v) => s with { Size = v }, ref error);
        settings = Number("rate", settings, (s, v) => s with { Rate = v }, ref error);
        settings = Number("warmup", settings, (s, v) => s with { WarmupSeconds = v }, ref error);
        settings = Number("ramp", settings, (s, v) => s with { Ramp = v }, ref error);
        settings = Number("seconds", settings, (s, v) => s with { Seconds = v }, ref error);
        settings = Number("hold", settings, (s, v) => s with { Seconds = v }, ref error);
        error ??= settings.Validate();

        if (error is null && values.TryGetValue("out", out var file))
        {
            var directory = Path.GetDirectoryName(Path.GetFullPath(file));
            if (directory is not null && !Directory.Exists(directory))
            {
                error = $"--out: no directory {directory}";
            }

            outFile = file;
        }

        if (error is not null)
        {
            settings = null;
            return false;
        }

        return true;

        LoadSettings Int(string name, LoadSettings current, Func<LoadSettings, int, LoadSettings> apply, ref string? failure)
        {
            if (failure is not null || !values.TryGetValue(name, out var text))
            {
                return current;
            }

            if (int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value))
            {
                return apply(current, value);
            }

            failure = $"--{name}: '{text}' is not a whole number";
            return current;
        }

        LoadSettings Number(string name, LoadSettings current, Func<LoadSettings, double, LoadSettings> apply, ref string? failure)
        {
            if (failure is not null || !values.TryGetValue(name, out var text))
            {
                return current;
            }

            if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && double.IsFinite(value))
            {
                return apply(current, value);
            }

            failure = $"--{name}: '{text}' is not a number";
            return current;
        }
    }
}
