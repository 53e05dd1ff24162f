namespace CSharpEnvoy.Config.Model.Cluster;

internal enum LeastRequestSelection { NChoices = 0, FullScan = 1 }

/// <summary>How localities are balanced: zone-aware routing (Envoy's default, active only with a local cluster) or
/// locality-weighted balancing (<c>locality_weighted_lb_config</c>, <c>wrr_locality</c>).</summary>
internal enum LocalityLbMode { ZoneAware = 0, LocalityWeighted = 1 }

/// <summary>Envoy's <c>ZoneAwareLbConfig</c> with its defaults.</summary>
internal sealed record ZoneAwareModel
{
    public static readonly ZoneAwareModel Default = new();

    /// <summary><c>routing_enabled</c>, as a rounded integer percentage (default 100).</summary>
    public uint RoutingEnabledPercent { get; init; } = 100;
    public ulong MinClusterSize { get; init; } = 6;
    public bool FailTrafficOnPanic { get; init; }
    /// <summary><c>locality_basis: HEALTHY_HOSTS_WEIGHT</c>: locality shares by host weight instead of host count.</summary>
    public bool BasisIsWeight { get; init; }
    /// <summary><c>force_local_zone.min_size</c> (default 1 when <c>force_local_zone</c> is set).</summary>
    public uint? ForceLocalZoneMinSize { get; init; }
}

/// <summary>
/// The cluster's load balancer and its settings, from <c>lb_policy</c> plus its <c>*_lb_config</c>, or from the
/// first supported entry of <c>load_balancing_policy</c>. Defaults are Envoy's.
/// </summary>
internal sealed record LoadBalancerConfigModel
{
    public static readonly LoadBalancerConfigModel Default = new();

    /// <summary>One of RoundRobin, LeastRequest, Random, RingHash, Maglev.</summary>
    public LbPolicy Policy { get; init; } = LbPolicy.RoundRobin;
    public uint ChoiceCount { get; init; } = 2;
    public double ActiveRequestBias { get; init; } = 1.0;
    public LeastRequestSelection Selection { get; init; }
    public ulong MinimumRingSize { get; init; } = 1024;
    public ulong MaximumRingSize { get; init; } = 8 * 1024 * 1024;
    public ulong MaglevTableSize { get; init; } = 65537;
    public bool UseHostnameForHashing { get; init; }
    /// <summary><c>common_lb_config.healthy_panic_threshold</c> as Envoy rounds it: an integer percentage, default 50.</summary>
    public uint HealthyPanicThreshold { get; init; } = 50;
    public LocalityLbMode LocalityMode { get; init; }
    public ZoneAwareModel ZoneAware { get; init; } = ZoneAwareModel.Default;
    /// <summary>The extension name when configured through <c>load_balancing_policy</c> (for logs and docs).</summary>
    public string? ExtensionName { get; init; }
}
