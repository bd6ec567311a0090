using System.Net.Sockets;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace OrleansChat.Grains;

/// <summary>
/// Checks a silo's external dependencies before the host starts, so a wrong address or a server that is
/// down gives one line naming the setting and the address instead of a stack trace from deep inside the
/// Orleans lifecycle. The PostgreSQL check also migrates the schema (the silo does it again, cheaply, when
/// it starts: that keeps hosts without this pre-flight, such as test clusters, correct).
/// </summary>
public static class ChatStartupChecks
{
    public const string MessagesKey = "ConnectionStrings:Messages";
    public const string ClusteringProviderKey = "Orleans:Clustering:ProviderType";
    public const string ClusteringConnectionKey = "Orleans:Clustering:ConnectionString";

    private static readonly TimeSpan RedisConnectTimeout = TimeSpan.FromSeconds(5);

    /// <summary>Null when every configured dependency answers; otherwise one line saying what is wrong.</summary>
    public static async Task<string?> FindProblemAsync(IServiceProvider services, IConfiguration configuration, CancellationToken cancellationToken = default)
        => await CheckRedisAsync(configuration, cancellationToken) ?? await CheckPostgresAsync(services, configuration, cancellationToken);

    private static async Task<string?> CheckPostgresAsync(IServiceProvider services, IConfiguration configuration, CancellationToken cancellationToken)
    {
        var connectionString = configuration.GetConnectionString("Messages");
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            return null;
        }

        string address;
        NpgsqlDataSource dataSource;
        try
        {
            var parsed = new NpgsqlConnectionStringBuilder(connectionString);
            address = $"{parsed.Host ?? "localhost"}:{parsed.Port}";
            // A host without the store (a gateway in client mode) has nothing to check here.
            if (services.GetService<NpgsqlDataSource>() is not { } registered)
            {
                return null;
            }

            dataSource = registered;
        }
        catch (ArgumentException ex)
        {
            return $"{MessagesKey} is not a valid PostgreSQL connection string: {ex.Message}";
        }

        try
        {
            var logger = services.GetService<ILoggerFactory>()?.CreateLogger(typeof(PostgresSchema)) ?? NullLogger.Instance;
            await PostgresSchema.MigrateAsync(dataSource, logger, cancellationToken);
            return null;
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException or SocketException)
        {
            return $"Cannot use PostgreSQL at {address} ({MessagesKey}): {Reason(ex)}";
        }
    }

    private static async Task<string?> CheckRedisAsync(IConfiguration configuration, CancellationToken cancellationToken)
    {
        if (!string.Equals(configuration[ClusteringProviderKey], "Redis", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        var connectionString = configuration[ClusteringConnectionKey];
        // StackExchange.Redis syntax: "host:port,host2:port,option=value,...": the endpoints are the parts without '='.
        var endpoints = (connectionString ?? "")
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(part => !part.Contains('='))
            .ToArray();
        if (endpoints.Length == 0)
        {
            return $"{ClusteringConnectionKey} names no Redis endpoint (required with {ClusteringProviderKey}=Redis).";
        }

        string? reason = null;
        foreach (var endpoint in endpoints)
        {
            var colon = endpoint.LastIndexOf(':');
            var host = colon > 0 ? endpoint[..colon].Trim('[', ']') : endpoint;
            var port = colon > 0 && int.TryParse(endpoint[(colon + 1)..], out var p) ? p : 6379;
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(RedisConnectTimeout);
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(host, port, timeout.Token);
                return null;
            }
            catch (SocketException ex)
            {
                reason = ex.Message;
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                reason = $"no answer within {RedisConnectTimeout.TotalSeconds:0} s";
            }
        }

        return $"Cannot reach Redis at {string.Join(", ", endpoints)} ({ClusteringConnectionKey}): {reason}";
    }

    private static string Reason(Exception ex)
    {
        var reason = ex.Message;
        for (var inner = ex.InnerException; inner is not null; inner = inner.InnerException)
        {
            reason += $": {inner.Message}";
        }

        return reason;
    }
}
