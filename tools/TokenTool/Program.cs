using System.Text;
using Microsoft.Extensions.Configuration;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

// Mints a development token for the gateway's jwt mode, signed with the gateway's own settings:
//   dotnet run --project tools/TokenTool -- --user alice --rooms 'team-a.*,lobby' [--minutes 60] [--url http://localhost:8080]
// Key, issuer and audience come from the same keys as the gateway (Gateway:Auth:SigningKey, :Issuer, :Audience), as
// environment variables (Gateway__Auth__SigningKey=...) or switches (--key, --issuer, --audience). It prints the token,
// and a link to the web client that hands the token over in the URL fragment.
var configuration = new ConfigurationBuilder()
    .AddEnvironmentVariables()
    .AddCommandLine(args, new Dictionary<string, string>
    {
        ["--user"] = "Token:User",
        ["--rooms"] = "Token:Rooms",
        ["--minutes"] = "Token:Minutes",
        ["--url"] = "Token:Url",
        ["--key"] = "Gateway:Auth:SigningKey",
        ["--issuer"] = "Gateway:Auth:Issuer",
        ["--audience"] = "Gateway:Auth:Audience",
    })
    .Build();

var user = configuration["Token:User"];
var key = configuration["Gateway:Auth:SigningKey"];
if (string.IsNullOrEmpty(user) || user.Length > 32 || !user.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.'))
{
    return Fail("--user is required: 1 to 32 characters of A-Z a-z 0-9 _ - .");
}

if (key is not { Length: >= 32 })
{
    return Fail("Gateway:Auth:SigningKey (or --key) must be set to the gateway's key, at least 32 characters");
}

if (!int.TryParse(configuration["Token:Minutes"] ?? "60", out var minutes) || minutes is < 1 or > 60 * 24 * 30)
{
    return Fail("--minutes must be between 1 and 43200");
}

var claims = new Dictionary<string, object> { ["sub"] = user };
if (configuration["Token:Rooms"] is { } rooms)
{
    // "--rooms ''" gives an empty list: a token that may join no room.
    claims["rooms"] = rooms.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}

var now = DateTime.UtcNow;
var token = new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
{
    Claims = claims,
    Issuer = configuration["Gateway:Auth:Issuer"],
    Audience = configuration["Gateway:Auth:Audience"],
    IssuedAt = now,
    NotBefore = now,
    Expires = now.AddMinutes(minutes),
    SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(Encoding.UTF8.GetBytes(key)), SecurityAlgorithms.HmacSha256),
});

Console.WriteLine(token);
var url = (configuration["Token:Url"] ?? "http://localhost:8080").TrimEnd('/');
Console.Error.WriteLine($"web client: {url}/#token={token}");
return 0;

static int Fail(string message)
{
    Console.Error.WriteLine($"OrleansChat.TokenTool: {message}");
    return 2;
}
