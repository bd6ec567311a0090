using OrleansChat.Bench.SignalRChat;

var builder = WebApplication.CreateBuilder(args);
builder.AddSignalRChat();

var app = builder.Build();
app.MapSignalRChat();
app.Run();
