using System.Net;
using CSharpEnvoy.IntegrationTests.Grpc;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using Envoy.Service.Ratelimit.V3;
using Code = Envoy.Service.Ratelimit.V3.RateLimitResponse.Types.Code;

namespace CSharpEnvoy.IntegrationTests.HttpFilters;

/// <summary><c>envoy.filters.http.ratelimit</c> end to end against a real gRPC rate limit service.</summary>
public sealed class GlobalRateLimitTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("csenvoy-rls").FullName;
    private string LogPath => Path.Combine(_dir, "access.log");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string Filter(string extra = "") => $$"""
        - name: envoy.filters.http.ratelimit
          typed_config:
            "@type": {{FilterYaml.RateLimit}}
            domain: edge
            timeout: 5s
            rate_limit_service:
              transport_api_version: V3
              grpc_service: { envoy_grpc: { cluster_name: rls } }
        {{Yaml.Indent(extra, 4)}}
        """;

    private const string VirtualHosts = """
        - name: vh
          domains: ["*"]
          rate_limits:
          - actions:
            - generic_key: { descriptor_value: vhost-wide }
          routes:
          - match: { prefix: "/limited" }
            route:
              cluster: backend
              rate_limits:
              - actions:
                - destination_cluster: {}
                - request_headers: { header_name: x-client, descriptor_key: client }
                - remote_address: {}
          - match: { prefix: "/" }
            route: { cluster: backend }
        """;

    private string Bootstrap(string backend, string rls, string filterExtra = "") =>
        FilterYaml.Bootstrap(Filter(filterExtra), VirtualHosts, Yaml.Cluster("backend", backend) + "\n" + Yaml.Cluster("rls", http2: true, rls), LogPath);

    private static HttpRequestMessage Get(string path, string client = "a")
    {
        var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Add("x-client", client);
        return request;
    }

    [Fact]
    public async Task OverLimit_429_XEnvoyRateLimited_FlagRL_CountedOnTheRouteCluster()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        var (rls, state) = await TestRateLimitService.StartAsync();
        await using var _ = rls;
        state.Decide = r =>
        {
            var a = TestRateLimitService.Answer(r, Code.OverLimit);
            a.RawBody = Google.Protobuf.ByteString.CopyFromUtf8("slow down");
            return a;
        };
        await using (var proxy = await ProxyHarness.StartAsync(Bootstrap(backend.Address, rls.Address, "enable_x_ratelimit_headers: DRAFT_VERSION_03")))
        {
            using var client = proxy.Client("main");
            using var response = await client.SendAsync(Get("/limited/x"));
            Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
            Assert.Equal("true", response.Headers.GetValues("x-envoy-ratelimited").Single());
            Assert.Equal("slow down", await response.Content.ReadAsStringAsync());
            Assert.Equal("10, 10;w=60;name=\"per-client\"", response.Headers.GetValues("x-ratelimit-limit").Single());
            Assert.Equal("0", response.Headers.GetValues("x-ratelimit-remaining").Single());
            Assert.Equal("42", response.Headers.GetValues("x-ratelimit-reset").Single());
            Assert.False(response.Headers.Contains("x-backend"));
            Assert.Equal(1, await proxy.StatAsync("cluster.backend.ratelimit.over_limit"));
            Assert.Equal(1, await proxy.StatAsync("cluster.backend.upstream_rq_429"));
        }
        Assert.Equal("429 RL request_rate_limited", Assert.Single(await FilterYaml.LogLinesAsync(LogPath, 1)));

        // The service saw the domain and the route's descriptor (the route's limits override the virtual host's).
        var request = Assert.Single(state.Requests);
        Assert.Equal("edge", request.Domain);
        var entries = Assert.Single(request.Descriptors).Entries.Select(e => $"{e.Key}={e.Value}").ToArray();
        Assert.Equal(["destination_cluster=backend", "client=a", "remote_address=127.0.0.1"], entries);
    }

    [Fact]
    public async Task Ok_PassesWithServiceHeaders_VirtualHostLimitsWhenTheRouteHasNone()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        var (rls, state) = await TestRateLimitService.StartAsync();
        await using var _ = rls;
        state.Decide = r =>
        {
            var a = TestRateLimitService.Answer(r, Code.Ok, remaining: 7);
            a.RequestHeadersToAdd.Add(new Envoy.Config.Core.V3.HeaderValue { Key = "x-rls-checked", Value = "yes" });
            a.ResponseHeadersToAdd.Add(new Envoy.Config.Core.V3.HeaderValue { Key = "x-rls-note", Value = "fine" });
            return a;
        };
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(backend.Address, rls.Address));
        using var client = proxy.Client("main");
        using (var response = await client.SendAsync(Get("/other")))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("yes", response.Headers.GetValues("x-echo-req-x-rls-checked").Single());
            Assert.Equal("fine", response.Headers.GetValues("x-rls-note").Single());
            Assert.False(response.Headers.Contains("x-ratelimit-limit")); // not enabled
        }
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.ratelimit.ok"));
        var request = Assert.Single(state.Requests);
        var entry = Assert.Single(Assert.Single(request.Descriptors).Entries);
        Assert.Equal("generic_key=vhost-wide", $"{entry.Key}={entry.Value}");
    }

    [Fact]
    public async Task ServiceDown_FailureModeAllow_PassesAndCounts()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(backend.Address, $"127.0.0.1:{FixedPorts.Next()}"));
        using var client = proxy.Client("main");
        using (var response = await client.SendAsync(Get("/limited")))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("backend", response.Headers.GetValues("x-backend").Single());
        }
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.ratelimit.error"));
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.ratelimit.failure_mode_allowed"));
    }

    [Fact]
    public async Task ServiceDown_FailureModeDeny_500_FlagRLSE()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        await using (var proxy = await ProxyHarness.StartAsync(Bootstrap(backend.Address, $"127.0.0.1:{FixedPorts.Next()}", "failure_mode_deny: true")))
        {
            using var client = proxy.Client("main");
            using var response = await client.SendAsync(Get("/limited"));
            Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
            Assert.False(response.Headers.Contains("x-backend"));
            Assert.Equal(1, await proxy.StatAsync("cluster.backend.ratelimit.error"));
            Assert.Equal(0, await proxy.StatAsync("cluster.backend.ratelimit.failure_mode_allowed"));
        }
        Assert.Equal("500 RLSE rate_limiter_error", Assert.Single(await FilterYaml.LogLinesAsync(LogPath, 1)));
    }

    [Fact]
    public async Task SlowService_TimeoutIsAnError()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        var (rls, state) = await TestRateLimitService.StartAsync();
        await using var _ = rls;
        using var release = new ManualResetEventSlim();
        state.Decide = r =>
        {
            release.Wait(TimeSpan.FromSeconds(10));
            return TestRateLimitService.Answer(r, Code.OverLimit);
        };
        var yaml = Bootstrap(backend.Address, rls.Address, "failure_mode_deny: true").Replace("timeout: 5s", "timeout: 0.2s");
        await using var proxy = await ProxyHarness.StartAsync(yaml);
        using var client = proxy.Client("main");
        using (var response = await client.SendAsync(Get("/limited"))) Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        release.Set();
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.ratelimit.error"));
    }

    [Fact]
    public void Config_NeedsEnvoyGrpcAndV3_UnsupportedFieldsRefused()
    {
        var filter = $$"""
            - name: envoy.filters.http.ratelimit
              typed_config:
                "@type": {{FilterYaml.RateLimit}}
                domain: edge
                filter_enabled: { default_value: { numerator: 50 } }
                rate_limit_service:
                  grpc_service: { google_grpc: { target_uri: "127.0.0.1:1", stat_prefix: rls } }
            """;
        var yaml = FilterYaml.Bootstrap(filter, VirtualHosts, Yaml.Cluster("backend", "127.0.0.1:1"), LogPath);
        var errors = ProxyHarness.Validate(yaml).Errors.Select(e => e.ToString()).ToList();
        const string f = "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0].typed_config";
        Assert.Contains(errors, e => e.StartsWith($"{f}.filter_enabled: field 'filter_enabled'", StringComparison.Ordinal));
        Assert.Contains($"{f}.rate_limit_service.transport_api_version: transport_api_version must be V3", errors);
        Assert.Contains(errors, e => e.StartsWith($"{f}.rate_limit_service.grpc_service.envoy_grpc:", StringComparison.Ordinal));
    }
}
