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

    public Cluster? Get(string name) => _clusters.GetValueOrDefault(name);

    /// <summary>Creates the static clusters and waits until DNS clusters have their first answer (Envoy's cluster warming).</summary>
    public async Task InitializeAsync(IReadOnlyList<ClusterModel> models, CancellationToken ct)
    {
        var map = new Dictionary<string, Cluster>(StringComparer.Ordinal);
        foreach (var m in models)
        {
            map[m.Name] = new Cluster(m, _stats, _loggers.CreateLogger("upstream"));
            ClusterAdded.Inc();
        }
        _clusters = map.ToFrozenDictionary(StringComparer.Ordinal);
        ActiveClusters.Set(map.Count);
        var inits = new List<Task>();
        foreach (var c in map.Values) inits.Add(c.InitializeAsync(ct));
        await Task.WhenAll(inits).ConfigureAwait(false);
    }

    public void Dispose()
    {
        foreach (var c in _clusters.Values) c.Dispose();
    }
}
