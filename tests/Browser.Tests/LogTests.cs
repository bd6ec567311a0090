namespace OrleansChat.Browser.Tests;

/// <summary>The logs of real processes (issue 10): chatting writes no line per grain placement or per message.</summary>
[Collection(BrowserCollection.Name)]
public sealed class LogTests(ChatClusterFixture cluster)
{
    [Fact]
    public async Task Placing_rooms_and_posting_writes_no_line_per_operation()
    {
        var before = cluster.SteadyLines.Count;
        var secret = $"secret-{Guid.NewGuid():N}";
        for (var i = 0; i < 3; i++)
        {
            // A new room each time: each is a grain placed on the silo. One connection each.
            await SeedClient.SendAsync(cluster.UrlB, "logger", $"quiet-{Guid.NewGuid():N}"[..20], [$"{secret} one", $"{secret} two"]);
        }

        // The connection lines come when a connection ends: wait for the last one.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (Added().Count(IsConnectionLine) < 6 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }

        var added = Added();
        Assert.DoesNotContain(added, line => line.Contains("Polly", StringComparison.Ordinal) || line.Contains("Execution attempt", StringComparison.Ordinal));
        Assert.DoesNotContain(added, line => line.Contains(secret, StringComparison.Ordinal));
        // One line per connection opened and one per connection closed (user, remote, duration, close code) ...
        Assert.Equal(3, added.Count(line => IsConnectionLine(line) && line.Contains("opened: user logger, remote 127.0.0.1", StringComparison.Ordinal)));
        Assert.Equal(3, added.Count(line => IsConnectionLine(line) && line.Contains("close code 1000", StringComparison.Ordinal)));
        // ... and next to nothing else for 3 joins and 6 posts.
        var other = added.Where(line => !IsConnectionLine(line)).ToArray();
        Assert.True(other.Length <= 2, "lines logged for 3 joins and 6 posts:\n" + string.Join('\n', other));

        string[] Added()
        {
            var lines = cluster.SteadyLines;
            return [.. lines.Skip(Math.Min(before, lines.Count))];
        }

        static bool IsConnectionLine(string line) => line.Contains("OrleansChat.Gateway.Connections", StringComparison.Ordinal);
    }

    /// <summary>A healthy start logs no warning: the silo and two client-mode gateways (the fixture's), and the
    /// one-command embedded chat (a gateway with its own silo), in Production (JSON logs).</summary>
    [Fact]
    public async Task A_plain_start_logs_no_warning()
    {
        var port = ChatClusterFixture.FreePort();
        var embedded = ChildProcess.Start("embedded", ChatClusterFixture.BuiltAssembly("Gateway", "OrleansChat.Gateway.dll"),
            ChatClusterFixture.RepoPath("src", "Gateway"), new Dictionary<string, string>(), "--urls", $"http://127.0.0.1:{port}");
        await using (embedded)
        {
            await embedded.WaitForOutputAsync("OrleansChat gateway ready", TimeSpan.FromSeconds(60));
            // The Orleans watchdog's first check, and anything else the first seconds bring.
            await Task.Delay(TimeSpan.FromSeconds(3));
        }

        var lines = cluster.StartupLines.Concat(embedded.Lines.Select(line => $"embedded: {line}")).ToArray();
        Assert.Contains(lines, line => line.StartsWith("embedded: {", StringComparison.Ordinal) && line.Contains("\"LogLevel\":\"Information\"", StringComparison.Ordinal));
        var warnings = lines.Where(line => line.Contains("\"LogLevel\":\"Warning\"", StringComparison.Ordinal)
            || line.Contains("\"LogLevel\":\"Error\"", StringComparison.Ordinal) || line.Contains("\"LogLevel\":\"Critical\"", StringComparison.Ordinal)).ToArray();
        Assert.True(warnings.Length == 0, "warnings at start-up:\n" + string.Join('\n', warnings));
    }
}
