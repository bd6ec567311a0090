using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Options;
using OrleansChat.Gateway.Protocol;
using OrleansChat.Grains.Interfaces;

namespace OrleansChat.Gateway.Http;

/// <summary>
/// The server API (protocol.md, "Server API"): for the application's own backend, on every gateway, only when
/// <c>Gateway:Api:Key</c> is set (else 404), every call with <c>Authorization: Bearer &lt;key&gt;</c> (else 401).
/// Every call goes to the room (or registry) grain, so it works on any gateway for any room and any user of the
/// cluster. Described by the OpenAPI document at <c>/openapi/v1.json</c>.
/// </summary>
public static class ServerApi
{
    public static WebApplication MapServerApi(this WebApplication app)
    {
        app.MapOpenApi();
        var api = app.MapGroup("/api").AddEndpointFilter(RequireKeyAsync).WithTags("Server API");
        api.MapPost("/rooms/{room}/messages", PostAsync)
            .WithName("PostMessage").WithSummary("Post a message as a user (resending the same id answers the original).")
            .Accepts<PostBody>("application/json")
            .Produces<StoredEvent>(StatusCodes.Status201Created).Produces<StoredEvent>(StatusCodes.Status200OK).ProducesErrors();
        api.MapDelete("/rooms/{room}/messages/{seq}", DeleteAsync)
            .WithName("DeleteMessage").WithSummary("Delete any message as a moderator.")
            .Produces<StoredEvent>(StatusCodes.Status200OK).Produces<ApiError>(StatusCodes.Status404NotFound).ProducesErrors();
        api.MapGet("/rooms/{room}", InfoAsync)
            .WithName("GetRoom").WithSummary("The room's latest seq and its members.")
            .Produces<RoomBody>(StatusCodes.Status200OK).ProducesErrors();
        api.MapPost("/rooms/{room}/kick", KickAsync)
            .WithName("KickUser").WithSummary("Remove a user from the room (every connection), optionally banning them.")
            .Accepts<KickBody>("application/json")
            .Produces<ConnectionsBody>(StatusCodes.Status200OK).ProducesErrors();
        api.MapPost("/users/{user}/disconnect", DisconnectAsync)
            .WithName("DisconnectUser").WithSummary("Close every connection of a user on every gateway (1008).")
            .Produces<ConnectionsBody>(StatusCodes.Status200OK).ProducesErrors();
        return app;
    }

    /// <summary>The stored event as delivered live (fields as in the protocol).</summary>
    public sealed record StoredEvent(string Type, string Room, long Seq, string User, long? Target, string? Text, string Time, string Id);

    public sealed record PostBody([property: JsonPropertyName("user")] string User, [property: JsonPropertyName("text")] string Text, [property: JsonPropertyName("id")] string Id);

    public sealed record KickBody([property: JsonPropertyName("user")] string User, [property: JsonPropertyName("ban_seconds")] long? BanSeconds);

    public sealed record RoomBody([property: JsonPropertyName("room")] string Room, [property: JsonPropertyName("seq")] long Seq, [property: JsonPropertyName("members")] string[] Members);

    public sealed record ConnectionsBody([property: JsonPropertyName("connections")] int Connections);

    public sealed record ApiError([property: JsonPropertyName("error")] string Error, [property: JsonPropertyName("message")] string Message);

    private static RouteHandlerBuilder ProducesErrors(this RouteHandlerBuilder route)
        => route.Produces<ApiError>(StatusCodes.Status400BadRequest).Produces(StatusCodes.Status401Unauthorized)
            .Produces<ApiError>(StatusCodes.Status503ServiceUnavailable);

    private static async ValueTask<object?> RequireKeyAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var access = context.HttpContext.RequestServices.GetRequiredService<AccessPolicy>();
        if (!access.ApiEnabled)
        {
            return Results.NotFound();
        }

        if (!access.HasApiKey(context.HttpContext.Request))
        {
            context.HttpContext.Response.Headers.WWWAuthenticate = "Bearer";
            return Results.Text("the server API needs Authorization: Bearer <Gateway:Api:Key>\n", "text/plain", statusCode: StatusCodes.Status401Unauthorized);
        }

        return await next(context);
    }

    private static async Task<IResult> PostAsync(string room, HttpRequest request, IGrainFactory grains, IOptions<GatewayOptions> options)
    {
        if (await ReadBodyAsync(request) is not { } body)
        {
            return Error(ErrorCodes.BadRequest, "the body must be a JSON object");
        }

        if (!TryString(body, "user", out var user) || !TryString(body, "text", out var text) || !TryString(body, "id", out var id))
        {
            return Error(ErrorCodes.BadRequest, "\"user\", \"text\" and \"id\" are required strings");
        }

        if (string.IsNullOrEmpty(text) || !ChatLimits.IsValidClientId(id))
        {
            return Error(ErrorCodes.BadRequest, "\"text\" must not be empty and \"id\" must be 1 to 64 characters");
        }

        if (RoomProblem(room) is { } roomProblem)
        {
            return roomProblem;
        }

        if (!ChatLimits.IsValidUser(user))
        {
            return BadUser();
        }

        if (ChatLimits.Utf8Length(text) > options.Value.MaxTextBytes)
        {
            return Error(ErrorCodes.TooLarge, $"text is over {options.Value.MaxTextBytes} bytes");
        }

        return await CallAsync(async () =>
        {
            var result = await grains.GetGrain<IRoomGrain>(room).Post(new PostRequest(user, id, text, null));
            return result.Error != RoomError.None ? FromRoom(result.Error)
                : Json(Events.Stored(result.Message!), result.Duplicate ? StatusCodes.Status200OK : StatusCodes.Status201Created);
        });
    }

    private static async Task<IResult> DeleteAsync(string room, string seq, string? moderator, IGrainFactory grains)
    {
        if (RoomProblem(room) is { } roomProblem)
        {
            return roomProblem;
        }

        if (!long.TryParse(seq, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var target))
        {
            return Error(ErrorCodes.BadRequest, "the seq must be a non-negative integer");
        }

        if (!ChatLimits.IsValidUser(moderator))
        {
            return Error(ErrorCodes.BadRequest, "?moderator= must be a user name: 1 to 32 characters of A-Z a-z 0-9 _ - .");
        }

        var id = $"mod-{Guid.NewGuid():N}";
        return await CallAsync(async () =>
        {
            var result = await grains.GetGrain<IRoomGrain>(room).Post(new PostRequest(moderator, id, "", null, ChatEventKind.Delete, target, Moderator: true));
            return result.Error != RoomError.None ? FromRoom(result.Error) : Json(Events.Stored(result.Message!), StatusCodes.Status200OK);
        });
    }

    private static async Task<IResult> InfoAsync(string room, IGrainFactory grains)
    {
        if (RoomProblem(room) is { } roomProblem)
        {
            return roomProblem;
        }

        return await CallAsync(async () =>
        {
            var info = await grains.GetGrain<IRoomGrain>(room).Info();
            return info.Error != RoomError.None ? FromRoom(info.Error) : Results.Json(new RoomBody(room, info.Seq, [.. info.Members]));
        });
    }

    private static async Task<IResult> KickAsync(string room, HttpRequest request, IGrainFactory grains)
    {
        if (await ReadBodyAsync(request) is not { } body || !TryString(body, "user", out var user))
        {
            return Error(ErrorCodes.BadRequest, "the body must be a JSON object with \"user\" and optionally \"ban_seconds\"");
        }

        long banSeconds = 0;
        if (body.TryGetProperty("ban_seconds", out var ban) && ban.ValueKind != JsonValueKind.Null
            && (ban.ValueKind != JsonValueKind.Number || !ban.TryGetInt64(out banSeconds) || banSeconds < 0))
        {
            return Error(ErrorCodes.BadRequest, "\"ban_seconds\" must be a non-negative integer");
        }

        if (RoomProblem(room) is { } roomProblem)
        {
            return roomProblem;
        }

        if (!ChatLimits.IsValidUser(user))
        {
            return BadUser();
        }

        return await CallAsync(async () =>
        {
            var result = await grains.GetGrain<IRoomGrain>(room).Kick(new KickRequest(user, banSeconds));
            return result.Error != RoomError.None ? FromRoom(result.Error) : Results.Json(new ConnectionsBody(result.Connections));
        });
    }

    private static async Task<IResult> DisconnectAsync(string user, IGrainFactory grains)
    {
        if (!ChatLimits.IsValidUser(user))
        {
            return BadUser();
        }

        return await CallAsync(async () => Results.Json(new ConnectionsBody(await grains.GetGrain<IGatewayRegistryGrain>(0).DisconnectUser(user))));
    }

    /// <summary>A grain call: the cluster unreachable (or the call failing) is 503 <c>unavailable</c>.</summary>
    private static async Task<IResult> CallAsync(Func<Task<IResult>> call)
    {
        try
        {
            return await call();
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return FromRoom(RoomError.Unavailable);
        }
    }

    private static IResult? RoomProblem(string room)
        => ChatLimits.IsValidRoom(room) ? null : Error(ErrorCodes.BadRoom, "a room name is 1 to 64 characters of A-Z a-z 0-9 _ - .");

    private static IResult BadUser() => Error(ErrorCodes.BadRequest, "a user name is 1 to 32 characters of A-Z a-z 0-9 _ - .");

    private static IResult FromRoom(RoomError error)
    {
        var problem = Rooms.RequestError.From(error);
        var status = error switch
        {
            RoomError.Unavailable => StatusCodes.Status503ServiceUnavailable,
            RoomError.NotFound => StatusCodes.Status404NotFound,
            RoomError.Forbidden or RoomError.Banned => StatusCodes.Status403Forbidden,
            _ => StatusCodes.Status400BadRequest,
        };
        return Error(problem.Code, problem.Message, status);
    }

    private static IResult Error(string code, string message, int status = StatusCodes.Status400BadRequest)
        => Results.Json(new ApiError(code, message), statusCode: status);

    /// <summary>An event serialized by <see cref="Events"/>: the same bytes a connection would get.</summary>
    private static IResult Json(byte[] utf8, int status) => new EventResult(utf8, status);

    private sealed class EventResult(byte[] utf8, int status) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext)
        {
            httpContext.Response.StatusCode = status;
            httpContext.Response.ContentType = "application/json; charset=utf-8";
            return httpContext.Response.Body.WriteAsync(utf8).AsTask();
        }
    }

    private static async Task<JsonElement?> ReadBodyAsync(HttpRequest request)
    {
        try
        {
            using var document = await JsonDocument.ParseAsync(request.Body);
            return document.RootElement.ValueKind == JsonValueKind.Object ? document.RootElement.Clone() : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static bool TryString(JsonElement body, string name, out string value)
    {
        value = "";
        if (!body.TryGetProperty(name, out var element) || element.ValueKind != JsonValueKind.String)
        {
            return false;
        }

        value = element.GetString()!;
        return true;
    }
}
