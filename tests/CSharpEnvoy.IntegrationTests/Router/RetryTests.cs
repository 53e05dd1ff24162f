using System.Net;
using System.Text;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Http;

namespace CSharpEnvoy.IntegrationTests.Router;

/// <summary>The router's retry_policy, x-envoy-retry-* headers and per-try timeouts, against real backends.</summary>
public sealed class RetryTests
{
    private static string Routes(string retryPolicy, string vhostExtra = "include_request_attempt_count: true\ninclude_attempt_count_in_response: true", string routeExtra = "") => $$"""
        - name: vh
          domains: ["*"]
        {{Yaml.Indent(vhostExtra, 2)}}
          routes:
          - match: { prefix: "/" }
        {{Yaml.Indent(routeExtra, 4)}}
            route:
              cluster: backend
        {{Yaml.Indent(retryPolicy, 6)}}
        """;

    /// <summary>A backend answering <paramref name="failStatus"/> to the first <paramref name="failures"/> requests.</summary>
    private static Task<TestBackend> FlakyAsync(int failures, int failStatus, List<string> seen) =>
        TestBackend.StartAsync(async ctx =>
        {
            var body = await new StreamReader(ctx.Request.Body).ReadToEndAsync();
            int n;
            lock (seen)
            {
                seen.Add(ctx.Request.Headers["x-envoy-attempt-count"].ToString() + "|" + body);
                n = seen.Count;
            }
            if (n <= failures)
            {
                ctx.Response.StatusCode = failStatus;
                await ctx.Response.WriteAsync("fail " + n);
                return;
            }
            await ctx.Response.WriteAsync("ok " + n + " " + body);
        });

    [Fact]
    public async Task FailingTwice_RetriedToSuccess_WithAttemptCounts()
    {
        var seen = new List<string>();
        await using var backend = await FlakyAsync(2, 503, seen);
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Routes("retry_policy: { retry_on: 5xx, num_retries: 3, retry_back_off: { base_interval: 0.001s } }"),
            Yaml.Cluster("backend", backend.Address)));
        using var client = proxy.Client("main");

        using var response = await client.GetAsync("/x");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("ok 3 ", await response.Content.ReadAsStringAsync());
        Assert.Equal("3", response.Headers.GetValues("x-envoy-attempt-count").Single());
        Assert.Equal(new[] { "1|", "2|", "3|" }, seen);
        Assert.Equal(2, await proxy.StatAsync("cluster.backend.upstream_rq_retry"));
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.upstream_rq_retry_success"));
        Assert.Equal(2, await proxy.StatAsync("cluster.backend.upstream_rq_503"));
    }

    [Fact]
    public async Task NotRetried_WhenRetryOnDoesNotMatch()
    {
        var seen = new List<string>();
        await using var backend = await FlakyAsync(1, 500, seen);
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Routes("retry_policy: { retry_on: gateway-error, num_retries: 3 }"),
            Yaml.Cluster("backend", backend.Address)));
        using var client = proxy.Client("main");

        using var response = await client.GetAsync("/x");

        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        Assert.Equal("fail 1", await response.Content.ReadAsStringAsync());
        Assert.Single(seen);
        Assert.Equal(0, await proxy.StatAsync("cluster.backend.upstream_rq_retry"));
    }

    [Fact]
    public async Task Exhausted_PassesLastResponse_WithUrx()
    {
        var seen = new List<string>();
        await using var backend = await FlakyAsync(10, 503, seen);
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Routes("retry_policy: { retry_on: 5xx, num_retries: 2, retry_back_off: { base_interval: 0.001s } }"),
            Yaml.Cluster("backend", backend.Address),
            hcmExtra: """
                access_log:
                - name: envoy.access_loggers.stdout
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog
                """));
        using var client = proxy.Client("main");

        using var response = await client.GetAsync("/x");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("fail 3", await response.Content.ReadAsStringAsync());
        Assert.Equal(3, seen.Count);
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.upstream_rq_retry_limit_exceeded"));
    }

    [Fact]
    public async Task PostBody_ReplayedByteForByte()
    {
        var seen = new List<string>();
        await using var backend = await FlakyAsync(1, 503, seen);
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Routes("retry_policy: { retry_on: 5xx, retry_back_off: { base_interval: 0.001s } }"),
            Yaml.Cluster("backend", backend.Address)));
        using var client = proxy.Client("main");
        var payload = new string('a', 100_000) + "end";

        using var response = await client.PostAsync("/x", new StringContent(payload, Encoding.ASCII));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("ok 2 " + payload, await response.Content.ReadAsStringAsync());
        Assert.Equal(new[] { "1|" + payload, "2|" + payload }, seen);
    }

    [Fact]
    public async Task BodyOverBufferLimit_NotRetried()
    {
        var seen = new List<string>();
        await using var backend = await FlakyAsync(1, 503, seen);
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Routes("retry_policy: { retry_on: 5xx }", routeExtra: "per_request_buffer_limit_bytes: 1000"),
            Yaml.Cluster("backend", backend.Address)));
        using var client = proxy.Client("main");

        using var fixedLength = await client.PostAsync("/x", new ByteArrayContent(new byte[5000]));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, fixedLength.StatusCode);
        Assert.Single(seen);
    }

    [Fact]
    public async Task ConnectFailure_RetriedOnAnotherHost_PreviousHosts()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        var dead = "127.0.0.1:1";
        var policy = """
            retry_policy:
              retry_on: connect-failure
              num_retries: 2
              retry_back_off: { base_interval: 0.001s }
              retry_host_predicate:
              - name: envoy.retry_host_predicates.previous_hosts
                typed_config: { "@type": type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate }
              host_selection_retry_max_attempts: 5
            """;
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Routes(policy), Yaml.Cluster("backend", dead, backend.Address)));
        using var client = proxy.Client("main");
        for (var i = 0; i < 4; i++)
        {
            using var response = await client.GetAsync("/x");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
    }

    [Fact]
    public async Task PerTryTimeout_ThenSuccessOnNextTry()
    {
        var n = 0;
        await using var backend = await TestBackend.StartAsync(async ctx =>
        {
            if (Interlocked.Increment(ref n) == 1) await Task.Delay(5000, ctx.RequestAborted).ContinueWith(_ => { });
            await ctx.Response.WriteAsync("try " + ctx.Request.Headers["x-envoy-expected-rq-timeout-ms"]);
        });
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Routes("retry_policy: { retry_on: 5xx, per_try_timeout: 0.3s, retry_back_off: { base_interval: 0.001s } }"),
            Yaml.Cluster("backend", backend.Address)));
        using var client = proxy.Client("main");

        using var response = await client.GetAsync("/x");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("try 300", await response.Content.ReadAsStringAsync());
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.upstream_rq_per_try_timeout"));
    }

    [Fact]
    public async Task GlobalTimeout_WinsOverRetries()
    {
        await using var backend = await TestBackend.StartAsync(async ctx =>
        {
            await Task.Delay(400, ctx.RequestAborted).ContinueWith(_ => { });
            ctx.Response.StatusCode = 503;
        });
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Routes("timeout: 1s\nretry_policy: { retry_on: 5xx, num_retries: 10, retry_back_off: { base_interval: 0.001s } }"),
            Yaml.Cluster("backend", backend.Address)));
        using var client = proxy.Client("main");
        var sw = System.Diagnostics.Stopwatch.StartNew();

        using var response = await client.GetAsync("/x");

        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.InRange(sw.ElapsedMilliseconds, 900, 4000);
    }

    [Fact]
    public async Task EnvoyRetryHeaders_HonouredFromInternal_IgnoredFromExternal()
    {
        var count = 0;
        var leaked = false;
        await using var backend = await TestBackend.StartAsync(ctx =>
        {
            Interlocked.Increment(ref count);
            if (ctx.Request.Headers.ContainsKey("x-envoy-retry-on") || ctx.Request.Headers.ContainsKey("x-envoy-max-retries")) leaked = true;
            ctx.Response.StatusCode = 500;
            return Task.CompletedTask;
        });
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Routes("retry_policy: { retry_back_off: { base_interval: 0.001s } }", vhostExtra: ""),
            Yaml.Cluster("backend", backend.Address), hcmExtra: "use_remote_address: true\nxff_num_trusted_hops: 1"));
        using var client = proxy.Client("main");

        // An XFF address from a trusted hop makes the client external: the x-envoy-* headers are stripped.
        using var external = new HttpRequestMessage(HttpMethod.Get, "/x");
        external.Headers.Add("x-forwarded-for", "203.0.113.9");
        external.Headers.Add("x-envoy-retry-on", "5xx");
        external.Headers.Add("x-envoy-max-retries", "2");
        using var r1 = await client.SendAsync(external);
        Assert.Equal(HttpStatusCode.InternalServerError, r1.StatusCode);
        Assert.Equal(1, count);

        // A loopback client is internal: honoured, and consumed before the upstream sees them.
        using var internalReq = new HttpRequestMessage(HttpMethod.Get, "/x");
        internalReq.Headers.Add("x-envoy-retry-on", "5xx");
        internalReq.Headers.Add("x-envoy-max-retries", "2");
        using var r2 = await client.SendAsync(internalReq);
        Assert.Equal(HttpStatusCode.InternalServerError, r2.StatusCode);
        Assert.Equal(4, count);
        Assert.False(leaked);
    }
}
