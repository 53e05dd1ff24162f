using CSharpEnvoy.Config.Model.Cluster;

namespace CSharpEnvoy.DataPlane.Upstream.LoadBalancing;

/// <summary>
/// Envoy's zone-aware routing (<c>ZoneAwareLoadBalancerBase</c>) for priority 0. Compare each upstream locality's
/// share of healthy hosts with the local cluster's share of this proxy's fleet (both in 1/10000): if the upstream's
/// local-zone share covers the local one, every pick stays in zone (<c>lb_zone_routing_all_directly</c>); otherwise
/// upstream/local of the picks stay (<c>lb_zone_routing_sampled</c>) and the rest go cross zone
/// (<c>lb_zone_routing_cross_zone</c>) to localities in proportion to their residual capacity.
/// </summary>
internal static class ZoneAwareRouting
{
    public static void Compute(PrioritySet ps, PrioritySet local, PrioritySetOptions options, LbStats? stats)
    {
        stats?.LbRecalculateZoneStructures.Inc();
        var localSet = local.HostSetsPerPriority[0];
        var localPanic = PriorityLoad.InPanic(localSet, options.PanicThreshold);
        if (EarlyExit(ps, localSet, options.ZoneAware, stats))
        {
            ps.SetZoneRouting(LocalityRouting.NoLocalityRouting, 0, [], localPanic);
            return;
        }
        var upstream = ps.HostSetsPerPriority[0];
        var upstreamHealthy = upstream.HealthyPerLocality;
        var n = upstreamHealthy.Length;
        var (localPct, upstreamPct) = Percentages(localSet, upstream, options.ZoneAware.BasisIsWeight);

        var force = options.ZoneAware.ForceLocalZoneMinSize;
        if (upstream.HasLocalLocality &&
            ((upstreamPct[0] > 0 && upstreamPct[0] >= localPct[0]) || (force is { } min && upstreamHealthy[0].Hosts.Length >= min)))
        {
            ps.SetZoneRouting(LocalityRouting.LocalityDirect, 0, [], localPanic);
            return;
        }

        var localPercentToRoute = upstream.HasLocalLocality && localPct[0] > 0 ? upstreamPct[0] * 10000 / localPct[0] : 0;
        var residual = new ulong[n];
        for (var i = 0; i < n; i++)
        {
            var last = i > 0 ? residual[i - 1] : 0;
            if (i == 0 && upstream.HasLocalLocality)
            {
                residual[i] = last; // the local zone already took what it can
                continue;
            }
            residual[i] = upstreamPct[i] > localPct[i] ? last + upstreamPct[i] - localPct[i] : last;
        }
        ps.SetZoneRouting(LocalityRouting.LocalityResidual, localPercentToRoute, residual, localPanic);
    }

    /// <summary>Envoy's <c>earlyExitNonLocalityRouting</c>: the cases where priority 0 is balanced without zones.</summary>
    private static bool EarlyExit(PrioritySet ps, HostSet localSet, ZoneAwareModel config, LbStats? stats)
    {
        var upstream = ps.HostSetsPerPriority[0];
        if (upstream.HealthyPerLocality.Length < 2) return true;
        if (config.ForceLocalZoneMinSize is null && localSet.HostsPerLocality.Length < 2) return true;
        if (!localSet.HasLocalLocality || localSet.HostsPerLocality[0].Length == 0)
        {
            stats?.LbLocalClusterNotOk.Inc();
            return true;
        }
        if ((ulong)upstream.Healthy.Hosts.Length < config.MinClusterSize)
        {
            stats?.LbZoneClusterTooSmall.Inc();
            return true;
        }
        return false;
    }

    /// <summary>Per upstream locality (priority 0 order): the local cluster's and the upstream's share, of 10000,
    /// matched by locality rather than by position.</summary>
    private static (ulong[] Local, ulong[] Upstream) Percentages(HostSet localSet, HostSet upstream, bool byWeight)
    {
        var localWeights = new Dictionary<LocalityModel, ulong>();
        ulong totalLocal = 0;
        for (var i = 0; i < localSet.Localities.Length; i++)
        {
            var w = Weight(localSet.HealthyPerLocality[i].Hosts, byWeight);
            totalLocal += w;
            if (localSet.HealthyPerLocality[i].Hosts.Length > 0) localWeights[localSet.Localities[i]] = w;
        }
        var n = upstream.Localities.Length;
        var upstreamWeights = new ulong[n];
        ulong totalUpstream = 0;
        for (var i = 0; i < n; i++)
        {
            upstreamWeights[i] = Weight(upstream.HealthyPerLocality[i].Hosts, byWeight);
            totalUpstream += upstreamWeights[i];
        }
        var local = new ulong[n];
        var up = new ulong[n];
        for (var i = 0; i < n; i++)
        {
            if (upstream.HealthyPerLocality[i].Hosts.Length == 0) continue;
            var lw = localWeights.GetValueOrDefault(upstream.Localities[i]);
            local[i] = totalLocal > 0 ? 10000UL * lw / totalLocal : 0;
            up[i] = totalUpstream > 0 ? 10000UL * upstreamWeights[i] / totalUpstream : 0;
        }
        return (local, up);
    }

    private static ulong Weight(Host[] hosts, bool byWeight) => byWeight ? PriorityLoad.SumWeights(hosts) : (ulong)hosts.Length;

    /// <summary>Envoy's <c>tryChooseLocalLocalityHosts</c>: the locality index for this pick.</summary>
    public static int ChooseLocality(PrioritySet ps, LbRandom random, LbStats stats)
    {
        if (ps.ZoneRouting == LocalityRouting.LocalityDirect)
        {
            stats.LbZoneRoutingAllDirectly.Inc();
            return 0;
        }
        if (random.Next() % 10000 < ps.LocalPercentToRoute)
        {
            stats.LbZoneRoutingSampled.Inc();
            return 0;
        }
        stats.LbZoneRoutingCrossZone.Inc();
        var residual = ps.ResidualCapacity;
        var n = residual.Length;
        if (residual[n - 1] == 0)
        {
            // Only possible through rounding: pick any locality.
            stats.LbZoneNoCapacityLeft.Inc();
            return (int)(random.Next() % (uint)n);
        }
        var threshold = random.Next() % residual[n - 1];
        var i = 0;
        while (threshold >= residual[i]) i++;
        return i;
    }
}
