namespace CSharpEnvoy.DataPlane.Stats;

/// <summary>
/// A histogram with Envoy's default bucket bounds (milliseconds), recorded lock-free: one interlocked increment of a
/// bucket, the count and the sum per value. Quantiles are estimated from the buckets when read.
/// </summary>
internal sealed class Histogram
{
    /// <summary>Envoy's default histogram bucket bounds.</summary>
    public static readonly double[] DefaultBuckets =
        [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000];

    /// <summary>The quantiles /stats prints, as Envoy does.</summary>
    public static readonly double[] SupportedQuantiles = [0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 1];

    private readonly long[] _buckets = new long[DefaultBuckets.Length + 1]; // last: above the highest bound
    private long _count;
    private long _sumMicros; // sum kept in µs so sub-millisecond values add up
    private long _used;

    private readonly StatsStore? _store;

    private readonly StatName _name;

    public Histogram(string name, StatsStore? store = null) : this(new StatName(name, ""), store)
    {
    }

    public Histogram(StatName name, StatsStore? store = null)
    {
        _name = name;
        _store = store;
    }

    public string Name => _name.ToString();
    public long Count => Volatile.Read(ref _count);
    public double Sum => Volatile.Read(ref _sumMicros) / 1000.0;
    public bool Used => Volatile.Read(ref _used) != 0;

    public void Record(double milliseconds)
    {
        var bounds = DefaultBuckets;
        var i = 0;
        while (i < bounds.Length && milliseconds > bounds[i]) i++;
        Interlocked.Increment(ref _buckets[i]);
        Interlocked.Increment(ref _count);
        Interlocked.Add(ref _sumMicros, (long)(milliseconds * 1000));
        if (_used == 0) _used = 1;
        // StatsD sinks see every value as it is recorded (Envoy's onHistogramComplete); one null check otherwise.
        _store?.HistogramObserver?.Invoke(this, milliseconds);
    }

    /// <summary>Cumulative counts per bound (Prometheus "le" buckets), the last entry being +Inf.</summary>
    public long[] CumulativeBuckets()
    {
        var result = new long[_buckets.Length];
        long running = 0;
        for (var i = 0; i < _buckets.Length; i++)
        {
            running += Volatile.Read(ref _buckets[i]);
            result[i] = running;
        }
        return result;
    }

    /// <summary>Estimates a quantile by linear interpolation inside the bucket that holds it; NaN when empty.</summary>
    public double Quantile(double q)
    {
        var cumulative = CumulativeBuckets();
        var total = cumulative[^1];
        if (total == 0) return double.NaN;
        var rank = q * total;
        for (var i = 0; i < cumulative.Length; i++)
        {
            if (cumulative[i] < rank || cumulative[i] == 0) continue;
            var lower = i == 0 ? 0 : DefaultBuckets[i - 1];
            var upper = i < DefaultBuckets.Length ? DefaultBuckets[i] : DefaultBuckets[^1];
            var before = i == 0 ? 0 : cumulative[i - 1];
            var inBucket = cumulative[i] - before;
            return inBucket == 0 ? upper : lower + (upper - lower) * ((rank - before) / inBucket);
        }
        return DefaultBuckets[^1];
    }

    public void Reset()
    {
        for (var i = 0; i < _buckets.Length; i++) Interlocked.Exchange(ref _buckets[i], 0);
        Interlocked.Exchange(ref _count, 0);
        Interlocked.Exchange(ref _sumMicros, 0);
    }
}
