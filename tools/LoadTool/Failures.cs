using System.Net.Sockets;

namespace OrleansChat.LoadTool;

internal static class Failures
{
    /// <summary>One line: why a connection failed. Running out of file descriptors is named as such; the tool
    /// raises no limit itself.</summary>
    public static string Describe(Exception exception)
    {
        var innermost = exception;
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is SocketException { SocketErrorCode: SocketError.TooManyOpenSockets }
                || e.Message.Contains("Too many open files", StringComparison.OrdinalIgnoreCase))
            {
                return $"too many open files (this process may hold {OpenFileLimit.Value}; the tool raises no limit)";
            }

            innermost = e;
        }

        var message = FirstLine(exception.Message);
        return innermost == exception || message.Contains(FirstLine(innermost.Message), StringComparison.Ordinal)
            ? message
            : $"{message}: {FirstLine(innermost.Message)}";
    }

    private static string FirstLine(string text)
    {
        var end = text.IndexOfAny(['\r', '\n']);
        return end < 0 ? text : text[..end];
    }

    /// <summary>Read once, before the run opens anything: once descriptors have run out, /proc cannot be opened either.</summary>
    public static void Prepare() => _ = OpenFileLimit.Value;

    private static readonly Lazy<string> OpenFileLimit = new(() =>
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/limits"))
            {
                if (line.StartsWith("Max open files", StringComparison.Ordinal))
                {
                    var parts = line["Max open files".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
                    if (parts.Length > 0)
                    {
                        return $"{parts[0]} open files";
                    }
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
        }

        return "a limited number of open files";
    });
}
