using System.Net.WebSockets;
using OrleansChat.Gateway.Tests;

namespace OrleansChat.Tests;

public sealed partial class ChatClient
{
    public static Task<ChatClient> ConnectAsync(GatewayFactory gateway, string user, Action<ClientWebSocketOptions>? configure = null)
        => ConnectAsync(gateway.WsAddress, user, configure);
}
