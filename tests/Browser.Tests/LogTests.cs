namespace OrleansChat.Browser.Tests;

/// <summary>The logs of real processes (issue 10): chatting writes no line per grain placement or per message.</summary>
[Collection(BrowserCollection.Name)]
public sealed class LogTests(ChatClusterFixture cluster)
{
    [Fact]
    public async Task Placing_rooms_and_posting_writes_no_line_per_operation()
    {
        var before = cluster.SteadyLines.Count;
        for (var i = 0; i < 3; i++)
        {
            // A new room each time: each is a grain placed on the silo.
            await SeedClient.SendAsync(cluster.UrlB, "logger", $"quiet-{Guid.NewGuid():N}"[..20], ["one", "two"]);
        }

        var lines = cluster.SteadyLines;
        var added = lines.Skip(Math.Min(before, lines.Count)).ToArray();
        Assert.DoesNotContain(added, line => line.Contains("Polly", StringComparison.Ordinal) || line.Contains("Execution attempt", StringComparison.Ordinal));
        Assert.True(added.Length <= 2, "lines logged for 3 joins and 6 posts:\n" + string.Join('\n', added));
    }
}
