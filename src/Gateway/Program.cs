using Microsoft.Extensions.Options;
using OrleansChat.Gateway;
using OrleansChat.Gateway.Http;

try
{
    var builder = WebApplication.CreateBuilder(args);
    builder.AddChatGateway();

    var app = builder.Build();
    if (!await app.PassesStartupChecksAsync())
    {
        return 1;
    }

    app.UseChatGateway();
    app.MapChatEndpoints();
    await app.RunAsync();
    return 0;
}
catch (Exception ex) when (ex is OptionsValidationException or GatewayConfigurationException)
{
    // A bad setting: one line naming the key, not a stack trace.
    await Console.Error.WriteLineAsync($"OrleansChat.Gateway: invalid configuration: {ex.Message}");
    return 1;
}

/// <summary>Entry point; public so tests can host the gateway with WebApplicationFactory.</summary>
public partial class Program;
