using CSharpEnvoy.IntegrationTests.Infrastructure;
using Envoy.Service.Discovery.V3;
using Google.Protobuf;
using static CSharpEnvoy.IntegrationTests.Xds.AdsTests;
using static CSharpEnvoy.IntegrationTests.Xds.TestControlPlane;

namespace CSharpEnvoy.IntegrationTests.Xds;

/// <summary>Per-type xDS streams (<c>api_config_source</c> on each config source, no ADS) against the per-type
/// services of <see cref="TestControlPlane"/>.</summary>
public sealed class PerTypeXdsTests
{
    private static string ApiSource(string apiType) =>
        $"{{ api_config_source: {{ api_type: {apiType}, transport_api_version: V3, grpc_services: [{{ envoy_grpc: {{ cluster_name: xds_cluster }} }}] }}, resource_api_version: V3 }}";

    /// <summary>AdsTests' bootstrap without ads_config, each type on a stream of its own.</summary>
    private static string PerTypeBootstrap(int port, string cdsType, string ldsType)
    {
        var yaml = Bootstrap(port)
            .Replace("cds_config: { ads: {}, resource_api_version: V3 }", "cds_config: " + ApiSource(cdsType))
            .Replace("lds_config: { ads: {}, resource_api_version: V3 }", "lds_config: " + ApiSource(ldsType));
        var start = yaml.IndexOf("  ads_config:", StringComparison.Ordinal);
        var end = yaml.IndexOf("  cds_config:", StringComparison.Ordinal);
        return yaml.Remove(start, end - start);
    }

    private static IMessage[] PerTypeSnapshot(int backendPort, string edsType, string rdsType)
    {
        var cluster = EdsCluster("backend");
        cluster.EdsClusterConfig.EdsConfig = Load<Envoy.Config.Core.V3.ConfigSource>(ApiSource(edsType));
        var listener = RdsListener("ingress", "routes");
        var hcmAny = listener.FilterChains[0].Filters[0].TypedConfig;
        var hcm = hcmAny.Unpack<Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpConnectionManager>();
        hcm.Rds.ConfigSource = Load<Envoy.Config.Core.V3.ConfigSource>(ApiSource(rdsType));
        listener.FilterChains[0].Filters[0].TypedConfig = Google.Protobuf.WellKnownTypes.Any.Pack(hcm);
        return [cluster, Cla("backend", backendPort), listener, Routes("routes", "backend")];
    }

    [Theory]
    [InlineData("GRPC", "DELTA_GRPC")]
    [InlineData("DELTA_GRPC", "GRPC")]
    public async Task PerTypeStreams_DriveRealTraffic_WithoutAds(string first, string second)
    {
        await using var a = await TestBackend.StartEchoAsync("a");
        await using var b = await TestBackend.StartEchoAsync("b");
        await using var cp = await TestControlPlane.StartAsync();
        cp.SetSnapshot("v1", PerTypeSnapshot(a.Port, edsType: first, rdsType: second));
        await using var proxy = await ProxyHarness.StartAsync(PerTypeBootstrap(cp.Port, cdsType: first, ldsType: second));
        using var client = await ListenerClientAsync(proxy, "ingress");
        await EventuallyAsync(client, "a");

        // One stream per type, on the per-type services; nothing on the aggregated one.
        string Method(string type, string api) => (api == "GRPC" ? "Stream" : "Delta") + type;
        foreach (var m in new[] { Method("Clusters", first), Method("Endpoints", first), Method("Listeners", second), Method("Routes", second) })
            Assert.True(cp.StreamsByMethod.TryGetValue(m, out var n) && n == 1, $"{m}: {n} streams");
        Assert.False(cp.StreamsByMethod.ContainsKey("StreamAggregatedResources"));
        Assert.False(cp.StreamsByMethod.ContainsKey("DeltaAggregatedResources"));
        Assert.Equal(1, await proxy.StatAsync("control_plane.connected_state"));

        // Each stream opens with the node.
        var sotw = cp.Received.OfType<DiscoveryRequest>().Where(r => r.ResponseNonce.Length == 0).ToList();
        var delta = cp.Received.OfType<DeltaDiscoveryRequest>().Where(r => r.ResponseNonce.Length == 0).ToList();
        Assert.Equal(4, sotw.Count + delta.Count);
        Assert.All(sotw, r => Assert.Equal("node-1", r.Node.Id));
        Assert.All(delta, r => Assert.Equal("node-1", r.Node.Id));

        // An endpoint change on the EDS stream moves traffic, and a route change on the RDS stream.
        var cluster = proxy.Server.ClusterManager.Get("backend");
        cp.SetSnapshot("v2", PerTypeSnapshot(b.Port, edsType: first, rdsType: second));
        await EventuallyAsync(client, "b");
        Assert.Same(cluster, proxy.Server.ClusterManager.Get("backend"));
        var routes = Routes("routes", "backend", "/only-here");
        var snapshot = PerTypeSnapshot(b.Port, edsType: first, rdsType: second);
        snapshot[3] = routes;
        cp.SetSnapshot("v3", snapshot);
        await EventuallyAsync(client, "404");
        Assert.Equal("b", await BackendOfAsync(client, "/only-here"));
    }
}
