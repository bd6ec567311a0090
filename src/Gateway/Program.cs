using OrleansChat.Gateway;
using OrleansChat.Gateway.Http;

var builder = WebApplication.CreateBuilder(args);
builder.AddChatGateway();

var app = builder.Build();
app.UseChatGateway();
app.MapChatEndpoints();
app.Run();

/// <summary>Entry point; public so tests can host the gateway with WebApplicationFactory.</summary>
public partial class Program;
