using System.Diagnostics;

namespace OrleansChat.LoadTool;

/// <summary>The measured window, as Stopwatch timestamps: a delivery counts when its frame arrived inside it, a send
/// when it was stamped inside it. Every client is in this process, so one clock serves senders and receivers.</summary>
internal sealed class RunClock
{
    public static readonly double MicrosPerTick = 1_000_000.0 / Stopwatch.Frequency;

    private long _start = long.MaxValue;
    private long _end = long.MaxValue;

    public bool InWindow(long timestamp) => timestamp >= Volatile.Read(ref _start) && timestamp < Volatile.Read(ref _end);

    public void Open(long timestamp) => Volatile.Write(ref _start, timestamp);

    public void Close(long timestamp) => Volatile.Write(ref _end, timestamp);
}
