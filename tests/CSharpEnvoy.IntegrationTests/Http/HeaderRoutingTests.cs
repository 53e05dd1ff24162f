using System.Net;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using static CSharpEnvoy.IntegrationTests.Http.HttpTestUtil;

namespace CSharpEnvoy.IntegrationTests.Http;

/// <summary>Canary / blue-green routing: RouteMatch.headers and RouteMatch.query_parameters before a default
/// route, first match wins.</summary>
public sealed class HeaderRoutingTests
{
    [Fact]
    public async Task CanaryHeader_AndQueryParameter_SelectTheSecondBackend()
    {
        await using var stable = await TestBackend.StartEchoAsync("stable");
        await using var canary = await TestBackend.StartEchoAsync("canary");
        var vhosts = """
            - name: vh
              domains: ["*"]
              routes:
              - match:
                  prefix: "/"
                  headers: [{ name: x-canary, string_match: { exact: "1" } }]
                route: { cluster: canary }
              - match:
                  prefix: "/"
                  query_parameters: [{ name: version, string_match: { exact: "beta" } }]
                route: { cluster: canary }
              - match:
                  prefix: "/"
                  headers:
                  - { name: x-user, string_match: { prefix: "tester-" } }
                  - { name: x-opt-out, present_match: true, invert_match: true }
                route: { cluster: canary }
              - match: { prefix: "/" }
                route: { cluster: stable }
            """;
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(vhosts,
            Yaml.Cluster("stable", stable.Address) + "\n" + Yaml.Cluster("canary", canary.Address)));
        using var client = proxy.Client("main");

        async Task<string?> BackendFor(string path, params (string, string)[] headers)
        {
            using var response = await GetAsync(client, path, null, headers);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            return Header(response, "x-backend");
        }

        Assert.Equal("stable", await BackendFor("/"));
        Assert.Equal("canary", await BackendFor("/", ("x-canary", "1")));
        Assert.Equal("stable", await BackendFor("/", ("x-canary", "0")));
        Assert.Equal("stable", await BackendFor("/", ("x-canary", "11")));   // exact, not prefix
        Assert.Equal("canary", await BackendFor("/page?version=beta"));
        Assert.Equal("canary", await BackendFor("/page?a=1&version=beta&b=2"));
        Assert.Equal("stable", await BackendFor("/page?version=beta2"));
        Assert.Equal("stable", await BackendFor("/page?versions=beta"));
        Assert.Equal("canary", await BackendFor("/", ("x-user", "tester-7")));
        Assert.Equal("stable", await BackendFor("/", ("x-user", "tester-7"), ("x-opt-out", "yes")));
        Assert.Equal("stable", await BackendFor("/", ("x-user", "customer-1")));
        Assert.Equal(4, await proxy.StatAsync("cluster.canary.upstream_rq_total"));
        Assert.Equal(7, await proxy.StatAsync("cluster.stable.upstream_rq_total"));
    }
}
