namespace CSharpEnvoy.Config.Model.Listener;

/// <summary><c>envoy.filters.network.tcp_proxy</c>: bytes both ways between the downstream connection and a host of
/// the chosen cluster. <see cref="Clusters"/> has one entry (weight 1) for <c>cluster</c>, several for
/// <c>weighted_clusters</c>.</summary>
internal sealed record TcpProxyModel(string StatPrefix, IReadOnlyList<(string Name, uint Weight)> Clusters)
{
    /// <summary>Envoy's default is one hour; null disables it (an explicit 0s).</summary>
    public TimeSpan? IdleTimeout { get; init; } = TimeSpan.FromHours(1);
    public int MaxConnectAttempts { get; init; } = 1;
}
