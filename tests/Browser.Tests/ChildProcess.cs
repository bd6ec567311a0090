using System.Collections.Concurrent;
using System.Diagnostics;

namespace OrleansChat.Browser.Tests;

/// <summary>A built OrleansChat host (silo or gateway) run as its own process, as in production, so a test
/// can kill it and start it again on the same port. Its output is kept for the failure message.</summary>
public sealed class ChildProcess : IAsyncDisposable
{
    private readonly ConcurrentQueue<string> _output = new();
    private readonly Process _process;

    private ChildProcess(string name, Process process)
    {
        Name = name;
        _process = process;
    }

    public string Name { get; }

    public string Output => string.Join('\n', _output.TakeLast(60));

    /// <summary>Every line kept so far (the last 500).</summary>
    public IReadOnlyList<string> Lines => [.. _output];

    public static ChildProcess Start(string name, string assemblyPath, string workingDirectory, IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(assemblyPath);
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        foreach (var (key, value) in environment)
        {
            info.Environment[key] = value;
        }

        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var child = new ChildProcess(name, process);
        process.OutputDataReceived += (_, e) => child.Record(e.Data);
        process.ErrorDataReceived += (_, e) => child.Record(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return child;
    }

    public void ThrowIfExited()
    {
        if (_process.HasExited)
        {
            throw new InvalidOperationException($"{Name} exited with {_process.ExitCode}:\n{Output}");
        }
    }

    /// <summary>Waits until a line of output contains <paramref name="text"/>.</summary>
    public async Task WaitForOutputAsync(string text, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!_output.Any(line => line.Contains(text, StringComparison.Ordinal)))
        {
            ThrowIfExited();
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"{Name} did not print '{text}' within {timeout.TotalSeconds} s:\n{Output}");
            }

            await Task.Delay(100);
        }
    }

    /// <summary>Waits for the process to end by itself; returns its exit code.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cancel.Token);
        return _process.ExitCode;
    }

    /// <summary>Ends the process at once, like a crash: its WebSocket clients see the connection drop (1006).</summary>
    public async Task KillAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await _process.WaitForExitAsync(timeout.Token);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await KillAsync();
        }
        catch (InvalidOperationException)
        {
            // never started or already gone
        }

        _process.Dispose();
    }

    private void Record(string? line)
    {
        if (line is null)
        {
            return;
        }

        _output.Enqueue(line);
        while (_output.Count > 500)
        {
            _output.TryDequeue(out _);
        }
    }
}
