using System.Net;
using System.Net.Http.Headers;

namespace OrleansChat.Gateway.Tests;

/// <summary>jwt mode: the token's <c>rooms</c> claim decides which rooms a connection may join and whose REST
/// history it may read (protocol.md, "Who may join").</summary>
[Collection(ClusterCollection.Name)]
public sealed class RoomsClaimTests(ClusterFixture fixture)
{
    public static TheoryData<string[]?, string, bool> Cases() => new()
    {
        { null, "anything", true },
        { ["*"], "anything", true },
        { ["lobby"], "lobby", true },
        { ["lobby"], "lobby2", false },
        { ["lobby"], "lob", false },
        { ["team-a.*"], "team-a.general", true },
        { ["team-a.*"], "team-a.", true },
        { ["team-a.*"], "team-b.general", false },
        { ["team-a.*"], "team-a", false },
        { ["dm.alice.bob", "team-a.*"], "dm.alice.bob", true },
        { ["dm.alice.bob", "team-a.*"], "dm.alice.carol", false },
        { [], "lobby", false },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task The_rooms_claim_allows_exact_names_prefixes_and_star(string[]? rooms, string room, bool allowed)
    {
        var token = Token("alice", rooms);
        await using var client = await ConnectAsync(token);
        await client.SendAsync(new { type = "join", room });
        var answer = await client.WaitForAsync(allowed ? "joined" : "error");
        Assert.Equal(room, answer.GetProperty("room").GetString());
        if (!allowed)
        {
            Assert.Equal("forbidden", answer.GetProperty("code").GetString());
            // Still connected, and other requests work.
            await client.SendAsync(new { type = "history", room });
            Assert.Equal("not_joined", (await client.WaitForAsync("error")).GetProperty("code").GetString());
        }

        using var http = fixture.Jwt.Http();
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        Assert.Equal(allowed ? HttpStatusCode.OK : HttpStatusCode.Forbidden, (await http.GetAsync($"/api/rooms/{room}/messages")).StatusCode);
    }

    [Fact]
    public async Task A_rooms_claim_that_is_not_an_array_of_strings_is_refused_before_the_upgrade()
    {
        foreach (var bad in new object[] { "lobby", new object[] { 1, 2 } })
        {
            var token = Tokens.Create("alice", ClusterFixture.SigningKey, "orleanschat-tests", DateTime.UtcNow.AddMinutes(5), new() { ["rooms"] = bad });
            Assert.Equal(HttpStatusCode.Unauthorized, await Handshake.StatusAsync(fixture.Jwt, $"?access_token={token}"));
        }
    }

    private static string Token(string user, string[]? rooms)
        => Tokens.Create(user, ClusterFixture.SigningKey, "orleanschat-tests", DateTime.UtcNow.AddMinutes(5),
            rooms is null ? null : new() { ["rooms"] = rooms });

    private async Task<ChatClient> ConnectAsync(string token)
    {
        var client = await ChatClient.ConnectUriAsync(new Uri($"{fixture.Jwt.WsAddress}?access_token={token}"), "alice");
        Assert.Equal("welcome", (await client.NextAsync()).GetProperty("type").GetString());
        return client;
    }
}
