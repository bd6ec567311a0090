using Orleans.Runtime;
using OrleansChat.Grains;
using OrleansChat.Hosting;
using OrleansChat.Silo;

var builder = WebApplication.CreateBuilder(args);
if ((SiloHttp.Configure(builder) ?? builder.AddChatDashboard()) is { } badSetting)
{
    await Console.Error.WriteLineAsync($"OrleansChat.Silo: invalid configuration: {badSetting}");
    return 1;
}

builder.AddChatSilo();
builder.AddChatTelemetry("orleanschat-silo");
builder.AddChatHealthChecks(usesStore: true).AddCheck<SiloReadiness>("silo", tags: [ChatHealth.ReadyTag]);

var app = builder.Build();
if (await ChatStartupChecks.FindProblemAsync(app.Services, builder.Configuration) is { } problem)
{
    // One line that names the setting and the address, not an Orleans start-up stack trace.
    await Console.Error.WriteLineAsync($"OrleansChat.Silo: {problem}");
    await app.DisposeAsync();
    return 1;
}

app.MapChatHealth();
app.MapChatMetrics();
app.MapChatDashboard();
app.Lifetime.ApplicationStarted.Register(() =>
{
    var silo = app.Services.GetRequiredService<ILocalSiloDetails>();
    app.Logger.LogInformation(
        "Silo {Silo} listening: silo endpoint {SiloAddress}, gateway endpoint {Gateway}, HTTP {Http}, pid {Pid}",
        silo.Name, silo.SiloAddress.Endpoint, silo.GatewayAddress?.Endpoint, string.Join(", ", app.Urls), Environment.ProcessId);
});
await app.RunAsync();
return 0;
