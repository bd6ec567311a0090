using System.Diagnostics;

namespace OrleansChat.Gateway.Connections;

/// <summary>Token bucket for <c>send</c> frames of one connection, plus the abuse counter: more than
/// <see cref="AbuseLimit"/> refusals within <see cref="AbuseWindow"/> and the connection is closed (1008).
/// Not thread-safe: the read pump takes tokens as frames arrive; the request loop records refusals
/// (separate state).</summary>
internal sealed class RateLimiter(double perSecond, int burst)
{
    public const int AbuseLimit = 100;
    public static readonly TimeSpan AbuseWindow = TimeSpan.FromSeconds(10);

    private readonly Queue<long> _refusals = new();
    private double _tokens = burst;
    private long _last = Stopwatch.GetTimestamp();

    /// <summary>Takes one token; false when the bucket is empty (the frame still counted).</summary>
    public bool TryTake()
    {
        var now = Stopwatch.GetTimestamp();
        _tokens = Math.Min(burst, _tokens + (Stopwatch.GetElapsedTime(_last, now).TotalSeconds * perSecond));
        _last = now;
        if (_tokens >= 1)
        {
            _tokens -= 1;
            return true;
        }

        return false;
    }

    /// <summary>Records a refusal; true when it crosses the abuse line.</summary>
    public bool RecordRefusal()
    {
        var now = Stopwatch.GetTimestamp();
        _refusals.Enqueue(now);
        while (_refusals.Count > 0 && Stopwatch.GetElapsedTime(_refusals.Peek(), now) > AbuseWindow)
        {
            _refusals.Dequeue();
        }

        return _refusals.Count > AbuseLimit;
    }
}
