namespace OrleansChat.Gateway.Http;

/// <summary>
/// Which rooms a connection may join: the token's <c>rooms</c> claim (jwt mode), a list of patterns, each an exact
/// room name or a prefix ending in <c>*</c> (<c>*</c> alone: every room). No claim: every room; an empty list: none.
/// </summary>
public sealed class RoomAccess
{
    private readonly string[] _exact;
    private readonly string[] _prefixes;

    private RoomAccess(IEnumerable<string> patterns)
    {
        var list = patterns.ToArray();
        _exact = [.. list.Where(pattern => !pattern.EndsWith('*'))];
        _prefixes = [.. list.Where(pattern => pattern.EndsWith('*')).Select(pattern => pattern[..^1])];
    }

    /// <summary>No restriction (open mode, or a token without the claim).</summary>
    public static RoomAccess All { get; } = new(["*"]);

    public static RoomAccess Of(IEnumerable<string> patterns) => new(patterns);

    public bool Allows(string room)
        => Array.IndexOf(_exact, room) >= 0 || _prefixes.Any(prefix => room.StartsWith(prefix, StringComparison.Ordinal));
}
