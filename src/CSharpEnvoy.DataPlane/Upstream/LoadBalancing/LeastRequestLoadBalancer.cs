namespace CSharpEnvoy.DataPlane.Upstream.LoadBalancing;

/// <summary>
/// Envoy's LEAST_REQUEST. Equal weights: sample <c>choice_count</c> hosts at random and keep the one with the fewest
/// active requests (or scan all with FULL_SCAN, ties broken by reservoir sampling). Unequal weights: Envoy's EDF where
/// a host re-enters the schedule with weight / (active_requests + 1)^active_request_bias, measured when it is picked.
/// That EDF is per thread here, as Envoy keeps one per worker, so picks never contend.
/// </summary>
internal sealed class LeastRequestLoadBalancer : HostsSourceTableBalancer<LeastRequestLoadBalancer.Table>
{
    internal sealed class Table(Host[] hosts, bool weighted)
    {
        public readonly Host[] Hosts = hosts;
        public readonly bool Weighted = weighted;
    }

    /// <summary>One thread's EDFs for the few sources it picks from (zone-aware routing alternates between the
    /// local and cross-zone sources); a small array with rotating replacement, no dictionary on the pick path.</summary>
    private sealed class ThreadEdfs
    {
        public const int Slots = 4;
        public readonly HostsSource?[] Sets = new HostsSource?[Slots];
        public readonly EdfScheduler?[] Edfs = new EdfScheduler?[Slots];
        public int NextSlot;
    }

    private readonly LbRandom _random;
    private readonly uint _choiceCount;
    private readonly double _bias;
    private readonly bool _fullScan;
    private readonly ThreadLocal<ThreadEdfs> _edf = new(() => new ThreadEdfs());

    public LeastRequestLoadBalancer(LbRandom random, uint choiceCount = 2, double activeRequestBias = 1.0, bool fullScan = false)
    {
        _random = random;
        _choiceCount = Math.Max(choiceCount, 2);
        _bias = activeRequestBias;
        _fullScan = fullScan;
    }

    public override Host? ChooseHost(HostsSource hosts, in LoadBalancerContext context)
    {
        var t = TableFor(hosts);
        var h = t.Hosts;
        if (h.Length == 0) return null;
        if (h.Length == 1) return h[0];
        if (t.Weighted) return PickWeighted(hosts, h);
        return _fullScan ? PickFullScan(h) : PickNChoices(h);
    }

    protected override Table Build(Host[] hosts) => new(hosts, hosts.Length > 1 && !WeightsEqual(hosts));

    private Host PickNChoices(Host[] hosts)
    {
        var n = (uint)hosts.Length;
        var candidate = hosts[(int)(_random.Next() % n)];
        for (var c = 1u; c < _choiceCount; c++)
        {
            var sampled = hosts[(int)(_random.Next() % n)];
            if (sampled.ActiveRequests < candidate.ActiveRequests) candidate = sampled;
        }
        return candidate;
    }

    private Host PickFullScan(Host[] hosts)
    {
        var candidate = hosts[0];
        var least = candidate.ActiveRequests;
        ulong tied = 1;
        for (var i = 1; i < hosts.Length; i++)
        {
            var active = hosts[i].ActiveRequests;
            if (active < least)
            {
                candidate = hosts[i];
                least = active;
                tied = 1;
            }
            else if (active == least && _random.Next() % ++tied == 0)
            {
                candidate = hosts[i];
            }
        }
        return candidate;
    }

    private Host PickWeighted(HostsSource set, Host[] hosts)
    {
        var state = _edf.Value!;
        EdfScheduler? edf = null;
        for (var s = 0; s < ThreadEdfs.Slots; s++)
            if (ReferenceEquals(state.Sets[s], set)) { edf = state.Edfs[s]; break; }
        if (edf is null)
        {
            var slot = state.NextSlot;
            state.NextSlot = (slot + 1) % ThreadEdfs.Slots;
            edf = NewEdf(hosts);
            state.Sets[slot] = set;
            state.Edfs[slot] = edf;
        }
        var i = edf.Pop(out _);
        edf.Add(i, HostWeight(hosts[i]));
        return hosts[i];
    }

    private EdfScheduler NewEdf(Host[] hosts)
    {
        var edf = new EdfScheduler(hosts.Length);
        for (var i = 0; i < hosts.Length; i++) edf.Add(i, HostWeight(hosts[i]));
        // Envoy's createWithPicks: start each scheduler at a random point so workers do not move in lockstep.
        var skip = (int)(_random.Next() % (uint)hosts.Length);
        for (var k = 0; k < skip; k++)
        {
            var i = edf.Pop(out _);
            edf.Add(i, HostWeight(hosts[i]));
        }
        return edf;
    }

    /// <summary>Envoy's <c>hostWeight</c>: weight / (active + 1)^bias; bias 0 is plain weighted round robin.</summary>
    private double HostWeight(Host host)
    {
        double weight = host.Weight;
        if (_bias == 0.0) return weight;
        var active = (double)host.ActiveRequests + 1;
        return _bias == 1.0 ? weight / active : weight / Math.Pow(active, _bias);
    }
}
