using CSharpEnvoy.Config.Model.Cluster;

namespace CSharpEnvoy.DataPlane.Upstream;

/// <summary>
/// Envoy's <c>HostsSource</c>: one list of hosts a balancer picks from (a priority's healthy, degraded or all hosts,
/// or one locality's). Immutable; the balancer caches its table (schedule, ring, maglev) on the source itself.
/// </summary>
internal sealed class HostsSource
{
    public static readonly HostsSource Empty = new([]);

    private volatile TableSlot? _table;

    public HostsSource(Host[] hosts) => Hosts = hosts;

    public Host[] Hosts { get; }

    /// <summary>The table of the balancer that last built one for this source.</summary>
    internal TableSlot? LbTable
    {
        get => _table;
        set => _table = value;
    }

    internal sealed class TableSlot(object owner, object table)
    {
        public readonly object Owner = owner;
        public readonly object Table = table;
    }
}

/// <summary>
/// Envoy's <c>HostSet</c>: the hosts of one priority level, split by health (healthy, degraded, excluded) and by
/// locality. Locality index 0 is this proxy's own locality when the priority has hosts there
/// (<see cref="HasLocalLocality"/>); the other localities follow in (region, zone, sub_zone) order, as in Envoy.
/// </summary>
internal sealed class HostSet
{
    private readonly int[]? _healthyLocalitySchedule;
    private readonly int[]? _degradedLocalitySchedule;
    private long _healthyLocalityNext;
    private long _degradedLocalityNext;

    /// <param name="hosts">Owned by the set from here on (host arrays are never written after they are built).</param>
    internal HostSet(uint priority, Host[] hosts, LocalityModel localLocality, uint overprovisioningFactor, bool weightedPriorityHealth, bool localityWeighted)
    {
        Priority = priority;
        OverprovisioningFactor = overprovisioningFactor;
        WeightedPriorityHealth = weightedPriorityHealth;
        Hosts = hosts;
        if (AllHealthyInOneLocality(hosts))
        {
            // The usual shape (an EDS assignment of one locality, every host healthy): every list is the same array.
            All = new HostsSource(hosts);
            Healthy = new HostsSource(hosts);
            Degraded = HostsSource.Empty;
            Localities = [hosts[0].Locality];
            HasLocalLocality = hosts[0].Locality.Equals(localLocality);
            HostsPerLocality = [hosts];
            HealthyPerLocality = [new HostsSource(hosts)];
            DegradedPerLocality = [HostsSource.Empty];
            LocalityWeights = [hosts[0].LocalityWeight];
            if (localityWeighted)
            {
                _healthyLocalitySchedule = LocalitySchedule(HealthyPerLocality);
                _degradedLocalitySchedule = LocalitySchedule(DegradedPerLocality);
            }
            return;
        }
        var eligible = new List<Host>(hosts.Length);
        var healthy = new List<Host>(hosts.Length);
        var degraded = new List<Host>();
        var groups = new Dictionary<LocalityModel, (List<Host> All, List<Host> Healthy, List<Host> Degraded, uint Weight)>();
        foreach (var h in hosts)
        {
            if ((h.HealthFlags & HostHealthFlags.ExcludedViaImmediateHcFail) != 0)
            {
                ExcludedCount++;
                continue; // excluded hosts leave every list, panic included
            }
            eligible.Add(h);
            if (!groups.TryGetValue(h.Locality, out var g))
            {
                g = (new List<Host>(), new List<Host>(), new List<Host>(), h.LocalityWeight);
                groups[h.Locality] = g;
            }
            g.All.Add(h);
            switch (h.CoarseHealth)
            {
                case HostCoarseHealth.Healthy:
                    healthy.Add(h);
                    g.Healthy.Add(h);
                    break;
                case HostCoarseHealth.Degraded:
                    degraded.Add(h);
                    g.Degraded.Add(h);
                    break;
            }
        }
        All = new HostsSource(eligible.Count == Hosts.Length ? Hosts : eligible.ToArray());
        Healthy = new HostsSource(healthy.Count == Hosts.Length ? Hosts : healthy.ToArray());
        Degraded = degraded.Count == 0 ? HostsSource.Empty : new HostsSource(degraded.ToArray());

        var order = new List<LocalityModel>(groups.Keys);
        order.Sort(CompareLocality);
        HasLocalLocality = groups.ContainsKey(localLocality);
        if (HasLocalLocality)
        {
            order.Remove(localLocality);
            order.Insert(0, localLocality);
        }
        Localities = order.ToArray();
        HostsPerLocality = new Host[order.Count][];
        HealthyPerLocality = new HostsSource[order.Count];
        DegradedPerLocality = new HostsSource[order.Count];
        LocalityWeights = new uint[order.Count];
        for (var i = 0; i < order.Count; i++)
        {
            var g = groups[order[i]];
            HostsPerLocality[i] = g.All.ToArray();
            HealthyPerLocality[i] = new HostsSource(g.Healthy.ToArray());
            DegradedPerLocality[i] = g.Degraded.Count == 0 ? HostsSource.Empty : new HostsSource(g.Degraded.ToArray());
            LocalityWeights[i] = g.Weight;
        }
        if (localityWeighted)
        {
            _healthyLocalitySchedule = LocalitySchedule(HealthyPerLocality);
            _degradedLocalitySchedule = LocalitySchedule(DegradedPerLocality);
        }
    }

    private static bool AllHealthyInOneLocality(Host[] hosts)
    {
        if (hosts.Length == 0) return false;
        var locality = hosts[0].Locality;
        var weight = hosts[0].LocalityWeight;
        foreach (var h in hosts)
            if (h.HealthFlags != HostHealthFlags.None || h.LocalityWeight != weight || !ReferenceEquals(h.Locality, locality) && !h.Locality.Equals(locality))
                return false;
        return true;
    }

    public uint Priority { get; }
    /// <summary>Every host of the priority, excluded ones included (admin, health checking).</summary>
    public Host[] Hosts { get; }
    /// <summary>Every non-excluded host: what panic mode balances across.</summary>
    public HostsSource All { get; }
    public HostsSource Healthy { get; }
    public HostsSource Degraded { get; }
    public int ExcludedCount { get; }
    public uint OverprovisioningFactor { get; }
    public bool WeightedPriorityHealth { get; }

    public LocalityModel[] Localities { get; }
    /// <summary>Whether locality index 0 is this proxy's own locality.</summary>
    public bool HasLocalLocality { get; }
    public Host[][] HostsPerLocality { get; }
    public HostsSource[] HealthyPerLocality { get; }
    public HostsSource[] DegradedPerLocality { get; }
    /// <summary>Each locality's <c>load_balancing_weight</c> (0 when unset).</summary>
    public uint[] LocalityWeights { get; }

    /// <summary>Envoy's <c>chooseHealthyLocality</c>: a locality index by effective weight, or -1 when no locality has
    /// weight (then balancing falls back to the whole priority).</summary>
    public int ChooseHealthyLocality() => Next(_healthyLocalitySchedule, ref _healthyLocalityNext);

    public int ChooseDegradedLocality() => Next(_degradedLocalitySchedule, ref _degradedLocalityNext);

    private static int Next(int[]? schedule, ref long next) =>
        schedule is null ? -1 : schedule[(int)((ulong)Interlocked.Increment(ref next) % (uint)schedule.Length)];

    /// <summary>
    /// One EDF period over the localities' effective weights: weight × min(1, overprovisioning × eligible / hosts),
    /// Envoy's <c>effectiveLocalityWeight</c>. Localities with no weight or no eligible host never appear.
    /// </summary>
    private int[]? LocalitySchedule(HostsSource[] eligiblePerLocality)
    {
        var effective = new double[Localities.Length];
        var max = 0.0;
        for (var i = 0; i < effective.Length; i++)
        {
            var hostCount = HostsPerLocality[i].Length;
            if (hostCount == 0 || LocalityWeights[i] == 0) continue;
            var ratio = (double)eligiblePerLocality[i].Hosts.Length / hostCount;
            effective[i] = LocalityWeights[i] * Math.Min(1.0, OverprovisioningFactor / 100.0 * ratio);
            max = Math.Max(max, effective[i]);
        }
        if (max == 0) return null;
        // Integer weights for the static schedule: 4 significant digits of the effective weights.
        var scale = 10000.0 / max;
        var indexes = new List<int>();
        var weights = new List<uint>();
        for (var i = 0; i < effective.Length; i++)
        {
            var w = (uint)Math.Round(effective[i] * scale);
            if (w == 0) continue;
            indexes.Add(i);
            weights.Add(w);
        }
        var schedule = LoadBalancing.EdfScheduler.BuildSchedule(weights.ToArray(), 1 << 16);
        for (var t = 0; t < schedule.Length; t++) schedule[t] = indexes[schedule[t]];
        return schedule;
    }

    private static int CompareLocality(LocalityModel a, LocalityModel b)
    {
        var c = string.CompareOrdinal(a.Region, b.Region);
        if (c != 0) return c;
        c = string.CompareOrdinal(a.Zone, b.Zone);
        return c != 0 ? c : string.CompareOrdinal(a.SubZone, b.SubZone);
    }
}

/// <summary>How a cluster's hosts become a <see cref="PrioritySet"/>: the cluster's balancing settings and the
/// assignment's policy.</summary>
internal sealed record PrioritySetOptions
{
    public static readonly PrioritySetOptions Default = new();

    public LocalityModel LocalLocality { get; init; } = LocalityModel.Empty;
    public uint OverprovisioningFactor { get; init; } = LoadAssignmentModel.DefaultOverprovisioningFactor;
    public bool WeightedPriorityHealth { get; init; }
    public uint PanicThreshold { get; init; } = 50;
    public bool LocalityWeighted { get; init; }
    public ZoneAwareModel ZoneAware { get; init; } = ZoneAwareModel.Default;
}

/// <summary>Envoy's locality routing state for priority 0.</summary>
internal enum LocalityRouting { NoLocalityRouting, LocalityDirect, LocalityResidual }

/// <summary>
/// Envoy's <c>PrioritySet</c> together with the load balancer state derived from it: the per-priority healthy and
/// degraded load (overprovisioning factor, spill-over), panic per priority, and the zone-aware routing decision for
/// priority 0. Immutable and swapped whole when membership or any host's health changes, never per request.
/// </summary>
internal sealed class PrioritySet
{
    public static readonly PrioritySet Empty = Build([], PrioritySetOptions.Default, null, null);

    private PrioritySet(Host[] hosts, HostSet[] hostSets) => (Hosts, HostSetsPerPriority) = (hosts, hostSets);

    /// <summary>Every host of every priority, in configuration order.</summary>
    public Host[] Hosts { get; }
    public HostSet[] HostSetsPerPriority { get; }
    /// <summary>Healthy hosts across priorities (<c>membership_healthy</c>).</summary>
    public int HealthyCount { get; private set; }
    public int DegradedCount { get; private set; }
    public int ExcludedCount { get; private set; }

    /// <summary>Percentage of traffic per priority to healthy hosts; with <see cref="DegradedPriorityLoad"/> sums to 100.</summary>
    public int[] HealthyPriorityLoad { get; private set; } = [];
    public int[] DegradedPriorityLoad { get; private set; } = [];
    public bool[] PerPriorityPanic { get; private set; } = [];
    /// <summary>For ring hash and maglev: each priority's hosts (all of them in panic, else the healthy ones).</summary>
    public HostsSource[] HashSources { get; private set; } = [];

    public LocalityRouting ZoneRouting { get; private set; }
    /// <summary>Of 10000, how many picks stay in the local zone in <see cref="LocalityRouting.LocalityResidual"/>.</summary>
    public ulong LocalPercentToRoute { get; private set; }
    /// <summary>Cumulative residual capacity per locality of priority 0 (Envoy's <c>residual_capacity_</c>).</summary>
    public ulong[] ResidualCapacity { get; private set; } = [];
    /// <summary>The local cluster is in panic: zone-aware picks count <c>lb_local_cluster_not_ok</c> and fall back.</summary>
    public bool LocalClusterPanic { get; private set; }

    /// <summary>
    /// Groups <paramref name="hosts"/> by priority and computes the balancing state. <paramref name="local"/> is the
    /// local cluster's current set (zone-aware routing needs it); <paramref name="stats"/> counts the zone structure
    /// recalculation outcomes as Envoy does.
    /// </summary>
    public static PrioritySet Build(Host[] hosts, PrioritySetOptions options, PrioritySet? local, LoadBalancing.LbStats? stats)
    {
        uint maxPriority = 0;
        foreach (var h in hosts) maxPriority = Math.Max(maxPriority, h.Priority);
        var perPriority = new Host[maxPriority + 1][];
        if (maxPriority == 0) perPriority[0] = hosts;
        else
        {
            var lists = new List<Host>[perPriority.Length];
            for (var p = 0; p < lists.Length; p++) lists[p] = new List<Host>();
            foreach (var h in hosts) lists[h.Priority].Add(h);
            for (var p = 0; p < lists.Length; p++) perPriority[p] = lists[p].ToArray();
        }
        var sets = new HostSet[perPriority.Length];
        for (var p = 0; p < sets.Length; p++)
            sets[p] = new HostSet((uint)p, perPriority[p], options.LocalLocality, options.OverprovisioningFactor, options.WeightedPriorityHealth, options.LocalityWeighted);

        var ps = new PrioritySet(hosts, sets);
        foreach (var s in sets)
        {
            ps.HealthyCount += s.Healthy.Hosts.Length;
            ps.DegradedCount += s.Degraded.Hosts.Length;
            ps.ExcludedCount += s.ExcludedCount;
        }
        LoadBalancing.PriorityLoad.Compute(ps, options.PanicThreshold);
        var hashSources = new HostsSource[sets.Length];
        for (var p = 0; p < sets.Length; p++) hashSources[p] = ps.PerPriorityPanic[p] ? sets[p].All : sets[p].Healthy;
        ps.HashSources = hashSources;
        if (local is not null) LoadBalancing.ZoneAwareRouting.Compute(ps, local, options, stats);
        return ps;
    }

    internal void SetLoads(int[] healthy, int[] degraded, bool[] panic)
    {
        HealthyPriorityLoad = healthy;
        DegradedPriorityLoad = degraded;
        PerPriorityPanic = panic;
    }

    internal void SetZoneRouting(LocalityRouting state, ulong localPercentToRoute, ulong[] residualCapacity, bool localClusterPanic)
    {
        ZoneRouting = state;
        LocalPercentToRoute = localPercentToRoute;
        ResidualCapacity = residualCapacity;
        LocalClusterPanic = localClusterPanic;
    }
}
