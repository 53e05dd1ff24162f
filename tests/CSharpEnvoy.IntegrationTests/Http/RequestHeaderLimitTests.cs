using System.Net;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Http;

namespace CSharpEnvoy.IntegrationTests.Http;

/// <summary>The connection manager's <c>max_request_headers_kb</c>: requests whose headers are larger get 431, on the
/// lean HTTP/1.1 codec (which hands such a head to Kestrel) as on Kestrel's own path; smaller ones pass.</summary>
public sealed class RequestHeaderLimitTests
{
    private static async Task<TestBackend> BackendAsync() => await TestBackend.StartAsync(ctx => ctx.Response.WriteAsync("ok"));

    private static async Task<HttpStatusCode> GetWithHeaderAsync(HttpClient client, int bytes)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/");
        request.Headers.Add("x-big", new string('a', bytes));
        using var response = await client.SendAsync(request);
        return response.StatusCode;
    }

    [Fact]
    public async Task HeadersOverTheLimit_Get431_SmallerOnesPass()
    {
        await using var backend = await BackendAsync();
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Yaml.RoutesToBackend, Yaml.Cluster("backend", backend.Address),
            hcmExtra: "max_request_headers_kb: 2"));
        using var client = proxy.Client("main");

        Assert.Equal(HttpStatusCode.OK, await GetWithHeaderAsync(client, 1000));
        // Under the codec's 4 KiB first read, so only the limit stops it.
        Assert.Equal(HttpStatusCode.RequestHeaderFieldsTooLarge, await GetWithHeaderAsync(client, 2500));
        Assert.Equal(HttpStatusCode.RequestHeaderFieldsTooLarge, await GetWithHeaderAsync(client, 10_000));
        Assert.Equal(HttpStatusCode.OK, await GetWithHeaderAsync(client, 100));
    }

    [Fact]
    public async Task Http2_HeadersOverTheLimit_Get431()
    {
        await using var backend = await BackendAsync();
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Yaml.RoutesToBackend, Yaml.Cluster("backend", backend.Address),
            hcmExtra: "max_request_headers_kb: 2"));
        using var client = proxy.Client("main", http2: true);

        Assert.Equal(HttpStatusCode.OK, await GetWithHeaderAsync(client, 1000));
        Assert.Equal(HttpStatusCode.RequestHeaderFieldsTooLarge, await GetWithHeaderAsync(client, 2500));
    }

    [Fact]
    public async Task Default_Is60KiB()
    {
        // A raw upstream: Kestrel's own limit (32 KiB) would answer 431 first.
        await using var backend = CSharpEnvoy.IntegrationTests.Router.RawUpstream.Start(async c =>
        {
            while (await c.ReadRequestAsync() is not null) await c.WriteAsync("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        });
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Yaml.RoutesToBackend, Yaml.Cluster("backend", backend.Address)));
        using var client = proxy.Client("main");

        Assert.Equal(HttpStatusCode.OK, await GetWithHeaderAsync(client, 50 * 1024));
        Assert.Equal(HttpStatusCode.RequestHeaderFieldsTooLarge, await GetWithHeaderAsync(client, 70 * 1024));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(8193)]
    public void OutOfRange_IsRefusedWithItsPath(int kb)
    {
        var yaml = Yaml.Bootstrap(Yaml.RoutesToBackend, Yaml.Cluster("backend", "127.0.0.1:1"), hcmExtra: $"max_request_headers_kb: {kb}");
        var errors = ProxyHarness.Validate(yaml).Errors.Select(e => e.ToString()).ToList();
        Assert.Contains("static_resources.listeners[0].filter_chains[0].filters[0].typed_config.max_request_headers_kb: max_request_headers_kb must be from 1 to 8192", errors);
    }

    private static async Task<HttpStatusCode> GetWithHeadersAsync(HttpClient client, int count)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/");
        for (var i = 0; i < count; i++) request.Headers.Add($"x-h{i}", "v");
        using var response = await client.SendAsync(request);
        return response.StatusCode;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task MaxHeadersCount_MoreHeaders_Get431(bool http2)
    {
        await using var backend = await BackendAsync();
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Yaml.RoutesToBackend, Yaml.Cluster("backend", backend.Address),
            hcmExtra: "common_http_protocol_options: { max_headers_count: 8 }"));
        using var client = proxy.Client("main", http2);

        Assert.Equal(HttpStatusCode.OK, await GetWithHeadersAsync(client, 2));
        Assert.Equal(HttpStatusCode.RequestHeaderFieldsTooLarge, await GetWithHeadersAsync(client, 12));
    }

    [Fact]
    public async Task MaxHeadersCount_AboveTheDefault_LetsMoreThrough()
    {
        // A raw upstream: Kestrel's own limit (100 headers) would answer 431 first.
        await using var backend = CSharpEnvoy.IntegrationTests.Router.RawUpstream.Start(async c =>
        {
            while (await c.ReadRequestAsync() is not null) await c.WriteAsync("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        });
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Yaml.RoutesToBackend, Yaml.Cluster("backend", backend.Address),
            hcmExtra: "common_http_protocol_options: { max_headers_count: 200 }"));
        using var client = proxy.Client("main");
        Assert.Equal(HttpStatusCode.OK, await GetWithHeadersAsync(client, 150));
        // Envoy's default is 100.
        await using var plain = await ProxyHarness.StartAsync(Yaml.Bootstrap(Yaml.RoutesToBackend, Yaml.Cluster("backend", backend.Address)));
        using var plainClient = plain.Client("main");
        Assert.Equal(HttpStatusCode.RequestHeaderFieldsTooLarge, await GetWithHeadersAsync(plainClient, 150));
        Assert.Contains(ProxyHarness.Validate(Yaml.Bootstrap(Yaml.RoutesToBackend, Yaml.Cluster("backend", "127.0.0.1:1"),
            hcmExtra: "common_http_protocol_options: { max_headers_count: 0 }")).Errors.Select(e => e.ToString()),
            e => e.EndsWith("common_http_protocol_options.max_headers_count: max_headers_count must be at least 1", StringComparison.Ordinal));
    }
}
