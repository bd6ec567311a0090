using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace OrleansChat.Grains.Interfaces;

/// <summary>Protocol limits and name rules shared by the gateway and the grain (both validate).</summary>
public static class ChatLimits
{
    public const int MaxRoomNameLength = 64;
    public const int MaxUserNameLength = 32;
    public const int MaxClientIdLength = 64;
    public const int DefaultMaxTextBytes = 4096;
    public const int DefaultHistory = 50;
    public const int MaxHistory = 200;

    public static bool IsValidRoom([NotNullWhen(true)] string? room) => IsValidName(room, MaxRoomNameLength);

    public static bool IsValidUser([NotNullWhen(true)] string? user) => IsValidName(user, MaxUserNameLength);

    public static bool IsValidClientId(string? id) => id is { Length: > 0 and <= MaxClientIdLength };

    public static int Utf8Length(string text) => Encoding.UTF8.GetByteCount(text);

    private static bool IsValidName(string? name, int maxLength)
    {
        if (string.IsNullOrEmpty(name) || name.Length > maxLength)
        {
            return false;
        }

        foreach (var c in name)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.'))
            {
                return false;
            }
        }

        return true;
    }
}
