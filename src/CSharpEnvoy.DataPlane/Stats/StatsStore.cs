using System.Collections.Concurrent;
using CSharpEnvoy.Config.Model.Stats;

namespace CSharpEnvoy.DataPlane.Stats;

/// <summary>A monotonically increasing count. Incremented on the request path: one interlocked add, no allocation.</summary>
internal sealed class Counter
{
    private readonly StatName _name;
    private long _value;
    private long _used;

    public Counter(string name) => _name = new StatName(name, "");
    public Counter(StatName name) => _name = name;

    public string Name => _name.ToString();
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
    private readonly StatName _name;
    private long _value;
    private long _used;

    public Gauge(string name) => _name = new StatName(name, "");
    public Gauge(StatName name) => _name = name;

    public string Name => _name.ToString();
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
    private readonly ConcurrentDictionary<StatName, Counter> _counters = new();
    private readonly ConcurrentDictionary<StatName, Gauge> _gauges = new();
    private readonly ConcurrentDictionary<StatName, Histogram> _histograms = new();
    private readonly StatsMatcherModel? _matcher;

    public StatsStore(StatsConfigModel? config = null)
    {
        config ??= StatsConfigModel.Default;
        _matcher = config.Matcher;
        Tags = TagProducer.Create(config);
    }

    /// <summary>Tag extraction for Prometheus and DogStatsD, as stats_config configures it.</summary>
    public TagProducer Tags { get; }

    public Counter Counter(string name) => Counter(new StatName(name, ""));
    public Gauge Gauge(string name) => Gauge(new StatName(name, ""));
    public Histogram Histogram(string name) => Histogram(new StatName(name, ""));

    /// <summary>The stat <paramref name="prefix"/> + <paramref name="suffix"/>, kept as the two parts: the many stats
    /// of a cluster or listener share one prefix string and literal suffixes instead of a name string each.</summary>
    public Counter Counter(string prefix, string suffix) => Counter(new StatName(prefix, suffix));
    public Gauge Gauge(string prefix, string suffix) => Gauge(new StatName(prefix, suffix));
    public Histogram Histogram(string prefix, string suffix) => Histogram(new StatName(prefix, suffix));

    private Counter Counter(StatName name) =>
        _counters.TryGetValue(name, out var c) ? c : Accepts(name) ? _counters.GetOrAdd(name, static n => new Counter(n)) : new Counter(name);

    private Gauge Gauge(StatName name) =>
        _gauges.TryGetValue(name, out var g) ? g : Accepts(name) ? _gauges.GetOrAdd(name, static n => new Gauge(n)) : new Gauge(name);

    private Histogram Histogram(StatName name) =>
        _histograms.TryGetValue(name, out var h) ? h
        : Accepts(name) ? _histograms.GetOrAdd(name, static (n, store) => new Histogram(n, store), this) : new Histogram(name);

    private bool Accepts(StatName name) => _matcher is null || _matcher.Accepts(name.ToString());

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

/// <summary>
/// A stat's name as a shared prefix and a suffix (<c>"cluster.a." + "upstream_rq_total"</c>). Two names are equal when
/// their concatenations are, however they are split, so a lookup by the whole name finds a stat made from parts.
/// </summary>
internal readonly struct StatName : IEquatable<StatName>
{
    private static readonly uint s_seed = (uint)Random.Shared.Next();
    private readonly string _prefix;
    private readonly string _suffix;

    public StatName(string prefix, string suffix)
    {
        _prefix = prefix;
        _suffix = suffix;
    }

    public int Length => _prefix.Length + _suffix.Length;

    private char this[int i] => i < _prefix.Length ? _prefix[i] : _suffix[i - _prefix.Length];

    public bool Equals(StatName other)
    {
        if (Length != other.Length) return false;
        if (_prefix.Length == other._prefix.Length)
            return string.Equals(_prefix, other._prefix, StringComparison.Ordinal) && string.Equals(_suffix, other._suffix, StringComparison.Ordinal);
        for (var i = 0; i < Length; i++)
            if (this[i] != other[i]) return false;
        return true;
    }

    public override bool Equals(object? obj) => obj is StatName n && Equals(n);

    /// <summary>FNV-1a over the characters of both parts (seeded per process), so any split hashes alike.</summary>
    public override int GetHashCode()
    {
        var h = 2166136261u ^ s_seed;
        foreach (var c in _prefix) h = (h ^ c) * 16777619u;
        foreach (var c in _suffix) h = (h ^ c) * 16777619u;
        return (int)h;
    }

    public override string ToString() => _suffix.Length == 0 ? _prefix : string.Concat(_prefix, _suffix);
}
