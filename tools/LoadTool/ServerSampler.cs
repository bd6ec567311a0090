using System.Globalization;
using System.Runtime.InteropServices;

namespace OrleansChat.LoadTool;

/// <summary>CPU time and resident memory of the server's processes and all their descendants (PostgreSQL forks a
/// backend per connection), from /proc; and the machine's total busy time. Linux only: elsewhere every
/// sample is null.</summary>
internal sealed class ServerSampler(IReadOnlyList<int> roots)
{
    private const int ScClkTck = 2;

    public static bool Available { get; } = OperatingSystem.IsLinux() && File.Exists("/proc/stat");

    /// <summary>USER_HZ: the unit of /proc's CPU times (100 on nearly every Linux).</summary>
    public static double TicksPerSecond { get; } = ReadClockTicks();

    /// <summary>The process tree now: CPU ticks per pid and total RSS. Null without pids or without /proc.</summary>
    public TreeSample? SampleTree()
    {
        if (roots.Count == 0 || !Available)
        {
            return null;
        }

        try
        {
            return SampleTreeOrThrow();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // /proc itself could not be listed (no descriptors left): not measured.
            return null;
        }
    }

    private TreeSample SampleTreeOrThrow()
    {
        // One pass over /proc: every process's parent and CPU time; then collect the tree from the roots down.
        var parents = new Dictionary<int, int>();
        var ticks = new Dictionary<int, long>();
        foreach (var directory in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(directory), NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
                && TryReadStat(pid, out var parent, out var cpu))
            {
                parents[pid] = parent;
                ticks[pid] = cpu;
            }
        }

        var children = new Dictionary<int, List<int>>();
        foreach (var (pid, parent) in parents)
        {
            if (!children.TryGetValue(parent, out var list))
            {
                children[parent] = list = [];
            }

            list.Add(pid);
        }

        var tree = new Dictionary<int, long>();
        var pending = new Stack<int>(roots.Where(ticks.ContainsKey));
        while (pending.TryPop(out var pid))
        {
            if (tree.TryAdd(pid, ticks[pid]) && children.TryGetValue(pid, out var list))
            {
                foreach (var child in list)
                {
                    pending.Push(child);
                }
            }
        }

        long rssKb = 0;
        foreach (var pid in tree.Keys)
        {
            rssKb += ReadRssKb(pid);
        }

        return new TreeSample(tree, rssKb);
    }

    /// <summary>CPU seconds the tree used between two samples. A process present only at the end counts with all
    /// its time (it was born in between). Limitation: a process that exited in between is missing from the
    /// end sample, so the time it used in the window is lost; a reused pid whose counter went down counts as new.</summary>
    public static double CpuSeconds(TreeSample start, TreeSample end)
    {
        long ticks = 0;
        foreach (var (pid, cpu) in end.Ticks)
        {
            ticks += start.Ticks.TryGetValue(pid, out var before) && before <= cpu ? cpu - before : cpu;
        }

        return ticks / TicksPerSecond;
    }

    /// <summary>The machine's busy ticks (user+nice+system+irq+softirq+steal, all cores) from /proc/stat.</summary>
    public static long? MachineBusyTicks()
    {
        if (!Available)
        {
            return null;
        }

        try
        {
            using var reader = new StreamReader("/proc/stat");
            var line = reader.ReadLine();
            if (line is null || !line.StartsWith("cpu ", StringComparison.Ordinal))
            {
                return null;
            }

            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            long Field(int i) => i < fields.Length ? long.Parse(fields[i], CultureInfo.InvariantCulture) : 0;

            // cpu user nice system idle iowait irq softirq steal (guest time is already inside user).
            return Field(1) + Field(2) + Field(3) + Field(6) + Field(7) + Field(8);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static bool TryReadStat(int pid, out int parent, out long cpu)
    {
        parent = 0;
        cpu = 0;
        string stat;
        try
        {
            stat = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Gone between listing and reading.
            return false;
        }

        // "pid (comm) state ppid … utime stime …": comm may hold spaces and parentheses, so count from the last ')'.
        var close = stat.LastIndexOf(')');
        if (close < 0)
        {
            return false;
        }

        var fields = stat[(close + 2)..].Split(' ');
        // fields[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
        if (fields.Length < 13
            || !int.TryParse(fields[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out parent)
            || !long.TryParse(fields[11], NumberStyles.Integer, CultureInfo.InvariantCulture, out var user)
            || !long.TryParse(fields[12], NumberStyles.Integer, CultureInfo.InvariantCulture, out var system))
        {
            return false;
        }

        cpu = user + system;
        return true;
    }

    /// <summary>The process's proportional share of its resident memory (PSS): pages shared between processes
    /// (PostgreSQL's shared buffers, seen by every backend) count once in the sum, not once per process.
    /// Falls back to VmRSS where smaps_rollup is unavailable.</summary>
    private static long ReadRssKb(int pid)
        => ReadKb($"/proc/{pid}/smaps_rollup", "Pss:") ?? ReadKb($"/proc/{pid}/status", "VmRSS:") ?? 0;

    private static long? ReadKb(string path, string field)
    {
        try
        {
            foreach (var line in File.ReadLines(path))
            {
                if (line.StartsWith(field, StringComparison.Ordinal))
                {
                    var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                    return parts.Length > 1 && long.TryParse(parts[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out var kb) ? kb : null;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
        }

        // Kernel threads and processes that just exited have none.
        return null;
    }

    private static double ReadClockTicks()
    {
        if (!Available)
        {
            return 100;
        }

        try
        {
            var ticks = SysConf(ScClkTck);
            return ticks > 0 ? ticks : 100;
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            return 100;
        }
    }

    [DllImport("libc", EntryPoint = "sysconf")]
    private static extern long SysConf(int name);

    internal sealed record TreeSample(Dictionary<int, long> Ticks, long RssKb);
}
