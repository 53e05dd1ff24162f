using System.Net;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Http;

namespace CSharpEnvoy.IntegrationTests.HttpFilters;

/// <summary><c>envoy.filters.http.cors</c> with <c>CorsPolicy</c> in typed_per_filter_config: preflights answered
/// here, access-control-* headers on responses to allowed origins, each setting from the most specific level, shadow
/// mode, and Envoy's <c>cors.origin_valid</c>/<c>origin_invalid</c> stats.</summary>
public sealed class CorsTests
{
    private const string PolicyType = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy";

    /// <param name="vhostPolicy">The virtual host's CorsPolicy body.</param>
    /// <param name="routePolicy">The /api route's CorsPolicy body (none when empty).</param>
    private static string Bootstrap(string backend, string vhostPolicy, string routePolicy = "") => FilterYaml.Bootstrap(
        "- name: envoy.filters.http.cors\n  typed_config: { \"@type\": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors }",
        $$"""
        - name: vh
          domains: ["*"]
          typed_per_filter_config:
            envoy.filters.http.cors:
              "@type": {{PolicyType}}
        {{Yaml.Indent(vhostPolicy, 6)}}
          routes:
          - match: { prefix: "/api" }
            route: { cluster: backend }
        {{(routePolicy.Length == 0 ? "" : Yaml.Indent("typed_per_filter_config:\n  envoy.filters.http.cors:\n    \"@type\": " + PolicyType + "\n" + Yaml.Indent(routePolicy, 4), 4))}}
          - match: { prefix: "/static" }
            direct_response: { status: 204 }
          - match: { prefix: "/" }
            route: { cluster: backend }
        """,
        Yaml.Cluster("backend", backend), logPath: null);

    private const string Policy = """
        allow_origin_string_match:
        - exact: https://app.example.com
        - suffix: .trusted.example
        allow_methods: GET, POST, PUT
        allow_headers: content-type, x-custom
        expose_headers: x-request-id, x-served-by
        max_age: "600"
        allow_credentials: true
        """;

    private static async Task<(TestBackend Backend, Func<int> Seen)> CountingBackendAsync()
    {
        var seen = 0;
        var backend = await TestBackend.StartAsync(ctx =>
        {
            Interlocked.Increment(ref seen);
            ctx.Response.Headers["x-served-by"] = "backend";
            return ctx.Response.WriteAsync("ok:" + ctx.Request.Method);
        });
        return (backend, () => Volatile.Read(ref seen));
    }

    private static HttpRequestMessage Preflight(string path, string origin, string method = "PUT", string? headers = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Options, path);
        request.Headers.Add("Origin", origin);
        request.Headers.Add("Access-Control-Request-Method", method);
        if (headers is not null) request.Headers.Add("Access-Control-Request-Headers", headers);
        return request;
    }

    private static string? Header(HttpResponseMessage r, string name) =>
        r.Headers.TryGetValues(name, out var v) ? string.Join(",", v) : r.Content.Headers.TryGetValues(name, out var c) ? string.Join(",", c) : null;

    [Fact]
    public async Task Preflight_FromAnAllowedOrigin_IsAnsweredHereWithThePolicy()
    {
        var (backend, seen) = await CountingBackendAsync();
        await using var ownedBackend = backend;
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(backend.Address, Policy));
        using var client = proxy.Client("main");

        using var r = await client.SendAsync(Preflight("/things", "https://app.example.com"));
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Equal("https://app.example.com", Header(r, "access-control-allow-origin"));
        Assert.Equal("GET, POST, PUT", Header(r, "access-control-allow-methods"));
        Assert.Equal("content-type, x-custom", Header(r, "access-control-allow-headers"));
        Assert.Equal("600", Header(r, "access-control-max-age"));
        Assert.Equal("true", Header(r, "access-control-allow-credentials"));
        Assert.Null(Header(r, "access-control-expose-headers")); // only on actual responses
        Assert.Equal("", await r.Content.ReadAsStringAsync());
        Assert.Equal(0, seen());

        // A direct response route is not the filter's (Envoy's filter needs a route entry): answered as configured.
        using var direct = await client.SendAsync(Preflight("/static", "https://app.example.com"));
        Assert.Equal(HttpStatusCode.NoContent, direct.StatusCode);
        Assert.Null(Header(direct, "access-control-allow-origin"));

        using var suffix = await client.SendAsync(Preflight("/things", "https://a.trusted.example"));
        Assert.Equal("https://a.trusted.example", Header(suffix, "access-control-allow-origin"));
        Assert.Equal(2, await proxy.StatAsync("http.ingress_http.cors.origin_valid"));
        Assert.Equal(0, await proxy.StatAsync("http.ingress_http.cors.origin_invalid"));
    }

    [Fact]
    public async Task ActualRequest_FromAnAllowedOrigin_GetsTheOriginCredentialsAndExposedHeaders()
    {
        var (backend, seen) = await CountingBackendAsync();
        await using var ownedBackend = backend;
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(backend.Address, Policy));
        using var client = proxy.Client("main");

        using var request = new HttpRequestMessage(HttpMethod.Get, "/things");
        request.Headers.Add("Origin", "https://app.example.com");
        using var r = await client.SendAsync(request);
        Assert.Equal("ok:GET", await r.Content.ReadAsStringAsync());
        Assert.Equal("https://app.example.com", Header(r, "access-control-allow-origin"));
        Assert.Equal("true", Header(r, "access-control-allow-credentials"));
        Assert.Equal("x-request-id, x-served-by", Header(r, "access-control-expose-headers"));
        Assert.Null(Header(r, "access-control-allow-methods"));

        // An OPTIONS without access-control-request-method is not a preflight: it goes upstream.
        using var options = new HttpRequestMessage(HttpMethod.Options, "/things");
        options.Headers.Add("Origin", "https://app.example.com");
        using var o = await client.SendAsync(options);
        Assert.Equal("ok:OPTIONS", await o.Content.ReadAsStringAsync());
        Assert.Equal("https://app.example.com", Header(o, "access-control-allow-origin"));

        // Without an Origin the filter does nothing and counts nothing.
        using var plain = await client.GetAsync("/things");
        Assert.Null(Header(plain, "access-control-allow-origin"));
        Assert.Equal(3, seen());
        Assert.Equal(2, await proxy.StatAsync("http.ingress_http.cors.origin_valid"));
    }

    [Fact]
    public async Task OriginNotAllowed_PreflightGoesUpstream_OrIsAnsweredWithoutTheOrigin()
    {
        var (backend, seen) = await CountingBackendAsync();
        await using var ownedBackend = backend;
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(backend.Address, Policy,
            routePolicy: "forward_not_matching_preflights: false"));
        using var client = proxy.Client("main");

        // Default: forwarded, and the response names no origin.
        using var forwarded = await client.SendAsync(Preflight("/things", "https://evil.example"));
        Assert.Equal("ok:OPTIONS", await forwarded.Content.ReadAsStringAsync());
        Assert.Null(Header(forwarded, "access-control-allow-origin"));
        Assert.Equal(1, seen());

        // forward_not_matching_preflights: false (on /api): answered here, without access-control-allow-origin.
        using var answered = await client.SendAsync(Preflight("/api/x", "https://evil.example"));
        Assert.Equal(HttpStatusCode.OK, answered.StatusCode);
        Assert.Null(Header(answered, "access-control-allow-origin"));
        Assert.Equal("GET, POST, PUT", Header(answered, "access-control-allow-methods")); // from the virtual host
        Assert.Equal(1, seen());

        using var actual = new HttpRequestMessage(HttpMethod.Get, "/things");
        actual.Headers.Add("Origin", "https://evil.example");
        using var a = await client.SendAsync(actual);
        Assert.Equal("ok:GET", await a.Content.ReadAsStringAsync());
        Assert.Null(Header(a, "access-control-allow-origin"));
        Assert.Equal(3, await proxy.StatAsync("http.ingress_http.cors.origin_invalid"));
    }

    [Fact]
    public async Task RoutePolicy_OverridesTheVirtualHostsSettingBySetting()
    {
        var (backend, _) = await CountingBackendAsync();
        await using var ownedBackend = backend;
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(backend.Address, Policy, routePolicy: """
            allow_origin_string_match: [{ exact: "https://other.example" }]
            allow_methods: "*"
            allow_headers: "*"
            allow_credentials: false
            """));
        using var client = proxy.Client("main");

        // The route's origins replace the virtual host's.
        using var denied = await client.SendAsync(Preflight("/api/x", "https://app.example.com"));
        Assert.Equal("ok:OPTIONS", await denied.Content.ReadAsStringAsync());

        // "*" echoes the requested method and headers; max_age still comes from the virtual host.
        using var r = await client.SendAsync(Preflight("/api/x", "https://other.example", "DELETE", "x-a, x-b"));
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Equal("https://other.example", Header(r, "access-control-allow-origin"));
        Assert.Equal("DELETE", Header(r, "access-control-allow-methods"));
        Assert.Equal("x-a, x-b", Header(r, "access-control-allow-headers"));
        Assert.Equal("600", Header(r, "access-control-max-age"));
        Assert.Null(Header(r, "access-control-allow-credentials"));
    }

    /// <summary>The deprecated <c>cors</c> fields of virtual hosts and routes: the policy where no level has one in
    /// typed_per_filter_config (the route's settings before the virtual host's), and ignored where one does.</summary>
    [Fact]
    public async Task DeprecatedCorsFields_ApplyOnlyWhereNoLevelHasAPolicy()
    {
        var (backend, seen) = await CountingBackendAsync();
        await using var ownedBackend = backend;
        var yaml = Bootstrap(backend.Address, Policy);
        // The virtual host's typed policy goes; a legacy vhost cors and a legacy /api route cors take its place.
        var typedStart = yaml.IndexOf("              typed_per_filter_config:", StringComparison.Ordinal);
        var typedEnd = yaml.IndexOf("              routes:", StringComparison.Ordinal);
        yaml = yaml[..typedStart] + """
                          cors:
                            allow_origin_string_match: [{ exact: "https://legacy.example" }]
                            allow_methods: GET
                            max_age: "60"

            """ + yaml[typedEnd..];
        yaml = yaml.Replace("route: { cluster: backend }\n", "route: { cluster: backend, cors: { allow_methods: PATCH } }\n", StringComparison.Ordinal);
        await using var proxy = await ProxyHarness.StartAsync(yaml);
        using var client = proxy.Client("main");

        using var r = await client.SendAsync(Preflight("/api/x", "https://legacy.example"));
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Equal("https://legacy.example", Header(r, "access-control-allow-origin"));
        Assert.Equal("PATCH", Header(r, "access-control-allow-methods")); // the route's, over the virtual host's
        Assert.Equal("60", Header(r, "access-control-max-age"));
        Assert.Equal(0, seen());
    }

    [Fact]
    public async Task ShadowMode_CountsOriginsButChangesNothing()
    {
        var (backend, seen) = await CountingBackendAsync();
        await using var ownedBackend = backend;
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(backend.Address, Policy + """

            filter_enabled: { default_value: { numerator: 0 } }
            shadow_enabled: { default_value: { numerator: 100 } }
            """));
        using var client = proxy.Client("main");

        using var r = await client.SendAsync(Preflight("/things", "https://app.example.com"));
        Assert.Equal("ok:OPTIONS", await r.Content.ReadAsStringAsync());
        Assert.Null(Header(r, "access-control-allow-origin"));
        using var bad = await client.SendAsync(Preflight("/things", "https://evil.example"));
        Assert.Equal(2, seen());
        Assert.Equal(1, await proxy.StatAsync("http.ingress_http.cors.origin_valid"));
        Assert.Equal(1, await proxy.StatAsync("http.ingress_http.cors.origin_invalid"));
    }
}
