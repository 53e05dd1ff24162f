using CSharpEnvoy.IntegrationTests.Http;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using CSharpEnvoy.IntegrationTests.Xds;
using static CSharpEnvoy.IntegrationTests.Xds.AdsTests;

namespace CSharpEnvoy.IntegrationTests.Host;

/// <summary>
/// The csenvoy executable configured over xDS, as deployed: the gRPC ADS client against <see cref="TestControlPlane"/>
/// (resources arrive as Any and resolve by type URL) and filesystem xDS. With <c>CSENVOY_EXE</c> these run the Native
/// AOT binary (bench/load/aot_smoke.sh), where type lookup by reflection and the gRPC client are what trimming can break.
/// </summary>
public sealed class ExecutableXdsTests
{
    [Fact]
    public async Task Ads_ListenerRoutesClusterAndEndpointsFromTheControlPlane_ServeTraffic()
    {
        await using var backend = await TestBackend.StartEchoAsync("a");
        await using var cp = await TestControlPlane.StartAsync();
        // Ports 0 everywhere: the admin's address comes from --admin-address-path, the listener's from /listeners.
        cp.SetSnapshot("v1", EdsCluster("backend"), Cla("backend", backend.Port), RdsListener("ingress", "routes"), Routes("routes", "backend"));
        var (proc, admin) = await CsEnvoyProcess.StartWithAdminAsync("--config-yaml", Bootstrap(cp.Port), "-l", "warning");
        await using var _ = proc;
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        await CommandLineTests.WaitReadyAsync(http, admin + "/ready", proc);
        foreach (var t in new[] { TestControlPlane.ClusterType, TestControlPlane.EndpointType, TestControlPlane.ListenerType, TestControlPlane.RouteType })
            await cp.WaitForAckAsync(t, "v1");

        var listener = await CsEnvoyProcess.ListenerAddressAsync(http, admin, "ingress");
        using var client = new HttpClient { BaseAddress = new Uri($"http://{listener}"), Timeout = TimeSpan.FromSeconds(10) };
        await EventuallyAsync(client, "a");
        var stats = await http.GetStringAsync(admin + "/stats");
        Assert.Contains("control_plane.connected_state: 1", stats);
        Assert.Contains("listener_manager.lds.update_success: 1", stats);
        Assert.Contains("cluster.backend.update_success: 1", stats);
        var dump = await http.GetStringAsync(admin + "/config_dump");
        Assert.Contains("type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager", dump);
        Assert.Contains("\"stat_prefix\": \"ingress\"", dump);
        Assert.Contains("dynamic_route_configs", dump);
    }

    [Fact]
    public async Task FilesystemXds_ListenerAndClusterFiles_ServeTraffic()
    {
        await using var backend = await TestBackend.StartEchoAsync("a");
        var dir = Directory.CreateTempSubdirectory("csenvoy-exe-fsxds-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "cds.yaml"), $$"""
                resources:
                - "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
                  name: backend
                  type: STATIC
                  load_assignment:
                    cluster_name: backend
                    endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{backend.Port}} } } } }] }]
                """);
            File.WriteAllText(Path.Combine(dir, "lds.yaml"), $$"""
                resources:
                - "@type": type.googleapis.com/envoy.config.listener.v3.Listener
                  name: ingress
                  address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
                  filter_chains:
                  - filters:
                    - name: envoy.filters.network.http_connection_manager
                      typed_config:
                        "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                        stat_prefix: ingress
                        route_config: { virtual_hosts: [{ name: vh, domains: ["*"], routes: [{ match: { prefix: "/" }, route: { cluster: backend } }] }] }
                        http_filters:
                        - name: envoy.filters.http.router
                          typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
                """);
            var bootstrap = $$"""
                node: { id: node-1, cluster: test }
                admin: { address: { socket_address: { address: 127.0.0.1, port_value: 0 } } }
                dynamic_resources:
                  cds_config: { path_config_source: { path: {{Path.Combine(dir, "cds.yaml")}} } }
                  lds_config: { path_config_source: { path: {{Path.Combine(dir, "lds.yaml")}} } }
                """;

            var (proc, admin) = await CsEnvoyProcess.StartWithAdminAsync("--config-yaml", bootstrap, "-l", "warning");
            await using var _ = proc;
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            await CommandLineTests.WaitReadyAsync(http, admin + "/ready", proc);
            var listener = await CsEnvoyProcess.ListenerAddressAsync(http, admin, "ingress");
            using var client = new HttpClient { BaseAddress = new Uri($"http://{listener}"), Timeout = TimeSpan.FromSeconds(10) };
            await EventuallyAsync(client, "a");
            var stats = await http.GetStringAsync(admin + "/stats");
            Assert.Contains("cluster_manager.cds.update_success: 1", stats);
            Assert.Contains("listener_manager.lds.update_success: 1", stats);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
