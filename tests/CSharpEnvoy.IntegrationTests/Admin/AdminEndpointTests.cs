using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using CSharpEnvoy.IntegrationTests.Infrastructure;

namespace CSharpEnvoy.IntegrationTests.Admin;

public sealed class AdminEndpointTests
{
    [Fact]
    public async Task Ready_ServerInfo_AndHelp()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Yaml.RoutesToBackend, Yaml.Cluster("backend", backend.Address)) + "\nnode: { id: n1, cluster: c1 }");
        using var admin = proxy.AdminClient();

        using var ready = await admin.GetAsync("/ready");
        var info = JsonDocument.Parse(await admin.GetStringAsync("/server_info")).RootElement;
        var help = await admin.GetStringAsync("/help");

        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        Assert.Equal("LIVE\n", await ready.Content.ReadAsStringAsync());
        Assert.Equal("LIVE", info.GetProperty("state").GetString());
        Assert.Equal("n1", info.GetProperty("node").GetProperty("id").GetString());
        Assert.Equal("c1", info.GetProperty("node").GetProperty("cluster").GetString());
        Assert.StartsWith("csenvoy/", info.GetProperty("version").GetString());
        Assert.True(info.TryGetProperty("command_line_options", out _));
        Assert.Contains("/config_dump", help);
    }

    [Fact]
    public async Task ConfigDump_HasEnvoysLayout()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Yaml.RoutesToBackend, Yaml.Cluster("backend", backend.Address)));
        using var admin = proxy.AdminClient();

        var dump = JsonDocument.Parse(await admin.GetStringAsync("/config_dump")).RootElement;
        var configs = dump.GetProperty("configs").EnumerateArray().ToList();

        Assert.Equal(
            ["type.googleapis.com/envoy.admin.v3.BootstrapConfigDump", "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
             "type.googleapis.com/envoy.admin.v3.ListenersConfigDump", "type.googleapis.com/envoy.admin.v3.RoutesConfigDump",
             "type.googleapis.com/envoy.admin.v3.SecretsConfigDump"],
            configs.Select(c => c.GetProperty("@type").GetString()));
        var cluster = configs[1].GetProperty("static_clusters")[0].GetProperty("cluster");
        Assert.Equal("type.googleapis.com/envoy.config.cluster.v3.Cluster", cluster.GetProperty("@type").GetString());
        Assert.Equal("backend", cluster.GetProperty("name").GetString());
        var listener = configs[2].GetProperty("static_listeners")[0].GetProperty("listener");
        Assert.Equal("main", listener.GetProperty("name").GetString());
        var route = configs[3].GetProperty("static_route_configs")[0].GetProperty("route_config");
        Assert.Equal("local_route", route.GetProperty("name").GetString());
        Assert.True(configs[1].GetProperty("static_clusters")[0].TryGetProperty("last_updated", out _));
    }

    [Fact]
    public async Task Clusters_TextFormat_CountsRequestsPerHost()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Yaml.RoutesToBackend, Yaml.Cluster("backend", backend.Address)));
        using var client = proxy.Client("main");
        for (var i = 0; i < 3; i++) (await client.GetAsync("/")).Dispose();
        using var admin = proxy.AdminClient();

        var text = await admin.GetStringAsync("/clusters");

        Assert.Contains($"backend::{backend.Address}::rq_total::3\n", text);
        Assert.Contains($"backend::{backend.Address}::health_flags::healthy\n", text);
        Assert.Contains("backend::default_priority::max_connections::1024\n", text);
        Assert.Contains("backend::added_via_api::false\n", text);
    }

    [Fact]
    public async Task Clusters_ShowTheClustersOwnCircuitBreakerThresholds_TextAndJson()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        var cluster = Yaml.Cluster("backend", backend.Address).Replace("  connect_timeout: 1s\n", """
              connect_timeout: 1s
              circuit_breakers:
                thresholds:
                - { max_connections: 7, max_pending_requests: 8, max_requests: 9, max_retries: 2 }
                - { priority: HIGH, max_requests: 50 }

            """);
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Yaml.RoutesToBackend, cluster));
        using var admin = proxy.AdminClient();

        var text = await admin.GetStringAsync("/clusters");
        var json = JsonDocument.Parse(await admin.GetStringAsync("/clusters?format=json")).RootElement;

        Assert.Contains("backend::default_priority::max_connections::7\nbackend::default_priority::max_pending_requests::8\n" +
            "backend::default_priority::max_requests::9\nbackend::default_priority::max_retries::2\n" +
            "backend::high_priority::max_connections::1024\nbackend::high_priority::max_pending_requests::1024\n" +
            "backend::high_priority::max_requests::50\nbackend::high_priority::max_retries::3\n", text);
        var thresholds = json.GetProperty("cluster_statuses")[0].GetProperty("circuit_breakers").GetProperty("thresholds");
        Assert.Equal(7, thresholds[0].GetProperty("max_connections").GetInt32());
        Assert.Equal("HIGH", thresholds[1].GetProperty("priority").GetString());
        Assert.Equal(50, thresholds[1].GetProperty("max_requests").GetInt32());
    }

    [Fact]
    public async Task Stats_FilterUsedOnlyJsonAndReset()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Yaml.RoutesToBackend, Yaml.Cluster("backend", backend.Address)));
        using var client = proxy.Client("main");
        for (var i = 0; i < 5; i++) (await client.GetAsync("/")).Dispose();
        using var admin = proxy.AdminClient();

        var filtered = await admin.GetStringAsync("/stats?filter=^cluster\\.backend\\.upstream_rq_2");
        var usedOnly = await admin.GetStringAsync("/stats?usedonly");
        var json = JsonDocument.Parse(await admin.GetStringAsync("/stats?format=json")).RootElement;
        using var badRegex = await admin.GetAsync("/stats?filter=(");
        using var resetGet = await admin.GetAsync("/reset_counters");
        using var reset = await admin.PostAsync("/reset_counters", null);
        var afterReset = await proxy.StatAsync("cluster.backend.upstream_rq_total");

        Assert.Equal("cluster.backend.upstream_rq_200: 5\ncluster.backend.upstream_rq_2xx: 5\n", filtered);
        Assert.DoesNotContain("upstream_rq_timeout", usedOnly);
        Assert.Contains("http.ingress_http.downstream_rq_total: 5", usedOnly);
        Assert.Contains(json.GetProperty("stats").EnumerateArray(), s => s.GetProperty("name").GetString() == "cluster.backend.upstream_rq_total" && s.GetProperty("value").GetInt64() == 5);
        Assert.Equal(HttpStatusCode.BadRequest, badRegex.StatusCode);
        Assert.Equal(HttpStatusCode.MethodNotAllowed, resetGet.StatusCode);
        Assert.Equal(HttpStatusCode.OK, reset.StatusCode);
        Assert.Equal(0, afterReset);
    }

    [Fact]
    public async Task Memory_AndRuntime_UseEnvoysJsonLayout()
    {
        var yaml = Yaml.Bootstrap(Yaml.RoutesToBackend, Yaml.Cluster("backend", "127.0.0.1:1")) + "\nlayered_runtime: { layers: [{ name: static_layer_0, static_layer: {} }] }";
        await using var proxy = await ProxyHarness.StartAsync(yaml);
        using var admin = proxy.AdminClient();

        var memory = JsonDocument.Parse(await admin.GetStringAsync("/memory")).RootElement;
        var runtime = JsonDocument.Parse(await admin.GetStringAsync("/runtime")).RootElement;

        Assert.True(long.Parse(memory.GetProperty("allocated").GetString()!) > 0);
        Assert.True(long.Parse(memory.GetProperty("heap_size").GetString()!) > 0);
        Assert.True(long.Parse(memory.GetProperty("total_physical_bytes").GetString()!) > long.Parse(memory.GetProperty("allocated").GetString()!) / 2);
        Assert.Equal(["static_layer_0"], runtime.GetProperty("layers").EnumerateArray().Select(e => e.GetString()));
        Assert.Empty(runtime.GetProperty("entries").EnumerateObject());
    }

    [Fact]
    public async Task Listeners_ShowBoundAddresses()
    {
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Yaml.RoutesToBackend, Yaml.Cluster("backend", "127.0.0.1:1")));
        using var admin = proxy.AdminClient();

        var text = await admin.GetStringAsync("/listeners");
        var json = JsonDocument.Parse(await admin.GetStringAsync("/listeners?format=json")).RootElement;

        Assert.Equal($"main::{proxy.ListenerAddress("main")}\n", text);
        var status = json.GetProperty("listener_statuses")[0];
        Assert.Equal("main", status.GetProperty("name").GetString());
        Assert.Equal(int.Parse(proxy.ListenerAddress("main").Split(':')[1]), status.GetProperty("local_address").GetProperty("socket_address").GetProperty("port_value").GetInt32());
    }

    [Fact]
    public async Task PipeListener_ServesOverUnixSocket()
    {
        var socketPath = Path.Combine(Path.GetTempPath(), "csenvoy-" + Guid.NewGuid().ToString("N")[..8] + ".sock");
        var yaml = $$"""
            static_resources:
              listeners:
              - name: uds
                address: { pipe: { path: "{{socketPath}}" } }
                filter_chains:
                - filters:
                  - name: envoy.filters.network.http_connection_manager
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                      stat_prefix: uds
                      route_config: { virtual_hosts: [{ name: v, domains: ["*"], routes: [{ match: { prefix: "/" }, direct_response: { status: 200, body: { inline_string: "over uds" } } }] }] }
            """;
        await using var proxy = await ProxyHarness.StartAsync(yaml);
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), ct);
                return new NetworkStream(socket, ownsSocket: true);
            },
        };
        using var client = new HttpClient(handler);

        var body = await client.GetStringAsync("http://localhost/");

        Assert.Equal("over uds", body);
    }
}
