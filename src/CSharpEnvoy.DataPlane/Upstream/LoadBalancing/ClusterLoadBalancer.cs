using CSharpEnvoy.Config.Model.Cluster;
using CSharpEnvoy.DataPlane.Stats;

namespace CSharpEnvoy.DataPlane.Upstream.LoadBalancing;

/// <summary>Envoy's cluster load balancer stats (<c>cluster.&lt;name&gt;.lb_*</c>), all created up front as Envoy does.</summary>
internal sealed class LbStats
{
    private static readonly string[] s_counters =
    [
        "lb_healthy_panic", "lb_local_cluster_not_ok", "lb_recalculate_zone_structures", "lb_zone_cluster_too_small",
        "lb_zone_no_capacity_left",
        // Envoy keeps this stat though current versions route across differing zone counts and never bump it.
        "lb_zone_number_differs",
        "lb_zone_routing_all_directly", "lb_zone_routing_cross_zone", "lb_zone_routing_sampled",
    ];

    public LbStats(StatsStore store, string clusterName)
    {
        var c = store.CounterSet("cluster." + clusterName + ".", s_counters);
        (LbHealthyPanic, LbLocalClusterNotOk, LbRecalculateZoneStructures, LbZoneClusterTooSmall, LbZoneNoCapacityLeft) = (c[0], c[1], c[2], c[3], c[4]);
        (LbZoneNumberDiffers, LbZoneRoutingAllDirectly, LbZoneRoutingCrossZone, LbZoneRoutingSampled) = (c[5], c[6], c[7], c[8]);
    }

    public Counter LbHealthyPanic { get; }
    public Counter LbLocalClusterNotOk { get; }
    public Counter LbRecalculateZoneStructures { get; }
    public Counter LbZoneClusterTooSmall { get; }
    public Counter LbZoneNoCapacityLeft { get; }
    public Counter LbZoneNumberDiffers { get; }
    public Counter LbZoneRoutingAllDirectly { get; }
    public Counter LbZoneRoutingCrossZone { get; }
    public Counter LbZoneRoutingSampled { get; }
}

/// <summary>
/// A cluster's whole pick: priority (by the set's healthy/degraded load), then panic, locality-weighted or zone-aware
/// locality, giving a <see cref="HostsSource"/>; the endpoint-picking balancer (round robin, least request, random)
/// picks the host in it. Ring hash and maglev choose the priority from the request hash and look up that priority's
/// table, as Envoy's thread-aware balancers do. No locks, no allocation.
/// </summary>
internal sealed class ClusterLoadBalancer
{
    private readonly ILoadBalancer _picker;
    private readonly LbRandom _random;
    private readonly LbStats _stats;
    private readonly bool _localityWeighted;
    private readonly bool _failTrafficOnPanic;
    private readonly uint _routingEnabled;

    public ClusterLoadBalancer(LoadBalancerConfigModel config, LbRandom random, LbStats stats)
    {
        _picker = LoadBalancerFactory.Create(config, random);
        _random = random;
        _stats = stats;
        _localityWeighted = config.LocalityMode == LocalityLbMode.LocalityWeighted;
        _failTrafficOnPanic = config.LocalityMode == LocalityLbMode.ZoneAware && config.ZoneAware.FailTrafficOnPanic;
        _routingEnabled = config.ZoneAware.RoutingEnabledPercent;
    }

    public bool UsesHash => _picker.UsesHash;

    public Host? ChooseHost(PrioritySet ps, in LoadBalancerContext context)
    {
        if (_picker.UsesHash)
        {
            var h = context.HasHash ? context.Hash : _random.Next();
            var p = PriorityLoad.ChoosePriority(h, ps.HealthyPriorityLoad, ps.DegradedPriorityLoad, out _);
            if (ps.PerPriorityPanic[p]) _stats.LbHealthyPanic.Inc();
            return _picker.ChooseHost(ps.HashSources[p], context);
        }
        var source = HostsSourceToUse(ps);
        return source is null ? null : _picker.ChooseHost(source, context);
    }

    /// <summary>Builds the balancer tables of the sources picks start from, before requests see the set.</summary>
    public void Prepare(PrioritySet ps)
    {
        if (_picker.UsesHash)
        {
            foreach (var s in ps.HashSources) _picker.Prepare(s);
            return;
        }
        foreach (var hs in ps.HostSetsPerPriority) _picker.Prepare(hs.Healthy);
    }

    /// <summary>Envoy's <c>hostSourceToUse</c>.</summary>
    private HostsSource? HostsSourceToUse(PrioritySet ps)
    {
        var p = PriorityLoad.ChoosePriority(_random.Next(), ps.HealthyPriorityLoad, ps.DegradedPriorityLoad, out var degraded);
        var hs = ps.HostSetsPerPriority[p];
        if (ps.PerPriorityPanic[p])
        {
            _stats.LbHealthyPanic.Inc();
            return _failTrafficOnPanic ? null : hs.All;
        }
        if (_localityWeighted)
        {
            var locality = degraded ? hs.ChooseDegradedLocality() : hs.ChooseHealthyLocality();
            if (locality >= 0) return degraded ? hs.DegradedPerLocality[locality] : hs.HealthyPerLocality[locality];
        }
        if (p != 0 || ps.ZoneRouting == LocalityRouting.NoLocalityRouting) return degraded ? hs.Degraded : hs.Healthy;
        if (_routingEnabled < 100 && _random.Next() % 100 >= _routingEnabled) return degraded ? hs.Degraded : hs.Healthy;
        if (ps.LocalClusterPanic)
        {
            _stats.LbLocalClusterNotOk.Inc();
            return _failTrafficOnPanic ? null : degraded ? hs.Degraded : hs.Healthy;
        }
        var i = ZoneAwareRouting.ChooseLocality(ps, _random, _stats);
        return degraded ? hs.DegradedPerLocality[i] : hs.HealthyPerLocality[i];
    }
}
