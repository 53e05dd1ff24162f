using System.Collections.Concurrent;
using System.Net;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using Envoy.Service.Auth.V3;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using CoreHeader = Envoy.Config.Core.V3.HeaderValueOption;

namespace CSharpEnvoy.IntegrationTests.HttpFilters;

/// <summary>What the test authorization service answers, and what it was asked.</summary>
public sealed class AuthzServiceState
{
    public Func<CheckRequest, Task<CheckResponse>> Decide { get; set; } = _ => Task.FromResult(new CheckResponse { Status = new Google.Rpc.Status() });
    public ConcurrentQueue<CheckRequest> Requests { get; } = new();
}

/// <summary>A real <c>envoy.service.auth.v3.Authorization</c> over gRPC (h2c).</summary>
public sealed class TestAuthorizationService(AuthzServiceState state) : Envoy.Service.Auth.V3.Authorization.AuthorizationBase
{
    public override Task<CheckResponse> Check(CheckRequest request, ServerCallContext context)
    {
        state.Requests.Enqueue(request);
        return state.Decide(request);
    }

    public static async Task<(TestBackend Server, AuthzServiceState State)> StartAsync()
    {
        var state = new AuthzServiceState();
        var server = await TestBackend.StartAppAsync(app => app.MapGrpcService<TestAuthorizationService>(), HttpProtocols.Http2, services =>
        {
            services.AddGrpc();
            services.AddSingleton(state);
        });
        return (server, state);
    }
}

/// <summary><c>envoy.filters.http.ext_authz</c> against a real gRPC authorization service and a real HTTP one: allowed
/// requests with header and query mutations, denials with the service's reply, errors with status_on_error or
/// failure_mode_allow, body buffering, per-route settings, and Envoy's stats and flags.</summary>
public sealed class ExtAuthzTests
{
    private const string ExtAuthzType = "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz";
    private const string PerRouteType = "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute";

    private static string GrpcFilter(string extra = "") =>
        $"- name: envoy.filters.http.ext_authz\n  typed_config:\n    \"@type\": {ExtAuthzType}\n    grpc_service:\n      envoy_grpc: {{ cluster_name: authz }}\n      timeout: 2s\n" + Yaml.Indent(extra, 4) + "\n";

    private static string Bootstrap(string backend, string authz, string filter, bool authzHttp2 = true, string logPath = "") => FilterYaml.Bootstrap(filter,
        $$"""
        - name: vh
          domains: ["*"]
          routes:
          - match: { prefix: "/public" }
            route: { cluster: backend }
            typed_per_filter_config:
              envoy.filters.http.ext_authz: { "@type": {{PerRouteType}}, disabled: true }
          - match: { prefix: "/tenant" }
            route: { cluster: backend }
            typed_per_filter_config:
              envoy.filters.http.ext_authz:
                "@type": {{PerRouteType}}
                check_settings: { context_extensions: { tenant: acme, tier: gold } }
          - match: { prefix: "/" }
            route: { cluster: backend }
          typed_per_filter_config:
            envoy.filters.http.ext_authz:
              "@type": {{PerRouteType}}
              check_settings: { context_extensions: { tier: silver, region: eu } }
        """,
        Yaml.Cluster("backend", backend) + "\n" + Yaml.Cluster("authz", authzHttp2, authz), logPath: logPath.Length == 0 ? null : logPath);

    private static Task<TestBackend> EchoBackendAsync() => TestBackend.StartEchoAsync();

    private static CheckResponse Denied(int status, string body, params (string, string)[] headers)
    {
        var denied = new DeniedHttpResponse { Status = new Envoy.Type.V3.HttpStatus { Code = (Envoy.Type.V3.StatusCode)status }, Body = body };
        foreach (var (k, v) in headers) denied.Headers.Add(new CoreHeader { Header = new Envoy.Config.Core.V3.HeaderValue { Key = k, Value = v } });
        return new CheckResponse { Status = new Google.Rpc.Status { Code = 7 }, DeniedResponse = denied };
    }

    [Fact]
    public async Task Grpc_Allowed_SendsTheCheckRequest_AndAppliesTheOkResponse()
    {
        await using var backend = await EchoBackendAsync();
        var (authz, state) = await TestAuthorizationService.StartAsync();
        await using var _ = authz;
        state.Decide = r =>
        {
            var ok = new OkHttpResponse();
            ok.Headers.Add(new CoreHeader { Header = new() { Key = "x-user", Value = "alice" } });
#pragma warning disable CS0612 // the deprecated append is what Envoy reads for ok_response headers
            ok.Headers.Add(new CoreHeader { Header = new() { Key = "x-trace", Value = "authz" }, Append = true });
#pragma warning restore CS0612
            ok.HeadersToRemove.Add("x-secret");
            ok.ResponseHeadersToAdd.Add(new CoreHeader { Header = new() { Key = "x-authz-checked", Value = "yes" } });
            ok.QueryParametersToSet.Add(new Envoy.Config.Core.V3.QueryParameter { Key = "tenant", Value = "acme" });
            ok.QueryParametersToRemove.Add("debug");
            return Task.FromResult(new CheckResponse { Status = new Google.Rpc.Status(), OkResponse = ok });
        };
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(backend.Address, authz.Address, GrpcFilter()));
        using var client = proxy.Client("main");

        using var request = new HttpRequestMessage(HttpMethod.Get, "/tenant/a?debug=1&x=2");
        request.Headers.Add("x-secret", "s3cr3t");
        request.Headers.Add("x-trace", "client");
        request.Headers.Add("Authorization", "Bearer t");
        using var response = await client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("yes", response.Headers.GetValues("x-authz-checked").Single());
        var echoed = await response.Content.ReadAsStringAsync();
        Assert.Contains("/tenant/a?x=2&tenant=acme", echoed);
        Assert.Equal("alice", Http.HttpTestUtil.Upstream(response, "x-user"));
        Assert.Equal("client,authz", Http.HttpTestUtil.Upstream(response, "x-trace"));
        Assert.Null(Http.HttpTestUtil.Upstream(response, "x-secret"));

        var check = Assert.Single(state.Requests);
        var http = check.Attributes.Request.Http;
        Assert.Equal("GET", http.Method);
        Assert.Equal("/tenant/a?debug=1&x=2", http.Path);
        Assert.Equal("HTTP/1.1", http.Protocol);
        Assert.Equal("Bearer t", http.Headers["authorization"]);
        Assert.Equal("/tenant/a?debug=1&x=2", http.Headers[":path"]);
        Assert.Equal("GET", http.Headers[":method"]);
        Assert.Equal("127.0.0.1", check.Attributes.Source.Address.SocketAddress.Address);
        Assert.Equal((uint)proxy.ListenerUri("main").Port, check.Attributes.Destination.Address.SocketAddress.PortValue);
        // The route's context extensions over its virtual host's.
        Assert.Equal("acme", check.Attributes.ContextExtensions["tenant"]);
        Assert.Equal("gold", check.Attributes.ContextExtensions["tier"]);
        Assert.Equal("eu", check.Attributes.ContextExtensions["region"]);
        Assert.Equal(1, await proxy.StatAsync("http.ingress_http.ext_authz.ok"));
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.ext_authz.ok"));

        // A disabled route is not checked.
        using var open = await client.GetAsync("/public/x");
        Assert.Equal(HttpStatusCode.OK, open.StatusCode);
        Assert.Single(state.Requests);
    }

    [Fact]
    public async Task Grpc_Denied_RepliesWithTheServicesStatusHeadersAndBody_FlagUaex()
    {
        await using var backend = await EchoBackendAsync();
        var (authz, state) = await TestAuthorizationService.StartAsync();
        await using var _ = authz;
        state.Decide = r => Task.FromResult(r.Attributes.Request.Http.Path.StartsWith("/plain")
            ? new CheckResponse { Status = new Google.Rpc.Status { Code = 7 } }
            : Denied(401, "{\"error\":\"login\"}", ("www-authenticate", "Bearer"), ("content-type", "application/json")));
        var log = Path.Combine(Path.GetTempPath(), "csenvoy-authz-" + Guid.NewGuid().ToString("N") + ".log");
        try
        {
            await using var proxy = await ProxyHarness.StartAsync(Bootstrap(backend.Address, authz.Address, GrpcFilter("stat_prefix: front"), logPath: log));
            using var client = proxy.Client("main");

            using var denied = await client.GetAsync("/x");
            Assert.Equal(HttpStatusCode.Unauthorized, denied.StatusCode);
            Assert.Equal("{\"error\":\"login\"}", await denied.Content.ReadAsStringAsync());
            Assert.Equal("Bearer", denied.Headers.WwwAuthenticate.ToString());
            Assert.Equal("application/json", denied.Content.Headers.ContentType!.MediaType);

            // A denial without a denied_response is a bare 403.
            using var plain = await client.GetAsync("/plain");
            Assert.Equal(HttpStatusCode.Forbidden, plain.StatusCode);
            Assert.Equal(2, await proxy.StatAsync("http.ingress_http.ext_authz.front.denied"));
            Assert.Equal(2, await proxy.StatAsync("cluster.backend.ext_authz.front.denied"));
            // The denials are charged to the route's cluster as its responses (charge_cluster_response_stats).
            Assert.Equal(1, await proxy.StatAsync("cluster.backend.upstream_rq_401"));
            Assert.Equal(1, await proxy.StatAsync("cluster.backend.upstream_rq_403"));
            var lines = await FilterYaml.LogLinesAsync(log, 2);
            Assert.Equal(["401 UAEX ext_authz_denied", "403 UAEX ext_authz_denied"], lines);
        }
        finally
        {
            File.Delete(log);
        }
    }

    [Fact]
    public async Task Errors_GiveStatusOnError_OrPassWithFailureModeAllow()
    {
        await using var backend = await EchoBackendAsync();
        var (authz, state) = await TestAuthorizationService.StartAsync();
        await using var _ = authz;
        state.Decide = _ => throw new RpcException(new Status(StatusCode.Internal, "authz broke"));
        await using (var proxy = await ProxyHarness.StartAsync(Bootstrap(backend.Address, authz.Address, GrpcFilter("status_on_error: { code: 503 }"))))
        {
            using var client = proxy.Client("main");
            using var r = await client.GetAsync("/x");
            Assert.Equal(HttpStatusCode.ServiceUnavailable, r.StatusCode);
            Assert.Equal(1, await proxy.StatAsync("http.ingress_http.ext_authz.error"));
        }
        await using (var proxy = await ProxyHarness.StartAsync(Bootstrap(backend.Address, authz.Address,
            GrpcFilter("failure_mode_allow: true\nfailure_mode_allow_header_add: true"))))
        {
            using var client = proxy.Client("main");
            using var r = await client.GetAsync("/x");
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            Assert.Equal("true", Http.HttpTestUtil.Upstream(r, "x-envoy-auth-failure-mode-allowed"));
            Assert.Equal(1, await proxy.StatAsync("http.ingress_http.ext_authz.failure_mode_allowed"));
        }
        // A service slower than the timeout is an error too (default status_on_error: 403).
        var release = new TaskCompletionSource<CheckResponse>(TaskCreationOptions.RunContinuationsAsynchronously);
        state.Decide = _ => release.Task;
        var slow = GrpcFilter().Replace("timeout: 2s", "timeout: 0.2s");
        await using (var proxy = await ProxyHarness.StartAsync(Bootstrap(backend.Address, authz.Address, slow)))
        {
            using var client = proxy.Client("main");
            using var r = await client.GetAsync("/x");
            Assert.Equal(HttpStatusCode.Forbidden, r.StatusCode);
            release.SetResult(new CheckResponse { Status = new Google.Rpc.Status() });
        }
        // An unreachable service likewise.
        await using (var proxy = await ProxyHarness.StartAsync(Bootstrap(backend.Address, "127.0.0.1:1", GrpcFilter())))
        {
            using var client = proxy.Client("main");
            using var r = await client.GetAsync("/x");
            Assert.Equal(HttpStatusCode.Forbidden, r.StatusCode);
        }
    }

    [Fact]
    public async Task WithRequestBody_SendsTheBody_AndStillForwardsIt_OrRefusesALongOne()
    {
        await using var backend = await TestBackend.StartAsync(async ctx =>
        {
            using var ms = new MemoryStream();
            await ctx.Request.Body.CopyToAsync(ms);
            await ctx.Response.WriteAsync("got " + ms.Length);
        });
        var (authz, state) = await TestAuthorizationService.StartAsync();
        await using var _ = authz;
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(backend.Address, authz.Address, GrpcFilter("with_request_body: { max_request_bytes: 64 }")));
        using var client = proxy.Client("main");

        using (var r = await client.PostAsync("/x", new StringContent("hello authz")))
        {
            Assert.Equal("got 11", await r.Content.ReadAsStringAsync());
        }
        var check = Assert.Single(state.Requests);
        Assert.Equal("hello authz", check.Attributes.Request.Http.Body);
        Assert.Equal(11, check.Attributes.Request.Http.Size);
        Assert.Equal("false", check.Attributes.Request.Http.Headers["x-envoy-auth-partial-body"]);

        using var tooLong = await client.PostAsync("/x", new StringContent(new string('a', 100)));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, tooLong.StatusCode);
        Assert.Single(state.Requests);
    }

    [Fact]
    public async Task HttpService_AllowsOn200_WithUpstreamHeaders_AndDeniesWithItsReply()
    {
        await using var backend = await EchoBackendAsync();
        var seen = new ConcurrentQueue<(string Method, string Target, string? Auth, string? Cookie, string? Added)>();
        await using var authz = await TestBackend.StartAsync(async ctx =>
        {
            var h = ctx.Request.Headers;
            seen.Enqueue((ctx.Request.Method, ctx.Request.Path + ctx.Request.QueryString, h.Authorization.FirstOrDefault(), h.Cookie.FirstOrDefault(), h["x-added"].FirstOrDefault()));
            if (h.Authorization == "Bearer good")
            {
                ctx.Response.Headers["x-current-user"] = "alice";
                ctx.Response.Headers["x-not-forwarded"] = "1";
                return;
            }
            ctx.Response.StatusCode = 403;
            ctx.Response.Headers["x-reason"] = "bad token";
            await ctx.Response.WriteAsync("denied by http authz");
        });
        var filter = $$"""
            - name: envoy.filters.http.ext_authz
              typed_config:
                "@type": {{ExtAuthzType}}
                http_service:
                  server_uri: { uri: "http://authz.local", cluster: authz, timeout: 2s }
                  path_prefix: /check
                  authorization_request:
                    headers_to_add: [{ key: x-added, value: by-envoy }]
                  authorization_response:
                    allowed_upstream_headers: { patterns: [{ exact: x-current-user }] }
                    allowed_client_headers: { patterns: [{ exact: x-reason }] }
            """;
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(backend.Address, authz.Address, filter, authzHttp2: false));
        using var client = proxy.Client("main");

        using var good = new HttpRequestMessage(HttpMethod.Get, "/api?q=1");
        good.Headers.Add("Authorization", "Bearer good");
        good.Headers.Add("Cookie", "session=1");
        using var allowed = await client.SendAsync(good);
        Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
        Assert.Equal("alice", Http.HttpTestUtil.Upstream(allowed, "x-current-user"));
        Assert.Null(Http.HttpTestUtil.Upstream(allowed, "x-not-forwarded"));
        Assert.True(seen.TryDequeue(out var first));
        // The request's method and path under the prefix; authorization goes, the cookie does not (not allowed).
        Assert.Equal(("GET", "/check/api?q=1", "Bearer good", (string?)null, "by-envoy"), first);

        using var bad = new HttpRequestMessage(HttpMethod.Get, "/api");
        bad.Headers.Add("Authorization", "Bearer bad");
        using var denied = await client.SendAsync(bad);
        Assert.Equal(HttpStatusCode.Forbidden, denied.StatusCode);
        Assert.Equal("denied by http authz", await denied.Content.ReadAsStringAsync());
        Assert.Equal("bad token", denied.Headers.GetValues("x-reason").Single());
        Assert.Equal(1, await proxy.StatAsync("http.ingress_http.ext_authz.ok"));
        Assert.Equal(1, await proxy.StatAsync("http.ingress_http.ext_authz.denied"));
    }

    [Fact]
    public async Task HttpService_ChecksThePathAsForwarded_AfterNormalization()
    {
        await using var backend = await EchoBackendAsync();
        var seen = new ConcurrentQueue<string>();
        await using var authz = await TestBackend.StartAsync(ctx =>
        {
            seen.Enqueue(ctx.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpRequestFeature>()!.RawTarget);
            return Task.CompletedTask;
        });
        var filter = $$"""
            - name: envoy.filters.http.ext_authz
              typed_config:
                "@type": {{ExtAuthzType}}
                http_service: { server_uri: { uri: "http://authz", cluster: authz, timeout: 2s }, path_prefix: /check }
            """;
        var yaml = FilterYaml.Bootstrap(filter, """
            - name: vh
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                route: { cluster: backend }
            """, Yaml.Cluster("backend", backend.Address) + "\n" + Yaml.Cluster("authz", authz.Address), logPath: null, hcmExtra: "merge_slashes: true");
        await using var proxy = await ProxyHarness.StartAsync(yaml);
        using var client = proxy.Client("main");
        using var response = await client.GetAsync("/admin//users?x=1");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.True(seen.TryDequeue(out var checkedTarget));
        Assert.Equal("/check/admin/users?x=1", checkedTarget);
    }

    [Fact]
    public void BadConfigs_AreRefused_WithTheirPaths()
    {
        string Errors(string filter) => string.Join("\n", ProxyHarness.Validate(Bootstrap("127.0.0.1:1", "127.0.0.1:2", filter)).Errors.Select(e => e.ToString()));
        var none = $"- name: a\n  typed_config:\n    \"@type\": {ExtAuthzType}\n    failure_mode_allow: true\n";
        Assert.Contains("http_filters[0].typed_config: one of grpc_service or http_service is required", Errors(none));
        Assert.Contains("with_request_body.max_request_bytes: max_request_bytes must be greater than 0", Errors(GrpcFilter("with_request_body: { allow_partial_message: true }")));
        Assert.Contains("validate_mutations: field 'validate_mutations'", Errors(GrpcFilter("validate_mutations: true")));
        var noTimeout = $"- name: a\n  typed_config:\n    \"@type\": {ExtAuthzType}\n    http_service: {{ server_uri: {{ uri: x, cluster: authz }}, path_prefix: check }}\n";
        var e = Errors(noTimeout);
        Assert.Contains("http_service.server_uri.timeout: timeout is required", e);
        Assert.Contains("http_service.path_prefix: path_prefix should start with \"/\".", e);
    }
}
