namespace CSharpEnvoy.DataPlane.Upstream;

/// <summary>Time and randomness for everything upstream (health checking, outlier detection, load balancing),
/// injected so tests can drive intervals without sleeping and balance with a fixed seed; and this proxy's own
/// locality (<c>node.locality</c> / <c>--service-zone</c>), which orders every cluster's localities.</summary>
internal sealed record UpstreamServices(TimeProvider Time, LoadBalancing.LbRandom Random)
{
    public static readonly UpstreamServices Default = new(TimeProvider.System, LoadBalancing.LbRandom.Shared);

    public Config.Model.Cluster.LocalityModel LocalLocality { get; init; } = Config.Model.Cluster.LocalityModel.Empty;

    /// <summary>Static and SDS secrets, for clusters and listeners whose TLS contexts name secrets.</summary>
    public Tls.SecretManager? Secrets { get; init; }
}
