using Microsoft.AspNetCore.SignalR;

namespace OrleansChat.Bench.SignalRChat;

/// <summary>
/// The textbook SignalR chat: one group per room, <c>Clients.Group(room).SendAsync</c> for every message.
/// The user is the connection's <c>?user=</c> query parameter.
/// </summary>
public sealed class ChatHub : Hub
{
    private const string UserKey = "user";

    public override Task OnConnectedAsync()
    {
        var user = Context.GetHttpContext()?.Request.Query[UserKey].ToString();
        Context.Items[UserKey] = string.IsNullOrEmpty(user) ? "anonymous" : user;
        return base.OnConnectedAsync();
    }

    public Task Join(string room) => Groups.AddToGroupAsync(Context.ConnectionId, room);

    public Task Send(string room, string id, string text) =>
        Clients.Group(room).SendAsync("message", room, (string)Context.Items[UserKey]!, id, text);
}
