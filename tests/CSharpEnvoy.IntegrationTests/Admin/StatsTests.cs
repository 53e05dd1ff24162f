using System.Text.RegularExpressions;
using CSharpEnvoy.DataPlane.Stats;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Http;

namespace CSharpEnvoy.IntegrationTests.Admin;

public sealed class StatsTests
{
    [Fact]
    public async Task Counters_MatchRequestsExactly_AndPrometheusTagsThem()
    {
        // 100 requests, every request whose number is a multiple of 14 gets a 503 from the backend: 7 of them.
        await using var backend = await TestBackend.StartAsync(ctx =>
        {
            var n = int.Parse(ctx.Request.Query["n"]!);
            ctx.Response.StatusCode = n % 14 == 0 && n > 0 ? 503 : 200;
            return Task.CompletedTask;
        });
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Yaml.RoutesToBackend, Yaml.Cluster("backend", backend.Address)));
        using var client = proxy.Client("main");
        for (var i = 0; i < 100; i++) (await client.GetAsync($"/?n={i}")).Dispose();
        using var admin = proxy.AdminClient();

        var prometheus = await admin.GetStringAsync("/stats/prometheus");

        Assert.Equal(7, await proxy.StatAsync("cluster.backend.upstream_rq_503"));
        Assert.Equal(93, await proxy.StatAsync("cluster.backend.upstream_rq_200"));
        Assert.Equal(7, await proxy.StatAsync("http.ingress_http.downstream_rq_5xx"));
        Assert.Equal(100, await proxy.StatAsync("http.ingress_http.downstream_rq_total"));

        var samples = PrometheusText.Parse(prometheus).ByRawSeries;
        Assert.Equal(7, samples["envoy_cluster_upstream_rq{envoy_response_code=\"503\",envoy_cluster_name=\"backend\"}"]);
        Assert.Equal(93, samples["envoy_cluster_upstream_rq_xx{envoy_response_code_class=\"2\",envoy_cluster_name=\"backend\"}"]);
        Assert.Equal(7, samples["envoy_http_downstream_rq_xx{envoy_response_code_class=\"5\",envoy_http_conn_manager_prefix=\"ingress_http\"}"]);
        Assert.Equal(100, samples["envoy_cluster_upstream_rq_time_count{envoy_cluster_name=\"backend\"}"]);
        Assert.Equal(100, samples["envoy_http_downstream_rq_time_bucket{envoy_http_conn_manager_prefix=\"ingress_http\",le=\"+Inf\"}"]);
        Assert.Contains("# TYPE envoy_cluster_upstream_rq_time histogram\n", prometheus);
        Assert.Contains("# TYPE envoy_cluster_upstream_rq counter\n", prometheus);
        Assert.Contains("# TYPE envoy_cluster_upstream_rq_active gauge\n", prometheus);
        // Buckets are cumulative and never decrease.
        var buckets = samples.Where(s => s.Key.StartsWith("envoy_cluster_upstream_rq_time_bucket{", StringComparison.Ordinal)).Select(s => s.Value).ToList();
        Assert.Equal(Histogram.DefaultBuckets.Length + 1, buckets.Count);
    }

    [Fact]
    public async Task Histograms_AppearInTextAndJsonStats()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Yaml.RoutesToBackend, Yaml.Cluster("backend", backend.Address)));
        using var client = proxy.Client("main");
        for (var i = 0; i < 10; i++) (await client.GetAsync("/")).Dispose();
        using var admin = proxy.AdminClient();

        var text = await admin.GetStringAsync("/stats?filter=upstream_rq_time");
        var json = System.Text.Json.JsonDocument.Parse(await admin.GetStringAsync("/stats?format=json&filter=rq_time")).RootElement;

        Assert.Matches(new Regex(@"(?m)^cluster\.backend\.upstream_rq_time: P0\(nan,[0-9.]+\) P25\(nan,[0-9.]+\)"), text);
        var histograms = json.GetProperty("stats").EnumerateArray().Single(e => e.TryGetProperty("histograms", out _)).GetProperty("histograms");
        Assert.Equal(10, histograms.GetProperty("supported_quantiles").GetArrayLength());
        Assert.Contains(histograms.GetProperty("computed_quantiles").EnumerateArray(), h => h.GetProperty("name").GetString() == "cluster.backend.upstream_rq_time");
    }

    [Theory]
    [InlineData("cluster.backend.upstream_rq_200", "cluster.upstream_rq", "envoy.response_code=200,envoy.cluster_name=backend")]
    [InlineData("cluster.backend.upstream_rq_5xx", "cluster.upstream_rq_xx", "envoy.response_code_class=5,envoy.cluster_name=backend")]
    [InlineData("http.ingress_http.downstream_rq_total", "http.downstream_rq_total", "envoy.http_conn_manager_prefix=ingress_http")]
    [InlineData("listener.127.0.0.1_10000.downstream_cx_total", "listener.downstream_cx_total", "envoy.listener_address=127.0.0.1_10000")]
    [InlineData("server.live", "server.live", "")]
    public void TagExtractor_UsesEnvoysDefaultTags(string name, string extracted, string tags)
    {
        var t = TagExtractor.Extract(name);
        Assert.Equal(extracted, t.Name);
        Assert.Equal(tags, string.Join(",", t.Tags.Select(kv => $"{kv.Key}={kv.Value}")));
    }

    [Fact]
    public void StatNames_MadeFromParts_AreTheStatOfTheWholeName()
    {
        var store = new StatsStore();
        var parts = store.Counter("cluster.a.", "upstream_rq_total");
        parts.Inc();

        Assert.Same(parts, store.Counter("cluster.a.upstream_rq_total"));
        Assert.Same(parts, store.Counter("cluster.", "a.upstream_rq_total"));
        Assert.NotSame(parts, store.Counter("cluster.a.", "upstream_rq_totals"));
        Assert.NotSame(parts, store.Counter("cluster.b.", "upstream_rq_total"));
        Assert.Equal("cluster.a.upstream_rq_total", parts.Name);
        Assert.Equal(3, store.Counters.Count());
        Assert.Same(store.Gauge("x.", "y"), store.Gauge("x.y"));
        Assert.Same(store.Histogram("x.", "t"), store.Histogram("x.t"));
    }

    [Fact]
    public void StatSets_AreTheStatsMadeOneByOne()
    {
        var store = new StatsStore();
        var before = store.Counter("cluster.a.", "upstream_rq_retry");
        var set = store.CounterSet("cluster.a.", ["upstream_rq_total", "upstream_rq_retry", "lb_healthy_panic"]);
        Assert.Equal(["cluster.a.upstream_rq_total", "cluster.a.upstream_rq_retry", "cluster.a.lb_healthy_panic"], set.Select(c => c.Name));
        Assert.Same(before, set[1]);
        Assert.Same(set[0], store.Counter("cluster.a.upstream_rq_total"));
        Assert.Same(set[2], store.Counter("cluster.", "a.lb_healthy_panic"));
        Assert.Equal(3, store.Counters.Count());
        var gauges = store.GaugeSet("cluster.a.circuit_breakers.default.", ["cx_open", "rq_open"]);
        Assert.Same(gauges[1], store.Gauge("cluster.a.circuit_breakers.default.rq_open"));
        // A prefix without a trailing dot takes the one-by-one path, with the same result.
        Assert.Same(set[0], store.CounterSet("cluster.a.upstream_", ["rq_total"])[0]);
        Assert.Throws<ArgumentException>(() => store.CounterSet("cluster.a.", ["ssl.handshake"]));
    }

    [Fact]
    public void Histogram_QuantilesFollowTheBuckets()
    {
        var h = new Histogram("t");
        for (var i = 0; i < 90; i++) h.Record(3);   // bucket (1, 5]
        for (var i = 0; i < 10; i++) h.Record(400); // bucket (250, 500]
        Assert.InRange(h.Quantile(0.5), 1, 5);
        Assert.InRange(h.Quantile(0.99), 250, 500);
        Assert.Equal(100, h.Count);
        Assert.Equal(90 * 3 + 10 * 400, h.Sum, 3);
        Assert.True(double.IsNaN(new Histogram("empty").Quantile(0.5)));
    }
}
