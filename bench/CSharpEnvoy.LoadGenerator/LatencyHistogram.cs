using System.Numerics;

namespace CSharpEnvoy.LoadGenerator;

/// <summary>
/// HDR-style histogram of microsecond values: one bucket per microsecond below 2,048 µs, then 1,024 linear buckets per
/// power of two (relative error under 0.1%), up to ~2^41 µs; larger values land in the last bucket. Recording is an
/// index computation and an increment, with no allocation, so it can sit on the generator's hot loop.
/// </summary>
internal sealed class LatencyHistogram
{
    private const int SubBucketBits = 10;
    private const int SubBuckets = 1 << SubBucketBits;
    private const int ExactLimit = 2 * SubBuckets;
    private const int MaxShift = 31;
    internal const int BucketCount = ExactLimit + MaxShift * SubBuckets;

    private readonly long[] _counts = new long[BucketCount];

    public long Count { get; private set; }
    public long Max { get; private set; }
    public double Sum { get; private set; }
    public double Mean => Count == 0 ? 0 : Sum / Count;

    public void Record(long micros)
    {
        if (micros < 0)
        {
            micros = 0;
        }
        _counts[IndexOf(micros)]++;
        Count++;
        Sum += micros;
        if (micros > Max)
        {
            Max = micros;
        }
    }

    public void Clear()
    {
        Array.Clear(_counts);
        Count = 0;
        Max = 0;
        Sum = 0;
    }

    /// <summary>
    /// The value at <paramref name="percentile"/> (0–100): the highest value of the bucket holding that rank, as
    /// HdrHistogram reports it, never above the exact maximum.
    /// </summary>
    public long ValueAtPercentile(double percentile)
    {
        if (Count == 0)
        {
            return 0;
        }
        var rank = Math.Max(1, (long)Math.Ceiling(percentile / 100 * Count));
        long seen = 0;
        for (var i = 0; i < _counts.Length; i++)
        {
            seen += _counts[i];
            if (seen >= rank)
            {
                return Math.Min(HighestEquivalent(i), Max);
            }
        }
        return Max;
    }

    internal static int IndexOf(long value)
    {
        if (value < ExactLimit)
        {
            return (int)value;
        }
        // Shift that brings the value into [1024, 2048): its top 11 bits pick the sub-bucket.
        var shift = 63 - BitOperations.LeadingZeroCount((ulong)value) - SubBucketBits;
        if (shift > MaxShift)
        {
            return BucketCount - 1;
        }
        return ExactLimit + (shift - 1) * SubBuckets + (int)(value >> shift) - SubBuckets;
    }

    internal static long HighestEquivalent(int index)
    {
        if (index < ExactLimit)
        {
            return index;
        }
        var shift = (index - ExactLimit) / SubBuckets + 1;
        long sub = (index - ExactLimit) % SubBuckets + SubBuckets;
        return ((sub + 1) << shift) - 1;
    }
}
