using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
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

    public void Add(long n)
    {
        Interlocked.Add(ref _value, n);
        if (_used == 0) _used = 1;
    }

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
    /// <summary>Stats grouped by the part of their name up to the last dot (<c>"cluster.a."</c>): one entry per
    /// group here instead of one per stat, so 10,000 clusters' half a million stats are 40,000 small tables that are
    /// filled without contention, not one huge concurrent table that every collection has to scan.</summary>
    private readonly ConcurrentDictionary<string, StatBlock> _blocks = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, StatBlock>.AlternateLookup<ReadOnlySpan<char>> _blocksBySpan;
    private readonly StatsMatcherModel? _matcher;

    public StatsStore(StatsConfigModel? config = null)
    {
        config ??= StatsConfigModel.Default;
        _matcher = config.Matcher;
        Tags = TagProducer.Create(config);
        _blocksBySpan = _blocks.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    /// <summary>Tag extraction for Prometheus and DogStatsD, as stats_config configures it.</summary>
    public TagProducer Tags { get; }

    public Counter Counter(string name) => Counter(name, "");
    public Gauge Gauge(string name) => Gauge(name, "");
    public Histogram Histogram(string name) => Histogram(name, "");

    /// <summary>The stat <paramref name="prefix"/> + <paramref name="suffix"/>, kept as the two parts: the many stats
    /// of a cluster or listener share one prefix string and literal suffixes instead of a name string each. The
    /// same stat however the name is split.</summary>
    public Counter Counter(string prefix, string suffix) =>
        Get(prefix, suffix, static b => b.Counters ??= new(), static (name, _, _) => new Counter(name));

    public Gauge Gauge(string prefix, string suffix) =>
        Get(prefix, suffix, static b => b.Gauges ??= new(), static (name, _, _) => new Gauge(name));

    public Histogram Histogram(string prefix, string suffix) =>
        Get(prefix, suffix, static b => b.Histograms ??= new(),
            static (name, store, kept) => kept ? new Histogram(name, store) : new Histogram(name));

    /// <summary>A set of counters under one prefix ending in a dot (a cluster's fixed stats), made together: one block
    /// lookup and one lock for all, and no name table of their own: the block keeps them in an array beside one
    /// suffix → position table shared by every prefix made from the same <paramref name="suffixes"/> array (10,000
    /// clusters share one). Suffixes have no dot. Same stats as one by one.</summary>
    public Counter[] CounterSet(string prefix, string[] suffixes) =>
        GetMany(prefix, suffixes, static b => b.Counters ??= new(), static (name, _, _) => new Counter(name));

    /// <summary>Gauges made together, as <see cref="CounterSet"/>.</summary>
    public Gauge[] GaugeSet(string prefix, string[] suffixes) =>
        GetMany(prefix, suffixes, static b => b.Gauges ??= new(), static (name, _, _) => new Gauge(name));

    private T[] GetMany<T>(string prefix, string[] suffixes, Func<StatBlock, StatTable<T>> tableOf, Func<StatName, StatsStore, bool, T> create)
        where T : class
    {
        var stats = new T[suffixes.Length];
        if (prefix.Length == 0 || prefix[^1] != '.')
        {
            for (var i = 0; i < stats.Length; i++) stats[i] = Get(prefix, suffixes[i], tableOf, create);
            return stats;
        }
        var block = Block(prefix);
        lock (block)
        {
            var table = tableOf(block);
            var anyExists = false;
            foreach (var suffix in suffixes)
            {
                if (suffix.Contains('.')) throw new ArgumentException($"stat suffix '{suffix}' has a dot", nameof(suffixes));
                anyExists |= table.TryGet(suffix, out _);
            }
            if (!anyExists)
            {
                // The common case: a fresh prefix. The stats go in one array; the shared table finds them by name.
                var kept = new T?[suffixes.Length];
                for (var i = 0; i < stats.Length; i++)
                {
                    var name = new StatName(prefix, suffixes[i]);
                    var accepted = Accepts(name);
                    stats[i] = create(name, this, accepted);
                    if (accepted) kept[i] = stats[i];
                }
                table.AddSet(s_setIndexes.GetValue(suffixes, SetIndex), kept);
                return stats;
            }
            for (var i = 0; i < stats.Length; i++)
            {
                var suffix = suffixes[i];
                if (!table.TryGet(suffix, out var stat))
                {
                    var name = new StatName(prefix, suffix);
                    var accepted = Accepts(name);
                    stat = create(name, this, accepted);
                    if (accepted) table.Add(suffix, stat);
                }
                stats[i] = stat;
            }
        }
        return stats;
    }

    /// <summary>Suffix → position in a set, one per suffix array (held as long as the array lives).</summary>
    private static readonly ConditionalWeakTable<string[], Dictionary<string, int>> s_setIndexes = new();

    private static Dictionary<string, int> SetIndex(string[] suffixes)
    {
        var index = new Dictionary<string, int>(suffixes.Length, StringComparer.Ordinal);
        for (var i = 0; i < suffixes.Length; i++)
            if (!index.TryAdd(suffixes[i], i)) throw new ArgumentException($"stat suffix '{suffixes[i]}' appears twice", nameof(suffixes));
        return index;
    }

    /// <summary>The stored stat of that name, or a new one: stored unless the stats matcher rejects the name (then it
    /// is handed out detached, and made with <c>kept</c> false).</summary>
    private T Get<T>(string prefix, string suffix, Func<StatBlock, StatTable<T>> tableOf, Func<StatName, StatsStore, bool, T> create)
        where T : class
    {
        var (block, leaf) = Locate(prefix, suffix);
        lock (block)
        {
            var table = tableOf(block);
            if (table.TryGet(leaf, out var stat)) return stat;
            var name = new StatName(prefix, suffix);
            var kept = Accepts(name);
            stat = create(name, this, kept);
            if (kept) table.Add(leaf, stat);
            return stat;
        }
    }

    /// <summary>The block of the name's part up to its last dot, and the rest. Whoever splits the name, the split
    /// used for storage is this one; the common call (prefix ending in a dot, suffix without one) allocates nothing
    /// once the block exists.</summary>
    private (StatBlock Block, string Leaf) Locate(string prefix, string suffix)
    {
        var dot = suffix.LastIndexOf('.');
        if (dot >= 0)
        {
            // "cluster.a." + "ssl.handshake": the block is "cluster.a.ssl.".
            var blockName = string.Concat(prefix, suffix.AsSpan(0, dot + 1));
            return (Block(blockName), suffix[(dot + 1)..]);
        }
        if (prefix.Length == 0 || prefix[^1] == '.') return (Block(prefix), suffix);
        // "cluster.a.upstream_" + "rq_total", or a whole name in the prefix.
        var cut = prefix.LastIndexOf('.');
        return (BlockOf(prefix.AsSpan(0, cut + 1)), string.Concat(prefix.AsSpan(cut + 1), suffix));
    }

    private StatBlock Block(string blockName) =>
        _blocks.TryGetValue(blockName, out var b) ? b : _blocks.GetOrAdd(blockName, static _ => new StatBlock());

    private StatBlock BlockOf(ReadOnlySpan<char> blockName) =>
        _blocksBySpan.TryGetValue(blockName, out var b) ? b : _blocks.GetOrAdd(blockName.ToString(), static _ => new StatBlock());

    private bool Accepts(StatName name) => _matcher is null || _matcher.Accepts(name.ToString());

    /// <summary>Set by stat sinks that want each histogram value as it is recorded.</summary>
    public volatile Action<Histogram, double>? HistogramObserver;

    // Enumeration copies each block's stats under its lock: admin and sinks read while config adds.
    public IEnumerable<Counter> Counters => Snapshot(static b => b.Counters);
    public IEnumerable<Gauge> Gauges => Snapshot(static b => b.Gauges);
    public IEnumerable<Histogram> Histograms => Snapshot(static b => b.Histograms);

    private List<T> Snapshot<T>(Func<StatBlock, StatTable<T>?> of) where T : class
    {
        var all = new List<T>();
        foreach (var block in _blocks.Values)
            lock (block)
                of(block)?.AddTo(all);
        return all;
    }

    public void ResetCounters()
    {
        // Envoy's /reset_counters touches counters only.
        foreach (var c in Counters) c.Reset();
    }

    /// <summary>The stats of one name prefix, by the rest of their name; guarded by its own lock (config time and
    /// admin only: the request path holds its stats directly).</summary>
    private sealed class StatBlock
    {
        public StatTable<Counter>? Counters;
        public StatTable<Gauge>? Gauges;
        public StatTable<Histogram>? Histograms;
    }

    /// <summary>One kind of stat of a block: sets made together (an array each, found through the table shared by
    /// their suffix array; null slots for names the stats matcher rejected) and the ones made one by one.</summary>
    private sealed class StatTable<T> where T : class
    {
        private (Dictionary<string, int> Index, T?[] Stats)[]? _sets;
        private Dictionary<string, T>? _byName;

        public bool TryGet(string leaf, [NotNullWhen(true)] out T? stat)
        {
            if (_sets is not null)
                foreach (var (index, stats) in _sets)
                    if (index.TryGetValue(leaf, out var i) && stats[i] is { } s)
                    {
                        stat = s;
                        return true;
                    }
            stat = null;
            return _byName is not null && _byName.TryGetValue(leaf, out stat);
        }

        public void Add(string leaf, T stat) => (_byName ??= new(StringComparer.Ordinal)).Add(leaf, stat);

        public void AddSet(Dictionary<string, int> index, T?[] stats) => _sets = _sets is null ? [(index, stats)] : [.. _sets, (index, stats)];

        public void AddTo(List<T> all)
        {
            if (_sets is not null)
                foreach (var (_, stats) in _sets)
                    foreach (var s in stats)
                        if (s is not null) all.Add(s);
            if (_byName is not null) all.AddRange(_byName.Values);
        }
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
