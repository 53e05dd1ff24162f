using System.Collections.Concurrent;
using CSharpEnvoy.Config.Model.Stats;

namespace CSharpEnvoy.DataPlane.Stats;

/// <summary>A monotonically increasing count. Incremented on the request path: one interlocked add, no allocation.</summary>
internal sealed class Counter
{
    private long _value;
    private long _used;

    public Counter(string name) => Name = name;

    public string Name { get; }
    public long Value => Volatile.Read(ref _value);
    /// <summary>Envoy's "used" bit: set once the stat was ever written (drives <c>/stats?usedonly</c>).</summary>
    public bool Used => Volatile.Read(ref _used) != 0;

    public void Inc()
    {
        Interlocked.Increment(ref _value);
        if (_used == 0) _used = 1;
    }

    public void Add(long n)
    {
        Interlocked.Add(ref _value, n);
        if (_used == 0) _used = 1;
    }

    public void Reset() => Interlocked.Exchange(ref _value, 0);
}

/// <summary>A value that goes up and down (active requests, connections, versions).</summary>
internal sealed class Gauge
{
    private long _value;
    private long _used;

    public Gauge(string name) => Name = name;

    public string Name { get; }
    public long Value => Volatile.Read(ref _value);
    public bool Used => Volatile.Read(ref _used) != 0;

    public void Inc()
    {
        Interlocked.Increment(ref _value);
        if (_used == 0) _used = 1;
    }

    public void Dec() => Interlocked.Decrement(ref _value);

    public void Set(long v)
    {
        Volatile.Write(ref _value, v);
        if (_used == 0) _used = 1;
    }
}

/// <summary>
/// All stats of the server by their Envoy names. Stats are created when config is applied (never on the request
/// path); the request path holds direct references to its <see cref="Counter"/>s and <see cref="Gauge"/>s.
/// A stat that <c>stats_config.stats_matcher</c> rejects is handed out detached, as Envoy's null stats: it works
/// for its holder but is never stored, shown or exported.
/// </summary>
internal sealed class StatsStore
{
    private readonly ConcurrentDictionary<string, Counter> _counters = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Gauge> _gauges = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Histogram> _histograms = new(StringComparer.Ordinal);
    private readonly StatsMatcherModel? _matcher;

    public StatsStore(StatsConfigModel? config = null)
    {
        config ??= StatsConfigModel.Default;
        _matcher = config.Matcher;
        Tags = TagProducer.Create(config);
    }

    /// <summary>Tag extraction for Prometheus and DogStatsD, as stats_config configures it.</summary>
    public TagProducer Tags { get; }

    public Counter Counter(string name) =>
        _counters.TryGetValue(name, out var c) ? c : Accepts(name) ? _counters.GetOrAdd(name, static n => new Counter(n)) : new Counter(name);

    public Gauge Gauge(string name) =>
        _gauges.TryGetValue(name, out var g) ? g : Accepts(name) ? _gauges.GetOrAdd(name, static n => new Gauge(n)) : new Gauge(name);

    public Histogram Histogram(string name) =>
        _histograms.TryGetValue(name, out var h) ? h
        : Accepts(name) ? _histograms.GetOrAdd(name, static (n, store) => new Histogram(n, store), this) : new Histogram(name);

    private bool Accepts(string name) => _matcher is null || _matcher.Accepts(name);

    /// <summary>Set by stat sinks that want each histogram value as it is recorded.</summary>
    public volatile Action<Histogram, double>? HistogramObserver;

    public IEnumerable<Counter> Counters => _counters.Values;
    public IEnumerable<Gauge> Gauges => _gauges.Values;
    public IEnumerable<Histogram> Histograms => _histograms.Values;

    public void ResetCounters()
    {
        // Envoy's /reset_counters touches counters only.
        foreach (var c in _counters.Values) c.Reset();
    }
}
