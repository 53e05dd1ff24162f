using System.Net;
using CSharpEnvoy.IntegrationTests.Infrastructure;

namespace CSharpEnvoy.IntegrationTests.Http;

/// <summary><c>common_http_protocol_options.headers_with_underscores_action</c> (Envoy Gateway sets REJECT_REQUEST on
/// every listener).</summary>
public sealed class HeadersWithUnderscoresTests
{
    private static Task<ProxyHarness> StartAsync(TestBackend backend, string action) =>
        ProxyHarness.StartAsync(Yaml.Bootstrap(Yaml.RoutesToBackend, Yaml.Cluster("backend", backend.Address),
            hcmExtra: $"common_http_protocol_options: {{ headers_with_underscores_action: {action} }}"));

    private static HttpRequestMessage WithUnderscore(bool http2) => new(HttpMethod.Get, "/x")
    {
        Headers = { { "x_tenant", "a" }, { "x-ok", "b" } },
        Version = http2 ? HttpVersion.Version20 : HttpVersion.Version11,
        VersionPolicy = HttpVersionPolicy.RequestVersionExact,
    };

    [Fact]
    public async Task RejectRequest_Http1_Is400AndClosesTheConnection_Http2_IsReset_CleanRequestsPass()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        await using var proxy = await StartAsync(backend, "REJECT_REQUEST");
        using var h1 = proxy.Client("main");
        using var h2 = proxy.Client("main", http2: true);

        using var rejected = await h1.SendAsync(WithUnderscore(http2: false));
        Assert.Equal(HttpStatusCode.BadRequest, rejected.StatusCode);
        Assert.True(rejected.Headers.ConnectionClose);
        await Assert.ThrowsAsync<HttpRequestException>(() => h2.SendAsync(WithUnderscore(http2: true)));
        using var clean = await h1.GetAsync("/clean");
        Assert.Equal(HttpStatusCode.OK, clean.StatusCode);

        Assert.Equal(1, await proxy.StatAsync("http1.requests_rejected_with_underscores_in_headers"));
        Assert.Equal(1, await proxy.StatAsync("http2.requests_rejected_with_underscores_in_headers"));
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.upstream_rq_total")); // only the clean one went upstream
    }

    [Fact]
    public async Task DropHeader_RemovesOnlyTheUnderscoredHeaders_AndCountsThem()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        await using var proxy = await StartAsync(backend, "DROP_HEADER");
        using var h1 = proxy.Client("main");
        using var h2 = proxy.Client("main", http2: true);

        foreach (var http2 in new[] { false, true })
        {
            using var response = await (http2 ? h2 : h1).SendAsync(WithUnderscore(http2));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.False(response.Headers.Contains("x-echo-req-x_tenant"));
            Assert.Equal("b", response.Headers.GetValues("x-echo-req-x-ok").Single());
        }
        Assert.Equal(1, await proxy.StatAsync("http1.dropped_headers_with_underscores"));
        Assert.Equal(1, await proxy.StatAsync("http2.dropped_headers_with_underscores"));
    }

    [Fact]
    public async Task Allow_TheDefault_PassesThem()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Yaml.RoutesToBackend, Yaml.Cluster("backend", backend.Address)));
        using var h1 = proxy.Client("main");
        using var response = await h1.SendAsync(WithUnderscore(http2: false));
        Assert.Equal("a", response.Headers.GetValues("x-echo-req-x_tenant").Single());
    }

    [Fact]
    public void OtherCommonHttpProtocolOptions_AreStillRefused()
    {
        var errors = ProxyHarness.Validate(Yaml.Bootstrap(Yaml.RoutesToBackend, Yaml.Cluster("backend", "127.0.0.1:1"),
            hcmExtra: "common_http_protocol_options: { headers_with_underscores_action: REJECT_REQUEST, max_requests_per_connection: 10 }"));
        Assert.Contains(errors.Errors, e => e.Path.EndsWith("common_http_protocol_options.max_requests_per_connection", StringComparison.Ordinal));
    }
}
