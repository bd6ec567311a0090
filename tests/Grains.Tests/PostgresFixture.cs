using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace OrleansChat.Grains.Tests;

[CollectionDefinition(Name)]
public sealed class PostgresCollection : ICollectionFixture<PostgresFixture>
{
    public const string Name = "PostgreSQL";
}

/// <summary>
/// A private PostgreSQL server for one test collection: its own data directory under the temp folder,
/// 127.0.0.1 on a free port, trust authentication, fsync off. initdb refuses to run as root, so as root
/// the server runs as the <c>postgres</c> user (the Debian package creates it). Stopped and deleted on dispose.
/// </summary>
public sealed class PostgresFixture : IAsyncLifetime
{
    private readonly string _bin = FindBinaries();
    private readonly string _dataDir = Path.Combine(Path.GetTempPath(), $"orleanschat-pg-{Guid.NewGuid():N}");
    private readonly bool _asPostgresUser = Environment.UserName == "root";
    private int _databases;

    public int Port { get; } = FreeTcpPort();

    /// <summary>The server's default database; tests that need an empty schema use <see cref="CreateDatabaseAsync"/>.</summary>
    public string ConnectionString => ConnectionStringFor("postgres");

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_dataDir);
        if (_asPostgresUser)
        {
            await RunAsync("chown", ["postgres:postgres", _dataDir], asPostgres: false);
        }

        await RunAsync(Path.Combine(_bin, "initdb"),
            ["-D", _dataDir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"]);
        await StartAsync();
    }

    public async Task DisposeAsync()
    {
        try
        {
            await RunAsync(Path.Combine(_bin, "pg_ctl"), ["-D", _dataDir, "-m", "immediate", "-w", "stop"]);
        }
        catch (InvalidOperationException)
        {
            // Already stopped (a test left it down).
        }
        finally
        {
            Directory.Delete(_dataDir, recursive: true);
        }
    }

    /// <summary>Starts the server (again, after <see cref="StopAsync"/>) on the same port and data.</summary>
    public Task StartAsync() => RunAsync(Path.Combine(_bin, "pg_ctl"),
    [
        "-D", _dataDir, "-l", Path.Combine(_dataDir, "server.log"), "-w", "-t", "30",
        "-o", $"-p {Port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={_dataDir} -c fsync=off -c max_connections=200",
        "start",
    ]);

    /// <summary>An outage: fast shutdown disconnects every client, as a crash or a restart would.</summary>
    public Task StopAsync() => RunAsync(Path.Combine(_bin, "pg_ctl"), ["-D", _dataDir, "-m", "fast", "-w", "stop"]);

    /// <summary>A new empty database on the server; returns its connection string.</summary>
    public async Task<string> CreateDatabaseAsync()
    {
        var name = $"test_{Interlocked.Increment(ref _databases)}";
        await using var dataSource = NpgsqlDataSource.Create(ConnectionString);
        await using var command = dataSource.CreateCommand($"CREATE DATABASE {name}");
        await command.ExecuteNonQueryAsync();
        return ConnectionStringFor(name);
    }

    private string ConnectionStringFor(string database)
        => $"Host=127.0.0.1;Port={Port};Username=postgres;Database={database};Timeout=5;Pooling=true";

    private async Task RunAsync(string program, IReadOnlyList<string> arguments, bool asPostgres = true)
    {
        var start = new ProcessStartInfo
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Path.GetTempPath(),
        };
        if (asPostgres && _asPostgresUser)
        {
            start.FileName = "runuser";
            foreach (var argument in (string[])["-u", "postgres", "--", program])
            {
                start.ArgumentList.Add(argument);
            }
        }
        else
        {
            start.FileName = program;
        }

        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException(
                $"{Path.GetFileName(program)} {string.Join(' ', arguments)} exited {process.ExitCode}: {await error} {await output}");
        }
    }

    private static string FindBinaries()
    {
        var bin = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql")
                .Select(dir => Path.Combine(dir, "bin"))
                .Where(dir => File.Exists(Path.Combine(dir, "initdb")))
                .OrderByDescending(dir => int.TryParse(Path.GetFileName(Path.GetDirectoryName(dir)), out var major) ? major : 0)
                .FirstOrDefault()
            : null;
        return bin ?? throw new InvalidOperationException(
            "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: run scripts/prereqs.sh (apt-get install postgresql).");
    }

    private static int FreeTcpPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
