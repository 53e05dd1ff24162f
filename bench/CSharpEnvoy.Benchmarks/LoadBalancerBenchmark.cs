using BenchmarkDotNet.Attributes;
using CSharpEnvoy.Config.Model.Cluster;
using CSharpEnvoy.Config.Model.Listener;
using CSharpEnvoy.DataPlane.Upstream;
using CSharpEnvoy.DataPlane.Upstream.LoadBalancing;

namespace CSharpEnvoy.Benchmarks;

/// <summary>One pick per balancer over 10 / 1,000 / 100,000 hosts (tables already built), and the table rebuild a
/// host-set change costs for ring hash and maglev.</summary>
[MemoryDiagnoser]
public class LoadBalancerBenchmark
{
    private HostsSource _equal = null!;
    private HostsSource _weighted = null!;
    private RoundRobinLoadBalancer _rr = null!;
    private RoundRobinLoadBalancer _wrr = null!;
    private LeastRequestLoadBalancer _lr = null!;
    private LeastRequestLoadBalancer _wlr = null!;
    private RandomLoadBalancer _random = null!;
    private RingHashLoadBalancer _ring = null!;
    private MaglevLoadBalancer _maglev = null!;
    private ulong _key;

    [Params(10, 1_000, 100_000)]
    public int Hosts { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _equal = Make(Hosts, _ => 1);
        _weighted = Make(Hosts, i => (uint)(i % 5 + 1));
        var rng = LbRandom.Shared;
        _rr = new RoundRobinLoadBalancer(rng);
        _wrr = new RoundRobinLoadBalancer(rng);
        _lr = new LeastRequestLoadBalancer(rng);
        _wlr = new LeastRequestLoadBalancer(rng);
        _random = new RandomLoadBalancer(rng);
        _ring = new RingHashLoadBalancer(rng);
        _maglev = new MaglevLoadBalancer(rng);
        _rr.Prepare(_equal);
        _wrr.Prepare(_weighted);
        _lr.Prepare(_equal);
        _wlr.Prepare(_weighted);
        _ring.Prepare(_equal);
        _maglev.Prepare(_equal);
    }

    private static HostsSource Make(int n, Func<int, uint> weight)
    {
        var hosts = new Host[n];
        for (var i = 0; i < n; i++)
            hosts[i] = new Host(new SocketAddressModel($"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", 8080), null, LocalityModel.Empty, "bench", false, weight(i));
        return new HostsSource(hosts);
    }

    private LoadBalancerContext NextKey() => new(_key += 0x9E3779B97F4A7C15UL);

    [Benchmark] public object? RoundRobin() => _rr.ChooseHost(_equal, LoadBalancerContext.None);
    [Benchmark] public object? RoundRobinWeighted() => _wrr.ChooseHost(_weighted, LoadBalancerContext.None);
    [Benchmark] public object? LeastRequest() => _lr.ChooseHost(_equal, LoadBalancerContext.None);
    [Benchmark] public object? LeastRequestWeighted() => _wlr.ChooseHost(_weighted, LoadBalancerContext.None);
    [Benchmark] public object? Random() => _random.ChooseHost(_equal, LoadBalancerContext.None);
    [Benchmark] public object? RingHash() => _ring.ChooseHost(_equal, NextKey());
    [Benchmark] public object? Maglev() => _maglev.ChooseHost(_equal, NextKey());
}

/// <summary>Rebuilding ring hash / maglev / weighted round robin tables for 100,000 hosts (a host-set change).</summary>
[MemoryDiagnoser]
public class LoadBalancerRebuildBenchmark
{
    private Host[] _hosts = null!;

    [GlobalSetup]
    public void Setup()
    {
        _hosts = new Host[100_000];
        for (var i = 0; i < _hosts.Length; i++)
            _hosts[i] = new Host(new SocketAddressModel($"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", 8080), null, LocalityModel.Empty, "bench", false, (uint)(i % 5 + 1));
    }

    [Benchmark] public int RingHash100k() => new RingHashLoadBalancer(LbRandom.Shared).TableFor(new HostsSource(_hosts)).Hashes.Length;
    [Benchmark] public int Maglev100k() => new MaglevLoadBalancer(LbRandom.Shared).TableFor(new HostsSource(_hosts)).Entries.Length;
    [Benchmark] public int Maglev100kTable1000003() => new MaglevLoadBalancer(LbRandom.Shared, 1_000_003).TableFor(new HostsSource(_hosts)).Entries.Length;
    [Benchmark] public int WeightedRoundRobin100k() => new RoundRobinLoadBalancer(LbRandom.Shared).TableFor(new HostsSource(_hosts)).Schedule!.Length;
}

/// <summary>
/// The whole cluster pick a request pays: priority choice, zone-aware locality choice (Envoy's residual case, three
/// zones) and the endpoint pick, over 10 / 1,000 / 100,000 hosts; and rebuilding the priority set on a change.
/// </summary>
[MemoryDiagnoser]
public class ClusterPickBenchmark
{
    private static readonly LocalityModel[] Zones = [new("", "a", ""), new("", "b", ""), new("", "c", "")];
    private PrioritySet _zoneAware = null!;
    private PrioritySet _plain = null!;
    private Host[] _hosts = null!;
    private PrioritySet _local = null!;
    private ClusterLoadBalancer _rr = null!;
    private ClusterLoadBalancer _lr = null!;

    [Params(10, 1_000, 100_000)]
    public int Hosts { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        // Upstream 25% / 50% / 25% over zones a / b / c, the local fleet 40% / 40% / 20%: 62.5% stays in zone a.
        _hosts = new Host[Hosts];
        for (var i = 0; i < Hosts; i++)
        {
            var zone = (i % 4) switch { 0 => Zones[0], 3 => Zones[2], _ => Zones[1] };
            _hosts[i] = new Host(new SocketAddressModel($"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", 8080), null, zone, "bench");
        }
        var localHosts = new Host[5];
        for (var i = 0; i < 5; i++) localHosts[i] = new Host(new SocketAddressModel("10.255.0." + i, 1), null, Zones[i < 2 ? 0 : i < 4 ? 1 : 2], "local");
        var options = PrioritySetOptions.Default with { LocalLocality = Zones[0], ZoneAware = new ZoneAwareModel { MinClusterSize = 1 } };
        _local = PrioritySet.Build(localHosts, options, null, null);
        _zoneAware = PrioritySet.Build(_hosts, options, _local, null);
        _plain = PrioritySet.Build(_hosts, PrioritySetOptions.Default, null, null);
        var stats = new LbStats(new CSharpEnvoy.DataPlane.Stats.StatsStore(), "bench");
        _rr = new ClusterLoadBalancer(LoadBalancerConfigModel.Default, LbRandom.Shared, stats);
        _lr = new ClusterLoadBalancer(new LoadBalancerConfigModel { Policy = LbPolicy.LeastRequest }, LbRandom.Shared, stats);
        _rr.Prepare(_zoneAware);
        _lr.Prepare(_zoneAware);
    }

    [Benchmark] public object? RoundRobinPlain() => _rr.ChooseHost(_plain, LoadBalancerContext.None);
    [Benchmark] public object? RoundRobinZoneAware() => _rr.ChooseHost(_zoneAware, LoadBalancerContext.None);
    [Benchmark] public object? LeastRequestZoneAware() => _lr.ChooseHost(_zoneAware, LoadBalancerContext.None);
    [Benchmark] public object RebuildPrioritySet() => PrioritySet.Build(_hosts, PrioritySetOptions.Default with { LocalLocality = Zones[0] }, _local, null);
}
