using CSharpEnvoy.DataPlane.Upstream;
using LbHost = CSharpEnvoy.DataPlane.Upstream.Host;
using CSharpEnvoy.DataPlane.Upstream.LoadBalancing;
using static CSharpEnvoy.IntegrationTests.LoadBalancing.LbTestHosts;

namespace CSharpEnvoy.IntegrationTests.LoadBalancing;

/// <summary>Each balancer over 10,000 picks with a fixed seed, against the shares Envoy's algorithm gives.</summary>
public sealed class BalancerDistributionTests
{
    private const int Picks = 10_000;
    private static LbRandom Rng() => LbRandom.Seeded(42);

    [Fact]
    public void RoundRobin_EqualWeights_IsAnExactRotation()
    {
        var set = Set(4);
        var lb = new RoundRobinLoadBalancer(Rng());
        var first = lb.ChooseHost(set, LoadBalancerContext.None)!;
        var start = Array.IndexOf(set.Hosts, first);
        for (var i = 1; i < 12; i++) Assert.Same(set.Hosts[(start + i) % 4], lb.ChooseHost(set, LoadBalancerContext.None));
        var counts = Count(() => lb.ChooseHost(set, LoadBalancerContext.None), Picks);
        Assert.All(set.Hosts, h => Assert.Equal(Picks / 4, counts[h]));
    }

    [Fact]
    public void RoundRobin_Weighted_FollowsWeightsExactlyPerPeriod_AndIsSmooth()
    {
        // Weights 1:2:3:4 → a period of 10 picks; 10,000 picks are 1,000 whole periods, so shares are exact.
        var set = Set(4, i => (uint)(i + 1));
        var lb = new RoundRobinLoadBalancer(Rng());
        var sequence = new LbHost[Picks];
        for (var i = 0; i < Picks; i++) sequence[i] = lb.ChooseHost(set, LoadBalancerContext.None)!;
        for (var h = 0; h < 4; h++) Assert.Equal(Picks * (h + 1) / 10, sequence.Count(x => x == set.Hosts[h]));
        // EDF spreads picks: the weight-4 host never gets more than 2 in a row and the weight-1 host reappears
        // within every 10 picks (no bursts).
        var run = 0;
        var maxRun = 0;
        var lastLight = -1;
        var maxGap = 0;
        for (var i = 0; i < Picks; i++)
        {
            run = sequence[i] == set.Hosts[3] ? run + 1 : 0;
            maxRun = Math.Max(maxRun, run);
            if (sequence[i] == set.Hosts[0])
            {
                if (lastLight >= 0) maxGap = Math.Max(maxGap, i - lastLight);
                lastLight = i;
            }
        }
        Assert.InRange(maxRun, 1, 2);
        Assert.Equal(10, maxGap);
    }

    [Fact]
    public void RoundRobin_NewHostSet_RebuildsItsTableOnce()
    {
        var lb = new RoundRobinLoadBalancer(Rng());
        var a = Set(3, i => (uint)(i + 1));
        var tableA = lb.TableFor(a);
        Assert.Same(tableA, lb.TableFor(a));
        var b = new HostsSource(a.Hosts[..2]);
        var tableB = lb.TableFor(b);
        Assert.NotSame(tableA, tableB);
        Assert.Same(tableB, lb.TableFor(b));
        Assert.All(Enumerable.Range(0, 100), _ => Assert.Contains(lb.ChooseHost(b, LoadBalancerContext.None), b.Hosts));
    }

    [Fact]
    public void Random_IsUniform_AndIgnoresWeightsAsEnvoyDoes()
    {
        var set = Set(4, i => (uint)(i + 1));
        var lb = new RandomLoadBalancer(Rng());
        var counts = Count(() => lb.ChooseHost(set, LoadBalancerContext.None), Picks);
        // 25 % each ± 2 points (binomial sd at n = 10,000 is 0.43 points: > 4.5 sigma).
        Assert.All(set.Hosts, h => Assert.InRange(100.0 * counts[h] / Picks, 23.0, 27.0));
    }

    [Fact]
    public void LeastRequest_TwoChoices_AvoidsTheBusyHost()
    {
        var set = Set(4);
        for (var i = 0; i < 10; i++) set.Hosts[0].RequestStarted();
        var lb = new LeastRequestLoadBalancer(Rng());
        var counts = Count(() => lb.ChooseHost(set, LoadBalancerContext.None), Picks);
        // The busy host wins only when both samples are it: 1/16 = 6.25 % (± 1.5 points, > 6 sigma).
        Assert.InRange(100.0 * counts.GetValueOrDefault(set.Hosts[0]) / Picks, 4.75, 7.75);
        for (var h = 1; h < 4; h++) Assert.InRange(100.0 * counts[set.Hosts[h]] / Picks, 29.0, 33.5);
    }

    [Fact]
    public void LeastRequest_FullScan_NeverPicksABusierHost()
    {
        var set = Set(4);
        set.Hosts[0].RequestStarted();
        set.Hosts[2].RequestStarted();
        var lb = new LeastRequestLoadBalancer(Rng(), fullScan: true);
        var counts = Count(() => lb.ChooseHost(set, LoadBalancerContext.None), Picks);
        Assert.False(counts.ContainsKey(set.Hosts[0]));
        Assert.False(counts.ContainsKey(set.Hosts[2]));
        // Ties are broken at random: about half each (± 3 points).
        Assert.InRange(100.0 * counts[set.Hosts[1]] / Picks, 47.0, 53.0);
    }

    [Fact]
    public void LeastRequest_UnequalWeights_UsesEdfWithActiveRequestBias()
    {
        var set = Set(2, i => i == 0 ? 1u : 3u);
        var lb = new LeastRequestLoadBalancer(Rng());
        var idle = Count(() => lb.ChooseHost(set, LoadBalancerContext.None), Picks);
        // Idle hosts: plain weighted EDF, 25 / 75 (± 1 point).
        Assert.InRange(100.0 * idle[set.Hosts[0]] / Picks, 24.0, 26.0);

        // Host 1 with 5 active requests: effective weights 1/1 and 3/6 → 2 : 1.
        for (var i = 0; i < 5; i++) set.Hosts[1].RequestStarted();
        var busy = Count(() => lb.ChooseHost(set, LoadBalancerContext.None), Picks);
        Assert.InRange(100.0 * busy[set.Hosts[0]] / Picks, 64.0, 69.0);

        // active_request_bias 0 ignores load: back to 25 / 75.
        var flat = new LeastRequestLoadBalancer(Rng(), activeRequestBias: 0.0);
        var flatCounts = Count(() => flat.ChooseHost(set, LoadBalancerContext.None), Picks);
        Assert.InRange(100.0 * flatCounts[set.Hosts[0]] / Picks, 24.0, 26.0);
    }

    [Fact]
    public void AllBalancers_EmptyHostSet_ReturnNull()
    {
        var empty = HostsSource.Empty;
        ILoadBalancer[] all =
        {
            new RoundRobinLoadBalancer(Rng()), new RandomLoadBalancer(Rng()), new LeastRequestLoadBalancer(Rng()),
            new RingHashLoadBalancer(Rng()), new MaglevLoadBalancer(Rng()),
        };
        foreach (var lb in all)
        {
            Assert.Null(lb.ChooseHost(empty, LoadBalancerContext.None));
            Assert.Null(lb.ChooseHost(empty, new LoadBalancerContext(123)));
        }
    }
}
