using System.Net.Http.Headers;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;
using Orleans.Dashboard;

namespace OrleansChat.Silo;

/// <summary>
/// The Orleans Dashboard at <c>/dashboard</c> on the silo's HTTP port: off unless <c>Dashboard:Enabled</c>, and then
/// behind HTTP Basic authentication with <c>Dashboard:Username</c> (default "admin") and <c>Dashboard:Password</c>,
/// which must be set. Every silo of the cluster must enable it (its grains live on the silos).
/// </summary>
public static class ChatDashboard
{
    public const string EnabledKey = "Dashboard:Enabled";
    public const string UsernameKey = "Dashboard:Username";
    public const string PasswordKey = "Dashboard:Password";
    private const string SchemeName = "DashboardBasic";
    private const string Policy = "Dashboard";

    public static bool IsEnabled(IConfiguration configuration) => configuration.GetValue<bool>(EnabledKey);

    /// <summary>Null when the dashboard's settings are good; otherwise a line naming the key.</summary>
    public static string? AddChatDashboard(this WebApplicationBuilder builder)
    {
        var configuration = builder.Configuration;
        if (!bool.TryParse(configuration[EnabledKey] ?? "false", out var enabled))
        {
            return $"{EnabledKey} must be true or false (got '{configuration[EnabledKey]}').";
        }

        if (!enabled)
        {
            return null;
        }

        if (string.IsNullOrEmpty(configuration[PasswordKey]))
        {
            return $"{PasswordKey} must be set when {EnabledKey} is true: the dashboard is never open without a credential.";
        }

        builder.UseOrleans(silo => silo.AddDashboard());
        builder.Services.AddAuthentication().AddScheme<AuthenticationSchemeOptions, BasicHandler>(SchemeName, null);
        builder.Services.AddAuthorizationBuilder().AddPolicy(Policy, policy => policy.AddAuthenticationSchemes(SchemeName).RequireAuthenticatedUser());
        return null;
    }

    public static WebApplication MapChatDashboard(this WebApplication app)
    {
        if (IsEnabled(app.Configuration))
        {
            app.MapOrleansDashboard(routePrefix: "/dashboard").RequireAuthorization(Policy);
        }

        return app;
    }

    /// <summary>HTTP Basic against the configured credential (compared in constant time); a browser asks for it.</summary>
    private sealed class BasicHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder, IConfiguration configuration)
        : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
    {
        protected override Task<AuthenticateResult> HandleAuthenticateAsync()
        {
            if (!AuthenticationHeaderValue.TryParse(Request.Headers.Authorization, out var header)
                || !string.Equals(header.Scheme, "Basic", StringComparison.OrdinalIgnoreCase)
                || header.Parameter is null)
            {
                return Task.FromResult(AuthenticateResult.NoResult());
            }

            string credential;
            try
            {
                credential = Encoding.UTF8.GetString(Convert.FromBase64String(header.Parameter));
            }
            catch (FormatException)
            {
                return Task.FromResult(AuthenticateResult.Fail("malformed Basic credential"));
            }

            var expected = $"{configuration[UsernameKey] ?? "admin"}:{configuration[PasswordKey]}";
            if (!CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(credential), Encoding.UTF8.GetBytes(expected)))
            {
                return Task.FromResult(AuthenticateResult.Fail("wrong dashboard credential"));
            }

            var identity = new ClaimsIdentity([new Claim(ClaimTypes.Name, credential[..credential.IndexOf(':')])], SchemeName);
            return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName)));
        }

        protected override Task HandleChallengeAsync(AuthenticationProperties properties)
        {
            Response.StatusCode = StatusCodes.Status401Unauthorized;
            Response.Headers.WWWAuthenticate = "Basic realm=\"OrleansChat dashboard\", charset=\"UTF-8\"";
            return Task.CompletedTask;
        }
    }
}
