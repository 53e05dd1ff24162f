using CSharpEnvoy.IntegrationTests.Infrastructure;

namespace CSharpEnvoy.IntegrationTests.Admin;

/// <summary>virtual_clusters on a virtual host: vhost.&lt;vh&gt;.vcluster.&lt;vc&gt;.* stats, Envoy's "other" catch-all.</summary>
public sealed class VirtualClusterStatsTests
{
    [Fact]
    public async Task VirtualClusters_CountMatchingRequests_RestGoToOther()
    {
        await using var backend = await TestBackend.StartAsync(ctx =>
        {
            ctx.Response.StatusCode = ctx.Request.Path.StartsWithSegments("/fail") ? 503 : 200;
            return Task.CompletedTask;
        });
        const string routes = """
            - name: api
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                route: { cluster: backend }
              virtual_clusters:
              - name: users_get
                headers:
                - { name: ":method", string_match: { exact: GET } }
                - { name: ":path", string_match: { prefix: /users } }
              - name: failing
                headers:
                - { name: ":path", string_match: { prefix: /fail } }
            """;
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(routes, Yaml.Cluster("backend", backend.Address)));
        using var client = proxy.Client("main");

        for (var i = 0; i < 4; i++) (await client.GetAsync("/users/" + i)).Dispose();
        for (var i = 0; i < 3; i++) (await client.GetAsync("/fail")).Dispose();
        (await client.PostAsync("/users/1", null)).Dispose(); // POST: not users_get
        (await client.GetAsync("/other")).Dispose();

        Assert.Equal(4, await proxy.StatAsync("vhost.api.vcluster.users_get.upstream_rq_total"));
        Assert.Equal(4, await proxy.StatAsync("vhost.api.vcluster.users_get.upstream_rq_200"));
        Assert.Equal(4, await proxy.StatAsync("vhost.api.vcluster.users_get.upstream_rq_2xx"));
        Assert.Equal(3, await proxy.StatAsync("vhost.api.vcluster.failing.upstream_rq_503"));
        Assert.Equal(3, await proxy.StatAsync("vhost.api.vcluster.failing.upstream_rq_5xx"));
        Assert.Equal(2, await proxy.StatAsync("vhost.api.vcluster.other.upstream_rq_total"));
        using var admin = proxy.AdminClient();
        var text = await admin.GetStringAsync("/stats?filter=vcluster.users_get.upstream_rq_time");
        Assert.Contains("vhost.api.vcluster.users_get.upstream_rq_time: P0(nan,", text);
        var prometheus = await admin.GetStringAsync("/stats/prometheus");
        Assert.Contains("envoy_vhost_vcluster_upstream_rq{envoy_response_code=\"503\",envoy_virtual_cluster=\"failing\",envoy_virtual_host=\"api\"} 3\n", prometheus);
        Assert.Contains("envoy_vhost_vcluster_upstream_rq_time_count{envoy_virtual_cluster=\"users_get\",envoy_virtual_host=\"api\"} 4\n", prometheus);
    }

    [Fact]
    public async Task VirtualCluster_WithoutHeaders_IsRefused()
    {
        var yaml = Yaml.Bootstrap("""
            - name: api
              domains: ["*"]
              routes: [{ match: { prefix: "/" }, route: { cluster: backend } }]
              virtual_clusters: [{ name: empty }]
            """, Yaml.Cluster("backend", "127.0.0.1:1"));

        var ex = await Assert.ThrowsAsync<CSharpEnvoy.Config.Loading.ConfigException>(() => ProxyHarness.StartAsync(yaml));

        Assert.Contains("virtual_hosts[0].virtual_clusters[0].headers", ex.Message);
    }
}
