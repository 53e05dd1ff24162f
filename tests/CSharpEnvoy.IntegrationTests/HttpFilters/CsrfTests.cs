using System.Net;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Http;

namespace CSharpEnvoy.IntegrationTests.HttpFilters;

/// <summary><c>envoy.filters.http.csrf</c>: origin verification of state-changing requests, additional origins,
/// per-route policies, shadow mode, and Envoy's <c>csrf.*</c> stats.</summary>
public sealed class CsrfTests
{
    private const string PolicyType = "type.googleapis.com/envoy.extensions.filters.http.csrf.v3.CsrfPolicy";

    private static string Bootstrap(string backend, string filterPolicy, string routePolicy = "") => FilterYaml.Bootstrap(
        "- name: envoy.filters.http.csrf\n  typed_config:\n    \"@type\": " + PolicyType + "\n" + Yaml.Indent(filterPolicy, 4),
        $$"""
        - name: vh
          domains: ["*"]
          routes:
          - match: { prefix: "/open" }
            route: { cluster: backend }
        {{(routePolicy.Length == 0 ? "" : Yaml.Indent("typed_per_filter_config:\n  envoy.filters.http.csrf:\n    \"@type\": " + PolicyType + "\n" + Yaml.Indent(routePolicy, 4), 4))}}
          - match: { prefix: "/" }
            route: { cluster: backend }
        """,
        Yaml.Cluster("backend", backend), logPath: null);

    private const string Enforced = """
        filter_enabled: { default_value: { numerator: 100 } }
        additional_origins: [{ exact: partner.example }]
        """;

    private static async Task<(TestBackend Backend, Func<int> Seen)> CountingBackendAsync()
    {
        var seen = 0;
        var backend = await TestBackend.StartAsync(ctx =>
        {
            Interlocked.Increment(ref seen);
            return ctx.Response.WriteAsync("ok:" + ctx.Request.Method);
        });
        return (backend, () => Volatile.Read(ref seen));
    }

    private static async Task<(HttpStatusCode Status, string Body)> SendAsync(HttpClient client, HttpMethod method, string path,
        string? origin = null, string? referer = null, string? host = null)
    {
        using var request = new HttpRequestMessage(method, path) { Content = method == HttpMethod.Get ? null : new StringContent("x") };
        if (origin is not null) request.Headers.Add("Origin", origin);
        if (referer is not null) request.Headers.Add("Referer", referer);
        if (host is not null) request.Headers.Host = host;
        using var r = await client.SendAsync(request);
        return (r.StatusCode, await r.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task StateChangingRequests_FromAnotherOrigin_AreRefused_SameOriginAndAdditionalOnesPass()
    {
        var (backend, seen) = await CountingBackendAsync();
        await using var ownedBackend = backend;
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(backend.Address, Enforced));
        using var client = proxy.Client("main");

        // Same origin: the Origin's host and port are the request's Host.
        Assert.Equal((HttpStatusCode.OK, "ok:POST"), await SendAsync(client, HttpMethod.Post, "/a", origin: "https://shop.example:8443", host: "shop.example:8443"));
        // Referer stands in for a missing Origin.
        Assert.Equal((HttpStatusCode.OK, "ok:PUT"), await SendAsync(client, HttpMethod.Put, "/a", referer: "http://shop.example/page?q=1", host: "shop.example"));
        // An additional origin.
        Assert.Equal((HttpStatusCode.OK, "ok:DELETE"), await SendAsync(client, HttpMethod.Delete, "/a", origin: "https://partner.example", host: "shop.example"));
        // Cross origin, and no source origin at all.
        Assert.Equal((HttpStatusCode.Forbidden, "Invalid origin"), await SendAsync(client, HttpMethod.Patch, "/a", origin: "https://evil.example", host: "shop.example"));
        Assert.Equal((HttpStatusCode.Forbidden, "Invalid origin"), await SendAsync(client, HttpMethod.Post, "/a", host: "shop.example"));
        // Safe methods are not checked.
        Assert.Equal((HttpStatusCode.OK, "ok:GET"), await SendAsync(client, HttpMethod.Get, "/a", origin: "https://evil.example", host: "shop.example"));

        Assert.Equal(4, seen());
        Assert.Equal(3, await proxy.StatAsync("http.ingress_http.csrf.request_valid"));
        Assert.Equal(2, await proxy.StatAsync("http.ingress_http.csrf.request_invalid"));
        Assert.Equal(1, await proxy.StatAsync("http.ingress_http.csrf.missing_source_origin"));
    }

    [Fact]
    public async Task RoutePolicy_ReplacesTheFiltersPolicy_AndShadowModeOnlyCounts()
    {
        var (backend, seen) = await CountingBackendAsync();
        await using var ownedBackend = backend;
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(backend.Address, Enforced, routePolicy: """
            filter_enabled: { default_value: { numerator: 0 } }
            shadow_enabled: { default_value: { numerator: 100 } }
            """));
        using var client = proxy.Client("main");

        Assert.Equal((HttpStatusCode.OK, "ok:POST"), await SendAsync(client, HttpMethod.Post, "/open/x", origin: "https://evil.example", host: "shop.example"));
        Assert.Equal((HttpStatusCode.Forbidden, "Invalid origin"), await SendAsync(client, HttpMethod.Post, "/x", origin: "https://evil.example", host: "shop.example"));
        Assert.Equal(1, seen());
        Assert.Equal(2, await proxy.StatAsync("http.ingress_http.csrf.request_invalid"));
    }

    [Fact]
    public void FilterEnabled_IsRequired()
    {
        var errors = ProxyHarness.Validate(Bootstrap("127.0.0.1:1", "additional_origins: [{ exact: a.example }]")).Errors.Select(e => e.ToString()).ToList();
        Assert.Contains("static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0].typed_config.filter_enabled: filter_enabled is required", errors);
    }
}
