using System.Numerics;

namespace OrleansChat.LoadTool;

/// <summary>A log-linear histogram of microseconds (HdrHistogram's idea, two and a bit significant digits):
/// exact below 256 µs, then 128 buckets per power of two, so a bucket is at most 1/128 (0.8 %) of its value
/// wide. Up to 2^28 µs (~4.5 min); larger values land in the last bucket (the maximum is kept exactly).
/// One per receive loop, so recording takes no lock; merged at the end.</summary>
internal sealed class LatencyHistogram
{
    private const int SubBits = 8;
    private const int Linear = 1 << SubBits;
    private const int Half = Linear / 2;
    private const int MaxShift = 20;
    private const int BucketCount = Linear + (MaxShift * Half);

    // int per bucket: a single connection never sees 2^31 deliveries, and it halves the per-connection footprint.
    private readonly int[] _counts = new int[BucketCount];

    public long Count { get; private set; }

    public long MaxMicros { get; private set; }

    public void Record(long micros)
    {
        if (micros < 0)
        {
            micros = 0;
        }

        _counts[Index(micros)]++;
        Count++;
        if (micros > MaxMicros)
        {
            MaxMicros = micros;
        }
    }

    /// <summary>Sums many histograms into one set of totals.</summary>
    public static LatencySummary Merge(IEnumerable<LatencyHistogram> histograms)
    {
        var totals = new long[BucketCount];
        long count = 0, max = 0;
        foreach (var histogram in histograms)
        {
            for (var i = 0; i < BucketCount; i++)
            {
                totals[i] += histogram._counts[i];
            }

            count += histogram.Count;
            max = Math.Max(max, histogram.MaxMicros);
        }

        return new LatencySummary(totals, count, max);
    }

    internal static int Index(long micros)
    {
        if (micros < Linear)
        {
            return (int)micros;
        }

        // Keep the top SubBits bits: shift so that the value lands in [Half, Linear).
        var shift = (63 - BitOperations.LeadingZeroCount((ulong)micros)) - (SubBits - 1);
        if (shift > MaxShift)
        {
            return BucketCount - 1;
        }

        return Linear + ((shift - 1) * Half) + (int)((micros >> shift) - Half);
    }

    /// <summary>The largest value that falls into bucket <paramref name="index"/>.</summary>
    internal static long HighestIn(int index)
    {
        if (index < Linear)
        {
            return index;
        }

        var shift = ((index - Linear) / Half) + 1;
        var sub = ((index - Linear) % Half) + Half;
        return ((long)(sub + 1) << shift) - 1;
    }

    internal sealed class LatencySummary(long[] counts, long count, long maxMicros)
    {
        public long Count => count;

        public double? MaxMs => count == 0 ? null : maxMicros / 1000.0;

        /// <summary>The value at quantile <paramref name="q"/> (0–1), in ms: the top of its bucket, never above
        /// the maximum (so at most 0.8 % high); null without samples.</summary>
        public double? PercentileMs(double q)
        {
            if (count == 0)
            {
                return null;
            }

            var rank = Math.Max(1, (long)Math.Ceiling(q * count));
            long seen = 0;
            for (var i = 0; i < counts.Length; i++)
            {
                seen += counts[i];
                if (seen >= rank)
                {
                    return Math.Min(HighestIn(i), maxMicros) / 1000.0;
                }
            }

            return maxMicros / 1000.0;
        }
    }
}
