using System.Net;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using static CSharpEnvoy.IntegrationTests.Http.HttpTestUtil;

namespace CSharpEnvoy.IntegrationTests.Http;

/// <summary>weighted_clusters and cluster_header.</summary>
public sealed class ClusterSelectionTests
{
    [Fact]
    public async Task WeightedClusters_SplitTraffic_80_20()
    {
        await using var a = await TestBackend.StartEchoAsync("a");
        await using var b = await TestBackend.StartEchoAsync("b");
        var vhosts = """
            - name: vh
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                route:
                  weighted_clusters:
                    clusters:
                    - { name: a, weight: 80 }
                    - { name: b, weight: 20 }
            """;
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(vhosts, Yaml.Cluster("a", a.Address) + "\n" + Yaml.Cluster("b", b.Address)));
        using var client = proxy.Client("main");

        const int total = 2000;
        var countA = 0;
        var countB = 0;
        // A few concurrent loops keep this quick; every pick is an independent Random.Shared draw.
        await Parallel.ForAsync(0, total, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (_, ct) =>
        {
            using var response = await client.GetAsync("/", ct);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            if (Header(response, "x-backend") == "a") Interlocked.Increment(ref countA);
            else Interlocked.Increment(ref countB);
        });

        Assert.Equal(total, countA + countB);
        // 80 % ± 5 points: the binomial standard deviation at n = 2000 is 0.9 points, so this is > 5 sigma.
        var shareA = 100.0 * countA / total;
        Assert.InRange(shareA, 75.0, 85.0);
        Assert.Equal(countA, await proxy.StatAsync("cluster.a.upstream_rq_total"));
        Assert.Equal(countB, await proxy.StatAsync("cluster.b.upstream_rq_total"));
    }

    [Fact]
    public async Task WeightedClusters_TotalWeightMismatch_IsRejected()
    {
        var vhosts = """
            - name: vh
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                route:
                  weighted_clusters:
                    total_weight: 100
                    clusters:
                    - { name: a, weight: 70 }
                    - { name: b, weight: 20 }
            """;
        var yaml = Yaml.Bootstrap(vhosts, Yaml.Cluster("a", "127.0.0.1:1") + "\n" + Yaml.Cluster("b", "127.0.0.1:2"));

        var errors = ProxyHarness.Validate(yaml);

        Assert.True(errors.HasErrors);
        var error = Assert.Single(errors.Errors);
        Assert.EndsWith("weighted_clusters.total_weight", error.Path);
        Assert.Contains("100", error.Message);
        await Assert.ThrowsAnyAsync<Exception>(async () => await ProxyHarness.StartAsync(yaml));
    }

    [Fact]
    public void WeightedClusters_MatchingTotalWeight_IsAccepted()
    {
        var vhosts = """
            - name: vh
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                route:
                  weighted_clusters:
                    total_weight: 90
                    clusters:
                    - { name: a, weight: 70 }
                    - { name: b, weight: 20 }
            """;
        var errors = ProxyHarness.Validate(Yaml.Bootstrap(vhosts, Yaml.Cluster("a", "127.0.0.1:1") + "\n" + Yaml.Cluster("b", "127.0.0.1:2")));

        Assert.False(errors.HasErrors, errors.ToString());
    }

    [Fact]
    public async Task ClusterHeader_PicksTheNamedCluster_MissingOrUnknownIsClusterNotFound()
    {
        await using var a = await TestBackend.StartEchoAsync("a");
        await using var b = await TestBackend.StartEchoAsync("b");
        var vhosts = """
            - name: vh
              domains: ["*"]
              routes:
              - match: { prefix: "/strict" }
                route: { cluster_header: x-cluster, cluster_not_found_response_code: NOT_FOUND }
              - match: { prefix: "/" }
                route: { cluster_header: X-Cluster }
            """;
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(vhosts, Yaml.Cluster("a", a.Address) + "\n" + Yaml.Cluster("b", b.Address)));
        using var client = proxy.Client("main");

        using var toA = await GetAsync(client, "/", null, ("x-cluster", "a"));
        using var toB = await GetAsync(client, "/", null, ("x-cluster", "b"));
        using var missing = await client.GetAsync("/");
        using var unknown = await GetAsync(client, "/", null, ("x-cluster", "nope"));
        using var strictUnknown = await GetAsync(client, "/strict", null, ("x-cluster", "nope"));
        using var strictKnown = await GetAsync(client, "/strict", null, ("x-cluster", "b"));

        Assert.Equal("a", Header(toA, "x-backend"));
        Assert.Equal("b", Header(toB, "x-backend"));
        // cluster_not_found_response_code defaults to SERVICE_UNAVAILABLE, with an empty body.
        Assert.Equal(HttpStatusCode.ServiceUnavailable, missing.StatusCode);
        Assert.Equal("", await missing.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.ServiceUnavailable, unknown.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, strictUnknown.StatusCode);
        Assert.Equal("b", Header(strictKnown, "x-backend"));
        Assert.Equal(3, await proxy.StatAsync("http.ingress_http.no_cluster"));
    }
}
