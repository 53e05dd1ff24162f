using CSharpEnvoy.IntegrationTests.Infrastructure;
using CSharpEnvoy.IntegrationTests.Xds;
using static CSharpEnvoy.IntegrationTests.HealthChecking.HealthTestKit;

namespace CSharpEnvoy.IntegrationTests.HealthChecking;

/// <summary>Envoy's <c>ignore_health_on_host_removal</c>: with active health checking, a host EDS removed stays
/// (pending_dynamic_removal) until its check fails, unless the cluster says to ignore its health.</summary>
public sealed class HostRemovalTests
{
    private static string Bootstrap(int controlPlanePort, bool ignore) => $$"""
        admin: { address: { socket_address: { address: 127.0.0.1, port_value: 0 } } }
        dynamic_resources:
          ads_config:
            api_type: GRPC
            transport_api_version: V3
            grpc_services: [{ envoy_grpc: { cluster_name: xds_cluster } }]
        static_resources:
          listeners:
          - name: main
            address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
            filter_chains:
            - filters:
              - name: envoy.filters.network.http_connection_manager
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                  stat_prefix: ingress
                  route_config: { virtual_hosts: [{ name: v, domains: ["*"], routes: [{ match: { prefix: "/" }, route: { cluster: c } }] }] }
                  http_filters:
                  - name: envoy.filters.http.router
                    typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
          clusters:
          - name: xds_cluster
            type: STATIC
            connect_timeout: 1s
            typed_extension_protocol_options:
              envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
                "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
                explicit_http_config: { http2_protocol_options: {} }
            load_assignment:
              cluster_name: xds_cluster
              endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{controlPlanePort}} } } } }] }]
          - name: c
            type: EDS
            connect_timeout: 1s
            ignore_health_on_host_removal: {{(ignore ? "true" : "false")}}
            eds_cluster_config: { eds_config: { ads: {}, resource_api_version: V3 } }
            health_checks:
            - timeout: 1s
              interval: 1s
              no_traffic_interval: 1s
              unhealthy_threshold: 1
              healthy_threshold: 1
              http_health_check: { path: /healthz }
        """;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task RemovedHost_StaysUntilItsCheckFails_UnlessIgnoreHealthOnHostRemoval(bool ignore)
    {
        await using var a = await FlipBackend.StartAsync("a");
        await using var b = await FlipBackend.StartAsync("b");
        await using var cp = await TestControlPlane.StartAsync();
        cp.SetSnapshot("v1", AdsTests.Cla("c", a.Port, b.Port));
        var time = new ManualTimeProvider();
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(cp.Port, ignore), time: time);
        await WaitStatAsync(proxy, "cluster.c.membership_healthy", 2);

        cp.SetSnapshot("v2", AdsTests.Cla("c", a.Port));
        await cp.WaitForAckAsync(TestControlPlane.EndpointType, "v2");
        var clusters = await ClustersAsync(proxy);
        if (ignore)
        {
            Assert.DoesNotContain($"127.0.0.1:{b.Port}", clusters);
            Assert.Equal(1, await proxy.StatAsync("cluster.c.membership_total"));
            return;
        }
        Assert.Equal("/pending_dynamic_removal", HealthFlags(clusters, b.Port));
        Assert.Equal(2, await proxy.StatAsync("cluster.c.membership_healthy"));

        // Its next check fails: it goes, and its checks stop.
        b.HealthStatus = 503;
        var failures = await proxy.StatAsync("cluster.c.health_check.failure");
        time.Advance(TimeSpan.FromSeconds(1));
        await WaitStatAsync(proxy, "cluster.c.health_check.failure", failures + 1);
        await WaitUntilAsync(async () => !(await ClustersAsync(proxy)).Contains($"127.0.0.1:{b.Port}", StringComparison.Ordinal), "b to be removed");
        Assert.Equal(1, await proxy.StatAsync("cluster.c.membership_total"));
        var spread = await SpreadAsync(proxy, 6);
        Assert.Equal(6, spread.GetValueOrDefault("a"));
        var checks = b.HealthChecks;
        await RoundAsync(proxy, time, 1);
        Assert.Equal(checks, b.HealthChecks);
    }

    [Fact]
    public async Task PendingHost_BroughtBackByTheNextUpdate_IsNoLongerPending()
    {
        await using var a = await FlipBackend.StartAsync("a");
        await using var b = await FlipBackend.StartAsync("b");
        await using var cp = await TestControlPlane.StartAsync();
        cp.SetSnapshot("v1", AdsTests.Cla("c", a.Port, b.Port));
        var time = new ManualTimeProvider();
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(cp.Port, ignore: false), time: time);
        await WaitStatAsync(proxy, "cluster.c.membership_healthy", 2);

        cp.SetSnapshot("v2", AdsTests.Cla("c", a.Port));
        await cp.WaitForAckAsync(TestControlPlane.EndpointType, "v2");
        Assert.Equal("/pending_dynamic_removal", HealthFlags(await ClustersAsync(proxy), b.Port));
        cp.SetSnapshot("v3", AdsTests.Cla("c", a.Port, b.Port));
        await cp.WaitForAckAsync(TestControlPlane.EndpointType, "v3");
        Assert.Equal("healthy", HealthFlags(await ClustersAsync(proxy), b.Port));

        // No longer pending: a failing check marks it unhealthy but keeps it, as for any assigned host.
        b.HealthStatus = 503;
        await RoundAsync(proxy, time, 2);
        Assert.Equal("/failed_active_hc", HealthFlags(await ClustersAsync(proxy), b.Port));
        Assert.Equal(2, await proxy.StatAsync("cluster.c.membership_total"));
    }
}
