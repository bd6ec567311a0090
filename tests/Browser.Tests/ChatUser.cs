namespace OrleansChat.Browser.Tests;

/// <summary>One person in their own browser context (own localStorage), driving the page through its
/// stable data-testid hooks, as a user would: type, press Enter, read.</summary>
public sealed class ChatUser : IAsyncDisposable
{
    private ChatUser(string name, IBrowserContext context, IPage page)
    {
        Name = name;
        Context = context;
        Page = page;
    }

    public string Name { get; }

    public IBrowserContext Context { get; }

    public IPage Page { get; }

    public ILocator Messages => Page.GetByTestId("message");

    public ILocator Members => Page.GetByTestId("member");

    public ILocator Rooms => Page.GetByTestId("room");

    public ILocator Status => Page.GetByTestId("status");

    public ILocator Composer => Page.GetByTestId("composer");

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

    /// <summary>Opens the chat, picks a name and joins a room.</summary>
    public static async Task<ChatUser> InRoomAsync(IBrowser browser, string url, string name, string room)
    {
        var user = await SignInAsync(browser, url, name);
        await user.JoinAsync(room);
        return user;
    }

    public ILocator Room(string room) => Page.Locator($"[data-testid=room][data-room=\"{room}\"]");

    public ILocator Message(string text) => Messages.Filter(new LocatorFilterOptions { HasText = text });

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
        await Expect(Message(text)).Not.ToHaveClassAsync(new System.Text.RegularExpressions.Regex(@"\bpending\b"));
    }

    public async ValueTask DisposeAsync() => await Context.CloseAsync();
}
