using CSharpEnvoy.IntegrationTests.Infrastructure;
using Envoy.Service.Discovery.V3;
using Google.Protobuf;
using static CSharpEnvoy.IntegrationTests.Xds.AdsTests;
using static CSharpEnvoy.IntegrationTests.Xds.TestControlPlane;

namespace CSharpEnvoy.IntegrationTests.Xds;

/// <summary>Responses large enough to be applied in parallel (a mesh's first push): every cluster and assignment lands
/// where it belongs, and one bad resource among hundreds NACKs the response naming that resource alone.</summary>
public sealed class XdsLargePushTests
{
    private const int Clusters = 400; // above the size from which a response is processed on all cores

    private static Envoy.Config.Route.V3.RouteConfiguration RoutesToEach(int count)
    {
        var vh = new Envoy.Config.Route.V3.VirtualHost { Name = "vh", Domains = { "*" } };
        for (var i = 0; i < count; i++)
            vh.Routes.Add(new Envoy.Config.Route.V3.Route
            {
                Match = new Envoy.Config.Route.V3.RouteMatch { Prefix = $"/c{i}/" },
                Route_ = new Envoy.Config.Route.V3.RouteAction { Cluster = $"cluster-{i}" },
            });
        return new Envoy.Config.Route.V3.RouteConfiguration { Name = "routes", VirtualHosts = { vh } };
    }

    private static List<IMessage> Push(int a, int b, Func<int, Envoy.Config.Endpoint.V3.ClusterLoadAssignment>? assignment = null,
        Func<int, Envoy.Config.Cluster.V3.Cluster>? cluster = null)
    {
        var resources = new List<IMessage>();
        for (var i = 0; i < Clusters; i++)
        {
            resources.Add(cluster?.Invoke(i) ?? EdsCluster($"cluster-{i}"));
            // Even clusters go to a, odd ones to b.
            resources.Add(assignment?.Invoke(i) ?? Cla($"cluster-{i}", i % 2 == 0 ? a : b));
        }
        resources.Add(RdsListener("ingress", "routes"));
        resources.Add(RoutesToEach(Clusters));
        return resources;
    }

    private static int[] Sample => [0, 1, 2, 97, 128, 255, 256, 257, 300, 333, 398, 399];

    [Theory]
    [InlineData("GRPC")]
    [InlineData("DELTA_GRPC")]
    public async Task EveryClusterGetsItsOwnEndpoints_AndOneBadResourceIsNamedInTheNack(string apiType)
    {
        await using var a = await TestBackend.StartEchoAsync("a");
        await using var b = await TestBackend.StartEchoAsync("b");
        await using var cp = await TestControlPlane.StartAsync();
        cp.SetSnapshot("v1", [.. Push(a.Port, b.Port)]);
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(cp.Port, apiType));
        using var client = await ListenerClientAsync(proxy, "ingress");
        await FilesystemXdsTests.WaitForStatAsync(proxy, "server.live", 1);
        foreach (var i in Sample) Assert.Equal(i % 2 == 0 ? "a" : "b", await BackendOfAsync(client, $"/c{i}/"));
        Assert.Equal(0, await proxy.StatAsync("cluster_manager.warming_clusters"));
        Assert.Equal(Clusters + 1, await proxy.StatAsync("cluster_manager.active_clusters"));
        Assert.Equal(1, await proxy.StatAsync("cluster.cluster-399.update_success"));

        // Every endpoint moves (even clusters to b, odd to a), except cluster-301's assignment, which is invalid: the
        // whole response is rejected, its error names that assignment only, and traffic stays where it was.
        var bad = Push(b.Port, a.Port, i =>
        {
            var cla = Cla($"cluster-{i}", i % 2 == 0 ? b.Port : a.Port);
            if (i == 301) cla.Endpoints[0].LbEndpoints[0].Endpoint.Address.SocketAddress.Address = "not-an-ip";
            return cla;
        });
        cp.SetSnapshot("v2", [.. bad]);
        var message = await NackMessageAsync(cp, EndpointType, apiType);
        Assert.Contains("cluster-301", message);
        Assert.DoesNotContain("cluster-300", message);
        Assert.DoesNotContain("cluster-302", message);
        foreach (var i in Sample) Assert.Equal(i % 2 == 0 ? "a" : "b", await BackendOfAsync(client, $"/c{i}/"));

        // A bad cluster among hundreds: the CDS response is rejected naming it.
        cp.SetSnapshot("v3", [.. Push(a.Port, b.Port, cluster: i =>
        {
            var c = EdsCluster($"cluster-{i}");
            if (i == 257) c.ConnectTimeout = new Google.Protobuf.WellKnownTypes.Duration { Seconds = -1 };
            return c;
        })]);
        message = await NackMessageAsync(cp, ClusterType, apiType);
        Assert.Contains("cluster-257", message);
        Assert.DoesNotContain("cluster-256", message);

        // The good push moves every cluster.
        cp.SetSnapshot("v4", [.. Push(b.Port, a.Port)]);
        await EventuallyAsync(client, "b", "/c0/");
        foreach (var i in Sample) Assert.Equal(i % 2 == 0 ? "b" : "a", await BackendOfAsync(client, $"/c{i}/"));
    }

    private static async Task<string> NackMessageAsync(TestControlPlane cp, string typeUrl, string apiType) => apiType == "GRPC"
        ? (await cp.WaitForNackAsync(typeUrl)).ErrorDetail.Message
        : (await cp.WaitAsync<DeltaDiscoveryRequest>(r => r.TypeUrl == typeUrl && r.ErrorDetail is not null)).ErrorDetail.Message;
}
