using System.Text.Json;

namespace OrleansChat.LoadTool;

/// <summary>The command line: <c>run</c> one scenario, or <c>report</c> on result files (see <see cref="CommandLine.Usage"/>).</summary>
internal static class Program
{
    private static async Task<int> Main(string[] args)
    {
        switch (args.FirstOrDefault())
        {
            case "run":
                if (!CommandLine.TryParseRun(args.AsSpan(1), out var settings, out var outFile, out var error))
                {
                    return Usage(error);
                }

                var result = await LoadRunner.RunAsync(settings, Console.Out);
                if (outFile is not null)
                {
                    await File.WriteAllTextAsync(outFile, result.ToJson());
                    Console.WriteLine($"wrote {outFile}");
                }

                return result.Passed ? 0 : 1;

            case "report":
                if (args.Length < 2)
                {
                    return Usage("report: name at least one result file");
                }

                var results = new List<LoadResult>();
                foreach (var file in args.Skip(1))
                {
                    try
                    {
                        results.Add(LoadResult.FromJson(await File.ReadAllTextAsync(file)));
                    }
                    catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or JsonException or NotSupportedException)
                    {
                        return Usage($"report: cannot read {file}: {ex.Message}");
                    }
                }

                Console.Write(LoadReport.Render(results));
                return 0;

            case "help" or "--help" or "-h":
                Console.WriteLine(CommandLine.Usage);
                return 0;

            case null:
                return Usage("expected 'run' or 'report' (--help for usage)");

            default:
                return Usage($"unknown command '{args[0]}': expected 'run' or 'report' (--help for usage)");
        }
    }

    private static int Usage(string error)
    {
        Console.Error.WriteLine($"OrleansChat.LoadTool: {error}");
        return 2;
    }
}
