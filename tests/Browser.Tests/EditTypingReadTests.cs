using System.Diagnostics;
using System.Text.RegularExpressions;

namespace OrleansChat.Browser.Tests;

/// <summary>Editing and deleting one's own messages, "is typing…" and read marks (protocol.md, "Additions to
/// version 1"), against the real gateways and silo.</summary>
[Collection(BrowserCollection.Name)]
public sealed class EditTypingReadTests(ChatClusterFixture cluster)
{
    [Fact]
    public async Task EditsAndDeletionsReachTheOtherGatewayAndHistory()
    {
        await using var alice = await ChatUser.InRoomAsync(cluster.Browser, cluster.UrlA, "alice", "release-plan");
        await using var bob = await ChatUser.InRoomAsync(cluster.Browser, cluster.UrlB, "bob", "release-plan");
        await alice.SayAsync("The release train leaves from platform nine.");
        await alice.SayAsync("Ignore this: wrong room, sorry");
        await Expect(bob.Message("wrong room")).ToHaveCountAsync(1);

        // By keyboard: the menu shows on focus, Enter opens the editor, Escape leaves the message as it was
        // (nothing is sent) and gives the focus back.
        var first = alice.MessageAt(await alice.SeqOfAsync("platform nine"));
        await first.GetByTestId("message-edit").FocusAsync();
        await Expect(first.Locator(".msg-actions")).ToHaveCSSAsync("opacity", "1");
        await alice.Page.Keyboard.PressAsync("Enter");
        await Expect(first.GetByTestId("edit-input")).ToBeFocusedAsync();
        await alice.Page.Keyboard.InsertTextAsync(" Or not.");
        await alice.Page.Keyboard.PressAsync("Escape");
        await Expect(first.GetByTestId("edit-input")).ToHaveCountAsync(0);
        await Expect(first.Locator(".msg-text")).ToHaveTextAsync("The release train leaves from platform nine.");
        await Expect(first.GetByTestId("message-edit")).ToBeFocusedAsync();

        await alice.EditAsync("platform nine", "The release train leaves from platform ten.");
        await alice.DeleteAsync("wrong room");

        foreach (var user in new[] { bob, alice })
        {
            await ExpectEditedAndDeletedAsync(user);
        }

        // A page opened afterwards gets the same from history.
        await using var carol = await ChatUser.InRoomAsync(cluster.Browser, cluster.UrlA, "carol", "release-plan");
        await ExpectEditedAndDeletedAsync(carol);

        // Edited, deleted and "is typing…" on one page.
        await alice.Composer.FillAsync("One more thing");
        await Expect(bob.Typing).ToHaveTextAsync("alice is typing…");
        await SaveScreenshotAsync(bob.Page, "edit-delete-typing.png");
    }

    private static async Task ExpectEditedAndDeletedAsync(ChatUser user)
    {
        // Edit and delete events are not lines of their own: two messages, changed in place.
        await Expect(user.Messages).ToHaveCountAsync(2);
        var edited = user.Messages.First;
        await Expect(edited.Locator(".msg-text")).ToHaveTextAsync("The release train leaves from platform ten.");
        await Expect(edited.GetByTestId("edited")).ToBeVisibleAsync();
        var deleted = user.Messages.Last;
        await Expect(deleted.GetByTestId("deleted")).ToHaveTextAsync("message deleted");
        await Expect(deleted.GetByTestId("message-edit")).ToHaveCountAsync(0);
        // Removed, not hidden: the old texts are nowhere in the document.
        var html = await user.Page.ContentAsync();
        Assert.DoesNotContain("wrong room", html);
        Assert.DoesNotContain("platform nine", html);
    }

    [Fact]
    public async Task TypingShowsWhoTypesUntilTheirMessageOrSixSeconds()
    {
        await using var alice = await ChatUser.InRoomAsync(cluster.Browser, cluster.UrlA, "alice", "standup");
        await using var bob = await ChatUser.InRoomAsync(cluster.Browser, cluster.UrlB, "bob", "standup");
        await using var carol = await ChatUser.InRoomAsync(cluster.Browser, cluster.UrlA, "carol", "standup");

        // Typing and stopping: the indicator goes by itself about 6 s after the last `typing`.
        await alice.Composer.FillAsync("Yesterday I");
        await Expect(bob.Typing).ToHaveTextAsync("alice is typing…");
        var shown = Stopwatch.StartNew();
        await Expect(alice.Typing).Not.ToContainTextAsync("alice"); // never one's own name
        await Expect(bob.Typing).Not.ToContainTextAsync("typing", new() { Timeout = 10_000 });
        Assert.InRange(shown.Elapsed, TimeSpan.FromSeconds(4), TimeSpan.FromSeconds(10));

        // Two at once; a message clears its sender at once, and only its sender.
        await alice.Composer.FillAsync("Yesterday I fixed the flaky test.");
        await carol.Composer.FillAsync("Me: reviews");
        await Expect(bob.Typing).ToHaveTextAsync("alice and carol are typing…");
        await alice.Composer.PressAsync("Enter");
        await Expect(bob.Message("flaky test")).ToHaveCountAsync(1);
        await Expect(bob.Typing).ToHaveTextAsync("carol is typing…", new() { Timeout = 2_000 });
        await carol.Composer.PressAsync("Enter");
        await Expect(bob.Message("Me: reviews")).ToHaveCountAsync(1);
        await Expect(bob.Typing).Not.ToContainTextAsync("typing", new() { Timeout = 2_000 });
    }

    [Fact]
    public async Task ReadingInOneTabClearsTheUnreadCountInTheOthers()
    {
        await using var tab1 = await ChatUser.InRoomAsync(cluster.Browser, cluster.UrlA, "alice", "unread-x");
        await tab1.JoinAsync("unread-y");
        // The same browser profile and origin: the second tab signs in as alice with both rooms, Y in view.
        await using var tab2 = await tab1.OpenTabAsync(cluster.UrlA);
        await Expect(tab2.Room("unread-y")).ToHaveAttributeAsync("aria-current", "page");
        await Expect(tab2.Page.Locator("#room-sub")).ToContainTextAsync("member");

        await using var bob = await ChatUser.InRoomAsync(cluster.Browser, cluster.UrlB, "bob", "unread-x");
        await bob.SayAsync("Can someone look at the build?");
        foreach (var tab in new[] { tab1, tab2 })
        {
            await Expect(tab.Unread("unread-x")).ToHaveTextAsync("1");
            await Expect(tab.Unread("unread-y")).ToBeHiddenAsync();
        }

        await tab1.Room("unread-x").ClickAsync();
        await Expect(tab1.Message("look at the build")).ToBeVisibleAsync();
        await Expect(tab1.Unread("unread-x")).ToBeHiddenAsync();
        // Tab 2 still shows room Y: only the server's `read` event can clear its count.
        await Expect(tab2.Unread("unread-x")).ToBeHiddenAsync();
        await Expect(tab2.Room("unread-y")).ToHaveAttributeAsync("aria-current", "page");

        // Another device of alice's that never saw room X (nothing saved about it) counts from the read mark
        // the server stored: the next message makes 1, not 2. (Tab 1 looks away first, or it reads it at once.)
        await tab1.Room("unread-y").ClickAsync();
        await using var phone = await ChatUser.InRoomAsync(cluster.Browser, cluster.UrlB, "alice", "unread-y");
        await phone.Page.EvaluateAsync("""
            () => {
              const key = "orleanschat.v1.alice";
              const saved = JSON.parse(localStorage.getItem(key));
              saved.rooms.push("unread-x");
              localStorage.setItem(key, JSON.stringify(saved));
            }
            """);
        await phone.Page.ReloadAsync();
        await Expect(phone.Status).ToHaveAttributeAsync("data-state", "online");
        await Expect(phone.Room("unread-y")).ToHaveAttributeAsync("aria-current", "page");
        await bob.SayAsync("Never mind, it is green.");
        foreach (var tab in new[] { phone, tab1, tab2 })
        {
            await Expect(tab.Unread("unread-x")).ToHaveTextAsync("1");
        }
    }

    [Fact]
    public async Task EditsAndDeletionsApplyWhicheverOrderThePagesArriveIn()
    {
        // 60 stored events. The join brings 11..60: the deletion of 2 and the last edit of 1 come before their
        // messages, which arrive with the older page 1..10 together with an older edit of each.
        var room = $"order-{Guid.NewGuid():N}"[..16];
        var url = cluster.UrlA;
        await SeedClient.PostAsync(url, "zoe", room, [SeedClient.Send("first draft")]);
        await SeedClient.PostAsync(url, "ann", room,
        [
            SeedClient.Send("to be deleted"), SeedClient.Send("filler 3"), SeedClient.Edit(2, "edited before its deletion"),
            .. Enumerable.Range(5, 5).Select(seq => SeedClient.Send($"filler {seq}")),
        ]);
        await SeedClient.PostAsync(url, "zoe", room, [SeedClient.Edit(1, "second draft")]);
        await SeedClient.PostAsync(url, "ann", room,
            [SeedClient.Delete(2), .. Enumerable.Range(12, 47).Select(seq => SeedClient.Send($"filler {seq}"))]);
        await SeedClient.PostAsync(url, "zoe", room, [SeedClient.Edit(1, "final draft")]);
        await SeedClient.PostAsync(url, "ann", room, [SeedClient.Send("filler 60")]);

        await using var zoe = await ChatUser.InRoomAsync(cluster.Browser, cluster.UrlB, "zoe", room);
        await Expect(zoe.Messages).ToHaveCountAsync(48);
        await zoe.Page.Locator("#timeline").EvaluateAsync("t => t.scrollTop = 0");
        await Expect(zoe.Messages).ToHaveCountAsync(56);
        await Expect(zoe.MessageAt(1).Locator(".msg-text")).ToHaveTextAsync("final draft");
        await Expect(zoe.MessageAt(1).GetByTestId("edited")).ToBeVisibleAsync();
        await Expect(zoe.MessageAt(2).GetByTestId("deleted")).ToBeVisibleAsync();
        var html = await zoe.Page.ContentAsync();
        foreach (var gone in new[] { "to be deleted", "edited before its deletion", "first draft", "second draft" })
        {
            Assert.DoesNotContain(gone, html);
        }

        // Edits and deletions are not lines of their own.
        foreach (var seq in new[] { 4, 10, 11, 59 })
        {
            await Expect(zoe.MessageAt(seq)).ToHaveCountAsync(0);
        }

        // Live, from the other gateway.
        await SeedClient.PostAsync(url, "ann", room, [SeedClient.Edit(3, "filler 3, fixed")]);
        await Expect(zoe.MessageAt(3).Locator(".msg-text")).ToHaveTextAsync("filler 3, fixed");
        await Expect(zoe.MessageAt(3).GetByTestId("edited")).ToBeVisibleAsync();

        // The page read what it showed at the bottom: the server holds the read mark (61 is ann's edit, not a message
        // zoe has to read, but it is the latest seq the page saw).
        await zoe.Page.Locator("#timeline").EvaluateAsync("t => t.scrollTop = t.scrollHeight");
        var deadline = DateTime.UtcNow.AddSeconds(15);
        long read;
        while ((read = await SeedClient.ReadMarkAsync(url, "zoe", room)) < 60 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(200);
        }

        Assert.InRange(read, 60, 61);
    }

    private static Task SaveScreenshotAsync(IPage page, string name) => ChatTests.SaveScreenshotAsync(page, name);
}
