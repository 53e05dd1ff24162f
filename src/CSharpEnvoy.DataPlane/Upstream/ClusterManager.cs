using System.Collections.Frozen;
using CSharpEnvoy.Config.Model.Cluster;
using CSharpEnvoy.DataPlane.Stats;
using Microsoft.Extensions.Logging;

namespace CSharpEnvoy.DataPlane.Upstream;

/// <summary>
/// Owns every live <see cref="Cluster"/>. The name → cluster map is an immutable snapshot replaced whole when
/// clusters are added or removed; a request reads it once.
/// </summary>
internal sealed class ClusterManager : IDisposable
{
    private volatile FrozenDictionary<string, Cluster> _clusters = FrozenDictionary<string, Cluster>.Empty;
    private readonly StatsStore _stats;
    private readonly ILoggerFactory _loggers;

    public ClusterManager(StatsStore stats, ILoggerFactory loggers)
    {
        _stats = stats;
        _loggers = loggers;
        ActiveClusters = stats.Gauge("cluster_manager.active_clusters");
        ClusterAdded = stats.Counter("cluster_manager.cluster_added");
        ClusterRemoved = stats.Counter("cluster_manager.cluster_removed");
    }

    public Gauge ActiveClusters { get; }
    public Counter ClusterAdded { get; }
    public Counter ClusterRemoved { get; }

    public FrozenDictionary<string, Cluster> Clusters => _clusters;

    /// <summary>Time and randomness for health checking and outlier detection (tests inject a manual clock).</summary>
    internal UpstreamServices Services { get; set; } = UpstreamServices.Default;

    public Cluster? Get(string name) => _clusters.GetValueOrDefault(name);

    /// <summary><c>cluster_manager.local_cluster_name</c>: every cluster's zone-aware routing compares with it.</summary>
    internal string? LocalClusterName { get; set; }

    /// <summary>Creates the static clusters and waits until DNS clusters have their first answer (Envoy's cluster warming).</summary>
    public async Task InitializeAsync(IReadOnlyList<ClusterModel> models, CancellationToken ct)
    {
        var map = new Dictionary<string, Cluster>(StringComparer.Ordinal);
        foreach (var m in models)
        {
            map[m.Name] = new Cluster(m, _stats, _loggers.CreateLogger("upstream"), Services);
            ClusterAdded.Inc();
        }
        _clusters = map.ToFrozenDictionary(StringComparer.Ordinal);
        ActiveClusters.Set(map.Count);
        WireLocalCluster(map.Values, map);
        var inits = new List<Task>();
        foreach (var c in map.Values) inits.Add(c.InitializeAsync(ct));
        await Task.WhenAll(inits).ConfigureAwait(false);
    }

    /// <summary>xDS: adds or replaces <paramref name="upserts"/> and removes <paramref name="removals"/> in one swap of
    /// the map. Returns the clusters that left the map; the caller disposes them once in-flight requests are done
    /// (a request holds its <see cref="Cluster"/> reference).</summary>
    internal List<Cluster> Update(IReadOnlyCollection<Cluster> upserts, IReadOnlyCollection<string> removals)
    {
        lock (_updateLock)
        {
            var map = new Dictionary<string, Cluster>(_clusters, StringComparer.Ordinal);
            var gone = new List<Cluster>();
            foreach (var name in removals)
                if (map.Remove(name, out var old))
                {
                    gone.Add(old);
                    ClusterRemoved.Inc();
                }
            foreach (var c in upserts)
            {
                if (map.TryGetValue(c.Name, out var old))
                {
                    if (ReferenceEquals(old, c)) continue;
                    gone.Add(old);
                    ClusterModified.Inc();
                }
                else ClusterAdded.Inc();
                map[c.Name] = c;
            }
            _clusters = map.ToFrozenDictionary(StringComparer.Ordinal);
            ActiveClusters.Set(map.Count);
            // A new local cluster rewires every cluster; otherwise only the new ones need it.
            var localReplaced = LocalClusterName is { } ln && upserts.Any(c => c.Name == ln);
            WireLocalCluster(localReplaced ? map.Values : upserts, map);
            return gone;
        }
    }

    private readonly object _updateLock = new();

    private Counter? _clusterModified;
    private Counter ClusterModified => _clusterModified ??= _stats.Counter("cluster_manager.cluster_modified");

    private void WireLocalCluster(IEnumerable<Cluster> clusters, Dictionary<string, Cluster> map)
    {
        if (LocalClusterName is null) return;
        var local = map.GetValueOrDefault(LocalClusterName);
        foreach (var c in clusters) c.UseLocalCluster(local);
    }

    /// <summary>Creates a cluster (not yet in the map) the way static ones are made.</summary>
    internal Cluster Create(ClusterModel model) => new(model, _stats, _loggers.CreateLogger("upstream"), Services);

    public void Dispose()
    {
        foreach (var c in _clusters.Values) c.Dispose();
    }
}
