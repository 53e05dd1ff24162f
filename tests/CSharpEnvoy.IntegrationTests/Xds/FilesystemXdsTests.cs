using CSharpEnvoy.IntegrationTests.Infrastructure;
using Envoy.Service.Discovery.V3;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using static CSharpEnvoy.IntegrationTests.Xds.AdsTests;

namespace CSharpEnvoy.IntegrationTests.Xds;

/// <summary>Filesystem xDS: LDS, CDS, RDS and EDS from watched files, replaced atomically (write, then rename) as
/// Envoy expects.</summary>
public sealed class FilesystemXdsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("csenvoy-fsxds-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string PathOf(string name) => Path.Combine(_dir, name);

    /// <summary>Writes beside the target, then renames over it: the one event Envoy (and csenvoy) reload on.</summary>
    internal static void Publish(string path, string content) => Publish(path, System.Text.Encoding.UTF8.GetBytes(content));

    internal static void Publish(string path, byte[] content)
    {
        var tmp = path + ".tmp-" + Guid.NewGuid().ToString("N")[..6];
        File.WriteAllBytes(tmp, content);
        File.Move(tmp, path, overwrite: true);
    }

    internal static async Task WaitForStatAsync(ProxyHarness proxy, string stat, long atLeast)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        long last;
        while ((last = await proxy.StatAsync(stat)) < atLeast)
        {
            Assert.True(DateTime.UtcNow < deadline, $"{stat} stayed at {last} (expected at least {atLeast})");
            await Task.Delay(20);
        }
    }

    private static string CdsFile(string version, int port, (string Name, int Port)? other = null) =>
        $"version_info: \"{version}\"\nresources:\n" + StaticCluster("backend", port) + (other is { } o ? StaticCluster(o.Name, o.Port) : "");

    private static string StaticCluster(string name, int port) => $$"""
        - "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
          name: {{name}}
          type: STATIC
          connect_timeout: 1s
          load_assignment:
            cluster_name: {{name}}
            endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{port}} } } } }] }]

        """;

    private static string LdsFile(string version, string routeMatch = "prefix: \"/\"", string cluster = "backend") => $$"""
        version_info: "{{version}}"
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
                route_config:
                  name: local
                  virtual_hosts:
                  - name: vh
                    domains: ["*"]
                    routes: [{ match: { {{routeMatch}} }, route: { cluster: {{cluster}} } }]
                http_filters:
                - name: envoy.filters.http.router
                  typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
        """;

    private string DynamicBootstrap() => $$"""
        node: { id: node-1, cluster: test }
        admin: { address: { socket_address: { address: 127.0.0.1, port_value: 0 } } }
        dynamic_resources:
          cds_config: { path: {{PathOf("cds.yaml")}} }
          lds_config: { path_config_source: { path: {{PathOf("lds.json")}} }, resource_api_version: V3 }
        """;

    [Fact]
    public async Task LdsAndCdsFiles_ServeTraffic_AndARenamedFileIsApplied()
    {
        await using var a = await TestBackend.StartEchoAsync("a");
        await using var b = await TestBackend.StartEchoAsync("b");
        Publish(PathOf("cds.yaml"), CdsFile("1", a.Port, ("other", b.Port)));
        Publish(PathOf("lds.json"), LdsFile("1"));
        await using var proxy = await ProxyHarness.StartAsync(DynamicBootstrap());
        using var client = await ListenerClientAsync(proxy, "ingress");
        Assert.Equal("a", await BackendOfAsync(client));
        Assert.Equal(1, await proxy.StatAsync("cluster_manager.cds.update_success"));
        Assert.Equal(1, await proxy.StatAsync("listener_manager.lds.update_success"));

        // A new route configuration in the listener file: the next requests follow it, on the same socket.
        Publish(PathOf("lds.json"), LdsFile("2", cluster: "other"));
        await EventuallyAsync(client, "b");
        Assert.Equal(2, await proxy.StatAsync("listener_manager.lds.update_success"));

        // The cluster file drops 'other' and repoints 'backend'.
        Publish(PathOf("lds.json"), LdsFile("3"));
        await EventuallyAsync(client, "a");
        Publish(PathOf("cds.yaml"), CdsFile("2", b.Port));
        await EventuallyAsync(client, "b");
        Assert.Null(proxy.Server.ClusterManager.Get("other"));
        Assert.Equal(2, await proxy.StatAsync("cluster_manager.cds.update_success"));

        using var admin = proxy.AdminClient();
        var dump = await admin.GetStringAsync("/config_dump");
        Assert.Contains("\"version_info\": \"2\"", dump);
        Assert.Contains("dynamic_active_clusters", dump);
    }

    [Fact]
    public async Task BrokenFiles_AreRejected_AndTheLastGoodConfigKeepsServing()
    {
        await using var a = await TestBackend.StartEchoAsync("a");
        await using var b = await TestBackend.StartEchoAsync("b");
        Publish(PathOf("cds.yaml"), CdsFile("1", a.Port));
        Publish(PathOf("lds.json"), LdsFile("1"));
        await using var proxy = await ProxyHarness.StartAsync(DynamicBootstrap());
        using var client = await ListenerClientAsync(proxy, "ingress");
        Assert.Equal("a", await BackendOfAsync(client));

        // Valid YAML, invalid resource (a regex that does not compile): rejected as a whole, counted.
        Publish(PathOf("lds.json"), LdsFile("2", "safe_regex: { regex: \"([\" }"));
        await WaitForStatAsync(proxy, "listener_manager.lds.update_rejected", 1);
        // Not a DiscoveryResponse at all: an update failure.
        Publish(PathOf("cds.yaml"), "resources: [ {{{ not yaml");
        await WaitForStatAsync(proxy, "cluster_manager.cds.update_failure", 1);
        // A resource of the wrong type in the cluster file.
        Publish(PathOf("cds.yaml"), LdsFile("9"));
        await WaitForStatAsync(proxy, "cluster_manager.cds.update_rejected", 1);
        for (var i = 0; i < 5; i++) Assert.Equal("a", await BackendOfAsync(client));
        Assert.Equal(1, await proxy.StatAsync("cluster_manager.cds.update_success"));
        Assert.Equal(1, await proxy.StatAsync("listener_manager.lds.update_success"));
        using var admin = proxy.AdminClient();
        Assert.Contains("error_state", await admin.GetStringAsync("/config_dump"));

        // A good file afterwards is applied.
        Publish(PathOf("cds.yaml"), CdsFile("3", b.Port));
        await EventuallyAsync(client, "b");
    }

    [Fact]
    public async Task EdsAndRdsFiles_ChangingEndpointsAndRoutes_MoveTraffic()
    {
        await using var a = await TestBackend.StartEchoAsync("a");
        await using var b = await TestBackend.StartEchoAsync("b");
        var edsPath = PathOf("eds.pb");
        Publish(edsPath, EdsResponse("1", a.Port).ToByteArray());
        Publish(PathOf("rds.yaml"), RdsFile("1", "/"));
        var yaml = EdsClusterBootstrap($"{{ path_config_source: {{ path: {edsPath}, watched_directory: {{ path: {_dir} }} }} }}",
            $"rds: {{ route_config_name: routes, config_source: {{ path_config_source: {{ path: {PathOf("rds.yaml")} }} }} }}");
        await using var proxy = await ProxyHarness.StartAsync(yaml);
        using var client = await ListenerClientAsync(proxy, "ingress");
        await EventuallyAsync(client, "a");
        var cluster = proxy.Server.ClusterManager.Get("backend");

        Publish(edsPath, EdsResponse("2", b.Port).ToByteArray());
        await EventuallyAsync(client, "b");
        Assert.Same(cluster, proxy.Server.ClusterManager.Get("backend")); // only the endpoints changed
        Assert.Equal(2, await proxy.StatAsync("cluster.backend.update_success"));

        // Routes: only /only-here goes anywhere now.
        Publish(PathOf("rds.yaml"), RdsFile("2", "/only-here"));
        await EventuallyAsync(client, "404");
        Assert.Equal("b", await BackendOfAsync(client, "/only-here"));
        Assert.Equal(2, await proxy.StatAsync("http.ingress.rds.routes.update_success"));

        // A truncated binary file is a failure; the endpoints stay.
        Publish(edsPath, EdsResponse("3", a.Port).ToByteArray()[..7]);
        await WaitForStatAsync(proxy, "cluster.backend.update_failure", 1);
        for (var i = 0; i < 5; i++) Assert.Equal("b", await BackendOfAsync(client, "/only-here"));
        Assert.Equal(2, await proxy.StatAsync("cluster.backend.update_success"));
    }

    [Fact]
    public async Task UnreadableFirstEdsFile_EndsTheClustersInitialFetch()
    {
        // initial_fetch_timeout 0s waits for the first assignment without a bound; a file that cannot be read is an
        // update failure, which ends the wait as in Envoy: the cluster starts without endpoints.
        await using var a = await TestBackend.StartEchoAsync("a");
        var edsPath = PathOf("eds.pb");
        Publish(edsPath, EdsResponse("1", a.Port).ToByteArray()[..7]);
        var yaml = EdsClusterBootstrap($"{{ path_config_source: {{ path: {edsPath} }}, initial_fetch_timeout: 0s }}",
            """route_config: { virtual_hosts: [{ name: vh, domains: ["*"], routes: [{ match: { prefix: "/" }, route: { cluster: backend } }] }] }""");
        await using var proxy = await ProxyHarness.StartAsync(yaml).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.update_failure"));
        using var client = await ListenerClientAsync(proxy, "ingress");
        Assert.Equal("503", await BackendOfAsync(client));

        Publish(edsPath, EdsResponse("2", a.Port).ToByteArray());
        await EventuallyAsync(client, "a");
    }

    /// <summary>A bootstrap with the EDS cluster "backend" (service name backend-eds) fetched from
    /// <paramref name="edsConfig"/>, and listener "ingress" whose connection manager takes its routes from
    /// <paramref name="routes"/> (an <c>rds</c> or <c>route_config</c> field).</summary>
    private static string EdsClusterBootstrap(string edsConfig, string routes) => $$"""
        admin: { address: { socket_address: { address: 127.0.0.1, port_value: 0 } } }
        static_resources:
          clusters:
          - name: backend
            type: EDS
            connect_timeout: 1s
            eds_cluster_config:
              service_name: backend-eds
              eds_config: {{edsConfig}}
          listeners:
          - name: ingress
            address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
            filter_chains:
            - filters:
              - name: envoy.filters.network.http_connection_manager
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                  stat_prefix: ingress
                  {{routes}}
                  http_filters:
                  - name: envoy.filters.http.router
                    typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
        """;

    private static DiscoveryResponse EdsResponse(string version, int port)
    {
        var r = new DiscoveryResponse { VersionInfo = version };
        r.Resources.Add(Any.Pack(Cla("backend-eds", port)));
        return r;
    }

    private static string RdsFile(string version, string prefix) => $$"""
        version_info: "{{version}}"
        resources:
        - "@type": type.googleapis.com/envoy.config.route.v3.RouteConfiguration
          name: routes
          virtual_hosts:
          - name: vh
            domains: ["*"]
            routes: [{ match: { prefix: "{{prefix}}" }, route: { cluster: backend } }]
        """;

    [Fact]
    public async Task MissingFile_RefusesToStart()
    {
        Publish(PathOf("cds.yaml"), CdsFile("1", 1));
        var ex = await Assert.ThrowsAnyAsync<Exception>(() => ProxyHarness.StartAsync(DynamicBootstrap()));
        Assert.Contains($"'{PathOf("lds.json")}' does not exist", ex.Message);
    }
}
