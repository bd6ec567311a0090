using System.Net;
using System.Net.WebSockets;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace OrleansChat.Gateway.Tests;

public static class Handshake
{
    /// <summary>The HTTP status of a WebSocket handshake to <c>/ws{query}</c> (101 when it succeeds).</summary>
    public static async Task<HttpStatusCode> StatusAsync(GatewayFactory gateway, string query, string? origin = null, params (string Name, string Value)[] headers)
    {
        using var socket = new ClientWebSocket();
        socket.Options.CollectHttpResponseDetails = true;
        if (origin is not null)
        {
            socket.Options.SetRequestHeader("Origin", origin);
        }

        foreach (var (name, value) in headers)
        {
            socket.Options.SetRequestHeader(name, value);
        }

        try
        {
            await socket.ConnectAsync(new Uri($"{gateway.WsAddress}{query}"), CancellationToken.None);
            socket.Abort();
            return socket.HttpStatusCode;
        }
        catch (WebSocketException)
        {
            return socket.HttpStatusCode;
        }
    }
}

public static class Tokens
{
    /// <summary>A signed token; <paramref name="claims"/> adds more (such as <c>rooms</c>, an array).</summary>
    public static string Create(string subject, string key, string issuer, DateTime expires, Dictionary<string, object>? claims = null)
        => new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Claims = new Dictionary<string, object>(claims ?? []) { ["sub"] = subject },
            Issuer = issuer,
            NotBefore = expires.AddMinutes(-30),
            IssuedAt = expires.AddMinutes(-30),
            Expires = expires,
            SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(System.Text.Encoding.UTF8.GetBytes(key)), SecurityAlgorithms.HmacSha256),
        });
}
