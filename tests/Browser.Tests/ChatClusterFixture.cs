using System.Net;
using System.Net.Sockets;

namespace OrleansChat.Browser.Tests;

[CollectionDefinition(Name)]
public sealed class BrowserCollection : ICollectionFixture<ChatClusterFixture>
{
    public const string Name = "browser";
}

/// <summary>
/// One silo process and two gateway processes in Client mode in front of it (the production shape), plus one
/// headless Chromium for the whole collection. Messages live in the silo, so a gateway can be killed and
/// started again on the same port while a tab is open, and what was sent meanwhile through the other
/// gateway is still there to recover.
/// </summary>
public sealed class ChatClusterFixture : IAsyncLifetime
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private readonly string _clusterId = $"browser-tests-{Guid.NewGuid():N}";
    private readonly int _siloPort = FreePort();
    private readonly int _siloGatewayPort = FreePort();
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(5) };

    /// <summary>Every process of the fixture exports traces (and metrics and logs) here over OTLP, as to a collector.</summary>
    public OtlpReceiver Otlp { get; } = new(FreePort());
    private ChildProcess? _silo;
    private ChildProcess? _gatewayB;
    private ChildProcess? _gatewayJwt;

    /// <summary>What the silo and gateway B (never restarted by a test) printed so far, each line prefixed by its
    /// process.</summary>
    public IReadOnlyList<string> SteadyLines => [.. new[] { _silo!, _gatewayB! }.SelectMany(process => process.Lines.Select(line => $"{process.Name}: {line}"))];
    private IPlaywright? _playwright;

    /// <summary>What the silo and both gateways logged until they were ready.</summary>
    public IReadOnlyList<string> StartupLines { get; private set; } = [];

    public int PortA { get; } = FreePort();

    public int PortB { get; } = FreePort();

    public int PortJwt { get; } = FreePort();

    /// <summary>The settings of the jwt-mode gateway: tests mint their tokens with these.</summary>
    public const string JwtSigningKey = "browser-tests-signing-key-not-a-secret-0123456789";

    public const string JwtIssuer = "orleanschat-browser-tests";

    public const string JwtAudience = "orleanschat-web";

    /// <summary>The server API key of the jwt-mode gateway (kick, disconnect).</summary>
    public const string ApiKey = "browser-tests-api-key";

    /// <summary>The gateway the restart test stops and starts again.</summary>
    public string UrlA => $"http://127.0.0.1:{PortA}";

    /// <summary>A second gateway that stays up.</summary>
    public string UrlB => $"http://127.0.0.1:{PortB}";

    /// <summary>A third gateway in jwt mode with the server API on: connections need a token.</summary>
    public string UrlJwt => $"http://127.0.0.1:{PortJwt}";

    public ChildProcess? GatewayA { get; private set; }

    public IBrowser Browser { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        SetDefaultExpectTimeout(15_000);
        var browserTask = LaunchBrowserAsync();

        _silo = ChildProcess.Start("silo", BuiltAssembly("Silo", "OrleansChat.Silo.dll"), RepoPath("src", "Silo"), new Dictionary<string, string>(OtlpSettings)
        {
            ["Orleans__ClusterId"] = _clusterId,
            ["Orleans__Endpoints__SiloPort"] = _siloPort.ToString(),
            ["Orleans__Endpoints__GatewayPort"] = _siloGatewayPort.ToString(),
            ["Cluster__PrimarySiloPort"] = _siloPort.ToString(),
            ["Silo__HttpPort"] = FreePort().ToString(),
        });
        await _silo.WaitForOutputAsync("Application started", StartTimeout);

        GatewayA = StartGateway("gateway-a", PortA);
        _gatewayB = StartGateway("gateway-b", PortB);
        _gatewayJwt = StartGateway("gateway-jwt", PortJwt, new()
        {
            ["Gateway__Auth__Mode"] = "jwt",
            ["Gateway__Auth__SigningKey"] = JwtSigningKey,
            ["Gateway__Auth__Issuer"] = JwtIssuer,
            ["Gateway__Auth__Audience"] = JwtAudience,
            ["Gateway__Api__Key"] = ApiKey,
        });
        await Task.WhenAll(WaitReadyAsync(GatewayA, UrlA), WaitReadyAsync(_gatewayB, UrlB), WaitReadyAsync(_gatewayJwt, UrlJwt), browserTask);
        StartupLines = [.. new[] { _silo, GatewayA, _gatewayB }.SelectMany(process => process.Lines.Select(line => $"{process.Name}: {line}"))];

    }

    /// <summary>Kills gateway A (a crash, not a drain): its tabs see the connection drop.</summary>
    public async Task StopGatewayAAsync()
    {
        await GatewayA!.DisposeAsync();
        GatewayA = null;
    }

    /// <summary>Starts gateway A again on the same port, and waits until it reaches the cluster.</summary>
    public async Task StartGatewayAAsync()
    {
        GatewayA = StartGateway("gateway-a", PortA);
        await WaitReadyAsync(GatewayA, UrlA);
    }

    public async Task DisposeAsync()
    {
        if (_playwright is not null)
        {
            await Browser.CloseAsync();
            _playwright.Dispose();
        }

        foreach (var process in new[] { GatewayA, _gatewayB, _gatewayJwt, _silo })
        {
            if (process is not null)
            {
                await process.DisposeAsync();
            }
        }

        _http.Dispose();
        Otlp.Dispose();
    }

    private async Task LaunchBrowserAsync()
    {
        _playwright = await Playwright.CreateAsync();
        // Debian's Chromium: tests never download a browser.
        Browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Environment.GetEnvironmentVariable("CHROMIUM_PATH") ?? "/usr/bin/chromium",
            Headless = true,
            Args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        });
    }

    private ChildProcess StartGateway(string name, int port, Dictionary<string, string>? settings = null)
    {
        var environment = new Dictionary<string, string>(OtlpSettings)
        {
            ["Cluster__Mode"] = "Client",
            ["Cluster__GatewayPorts"] = _siloGatewayPort.ToString(),
            ["Orleans__ClusterId"] = _clusterId,
            // The history test seeds a room quickly; the client's own pacing is not under test here.
            ["Gateway__RateLimit__PerSecond"] = "500",
            ["Gateway__RateLimit__Burst"] = "1000",
        };
        foreach (var (key, value) in settings ?? [])
        {
            environment[key] = value;
        }

        return ChildProcess.Start(name, BuiltAssembly("Gateway", "OrleansChat.Gateway.dll"), RepoPath("src", "Gateway"), environment, "--urls", $"http://127.0.0.1:{port}");
    }

    /// <summary>The standard OpenTelemetry variables: OTLP over HTTP to <see cref="Otlp"/>, spans sent every 200 ms.</summary>
    private Dictionary<string, string> OtlpSettings => new()
    {
        ["OTEL_EXPORTER_OTLP_ENDPOINT"] = Otlp.Endpoint,
        ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
        ["OTEL_BSP_SCHEDULE_DELAY"] = "200",
    };

    private async Task WaitReadyAsync(ChildProcess process, string url)
    {
        var deadline = DateTime.UtcNow + StartTimeout;
        while (true)
        {
            try
            {
                using var response = await _http.GetAsync($"{url}/readyz");
                if (response.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // not listening yet
            }
            catch (TaskCanceledException)
            {
                // not answering yet
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"{process.Name} at {url} was not ready within {StartTimeout.TotalSeconds} s:\n{process.Output}");
            }

            process.ThrowIfExited();
            await Task.Delay(200);
        }
    }

    /// <summary>The same build (configuration and framework) of another project in the repository.</summary>
    public static string BuiltAssembly(string project, string assembly)
    {
        var output = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var framework = output.Name;
        var configuration = output.Parent!.Name;
        var path = RepoPath("src", project, "bin", configuration, framework, assembly);
        return File.Exists(path) ? path : throw new FileNotFoundException($"Build {project} first ({path} is missing).", path);
    }

    public static string RepoPath(params string[] parts)
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "OrleansChat.sln")))
        {
            dir = dir.Parent;
        }

        return Path.Combine([dir?.FullName ?? throw new DirectoryNotFoundException("OrleansChat.sln not found above the test output"), .. parts]);
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
