namespace CSharpEnvoy.Config.Model.Listener;

/// <summary><c>envoy.filters.network.tcp_proxy</c>: bytes both ways between the downstream connection and a host of
/// the chosen cluster. <see cref="Clusters"/> has one entry (weight 1) for <c>cluster</c>, several for
/// <c>weighted_clusters</c>.</summary>
internal sealed record TcpProxyModel(string StatPrefix, IReadOnlyList<(string Name, uint Weight)> Clusters)
{
    /// <summary>Envoy's default is one hour; null disables it (an explicit 0s).</summary>
    public TimeSpan? IdleTimeout { get; init; } = TimeSpan.FromHours(1);
    public int MaxConnectAttempts { get; init; } = 1;
    /// <summary>Envoy's TCP access log: one entry per connection, written when it closes.</summary>
    public IReadOnlyList<AccessLog.AccessLogModel> AccessLogs { get; init; } = Array.Empty<AccessLog.AccessLogModel>();
    /// <summary><c>hash_policy: [{ source_ip: {} }]</c>: ring hash and maglev clusters hash the downstream address.</summary>
    public bool HashSourceIp { get; init; }
}
