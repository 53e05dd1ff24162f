using System.Net;
using System.Text;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using CSharpEnvoy.IntegrationTests.Xds;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace CSharpEnvoy.IntegrationTests.Router;

/// <summary>hedge_policy.hedge_on_per_try_timeout against two real backends: the try that timed out keeps running
/// beside the hedged one and the first good response wins. Backends block on sources the test releases.</summary>
public sealed class HedgingTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    private static string Routes(bool hedge) => $$"""
        - name: vh
          domains: ["*"]
          include_request_attempt_count: true
          include_attempt_count_in_response: true
          routes:
          - match: { prefix: "/" }
            route:
              cluster: backend
              timeout: 20s
              hedge_policy: { hedge_on_per_try_timeout: {{(hedge ? "true" : "false")}} }
              retry_policy:
                retry_on: 5xx
                num_retries: 1
                per_try_timeout: 0.2s
                retry_back_off: { base_interval: 0.001s }
                retry_host_predicate: [{ name: envoy.retry_host_predicates.previous_hosts }]
                host_selection_retry_max_attempts: 10
        """;

    /// <summary>Two backends sharing one handler, told apart by name; requests are numbered in arrival order.</summary>
    private sealed class Pair : IAsyncDisposable
    {
        private int _arrivals;
        public readonly List<string> Seen = new();
        public TestBackend A = null!;
        public TestBackend B = null!;

        public bool Http2 { get; private init; }

        public static async Task<Pair> StartAsync(Func<int, HttpContext, Task> handler, bool http2 = false)
        {
            var pair = new Pair { Http2 = http2 };
            var protocols = http2 ? HttpProtocols.Http2 : HttpProtocols.Http1;
            pair.A = await TestBackend.StartAsync(ctx => pair.HandleAsync("a", ctx, handler), protocols);
            pair.B = await TestBackend.StartAsync(ctx => pair.HandleAsync("b", ctx, handler), protocols);
            return pair;
        }

        private async Task HandleAsync(string name, HttpContext ctx, Func<int, HttpContext, Task> handler)
        {
            var body = await new StreamReader(ctx.Request.Body).ReadToEndAsync();
            var n = Interlocked.Increment(ref _arrivals);
            lock (Seen) Seen.Add($"{n}|{name}|{ctx.Request.Headers["x-envoy-attempt-count"]}|{body}");
            await handler(n, ctx);
        }

        public string Cluster => Yaml.Cluster("backend", Http2, A.Address, B.Address);

        public async ValueTask DisposeAsync()
        {
            await A.DisposeAsync();
            await B.DisposeAsync();
        }
    }

    /// <summary>Waits for a request the proxy reset; a request the proxy left running would keep it waiting.</summary>
    private static async Task BlockUntilReleasedOrReset(HttpContext ctx, TaskCompletionSource release, TaskCompletionSource reset, string answer)
    {
        try
        {
            await release.Task.WaitAsync(ctx.RequestAborted);
        }
        catch (OperationCanceledException)
        {
            reset.TrySetResult();
            return;
        }
        await ctx.Response.WriteAsync(answer);
    }

    private static async Task AssertNothingActiveAsync(ProxyHarness proxy)
    {
        // Every try, the winner's and the reset ones', gives back what it held.
        var deadline = DateTime.UtcNow + Bound;
        string[] gauges = ["cluster.backend.upstream_rq_active", "cluster.backend.circuit_breakers.default.rq_open",
            "cluster.backend.circuit_breakers.default.rq_retry_open", "cluster.backend.circuit_breakers.default.rq_pending_open"];
        foreach (var gauge in gauges)
        {
            while (await proxy.StatAsync(gauge) != 0 && DateTime.UtcNow < deadline) await Task.Delay(20);
            Assert.Equal(0, await proxy.StatAsync(gauge));
        }
    }

    [Theory]
    [InlineData(true, null)]
    [InlineData(false, "true")] // a loopback (internal) caller's x-envoy-hedge-on-per-try-timeout overrides the policy
    public async Task PerTryTimeout_SecondTryAnswersWhileFirstStillPending_FirstIsResetAfterwards(bool policy, string? header)
    {
        var releaseFirst = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var firstReset = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var pair = await Pair.StartAsync(async (n, ctx) =>
        {
            if (n == 1) await BlockUntilReleasedOrReset(ctx, releaseFirst, firstReset, "first");
            else await ctx.Response.WriteAsync("second");
        });
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Routes(policy), pair.Cluster, hcmExtra: "use_remote_address: true"));
        using var client = proxy.Client("main");
        var payload = new string('h', 50_000) + "end";
        using var request = new HttpRequestMessage(HttpMethod.Post, "/x") { Content = new StringContent(payload, Encoding.ASCII) };
        if (header is not null) request.Headers.Add("x-envoy-hedge-on-per-try-timeout", header);

        using var response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("second", await response.Content.ReadAsStringAsync());
        Assert.Equal("2", response.Headers.GetValues("x-envoy-attempt-count").Single());
        Assert.False(releaseFirst.Task.IsCompleted); // the first try never answered: the hedged one won on its own
        await firstReset.Task.WaitAsync(Bound); // and the loser is reset once the winner is chosen
        string[] seen;
        lock (pair.Seen) seen = pair.Seen.ToArray();
        Assert.Equal(2, seen.Length);
        var first = seen[0].Split('|');
        var second = seen[1].Split('|');
        Assert.NotEqual(first[1], second[1]); // previous_hosts: the hedge went to the other host
        Assert.Equal(("1", payload), (first[2], first[3]));
        Assert.Equal(("2", payload), (second[2], second[3]));
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.upstream_rq_retry"));
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.upstream_rq_retry_success"));
        // Envoy counts no per-try timeout for a try it hedged rather than reset.
        Assert.Equal(0, await proxy.StatAsync("cluster.backend.upstream_rq_per_try_timeout"));
        Assert.Equal(2, await proxy.StatAsync("cluster.backend.upstream_rq_total"));
        await AssertNothingActiveAsync(proxy);
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.upstream_rq_tx_reset")); // the first try, reset once the hedge won
    }

    [Theory]
    [InlineData(false, null)]
    [InlineData(true, "false")]
    public async Task WithoutHedging_FirstTryIsResetAtItsPerTryTimeout_BeforeTheRetry(bool policy, string? header)
    {
        var releaseFirst = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var firstReset = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var pair = await Pair.StartAsync(async (n, ctx) =>
        {
            if (n == 1) await BlockUntilReleasedOrReset(ctx, releaseFirst, firstReset, "first");
            else
            {
                // With hedging the first try would still be running here and this wait would time out.
                await firstReset.Task.WaitAsync(Bound);
                await ctx.Response.WriteAsync("second");
            }
        });
        // The retry gets the same per-try timeout and waits in it for the backend to see the first try's reset: a
        // second, not 0.2 s, so a crowded machine cannot time the retry out too.
        var routes = Routes(policy).Replace("per_try_timeout: 0.2s", "per_try_timeout: 1s");
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(routes, pair.Cluster, hcmExtra: "use_remote_address: true"));
        using var client = proxy.Client("main");
        using var request = new HttpRequestMessage(HttpMethod.Get, "/x");
        if (header is not null) request.Headers.Add("x-envoy-hedge-on-per-try-timeout", header);

        using var response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("second", await response.Content.ReadAsStringAsync());
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.upstream_rq_per_try_timeout"));
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.upstream_rq_retry"));
        await AssertNothingActiveAsync(proxy);
    }

    [Fact]
    public async Task FirstTryAnswersAfterTheHedgeWasSent_ItsAnswerWins_AndTheHedgeIsReset()
    {
        var releaseFirst = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var firstReset = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var secondArrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var releaseSecond = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var secondReset = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var pair = await Pair.StartAsync(async (n, ctx) =>
        {
            if (n == 1)
            {
                await BlockUntilReleasedOrReset(ctx, releaseFirst, firstReset, "first");
                return;
            }
            secondArrived.TrySetResult();
            await BlockUntilReleasedOrReset(ctx, releaseSecond, secondReset, "second");
        });
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Routes(hedge: true), pair.Cluster));
        using var client = proxy.Client("main");

        var pending = client.GetAsync("/x");
        await secondArrived.Task.WaitAsync(Bound);
        Assert.False(firstReset.Task.IsCompleted); // the hedge did not reset the first try
        releaseFirst.TrySetResult();
        using var response = await pending.WaitAsync(Bound);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("first", await response.Content.ReadAsStringAsync());
        await secondReset.Task.WaitAsync(Bound);
        Assert.False(releaseSecond.Task.IsCompleted);
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.upstream_rq_retry"));
        Assert.Equal(0, await proxy.StatAsync("cluster.backend.upstream_rq_retry_success"));
        await AssertNothingActiveAsync(proxy);
    }

    [Fact]
    public async Task HedgedTryFails_FirstTryStillAnswers()
    {
        // The hedge gets a 503 it cannot retry (no retry left): Envoy drops it and waits for the try still running.
        var releaseFirst = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var firstReset = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var pair = await Pair.StartAsync(async (n, ctx) =>
        {
            if (n == 1)
            {
                await BlockUntilReleasedOrReset(ctx, releaseFirst, firstReset, "first");
                return;
            }
            ctx.Response.StatusCode = 503;
            await ctx.Response.WriteAsync("second failed");
        });
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Routes(hedge: true), pair.Cluster));
        using var client = proxy.Client("main");

        var pending = client.GetAsync("/x");
        // The first try answers only once the proxy has seen the hedge's 503 and found no retry left for it.
        await FilesystemXdsTests.WaitForStatAsync(proxy, "cluster.backend.upstream_rq_retry_limit_exceeded", 1);
        Assert.False(pending.IsCompleted);
        releaseFirst.TrySetResult();
        using var response = await pending.WaitAsync(Bound);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("first", await response.Content.ReadAsStringAsync());
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.upstream_rq_retry_limit_exceeded"));
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.upstream_rq_503"));
        Assert.False(firstReset.Task.IsCompleted);
        await AssertNothingActiveAsync(proxy);
    }

    [Fact]
    public async Task AllTriesTooSlow_RouteTimeoutAnswers504_AndResetsEveryTry()
    {
        var never = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var resets = 0;
        var allReset = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var pair = await Pair.StartAsync(async (n, ctx) =>
        {
            var mine = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            await BlockUntilReleasedOrReset(ctx, never, mine, "late");
            if (Interlocked.Increment(ref resets) == 2) allReset.TrySetResult();
        });
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Routes(hedge: true).Replace("timeout: 20s", "timeout: 1s"), pair.Cluster));
        using var client = proxy.Client("main");

        using var response = await client.GetAsync("/x");

        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.Equal("upstream request timeout", await response.Content.ReadAsStringAsync());
        await allReset.Task.WaitAsync(Bound);
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.upstream_rq_timeout"));
        Assert.Equal(2, await proxy.StatAsync("cluster.backend.upstream_rq_total"));
        await AssertNothingActiveAsync(proxy);
    }

    [Fact]
    public async Task Http2_WinnersBodyAndTrailersReachTheClient()
    {
        var releaseFirst = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var firstReset = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var pair = await Pair.StartAsync(async (n, ctx) =>
        {
            if (n == 1)
            {
                await BlockUntilReleasedOrReset(ctx, releaseFirst, firstReset, "first");
                return;
            }
            ctx.Response.Headers["x-answer"] = "second";
            ctx.Response.DeclareTrailer("x-checksum");
            await ctx.Response.WriteAsync("second part one, ");
            await ctx.Response.Body.FlushAsync();
            await ctx.Response.WriteAsync("part two");
            ctx.Response.AppendTrailer("x-checksum", "abc");
        }, http2: true);
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Routes(hedge: true), pair.Cluster));
        using var client = proxy.Client("main", http2: true);

        using var response = await client.GetAsync("/x");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(new Version(2, 0), response.Version);
        Assert.Equal("second part one, part two", await response.Content.ReadAsStringAsync());
        Assert.Equal("second", response.Headers.GetValues("x-answer").Single());
        Assert.Equal("abc", response.TrailingHeaders.GetValues("x-checksum").Single());
        Assert.True(response.Headers.Contains("x-envoy-upstream-service-time"));
        await firstReset.Task.WaitAsync(Bound);
        await AssertNothingActiveAsync(proxy);
    }

    [Fact]
    public async Task ClientGoesAway_WhileBothTriesRun_BothAreReset()
    {
        var never = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var resets = 0;
        var allReset = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var secondArrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var pair = await Pair.StartAsync(async (n, ctx) =>
        {
            if (n == 2) secondArrived.TrySetResult();
            var mine = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            await BlockUntilReleasedOrReset(ctx, never, mine, "late");
            if (Interlocked.Increment(ref resets) == 2) allReset.TrySetResult();
        });
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Routes(hedge: true), pair.Cluster));
        using var client = proxy.Client("main");
        using var cts = new CancellationTokenSource();

        var pending = client.GetAsync("/x", cts.Token);
        await secondArrived.Task.WaitAsync(Bound);
        cts.Cancel();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pending);
        await allReset.Task.WaitAsync(Bound);
        Assert.False(never.Task.IsCompleted);
        await AssertNothingActiveAsync(proxy);
    }

    [Fact]
    public async Task BodyOverTheBufferLimit_IsSentWhole_AndNotHedged()
    {
        // A chunked body (no content-length) only shows it is too large once read: the try still gets all of it.
        var never = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var firstReset = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var pair = await Pair.StartAsync((n, ctx) => BlockUntilReleasedOrReset(ctx, never, firstReset, "late"));
        var routes = Routes(hedge: true).Replace("    route:", "    per_request_buffer_limit_bytes: 1000\n    route:");
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(routes, pair.Cluster));
        using var client = proxy.Client("main");
        var payload = new string('b', 4999) + "e";
        using var content = new StreamContent(new NonSeekableStream(Encoding.ASCII.GetBytes(payload)));

        using var response = await client.PostAsync("/x", content);

        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode); // the per-try timeout, with no retry
        string[] seen;
        lock (pair.Seen) seen = pair.Seen.ToArray();
        Assert.Equal("1|" + payload, Assert.Single(seen).Split('|', 3)[2]);
        Assert.Equal(0, await proxy.StatAsync("cluster.backend.upstream_rq_retry"));
        await AssertNothingActiveAsync(proxy);
    }

    /// <summary>A body stream of unknown length, so the client sends it chunked.</summary>
    private sealed class NonSeekableStream(byte[] data) : MemoryStream(data)
    {
        public override bool CanSeek => false;
    }
}
