using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Runtime;
using OrleansChat.Grains;

var builder = Host.CreateApplicationBuilder(args);
builder.AddChatSilo();
var host = builder.Build();
if (await ChatStartupChecks.FindProblemAsync(host.Services, builder.Configuration) is { } problem)
{
    // One line that names the setting and the address, not an Orleans start-up stack trace.
    await Console.Error.WriteLineAsync($"OrleansChat.Silo: {problem}");
    host.Dispose();
    return 1;
}

host.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStarted.Register(() =>
{
    var silo = host.Services.GetRequiredService<ILocalSiloDetails>();
    host.Services.GetRequiredService<ILoggerFactory>().CreateLogger("OrleansChat.Silo").LogInformation(
        "Silo {Silo} listening: silo endpoint {SiloAddress}, gateway endpoint {Gateway}, pid {Pid}",
        silo.Name, silo.SiloAddress.Endpoint, silo.GatewayAddress?.Endpoint, Environment.ProcessId);
});
await host.RunAsync();
return 0;
