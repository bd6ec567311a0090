using System.Net;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace OrleansChat.Gateway.Tests;

/// <summary>A real gateway (Kestrel on 127.0.0.1, random port) with the given configuration.</summary>
public sealed class GatewayFactory : WebApplicationFactory<Program>
{
    private readonly IReadOnlyDictionary<string, string?> _settings;

    public GatewayFactory(IReadOnlyDictionary<string, string?> settings)
    {
        _settings = settings;
        UseKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0));
    }

    /// <summary>http://127.0.0.1:port</summary>
    public Uri HttpAddress { get; private set; } = null!;

    public Uri WsAddress => new($"ws://{HttpAddress.Authority}/ws");

    public GatewayFactory Start()
    {
        StartServer();
        var address = Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        HttpAddress = new Uri(address);
        return this;
    }

    public HttpClient Http() => new() { BaseAddress = HttpAddress, Timeout = TimeSpan.FromSeconds(30) };

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Production");
        builder.UseSetting("urls", "http://127.0.0.1:0");
        // Tests open thousands of connections: a line per connection opened and closed would bury the output.
        builder.UseSetting("Logging:LogLevel:OrleansChat.Gateway.Connections", "Warning");
        foreach (var (key, value) in _settings)
        {
            builder.UseSetting(key, value);
        }
    }
}
