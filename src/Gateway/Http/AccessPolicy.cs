using System.Text;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using OrleansChat.Grains.Interfaces;

namespace OrleansChat.Gateway.Http;

/// <summary>Who may talk to this gateway: the origin allow-list (for browsers) and the user's identity
/// (<c>open</c>: <c>?user=</c>; <c>jwt</c>: the token's <c>sub</c>). Checked before the upgrade.</summary>
public sealed class AccessPolicy
{
    private readonly GatewayOptions _options;
    private readonly bool _development;
    private readonly Uri[] _allowedOrigins;
    private readonly JsonWebTokenHandler _tokens = new();
    private readonly TokenValidationParameters? _validation;

    public AccessPolicy(IOptions<GatewayOptions> options, IHostEnvironment environment)
    {
        _options = options.Value;
        _development = environment.IsDevelopment();
        _allowedOrigins = [.. _options.AllowedOrigins.Select(origin => new Uri(origin))];
        if (_options.Auth.IsJwt)
        {
            _validation = new TokenValidationParameters
            {
                IssuerSigningKey = new SymmetricSecurityKey(Encoding.UTF8.GetBytes(_options.Auth.SigningKey!)),
                ValidAlgorithms = [SecurityAlgorithms.HmacSha256],
                RequireSignedTokens = true,
                ValidateIssuerSigningKey = true,
                ValidateLifetime = true,
                ClockSkew = TimeSpan.FromSeconds(30),
                ValidateIssuer = _options.Auth.Issuer is not null,
                ValidIssuer = _options.Auth.Issuer,
                ValidateAudience = _options.Auth.Audience is not null,
                ValidAudience = _options.Auth.Audience,
            };
        }
    }

    /// <summary>A request without <c>Origin</c> is not a browser and is allowed.</summary>
    public bool IsOriginAllowed(HttpRequest request)
    {
        var header = request.Headers.Origin.ToString();
        if (string.IsNullOrEmpty(header))
        {
            return true;
        }

        if (!Uri.TryCreate(header, UriKind.Absolute, out var origin))
        {
            return false;
        }

        // Scheme and host as the browser used them (UseForwardedHeaders applies a trusted proxy's view).
        if (Uri.TryCreate($"{request.Scheme}://{request.Host}", UriKind.Absolute, out var own) && SameOrigin(origin, own))
        {
            return true;
        }

        if (_development && (origin.IsLoopback || origin.Host == "localhost"))
        {
            return true;
        }

        return _allowedOrigins.Any(allowed => SameOrigin(origin, allowed));
    }

    /// <summary>The user of a request, or the HTTP status and reason to refuse it with.</summary>
    public async Task<(string? User, int Status, string Reason)> AuthenticateAsync(HttpRequest request)
    {
        if (_validation is null)
        {
            var user = request.Query["user"].ToString();
            return ChatLimits.IsValidUser(user)
                ? (user, 200, "")
                : (null, StatusCodes.Status400BadRequest, "invalid user name: 1 to 32 characters of A-Z a-z 0-9 _ - . are required (?user=)");
        }

        var token = request.Query["access_token"].ToString();
        var authorization = request.Headers.Authorization.ToString();
        if (string.IsNullOrEmpty(token) && authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            token = authorization["Bearer ".Length..].Trim();
        }

        if (string.IsNullOrEmpty(token))
        {
            return (null, StatusCodes.Status401Unauthorized, "a token is required (access_token or Authorization: Bearer)");
        }

        var result = await _tokens.ValidateTokenAsync(token, _validation);
        if (!result.IsValid)
        {
            return (null, StatusCodes.Status401Unauthorized, "invalid, expired or wrongly signed token");
        }

        var subject = (result.SecurityToken as JsonWebToken)?.Subject;
        return ChatLimits.IsValidUser(subject)
            ? (subject, 200, "")
            : (null, StatusCodes.Status401Unauthorized, "the token's sub is not a valid user name");
    }

    private static bool SameOrigin(Uri a, Uri b)
        => string.Equals(a.Scheme, b.Scheme, StringComparison.OrdinalIgnoreCase)
            && string.Equals(a.Host, b.Host, StringComparison.OrdinalIgnoreCase)
            && a.Port == b.Port;
}
