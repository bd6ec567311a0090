using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using OrleansChat.Grains.Interfaces;

namespace OrleansChat.Gateway.Http;

/// <summary>A connecting user and the rooms they may join.</summary>
public sealed record Identity(string User, RoomAccess Rooms);

/// <summary>Who may talk to this gateway: the origin allow-list (for browsers), the user's identity
/// (<c>open</c>: <c>?user=</c>; <c>jwt</c>: the token's <c>sub</c>, and its <c>rooms</c> claim), checked before the
/// upgrade; and the server API's key.</summary>
public sealed class AccessPolicy
{
    private readonly GatewayOptions _options;
    private readonly bool _development;
    private readonly Uri[] _allowedOrigins;
    private readonly JsonWebTokenHandler _tokens = new();
    private readonly TokenValidationParameters? _validation;
    private readonly byte[]? _apiKeyHash;

    public AccessPolicy(IOptions<GatewayOptions> options, IHostEnvironment environment)
    {
        _options = options.Value;
        _development = environment.IsDevelopment();
        _allowedOrigins = [.. _options.AllowedOrigins.Select(origin => new Uri(origin))];
        if (_options.Api.Enabled)
        {
            _apiKeyHash = SHA256.HashData(Encoding.UTF8.GetBytes(_options.Api.Key!));
        }

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

    /// <summary>The server API is on (<c>Gateway:Api:Key</c> is set).</summary>
    public bool ApiEnabled => _apiKeyHash is not null;

    /// <summary>The request carries the server API's key as its bearer token. Compared in constant time (of the
    /// keys' hashes, so not even the key's length shows in the time taken).</summary>
    public bool HasApiKey(HttpRequest request)
        => _apiKeyHash is not null && BearerToken(request) is { Length: > 0 } given
            && CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(given)), _apiKeyHash);

    /// <summary>The user of a request, or the HTTP status and reason to refuse it with.</summary>
    public async Task<(Identity? Identity, int Status, string Reason)> AuthenticateAsync(HttpRequest request)
    {
        if (_validation is null)
        {
            var user = request.Query["user"].ToString();
            return ChatLimits.IsValidUser(user)
                ? (new Identity(user, RoomAccess.All), 200, "")
                : (null, StatusCodes.Status400BadRequest, "invalid user name: 1 to 32 characters of A-Z a-z 0-9 _ - . are required (?user=)");
        }

        var token = request.Query["access_token"].ToString();
        if (string.IsNullOrEmpty(token))
        {
            token = BearerToken(request) ?? "";
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

        var jwt = (JsonWebToken)result.SecurityToken;
        if (!ChatLimits.IsValidUser(jwt.Subject))
        {
            return (null, StatusCodes.Status401Unauthorized, "the token's sub is not a valid user name");
        }

        return ReadRooms(jwt) is { } rooms
            ? (new Identity(jwt.Subject, rooms), 200, "")
            : (null, StatusCodes.Status401Unauthorized, "the token's rooms claim must be an array of room names or prefixes ending in *");
    }

    /// <summary>The <c>rooms</c> claim: absent, every room; else a JSON array of strings (null when it is not one).
    /// Read from the (validated) payload itself: the token handler's claims flatten an array, and an empty array,
    /// which allows no room, would look like no claim at all.</summary>
    private static RoomAccess? ReadRooms(JsonWebToken token)
    {
        using var payload = JsonDocument.Parse(Base64UrlEncoder.DecodeBytes(token.EncodedPayload));
        if (!payload.RootElement.TryGetProperty("rooms", out var claim))
        {
            return RoomAccess.All;
        }

        if (claim.ValueKind != JsonValueKind.Array || claim.EnumerateArray().Any(item => item.ValueKind != JsonValueKind.String))
        {
            return null;
        }

        return RoomAccess.Of(claim.EnumerateArray().Select(item => item.GetString()!));
    }

    private static string? BearerToken(HttpRequest request)
    {
        var authorization = request.Headers.Authorization.ToString();
        return authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? authorization["Bearer ".Length..].Trim() : null;
    }

    private static bool SameOrigin(Uri a, Uri b)
        => string.Equals(a.Scheme, b.Scheme, StringComparison.OrdinalIgnoreCase)
            && string.Equals(a.Host, b.Host, StringComparison.OrdinalIgnoreCase)
            && a.Port == b.Port;
}
