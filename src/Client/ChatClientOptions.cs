namespace OrleansChat.Client;

/// <summary>Settings of an <see cref="OrleansChatClient"/>. Set <see cref="User"/> (auth mode "open") or
/// <see cref="TokenProvider"/> (auth mode "jwt").</summary>
public sealed class ChatClientOptions
{
    /// <summary>The gateways' <c>/ws</c> addresses (for example <c>ws://localhost:8080/ws</c>). The client connects to
    /// the first and, after a lost connection, tries the next one, round robin. One address (a load balancer) is fine.</summary>
    public required IReadOnlyList<Uri> Gateways { get; init; }

    /// <summary>The user name in auth mode "open" (<c>?user=</c>). Ignored when <see cref="TokenProvider"/> is set.</summary>
    public string? User { get; init; }

    /// <summary>Auth mode "jwt": called before every connection attempt for a fresh token (<c>?access_token=</c>).</summary>
    public Func<CancellationToken, ValueTask<string>>? TokenProvider { get; init; }

    /// <summary>First delay before reconnecting after a lost connection. Default 200 ms; it doubles per failed attempt.</summary>
    public TimeSpan ReconnectDelay { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>The cap of the reconnect delay. Default 5 s. Each delay is jittered to between half and all of it.</summary>
    public TimeSpan MaxReconnectDelay { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How long a request (join, leave, history, and one send with all its resends) may take before it
    /// fails with a <see cref="TimeoutException"/>. Default 30 s.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Delay before resending a send answered with <c>unavailable</c>. Default 500 ms.</summary>
    public TimeSpan UnavailableRetryDelay { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>How long to wait for the upgrade and the <c>welcome</c>. Default 10 s.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Ping interval of the client's own keep-alive; a gateway that does not answer within it counts as
    /// lost. Default 15 s (the gateway's heartbeat).</summary>
    public TimeSpan KeepAliveInterval { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>Keep every event for <see cref="OrleansChatClient.Events"/> from the first connection on. Default true;
    /// set false when only the callbacks are used, so that nothing is buffered.</summary>
    public bool EnableEventStream { get; init; } = true;

    internal void Validate()
    {
        if (Gateways.Count == 0)
        {
            throw new ArgumentException("at least one gateway address is needed", nameof(Gateways));
        }

        if (TokenProvider is null && string.IsNullOrEmpty(User))
        {
            throw new ArgumentException("set User (open mode) or TokenProvider (jwt mode)", nameof(User));
        }
    }
}
