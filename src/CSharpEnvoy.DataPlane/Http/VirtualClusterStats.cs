using System.Collections.Concurrent;
using CSharpEnvoy.Config.Model.RouteConfiguration;
using CSharpEnvoy.DataPlane.Stats;

namespace CSharpEnvoy.DataPlane.Http;

/// <summary>Envoy's <c>vhost.&lt;vhost&gt;.vcluster.&lt;vcluster&gt;.*</c> stats of one virtual cluster.</summary>
internal sealed class VirtualClusterStats
{
    private readonly Counter[] _byClass = new Counter[6];
    private readonly ConcurrentDictionary<int, Counter> _byCode = new();
    private readonly StatsStore _store;
    private readonly string _prefix;

    public VirtualClusterStats(StatsStore store, string vhost, string vcluster)
    {
        _store = store;
        _prefix = "vhost." + vhost + ".vcluster." + vcluster + ".";
        UpstreamRqTotal = store.Counter(_prefix, "upstream_rq_total");
        UpstreamRqCompleted = store.Counter(_prefix, "upstream_rq_completed");
        UpstreamRqTime = store.Histogram(_prefix, "upstream_rq_time");
        for (var c = 1; c <= 5; c++) _byClass[c] = store.Counter(_prefix + $"upstream_rq_{c}xx");
    }

    public Counter UpstreamRqTotal { get; }
    public Counter UpstreamRqCompleted { get; }
    public Histogram UpstreamRqTime { get; }

    /// <summary>Charges a finished upstream request: completed, its code, its class and its time.</summary>
    public void Charge(int code, double milliseconds)
    {
        UpstreamRqCompleted.Inc();
        var c = code / 100;
        if ((uint)c is >= 1 and <= 5) _byClass[c].Inc();
        // A code's counter is made once, the first time that code is seen.
        _byCode.GetOrAdd(code, static (k, s) => s._store.Counter(s._prefix + "upstream_rq_" + k.ToString(System.Globalization.CultureInfo.InvariantCulture)), this).Inc();
        UpstreamRqTime.Record(milliseconds);
    }

    /// <summary>The virtual cluster a request belongs to (the first whose headers all match; else Envoy's "other"),
    /// with its stats; null when the virtual host has none.</summary>
    public static VirtualClusterStats? Find(ConcurrentDictionary<VirtualClusterModel, VirtualClusterStats> cache, StatsStore store,
        VirtualHostModel vhost, RequestView request)
    {
        var vcs = vhost.VirtualClusters;
        if (vcs.Count == 0) return null;
        VirtualClusterModel match = vcs[^1];
        for (var i = 0; i < vcs.Count - 1; i++)
        {
            var all = true;
            foreach (var h in vcs[i].Headers)
                if (!h.Match(request.GetHeader(h.Name))) { all = false; break; }
            if (!all) continue;
            match = vcs[i];
            break;
        }
        return cache.TryGetValue(match, out var stats) ? stats
            : cache.GetOrAdd(match, static (m, s) => new VirtualClusterStats(s.store, s.vhost, m.Name), (store, vhost: vhost.Name));
    }
}
