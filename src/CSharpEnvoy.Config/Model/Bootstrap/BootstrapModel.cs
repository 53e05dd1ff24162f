using CSharpEnvoy.Config.Model.Cluster;
using CSharpEnvoy.Config.Model.Listener;

namespace CSharpEnvoy.Config.Model.Bootstrap;

internal sealed record NodeModel(string Id, string Cluster, LocalityModel Locality);

/// <summary>The validated, translated bootstrap: what the server starts with.</summary>
internal sealed record BootstrapModel
{
    public required NodeModel Node { get; init; }
    public SocketAddressModel? AdminAddress { get; init; }
    public required IReadOnlyList<ListenerModel> Listeners { get; init; }
    public required IReadOnlyList<ClusterModel> Clusters { get; init; }
    /// <summary>The bootstrap's <c>dynamic_resources</c> (ADS), null when everything is static.</summary>
    public CSharpEnvoy.Config.Model.Xds.XdsModel? Xds { get; init; }
    /// <summary>StatsD / DogStatsD sinks and how often they are flushed (Envoy's default: 5 s).</summary>
    public IReadOnlyList<CSharpEnvoy.Config.Model.Stats.StatsSinkModel> StatsSinks { get; init; } = Array.Empty<CSharpEnvoy.Config.Model.Stats.StatsSinkModel>();
    public TimeSpan StatsFlushInterval { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary><c>cluster_manager.local_cluster_name</c>: the cluster of this proxy's own fleet, for zone-aware routing.</summary>
    public string? LocalClusterName { get; init; }
    /// <summary>The bootstrap's <c>stats_config</c>: tag extraction and which stats exist.</summary>
    public CSharpEnvoy.Config.Model.Stats.StatsConfigModel StatsConfig { get; init; } = CSharpEnvoy.Config.Model.Stats.StatsConfigModel.Default;
    /// <summary><c>static_resources.secrets</c>: secrets an <c>SdsSecretConfig</c> without <c>sds_config</c> names.</summary>
    public IReadOnlyList<CSharpEnvoy.Config.Model.Tls.SecretModel> StaticSecrets { get; init; } = Array.Empty<CSharpEnvoy.Config.Model.Tls.SecretModel>();
    /// <summary>The bootstrap as loaded (after --config-yaml merge), for /config_dump.</summary>
    public required Envoy.Config.Bootstrap.V3.Bootstrap Source { get; init; }
}
