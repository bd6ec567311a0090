using System.Text.Json;
using OrleansChat.Grains.Interfaces;

namespace OrleansChat.Gateway.Protocol;

public enum RequestType
{
    Invalid,
    Join,
    Leave,
    Send,
    History,
}

/// <summary>Protocol error codes, exactly as they go on the wire.</summary>
public static class ErrorCodes
{
    public const string BadRequest = "bad_request";
    public const string BadRoom = "bad_room";
    public const string NotJoined = "not_joined";
    public const string TooLarge = "too_large";
    public const string RateLimited = "rate_limited";
    public const string Unavailable = "unavailable";
}

/// <summary>One client frame, parsed and checked for shape. <see cref="ErrorCode"/> is the first failure
/// of the checks that need no state (well-formed, then room name); the connection checks the rest.</summary>
public sealed record ClientRequest(RequestType Type, string? Room, string? Id)
{
    public string? Text { get; init; }

    public long? Since { get; init; }

    public long? Before { get; init; }

    public long? After { get; init; }

    public int Limit { get; init; } = ChatLimits.DefaultHistory;

    /// <summary>The rate limiter refused this <c>send</c> when it arrived.</summary>
    public bool RateLimited { get; init; }

    public string? ErrorCode { get; init; }

    public string? ErrorMessage { get; init; }

    public static ClientRequest Parse(ReadOnlyMemory<byte> utf8)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(utf8, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException)
        {
            return Invalid(null, null, "the frame is not valid JSON");
        }

        try
        {
            return Read(document);
        }
        catch (InvalidOperationException)
        {
            // A string escape such as "\ud800" without its pair: valid JSON, but no text.
            return Invalid(null, null, "a string holds an unpaired surrogate escape");
        }
    }

    private static ClientRequest Read(JsonDocument document)
    {
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return Invalid(null, null, "a frame must hold one JSON object");
            }

            if (!root.TryGetProperty("type", out var typeElement) || typeElement.ValueKind != JsonValueKind.String)
            {
                return Invalid(null, null, "missing \"type\"");
            }

            var type = typeElement.GetString() switch
            {
                "join" => RequestType.Join,
                "leave" => RequestType.Leave,
                "send" => RequestType.Send,
                "history" => RequestType.History,
                _ => RequestType.Invalid,
            };
            if (type == RequestType.Invalid)
            {
                return Invalid(null, null, $"unknown type \"{typeElement.GetString()}\"");
            }

            return ParseFields(type, root);
        }
    }

    private static ClientRequest ParseFields(RequestType type, JsonElement root)
    {
        // The id is read first so that every error answering a send can echo it.
        string? id = null;
        string? idProblem = null;
        if (type == RequestType.Send)
        {
            idProblem = ReadString(root, "id", out id);
            if (idProblem is null && !ChatLimits.IsValidClientId(id))
            {
                idProblem = "\"id\" must be 1 to 64 characters";
            }
        }

        var roomProblem = ReadString(root, "room", out var room);
        var echoedId = type == RequestType.Send ? id : null;
        if (roomProblem is not null)
        {
            return Invalid(type, room, roomProblem) with { Id = echoedId };
        }

        var request = new ClientRequest(type, room, echoedId);
        string? problem = null;
        switch (type)
        {
            case RequestType.Join:
                problem = ReadSeq(root, "since", out var since);
                request = request with { Since = since };
                break;
            case RequestType.Send:
                var textProblem = ReadString(root, "text", out var text);
                problem = idProblem ?? textProblem;
                if (problem is null && string.IsNullOrEmpty(text))
                {
                    problem = "\"text\" must not be empty";
                }

                request = request with { Text = text };
                break;
            case RequestType.History:
                long? limit = null;
                var beforeProblem = ReadSeq(root, "before", out var before);
                var afterProblem = ReadSeq(root, "after", out var after);
                problem = beforeProblem ?? afterProblem ?? ReadSeq(root, "limit", out limit);
                if (problem is null && before is not null && after is not null)
                {
                    problem = "\"before\" and \"after\" cannot both be given";
                }

                if (problem is null && limit is not null and (< 1 or > ChatLimits.MaxHistory))
                {
                    problem = $"\"limit\" must be between 1 and {ChatLimits.MaxHistory}";
                }

                request = request with { Before = before, After = after, Limit = (int)(limit ?? ChatLimits.DefaultHistory) };
                break;
        }

        if (problem is not null)
        {
            return request with { ErrorCode = ErrorCodes.BadRequest, ErrorMessage = problem };
        }

        if (!ChatLimits.IsValidRoom(room))
        {
            return request with { ErrorCode = ErrorCodes.BadRoom, ErrorMessage = "a room name is 1 to 64 characters of A-Z a-z 0-9 _ - ." };
        }

        return request;
    }

    private static ClientRequest Invalid(RequestType? type, string? room, string message)
        => new(type ?? RequestType.Invalid, room, null) { ErrorCode = ErrorCodes.BadRequest, ErrorMessage = message };

    /// <summary>Reads a required string; returns a problem description, or null.</summary>
    private static string? ReadString(JsonElement root, string name, out string? value)
    {
        value = null;
        if (!root.TryGetProperty(name, out var element) || element.ValueKind == JsonValueKind.Null)
        {
            return $"missing \"{name}\"";
        }

        if (element.ValueKind != JsonValueKind.String)
        {
            return $"\"{name}\" must be a string";
        }

        value = element.GetString();
        return null;
    }

    /// <summary>Reads an optional non-negative integer (null counts as absent).</summary>
    private static string? ReadSeq(JsonElement root, string name, out long? value)
    {
        value = null;
        if (!root.TryGetProperty(name, out var element) || element.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (element.ValueKind != JsonValueKind.Number || !element.TryGetInt64(out var number) || number < 0)
        {
            return $"\"{name}\" must be a non-negative integer";
        }

        value = number;
        return null;
    }
}
