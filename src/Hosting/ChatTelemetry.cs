using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using OrleansChat.Grains;

namespace OrleansChat.Hosting;

/// <summary>
/// OpenTelemetry for a node: our meter, Orleans', the runtime's, ASP.NET Core's and Npgsql's, scraped by
/// Prometheus at <c>/metrics</c>. With <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> set (the standard variable, and the
/// other <c>OTEL_*</c> ones with it), metrics, traces and logs also go out over OTLP; traces are recorded only
/// then, so a node nobody traces pays nothing for them.
/// </summary>
public static class ChatTelemetry
{
    /// <summary>Meters exported besides ours. Orleans' meter carries its grain-call, messaging, membership
    /// and activation series; the rest are those of the .NET runtime, Kestrel/ASP.NET Core and Npgsql.</summary>
    private static readonly string[] Meters =
    [
        ChatDiagnostics.Name,
        "Microsoft.Orleans",
        "System.Runtime",
        "System.Net.Sockets",
        "Microsoft.AspNetCore.Server.Kestrel",
        "Microsoft.AspNetCore.Http.Connections",
        "Npgsql",
    ];

    /// <summary>Activity sources traced with OTLP: ours (join, post, store, delivery), Orleans' grain calls
    /// (propagated across processes when tracing is on) and Npgsql's commands.</summary>
    private static readonly string[] Sources =
    [
        ChatDiagnostics.Name,
        "Microsoft.Orleans.Runtime",
        "Microsoft.Orleans.Application",
        "Npgsql",
    ];

    public static IHostApplicationBuilder AddChatTelemetry(this IHostApplicationBuilder builder, string serviceName)
    {
        var telemetry = builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(serviceName, serviceInstanceId: $"{Environment.MachineName}:{Environment.ProcessId}"))
            .WithMetrics(metrics => metrics
                .AddMeter(Meters)
                .AddAspNetCoreInstrumentation()
                .AddPrometheusExporter());
        if (ChatDiagnostics.TracingEnabled(builder.Configuration))
        {
            telemetry
                .WithTracing(tracing => tracing.AddSource(Sources).AddAspNetCoreInstrumentation(aspNetCore =>
                    // Scrapes and probes every few seconds are not worth a trace each.
                    aspNetCore.Filter = context => context.Request.Path.Value is not ("/metrics" or "/healthz" or "/readyz")))
                .UseOtlpExporter();
        }

        return builder;
    }

    /// <summary><c>/metrics</c> in the Prometheus text format.</summary>
    public static WebApplication MapChatMetrics(this WebApplication app)
    {
        app.MapPrometheusScrapingEndpoint("/metrics");
        return app;
    }
}
