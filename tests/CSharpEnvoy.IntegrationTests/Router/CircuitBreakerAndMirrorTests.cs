using System.Net;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Http;

namespace CSharpEnvoy.IntegrationTests.Router;

public sealed class CircuitBreakerAndMirrorTests
{
    [Fact]
    public async Task MaxRequests_Overflow_Gets503Overloaded()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var arrived = 0;
        var allArrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var backend = await TestBackend.StartAsync(async ctx =>
        {
            if (Interlocked.Increment(ref arrived) == 2) allArrived.TrySetResult();
            await release.Task;
            await ctx.Response.WriteAsync("held");
        });
        var cluster = Yaml.Cluster("backend", backend.Address) + """

              circuit_breakers:
                thresholds:
                - { priority: DEFAULT, max_requests: 2, track_remaining: true }
            """;
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap("""
            - name: vh
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                route: { cluster: backend }
            """, cluster));
        using var client = proxy.Client("main");

        var held = new[] { client.GetAsync("/a"), client.GetAsync("/b") };
        await allArrived.Task.WaitAsync(TimeSpan.FromSeconds(20)); // both hold their request slot upstream
        Assert.Equal(0, await proxy.StatAsync("cluster.backend.circuit_breakers.default.remaining_rq"));
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.circuit_breakers.default.rq_open"));

        using var extra = await client.GetAsync("/c");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, extra.StatusCode);
        Assert.Equal("true", extra.Headers.GetValues("x-envoy-overloaded").Single());
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.upstream_rq_pending_overflow"));

        release.SetResult();
        foreach (var t in held)
        {
            using var r = await t;
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        }
        Assert.Equal(2, await proxy.StatAsync("cluster.backend.circuit_breakers.default.remaining_rq"));
    }

    /// <summary>Routes with priority HIGH count against the cluster's HIGH thresholds, the others against DEFAULT.</summary>
    [Fact]
    public async Task HighPriorityRoute_UsesTheHighThresholds()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var arrived = 0;
        var allArrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var backend = await TestBackend.StartAsync(async ctx =>
        {
            if (Interlocked.Increment(ref arrived) == 3) allArrived.TrySetResult();
            await release.Task;
            await ctx.Response.WriteAsync("held");
        });
        var cluster = Yaml.Cluster("backend", backend.Address) + """

              circuit_breakers:
                thresholds:
                - { priority: DEFAULT, max_requests: 3 }
                - { priority: HIGH, max_requests: 1, track_remaining: true }
            """;
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap("""
            - name: vh
              domains: ["*"]
              routes:
              - match: { prefix: "/high" }
                route: { cluster: backend, priority: HIGH }
              - match: { prefix: "/" }
                route: { cluster: backend }
            """, cluster));
        using var client = proxy.Client("main");

        var held = new[] { client.GetAsync("/high/1"), client.GetAsync("/a"), client.GetAsync("/b") };
        await allArrived.Task.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(3, Volatile.Read(ref arrived));
        Assert.Equal(0, await proxy.StatAsync("cluster.backend.circuit_breakers.high.remaining_rq"));
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.circuit_breakers.high.rq_open"));
        Assert.Equal(0, await proxy.StatAsync("cluster.backend.circuit_breakers.default.rq_open"));

        // A second HIGH request overflows; a third DEFAULT one still fits (3 allowed).
        using var extraHigh = await client.GetAsync("/high/2");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, extraHigh.StatusCode);
        Assert.Equal("true", extraHigh.Headers.GetValues("x-envoy-overloaded").Single());
        var third = client.GetAsync("/c");
        for (var i = 0; i < 250 && Volatile.Read(ref arrived) < 4; i++) await Task.Delay(20);
        Assert.Equal(4, Volatile.Read(ref arrived));

        release.SetResult();
        foreach (var t in held.Append(third))
        {
            using var r = await t;
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        }
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.upstream_rq_pending_overflow"));
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.circuit_breakers.high.remaining_rq"));
    }

    [Fact]
    public async Task Mirror_ShadowGetsCopy_MainUnaffectedByHangingShadow()
    {
        var shadowSeen = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var main = await TestBackend.StartEchoAsync("main");
        await using var shadow = await TestBackend.StartAsync(async ctx =>
        {
            var body = await new StreamReader(ctx.Request.Body).ReadToEndAsync();
            shadowSeen.TrySetResult(ctx.Request.Host + " " + ctx.Request.Method + " " + ctx.Request.Path + " " + body);
            await Task.Delay(Timeout.Infinite, ctx.RequestAborted).ContinueWith(_ => { }); // hang
        });
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap("""
            - name: vh
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                route:
                  cluster: main
                  request_mirror_policies:
                  - cluster: shadow
                    runtime_fraction: { default_value: { numerator: 100 } }
            """, Yaml.Cluster("main", main.Address) + "\n" + Yaml.Cluster("shadow", shadow.Address)));
        using var client = proxy.Client("main");

        var sw = System.Diagnostics.Stopwatch.StartNew();
        using var response = await client.PostAsync("/m", new StringContent("hello"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("main POST /m body=5", await response.Content.ReadAsStringAsync());
        Assert.True(sw.ElapsedMilliseconds < 3000);

        var seen = await shadowSeen.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal($"{proxy.ListenerAddress("main").Split(':')[0]}-shadow:{proxy.ListenerAddress("main").Split(':')[1]} POST /m hello", seen);
        Assert.Equal(1, await proxy.StatAsync("cluster.shadow.upstream_rq_total"));
    }
}
