using System.Globalization;
using System.Text;

namespace OrleansChat.LoadTool;

/// <summary>Markdown tables comparing runs: one table per scenario, one column per result (in the order given),
/// one row per measure.</summary>
public static class LoadReport
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    private static readonly (string Name, Func<LoadResult, string> Value)[] Rows =
    [
        ("protocol", r => LoadRunner.Name(r.Protocol)),
        ("setup", Setup),
        ("connections ok / failed", r => $"{Count(r.ConnectionsOk)} / {Count(r.ConnectionsFailed)}"),
        ("connect p99 (ms)", r => Ms(r.ConnectP99Ms)),
        ("sent/s", r => Rate(r.SentPerSecond)),
        ("deliveries/s", r => Rate(r.DeliveriesPerSecond)),
        ("messages per frame", r => r.MessagesPerFrame?.ToString("N2", Invariant) ?? "–"),
        ("missing", r => Count(r.Missing)),
        ("duplicates", r => Count(r.Duplicates)),
        ("out of order", r => Count(r.OutOfOrder)),
        ("errors", r => Count(r.Errors)),
        ("latency p50 (ms)", r => Ms(r.LatencyP50Ms)),
        ("latency p90 (ms)", r => Ms(r.LatencyP90Ms)),
        ("latency p99 (ms)", r => Ms(r.LatencyP99Ms)),
        ("latency p99.9 (ms)", r => Ms(r.LatencyP999Ms)),
        ("latency max (ms)", r => Ms(r.LatencyMaxMs)),
        ("server CPU (% of one core)", r => Percent(r.ServerCpuPercent)),
        ("server CPU-s per million deliveries", r => r.ServerCpuSecondsPerMillionDeliveries?.ToString("N2", Invariant) ?? "–"),
        ("server RSS (MB)", r => r.ServerRssMb?.ToString("N1", Invariant) ?? "–"),
        ("server KB per connection", r => r.ServerKbPerConnection?.ToString("N1", Invariant) ?? "–"),
        ("load tool CPU (%)", r => Percent(r.LoadToolCpuPercent)),
        ("everything else CPU (%)", r => Percent(r.OtherCpuPercent)),
        ("run (UTC)", r => r.Utc.ToUniversalTime().ToString("yyyy-MM-dd HH:mm", Invariant)),
    ];

    public static string Render(IReadOnlyList<LoadResult> results)
    {
        var text = new StringBuilder();
        foreach (var scenario in results.Select(r => r.Scenario).Distinct())
        {
            var columns = results.Where(r => r.Scenario == scenario).ToList();
            if (text.Length > 0)
            {
                text.AppendLine();
            }

            text.AppendLine(Invariant, $"## {LoadRunner.Name(scenario)}");
            text.AppendLine();
            var setups = columns.Select(c => c.Settings.Describe()).Distinct().ToList();
            if (setups.Count == 1)
            {
                text.AppendLine(setups[0]);
                text.AppendLine();
            }

            text.Append("| |");
            foreach (var column in columns)
            {
                text.Append(' ').Append(Cell(column.Target)).Append(" |");
            }

            text.AppendLine();
            text.Append("|---|");
            foreach (var _ in columns)
            {
                text.Append("---:|");
            }

            text.AppendLine();
            foreach (var (name, value) in Rows)
            {
                text.Append("| ").Append(name).Append(" |");
                foreach (var column in columns)
                {
                    text.Append(' ').Append(Cell(value(column))).Append(" |");
                }

                text.AppendLine();
            }

            var notes = columns.Where(c => c.FailureReasons.Count > 0).ToList();
            if (notes.Count > 0)
            {
                text.AppendLine();
                foreach (var column in notes)
                {
                    foreach (var (reason, count) in column.FailureReasons)
                    {
                        text.AppendLine(Invariant, $"- {column.Target}: {count:N0} × {reason}");
                    }
                }
            }
        }

        return text.ToString();
    }

    private static string Setup(LoadResult r)
    {
        var s = r.Settings;
        var senders = s.SendersPerRoom == 0 ? "no senders"
            : s.Rate > 0 ? string.Create(Invariant, $"{s.SendersPerRoom}×{s.Rate:0.##}/s")
            : string.Create(Invariant, $"{s.SendersPerRoom} closed-loop (w {s.Window})");
        return string.Create(Invariant, $"{s.Rooms:N0}×{s.ClientsPerRoom:N0}, {senders}, {s.Seconds:0.##} s");
    }

    private static string Count(long value) => value.ToString("N0", Invariant);

    private static string Rate(double value) => value.ToString(value < 100 ? "N1" : "N0", Invariant);

    private static string Ms(double? value) => value is { } v ? v.ToString(v < 10 ? "N2" : "N1", Invariant) : "–";

    private static string Percent(double? value) => value is { } v ? v.ToString("N1", Invariant) : "–";

    private static string Cell(string text) => text.Replace("|", "\\|", StringComparison.Ordinal);
}
