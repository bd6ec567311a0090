using System.Diagnostics;
using System.Net.Sockets;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;
using OrleansChat.Grains.Interfaces;

namespace OrleansChat.Cluster.Tests;

[CollectionDefinition(Name)]
public sealed class ChaosCollection : ICollectionFixture<LocalCluster>
{
    public const string Name = "chaos";
}

/// <summary>One stored message as the store holds it.</summary>
public sealed record StoredMessage(string Room, long Seq, string Sender, string ClientId);

/// <summary>
/// The real multi-process cluster of <c>scripts/cluster.sh</c> (PostgreSQL, Redis, 3 silos, 2 gateways, nginx),
/// started once per collection in its own state directory (<c>.ci-out/chaos-cluster</c>, fresh each run) and
/// stopped at the end, failed tests included. Ports are the documented ones (8080-8082, 11111-11113, …),
/// shifted as a whole by <c>CLUSTER_PORT_OFFSET</c> when another local cluster already holds them.
/// </summary>
public sealed class LocalCluster : IAsyncLifetime
{
    private static readonly TimeSpan ScriptTimeout = TimeSpan.FromMinutes(4);

    public LocalCluster()
    {
        RepoRoot = FindRepoRoot();
        StateDir = Path.Combine(RepoRoot, ".ci-out", "chaos-cluster");
        PortOffset = ChoosePortOffset();
    }

    public string RepoRoot { get; }

    /// <summary>The server API's key on both gateways (passed to cluster.sh as <c>Gateway__Api__Key</c>).</summary>
    public const string ApiKey = "local-cluster-api-key-0123456789";

    /// <summary>Warning, Error and Critical lines the silos and gateways logged during the first <c>up</c>.</summary>
    public IReadOnlyList<string> StartupWarnings { get; private set; } = [];

    public string StateDir { get; }

    public int PortOffset { get; }

    public Uri Nginx => WsUri(8080);

    public Uri Gateway1 => WsUri(8081);

    public Uri Gateway2 => WsUri(8082);

    /// <summary>HTTP (/metrics, /healthz, /readyz) of silo <paramref name="index"/> (from 1), as cluster.sh starts it.</summary>
    public Uri SiloHttp(int index) => new($"http://127.0.0.1:{8090 + index + PortOffset}");

    /// <summary>HTTP of gateway <paramref name="index"/> (from 1).</summary>
    public Uri GatewayHttp(int index) => new($"http://127.0.0.1:{8080 + index + PortOffset}");

    public const int Silos = 3;

    public string RedisAddress => $"127.0.0.1:{16379 + PortOffset}";

    public string MessagesConnectionString => $"Host=127.0.0.1;Port={15432 + PortOffset};Username=postgres;Database=orleanschat;Timeout=5;Pooling=false";

    public string ReportPath => Path.Combine(RepoRoot, ".ci-out", "chaos-report.txt");

    public async Task InitializeAsync()
    {
        if (Directory.Exists(StateDir))
        {
            Directory.Delete(StateDir, recursive: true);
        }

        // Run from a Release test build, the solution's Release build (scripts/test.sh) is already there: do not
        // build the silo and gateway a second time while other test projects run.
        var skipBuild = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
            && File.Exists(Path.Combine(RepoRoot, "src", "Silo", "bin", "Release", "net10.0", "OrleansChat.Silo"))
            && File.Exists(Path.Combine(RepoRoot, "src", "Gateway", "bin", "Release", "net10.0", "OrleansChat.Gateway"));
        try
        {
            await ScriptAsync(skipBuild, "up");
            StartupWarnings = [.. Directory.GetFiles(Path.Combine(StateDir, "logs"), "*.log")
                .Where(path => Path.GetFileName(path).StartsWith("silo", StringComparison.Ordinal) || Path.GetFileName(path).StartsWith("gateway", StringComparison.Ordinal))
                .SelectMany(path => File.ReadLines(path).Where(IsWarningOrWorse).Select(line => $"{Path.GetFileName(path)}: {line}"))];
        }
        catch
        {
            // A half-started cluster must not outlive the test run.
            await ScriptAsync(skipBuild: true, ["down"], allowFailure: true);
            throw;
        }
    }

    public async Task DisposeAsync() => await ScriptAsync(skipBuild: true, "down");

    /// <summary>Starts whatever is not running (a killed or stopped process) and waits until it is ready.</summary>
    public Task RestoreAsync() => ScriptAsync(skipBuild: true, "up");

    /// <summary><c>cluster.sh restart NAME</c>: a graceful stop (SIGTERM), a start, and the wait until it is ready.</summary>
    public Task RestartAsync(string name) => ScriptAsync(skipBuild: true, "restart", name);

    public Task StopAsync(params string[] names) => ScriptAsync(skipBuild: true, ["stop", .. names]);

    public Task DownAsync() => ScriptAsync(skipBuild: true, "down");

    /// <summary><c>cluster.sh status</c>: (role, pid, address) of every running process.</summary>
    public async Task<IReadOnlyList<(string Role, int Pid, string Address)>> StatusAsync()
    {
        var output = await ScriptAsync(skipBuild: true, ["status"], allowFailure: true);
        return [.. output.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => line.Split(' '))
            .Where(parts => parts.Length == 3 && int.TryParse(parts[1], out _))
            .Select(parts => (parts[0], int.Parse(parts[1]), parts[2]))];
    }

    /// <summary>kill -9 of one process by its pid from <c>status</c>; returns when it was killed.</summary>
    public async Task<DateTime> KillAsync(string role, string address)
    {
        var process = (await StatusAsync()).Single(p => p.Role == role && p.Address == address);
        var killedAt = DateTime.UtcNow;
        Process.GetProcessById(process.Pid).Kill();
        await WaitUntilAsync(() => !IsRunning(process.Pid), TimeSpan.FromSeconds(10), $"{role} {address} to die");
        return killedAt;
    }

    /// <summary>The silo endpoint (127.0.0.1:port) hosting a room's grain, asked of the grain itself through an
    /// Orleans client of the cluster (Redis membership).</summary>
    public async Task<string> SiloOfRoomAsync(string room)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Orleans:Clustering:ProviderType"] = "Redis",
            ["Orleans:Clustering:ConnectionString"] = RedisAddress,
            ["Orleans:ClusterId"] = "orleanschat",
            ["Orleans:ServiceId"] = "OrleansChat",
        });
        builder.UseOrleansClient();
        using var host = builder.Build();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await host.StartAsync(timeout.Token);
        try
        {
            var identity = await host.Services.GetRequiredService<IClusterClient>().GetGrain<IRoomGrain>(room).GetRuntimeIdentity();
            // "S127.0.0.1:11112:154463239": drop the leading S and the generation.
            var parts = identity.TrimStart('S').Split(':');
            return $"{parts[0]}:{parts[1]}";
        }
        finally
        {
            await host.StopAsync(CancellationToken.None);
        }
    }

    /// <summary>Every stored message of the rooms, by room then seq.</summary>
    public async Task<IReadOnlyList<StoredMessage>> StoredAsync(IEnumerable<string> rooms)
    {
        await using var connection = new NpgsqlConnection(MessagesConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT room, seq, sender, client_id FROM messages WHERE room = ANY(@rooms) ORDER BY room, seq", connection);
        command.Parameters.AddWithValue("rooms", rooms.ToArray());
        await using var reader = await command.ExecuteReaderAsync();
        var messages = new List<StoredMessage>();
        while (await reader.ReadAsync())
        {
            messages.Add(new StoredMessage(reader.GetString(0), reader.GetInt64(1), reader.GetString(2), reader.GetString(3)));
        }

        return messages;
    }

    public void Report(string line)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(ReportPath)!);
        File.AppendAllText(ReportPath, $"{DateTime.UtcNow:yyyy-MM-ddTHH:mm:ssZ} {line}\n");
    }

    private static bool IsWarningOrWorse(string jsonLine)
        => jsonLine.Contains("\"LogLevel\":\"Warning\"", StringComparison.Ordinal)
            || jsonLine.Contains("\"LogLevel\":\"Error\"", StringComparison.Ordinal)
            || jsonLine.Contains("\"LogLevel\":\"Critical\"", StringComparison.Ordinal);

    public static async Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"waited {timeout.TotalSeconds:0} s for {what}");
            }

            await Task.Delay(100);
        }
    }

    private Uri WsUri(int port) => new($"ws://127.0.0.1:{port + PortOffset}/ws");

    private Task<string> ScriptAsync(bool skipBuild, params string[] args) => ScriptAsync(skipBuild, args, allowFailure: false);

    /// <summary>Runs scripts/cluster.sh; its output goes through a file, not a pipe, so the daemons it starts
    /// cannot hold our read open.</summary>
    private async Task<string> ScriptAsync(bool skipBuild, string[] args, bool allowFailure)
    {
        Directory.CreateDirectory(Path.Combine(RepoRoot, ".ci-out"));
        var output = Path.Combine(RepoRoot, ".ci-out", $"chaos-cluster-{args[0]}.log");
        var info = new ProcessStartInfo("bash") { WorkingDirectory = RepoRoot, UseShellExecute = false };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add($"scripts/cluster.sh \"$@\" >'{output}' 2>&1");
        info.ArgumentList.Add("cluster.sh");
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        info.Environment["CLUSTER_DIR"] = StateDir;
        info.Environment["CLUSTER_PORT_OFFSET"] = PortOffset.ToString();
        info.Environment["CLUSTER_SKIP_BUILD"] = skipBuild ? "1" : "0";
        info.Environment["Gateway__Api__Key"] = ApiKey;
        using var process = Process.Start(info)!;
        using var timeout = new CancellationTokenSource(ScriptTimeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"cluster.sh {string.Join(' ', args)} did not finish within {ScriptTimeout}:\n{File.ReadAllText(output)}");
        }

        var text = File.ReadAllText(output);
        if (process.ExitCode != 0 && !allowFailure)
        {
            throw new InvalidOperationException($"cluster.sh {string.Join(' ', args)} failed ({process.ExitCode}):\n{text}");
        }

        return text;
    }

    public static bool IsRunning(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    /// <summary>The documented ports unless something (another engineer's cluster) holds one of them; then the
    /// first shift by a multiple of 1000 that is free. CLUSTER_PORT_OFFSET forces a shift.</summary>
    private static int ChoosePortOffset()
    {
        if (int.TryParse(Environment.GetEnvironmentVariable("CLUSTER_PORT_OFFSET"), out var forced))
        {
            return forced;
        }

        int[] ports = [8080, 8081, 8082, 11111, 11112, 11113, 30000, 30001, 30002, 15432, 16379];
        for (var offset = 0; offset <= 2000; offset += 1000)
        {
            if (ports.All(port => !PortTaken(port + offset)))
            {
                return offset;
            }
        }

        throw new InvalidOperationException("the local cluster's ports are taken at offsets 0, 1000 and 2000: set CLUSTER_PORT_OFFSET");
    }

    private static bool PortTaken(int port)
    {
        try
        {
            using var client = new TcpClient();
            client.Connect("127.0.0.1", port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "OrleansChat.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new DirectoryNotFoundException("OrleansChat.sln not found above the test output");
    }
}
