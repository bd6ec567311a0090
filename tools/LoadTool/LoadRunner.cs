using System.Diagnostics;
using System.Globalization;

namespace OrleansChat.LoadTool;

/// <summary>Runs one scenario: opens the connections at the ramp rate and joins each to its room, starts the
/// senders, warms up, measures a window, stops the senders, waits for every expected message, closes, and
/// sums up.</summary>
public sealed class LoadRunner
{
    /// <summary>After the senders stop: how long to wait for expected messages without any arriving.</summary>
    private static readonly TimeSpan DrainPatience = TimeSpan.FromSeconds(10);

    private readonly LoadSettings _settings;
    private readonly TextWriter _log;
    private readonly ProtocolAdapter _protocol;
    private readonly RunClock _clock = new();
    private readonly LoadConnection[] _connections;

    private LoadRunner(LoadSettings settings, TextWriter log)
    {
        _settings = settings;
        _log = log;
        _protocol = ProtocolAdapter.For(settings.Protocol);

        // Fresh room names per run, so earlier runs against the same cluster neither add history nor mix in.
        var run = Guid.NewGuid().ToString("N")[..8];
        _connections = new LoadConnection[settings.Connections];
        for (var i = 0; i < _connections.Length; i++)
        {
            var room = i / settings.ClientsPerRoom;
            var position = i % settings.ClientsPerRoom;
            var firstSender = (long)room * settings.SendersPerRoom;
            var sender = position < settings.SendersPerRoom ? firstSender + position : -1;
            _connections[i] = new LoadConnection(i, room, $"load-{run}-{room}", sender, firstSender, settings, _protocol, _clock);
        }
    }

    public static Task<LoadResult> RunAsync(LoadSettings settings, TextWriter log, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(log);
        if (settings.Validate() is { } error)
        {
            throw new ArgumentException(error, nameof(settings));
        }

        // One hop to the thread pool: every loop below then runs without the caller's synchronization context.
        return Task.Run(() => new LoadRunner(settings, log).ExecuteAsync(cancellationToken), cancellationToken);
    }

    private async Task<LoadResult> ExecuteAsync(CancellationToken cancellationToken)
    {
        var utc = DateTime.UtcNow;
        var s = _settings;
        Log($"{Name(s.Scenario)} · {Name(s.Protocol)} · {s.Target} ({string.Join(", ", s.Urls)}): {s.Describe()}");
        var sampler = new ServerSampler(s.Pids);
        var before = sampler.SampleTree();

        // Everything that opens files (assemblies, /proc) once now: if the connections use up the descriptors,
        // the samples in the window degrade to "not measured" instead of failing.
        Failures.Prepare();
        _ = Sample.Take(sampler);

        using var stopPinging = new CancellationTokenSource();
        var pinging = _protocol.Ping is { } ping ? PingLoopAsync(ping, stopPinging.Token) : Task.CompletedTask;
        using var stopSending = new CancellationTokenSource();
        var senders = new List<Task>();
        Sample? start = null, end = null;
        try
        {
            await OpenAllAsync(cancellationToken);

            var sending = _connections.Where(c => c.SenderIndex >= 0 && c.Joined).ToArray();
            for (var i = 0; i < sending.Length; i++)
            {
                senders.Add(sending[i].SendLoopAsync((double)i / sending.Length, stopSending.Token));
            }

            if (s.WarmupSeconds > 0)
            {
                Log($"warming up {s.WarmupSeconds:0.##} s");
                await Task.Delay(TimeSpan.FromSeconds(s.WarmupSeconds), cancellationToken);
            }

            Log($"measuring {s.Seconds:0.##} s");
            start = Sample.Take(sampler);
            _clock.Open(start.Timestamp);
            await Task.Delay(TimeSpan.FromSeconds(s.Seconds), cancellationToken);
            var windowEnd = Stopwatch.GetTimestamp();
            _clock.Close(windowEnd);
            end = Sample.Take(sampler) with { Timestamp = windowEnd };

            await stopSending.CancelAsync();
            await Task.WhenAll(senders);
            await DrainAsync(cancellationToken);
        }
        finally
        {
            await stopSending.CancelAsync();
            await Task.WhenAll(senders);
            await stopPinging.CancelAsync();
            await pinging;
            await Task.WhenAll(_connections.Select(c => c.CloseAsync()));
        }

        var result = Summarize(utc, before, start!, end!);
        WriteSummary(result);
        return result;
    }

    private async Task OpenAllAsync(CancellationToken cancellationToken)
    {
        Log($"opening {_connections.Length:N0} connections at {_settings.Ramp:0.##}/s");
        var opens = new Task[_connections.Length];
        var started = Stopwatch.GetTimestamp();
        var spacing = Stopwatch.Frequency / _settings.Ramp;
        for (var i = 0; i < opens.Length; i++)
        {
            // Due times are absolute: a late timer is made up by opening the next ones at once.
            var wait = started + (long)(i * spacing) - Stopwatch.GetTimestamp();
            if (wait > 0)
            {
                await Task.Delay(TimeSpan.FromSeconds((double)wait / Stopwatch.Frequency), cancellationToken);
            }

            opens[i] = _connections[i].OpenAsync(cancellationToken);
        }

        await Task.WhenAll(opens);
        var joined = _connections.Count(c => c.Joined);
        Log($"{joined:N0} of {_connections.Length:N0} joined in {Stopwatch.GetElapsedTime(started).TotalSeconds:0.0} s");
        foreach (var (reason, count) in Reasons(c => c.Joined ? null : c.Failure ?? c.CloseReason ?? "unknown"))
        {
            Log($"  {count:N0} failed: {reason}");
        }
    }

    /// <summary>Waits until every member has every message its room's senders sent (minus refused ones), or until
    /// nothing new has arrived for <see cref="DrainPatience"/>. A closed connection cannot catch up: it is not
    /// waited for.</summary>
    private async Task DrainAsync(CancellationToken cancellationToken)
    {
        var lastReceived = -1L;
        var lastProgress = Stopwatch.GetTimestamp();
        while (true)
        {
            var (_, missing, waiting) = Tally();
            if (!waiting)
            {
                return;
            }

            long received = 0;
            foreach (var connection in _connections)
            {
                received += connection.Received;
            }

            if (received != lastReceived)
            {
                lastReceived = received;
                lastProgress = Stopwatch.GetTimestamp();
            }
            else if (Stopwatch.GetElapsedTime(lastProgress) > DrainPatience)
            {
                Log($"gave up waiting: {missing:N0} expected deliveries did not arrive within {DrainPatience.TotalSeconds:0} s of the last one");
                return;
            }

            await Task.Delay(50, cancellationToken);
        }
    }

    /// <summary>Expected and missing deliveries, per member and sender of its room; whether an open member still
    /// lacks some.</summary>
    private (long Expected, long Missing, bool Waiting) Tally()
    {
        long expected = 0, missing = 0;
        var waiting = false;
        var clients = _settings.ClientsPerRoom;
        foreach (var member in _connections)
        {
            if (!member.Joined)
            {
                continue;
            }

            for (var s = 0; s < _settings.SendersPerRoom; s++)
            {
                var sender = _connections[(member.Room * clients) + s];
                if (!sender.Joined)
                {
                    continue;
                }

                var want = sender.Sent - sender.Refused;
                var got = member.ReceivedFrom(s);
                expected += want;
                if (got < want)
                {
                    missing += want - got;
                    waiting |= member.IsOpen;
                }
            }
        }

        return (expected, missing, waiting);
    }

    private async Task PingLoopAsync(byte[] ping, CancellationToken stop)
    {
        // One timer for every connection, not one per connection.
        using var timer = new PeriodicTimer(_protocol.PingInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(stop))
            {
                var pings = new List<Task>(_connections.Length);
                foreach (var connection in _connections)
                {
                    if (connection.IsReady)
                    {
                        pings.Add(connection.PingAsync(ping));
                    }
                }

                await Task.WhenAll(pings);
            }
        }
        catch (OperationCanceledException)
        {
            // Stopped.
        }
    }

    private LoadResult Summarize(DateTime utc, ServerSampler.TreeSample? before, Sample start, Sample end)
    {
        var s = _settings;
        var seconds = (end.Timestamp - start.Timestamp) / (double)Stopwatch.Frequency;
        var (expected, missing, _) = Tally();

        long sent = 0, sentInWindow = 0, deliveries = 0, frames = 0, received = 0, duplicates = 0, outOfOrder = 0, errors = 0, foreign = 0, unreadable = 0;
        var errorCodes = new Dictionary<string, long>(StringComparer.Ordinal);
        var connectTimes = new List<double>();
        int ok = 0, dropped = 0;
        foreach (var c in _connections)
        {
            sent += c.Sent;
            sentInWindow += c.WindowSent;
            deliveries += c.WindowDeliveries;
            frames += c.WindowFrames;
            received += c.Received;
            duplicates += c.Duplicates;
            outOfOrder += c.OutOfOrder;
            errors += c.Errors;
            foreign += c.Foreign;
            unreadable += c.Unreadable;
            foreach (var (code, count) in c.ErrorCodes ?? new Dictionary<string, long>())
            {
                errorCodes[code] = errorCodes.GetValueOrDefault(code) + count;
            }

            if (c.ConnectMs is { } ms)
            {
                connectTimes.Add(ms);
            }

            if (c.Joined && c.CloseReason is null)
            {
                ok++;
            }
            else if (c.Joined)
            {
                dropped++;
            }
        }

        connectTimes.Sort();
        var latency = LatencyHistogram.Merge(_connections.Select(c => c.Latency).OfType<LatencyHistogram>());

        double? serverCpu = start.Tree is not null && end.Tree is not null ? ServerSampler.CpuSeconds(start.Tree, end.Tree) : null;
        var own = (end.OwnCpu - start.OwnCpu).TotalSeconds;
        double? machine = start.MachineTicks is { } m0 && end.MachineTicks is { } m1 ? (m1 - m0) / ServerSampler.TicksPerSecond : null;
        var failed = _connections.Length - ok;

        return new LoadResult
        {
            Utc = utc,
            Target = s.Target,
            Scenario = s.Scenario,
            Protocol = s.Protocol,
            Settings = s,
            Connections = _connections.Length,
            ConnectionsOk = ok,
            ConnectionsFailed = failed,
            ConnectionsDropped = dropped,
            FailureReasons = Reasons(c => c.Joined ? c.CloseReason : c.Failure ?? c.CloseReason ?? "unknown").ToDictionary(),
            ConnectP50Ms = Round(Percentile(connectTimes, 0.50), 3),
            ConnectP99Ms = Round(Percentile(connectTimes, 0.99), 3),
            ConnectMaxMs = Round(Percentile(connectTimes, 1), 3),
            MeasuredSeconds = Math.Round(seconds, 3),
            SentTotal = sent,
            SentInWindow = sentInWindow,
            SentPerSecond = Math.Round(sentInWindow / seconds, 2),
            DeliveriesInWindow = deliveries,
            DeliveriesPerSecond = Math.Round(deliveries / seconds, 2),
            FramesInWindow = frames,
            MessagesPerFrame = frames > 0 ? Math.Round((double)deliveries / frames, 3) : null,
            Expected = expected,
            Received = received,
            Missing = missing,
            Duplicates = duplicates,
            OutOfOrder = outOfOrder,
            Errors = errors,
            ErrorCodes = errorCodes,
            Foreign = foreign,
            Unreadable = unreadable,
            LatencyCount = latency.Count,
            LatencyP50Ms = latency.PercentileMs(0.50),
            LatencyP90Ms = latency.PercentileMs(0.90),
            LatencyP99Ms = latency.PercentileMs(0.99),
            LatencyP999Ms = latency.PercentileMs(0.999),
            LatencyMaxMs = latency.MaxMs,
            ServerProcesses = end.Tree?.Ticks.Count,
            ServerCpuPercent = Round(serverCpu / seconds * 100, 2),
            ServerCpuSecondsPerMillionDeliveries = deliveries > 0 ? Round(serverCpu / (deliveries / 1e6), 3) : null,
            ServerRssMb = Round(end.Tree?.RssKb / 1024.0, 1),
            ServerRssBeforeMb = Round(before?.RssKb / 1024.0, 1),
            ServerKbPerConnection = end.Tree is not null && before is not null && ok > 0 ? Round((end.Tree.RssKb - before.RssKb) / (double)ok, 2) : null,
            LoadToolCpuPercent = Math.Round(own / seconds * 100, 2),
            OtherCpuPercent = Round((machine - (serverCpu ?? 0) - own) / seconds * 100, 2),
            MachineCpuPercent = Round(machine / seconds * 100, 2),
            Cores = Environment.ProcessorCount,
            Passed = missing == 0 && duplicates == 0 && outOfOrder == 0 && failed == 0,
        };
    }

    private IEnumerable<(string Reason, int Count)> Reasons(Func<LoadConnection, string?> reason)
        => _connections.Select(reason).OfType<string>().GroupBy(r => r, StringComparer.Ordinal)
            .Select(g => (g.Key, g.Count())).OrderByDescending(g => g.Item2);

    private void WriteSummary(LoadResult r)
    {
        Log($"connections: {r.ConnectionsOk:N0} ok, {r.ConnectionsFailed:N0} failed ({r.ConnectionsDropped:N0} of them dropped); connect p50 {Ms(r.ConnectP50Ms)}, p99 {Ms(r.ConnectP99Ms)}");
        foreach (var (reason, count) in r.FailureReasons)
        {
            Log($"  {count:N0} × {reason}");
        }

        Log($"sent {r.SentPerSecond:N1} msg/s, delivered {r.DeliveriesPerSecond:N1} msg/s, {r.MessagesPerFrame?.ToString("0.00", CultureInfo.InvariantCulture) ?? "-"} messages/frame (measured {r.MeasuredSeconds:0.0} s)");
        var codes = r.ErrorCodes.Count == 0 ? "" : " (" + string.Join(", ", r.ErrorCodes.Select(e => string.Create(CultureInfo.InvariantCulture, $"{e.Key} {e.Value:N0}"))) + ")";
        var strays = r.Foreign + r.Unreadable > 0 ? string.Create(CultureInfo.InvariantCulture, $", foreign {r.Foreign:N0}, unreadable {r.Unreadable:N0}") : "";
        Log($"missing {r.Missing:N0} of {r.Expected:N0} expected, duplicates {r.Duplicates:N0}, out of order {r.OutOfOrder:N0}, errors {r.Errors:N0}{codes}{strays}");
        Log($"latency: p50 {Ms(r.LatencyP50Ms)}, p90 {Ms(r.LatencyP90Ms)}, p99 {Ms(r.LatencyP99Ms)}, p99.9 {Ms(r.LatencyP999Ms)}, max {Ms(r.LatencyMaxMs)} ({r.LatencyCount:N0} deliveries)");
        var server = r.ServerCpuPercent is null
            ? $"server: not measured ({(r.Settings.Pids.Count == 0 ? "no --pids" : "could not read /proc")})"
            : $"server ({r.ServerProcesses} processes): CPU {r.ServerCpuPercent:N1} %, {r.ServerCpuSecondsPerMillionDeliveries?.ToString("N2", CultureInfo.InvariantCulture) ?? "-"} CPU-s per million deliveries, " +
              $"RSS {r.ServerRssMb:N1} MB ({r.ServerKbPerConnection?.ToString("N1", CultureInfo.InvariantCulture) ?? "-"} KB/connection)";
        Log($"{server}; load tool CPU {r.LoadToolCpuPercent:N1} % (allocated {GC.GetTotalAllocatedBytes() / 1048576.0:N0} MB in all, {GC.CollectionCount(0)} gen0 GCs); everything else {r.OtherCpuPercent?.ToString("N1", CultureInfo.InvariantCulture) ?? "-"} % (of one core)");
        Log($"{(r.Passed ? "PASS" : "FAIL")}");
    }

    private void Log(FormattableString line) => _log.WriteLine(line.ToString(CultureInfo.InvariantCulture));

    private static string Ms(double? ms) => ms is { } v ? v.ToString(v < 100 ? "0.00" : "N1", CultureInfo.InvariantCulture) + " ms" : "-";

    internal static string Name(LoadScenario scenario) => scenario.ToString().ToLowerInvariant();

    internal static string Name(LoadProtocol protocol) => protocol == LoadProtocol.SignalR ? "signalr" : "orleanschat";

    private static double? Percentile(List<double> sorted, double q)
        => sorted.Count == 0 ? null : sorted[Math.Clamp((int)Math.Ceiling(q * sorted.Count) - 1, 0, sorted.Count - 1)];

    private static double? Round(double? value, int digits) => value is { } v && double.IsFinite(v) ? Math.Round(v, digits) : null;

    /// <summary>What the window is measured against: the server tree, the machine, this process.</summary>
    private sealed record Sample(long Timestamp, ServerSampler.TreeSample? Tree, long? MachineTicks, TimeSpan OwnCpu)
    {
        public static Sample Take(ServerSampler sampler)
        {
            var tree = sampler.SampleTree();
            var machine = ServerSampler.MachineBusyTicks();
            TimeSpan own;
            try
            {
                using var self = Process.GetCurrentProcess();
                own = self.TotalProcessorTime;
            }
            catch (Exception ex) when (ex is IOException or InvalidOperationException or System.ComponentModel.Win32Exception)
            {
                // /proc/self/stat could not be opened (no descriptors left): the same counters through getrusage.
                own = Environment.CpuUsage.TotalTime;
            }

            return new Sample(Stopwatch.GetTimestamp(), tree, machine, own);
        }
    }
}
