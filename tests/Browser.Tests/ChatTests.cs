using System.Text.RegularExpressions;

namespace OrleansChat.Browser.Tests;

/// <summary>The web client in headless Chromium against real gateways and a real silo.</summary>
[Collection(BrowserCollection.Name)]
public sealed class ChatTests(ChatClusterFixture cluster)
{
    [Fact]
    public async Task TwoUsersChatWithEachOther()
    {
        // Through different gateways: presence and messages cross the cluster.
        await using var alice = await ChatUser.InRoomAsync(cluster.Browser, cluster.UrlA, "alice", "design-review");
        await using var bob = await ChatUser.InRoomAsync(cluster.Browser, cluster.UrlB, "bob", "design-review");
        await Expect(alice.Members).ToHaveTextAsync([new Regex("alice"), new Regex("bob")]);
        await Expect(alice.Page.Locator(".notice")).ToContainTextAsync("bob joined");

        await alice.SayAsync("Morning Bob! The new gateway is up: https://example.com/docs/gateway");
        await Expect(bob.Message("The new gateway is up")).ToHaveCountAsync(1);
        await bob.SayAsync("Nice. Does a tab survive a gateway restart?");
        await bob.SayAsync("I mean without losing or doubling anything.");
        await Expect(alice.Message("Does a tab survive")).ToHaveCountAsync(1);
        await alice.SayAsync("It rejoins with since = last seq, so the gap comes back exactly once.");
        await Expect(bob.Messages).ToHaveCountAsync(4);

        // Own messages look different from others'; consecutive ones from one user are grouped.
        await Expect(alice.Message("Morning Bob")).ToHaveClassAsync(new Regex(@"\bown\b"));
        await Expect(bob.Message("Morning Bob")).Not.ToHaveClassAsync(new Regex(@"\bown\b"));
        await Expect(alice.Message("without losing")).ToHaveClassAsync(new Regex(@"\bgrouped\b"));
        // Links are clickable, and open safely elsewhere.
        var link = bob.Message("Morning Bob").Locator("a");
        await Expect(link).ToHaveAttributeAsync("href", "https://example.com/docs/gateway");
        await Expect(link).ToHaveAttributeAsync("rel", new Regex("noopener"));

        await SaveScreenshotAsync(alice.Page, "two-users.png");

        // A room not in view counts what it missed; looking at it clears the count.
        await bob.JoinAsync("random");
        await alice.SayAsync("Lunch at noon?");
        await Expect(bob.Room("design-review").Locator(".badge")).ToHaveTextAsync("1");
        await bob.Room("design-review").ClickAsync();
        await Expect(bob.Room("design-review").Locator(".badge")).ToBeHiddenAsync();

        // Leaving tells the others.
        await bob.Page.GetByRole(AriaRole.Button, new() { Name = "Leave" }).ClickAsync();
        await Expect(alice.Page.Locator(".notice").Last).ToHaveTextAsync("bob left");
        await Expect(alice.Members).ToHaveCountAsync(1);
        await Expect(bob.Room("design-review")).ToHaveCountAsync(0);
    }

    [Fact]
    public async Task HtmlInNamesAndMessagesShowsLiterally()
    {
        var context = await cluster.Browser.NewContextAsync();
        var page = await context.NewPageAsync();
        await page.GotoAsync(cluster.UrlA);
        // A name with markup is not a valid name: it is refused in words, and never rendered as HTML.
        await page.GetByTestId("name").FillAsync("<b>mallory</b>");
        await page.GetByTestId("name").PressAsync("Enter");
        await Expect(page.Locator("#name-error")).ToContainTextAsync("letters, digits");
        await context.CloseAsync();

        await using var mallory = await ChatUser.InRoomAsync(cluster.Browser, cluster.UrlA, "mallory", "markup");
        await using var victim = await ChatUser.InRoomAsync(cluster.Browser, cluster.UrlB, "victim", "markup");
        const string text = "<b>bold?</b> <img src=x onerror=\"window.pwned=1\"> <script>window.pwned=2</script> & &amp;";
        await mallory.SayAsync(text);
        foreach (var user in new[] { mallory, victim })
        {
            var message = user.Message("<b>bold?</b>");
            await Expect(message.Locator(".msg-text")).ToHaveTextAsync(text);
            await Expect(message.Locator("b, img, script")).ToHaveCountAsync(0);
            Assert.Null(await user.Page.EvaluateAsync<int?>("() => window.pwned ?? null"));
        }

        // Long words wrap inside the bubble instead of widening the page.
        await mallory.SayAsync(new string('W', 400));
        var overflow = await mallory.Page.EvaluateAsync<int>("() => document.getElementById('timeline').scrollWidth - document.getElementById('timeline').clientWidth");
        Assert.True(overflow <= 0, $"the timeline scrolls sideways by {overflow}px");
    }

    [Fact]
    public async Task ReloadKeepsNameAndRooms()
    {
        await using var carol = await ChatUser.SignInAsync(cluster.Browser, cluster.UrlA, "carol");
        await carol.JoinAsync("books");
        await carol.SayAsync("Reading Designing Data-Intensive Applications again.");
        await carol.JoinAsync("music");
        await carol.Room("books").ClickAsync();

        await carol.Page.ReloadAsync();

        await Expect(carol.Page.GetByTestId("name")).ToBeHiddenAsync();
        await Expect(carol.Status).ToHaveAttributeAsync("data-state", "online");
        await Expect(carol.Rooms).ToHaveTextAsync([new Regex("books"), new Regex("music")]);
        await Expect(carol.Room("books")).ToHaveAttributeAsync("aria-current", "page");
        await Expect(carol.Message("Designing Data-Intensive")).ToHaveCountAsync(1);
        await Expect(carol.Members).ToHaveTextAsync([new Regex("carol")]);
    }

    [Fact]
    public async Task GatewayRestartReconnectsAndRecoversEveryMessageOnce()
    {
        await using var dave = await ChatUser.InRoomAsync(cluster.Browser, cluster.UrlA, "dave", "ops");
        await using var erin = await ChatUser.InRoomAsync(cluster.Browser, cluster.UrlB, "erin", "ops");
        await dave.SayAsync("before 1");
        await erin.SayAsync("before 2");
        await Expect(dave.Messages).ToHaveCountAsync(2);

        await cluster.StopGatewayAAsync();
        await Expect(dave.Status).Not.ToHaveAttributeAsync("data-state", "online");

        // While dave's gateway is down: erin keeps talking through hers, and dave writes one of his own.
        await erin.SayAsync("during 1");
        await erin.SayAsync("during 2");
        await erin.SayAsync("during 3");
        await dave.SendAsync("written while offline");
        await Expect(dave.Message("written while offline")).ToHaveClassAsync(new Regex(@"\bpending\b"));

        await cluster.StartGatewayAAsync();

        // Dave's tab reconnects by itself, rejoins with since, gets the gap and resends his message (same id).
        await Expect(dave.Status).ToHaveAttributeAsync("data-state", "online", new() { Timeout = 30_000 });
        string[] expected = ["before 1", "before 2", "during 1", "during 2", "during 3", "written while offline"];
        foreach (var user in new[] { dave, erin })
        {
            await Expect(user.Messages).ToHaveCountAsync(expected.Length);
            await Expect(user.Messages.Locator(".msg-text")).ToHaveTextAsync(expected);
        }

        await Expect(dave.Message("written while offline")).Not.ToHaveClassAsync(new Regex(@"\bpending\b"));
        await erin.SayAsync("after");
        await Expect(dave.Message("after")).ToHaveCountAsync(1);
        await Expect(dave.Messages).ToHaveCountAsync(expected.Length + 1);
    }

    [Fact]
    public async Task ScrollingUpLoadsOlderHistory()
    {
        var texts = Enumerable.Range(1, 120).Select(i => $"archive message {i:D3}").ToArray();
        await SeedClient.SendAsync(cluster.UrlB, "archivist", "archive", texts);
        await using var frank = await ChatUser.SignInAsync(cluster.Browser, cluster.UrlA, "frank");
        await frank.JoinAsync("archive");
        await Expect(frank.Messages).ToHaveCountAsync(50);
        await Expect(frank.Messages.Last).ToContainTextAsync("archive message 120");

        var timeline = frank.Page.Locator("#timeline");
        for (var page = 0; page < 10 && await frank.Messages.CountAsync() < texts.Length; page++)
        {
            var before = await frank.Messages.CountAsync();
            await timeline.EvaluateAsync("t => t.scrollTop = 0");
            await Expect(frank.Messages).Not.ToHaveCountAsync(before);
        }

        await Expect(frank.Messages).ToHaveCountAsync(texts.Length);
        await Expect(frank.Messages.Locator(".msg-text")).ToHaveTextAsync(texts);
        await Expect(frank.Page.Locator("#history-edge")).ToContainTextAsync("beginning of #archive");
    }

    [Fact]
    public async Task ServerErrorIsShownNextToTheMessage()
    {
        await using var grace = await ChatUser.SignInAsync(cluster.Browser, cluster.UrlA, "grace");
        await grace.JoinAsync("limits");
        var tooLong = "This is far too long. " + new string('x', 5000);
        await grace.SendAsync(tooLong);
        var message = grace.Message("This is far too long.");
        await Expect(message).ToHaveClassAsync(new Regex(@"\bfailed\b"));
        await Expect(message.Locator(".msg-state")).ToContainTextAsync("too long");
        await Expect(message.GetByRole(AriaRole.Button, new() { Name = "Edit" })).ToBeVisibleAsync();

        await message.GetByRole(AriaRole.Button, new() { Name = "Discard" }).ClickAsync();
        await Expect(grace.Messages).ToHaveCountAsync(0);

        // Shift+Enter is a new line, Enter sends.
        await grace.Composer.FillAsync("first line");
        await grace.Composer.PressAsync("Shift+Enter");
        await grace.Composer.PressSequentiallyAsync("second line");
        await grace.Composer.PressAsync("Enter");
        await Expect(grace.Messages.Locator(".msg-text")).ToHaveTextAsync(["first line\nsecond line"]);
    }

    /// <summary>Kept with the test results; ORLEANSCHAT_SCREENSHOT_DIR also copies it elsewhere (docs/).</summary>
    internal static async Task SaveScreenshotAsync(IPage page, string name)
    {
        var bytes = await page.ScreenshotAsync();
        var dir = Path.Combine(AppContext.BaseDirectory, "screenshots");
        Directory.CreateDirectory(dir);
        await File.WriteAllBytesAsync(Path.Combine(dir, name), bytes);
        var extra = Environment.GetEnvironmentVariable("ORLEANSCHAT_SCREENSHOT_DIR");
        if (!string.IsNullOrEmpty(extra))
        {
            Directory.CreateDirectory(extra);
            await File.WriteAllBytesAsync(Path.Combine(extra, name), bytes);
        }
    }
}
