using System.Net;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;

namespace OrleansChat.Gateway.Tests;

/// <summary>Every error code and refusal of protocol v1; the connection stays usable after each error.</summary>
[Collection(ClusterCollection.Name)]
public sealed class ErrorTests(ClusterFixture fixture)
{
    private static async Task<JsonElement> ExpectErrorAsync(ChatClient client, string code)
    {
        var error = await client.NextAsync();
        Assert.Equal("error", error.GetProperty("type").GetString());
        Assert.Equal(code, error.GetProperty("code").GetString());
        Assert.False(string.IsNullOrEmpty(error.GetProperty("message").GetString()));
        return error;
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("[1,2,3]")]
    [InlineData("\"join\"")]
    [InlineData("{}")]
    [InlineData("{\"type\":\"dance\",\"room\":\"x\"}")]
    [InlineData("{\"type\":42}")]
    [InlineData("{\"type\":\"join\"}")]
    [InlineData("{\"type\":\"join\",\"room\":7}")]
    [InlineData("{\"type\":\"join\",\"room\":\"ok\",\"since\":-1}")]
    [InlineData("{\"type\":\"join\",\"room\":\"ok\",\"since\":1.5}")]
    [InlineData("{\"type\":\"join\",\"room\":\"ok\",\"since\":\"3\"}")]
    [InlineData("{\"type\":\"leave\"}")]
    [InlineData("{\"type\":\"history\",\"room\":\"ok\",\"limit\":0}")]
    [InlineData("{\"type\":\"history\",\"room\":\"ok\",\"limit\":201}")]
    [InlineData("{\"type\":\"history\",\"room\":\"ok\",\"before\":5,\"after\":1}")]
    [InlineData("{\"type\":\"send\",\"room\":\"ok\",\"id\":\"1\",\"text\":\"half \\ud800 a pair\"}")]
    [InlineData("{\"type\":\"join\",\"room\":\"\\udc00\"}")]
    public async Task Malformed_requests_get_bad_request_and_the_connection_stays_open(string frame)
    {
        await using var client = await ChatClient.ConnectAsync(fixture.A, "erin");
        await client.SendRawAsync(frame);
        await ExpectErrorAsync(client, "bad_request");

        var joined = await client.JoinAsync(ProtocolTests.NewRoom());
        Assert.Equal("joined", joined.GetProperty("type").GetString());
    }

    [Fact]
    public async Task Binary_frame_gets_bad_request()
    {
        await using var client = await ChatClient.ConnectAsync(fixture.A, "erin");
        await client.SendBytesAsync(Encoding.UTF8.GetBytes("{\"type\":\"join\",\"room\":\"x\"}"), WebSocketMessageType.Binary);
        await ExpectErrorAsync(client, "bad_request");
        Assert.Equal(WebSocketState.Open, client.Socket.State);
    }

    [Fact]
    public async Task Null_optional_fields_count_as_absent()
    {
        var room = ProtocolTests.NewRoom();
        await using var client = await ChatClient.ConnectAsync(fixture.A, "erin");
        await client.SendRawAsync($"{{\"type\":\"join\",\"room\":\"{room}\",\"since\":null,\"extra\":{{\"ignored\":true}}}}");
        Assert.Equal("joined", (await client.NextAsync()).GetProperty("type").GetString());
        await client.SendRawAsync($"{{\"type\":\"history\",\"room\":\"{room}\",\"before\":null,\"after\":null,\"limit\":null}}");
        Assert.Equal("history", (await client.NextAsync()).GetProperty("type").GetString());
    }

    [Theory]
    [InlineData("bad room")]
    [InlineData("")]
    [InlineData("ünïcode")]
    [InlineData("a/b")]
    public async Task Bad_room_names_get_bad_room(string room)
    {
        await using var client = await ChatClient.ConnectAsync(fixture.A, "erin");
        await client.SendAsync(new { type = "join", room });
        await ExpectErrorAsync(client, "bad_room");
        await client.SendAsync(new { type = "send", room, text = "x", id = "e-1" });
        var error = await ExpectErrorAsync(client, "bad_room");
        Assert.Equal("e-1", error.GetProperty("id").GetString());
    }

    [Fact]
    public async Task Too_long_room_name_gets_bad_room()
    {
        await using var client = await ChatClient.ConnectAsync(fixture.A, "erin");
        await client.SendAsync(new { type = "join", room = new string('r', 65) });
        await ExpectErrorAsync(client, "bad_room");
    }

    [Fact]
    public async Task Send_checks_come_in_protocol_order_and_echo_the_id()
    {
        var room = ProtocolTests.NewRoom();
        await using var client = await ChatClient.ConnectAsync(fixture.A, "erin");

        // Empty text beats a bad room; a bad room beats not joined; not joined beats too large.
        await client.SendAsync(new { type = "send", room = "bad room", text = "", id = "o-1" });
        Assert.Equal("o-1", (await ExpectErrorAsync(client, "bad_request")).GetProperty("id").GetString());
        await client.SendAsync(new { type = "send", room = "bad room", text = new string('x', 5000), id = "o-2" });
        Assert.Equal("o-2", (await ExpectErrorAsync(client, "bad_room")).GetProperty("id").GetString());
        await client.SendAsync(new { type = "send", room, text = new string('x', 5000), id = "o-3" });
        Assert.Equal("o-3", (await ExpectErrorAsync(client, "not_joined")).GetProperty("id").GetString());

        await client.JoinAsync(room);
        // 4096 bytes is the limit: 2049 two-byte characters are 4098 bytes.
        await client.SendAsync(new { type = "send", room, text = new string('é', 2049), id = "o-4" });
        Assert.Equal("o-4", (await ExpectErrorAsync(client, "too_large")).GetProperty("id").GetString());
        var exact = await client.PostAsync(room, new string('é', 2048), "o-5");
        Assert.Equal(1, exact.GetProperty("seq").GetInt64());

        await client.SendAsync(new { type = "send", room, text = "x", id = new string('i', 65) });
        await ExpectErrorAsync(client, "bad_request");
        await client.SendAsync(new { type = "send", room, text = "x", id = "" });
        await ExpectErrorAsync(client, "bad_request");
        await client.SendAsync(new { type = "send", room, text = 5, id = "o-6" });
        Assert.Equal("o-6", (await ExpectErrorAsync(client, "bad_request")).GetProperty("id").GetString());
    }

    [Fact]
    public async Task Leave_and_history_of_a_room_not_joined_get_not_joined()
    {
        await using var client = await ChatClient.ConnectAsync(fixture.A, "erin");
        await client.SendAsync(new { type = "leave", room = "never-joined" });
        Assert.Equal("never-joined", (await ExpectErrorAsync(client, "not_joined")).GetProperty("room").GetString());
        await client.SendAsync(new { type = "history", room = "never-joined" });
        await ExpectErrorAsync(client, "not_joined");
    }

    [Fact]
    public async Task Oversized_message_closes_with_1009()
    {
        await using var client = await ChatClient.ConnectAsync(fixture.A, "erin");
        var big = $"{{\"type\":\"send\",\"room\":\"r\",\"id\":\"x\",\"text\":\"{new string('a', 17 * 1024)}\"}}";
        await client.SendRawAsync(big);
        Assert.Equal(WebSocketCloseStatus.MessageTooBig, await client.WaitForCloseAsync());
    }

    [Fact]
    public async Task Oversized_message_in_fragments_closes_with_1009()
    {
        await using var client = await ChatClient.ConnectAsync(fixture.A, "erin");
        var chunk = Encoding.UTF8.GetBytes(new string('a', 6 * 1024));
        for (var i = 0; i < 3; i++)
        {
            await client.Socket.SendAsync(chunk, WebSocketMessageType.Text, endOfMessage: false, CancellationToken.None);
        }

        Assert.Equal(WebSocketCloseStatus.MessageTooBig, await client.WaitForCloseAsync());
    }

    [Fact]
    public async Task Invalid_utf8_closes_with_1007()
    {
        await using var client = await ChatClient.ConnectAsync(fixture.A, "erin");
        await client.SendBytesAsync([(byte)'{', 0xC3, 0x28, (byte)'}'], WebSocketMessageType.Text);
        Assert.Equal(WebSocketCloseStatus.InvalidPayloadData, await client.WaitForCloseAsync());
    }

    [Fact]
    public async Task Refusals_before_the_upgrade()
    {
        using var http = fixture.A.Http();
        var plain = await http.GetAsync("/ws?user=frank");
        Assert.Equal(HttpStatusCode.BadRequest, plain.StatusCode);
        Assert.False(string.IsNullOrWhiteSpace(await plain.Content.ReadAsStringAsync()));

        Assert.Equal(HttpStatusCode.BadRequest, await Handshake.StatusAsync(fixture.A, ""));
        Assert.Equal(HttpStatusCode.BadRequest, await Handshake.StatusAsync(fixture.A, "?user=" + new string('u', 33)));
        Assert.Equal(HttpStatusCode.BadRequest, await Handshake.StatusAsync(fixture.A, "?user=a%20b"));
        Assert.Equal(HttpStatusCode.BadRequest, await Handshake.StatusAsync(fixture.A, "?user=%3Cscript%3E"));
        Assert.Equal(HttpStatusCode.Forbidden, await Handshake.StatusAsync(fixture.A, "?user=frank", origin: "http://evil.example"));
        Assert.Equal(HttpStatusCode.SwitchingProtocols, await Handshake.StatusAsync(fixture.A, "?user=frank", origin: fixture.A.HttpAddress.GetLeftPart(UriPartial.Authority)));
        Assert.Equal(HttpStatusCode.SwitchingProtocols, await Handshake.StatusAsync(fixture.A, "?user=frank"));
    }

    [Fact]
    public async Task Behind_a_trusted_proxy_the_origin_is_compared_with_the_forwarded_scheme_and_host()
    {
        (string, string)[] proxy = [("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "chat.example.com")];
        Assert.Equal(HttpStatusCode.SwitchingProtocols, await Handshake.StatusAsync(fixture.A, "?user=frank", "https://chat.example.com", proxy));
        Assert.Equal(HttpStatusCode.Forbidden, await Handshake.StatusAsync(fixture.A, "?user=frank", "http://chat.example.com", proxy));
        Assert.Equal(HttpStatusCode.Forbidden, await Handshake.StatusAsync(fixture.A, "?user=frank", "https://evil.example", proxy));
    }
}
