using System.Diagnostics;
using System.Net;
using CSharpEnvoy.IntegrationTests.Infrastructure;

namespace CSharpEnvoy.IntegrationTests.HttpFilters;

/// <summary>The HTTP filter chain before the router: envoy.filters.http.fault and envoy.filters.http.local_ratelimit.</summary>
public sealed class HttpFilterTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("csenvoy-filters").FullName;
    private string LogPath => Path.Combine(_dir, "access.log");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private const string Fault = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault";
    private const string LocalRateLimit = "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit";

    /// <summary>A bootstrap whose HCM has the given filters (YAML list items) before the router, an access log of
    /// "code flags details", and one route to the backend.</summary>
    private string Bootstrap(string filters, string backend) => $$"""
        admin:
          address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
        static_resources:
          listeners:
          - name: main
            address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
            filter_chains:
            - filters:
              - name: envoy.filters.network.http_connection_manager
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                  stat_prefix: ingress_http
                  access_log:
                  - name: envoy.access_loggers.file
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
                      path: {{LogPath}}
                      log_format: { text_format_source: { inline_string: "%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS%\n" } }
                  route_config:
                    virtual_hosts:
                    - name: vh
                      domains: ["*"]
                      routes:
                      - match: { prefix: "/" }
                        route: { cluster: backend }
                  http_filters:
        {{Yaml.Indent(filters, 10)}}
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
          clusters:
        {{Yaml.Indent(Yaml.Cluster("backend", backend), 2)}}
        """;

    private string[] LogLines() => File.ReadAllText(LogPath).Split('\n', StringSplitOptions.RemoveEmptyEntries);

    private static string FaultFilter(string body) => $$"""
        - name: envoy.filters.http.fault
          typed_config:
            "@type": {{Fault}}
        {{Yaml.Indent(body, 4)}}
        """;

    private static string RateLimitFilter(string enabled = "100", string maxTokens = "3") => $$"""
        - name: envoy.filters.http.local_ratelimit
          typed_config:
            "@type": {{LocalRateLimit}}
            stat_prefix: http_local_rate_limiter
            token_bucket: { max_tokens: {{maxTokens}}, tokens_per_fill: 1, fill_interval: 3600s }
            filter_enabled: { runtime_key: local_rate_limit_enabled, default_value: { numerator: {{enabled}}, denominator: HUNDRED } }
            filter_enforced: { runtime_key: local_rate_limit_enforced, default_value: { numerator: 100, denominator: HUNDRED } }
            response_headers_to_add:
            - header: { key: x-local-rate-limit, value: "true" }
        """;

    [Fact]
    public async Task FaultAbort_AllRequests_RepliesWithStatus_FlagFI()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        await using (var proxy = await ProxyHarness.StartAsync(Bootstrap(FaultFilter("abort: { http_status: 503, percentage: { numerator: 100 } }"), backend.Address)))
        {
            using var client = proxy.Client("main");
            using var response = await client.GetAsync("/x");
            Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
            Assert.Equal("fault filter abort", await response.Content.ReadAsStringAsync());
            Assert.False(response.Headers.Contains("x-backend"));
            Assert.Equal(1, await proxy.StatAsync("http.ingress_http.fault.aborts_injected"));
            Assert.Equal(0, await proxy.StatAsync("http.ingress_http.fault.delays_injected"));
        }
        Assert.Equal("503 FI fault_filter_abort", Assert.Single(LogLines()));
    }

    [Fact]
    public async Task FaultAbort_GrpcStatus_GrpcRequestGetsTrailersOnlyReply()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(FaultFilter("abort: { grpc_status: 5, percentage: { numerator: 100 } }"), backend.Address));
        using var client = proxy.Client("main");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/pkg.Svc/Method") { Content = new ByteArrayContent(new byte[5]) };
        request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/grpc");
        using var response = await client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("5", response.Headers.GetValues("grpc-status").Single());
        Assert.Equal(1, await proxy.StatAsync("http.ingress_http.fault.aborts_injected"));
    }

    [Fact]
    public async Task FaultDelay_Fixed_DelaysThenForwards_FlagDI()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        await using (var proxy = await ProxyHarness.StartAsync(Bootstrap(FaultFilter("delay: { fixed_delay: 0.2s, percentage: { numerator: 100 } }"), backend.Address)))
        {
            using var client = proxy.Client("main");
            var sw = Stopwatch.StartNew();
            using var response = await client.GetAsync("/x");
            sw.Stop();
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("backend", response.Headers.GetValues("x-backend").Single());
            Assert.True(sw.Elapsed >= TimeSpan.FromMilliseconds(195), $"elapsed {sw.Elapsed}");
            Assert.Equal(1, await proxy.StatAsync("http.ingress_http.fault.delays_injected"));
        }
        Assert.Equal("200 DI via_upstream", Assert.Single(LogLines()));
    }

    [Fact]
    public async Task FaultAbort_HeaderControlled_OnlyWhenHeaderPresent()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(FaultFilter("abort: { header_abort: {}, percentage: { numerator: 100 } }"), backend.Address));
        using var client = proxy.Client("main");

        using (var plain = await client.GetAsync("/x")) Assert.Equal(HttpStatusCode.OK, plain.StatusCode);

        using (var request = new HttpRequestMessage(HttpMethod.Get, "/x"))
        {
            request.Headers.Add("x-envoy-fault-abort-request", "418");
            using var aborted = await client.SendAsync(request);
            Assert.Equal((HttpStatusCode)418, aborted.StatusCode);
        }
        using (var request = new HttpRequestMessage(HttpMethod.Get, "/x"))
        {
            // A header percentage of 0 disables the fault.
            request.Headers.Add("x-envoy-fault-abort-request", "418");
            request.Headers.Add("x-envoy-fault-abort-request-percentage", "0");
            using var passed = await client.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, passed.StatusCode);
        }
        Assert.Equal(1, await proxy.StatAsync("http.ingress_http.fault.aborts_injected"));
    }

    [Fact]
    public async Task FaultDelay_MaxActiveFaults_OverflowSkipsTheFault()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(FaultFilter("""
            max_active_faults: 1
            delay: { fixed_delay: 2s, percentage: { numerator: 100 } }
            """), backend.Address));
        using var client = proxy.Client("main");
        var slow = client.GetAsync("/slow");
        // Wait until the first request holds the only active fault.
        for (var i = 0; i < 100 && await proxy.StatAsync("http.ingress_http.fault.active_faults") == 0; i++) await Task.Delay(20);
        Assert.Equal(1, await proxy.StatAsync("http.ingress_http.fault.active_faults"));

        using var fast = await client.GetAsync("/fast");
        Assert.Equal(HttpStatusCode.OK, fast.StatusCode);
        Assert.False(slow.IsCompleted);
        Assert.Equal(1, await proxy.StatAsync("http.ingress_http.fault.faults_overflow"));
        using var slowResponse = await slow;
        Assert.Equal(HttpStatusCode.OK, slowResponse.StatusCode);
        Assert.Equal(1, await proxy.StatAsync("http.ingress_http.fault.delays_injected"));
    }

    [Fact]
    public async Task LocalRateLimit_FourthRequest_Gets429_FlagRL()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        await using (var proxy = await ProxyHarness.StartAsync(Bootstrap(RateLimitFilter(), backend.Address)))
        {
            using var client = proxy.Client("main");
            for (var i = 0; i < 3; i++)
            {
                using var ok = await client.GetAsync("/x");
                Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
            }
            using var limited = await client.GetAsync("/x");
            Assert.Equal(HttpStatusCode.TooManyRequests, limited.StatusCode);
            Assert.Equal("local_rate_limited", await limited.Content.ReadAsStringAsync());
            Assert.Equal("true", limited.Headers.GetValues("x-local-rate-limit").Single());
            Assert.Equal(4, await proxy.StatAsync("http_local_rate_limiter.http_local_rate_limit.enabled"));
            Assert.Equal(3, await proxy.StatAsync("http_local_rate_limiter.http_local_rate_limit.ok"));
            Assert.Equal(1, await proxy.StatAsync("http_local_rate_limiter.http_local_rate_limit.rate_limited"));
            Assert.Equal(1, await proxy.StatAsync("http_local_rate_limiter.http_local_rate_limit.enforced"));
        }
        Assert.Equal("429 RL local_rate_limited", LogLines()[^1]);
    }

    [Fact]
    public async Task LocalRateLimit_FilterEnabledZero_NeverLimits()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(RateLimitFilter(enabled: "0", maxTokens: "1"), backend.Address));
        using var client = proxy.Client("main");
        for (var i = 0; i < 5; i++)
        {
            using var ok = await client.GetAsync("/x");
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }
        Assert.Equal(0, await proxy.StatAsync("http_local_rate_limiter.http_local_rate_limit.enabled"));
    }

    [Fact]
    public async Task Filters_RunInConfiguredOrder_BeforeTheRouter()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        // The rate limiter (one token) runs first: the first request takes the token and is then aborted by the
        // fault filter; the second is refused by the rate limiter before the fault filter sees it.
        var filters = RateLimitFilter(maxTokens: "1") + "\n" + FaultFilter("abort: { http_status: 503, percentage: { numerator: 100 } }");
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(filters, backend.Address));
        using var client = proxy.Client("main");
        using (var first = await client.GetAsync("/x")) Assert.Equal(HttpStatusCode.ServiceUnavailable, first.StatusCode);
        using (var second = await client.GetAsync("/x")) Assert.Equal(HttpStatusCode.TooManyRequests, second.StatusCode);
        Assert.Equal(1, await proxy.StatAsync("http.ingress_http.fault.aborts_injected"));
    }

    [Fact]
    public void UnknownFilterAndUnsupportedFields_AreRefusedWithTheirPath()
    {
        var filters = """
            - name: envoy.filters.http.lua
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua
            """ + "\n" + FaultFilter("""
            upstream_cluster: backend
            abort: { http_status: 700 }
            """) + "\n" + """
            - name: envoy.filters.http.local_ratelimit
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
                stat_prefix: rl
                local_rate_limit_per_downstream_connection: true
                token_bucket: { max_tokens: 1, fill_interval: 0.01s }
            """;
        var errors = ProxyHarness.Validate(Bootstrap(filters, "127.0.0.1:1")).Errors.Select(e => e.ToString()).ToList();
        const string hcm = "static_resources.listeners[0].filter_chains[0].filters[0].typed_config";
        Assert.Contains($"{hcm}.http_filters[0]: unsupported HTTP filter 'envoy.filters.http.lua' (type 'type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua')", errors);
        Assert.Contains(errors, e => e.StartsWith($"{hcm}.http_filters[1].typed_config.upstream_cluster: field 'upstream_cluster'", StringComparison.Ordinal));
        Assert.Contains($"{hcm}.http_filters[1].typed_config.abort.http_status: http_status must be in [200, 600)", errors);
        Assert.Contains(errors, e => e.StartsWith($"{hcm}.http_filters[2].typed_config.local_rate_limit_per_downstream_connection: field", StringComparison.Ordinal));
        Assert.Contains($"{hcm}.http_filters[2].typed_config.token_bucket.fill_interval: fill_interval must be at least 50ms", errors);
    }
}
