using CSharpEnvoy.Config.Loading;
using CSharpEnvoy.Config.Model.Cluster;
using CSharpEnvoy.Config.Model.Listener;
using CSharpEnvoy.Config.Translation;
using CSharpEnvoy.DataPlane.Stats;
using CSharpEnvoy.DataPlane.Upstream;
using Microsoft.Extensions.Logging.Abstractions;

namespace CSharpEnvoy.IntegrationTests.LoadBalancing;

/// <summary>An EDS update keeps the host object (and its per-host state) of every unchanged endpoint, whatever the
/// cluster's size (large clusters find them by address).</summary>
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

    private static EndpointModel Endpoint(int i, uint weight = 1, string zone = "") =>
        new(new SocketAddressModel("10.0." + (i / 256) + "." + (i % 256), 8080), null, new LocalityModel("", zone, ""), weight);

    [Theory]
    [InlineData(5)]
    [InlineData(2000)]
    public void UnchangedEndpoints_KeepTheirHosts_ChangedOnesGetNewHosts(int size)
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
        Assert.NotSame(before[Endpoint(1).Address.Address], after[Endpoint(1).Address.Address]);
        Assert.Equal(5u, after[Endpoint(1).Address.Address].Weight);
        Assert.NotSame(before[Endpoint(2).Address.Address], after[Endpoint(2).Address.Address]);
        Assert.Equal("b", after[Endpoint(2).Address.Address].Locality.Zone);
    }
}
