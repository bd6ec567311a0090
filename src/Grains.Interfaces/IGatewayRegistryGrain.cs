namespace OrleansChat.Grains.Interfaces;

/// <summary>
/// Every gateway of the cluster, for what concerns a user rather than a room (the server API's "disconnect a user
/// everywhere"): gateways register an observer and renew it; a registration that is not renewed expires. One
/// activation (key 0): it sees only registrations and rare administrative calls, never a message.
/// </summary>
[Alias("OrleansChat.IGatewayRegistryGrain")]
public interface IGatewayRegistryGrain : IGrainWithIntegerKey
{
    [Alias("Register")]
    Task Register(string gatewayId, IGatewayObserver observer, TimeSpan lifetime);

    [Alias("Unregister")]
    Task Unregister(string gatewayId);

    /// <summary>Closes every connection of <paramref name="user"/> on every registered gateway; how many were closed.</summary>
    [Alias("DisconnectUser")]
    Task<int> DisconnectUser(string user);
}

/// <summary>One per gateway process.</summary>
[Alias("OrleansChat.IGatewayObserver")]
public interface IGatewayObserver : IGrainObserver
{
    /// <summary>Closes this gateway's connections of <paramref name="user"/> (1008); how many there were.</summary>
    [Alias("DisconnectUser")]
    Task<int> DisconnectUser(string user);
}
