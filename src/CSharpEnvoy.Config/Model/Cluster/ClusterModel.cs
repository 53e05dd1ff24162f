using CSharpEnvoy.Config.Model.Listener;

namespace CSharpEnvoy.Config.Model.Cluster;

internal enum DiscoveryType { Static = 0, StrictDns = 1, LogicalDns = 2, Eds = 3, OriginalDst = 4 }

internal enum LbPolicy { RoundRobin = 0, LeastRequest = 1, RingHash = 2, Random = 3, Maglev = 5, ClusterProvided = 6, LoadBalancingPolicyConfig = 7 }

internal enum DnsLookupFamily { Auto = 0, V4Only = 1, V6Only = 2, V4Preferred = 3, All = 4 }

internal enum UpstreamProtocol { Http1, Http2, UseDownstream }

internal sealed record LocalityModel(string Region, string Zone, string SubZone)
{
    public static readonly LocalityModel Empty = new("", "", "");
}

/// <summary>One configured upstream endpoint (for DNS clusters, a name still to resolve). <see cref="Priority"/> and
/// <see cref="LocalityWeight"/> come from its <c>LocalityLbEndpoints</c> (the weight is null when unset).</summary>
internal sealed record EndpointModel(SocketAddressModel Address, string? Hostname, LocalityModel Locality, uint Weight = 1,
    EndpointHealthStatus HealthStatus = EndpointHealthStatus.Unknown, bool DisableActiveHealthCheck = false,
    uint Priority = 0, uint? LocalityWeight = null)
{
    /// <summary><c>health_check_config.port_value</c>: active health checks go to this port (0: the endpoint's).</summary>
    public uint HealthCheckPort { get; init; }
    /// <summary><c>health_check_config.hostname</c>: the Host of this endpoint's HTTP/gRPC health checks.</summary>
    public string? HealthCheckHostname { get; init; }
}

/// <summary>
/// A <c>ClusterLoadAssignment</c>'s endpoints with its <c>policy</c>: Envoy's overprovisioning factor (default 140)
/// and <c>weighted_priority_health</c>. A list, so code that only needs the endpoints reads it as one.
/// </summary>
internal sealed class LoadAssignmentModel : List<EndpointModel>
{
    public const uint DefaultOverprovisioningFactor = 140;

    public uint OverprovisioningFactor { get; init; } = DefaultOverprovisioningFactor;
    public bool WeightedPriorityHealth { get; init; }
}

/// <summary>A validated cluster as configured; the data plane builds the live host set from it.</summary>
internal sealed record ClusterModel
{
    public required string Name { get; init; }
    public DiscoveryType Type { get; init; }
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>The upstream <c>HttpProtocolOptions.common_http_protocol_options.idle_timeout</c>: a pooled connection
    /// idle that long closes (Envoy's default 1 h; <see cref="Timeout.InfiniteTimeSpan"/> when set to 0).</summary>
    public TimeSpan UpstreamIdleTimeout { get; init; } = TimeSpan.FromHours(1);
    /// <summary><c>max_requests_per_connection</c> (common_http_protocol_options, or the deprecated cluster field): an
    /// upstream connection closes after this many requests; 0 for no limit.</summary>
    public int MaxRequestsPerConnection { get; init; }
    public LbPolicy LbPolicy { get; init; }
    public LoadBalancerConfigModel LoadBalancer { get; init; } = LoadBalancerConfigModel.Default;
    public required IReadOnlyList<EndpointModel> Endpoints { get; init; }
    public TimeSpan DnsRefreshRate { get; init; } = TimeSpan.FromSeconds(5);
    public DnsLookupFamily DnsLookupFamily { get; init; }
    public UpstreamProtocol Protocol { get; init; } = UpstreamProtocol.Http1;
    public int? Http2InitialStreamWindowSize { get; init; }
    /// <summary>The cluster's <c>envoy.transport_sockets.tls</c> settings; null for cleartext upstreams.</summary>
    public global::CSharpEnvoy.Config.Model.Tls.UpstreamTlsModel? Tls { get; init; }
    /// <summary>Active health checkers (Envoy allows one; csenvoy refuses more).</summary>
    public HealthCheckModel? HealthCheck { get; init; }
    /// <summary>Envoy's <c>ignore_health_on_host_removal</c>: a host that service discovery removed goes at once, even
    /// while its active health check passes (false, the default: it stays until the check fails).</summary>
    public bool IgnoreHealthOnHostRemoval { get; init; }
    public OutlierDetectionModel? OutlierDetection { get; init; }
    public CircuitBreakersModel CircuitBreakers { get; init; } = CircuitBreakersModel.Default;
    /// <summary>The thresholds for routes with <c>priority: HIGH</c> (Envoy's defaults when unset).</summary>
    public CircuitBreakersModel CircuitBreakersHigh { get; init; } = CircuitBreakersModel.Default;
    public Google.Protobuf.IMessage? Source { get; init; }
    /// <summary>For <c>type: EDS</c>: the EDS resource name (<c>eds_cluster_config.service_name</c>, else the cluster name).</summary>
    public string? EdsServiceName { get; init; }
    /// <summary>For <c>type: EDS</c>: where the assignment comes from (<c>eds_config</c>).</summary>
    public global::CSharpEnvoy.Config.Model.Xds.ConfigSourceModel? EdsConfig { get; init; }
    /// <summary>For <c>type: EDS</c>: how long the cluster warms waiting for its first assignment (infinite for 0).</summary>
    public TimeSpan EdsInitialFetchTimeout => EdsConfig?.InitialFetchTimeout ?? TimeSpan.FromSeconds(15);
}
