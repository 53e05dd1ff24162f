using System.Net;
using System.Text.Json;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using static CSharpEnvoy.IntegrationTests.Xds.AdsTests;
using static CSharpEnvoy.IntegrationTests.Xds.TestControlPlane;

namespace CSharpEnvoy.IntegrationTests.Xds;

/// <summary>/config_dump over xDS state: <c>?resource=</c>, <c>?mask=</c>, <c>?include_eds</c> and <c>error_state</c>.</summary>
public sealed class XdsConfigDumpTests
{
    private static async Task<JsonElement> GetJsonAsync(HttpClient admin, string path)
    {
        using var r = await admin.GetAsync(path);
        var body = await r.Content.ReadAsStringAsync();
        Assert.True(r.StatusCode == HttpStatusCode.OK, $"{path}: {(int)r.StatusCode} {body}");
        return JsonDocument.Parse(body).RootElement;
    }

    [Fact]
    public async Task ResourceMaskAndIncludeEds_FilterTheDump_AsEnvoy()
    {
        await using var a = await TestBackend.StartEchoAsync("a");
        await using var cp = await TestControlPlane.StartAsync();
        cp.SetSnapshot("v1", Snapshot(a.Port));
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(cp.Port));
        using var client = await ListenerClientAsync(proxy, "ingress");
        await EventuallyAsync(client, "a");
        using var admin = proxy.AdminClient();

        // ?resource=: each element of the named repeated field is a config of its own.
        var configs = (await GetJsonAsync(admin, "/config_dump?resource=dynamic_active_clusters")).GetProperty("configs");
        Assert.Equal(1, configs.GetArrayLength());
        Assert.Equal("type.googleapis.com/envoy.admin.v3.ClustersConfigDump.DynamicCluster", configs[0].GetProperty("@type").GetString());
        Assert.Equal("v1", configs[0].GetProperty("version_info").GetString());

        // ... with ?mask= reaching into the resource's Any.
        var masked = (await GetJsonAsync(admin, "/config_dump?resource=dynamic_active_clusters&mask=cluster.name")).GetProperty("configs")[0];
        Assert.Equal(["@type", "cluster"], masked.EnumerateObject().Select(p => p.Name));
        Assert.Equal(["@type", "name"], masked.GetProperty("cluster").EnumerateObject().Select(p => p.Name));
        Assert.Equal("backend", masked.GetProperty("cluster").GetProperty("name").GetString());

        // ?mask= alone applies to each top-level config it fits (clusters and listeners have version_info).
        configs = (await GetJsonAsync(admin, "/config_dump?mask=version_info")).GetProperty("configs");
        Assert.Equal(2, configs.GetArrayLength());
        Assert.All(configs.EnumerateArray(), c => Assert.Equal(["@type", "version_info"], c.EnumerateObject().Select(p => p.Name)));

        // ?include_eds adds the endpoints of every cluster: the xds_cluster as static, backend as dynamic.
        var eds = (await GetJsonAsync(admin, "/config_dump?include_eds")).GetProperty("configs").EnumerateArray()
            .Single(c => c.GetProperty("@type").GetString() == "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump");
        var dynamicCla = eds.GetProperty("dynamic_endpoint_configs")[0].GetProperty("endpoint_config");
        Assert.Equal("backend", dynamicCla.GetProperty("cluster_name").GetString());
        Assert.Equal(a.Port, dynamicCla.GetProperty("endpoints")[0].GetProperty("lb_endpoints")[0].GetProperty("endpoint").GetProperty("address").GetProperty("socket_address").GetProperty("port_value").GetInt32());
        Assert.Equal("xds_cluster", eds.GetProperty("static_endpoint_configs")[0].GetProperty("endpoint_config").GetProperty("cluster_name").GetString());
        var edsOnly = (await GetJsonAsync(admin, "/config_dump?resource=dynamic_endpoint_configs&include_eds")).GetProperty("configs");
        Assert.Equal(1, edsOnly.GetArrayLength());

        // Envoy's errors.
        using var notRepeated = await admin.GetAsync("/config_dump?resource=version_info");
        Assert.Equal(HttpStatusCode.BadRequest, notRepeated.StatusCode);
        Assert.Equal("version_info is not a repeated field. Use ?mask=version_info to get only this field", await notRepeated.Content.ReadAsStringAsync());
        using var missing = await admin.GetAsync("/config_dump?resource=no_such_thing");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal("no_such_thing not found in config dump", await missing.Content.ReadAsStringAsync());
        using var badMask = await admin.GetAsync("/config_dump?mask=no_such_field");
        Assert.Equal(HttpStatusCode.BadRequest, badMask.StatusCode);
    }

    [Fact]
    public async Task RejectedCluster_ShowsErrorState_InEnvoysLayout()
    {
        await using var a = await TestBackend.StartEchoAsync("a");
        await using var cp = await TestControlPlane.StartAsync();
        cp.SetSnapshot("v1", Snapshot(a.Port));
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(cp.Port));
        await cp.WaitForAckAsync(ClusterType, "v1");
        var bad = EdsCluster("backend");
        bad.LbPolicy = Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy.ClusterProvided;
        cp.SetSnapshot("v2", bad, Cla("backend", a.Port), RdsListener("ingress", "routes"), Routes("routes", "backend"));
        await cp.WaitForNackAsync(ClusterType);
        using var admin = proxy.AdminClient();

        var cluster = (await GetJsonAsync(admin, "/config_dump?resource=dynamic_active_clusters")).GetProperty("configs")[0];
        Assert.Equal("v1", cluster.GetProperty("version_info").GetString()); // still the accepted one
        var error = cluster.GetProperty("error_state");
        Assert.Equal("CLUSTER_PROVIDED", error.GetProperty("failed_configuration").GetProperty("lb_policy").GetString());
        Assert.Equal("type.googleapis.com/envoy.config.cluster.v3.Cluster", error.GetProperty("failed_configuration").GetProperty("@type").GetString());
        Assert.Contains("backend.lb_policy", error.GetProperty("details").GetString());
        Assert.Equal("v2", error.GetProperty("version_info").GetString());
        Assert.True(error.GetProperty("last_update_attempt").GetDateTimeOffset() > DateTimeOffset.UtcNow.AddMinutes(-5));
    }

    [Fact]
    public async Task RejectedRouteConfiguration_ShowsErrorState_WhileTheLastGoodOneServes()
    {
        await using var a = await TestBackend.StartEchoAsync("a");
        await using var cp = await TestControlPlane.StartAsync();
        cp.SetSnapshot("v1", Snapshot(a.Port));
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(cp.Port));
        using var client = await ListenerClientAsync(proxy, "ingress");
        await EventuallyAsync(client, "a");
        var bad = Load<Envoy.Config.Route.V3.RouteConfiguration>("""
            name: routes
            virtual_hosts:
            - name: vh
              domains: ["*"]
              routes:
              - match: { safe_regex: { regex: "([" } }
                route: { cluster: backend }
            """);
        cp.SetSnapshot("v2", EdsCluster("backend"), Cla("backend", a.Port), RdsListener("ingress", "routes"), bad);
        await cp.WaitForNackAsync(RouteType);
        using var admin = proxy.AdminClient();

        var routes = (await GetJsonAsync(admin, "/config_dump?resource=dynamic_route_configs")).GetProperty("configs");
        var route = Assert.Single(routes.EnumerateArray());
        Assert.Equal("type.googleapis.com/envoy.admin.v3.RoutesConfigDump.DynamicRouteConfig", route.GetProperty("@type").GetString());
        Assert.Equal("v1", route.GetProperty("version_info").GetString()); // the accepted one, still serving
        Assert.Equal("/", route.GetProperty("route_config").GetProperty("virtual_hosts")[0].GetProperty("routes")[0].GetProperty("match").GetProperty("prefix").GetString());
        var error = route.GetProperty("error_state");
        var failed = error.GetProperty("failed_configuration");
        Assert.Equal("type.googleapis.com/envoy.config.route.v3.RouteConfiguration", failed.GetProperty("@type").GetString());
        Assert.Equal("([", failed.GetProperty("virtual_hosts")[0].GetProperty("routes")[0].GetProperty("match").GetProperty("safe_regex").GetProperty("regex").GetString());
        Assert.StartsWith("routes.", error.GetProperty("details").GetString());
        Assert.Equal("v2", error.GetProperty("version_info").GetString());
        Assert.True(error.GetProperty("last_update_attempt").GetDateTimeOffset() > DateTimeOffset.UtcNow.AddMinutes(-5));
        Assert.False(route.TryGetProperty("client_status", out _)); // Envoy leaves it unset in /config_dump
        Assert.Equal("a", await BackendOfAsync(client));

        // The next accepted update clears it.
        cp.SetSnapshot("v3", Snapshot(a.Port));
        await cp.WaitForAckAsync(RouteType, "v3");
        route = (await GetJsonAsync(admin, "/config_dump?resource=dynamic_route_configs")).GetProperty("configs")[0];
        Assert.Equal("v3", route.GetProperty("version_info").GetString());
        Assert.False(route.TryGetProperty("error_state", out _));
    }
}
