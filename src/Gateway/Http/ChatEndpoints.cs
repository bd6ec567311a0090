using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Options;
using OrleansChat.Gateway.Connections;
using OrleansChat.Gateway.Protocol;
using OrleansChat.Gateway.Rooms;
using OrleansChat.Grains.Interfaces;
using OrleansChat.Hosting;

namespace OrleansChat.Gateway.Http;

/// <summary>The gateway's HTTP surface: <c>/ws</c>, health, metrics, REST history, the server API and the web client.</summary>
public static partial class ChatEndpoints
{
    public static WebApplication MapChatEndpoints(this WebApplication app)
    {
        app.UseDefaultFiles();
        app.UseStaticFiles();
        app.Map("/ws", AcceptAsync).RequireRateLimiting(ChatRateLimits.Handshakes);
        app.MapChatHealth();
        app.MapChatMetrics();
        app.MapGet("/api/rooms/{room}/messages", GetMessagesAsync).RequireRateLimiting(ChatRateLimits.History);
        app.MapServerApi();
        return app;
    }

    private static async Task AcceptAsync(HttpContext context, AccessPolicy access, RoomHub hub, ConnectionRegistry connections,
        ConnectionLimits limits, GatewayMetrics metrics, IOptions<GatewayOptions> options, ILoggerFactory loggers)
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            await RefuseAsync(context, StatusCodes.Status400BadRequest, "expected a WebSocket upgrade request");
            return;
        }

        if (!access.IsOriginAllowed(context.Request))
        {
            await RefuseAsync(context, StatusCodes.Status403Forbidden, "origin not allowed");
            return;
        }

        var (identity, status, reason) = await access.AuthenticateAsync(context.Request);
        if (identity is null)
        {
            await RefuseAsync(context, status, reason);
            return;
        }

        var user = identity.User;
        if (connections.Draining)
        {
            await RefuseAsync(context, StatusCodes.Status503ServiceUnavailable, "the gateway is shutting down; connect to another one");
            return;
        }

        var remote = context.Connection.RemoteIpAddress?.ToString() ?? "-";
        var (slot, refusal) = limits.TryOpen(user, remote);
        if (slot is null)
        {
            metrics.Refused("connection_limit");
            await RefuseAsync(context, StatusCodes.Status429TooManyRequests, refusal!);
            return;
        }

        using var held = slot;
        var settings = options.Value;
        using var socket = await context.WebSockets.AcceptWebSocketAsync(new WebSocketAcceptContext
        {
            // Real ping/pong: a peer that has not answered a ping within one more interval is aborted,
            // so a dead peer is gone within two intervals.
            KeepAliveInterval = settings.HeartbeatInterval,
            KeepAliveTimeout = settings.HeartbeatInterval,
        });
        var connection = new ChatConnection(socket, identity, settings, hub, metrics, loggers.CreateLogger<ChatConnection>());
        if (!connections.TryAdd(connection))
        {
            connection.RequestClose(System.Net.WebSockets.WebSocketCloseStatus.EndpointUnavailable, "gateway shutting down", discardQueued: false);
        }

        metrics.ConnectionOpened();
        var logger = loggers.CreateLogger(ConnectionLogCategory);
        LogOpened(logger, connection.Id, user, remote);
        var opened = Stopwatch.GetTimestamp();
        try
        {
            await connection.RunAsync();
        }
        finally
        {
            metrics.ConnectionClosed(connection.CloseCode);
            connections.Remove(connection);
            LogClosed(logger, connection.Id, user, remote, Stopwatch.GetElapsedTime(opened).TotalSeconds, connection.CloseCode);
        }
    }

    /// <summary>One line per connection opened and closed, at Information.</summary>
    private const string ConnectionLogCategory = "OrleansChat.Gateway.Connections";

    [LoggerMessage(Level = LogLevel.Information, Message = "Connection {Connection} opened: user {User}, remote {Remote}")]
    private static partial void LogOpened(ILogger logger, string connection, string user, string remote);

    [LoggerMessage(Level = LogLevel.Information, Message = "Connection {Connection} closed: user {User}, remote {Remote}, {DurationSeconds:0.0} s, close code {CloseCode}")]
    private static partial void LogClosed(ILogger logger, string connection, string user, string remote, double durationSeconds, int closeCode);

    private static async Task GetMessagesAsync(HttpContext context, string room, AccessPolicy access, RoomHub hub, IOptions<GatewayOptions> options)
    {
        RoomAccess? rooms = null;
        if (options.Value.Auth.IsJwt && !access.HasApiKey(context.Request))
        {
            var (identity, status, reason) = await access.AuthenticateAsync(context.Request);
            if (identity is null)
            {
                await RefuseAsync(context, status, reason);
                return;
            }

            rooms = identity.Rooms;
        }

        if (!ChatLimits.IsValidRoom(room))
        {
            await RefuseAsync(context, StatusCodes.Status400BadRequest, "invalid room name: 1 to 64 characters of A-Z a-z 0-9 _ - .");
            return;
        }

        if (rooms is not null && !rooms.Allows(room))
        {
            await RefuseAsync(context, StatusCodes.Status403Forbidden, "the token does not allow this room");
            return;
        }

        if (!TryReadQuery(context.Request, "before", out var before, out var problem)
            || !TryReadQuery(context.Request, "after", out var after, out problem)
            || !TryReadQuery(context.Request, "limit", out var limit, out problem))
        {
            await RefuseAsync(context, StatusCodes.Status400BadRequest, problem!);
            return;
        }

        if (before is not null && after is not null)
        {
            await RefuseAsync(context, StatusCodes.Status400BadRequest, "before and after cannot both be given");
            return;
        }

        if (limit is < 1 or > ChatLimits.MaxHistory)
        {
            await RefuseAsync(context, StatusCodes.Status400BadRequest, $"limit must be between 1 and {ChatLimits.MaxHistory}");
            return;
        }

        var history = await hub.HistoryAsync(room, before, after, (int)(limit ?? ChatLimits.DefaultHistory));
        if (history.Error is { } error)
        {
            var code = error.Code == ErrorCodes.Unavailable ? StatusCodes.Status503ServiceUnavailable : StatusCodes.Status400BadRequest;
            await RefuseAsync(context, code, error.Message);
            return;
        }

        context.Response.ContentType = "application/json; charset=utf-8";
        await context.Response.Body.WriteAsync(Events.HistoryBody(room, history.Messages));
    }

    /// <summary>An optional non-negative integer query parameter; empty counts as absent.</summary>
    private static bool TryReadQuery(HttpRequest request, string name, out long? value, out string? problem)
    {
        value = null;
        problem = null;
        var text = request.Query[name].ToString();
        if (text.Length == 0)
        {
            return true;
        }

        if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var number))
        {
            problem = $"{name} must be a non-negative integer";
            return false;
        }

        value = number;
        return true;
    }

    private static Task RefuseAsync(HttpContext context, int status, string reason)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "text/plain; charset=utf-8";
        return context.Response.WriteAsync(reason + "\n");
    }
}
