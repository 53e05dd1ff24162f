using System.Diagnostics;
using System.Net;
using CSharpEnvoy.DataPlane.Router;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Http;

namespace CSharpEnvoy.IntegrationTests.Router;

/// <summary>The route timeout's pooled cancellation source: reused across requests, never cancelled by a timer armed
/// for an earlier request, and still firing for the request it was armed for.</summary>
public sealed class RouteTimeoutTests
{
    /// <summary>Polls <paramref name="condition"/> for up to 10 s.</summary>
    private static bool Eventually(Func<bool> condition)
    {
        var deadline = Stopwatch.GetTimestamp() + 10 * Stopwatch.Frequency;
        while (!condition())
        {
            if (Stopwatch.GetTimestamp() > deadline) return false;
            Thread.Sleep(5);
        }
        return true;
    }

    [Fact]
    public void Release_ReusesTheSource_OnTheSameThread()
    {
        var first = RouteTimeout.Start(TimeSpan.FromSeconds(15), CancellationToken.None)!;
        first.Release();

        var second = RouteTimeout.Start(TimeSpan.FromSeconds(15), CancellationToken.None)!;

        Assert.Same(first, second);
        Assert.False(second.Source.IsCancellationRequested);
        second.Release();
    }

    [Fact]
    public void StaleTimerCallback_DoesNotCancelTheNextRequest()
    {
        var first = RouteTimeout.Start(TimeSpan.FromSeconds(10), CancellationToken.None)!;
        first.Release();
        var next = RouteTimeout.Start(TimeSpan.FromSeconds(30), CancellationToken.None)!;
        Assert.Same(first, next);

        // A callback of the first request's timer that runs late, after the source went to the next request.
        next.OnTimer();

        Assert.False(next.Source.IsCancellationRequested);
        next.Release();
    }

    [Fact]
    public void Timer_CancelsAtTheDeadline_AndAFiredSourceIsNotReused()
    {
        var timeout = RouteTimeout.Start(TimeSpan.FromMilliseconds(20), CancellationToken.None)!;

        Assert.True(Eventually(() => timeout.Source.IsCancellationRequested));
        timeout.Release();
        var next = RouteTimeout.Start(TimeSpan.FromSeconds(15), CancellationToken.None)!;

        Assert.NotSame(timeout, next);
        Assert.False(next.Source.IsCancellationRequested);
        next.Release();
    }

    [Fact]
    public void Disarm_StopsTheTimer()
    {
        var timeout = RouteTimeout.Start(TimeSpan.FromMilliseconds(200), CancellationToken.None)!;
        timeout.Disarm();
        var due = Stopwatch.GetTimestamp() + Stopwatch.Frequency / 4;
        Assert.True(Eventually(() => Stopwatch.GetTimestamp() > due));

        timeout.OnTimer();

        Assert.False(timeout.Source.IsCancellationRequested);
        timeout.Release();
    }

    [Fact]
    public void NoTimeout_AndNoStreamTimers_NeedsNoSource()
    {
        Assert.Null(RouteTimeout.Start(TimeSpan.Zero, CancellationToken.None));
    }

    [Fact]
    public void StreamTimers_LinkTheSource()
    {
        using var stream = new CancellationTokenSource();
        var timeout = RouteTimeout.Start(TimeSpan.Zero, stream.Token)!;

        stream.Cancel();

        Assert.True(timeout.Source.IsCancellationRequested);
        timeout.Release();
    }

    [Fact]
    public async Task RouteTimeout_OnAKeepAliveConnection_FiresAfterReusedSourcesAndNotAfterwards()
    {
        var release = new TaskCompletionSource();
        await using var backend = await TestBackend.StartAsync(async ctx =>
        {
            if (ctx.Request.Path == "/slow") await release.Task.WaitAsync(TimeSpan.FromSeconds(30));
            await ctx.Response.WriteAsync("ok");
        });
        var routes = """
            - name: vh
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                route: { cluster: backend, timeout: 0.3s }
            """;
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(routes, Yaml.Cluster("backend", backend.Address)));
        using var client = proxy.Client("main");

        for (var i = 0; i < 50; i++)
        {
            using var fast = await client.GetAsync("/fast");
            Assert.Equal(HttpStatusCode.OK, fast.StatusCode);
        }
        using (var slow = await client.GetAsync("/slow"))
            Assert.Equal(HttpStatusCode.GatewayTimeout, slow.StatusCode);
        release.SetResult();
        for (var i = 0; i < 50; i++)
        {
            using var fast = await client.GetAsync("/fast");
            Assert.Equal(HttpStatusCode.OK, fast.StatusCode);
        }

        Assert.Equal(1, await proxy.StatAsync("cluster.backend.upstream_rq_timeout"));
        Assert.Equal(100, await proxy.StatAsync("cluster.backend.upstream_rq_200"));
    }
}
