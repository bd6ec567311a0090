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
    Edit,
    Delete,
    Typing,
    Read,
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
    public const string Forbidden = "forbidden";
    public const string NotFound = "not_found";
}

/// <summary>One client frame, parsed and checked for shape. <see cref="ErrorCode"/> is the first failure
/// of the checks that need no state (well-formed, then room name); the connection checks the rest.</summary>
public sealed record ClientRequest(RequestType Type, string? Room, string? Id)
{
    /// <summary>The text of a <c>send</c> or an <c>edit</c>.</summary>
    public string? Text { get; init; }

    /// <summary>The target of an <c>edit</c> or a <c>delete</c>; the read seq of a <c>read</c>.</summary>
    public long Seq { get; init; }

    /// <summary>Requests that are stored in the room's log (and take a rate-limit token).</summary>
    public bool IsPost => Type is RequestType.Send or RequestType.Edit or RequestType.Delete;

    /// <summary>The kind of event a post stores.</summary>
    public ChatEventKind Kind => Type switch
    {
        RequestType.Edit => ChatEventKind.Edit,
        RequestType.Delete => ChatEventKind.Delete,
        _ => ChatEventKind.Message,
    };

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
                "edit" => RequestType.Edit,
                "delete" => RequestType.Delete,
                "typing" => RequestType.Typing,
                "read" => RequestType.Read,
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
        // The id is read first so that every error answering a post can echo it.
        string? id = null;
        string? idProblem = null;
        var isPost = type is RequestType.Send or RequestType.Edit or RequestType.Delete;
        if (isPost)
        {
            idProblem = ReadString(root, "id", out id);
            if (idProblem is null && !ChatLimits.IsValidClientId(id))
            {
                idProblem = "\"id\" must be 1 to 64 characters";
            }
        }

        var roomProblem = ReadString(root, "room", out var room);
        var echoedId = isPost ? id : null;
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
            case RequestType.Edit:
                long target = 0;
                var seqProblem = type == RequestType.Edit ? ReadRequiredSeq(root, out target) : null;
                var textProblem = ReadString(root, "text", out var text);
                problem = idProblem ?? seqProblem ?? textProblem;
                if (problem is null && string.IsNullOrEmpty(text))
                {
                    problem = "\"text\" must not be empty";
                }

                request = request with { Text = text, Seq = target };
                break;
            case RequestType.Delete:
                var deletedProblem = ReadRequiredSeq(root, out var deleted);
                problem = idProblem ?? deletedProblem;
                request = request with { Text = "", Seq = deleted };
                break;
            case RequestType.Read:
                problem = ReadRequiredSeq(root, out var read);
                request = request with { Seq = read };
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

    /// <summary>Reads the required <c>seq</c> of an edit, a delete or a read.</summary>
    private static string? ReadRequiredSeq(JsonElement root, out long value)
    {
        var problem = ReadSeq(root, "seq", out var seq);
        value = seq ?? 0;
        return problem ?? (seq is null ? "missing \"seq\"" : null);
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
