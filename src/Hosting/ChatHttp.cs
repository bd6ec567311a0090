using Microsoft.Extensions.Configuration;

namespace OrleansChat.Hosting;

/// <summary>What gateways and silos decide alike about their HTTP endpoint.</summary>
public static class ChatHttp
{
    /// <summary>Listen addresses were given (<c>--urls</c>, <c>ASPNETCORE_URLS</c>, <c>Kestrel:Endpoints</c>): a
    /// node's own default address must not replace them.</summary>
    public static bool HasConfiguredUrls(IConfiguration configuration)
        => !string.IsNullOrEmpty(configuration["urls"]) || configuration.GetSection("Kestrel:Endpoints").Exists();
}
