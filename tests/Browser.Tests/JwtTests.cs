using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace OrleansChat.Browser.Tests;

/// <summary>The web client against the jwt-mode gateway: tokens handed over by an embedding application, the
/// `rooms` claim, expiry, and what the server API does to an open page (kick, disconnect).</summary>
[Collection(BrowserCollection.Name)]
public sealed class JwtTests(ChatClusterFixture cluster) : IDisposable
{
    private readonly HttpClient _api = new()
    {
        BaseAddress = new Uri(cluster.UrlJwt),
        DefaultRequestHeaders = { Authorization = new AuthenticationHeaderValue("Bearer", ChatClusterFixture.ApiKey) },
    };

    public void Dispose() => _api.Dispose();

    [Fact]
    public async Task TokenInTheFragmentSignsInAndLimitsTheRooms()
    {
        var name = Unique("ann");
        var token = Mint(name, rooms: ["team-a.*"]);
        var allowed = $"team-a.{Unique("r")}";
        var forbidden = $"team-b.{Unique("r")}";
        await using var ann = await ChatUser.WithTokenAsync(cluster.Browser, cluster.UrlJwt, name, token);

        // The token left the address bar at once and is kept nowhere; the name comes from it, not from a prompt.
        Assert.Equal($"{cluster.UrlJwt}/", ann.Page.Url);
        Assert.DoesNotContain(token, await ann.Page.EvaluateAsync<string>("() => JSON.stringify(localStorage) + JSON.stringify(sessionStorage)"));
        await Expect(ann.Page.GetByTestId("name")).ToBeHiddenAsync();
        await Expect(ann.Page.Locator("#me-name")).ToHaveTextAsync(name);

        await ann.JoinAsync(allowed);
        await ann.SayAsync("allowed by the rooms claim");

        await ann.Page.GetByTestId("join-room").FillAsync(forbidden);
        await ann.Page.GetByTestId("join-room").PressAsync("Enter");
        await Expect(ann.Toast("forbidden")).ToHaveTextAsync($"You may not join #{forbidden}.");
        await Expect(ann.Room(forbidden)).ToHaveCountAsync(0);
        await Expect(ann.Rooms).ToHaveCountAsync(1);
        await Expect(ann.Status).ToHaveAttributeAsync("data-state", "online");
    }

    [Fact]
    public async Task WithoutATokenTheJwtGatewayAsksForASignIn()
    {
        var context = await ChatUser.NewRecordingContextAsync(cluster.Browser);
        var page = await context.NewPageAsync();
        await page.GotoAsync(cluster.UrlJwt);
        var name = Unique("nat");
        await page.GetByTestId("name").FillAsync(name);
        await page.GetByTestId("name").PressAsync("Enter");

        await Expect(page.GetByTestId("session")).ToContainTextAsync("This chat needs a sign-in from your application.");
        Assert.Equal([name], await ChatUser.TokenRequestsAsync(page));
        await Expect(page.GetByTestId("status")).Not.ToHaveAttributeAsync("data-state", "online");
        await context.CloseAsync();
    }

    [Fact]
    public async Task AnExpiredTokenIsReplacedByTheApplication()
    {
        var name = Unique("eve");
        var room = Unique("expiry");
        await using var eve = await ChatUser.WithTokenAsync(cluster.Browser, cluster.UrlJwt, name, Mint(name, lifetime: TimeSpan.FromSeconds(6)));
        await eve.JoinAsync(room);
        Assert.Empty(await eve.TokenRequestsAsync());

        // Its exp passes: the page says so and asks the application.
        await Expect(eve.Session).ToContainTextAsync("Your session has expired");
        Assert.Equal([name], await eve.TokenRequestsAsync());
        await Expect(eve.Status).Not.ToHaveAttributeAsync("data-state", "online");

        // A token the gateway refuses (401 before the upgrade) is one more reason to ask.
        await eve.Page.EvaluateAsync("(t) => window.orleansChat.setToken(t)", Mint(name, key: "some-other-key-that-the-gateway-does-not-know"));
        await EventuallyAsync(async () => (await eve.TokenRequestsAsync()).Length == 2, "a second token request after the 401");
        await Expect(eve.Session).ToContainTextAsync("Your session has expired");

        // What was said meanwhile comes back after the fresh token: the room is rejoined with `since`.
        await PostAsync($"/api/rooms/{room}/messages", new { user = "bot", text = "said while eve was away", id = Guid.NewGuid().ToString("N") });
        await eve.Page.EvaluateAsync("(t) => window.orleansChat.setToken(t)", Mint(name));
        await Expect(eve.Status).ToHaveAttributeAsync("data-state", "online");
        await Expect(eve.Session).ToBeHiddenAsync();
        await Expect(eve.Message("said while eve was away")).ToHaveCountAsync(1);
        await eve.SayAsync("back with a fresh token");
    }

    [Fact]
    public async Task AKickedUserLosesTheRoom()
    {
        var room = Unique("kick");
        var (kim, ben) = (Unique("kim"), Unique("ben"));
        await using var kimPage = await ChatUser.WithTokenAsync(cluster.Browser, cluster.UrlJwt, kim, Mint(kim));
        await using var benPage = await ChatUser.WithTokenAsync(cluster.Browser, cluster.UrlJwt, ben, Mint(ben));
        await kimPage.JoinAsync(room);
        await benPage.JoinAsync(room);
        await Expect(benPage.Members).ToHaveCountAsync(2);

        await PostAsync($"/api/rooms/{room}/kick", new { user = kim });

        await Expect(kimPage.Toast("kicked")).ToHaveTextAsync($"You were removed from #{room}.");
        await Expect(kimPage.Room(room)).ToHaveCountAsync(0);
        await Expect(kimPage.Status).ToHaveAttributeAsync("data-state", "online");
        await Expect(benPage.Page.Locator(".notice").Last).ToHaveTextAsync($"{kim} left");
        await Expect(benPage.Members).ToHaveCountAsync(1);
    }

    [Fact]
    public async Task ADisconnectedUserDoesNotComeBackByItself()
    {
        var room = Unique("bye");
        var name = Unique("dan");
        await using var dan = await ChatUser.WithTokenAsync(cluster.Browser, cluster.UrlJwt, name, Mint(name));
        await dan.JoinAsync(room);
        var sockets = 0;
        dan.Page.WebSocket += (_, _) => Interlocked.Increment(ref sockets);

        await PostAsync($"/api/users/{name}/disconnect", new { });

        await Expect(dan.Session).ToContainTextAsync("The server closed this session");
        await Expect(dan.Status).ToHaveAttributeAsync("data-state", "idle");
        await Expect(dan.Page.Locator("#retry-now")).ToBeHiddenAsync();
        await Task.Delay(2000); // longer than the first retry of an ordinary drop
        Assert.Equal(0, Volatile.Read(ref sockets));

        // Only the user brings it back, into the same room.
        await dan.Page.GetByTestId("reconnect").ClickAsync();
        await Expect(dan.Status).ToHaveAttributeAsync("data-state", "online");
        await Expect(dan.Session).ToBeHiddenAsync();
        await Expect(dan.Page.Locator("#room-sub")).ToContainTextAsync("member");
    }

    private async Task PostAsync(string path, object body)
    {
        using var response = await _api.PostAsJsonAsync(path, body);
        Assert.True(response.IsSuccessStatusCode, $"{path}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
    }

    private static async Task EventuallyAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for {what}");
            await Task.Delay(100);
        }
    }

    /// <summary>A name no other test (or earlier run against the same silo) uses.</summary>
    private static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..10]}";

    /// <summary>A token as the embedding application's backend would mint it for the jwt-mode gateway.</summary>
    private static string Mint(string user, string[]? rooms = null, TimeSpan? lifetime = null, string key = ChatClusterFixture.JwtSigningKey)
    {
        var expires = DateTime.UtcNow + (lifetime ?? TimeSpan.FromHours(1));
        var claims = new Dictionary<string, object> { ["sub"] = user };
        if (rooms is not null)
        {
            claims["rooms"] = rooms;
        }

        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Claims = claims,
            Issuer = ChatClusterFixture.JwtIssuer,
            Audience = ChatClusterFixture.JwtAudience,
            IssuedAt = expires.AddHours(-2),
            NotBefore = expires.AddHours(-2),
            Expires = expires,
            SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(Encoding.UTF8.GetBytes(key)), SecurityAlgorithms.HmacSha256),
        });
    }
}
