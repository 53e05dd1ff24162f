using CSharpEnvoy.Config.Loading;
using CSharpEnvoy.Config.Model.Cluster;
using CSharpEnvoy.Config.Model.Listener;
using CSharpEnvoy.Config.Translation;
using CSharpEnvoy.DataPlane.Stats;
using CSharpEnvoy.DataPlane.Upstream;
using Microsoft.Extensions.Logging.Abstractions;

namespace CSharpEnvoy.IntegrationTests.LoadBalancing;

/// <summary>An EDS update keeps the host object (and its per-host state) of every endpoint at the same address and
/// locality, whatever the cluster's size (large clusters find them by address); a new weight or priority is applied to
/// the kept host in place, as Envoy's in-place host update does.</summary>
public sealed class EdsHostReuseTests
{
    private static Cluster NewCluster()
    {
        var errors = new ConfigErrors();
        var model = ClusterTranslator.Translate(new Envoy.Config.Cluster.V3.Cluster
        {
            Name = "c",
            Type = Envoy.Config.Cluster.V3.Cluster.Types.DiscoveryType.Eds,
            EdsClusterConfig = new() { EdsConfig = new() { Ads = new() } },
        }, "c", errors)!;
        Assert.False(errors.HasErrors, errors.ToString());
        return new Cluster(model, new StatsStore(), NullLogger.Instance);
    }

    private static EndpointModel Endpoint(int i, uint weight = 1, string zone = "", uint priority = 0) =>
        new(new SocketAddressModel("10.0." + (i / 256) + "." + (i % 256), 8080), null, new LocalityModel("", zone, ""), weight, Priority: priority);

    [Theory]
    [InlineData(5)]
    [InlineData(2000)]
    public void SameEndpoints_KeepTheirHosts_ReweightedInPlace_MovedOnesGetNewHosts(int size)
    {
        using var cluster = NewCluster();
        var first = Enumerable.Range(0, size).Select(i => Endpoint(i)).ToList();
        cluster.SetEdsEndpoints(first);
        var before = cluster.PrioritySet.Hosts.ToDictionary(h => h.Address.Address);

        // Reversed order; endpoint 0 removed, 1 reweighted, 2 moved to another zone, one new endpoint.
        var second = Enumerable.Range(3, size - 3).Reverse().Select(i => Endpoint(i)).ToList();
        second.Add(Endpoint(1, weight: 5));
        second.Add(Endpoint(2, zone: "b"));
        second.Add(Endpoint(size + 1));
        cluster.SetEdsEndpoints(second);
        var after = cluster.PrioritySet.Hosts.ToDictionary(h => h.Address.Address);

        Assert.Equal(size, after.Count);
        Assert.False(after.ContainsKey(Endpoint(0).Address.Address));
        for (var i = 3; i < size; i++)
        {
            var address = Endpoint(i).Address.Address;
            Assert.Same(before[address], after[address]);
        }
        Assert.Same(before[Endpoint(1).Address.Address], after[Endpoint(1).Address.Address]);
        Assert.Equal(5u, after[Endpoint(1).Address.Address].Weight);
        Assert.NotSame(before[Endpoint(2).Address.Address], after[Endpoint(2).Address.Address]);
        Assert.Equal("b", after[Endpoint(2).Address.Address].Locality.Zone);
    }

    [Theory]
    [InlineData(5)]
    [InlineData(2000)]
    public void WeightChange_IsNoMembershipChange_PriorityChangeIs(int size)
    {
        using var cluster = NewCluster();
        cluster.SetEdsEndpoints(Enumerable.Range(0, size).Select(i => Endpoint(i)).ToList());
        var host = cluster.PrioritySet.Hosts.First(h => h.Address.Equals(Endpoint(1).Address));
        var changes = cluster.Stats.MembershipChange.Value;

        cluster.SetEdsEndpoints(Enumerable.Range(0, size).Select(i => Endpoint(i, weight: i == 1 ? 7u : 1u)).ToList());
        Assert.Equal(changes, cluster.Stats.MembershipChange.Value);
        Assert.Equal(7u, host.Weight);

        cluster.SetEdsEndpoints(Enumerable.Range(0, size).Select(i => Endpoint(i, weight: i == 1 ? 7u : 1u, priority: i == 1 ? 1u : 0u)).ToList());
        Assert.Equal(changes + 1, cluster.Stats.MembershipChange.Value);
        Assert.Same(host, cluster.PrioritySet.Hosts.First(h => h.Address.Equals(Endpoint(1).Address)));
        Assert.Equal(1u, host.Priority);
    }

    [Theory]
    [InlineData(5)]
    [InlineData(2000)]
    public void AnAddressListedTwice_KeepsTwoHosts(int size)
    {
        using var cluster = NewCluster();
        var twice = Enumerable.Range(0, size).Select(i => Endpoint(i)).Append(Endpoint(0, priority: 1)).ToList();
        cluster.SetEdsEndpoints(twice);
        Assert.Equal(size + 1, cluster.PrioritySet.Hosts.Distinct().Count());
        var reweighted = Enumerable.Range(0, size).Select(i => Endpoint(i, weight: 3)).Append(Endpoint(0, weight: 4, priority: 1)).ToList();
        cluster.SetEdsEndpoints(reweighted);
        var zeros = cluster.PrioritySet.Hosts.Where(h => h.Address.Equals(Endpoint(0).Address)).ToList();
        Assert.Equal(2, zeros.Distinct().Count());
        Assert.Equal(size + 1, cluster.PrioritySet.Hosts.Distinct().Count());
    }
}
