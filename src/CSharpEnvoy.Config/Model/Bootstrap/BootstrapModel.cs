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
    /// <summary>The bootstrap as loaded (after --config-yaml merge), for /config_dump.</summary>
    public required Envoy.Config.Bootstrap.V3.Bootstrap Source { get; init; }
}
