using CSharpEnvoy.Config.Loading;
using CSharpEnvoy.IntegrationTests.Infrastructure;

namespace CSharpEnvoy.IntegrationTests.Admin;

/// <summary>Bootstrap <c>stats_config</c>: custom tags, use_all_default_tags and the stats matcher, seen through
/// /stats and /stats/prometheus.</summary>
public sealed class StatsConfigTests
{
    private static async Task<(ProxyHarness Proxy, TestBackend Backend)> StartAsync(string statsConfig, int requests = 3)
    {
        var backend = await TestBackend.StartEchoAsync();
        var proxy = await ProxyHarness.StartAsync(statsConfig + "\n" + Yaml.Bootstrap(Yaml.RoutesToBackend, Yaml.Cluster("backend", backend.Address)));
        using var client = proxy.Client("main");
        for (var i = 0; i < requests; i++) (await client.GetAsync("/")).Dispose();
        return (proxy, backend);
    }

    [Fact]
    public async Task StatsTags_RegexAndFixedValue_WithoutDefaults_LabelPrometheus()
    {
        var (proxy, backend) = await StartAsync("""
            stats_config:
              use_all_default_tags: false
              stats_tags:
              - tag_name: my_cluster
                regex: '^cluster\.((.+?)\.)'
              - tag_name: env
                fixed_value: prod
            """);
        await using var _ = backend;
        await using var __ = proxy;
        using var admin = proxy.AdminClient();

        var text = await admin.GetStringAsync("/stats/prometheus");

        // No default extractor: the response code stays in the name; the custom tag cut the cluster name out.
        Assert.Contains("envoy_cluster_upstream_rq_200{env=\"prod\",my_cluster=\"backend\"} 3\n", text);
        Assert.Contains("envoy_http_ingress_http_downstream_rq_total{env=\"prod\"} 3\n", text);
        Assert.DoesNotContain("envoy_cluster_name", text);
    }

    [Fact]
    public async Task StatsTags_AddToTheDefaults_AndNameADefaultTagWithoutRegex()
    {
        var (proxy, backend) = await StartAsync("""
            stats_config:
              use_all_default_tags: false
              stats_tags:
              - tag_name: envoy.cluster_name
              - tag_name: region
                fixed_value: eu
            """);
        await using var _ = backend;
        await using var __ = proxy;
        using var admin = proxy.AdminClient();

        var text = await admin.GetStringAsync("/stats/prometheus");

        Assert.Contains("envoy_cluster_upstream_rq_200{region=\"eu\",envoy_cluster_name=\"backend\"} 3\n", text);
        // /stats always shows the full names.
        Assert.Equal(3, await proxy.StatAsync("cluster.backend.upstream_rq_200"));
    }

    [Fact]
    public async Task StatsTags_WithDefaults_ExtraTagAppliesToTheRemainingName()
    {
        var (proxy, backend) = await StartAsync("""
            stats_config:
              stats_tags:
              - tag_name: rq_kind
                regex: '^cluster\.upstream_rq(_(total))$'
            """);
        await using var _ = backend;
        await using var __ = proxy;
        using var admin = proxy.AdminClient();

        var text = await admin.GetStringAsync("/stats/prometheus");

        Assert.Contains("envoy_cluster_upstream_rq{envoy_cluster_name=\"backend\",rq_kind=\"total\"} 3\n", text);
        Assert.Contains("envoy_cluster_upstream_rq{envoy_response_code=\"200\",envoy_cluster_name=\"backend\"} 3\n", text);
    }

    [Fact]
    public async Task StatsMatcher_ExclusionList_StatsAreNotStoredNorExported()
    {
        var (proxy, backend) = await StartAsync("""
            stats_config:
              stats_matcher:
                exclusion_list:
                  patterns:
                  - prefix: cluster.backend.upstream_rq
                  - safe_regex: { regex: '.*downstream_rq_time$' }
            """);
        await using var _ = backend;
        await using var __ = proxy;
        using var admin = proxy.AdminClient();

        var stats = await admin.GetStringAsync("/stats");
        var prometheus = await admin.GetStringAsync("/stats/prometheus");

        Assert.DoesNotContain("cluster.backend.upstream_rq_", stats);
        Assert.DoesNotContain("downstream_rq_time:", stats);
        Assert.Contains("cluster.backend.upstream_cx_total: ", stats);
        Assert.Contains("http.ingress_http.downstream_rq_total: 3\n", stats);
        Assert.DoesNotContain("envoy_cluster_upstream_rq{", prometheus);
        Assert.DoesNotContain("envoy_http_downstream_rq_time_", prometheus);
        Assert.Contains("envoy_http_downstream_rq_total{envoy_http_conn_manager_prefix=\"ingress_http\"} 3\n", prometheus);
    }

    [Fact]
    public async Task StatsMatcher_InclusionList_KeepsOnlyMatchingStats()
    {
        var (proxy, backend) = await StartAsync("""
            stats_config:
              stats_matcher:
                inclusion_list:
                  patterns:
                  - prefix: http.ingress_http.downstream_rq_
            """);
        await using var _ = backend;
        await using var __ = proxy;
        using var admin = proxy.AdminClient();

        var lines = (await admin.GetStringAsync("/stats")).Split('\n', StringSplitOptions.RemoveEmptyEntries);

        Assert.NotEmpty(lines);
        Assert.All(lines, l => Assert.StartsWith("http.ingress_http.downstream_rq_", l));
        Assert.Contains("http.ingress_http.downstream_rq_2xx: 3", lines);
    }

    [Fact]
    public async Task StatsMatcher_RejectAll_LeavesNothingButTrafficFlows()
    {
        var (proxy, backend) = await StartAsync("""
            stats_config:
              stats_matcher: { reject_all: true }
            """);
        await using var _ = backend;
        await using var __ = proxy;
        using var admin = proxy.AdminClient();
        using var client = proxy.Client("main");

        var response = await client.GetAsync("/");

        Assert.Equal(200, (int)response.StatusCode);
        Assert.Equal("", await admin.GetStringAsync("/stats"));
        Assert.Equal("", await admin.GetStringAsync("/stats/prometheus"));
    }

    [Theory]
    [InlineData("stats_tags: [{ tag_name: envoy.cluster_name, regex: 'x(y)' }]", "Tag name 'envoy.cluster_name' specified twice.")]
    [InlineData("use_all_default_tags: false\n  stats_tags: [{ tag_name: a, fixed_value: b }, { tag_name: a, fixed_value: c }]", "Tag name 'a' specified twice.")]
    [InlineData("stats_tags: [{ tag_name: custom }]", "No regex specified for tag specifier and no default regex for name: 'custom'")]
    [InlineData("stats_tags: [{ tag_name: bad, regex: '(' }]", "stats_config.stats_tags[0].regex")]
    [InlineData("stats_matcher: { inclusion_list: { patterns: [{ prefix: '' }] } }", "stats_config.stats_matcher.inclusion_list.patterns[0].prefix")]
    public async Task StatsConfig_Invalid_IsRefusedWithItsPath(string body, string expected)
    {
        var yaml = "stats_config:\n  " + body + "\n" + Yaml.Bootstrap(Yaml.RoutesToBackend, Yaml.Cluster("backend", "127.0.0.1:1"));

        var ex = await Assert.ThrowsAsync<ConfigException>(() => ProxyHarness.StartAsync(yaml));

        Assert.Contains(expected, ex.Message);
    }
}
