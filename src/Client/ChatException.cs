namespace OrleansChat.Client;

/// <summary>A request refused by the gateway: <see cref="Code"/> is the protocol's error code (<c>bad_request</c>,
/// <c>bad_room</c>, <c>not_joined</c>, <c>too_large</c>, <c>rate_limited</c>, <c>forbidden</c>, <c>not_found</c>, ...).</summary>
public sealed class ChatException(string code, string message, string? room = null, string? id = null)
    : Exception($"{code}: {message}")
{
    /// <summary>The protocol error code.</summary>
    public string Code { get; } = code;

    /// <summary>The room of the refused request, when the gateway names it.</summary>
    public string? Room { get; } = room;

    /// <summary>The client id of the refused send, edit or delete.</summary>
    public string? Id { get; } = id;
}
