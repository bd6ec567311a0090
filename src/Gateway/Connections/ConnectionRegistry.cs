using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Net.WebSockets;
using Microsoft.Extensions.Options;
using OrleansChat.Grains;

namespace OrleansChat.Gateway.Connections;

/// <summary>
/// The open connections of this gateway, for graceful shutdown (docs/architecture.md, "Draining a gateway").
/// When the host starts stopping (SIGTERM), the gateway is draining: <c>/readyz</c> answers 503 and new upgrades
/// are refused with 503 (nginx tries another gateway). After a short grace, so that a load balancer sees it,
/// every socket is closed with 1001 ("going away": clients reconnect elsewhere) and stopping waits (bounded) until
/// they are gone, so their rooms hear them leave. The whole stop fits in <c>Gateway:DrainSeconds</c>.
/// </summary>
public sealed class ConnectionRegistry : IHostedLifecycleService
{
    /// <summary>Of the drain time: the grace before the sockets are closed, and the time left for what stops
    /// after the connections (the web server, unsubscribing from rooms, the cluster client).</summary>
    private const double GraceShare = 0.1;
    private const double AfterConnectionsShare = 0.3;
    private static readonly TimeSpan MaxGrace = TimeSpan.FromSeconds(1);

    private readonly ConcurrentDictionary<ChatConnection, byte> _connections = new();
    private readonly TaskCompletionSource _allClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly IOptions<GatewayOptions> _options;
    private readonly IHostApplicationLifetime _lifetime;
    private volatile bool _draining;
    private DateTime _drainStarted;

    public ConnectionRegistry(IOptions<GatewayOptions> options, IHostApplicationLifetime lifetime, IMeterFactory meters)
    {
        _options = options;
        _lifetime = lifetime;
        var meter = meters.Create(ChatDiagnostics.Name);
        meter.CreateObservableGauge("orleanschat.outbound.queued", () => _connections.Keys.Sum(connection => (long)connection.Backlog), "{event}",
            "Events waiting in outbound queues, all connections together.");
        meter.CreateObservableGauge("orleanschat.outbound.queue.max", () => _connections.Keys.Select(connection => connection.Backlog).DefaultIfEmpty().Max(), "{event}",
            "The deepest outbound queue of any connection.");
    }

    public bool Draining => _draining;

    public int Count => _connections.Count;

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

    /// <summary>The server API disconnects a user: every connection of theirs here is closed with 1008.</summary>
    public int DisconnectUser(string user)
    {
        var closed = 0;
        foreach (var connection in _connections.Keys)
        {
            if (connection.User == user && !connection.IsClosing)
            {
                connection.RequestClose(WebSocketCloseStatus.PolicyViolation, "disconnected by the server", discardQueued: false);
                closed++;
            }
        }

        return closed;
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _lifetime.ApplicationStopping.Register(StartDraining);
        return Task.CompletedTask;
    }

    /// <summary>Runs before any hosted service stops, the web server included: while it waits out the grace,
    /// <c>/readyz</c> still answers (503), and the sockets close while the server still serves them.</summary>
    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        StartDraining();
        var drain = _options.Value.DrainTime;
        var grace = TimeSpan.FromTicks(Math.Min(MaxGrace.Ticks, (long)(drain.Ticks * GraceShare)));
        var closeBy = _drainStarted + drain * (1 - AfterConnectionsShare);
        try
        {
            await Task.Delay(Remaining(_drainStarted + grace), cancellationToken);
            foreach (var connection in _connections.Keys)
            {
                connection.RequestClose(WebSocketCloseStatus.EndpointUnavailable, "gateway shutting down", discardQueued: false);
            }

            if (_connections.IsEmpty)
            {
                _allClosed.TrySetResult();
            }

            await _allClosed.Task.WaitAsync(Remaining(closeBy), cancellationToken);
        }
        catch (Exception ex) when (ex is TimeoutException or OperationCanceledException)
        {
            // Peers that do not complete the close handshake in time are aborted with the process.
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private static TimeSpan Remaining(DateTime until) => until - DateTime.UtcNow is { Ticks: > 0 } left ? left : TimeSpan.Zero;

    private void StartDraining()
    {
        lock (_allClosed)
        {
            if (_draining)
            {
                return;
            }

            _drainStarted = DateTime.UtcNow;
            _draining = true;
        }
    }
}
