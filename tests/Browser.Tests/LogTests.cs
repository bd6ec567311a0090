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
}
