using CSharpEnvoy.Config.Model.Cluster;
using CSharpEnvoy.DataPlane.Stats;
using CSharpEnvoy.DataPlane.Upstream;
using CSharpEnvoy.DataPlane.Upstream.LoadBalancing;
using LbHost = CSharpEnvoy.DataPlane.Upstream.Host;

namespace CSharpEnvoy.IntegrationTests.LoadBalancing;

/// <summary>
/// Priorities (overprovisioning, spill-over, degraded hosts, panic), locality-weighted balancing and zone-aware
/// routing, checked against the numbers Envoy's documentation and load balancer derive, over 10,000 seeded picks.
/// </summary>
public sealed class PriorityAndZoneTests
{
    private const int Picks = 10_000;
    private static readonly LocalityModel ZoneA = new("r", "a", "");
    private static readonly LocalityModel ZoneB = new("r", "b", "");
    private static readonly LocalityModel ZoneC = new("r", "c", "");

    private static int s_next;

    private static LbHost H(LocalityModel locality, uint priority = 0, uint localityWeight = 0, uint weight = 1) =>
        LbTestHosts.Make(Interlocked.Increment(ref s_next), weight, locality, priority, localityWeight);

    private static LbHost[] Hosts(int count, LocalityModel locality, uint priority = 0, uint localityWeight = 0)
    {
        var hosts = new LbHost[count];
        for (var i = 0; i < count; i++) hosts[i] = H(locality, priority, localityWeight);
        return hosts;
    }

    private static void Fail(LbHost h) => h.SetHealthFlags(HostHealthFlags.FailedActiveHc, true);

    private static (ClusterLoadBalancer Lb, LbStats Stats) Balancer(LoadBalancerConfigModel? config = null)
    {
        var stats = new LbStats(new StatsStore(), "c");
        return (new ClusterLoadBalancer(config ?? LoadBalancerConfigModel.Default, LbRandom.Seeded(42), stats), stats);
    }

    private static double Share(ClusterLoadBalancer lb, PrioritySet ps, Func<LbHost, bool> which)
    {
        var hits = 0;
        for (var i = 0; i < Picks; i++)
            if (lb.ChooseHost(ps, LoadBalancerContext.None) is { } h && which(h)) hits++;
        return (double)hits / Picks;
    }

    [Theory]
    // Envoy's overprovisioning factor 1.4: P0 keeps all traffic down to 72% healthy, then spills to P1.
    [InlineData(0, 100, 0)]
    [InlineData(1, 100, 0)]
    [InlineData(2, 70, 30)]
    [InlineData(3, 35, 65)]
    [InlineData(4, 0, 100)]
    public void PriorityFailover_SpillsToP1_AsP0HostsGoUnhealthy(int p0Unhealthy, int p0Load, int p1Load)
    {
        var p0 = Hosts(4, ZoneA, priority: 0);
        var p1 = Hosts(4, ZoneA, priority: 1);
        for (var i = 0; i < p0Unhealthy; i++) Fail(p0[i]);
        var ps = PrioritySet.Build([.. p0, .. p1], PrioritySetOptions.Default, null, null);

        Assert.Equal([p0Load, p1Load], ps.HealthyPriorityLoad);
        Assert.Equal([0, 0], ps.DegradedPriorityLoad);
        Assert.Equal([false, false], ps.PerPriorityPanic);
        var (lb, _) = Balancer();
        Assert.InRange(Share(lb, ps, h => h.Priority == 1), p1Load / 100.0 - 0.02, p1Load / 100.0 + 0.02);
        // Only healthy hosts are ever picked.
        for (var i = 0; i < 1000; i++) Assert.True(lb.ChooseHost(ps, LoadBalancerContext.None)!.Healthy);
    }

    [Fact]
    public void OverprovisioningFactor_FromTheAssignmentPolicy()
    {
        var p0 = Hosts(4, ZoneA, priority: 0);
        var p1 = Hosts(4, ZoneA, priority: 1);
        Fail(p0[0]);
        // Factor 100: 3/4 healthy is 75% of the load, the rest spills.
        var ps = PrioritySet.Build([.. p0, .. p1], PrioritySetOptions.Default with { OverprovisioningFactor = 100 }, null, null);
        Assert.Equal([75, 25], ps.HealthyPriorityLoad);
    }

    [Fact]
    public void WeightedPriorityHealth_UsesHostWeights()
    {
        var heavy = H(ZoneA, 0, weight: 3);
        var light = H(ZoneA, 0, weight: 1);
        var p1 = H(ZoneA, 1);
        Fail(heavy);
        // By count 1/2 healthy → 70%; by weight 1/4 healthy → 35%.
        Assert.Equal([70, 30], PrioritySet.Build([heavy, light, p1], PrioritySetOptions.Default, null, null).HealthyPriorityLoad);
        Assert.Equal([35, 65], PrioritySet.Build([heavy, light, p1], PrioritySetOptions.Default with { WeightedPriorityHealth = true }, null, null).HealthyPriorityLoad);
    }

    [Fact]
    public void DegradedHosts_TakeTrafficOnlyWhenTooFewAreHealthy()
    {
        var hosts = Hosts(4, ZoneA);
        hosts[3].SetHealthFlags(HostHealthFlags.DegradedEdsHealth, true);
        var ps = PrioritySet.Build(hosts, PrioritySetOptions.Default, null, null);
        // 3/4 healthy × 1.4 ≥ 100%: degraded hosts get nothing.
        Assert.Equal([100], ps.HealthyPriorityLoad);
        Assert.Equal([0], ps.DegradedPriorityLoad);
        var (lb, _) = Balancer();
        Assert.Equal(0, Share(lb, ps, h => h == hosts[3]));

        // 2 healthy, 2 degraded: 70% healthy, the remaining 30% to the degraded hosts.
        hosts[2].SetHealthFlags(HostHealthFlags.DegradedActiveHc, true);
        ps = PrioritySet.Build(hosts, PrioritySetOptions.Default, null, null);
        Assert.Equal([70], ps.HealthyPriorityLoad);
        Assert.Equal([30], ps.DegradedPriorityLoad);
        Assert.InRange(Share(lb, ps, h => h.CoarseHealth == HostCoarseHealth.Degraded), 0.28, 0.32);
    }

    [Fact]
    public void Panic_BalancesAcrossAllHosts_AndCountsLbHealthyPanic()
    {
        var hosts = Hosts(4, ZoneA);
        Fail(hosts[0]);
        Fail(hosts[1]);
        Fail(hosts[2]);
        var ps = PrioritySet.Build(hosts, PrioritySetOptions.Default, null, null);
        Assert.Equal([true], ps.PerPriorityPanic);
        var (lb, stats) = Balancer();
        Assert.InRange(Share(lb, ps, h => !h.Healthy), 0.72, 0.78);
        Assert.Equal(Picks, stats.LbHealthyPanic.Value);

        // healthy_panic_threshold 0 disables panic mode: only the healthy host.
        ps = PrioritySet.Build(hosts, PrioritySetOptions.Default with { PanicThreshold = 0 }, null, null);
        Assert.Equal([false], ps.PerPriorityPanic);
        Assert.Equal(1.0, Share(lb, ps, h => h == hosts[3]));

        // fail_traffic_on_panic: no host at all.
        var (failing, _) = Balancer(new LoadBalancerConfigModel { ZoneAware = new ZoneAwareModel { FailTrafficOnPanic = true } });
        Assert.Null(failing.ChooseHost(PrioritySet.Build(hosts, PrioritySetOptions.Default, null, null), LoadBalancerContext.None));
    }

    [Fact]
    public void TotalPanic_SplitsLoadByHostCount()
    {
        var p0 = Hosts(3, ZoneA, priority: 0);
        var p1 = Hosts(6, ZoneA, priority: 1);
        Fail(p0[0]);
        Fail(p0[1]);
        foreach (var h in p1[..5]) Fail(h);
        // P0 (1/3 healthy) and P1 (1/6) are together not enough, and each is below the panic threshold: the load
        // follows host counts, 3 : 6, the rounding remainder to P0.
        var ps = PrioritySet.Build([.. p0, .. p1], PrioritySetOptions.Default, null, null);
        Assert.Equal([true, true], ps.PerPriorityPanic);
        Assert.Equal([34, 66], ps.HealthyPriorityLoad);
    }

    [Fact]
    public void LocalityWeighted_SplitsByEffectiveLocalityWeight()
    {
        var a = Hosts(4, ZoneA, localityWeight: 1);
        var b = Hosts(4, ZoneB, localityWeight: 3);
        var options = PrioritySetOptions.Default with { LocalityWeighted = true };
        var (lb, _) = Balancer(new LoadBalancerConfigModel { LocalityMode = LocalityLbMode.LocalityWeighted });
        var ps = PrioritySet.Build([.. a, .. b], options, null, null);
        Assert.InRange(Share(lb, ps, h => h.Locality == ZoneA), 0.24, 0.26);

        // Half of B unhealthy: its effective weight is 3 × min(1, 1.4 × 0.5) = 2.1 against A's 1 (32.3% / 67.7%).
        Fail(b[0]);
        Fail(b[1]);
        ps = PrioritySet.Build([.. a, .. b], options, null, null);
        Assert.InRange(Share(lb, ps, h => h.Locality == ZoneA), 0.313, 0.333);
        Assert.True(Share(lb, ps, h => !h.Healthy) == 0);
    }

    /// <summary>Envoy's example: this proxy's fleet is 40% / 40% / 20% in zones A / B / C, the upstream 25% / 50% / 25%.
    /// Zone A can take 25/40 = 62.5% of A's traffic; the remaining 37.5% goes to the zones with residual capacity,
    /// B (50 - 40 = 10) and C (25 - 20 = 5), 2 : 1.</summary>
    [Fact]
    public void ZoneAware_ResidualCase_RoutesTheDocumentedShares()
    {
        var local = PrioritySet.Build([.. Hosts(2, ZoneA), .. Hosts(2, ZoneB), .. Hosts(1, ZoneC)], PrioritySetOptions.Default with { LocalLocality = ZoneA }, null, null);
        var (lb, stats) = Balancer();
        var ps = PrioritySet.Build([.. Hosts(2, ZoneA), .. Hosts(4, ZoneB), .. Hosts(2, ZoneC)], PrioritySetOptions.Default with { LocalLocality = ZoneA }, local, stats);

        Assert.Equal(LocalityRouting.LocalityResidual, ps.ZoneRouting);
        Assert.Equal(6250UL, ps.LocalPercentToRoute);
        Assert.Equal([0UL, 1000UL, 1500UL], ps.ResidualCapacity);
        var counts = new Dictionary<string, int>();
        for (var i = 0; i < Picks; i++)
        {
            var z = lb.ChooseHost(ps, LoadBalancerContext.None)!.Locality.Zone;
            counts[z] = counts.GetValueOrDefault(z) + 1;
        }
        Assert.InRange(counts["a"], 6050, 6450);
        Assert.InRange(counts["b"], 2300, 2700);
        Assert.InRange(counts["c"], 1100, 1400);
        Assert.Equal(counts["a"], stats.LbZoneRoutingSampled.Value);
        Assert.Equal(counts["b"] + counts["c"], stats.LbZoneRoutingCrossZone.Value);
        Assert.Equal(0, stats.LbZoneRoutingAllDirectly.Value);
        Assert.Equal(1, stats.LbRecalculateZoneStructures.Value);
    }

    /// <summary>The upstream's local-zone share covers the local one: every pick stays in zone.</summary>
    [Fact]
    public void ZoneAware_UpstreamShareCoversLocal_AllDirectly()
    {
        var local = PrioritySet.Build([.. Hosts(1, ZoneA), .. Hosts(1, ZoneB), .. Hosts(1, ZoneC)], PrioritySetOptions.Default with { LocalLocality = ZoneA }, null, null);
        var (lb, stats) = Balancer();
        var ps = PrioritySet.Build([.. Hosts(4, ZoneA), .. Hosts(2, ZoneB), .. Hosts(2, ZoneC)], PrioritySetOptions.Default with { LocalLocality = ZoneA }, local, stats);
        Assert.Equal(LocalityRouting.LocalityDirect, ps.ZoneRouting);
        Assert.Equal(1.0, Share(lb, ps, h => h.Locality == ZoneA));
        Assert.Equal(Picks, stats.LbZoneRoutingAllDirectly.Value);
    }

    /// <summary>No upstream host in the local zone: all traffic goes cross zone, by residual capacity.</summary>
    [Fact]
    public void ZoneAware_NoUpstreamInLocalZone_SplitsByResidualCapacity()
    {
        var local = PrioritySet.Build([.. Hosts(2, ZoneA), .. Hosts(1, ZoneB), .. Hosts(1, ZoneC)], PrioritySetOptions.Default with { LocalLocality = ZoneA }, null, null);
        var (lb, stats) = Balancer();
        // Upstream B 75%, C 25% against local B 25%, C 25%: residual B 50, C 0 → all to B.
        var ps = PrioritySet.Build([.. Hosts(6, ZoneB), .. Hosts(2, ZoneC)], PrioritySetOptions.Default with { LocalLocality = ZoneA }, local, stats);
        Assert.Equal(LocalityRouting.LocalityResidual, ps.ZoneRouting);
        Assert.Equal(0UL, ps.LocalPercentToRoute);
        Assert.Equal(1.0, Share(lb, ps, h => h.Locality == ZoneB));
        Assert.Equal(Picks, stats.LbZoneRoutingCrossZone.Value);
    }

    [Fact]
    public void ZoneAware_Preconditions_CountTheirStats()
    {
        var local = PrioritySet.Build([.. Hosts(2, ZoneA), .. Hosts(2, ZoneB), .. Hosts(1, ZoneC)], PrioritySetOptions.Default with { LocalLocality = ZoneA }, null, null);
        var options = PrioritySetOptions.Default with { LocalLocality = ZoneA };

        // Fewer healthy upstream hosts than min_cluster_size (6): no zone routing.
        var (lb, stats) = Balancer();
        var small = PrioritySet.Build([.. Hosts(1, ZoneA), .. Hosts(2, ZoneB), .. Hosts(2, ZoneC)], options, local, stats);
        Assert.Equal(LocalityRouting.NoLocalityRouting, small.ZoneRouting);
        Assert.Equal(1, stats.LbZoneClusterTooSmall.Value);
        Assert.InRange(Share(lb, small, h => h.Locality == ZoneA), 0.18, 0.22);
        // ... unless min_cluster_size allows it.
        var allowed = PrioritySet.Build(small.Hosts, options with { ZoneAware = new ZoneAwareModel { MinClusterSize = 5 } }, local, stats);
        Assert.Equal(LocalityRouting.LocalityResidual, allowed.ZoneRouting);

        // The local cluster has no host in this proxy's zone: lb_local_cluster_not_ok.
        var elsewhere = PrioritySet.Build([.. Hosts(2, ZoneB), .. Hosts(2, ZoneC)], options, null, null);
        var notOk = PrioritySet.Build([.. Hosts(4, ZoneA), .. Hosts(4, ZoneB)], options, elsewhere, stats);
        Assert.Equal(LocalityRouting.NoLocalityRouting, notOk.ZoneRouting);
        Assert.Equal(1, stats.LbLocalClusterNotOk.Value);

        // The local cluster is in panic: each zone-aware pick counts lb_local_cluster_not_ok and balances normally.
        var localHosts = Hosts(4, ZoneA).Concat(Hosts(4, ZoneB)).ToArray();
        foreach (var h in localHosts[..5]) Fail(h);
        var panicking = PrioritySet.Build(localHosts, options, null, null);
        var (lb2, stats2) = Balancer();
        var ps = PrioritySet.Build([.. Hosts(4, ZoneA), .. Hosts(4, ZoneB)], options, panicking, stats2);
        Assert.True(ps.LocalClusterPanic);
        Assert.InRange(Share(lb2, ps, h => h.Locality == ZoneA), 0.47, 0.53);
        Assert.Equal(Picks, stats2.LbLocalClusterNotOk.Value);

        // routing_enabled 0: zone routing is computed but never used.
        var (off, offStats) = Balancer(new LoadBalancerConfigModel { ZoneAware = new ZoneAwareModel { RoutingEnabledPercent = 0 } });
        var direct = PrioritySet.Build([.. Hosts(6, ZoneA), .. Hosts(2, ZoneB), .. Hosts(2, ZoneC)], options, local, offStats);
        Assert.Equal(LocalityRouting.LocalityDirect, direct.ZoneRouting);
        Assert.InRange(Share(off, direct, h => h.Locality == ZoneA), 0.57, 0.63);
        Assert.Equal(0, offStats.LbZoneRoutingAllDirectly.Value);
    }

    [Fact]
    public void HashBalancers_ChoosePriorityFromTheHash()
    {
        var p0 = Hosts(4, ZoneA, priority: 0);
        var p1 = Hosts(4, ZoneA, priority: 1);
        Fail(p0[0]);
        Fail(p0[1]);
        var ps = PrioritySet.Build([.. p0, .. p1], PrioritySetOptions.Default, null, null);
        var (lb, _) = Balancer(new LoadBalancerConfigModel { Policy = LbPolicy.Maglev });
        var onP1 = 0;
        for (var i = 0; i < Picks; i++)
        {
            var key = (ulong)i * 0x9E3779B97F4A7C15UL;
            var h = lb.ChooseHost(ps, new LoadBalancerContext(key))!;
            Assert.Same(h, lb.ChooseHost(ps, new LoadBalancerContext(key))); // consistent
            Assert.True(h.Healthy);
            Assert.Equal(key % 100 + 1 > 70 ? 1u : 0u, h.Priority);
            if (h.Priority == 1) onP1++;
        }
        Assert.InRange(onP1, 2800, 3200);
    }
}
