namespace CSharpEnvoy.DataPlane.Upstream.LoadBalancing;

/// <summary>
/// Envoy's priority load (<c>LoadBalancerBase</c>): each priority's availability is its healthy (and separately
/// degraded) share of non-excluded hosts times the overprovisioning factor, capped at 100; load goes to the highest
/// priorities first and spills to lower ones as availability drops. Panic is decided per priority; when every
/// priority is in panic the load follows host counts instead.
/// </summary>
internal static class PriorityLoad
{
    public static void Compute(PrioritySet ps, uint panicThreshold)
    {
        var sets = ps.HostSetsPerPriority;
        var n = sets.Length;
        var health = new int[n];
        var degraded = new int[n];
        var healthyLoad = new int[n];
        var degradedLoad = new int[n];
        var panic = new bool[n];
        for (var p = 0; p < n; p++)
        {
            var hs = sets[p];
            var hostCount = hs.Hosts.Length - hs.ExcludedCount;
            if (hostCount <= 0) continue;
            ulong healthyWeight, degradedWeight, totalWeight;
            if (hs.WeightedPriorityHealth)
            {
                healthyWeight = SumWeights(hs.Healthy.Hosts);
                degradedWeight = SumWeights(hs.Degraded.Hosts);
                totalWeight = SumWeights(hs.All.Hosts);
            }
            else
            {
                healthyWeight = (ulong)hs.Healthy.Hosts.Length;
                degradedWeight = (ulong)hs.Degraded.Hosts.Length;
                totalWeight = (ulong)hostCount;
            }
            health[p] = (int)Math.Min(100UL, hs.OverprovisioningFactor * healthyWeight / totalWeight);
            degraded[p] = (int)Math.Min(100UL, hs.OverprovisioningFactor * degradedWeight / totalWeight);
        }

        var normalizedTotal = NormalizedTotalAvailability(health, degraded);
        if (normalizedTotal > 0)
        {
            var (firstHealthy, remaining) = DistributeLoad(healthyLoad, health, 100, normalizedTotal);
            var (firstDegraded, rest) = DistributeLoad(degradedLoad, degraded, remaining, normalizedTotal);
            // Rounding leftovers go to the first priority with availability.
            if (rest != 0)
            {
                if (firstHealthy >= 0) healthyLoad[firstHealthy] += rest;
                else degradedLoad[firstDegraded] += rest;
            }
        }

        if (panicThreshold == 0 && normalizedTotal == 0)
        {
            // Panic disabled and nothing available: the loads must still sum to 100; P0 gets it (and finds no host).
            healthyLoad[0] = 100;
            ps.SetLoads(healthyLoad, degradedLoad, panic);
            return;
        }
        var totalPanic = true;
        for (var p = 0; p < n; p++)
        {
            // Never panic while the priorities together are fully available.
            panic[p] = normalizedTotal != 100 && InPanic(sets[p], panicThreshold);
            totalPanic &= panic[p];
        }
        if (totalPanic) LoadInTotalPanic(sets, healthyLoad, degradedLoad);
        ps.SetLoads(healthyLoad, degradedLoad, panic);
    }

    /// <summary>Envoy's <c>isHostSetInPanic</c>: healthy plus degraded share of non-excluded hosts below the threshold.</summary>
    public static bool InPanic(HostSet hs, uint panicThreshold)
    {
        var hostCount = hs.Hosts.Length - hs.ExcludedCount;
        var healthy = hostCount == 0 ? 0.0 : 100.0 * hs.Healthy.Hosts.Length / hostCount;
        var degraded = hostCount == 0 ? 0.0 : 100.0 * hs.Degraded.Hosts.Length / hostCount;
        return healthy + degraded < Math.Min(100u, panicThreshold);
    }

    /// <summary>Envoy's <c>choosePriority</c>: <paramref name="hash"/> % 100 + 1 walks the healthy loads, then the
    /// degraded ones.</summary>
    public static int ChoosePriority(ulong hash, int[] healthyLoad, int[] degradedLoad, out bool degraded)
    {
        var h = (int)(hash % 100) + 1;
        var aggregate = 0;
        for (var p = 0; p < healthyLoad.Length; p++)
        {
            aggregate += healthyLoad[p];
            if (h <= aggregate)
            {
                degraded = false;
                return p;
            }
        }
        for (var p = 0; p < degradedLoad.Length; p++)
        {
            aggregate += degradedLoad[p];
            if (h <= aggregate)
            {
                degraded = true;
                return p;
            }
        }
        degraded = false;
        return 0;
    }

    private static int NormalizedTotalAvailability(int[] health, int[] degraded)
    {
        var total = 0;
        for (var p = 0; p < health.Length; p++) total += health[p] + degraded[p];
        return Math.Min(total, 100);
    }

    private static (int FirstAvailable, int Remaining) DistributeLoad(int[] load, int[] availability, int totalLoad, int normalizedTotal)
    {
        var first = -1;
        for (var p = 0; p < availability.Length; p++)
        {
            if (first < 0 && availability[p] > 0) first = p;
            load[p] = Math.Min(totalLoad, availability[p] * 100 / normalizedTotal);
            totalLoad -= load[p];
        }
        return (first, totalLoad);
    }

    /// <summary>Every priority in panic: load by host count, regardless of health.</summary>
    private static void LoadInTotalPanic(HostSet[] sets, int[] healthyLoad, int[] degradedLoad)
    {
        var totalHosts = 0;
        foreach (var s in sets) totalHosts += s.Hosts.Length;
        if (totalHosts == 0)
        {
            healthyLoad[0] = 100;
            return;
        }
        var remaining = 100;
        var firstNonEmpty = -1;
        for (var p = 0; p < sets.Length; p++)
        {
            var count = sets[p].Hosts.Length;
            if (firstNonEmpty < 0 && count != 0) firstNonEmpty = p;
            healthyLoad[p] = 100 * count / totalHosts;
            degradedLoad[p] = 0;
            remaining -= healthyLoad[p];
        }
        healthyLoad[firstNonEmpty] += remaining;
    }

    internal static ulong SumWeights(Host[] hosts)
    {
        ulong sum = 0;
        foreach (var h in hosts) sum += h.Weight;
        return sum;
    }
}
