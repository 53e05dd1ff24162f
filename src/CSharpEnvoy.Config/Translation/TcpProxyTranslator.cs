using CSharpEnvoy.Config.Loading;
using CSharpEnvoy.Config.Model.Listener;
using Envoy.Extensions.Filters.Network.TcpProxy.V3;

namespace CSharpEnvoy.Config.Translation;

/// <summary>Validates <c>envoy.filters.network.tcp_proxy</c>.</summary>
internal static class TcpProxyTranslator
{
    public static TcpProxyModel Translate(TcpProxy t, string path, ConfigErrors errors, Func<string, bool>? clusterExists)
    {
        if (string.IsNullOrEmpty(t.StatPrefix)) errors.Add(path + ".stat_prefix", "stat_prefix is required");
        var clusters = new List<(string, uint)>();
        switch (t.ClusterSpecifierCase)
        {
            case TcpProxy.ClusterSpecifierOneofCase.Cluster:
                Check(t.Cluster, path + ".cluster");
                clusters.Add((t.Cluster, 1));
                break;
            case TcpProxy.ClusterSpecifierOneofCase.WeightedClusters:
                var wc = t.WeightedClusters.Clusters;
                if (wc.Count == 0) errors.Add(path + ".weighted_clusters.clusters", "weighted_clusters needs at least one cluster");
                for (var i = 0; i < wc.Count; i++)
                {
                    var cPath = $"{path}.weighted_clusters.clusters[{i}]";
                    Check(wc[i].Name, cPath + ".name");
                    if (wc[i].Weight == 0) errors.Add(cPath + ".weight", "weight must be at least 1");
                    clusters.Add((wc[i].Name, wc[i].Weight));
                }
                break;
            default:
                errors.Add(path, "one of cluster or weighted_clusters is required");
                break;
        }
        var attempts = 1;
        if (t.MaxConnectAttempts is uint a)
        {
            if (a < 1) errors.Add(path + ".max_connect_attempts", "max_connect_attempts must be at least 1");
            attempts = (int)Math.Max(1, Math.Min(a, 100));
        }
        TimeSpan? idle = TimeSpan.FromHours(1);
        if (t.IdleTimeout is not null) idle = t.IdleTimeout.ToTimeSpan() <= TimeSpan.Zero ? null : t.IdleTimeout.ToTimeSpan();
        // Envoy takes at most one hash policy here; filter_state is refused by the support checker.
        if (t.HashPolicy.Count > 1) errors.Add(path + ".hash_policy", "at most one hash_policy entry is allowed");
        var hashSourceIp = false;
        for (var i = 0; i < t.HashPolicy.Count; i++)
        {
            if (t.HashPolicy[i].PolicySpecifierCase == Envoy.Type.V3.HashPolicy.PolicySpecifierOneofCase.SourceIp) hashSourceIp = true;
            else if (t.HashPolicy[i].PolicySpecifierCase == Envoy.Type.V3.HashPolicy.PolicySpecifierOneofCase.None)
                errors.Add($"{path}.hash_policy[{i}]", "a hash policy needs source_ip");
        }
        return new TcpProxyModel(t.StatPrefix, clusters)
        {
            IdleTimeout = idle,
            MaxConnectAttempts = attempts,
            AccessLogs = AccessLogTranslator.Translate(t.AccessLog, path + ".access_log", errors),
            HashSourceIp = hashSourceIp,
        };

        void Check(string name, string p)
        {
            // As Envoy, an unknown cluster is not a config error: connections are closed (downstream_cx_no_route) until it exists.
            if (string.IsNullOrEmpty(name)) errors.Add(p, "a cluster name is required");
        }
    }
}
