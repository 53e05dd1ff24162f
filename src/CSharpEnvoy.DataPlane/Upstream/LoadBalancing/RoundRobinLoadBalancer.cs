namespace CSharpEnvoy.DataPlane.Upstream.LoadBalancing;

/// <summary>
/// Envoy's ROUND_ROBIN. Equal weights: a plain rotation. Unequal <c>load_balancing_weight</c>s: Envoy's EDF order,
/// precomputed for one period per host set so a pick stays one interlocked increment (Envoy runs one EDF per
/// worker; one shared schedule is at least as smooth). The rotation starts at a random point, as Envoy seeds it.
/// </summary>
internal sealed class RoundRobinLoadBalancer : HostSetTableBalancer<RoundRobinLoadBalancer.Table>
{
    /// <summary>Longest precomputed period; longer ones scale the weights down to fit (see
    /// <see cref="EdfScheduler.BuildSchedule"/>).</summary>
    internal const int MaxScheduleLength = 1 << 20;

    internal sealed class Table(Host[] hosts, int[]? schedule)
    {
        public readonly Host[] Hosts = hosts;
        public readonly int[]? Schedule = schedule;
    }

    private long _next;

    public RoundRobinLoadBalancer(LbRandom random) => _next = (long)(random.Next() >> 2);

    public override Host? ChooseHost(HostSet hosts, in LoadBalancerContext context)
    {
        var t = TableFor(hosts);
        var h = t.Hosts;
        if (h.Length == 0) return null;
        var i = (ulong)Interlocked.Increment(ref _next);
        var s = t.Schedule;
        return s is null ? h[(int)(i % (uint)h.Length)] : h[s[(int)(i % (uint)s.Length)]];
    }

    protected override Table Build(Host[] hosts)
    {
        if (hosts.Length <= 1 || WeightsEqual(hosts)) return new Table(hosts, null);
        var weights = new uint[hosts.Length];
        for (var i = 0; i < hosts.Length; i++) weights[i] = hosts[i].Weight;
        return new Table(hosts, EdfScheduler.BuildSchedule(weights, Math.Max(MaxScheduleLength, hosts.Length * 16)));
    }
}

/// <summary>Envoy's RANDOM: a uniform pick over the healthy hosts. Like Envoy's, it does not apply host weights.</summary>
internal sealed class RandomLoadBalancer(LbRandom random) : ILoadBalancer
{
    public bool UsesHash => false;

    public void Prepare(HostSet hosts)
    {
    }

    public Host? ChooseHost(HostSet hosts, in LoadBalancerContext context)
    {
        var h = hosts.HealthyHosts;
        return h.Length == 0 ? null : h[(int)(random.Next() % (uint)h.Length)];
    }
}
