using System.Text.RegularExpressions;

namespace OrleansChat.Browser.Tests;

/// <summary>One person in their own browser context (own localStorage), driving the page through its
/// stable data-testid hooks, as a user would: type, press Enter, read.</summary>
public sealed class ChatUser : IAsyncDisposable
{
    private static readonly Regex Pending = new(@"\bpending\b");
    private readonly bool _ownsContext;

    private ChatUser(string name, IBrowserContext context, IPage page, bool ownsContext = true)
    {
        Name = name;
        Context = context;
        Page = page;
        _ownsContext = ownsContext;
    }

    public string Name { get; }

    public IBrowserContext Context { get; }

    public IPage Page { get; }

    public ILocator Messages => Page.GetByTestId("message");

    public ILocator Members => Page.GetByTestId("member");

    public ILocator Rooms => Page.GetByTestId("room");

    public ILocator Status => Page.GetByTestId("status");

    public ILocator Composer => Page.GetByTestId("composer");

    /// <summary>"alice is typing…" under the message list.</summary>
    public ILocator Typing => Page.GetByTestId("typing");

    /// <summary>Opens the chat and picks a name.</summary>
    public static async Task<ChatUser> SignInAsync(IBrowser browser, string url, string name)
    {
        var context = await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 760 } });
        var page = await context.NewPageAsync();
        await page.GotoAsync(url);
        await page.GetByTestId("name").FillAsync(name);
        await page.GetByTestId("name").PressAsync("Enter");
        var user = new ChatUser(name, context, page);
        await Expect(user.Status).ToHaveAttributeAsync("data-state", "online");
        return user;
    }

    /// <summary>Opens the chat the way an embedding application does in jwt mode: the token in the URL fragment.
    /// Every <c>orleanschat:token-expired</c> event is recorded from the start (see <see cref="TokenRequestsAsync"/>).</summary>
    public static async Task<ChatUser> WithTokenAsync(IBrowser browser, string url, string name, string token)
    {
        var context = await NewRecordingContextAsync(browser);
        var page = await context.NewPageAsync();
        await page.GotoAsync($"{url}/#token={token}");
        var user = new ChatUser(name, context, page);
        await Expect(user.Status).ToHaveAttributeAsync("data-state", "online");
        return user;
    }

    /// <summary>A context whose pages record each <c>orleanschat:token-expired</c> event's detail before any
    /// script of the page runs.</summary>
    public static async Task<IBrowserContext> NewRecordingContextAsync(IBrowser browser)
    {
        var context = await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 760 } });
        await context.AddInitScriptAsync("""
            window.tokenRequests = [];
            window.addEventListener("orleanschat:token-expired", (e) => window.tokenRequests.push(e.detail));
            """);
        return context;
    }

    /// <summary>The users the page asked the application a new token for, in order ("" for none).</summary>
    public Task<string[]> TokenRequestsAsync() => TokenRequestsAsync(Page);

    public static Task<string[]> TokenRequestsAsync(IPage page) => page.EvaluateAsync<string[]>("() => window.tokenRequests.map((d) => d.user ?? \"\")");

    /// <summary>The banner that says why the session ended.</summary>
    public ILocator Session => Page.GetByTestId("session");

    /// <summary>A passing notice of one kind ("forbidden", "kicked").</summary>
    public ILocator Toast(string kind) => Page.Locator($"[data-testid=toast][data-kind={kind}]");

    /// <summary>Opens the chat, picks a name and joins a room.</summary>
    public static async Task<ChatUser> InRoomAsync(IBrowser browser, string url, string name, string room)
    {
        var user = await SignInAsync(browser, url, name);
        await user.JoinAsync(room);
        return user;
    }

    /// <summary>Another tab of the same person: the same context, so the same name and saved rooms.</summary>
    public async Task<ChatUser> OpenTabAsync(string url)
    {
        var page = await Context.NewPageAsync();
        await page.GotoAsync(url);
        var tab = new ChatUser(Name, Context, page, ownsContext: false);
        await Expect(tab.Status).ToHaveAttributeAsync("data-state", "online");
        return tab;
    }

    public ILocator Room(string room) => Page.Locator($"[data-testid=room][data-room=\"{room}\"]");

    /// <summary>The unread count of a room in the sidebar.</summary>
    public ILocator Unread(string room) => Room(room).GetByTestId("unread");

    public ILocator Message(string text) => Messages.Filter(new LocatorFilterOptions { HasText = text });

    /// <summary>The stored message with this seq: it stays the same element's locator when its text changes.</summary>
    public ILocator MessageAt(int seq) => Page.Locator($"[data-testid=message][data-seq=\"{seq}\"]");

    /// <summary>The seq of the one message showing <paramref name="text"/>.</summary>
    public async Task<int> SeqOfAsync(string text) => int.Parse((await Message(text).GetAttributeAsync("data-seq"))!);

    /// <summary>Opens the inline editor of one's own message through its menu, types <paramref name="newText"/> and
    /// presses Enter to save it.</summary>
    private static async Task TypeEditAsync(ILocator message, string newText)
    {
        await message.GetByTestId("message-edit").ClickAsync(); // Playwright hovers first, which shows the menu
        await message.GetByTestId("edit-input").FillAsync(newText);
        await message.GetByTestId("edit-input").PressAsync("Enter");
    }

    /// <summary>Edits one's own message and waits for the acknowledgement.</summary>
    public async Task EditAsync(string text, string newText)
    {
        var message = MessageAt(await SeqOfAsync(text));
        await TypeEditAsync(message, newText);
        await Expect(message.GetByTestId("edited")).ToBeVisibleAsync();
        await Expect(message).Not.ToHaveClassAsync(Pending);
    }

    /// <summary>Deletes one's own message through its menu, and waits for the acknowledgement.</summary>
    public async Task DeleteAsync(string text)
    {
        var message = MessageAt(await SeqOfAsync(text));
        await message.GetByTestId("message-delete").ClickAsync();
        await Expect(message.GetByTestId("deleted")).ToBeVisibleAsync();
    }

    public async Task JoinAsync(string room)
    {
        await Page.GetByTestId("join-room").FillAsync(room);
        await Page.GetByTestId("join-room").PressAsync("Enter");
        await Expect(Room(room)).ToHaveAttributeAsync("aria-current", "page");
        await Expect(Page.Locator("#room-sub")).ToContainTextAsync("member");
    }

    public async Task SendAsync(string text)
    {
        await Composer.FillAsync(text);
        await Composer.PressAsync("Enter");
    }

    /// <summary>Sends and waits for the server's acknowledgement (the message is no longer pending).</summary>
    public async Task SayAsync(string text)
    {
        await SendAsync(text);
        await Expect(Message(text)).ToHaveCountAsync(1);
        await Expect(Message(text)).Not.ToHaveClassAsync(Pending);
    }

    public async ValueTask DisposeAsync()
    {
        if (_ownsContext)
        {
            await Context.CloseAsync();
        }
        else
        {
            await Page.CloseAsync();
        }
    }
}
