using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Npgsql;
using OrleansChat.Grains;

namespace OrleansChat.Hosting;

/// <summary>
/// <c>/healthz</c> (liveness: the process answers) and <c>/readyz</c> (readiness) on every node, built on
/// ASP.NET Core health checks. Readiness is 503 when this node cannot do its job (not connected to the
/// cluster, not an active silo, draining). Redis and PostgreSQL are checked too, but a failure there is
/// <em>degraded</em> (200, named in the body): every node shares them, so taking all nodes out of rotation
/// would turn a partial outage (no new posts, or no membership changes) into a total one.
/// </summary>
public static class ChatHealth
{
    /// <summary>Checks with this tag decide <c>/readyz</c>.</summary>
    public const string ReadyTag = "ready";

    private static readonly TimeSpan DependencyTimeout = TimeSpan.FromSeconds(2);

    /// <summary>Health checks of the node's dependencies; <paramref name="usesStore"/>: this process hosts a
    /// silo, so the message store's PostgreSQL (when configured) is its own dependency.</summary>
    public static IHealthChecksBuilder AddChatHealthChecks(this IHostApplicationBuilder builder, bool usesStore)
    {
        var checks = builder.Services.AddHealthChecks();
        var configuration = builder.Configuration;
        if (string.Equals(configuration[ChatStartupChecks.ClusteringProviderKey], "Redis", StringComparison.OrdinalIgnoreCase)
            && configuration[ChatStartupChecks.ClusteringConnectionKey] is { Length: > 0 } redis)
        {
            checks.AddRedis(redis, name: "redis", failureStatus: HealthStatus.Degraded, tags: [ReadyTag], timeout: DependencyTimeout);
        }

        if (usesStore && !string.IsNullOrWhiteSpace(configuration.GetConnectionString("Messages")))
        {
            checks.AddNpgSql(services => services.GetRequiredService<NpgsqlDataSource>(), name: "postgresql",
                failureStatus: HealthStatus.Degraded, tags: [ReadyTag], timeout: DependencyTimeout);
        }

        return checks;
    }

    public static WebApplication MapChatHealth(this WebApplication app)
    {
        app.MapHealthChecks("/healthz", new HealthCheckOptions
        {
            Predicate = _ => false,
            ResponseWriter = (context, _) => context.Response.WriteAsync("ok\n"),
        });
        app.MapHealthChecks("/readyz", new HealthCheckOptions
        {
            Predicate = check => check.Tags.Contains(ReadyTag),
            ResponseWriter = WriteReadinessAsync,
        });
        return app;
    }

    /// <summary>Plain text: "ready", "ready (degraded)" or "not ready", then one line per check.</summary>
    private static Task WriteReadinessAsync(HttpContext context, HealthReport report)
    {
        var text = new StringBuilder(report.Status switch
        {
            HealthStatus.Healthy => "ready\n",
            HealthStatus.Degraded => "ready (degraded)\n",
            _ => "not ready\n",
        });
        foreach (var (name, entry) in report.Entries.OrderBy(entry => entry.Key, StringComparer.Ordinal))
        {
            text.Append(name).Append(": ").Append(entry.Status.ToString().ToLowerInvariant());
            if (entry.Description is { Length: > 0 } description)
            {
                text.Append(" (").Append(description).Append(')');
            }
            else if (entry.Exception is { } exception)
            {
                text.Append(" (").Append(exception.Message).Append(')');
            }

            text.Append('\n');
        }

        context.Response.ContentType = "text/plain; charset=utf-8";
        return context.Response.WriteAsync(text.ToString());
    }
}
