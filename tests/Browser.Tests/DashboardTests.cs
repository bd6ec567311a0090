using System.Net;
using System.Net.Http.Headers;
using System.Text;

namespace OrleansChat.Browser.Tests;

/// <summary>The Orleans Dashboard on a real silo process (issue 10): off by default, and when on, only with the
/// configured credential; a silo told to enable it without a password does not start.</summary>
[Collection(BrowserCollection.Name)]
public sealed class DashboardTests
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task The_dashboard_is_off_by_default_and_needs_the_credential_when_on()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var (plain, plainUrl) = StartSilo([]);
        await using (plain)
        {
            await WaitReadyAsync(http, plain, plainUrl);
            Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync($"{plainUrl}/dashboard")).StatusCode);
        }

        var (guarded, url) = StartSilo(new() { ["Dashboard__Enabled"] = "true", ["Dashboard__Password"] = "s3cret-pass" });
        await using (guarded)
        {
            await WaitReadyAsync(http, guarded, url);
            var anonymous = await http.GetAsync($"{url}/dashboard");
            Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
            Assert.Contains("Basic", anonymous.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
            Assert.Equal(HttpStatusCode.Unauthorized, (await SendAsync(http, $"{url}/dashboard/", "admin:wrong")).StatusCode);
            var page = await SendAsync(http, $"{url}/dashboard/", "admin:s3cret-pass");
            Assert.Equal(HttpStatusCode.OK, page.StatusCode);
            Assert.Contains("Orleans Dashboard", await page.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            // Its data API is behind the same credential.
            Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync($"{url}/dashboard/ClusterStats")).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await SendAsync(http, $"{url}/dashboard/ClusterStats", "admin:s3cret-pass")).StatusCode);
        }

        var (refused, _) = StartSilo(new() { ["Dashboard__Enabled"] = "true" });
        await using (refused)
        {
            var exit = await refused.WaitForExitAsync(StartTimeout);
            Assert.Equal(1, exit);
            Assert.Contains(refused.Lines, line => line.Contains("Dashboard:Password", StringComparison.Ordinal));
        }
    }

    private static Task<HttpResponseMessage> SendAsync(HttpClient http, string url, string credential)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, url);
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(credential)));
        return http.SendAsync(request);
    }

    /// <summary>A single-silo cluster of its own (development clustering on free ports).</summary>
    private static (ChildProcess Silo, string Url) StartSilo(Dictionary<string, string> settings)
    {
        var siloPort = ChatClusterFixture.FreePort();
        var httpPort = ChatClusterFixture.FreePort();
        var environment = new Dictionary<string, string>(settings)
        {
            ["Orleans__ClusterId"] = $"dashboard-{Guid.NewGuid():N}",
            ["Orleans__Endpoints__SiloPort"] = siloPort.ToString(),
            ["Orleans__Endpoints__GatewayPort"] = ChatClusterFixture.FreePort().ToString(),
            ["Cluster__PrimarySiloPort"] = siloPort.ToString(),
            ["Silo__HttpPort"] = httpPort.ToString(),
        };
        var silo = ChildProcess.Start("dashboard-silo", ChatClusterFixture.BuiltAssembly("Silo", "OrleansChat.Silo.dll"),
            ChatClusterFixture.RepoPath("src", "Silo"), environment);
        return (silo, $"http://localhost:{httpPort}");
    }

    private static async Task WaitReadyAsync(HttpClient http, ChildProcess silo, string url)
    {
        var deadline = DateTime.UtcNow + StartTimeout;
        while (true)
        {
            try
            {
                using var response = await http.GetAsync($"{url}/readyz");
                if (response.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // not listening yet
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"{silo.Name} at {url} was not ready:\n{silo.Output}");
            }

            await Task.Delay(200);
        }
    }
}
