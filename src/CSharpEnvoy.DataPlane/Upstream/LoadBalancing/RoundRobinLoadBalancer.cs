namespace CSharpEnvoy.DataPlane.Upstream.LoadBalancing;

/// <summary>
/// Envoy's ROUND_ROBIN. Equal weights: a plain rotation. Unequal <c>load_balancing_weight</c>s: Envoy's EDF order,
/// precomputed for one period per host set so a pick stays one interlocked increment (Envoy runs one EDF per
/// worker; one shared schedule is at least as smooth). The rotation starts at a random point, as Envoy seeds it.
/// </summary>
internal sealed class RoundRobinLoadBalancer : HostsSourceTableBalancer<RoundRobinLoadBalancer.Table>
{
    /// <summary>Longest precomputed period; longer ones scale the weights down to fit (see
    /// <see cref="EdfScheduler.BuildSchedule"/>).</summary>
    internal const int MaxScheduleLength = 1 << 20;

    /// <summary>One source's rotation: its hosts, the weighted schedule (null for equal weights) and its position.</summary>
    internal sealed class Table(Host[] hosts, int[]? schedule, long start)
    {
        public readonly Host[] Hosts = hosts;
        public readonly int[]? Schedule = schedule;
        public long Next = start;
    }

    private readonly LbRandom _random;

    public RoundRobinLoadBalancer(LbRandom random) => _random = random;

    public override Host? ChooseHost(HostsSource hosts, in LoadBalancerContext context)
    {
        var t = TableFor(hosts);
        var h = t.Hosts;
        if (h.Length == 0) return null;
        var i = (ulong)Interlocked.Increment(ref t.Next);
        var s = t.Schedule;
        return s is null ? h[(int)(i % (uint)h.Length)] : h[s[(int)(i % (uint)s.Length)]];
    }

    protected override Table Build(Host[] hosts)
    {
        var start = (long)(_random.Next() >> 2);
        if (hosts.Length <= 1 || WeightsEqual(hosts)) return new Table(hosts, null, start);
        var weights = new uint[hosts.Length];
        for (var i = 0; i < hosts.Length; i++) weights[i] = hosts[i].Weight;
        return new Table(hosts, EdfScheduler.BuildSchedule(weights, Math.Max(MaxScheduleLength, hosts.Length * 16)), start);
    }
}

/// <summary>Envoy's RANDOM: a uniform pick over the healthy hosts. Like Envoy's, it does not apply host weights.</summary>
internal sealed class RandomLoadBalancer(LbRandom random) : ILoadBalancer
{
    public bool UsesHash => false;

    public void Prepare(HostsSource hosts)
    {
    }

    public Host? ChooseHost(HostsSource hosts, in LoadBalancerContext context)
    {
        var h = hosts.Hosts;
        return h.Length == 0 ? null : h[(int)(random.Next() % (uint)h.Length)];
    }
}
