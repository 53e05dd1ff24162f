using System.Net;
using CSharpEnvoy.IntegrationTests.Infrastructure;

namespace CSharpEnvoy.IntegrationTests.HttpFilters;

/// <summary>Filter order as Envoy (filters before the router's route decision) and <c>typed_per_filter_config</c>
/// overrides on route, virtual host and route configuration.</summary>
public sealed class PerRouteFilterConfigTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("csenvoy-perroute").FullName;
    private string LogPath => Path.Combine(_dir, "access.log");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string FaultFilter(string body, string name = "envoy.filters.http.fault") => $$"""
        - name: {{name}}
          typed_config:
            "@type": {{FilterYaml.Fault}}
        {{Yaml.Indent(body, 4)}}
        """;

    private static string VirtualHost(string routes, string vhostExtra = "") => $"""
        - name: vh
          domains: ["*"]
        {Yaml.Indent(vhostExtra, 2)}
          routes:
        {Yaml.Indent(routes, 2)}
        """;

    [Fact]
    public async Task NoRoute_FiltersStillRun_BeforeTheRouters404()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        var vhosts = VirtualHost("""
            - match: { prefix: "/api" }
              route: { cluster: backend }
            """);
        var yaml = FilterYaml.Bootstrap(FaultFilter("abort: { http_status: 503, percentage: { numerator: 100 } }"), vhosts,
            Yaml.Cluster("backend", backend.Address), LogPath);
        await using (var proxy = await ProxyHarness.StartAsync(yaml))
        {
            using var client = proxy.Client("main");
            // Envoy's router (the last filter) answers 404 for a request without a route; the fault filter before it
            // sees the request first and aborts it.
            using var response = await client.GetAsync("/elsewhere");
            Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
            Assert.Equal(0, await proxy.StatAsync("http.ingress_http.no_route"));
            Assert.Equal(1, await proxy.StatAsync("http.ingress_http.fault.aborts_injected"));
        }
        Assert.Equal("503 FI fault_filter_abort", Assert.Single(await FilterYaml.LogLinesAsync(LogPath, 1)));
    }

    [Fact]
    public async Task NoRoute_PassingFilters_ThenRouter404_FlagNR()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        var vhosts = VirtualHost("""
            - match: { prefix: "/api" }
              route: { cluster: backend }
            """);
        var yaml = FilterYaml.Bootstrap(FaultFilter("delay: { fixed_delay: 0.05s, percentage: { numerator: 100 } }"), vhosts,
            Yaml.Cluster("backend", backend.Address), LogPath);
        await using (var proxy = await ProxyHarness.StartAsync(yaml))
        {
            using var client = proxy.Client("main");
            using var response = await client.GetAsync("/elsewhere");
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
            Assert.Equal(1, await proxy.StatAsync("http.ingress_http.no_route"));
            Assert.Equal(1, await proxy.StatAsync("http.ingress_http.fault.delays_injected"));
        }
        Assert.Equal("404 NR,DI route_not_found", Assert.Single(await FilterYaml.LogLinesAsync(LogPath, 1)));
    }

    [Fact]
    public async Task FaultOverride_MostSpecificWins_RouteOverVirtualHostOverRouteConfiguration()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        // Filter-wide: no fault. Route configuration: abort 500. Virtual host: abort 502. Route /route: abort 418.
        var vhosts = $$"""
            - name: vh
              domains: ["*"]
              typed_per_filter_config:
                envoy.filters.http.fault:
                  "@type": {{FilterYaml.Fault}}
                  abort: { http_status: 502, percentage: { numerator: 100 } }
              routes:
              - match: { prefix: "/route" }
                route: { cluster: backend }
                typed_per_filter_config:
                  envoy.filters.http.fault:
                    "@type": {{FilterYaml.Fault}}
                    abort: { http_status: 418, percentage: { numerator: 100 } }
              - match: { prefix: "/" }
                route: { cluster: backend }
            - name: other
              domains: ["other.example"]
              routes:
              - match: { prefix: "/" }
                route: { cluster: backend }
            """;
        var yaml = FilterYaml.Bootstrap(FaultFilter("delay: { fixed_delay: 0.001s, percentage: { numerator: 0 } }"), vhosts,
            Yaml.Cluster("backend", backend.Address), LogPath, routeConfigExtra: $$"""
                typed_per_filter_config:
                  envoy.filters.http.fault:
                    "@type": {{FilterYaml.Fault}}
                    abort: { http_status: 500, percentage: { numerator: 100 } }
                """);
        await using var proxy = await ProxyHarness.StartAsync(yaml);
        using var client = proxy.Client("main");
        using (var r = await client.GetAsync("/route/x")) Assert.Equal((HttpStatusCode)418, r.StatusCode);
        using (var r = await client.GetAsync("/x")) Assert.Equal(HttpStatusCode.BadGateway, r.StatusCode);
        using (var request = new HttpRequestMessage(HttpMethod.Get, "/x") { Headers = { Host = "other.example" } })
        using (var r = await client.SendAsync(request))
            Assert.Equal(HttpStatusCode.InternalServerError, r.StatusCode);
        Assert.Equal(3, await proxy.StatAsync("http.ingress_http.fault.aborts_injected"));
    }

    [Fact]
    public async Task FilterConfigWrapper_DisablesOnARoute_AndEnablesAFilterDisabledByDefault()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        var filters = FaultFilter("abort: { http_status: 503, percentage: { numerator: 100 } }", "abort-all") + "\n" +
            FaultFilter("abort: { http_status: 418, percentage: { numerator: 100 } }", "teapot") + "\n  disabled: true";
        var vhosts = VirtualHost($$"""
            - match: { prefix: "/open" }
              route: { cluster: backend }
              typed_per_filter_config:
                abort-all:
                  "@type": {{FilterYaml.FilterConfig}}
                  disabled: true
            - match: { prefix: "/teapot" }
              route: { cluster: backend }
              typed_per_filter_config:
                abort-all:
                  "@type": {{FilterYaml.FilterConfig}}
                  disabled: true
                teapot:
                  "@type": {{FilterYaml.FilterConfig}}
                  config:
                    "@type": {{FilterYaml.Fault}}
                    abort: { http_status: 429, percentage: { numerator: 100 } }
            - match: { prefix: "/" }
              route: { cluster: backend }
            """);
        await using var proxy = await ProxyHarness.StartAsync(FilterYaml.Bootstrap(filters, vhosts, Yaml.Cluster("backend", backend.Address), LogPath));
        using var client = proxy.Client("main");
        using (var r = await client.GetAsync("/open")) Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        // The default-disabled filter runs where a route enables it, with that route's config.
        using (var r = await client.GetAsync("/teapot")) Assert.Equal(HttpStatusCode.TooManyRequests, r.StatusCode);
        using (var r = await client.GetAsync("/other")) Assert.Equal(HttpStatusCode.ServiceUnavailable, r.StatusCode);
    }

    [Fact]
    public async Task LocalRateLimitPerRoute_HasItsOwnBucketAndStats()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        var filter = $$"""
            - name: envoy.filters.http.local_ratelimit
              typed_config:
                "@type": {{FilterYaml.LocalRateLimit}}
                stat_prefix: filter_wide
            """;
        var vhosts = VirtualHost($$"""
            - match: { prefix: "/limited" }
              route: { cluster: backend }
              typed_per_filter_config:
                envoy.filters.http.local_ratelimit:
                  "@type": {{FilterYaml.LocalRateLimit}}
                  stat_prefix: per_route
                  token_bucket: { max_tokens: 2, tokens_per_fill: 1, fill_interval: 3600s }
                  filter_enabled: { runtime_key: e, default_value: { numerator: 100 } }
                  filter_enforced: { runtime_key: f, default_value: { numerator: 100 } }
            - match: { prefix: "/" }
              route: { cluster: backend }
            """);
        await using (var proxy = await ProxyHarness.StartAsync(FilterYaml.Bootstrap(filter, vhosts, Yaml.Cluster("backend", backend.Address), LogPath)))
        {
            using var client = proxy.Client("main");
            for (var i = 0; i < 2; i++)
                using (var r = await client.GetAsync("/limited")) Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            using (var r = await client.GetAsync("/limited"))
            {
                Assert.Equal(HttpStatusCode.TooManyRequests, r.StatusCode);
                Assert.Equal("local_rate_limited", await r.Content.ReadAsStringAsync());
            }
            // The filter-wide config has no bucket and is not enabled: other routes are never limited.
            for (var i = 0; i < 5; i++)
                using (var r = await client.GetAsync("/free")) Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            Assert.Equal(2, await proxy.StatAsync("per_route.http_local_rate_limit.ok"));
            Assert.Equal(1, await proxy.StatAsync("per_route.http_local_rate_limit.enforced"));
            Assert.Equal(0, await proxy.StatAsync("filter_wide.http_local_rate_limit.enabled"));
        }
        var lines = await FilterYaml.LogLinesAsync(LogPath, 8);
        Assert.Equal("429 RL local_rate_limited", lines[2]);
    }

    [Fact]
    public async Task LocalRateLimitDescriptors_FromRouteRateLimitActions_LimitPerHeaderValue()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        var filter = $$"""
            - name: envoy.filters.http.local_ratelimit
              typed_config:
                "@type": {{FilterYaml.LocalRateLimit}}
                stat_prefix: rl
            """;
        // The default bucket (10) is always consumed too; client "a" has a descriptor bucket of 1, "b" of 2.
        var vhosts = VirtualHost($$"""
            - match: { prefix: "/" }
              route:
                cluster: backend
                rate_limits:
                - actions:
                  - request_headers: { header_name: x-client, descriptor_key: client }
              typed_per_filter_config:
                envoy.filters.http.local_ratelimit:
                  "@type": {{FilterYaml.LocalRateLimit}}
                  stat_prefix: route_rl
                  token_bucket: { max_tokens: 10, tokens_per_fill: 1, fill_interval: 3600s }
                  filter_enabled: { runtime_key: e, default_value: { numerator: 100 } }
                  filter_enforced: { runtime_key: f, default_value: { numerator: 100 } }
                  descriptors:
                  - entries: [ { key: client, value: a } ]
                    token_bucket: { max_tokens: 1, tokens_per_fill: 1, fill_interval: 3600s }
                  - entries: [ { key: client, value: b } ]
                    token_bucket: { max_tokens: 2, tokens_per_fill: 1, fill_interval: 3600s }
            """);
        await using var proxy = await ProxyHarness.StartAsync(FilterYaml.Bootstrap(filter, vhosts, Yaml.Cluster("backend", backend.Address), LogPath));
        using var client = proxy.Client("main");

        async Task<HttpStatusCode> Get(string? who)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/x");
            if (who is not null) request.Headers.Add("x-client", who);
            using var r = await client.SendAsync(request);
            return r.StatusCode;
        }

        Assert.Equal(HttpStatusCode.OK, await Get("a"));
        Assert.Equal(HttpStatusCode.TooManyRequests, await Get("a"));
        Assert.Equal(HttpStatusCode.OK, await Get("b"));
        Assert.Equal(HttpStatusCode.OK, await Get("b"));
        Assert.Equal(HttpStatusCode.TooManyRequests, await Get("b"));
        // No header: no descriptor, only the default bucket: 7 of its 10 tokens are left, as the 3 requests allowed
        // above took one each (a request refused by its descriptor takes none, as in Envoy).
        for (var i = 0; i < 7; i++) Assert.Equal(HttpStatusCode.OK, await Get(null));
        Assert.Equal(HttpStatusCode.TooManyRequests, await Get(null));
        Assert.Equal(HttpStatusCode.TooManyRequests, await Get("c"));
    }

    [Fact]
    public void PerFilterConfig_UnknownTypeRefused_OptionalIgnored_FieldsChecked()
    {
        var vhosts = VirtualHost($$"""
            - match: { prefix: "/a" }
              route: { cluster: backend }
              typed_per_filter_config:
                envoy.filters.http.router:
                  "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
                  suppress_envoy_headers: true
            - match: { prefix: "/b" }
              route: { cluster: backend }
              typed_per_filter_config:
                envoy.filters.http.router:
                  "@type": {{FilterYaml.FilterConfig}}
                  is_optional: true
                  config:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
                    suppress_envoy_headers: true
            - match: { prefix: "/" }
              route: { cluster: backend }
              typed_per_filter_config:
                envoy.filters.http.fault:
                  "@type": {{FilterYaml.FilterConfig}}
                  config:
                    "@type": {{FilterYaml.Fault}}
                    upstream_cluster: x
            """);
        var yaml = FilterYaml.Bootstrap(FaultFilter("max_active_faults: 1"), vhosts, Yaml.Cluster("backend", "127.0.0.1:1"), LogPath);
        var errors = ProxyHarness.Validate(yaml).Errors.Select(e => e.ToString()).ToList();
        const string vh = "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0]";
        Assert.Contains(errors, e => e.StartsWith($"{vh}.routes[0].typed_per_filter_config[\"envoy.filters.http.router\"]: unsupported per-filter config type", StringComparison.Ordinal));
        Assert.DoesNotContain(errors, e => e.Contains("routes[1]", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith($"{vh}.routes[2].typed_per_filter_config[\"envoy.filters.http.fault\"].config.upstream_cluster: field 'upstream_cluster'", StringComparison.Ordinal));
    }
}
