using System.Net;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Http;

namespace CSharpEnvoy.IntegrationTests.Http;

public sealed class BasicProxyTests
{
    private static string Routes(string extraRoutes = "") => $"""
        - name: vh
          domains: ["*"]
          routes:
        {Yaml.Indent(extraRoutes, 2)}
          - match: {"{"} prefix: "/" {"}"}
            route: {"{"} cluster: backend {"}"}
        """;

    [Fact]
    public async Task Http1_ProxiesToBackend_WithEnvoyHeaders()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Routes(), Yaml.Cluster("backend", backend.Address)));
        using var client = proxy.Client("main");

        using var response = await client.GetAsync("/hello?x=1");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("backend GET /hello?x=1 body=0", await response.Content.ReadAsStringAsync());
        Assert.Equal("envoy", response.Headers.Server.ToString());
        Assert.True(response.Headers.Contains("x-envoy-upstream-service-time"));
        // Envoy generates a request id and tells the upstream the route timeout.
        Assert.True(Guid.TryParse(response.Headers.GetValues("x-echo-req-x-request-id").Single(), out _));
        Assert.Equal("15000", response.Headers.GetValues("x-echo-req-x-envoy-expected-rq-timeout-ms").Single());
        Assert.Equal("http", response.Headers.GetValues("x-echo-req-x-forwarded-proto").Single());
        // The original Host is preserved upstream.
        Assert.Equal(proxy.ListenerAddress("main"), response.Headers.GetValues("x-echo-host").Single());
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.upstream_rq_200"));
        Assert.Equal(1, await proxy.StatAsync("http.ingress_http.downstream_rq_2xx"));
    }

    [Fact]
    public async Task Http1_KeepAlive_EachRequestOnTheConnectionSeesOnlyItsOwnState()
    {
        // The listener reuses one request context per connection: nothing of a request may reach the next one.
        await using var backend = await TestBackend.StartEchoAsync();
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Routes(), Yaml.Cluster("backend", backend.Address)));
        using var client = proxy.Client("main");

        using var first = new HttpRequestMessage(HttpMethod.Post, "/a") { Content = new StringContent("abc") };
        first.Headers.Add("x-first", "1");
        using var r1 = await client.SendAsync(first);
        using var r2 = await client.GetAsync("/b?q=2");

        Assert.Equal("backend POST /a body=3", await r1.Content.ReadAsStringAsync());
        Assert.Equal("1", r1.Headers.GetValues("x-echo-req-x-first").Single());
        Assert.Equal("backend GET /b?q=2 body=0", await r2.Content.ReadAsStringAsync());
        Assert.False(r2.Headers.Contains("x-echo-req-x-first"));
        Assert.NotEqual(r1.Headers.GetValues("x-echo-req-x-request-id").Single(), r2.Headers.GetValues("x-echo-req-x-request-id").Single());
        Assert.Equal(1, await proxy.StatAsync("http.ingress_http.downstream_cx_total"));
        Assert.Equal(2, await proxy.StatAsync("http.ingress_http.downstream_rq_2xx"));
    }

    [Fact]
    public async Task H2c_PriorKnowledge_OnTheSamePortAsHttp1()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Routes(), Yaml.Cluster("backend", backend.Address)));
        using var h2 = proxy.Client("main", http2: true);
        using var h1 = proxy.Client("main");

        using var r2 = await h2.GetAsync("/two");
        using var r1 = await h1.GetAsync("/one");

        Assert.Equal(HttpVersion.Version20, r2.Version);
        Assert.Equal("backend GET /two body=0", await r2.Content.ReadAsStringAsync());
        Assert.Equal(HttpVersion.Version11, r1.Version);
        Assert.Equal("backend GET /one body=0", await r1.Content.ReadAsStringAsync());
        Assert.Equal(1, await proxy.StatAsync("http.ingress_http.downstream_rq_http2_total"));
        Assert.Equal(1, await proxy.StatAsync("http.ingress_http.downstream_rq_http1_total"));
    }

    [Fact]
    public async Task PostBody_StreamsBothWays()
    {
        await using var backend = await TestBackend.StartAsync(async ctx =>
        {
            // echo the body back
            ctx.Response.ContentType = "application/octet-stream";
            await ctx.Request.Body.CopyToAsync(ctx.Response.Body);
        });
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Routes(), Yaml.Cluster("backend", backend.Address)));
        using var client = proxy.Client("main");
        var payload = new byte[3 * 1024 * 1024];
        new Random(42).NextBytes(payload);

        using var response = await client.PostAsync("/upload", new ByteArrayContent(payload));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(payload, await response.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task NoRoute_Returns404_AndCountsNoRoute()
    {
        var vhosts = """
            - name: vh
              domains: ["example.com"]
              routes:
              - match: { prefix: "/api" }
                direct_response: { status: 200 }
            """;
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(vhosts));
        using var client = proxy.Client("main");

        using var wrongHost = await client.GetAsync("/api");
        using var request = new HttpRequestMessage(HttpMethod.Get, "/other");
        request.Headers.Host = "example.com";
        using var wrongPath = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.NotFound, wrongHost.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, wrongPath.StatusCode);
        Assert.Equal("", await wrongPath.Content.ReadAsStringAsync());
        Assert.Equal(2, await proxy.StatAsync("http.ingress_http.no_route"));
    }

    [Fact]
    public async Task RefusedConnection_Returns503_WithEnvoysBody()
    {
        var port = FixedPorts.Next();
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Routes(), Yaml.Cluster("backend", $"127.0.0.1:{port}")));
        using var client = proxy.Client("main");

        using var response = await client.GetAsync("/");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("upstream connect error or disconnect/reset before headers. reset reason: connection failure", await response.Content.ReadAsStringAsync());
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.upstream_cx_connect_fail"));
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.upstream_rq_503"));
    }

    [Fact]
    public async Task EmptyCluster_Returns503_NoHealthyUpstream()
    {
        var clusters = """
            - name: backend
              connect_timeout: 1s
              load_assignment: { cluster_name: backend }
            """;
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Routes(), clusters));
        using var client = proxy.Client("main");

        using var response = await client.GetAsync("/");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("no healthy upstream", await response.Content.ReadAsStringAsync());
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.upstream_cx_none_healthy"));
    }

    [Fact]
    public async Task RouteTimeout_Returns504_UpstreamRequestTimeout()
    {
        var release = new TaskCompletionSource();
        await using var backend = await TestBackend.StartAsync(async ctx =>
        {
            await release.Task.WaitAsync(TimeSpan.FromSeconds(30));
            await ctx.Response.WriteAsync("late");
        });
        var routes = """
            - name: vh
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                route: { cluster: backend, timeout: 0.2s }
            """;
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(routes, Yaml.Cluster("backend", backend.Address)));
        using var client = proxy.Client("main");

        using var response = await client.GetAsync("/");
        release.SetResult();

        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.Equal("upstream request timeout", await response.Content.ReadAsStringAsync());
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.upstream_rq_timeout"));
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.upstream_rq_tx_reset"));
        Assert.Equal(0, await proxy.StatAsync("cluster.backend.upstream_rq_rx_reset"));
    }

    [Fact]
    public async Task DirectResponse_AndRedirects()
    {
        var vhosts = """
            - name: vh
              domains: ["*"]
              routes:
              - match: { path: "/direct" }
                direct_response: { status: 418, body: { inline_string: "teapot" } }
              - match: { prefix: "/old/" }
                redirect: { prefix_rewrite: "/new/", response_code: FOUND }
              - match: { prefix: "/secure" }
                redirect: { https_redirect: true }
              - match: { prefix: "/elsewhere" }
                redirect: { host_redirect: "example.org", path_redirect: "/landing", strip_query: true }
            """;
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(vhosts));
        using var client = proxy.Client("main");

        using var direct = await client.GetAsync("/direct");
        using var prefix = await client.GetAsync("/old/page?q=1");
        var secureRequest = new HttpRequestMessage(HttpMethod.Get, "/secure/x");
        secureRequest.Headers.Host = "shop.example.com:8080";
        using var secure = await client.SendAsync(secureRequest);
        using var elsewhere = await client.GetAsync("/elsewhere?drop=me");

        Assert.Equal((HttpStatusCode)418, direct.StatusCode);
        Assert.Equal("teapot", await direct.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.Found, prefix.StatusCode);
        Assert.Equal($"http://{proxy.ListenerAddress("main")}/new/page?q=1", prefix.Headers.Location!.ToString());
        Assert.Equal(HttpStatusCode.MovedPermanently, secure.StatusCode);
        Assert.Equal("https://shop.example.com/secure/x", secure.Headers.Location!.ToString());
        var port = proxy.ListenerAddress("main").Split(':')[1];
        Assert.Equal($"http://example.org:{port}/landing", elsewhere.Headers.Location!.ToString());
    }
}
