using System.Collections.Concurrent;
using System.Net.WebSockets;
using Microsoft.Extensions.Options;

namespace OrleansChat.Gateway.Connections;

/// <summary>The open connections of this gateway, for graceful shutdown: when the host starts stopping,
/// new upgrades are refused (503), every socket is closed with 1001 ("reconnect elsewhere"), and stopping
/// waits (bounded) until they are gone so their rooms hear them leave.</summary>
public sealed class ConnectionRegistry(IOptions<GatewayOptions> options, IHostApplicationLifetime lifetime) : IHostedService
{
    private readonly ConcurrentDictionary<ChatConnection, byte> _connections = new();
    private readonly TaskCompletionSource _allClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile bool _draining;

    public bool Draining => _draining;

    public bool TryAdd(ChatConnection connection)
    {
        _connections.TryAdd(connection, 0);
        if (_draining)
        {
            Remove(connection);
            return false;
        }

        return true;
    }

    public void Remove(ChatConnection connection)
    {
        _connections.TryRemove(connection, out _);
        if (_draining && _connections.IsEmpty)
        {
            _allClosed.TrySetResult();
        }
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        lifetime.ApplicationStopping.Register(Drain);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        Drain();
        try
        {
            await _allClosed.Task.WaitAsync(TimeSpan.FromSeconds(options.Value.ShutdownSeconds), cancellationToken);
        }
        catch (Exception ex) when (ex is TimeoutException or OperationCanceledException)
        {
            // Peers that do not complete the close handshake in time are aborted with the process.
        }
    }

    private void Drain()
    {
        _draining = true;
        foreach (var connection in _connections.Keys)
        {
            connection.RequestClose(WebSocketCloseStatus.EndpointUnavailable, "gateway shutting down", discardQueued: false);
        }

        if (_connections.IsEmpty)
        {
            _allClosed.TrySetResult();
        }
    }
}
